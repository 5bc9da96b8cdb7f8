//go:build !openblas

package nn

// defaultBackend is the backend engines use unless told otherwise: pure Go
// in builds without the openblas tag.
const defaultBackend = "go"
