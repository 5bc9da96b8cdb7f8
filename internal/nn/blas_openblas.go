//go:build openblas

package nn

import "github.com/modax/modax-ml/internal/nn/openblas"

// defaultBackend is OpenBLAS in builds with the openblas tag (make build does
// this when libopenblas-dev is installed).
const defaultBackend = "openblas"

func init() {
	registerBackend(backend32{
		name: "openblas",
		desc: func() string { return "cgo, " + openblas.Config() + ", 1 thread per worker" },
		new:  func() blas[float32] { return openBLAS{} },
	})
}

// openBLAS calls cblas_sgemm. It does not pack: OpenBLAS packs internally on
// every call.
type openBLAS struct{}

func (openBLAS) gemm(tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		scaleRows(m, n, beta, c, ldc)
		return
	}
	openblas.Sgemm(tA, tB, m, n, k, a, lda, b, ldb, beta, c, ldc)
}

func (openBLAS) prepare(*operand[float32]) {}

func (o openBLAS) gemmOp(tA bool, m int, a []float32, lda int, op *operand[float32], beta float32, c []float32, ldc int) {
	o.gemm(tA, op.trans, m, op.n, op.k, a, lda, op.b, op.ldb, beta, c, ldc)
}
