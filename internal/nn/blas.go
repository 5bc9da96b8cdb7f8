package nn

import (
	"fmt"
	"slices"
)

// Float is the element type of the engine's math: float32 for training and
// inference, float64 for the finite-difference checks of the gradients.
type Float interface{ ~float32 | ~float64 }

// operand is the right-hand matrix B of many products C = op(A)·op(B) that
// share it (the weights during one batch). Backends that pack their operands
// (the pure-Go one) pack it once with prepare; the others use b directly.
// op(B) is k×n: B is stored k×n (trans false) or n×k (trans true), row-major
// with leading dimension ldb.
type operand[T Float] struct {
	b      []T
	ldb    int
	trans  bool
	k, n   int
	packed []T // backend-owned packed form (nil when the backend does not pack)
}

func (o *operand[T]) set(b []T, ldb int, trans bool, k, n int) {
	o.b, o.ldb, o.trans, o.k, o.n = b, ldb, trans, k, n
}

// blas is a matrix-product backend for element type T, row-major throughout.
// An instance is owned by one goroutine (it holds packing scratch); prepare
// is called by one goroutine before the operand is shared read-only.
type blas[T Float] interface {
	// gemm computes C = op(A)·op(B) + beta·C with op(A) m×k, op(B) k×n and
	// beta 0 or 1.
	gemm(tA, tB bool, m, n, k int, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int)
	// prepare packs o for repeated gemmOp calls (a no-op for backends that
	// do not pack). It must be called again after o's data changes.
	prepare(o *operand[T])
	// gemmOp is gemm with B given as a prepared operand.
	gemmOp(tA bool, m int, a []T, lda int, o *operand[T], beta T, c []T, ldc int)
}

// backend32 describes a float32 backend.
type backend32 struct {
	name string
	desc func() string
	new  func() blas[float32]
}

var backends32 []backend32

func registerBackend(b backend32) { backends32 = append(backends32, b) }

// Backends lists the names of the float32 matrix-product backends compiled
// into this binary, the default first.
func Backends() []string {
	var out []string
	for _, b := range backends32 {
		out = append(out, b.name)
	}
	slices.SortStableFunc(out, func(a, b string) int {
		switch {
		case a == defaultBackend:
			return -1
		case b == defaultBackend:
			return 1
		}
		return 0
	})
	return out
}

// BLAS describes the default matrix-product backend of this binary, e.g.
// "openblas (cgo, libopenblas 0.3.29, 1 thread per worker)" or
// "go (avx2+fma assembly kernels)". `modax-ml version` prints it.
func BLAS() string {
	b, err := lookupBackend("")
	if err != nil {
		return err.Error()
	}
	return b.name + " (" + b.desc() + ")"
}

func lookupBackend(name string) (backend32, error) {
	if name == "" || name == "auto" {
		name = defaultBackend
	}
	for _, b := range backends32 {
		if b.name == name {
			return b, nil
		}
	}
	return backend32{}, fmt.Errorf("blas backend %q not in this binary (have %v; OpenBLAS needs a build with -tags openblas)", name, Backends())
}

// refBLAS is the plain triple loop for any element type: the float64 engine
// of the gradient checks uses it, and tests compare the fast backends with it.
type refBLAS[T Float] struct{}

func (refBLAS[T]) gemm(tA, tB bool, m, n, k int, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	for i := range m {
		ci := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(ci)
		}
		for p := range k {
			var av T
			if tA {
				av = a[p*lda+i]
			} else {
				av = a[i*lda+p]
			}
			if tB {
				for j := range ci {
					ci[j] += av * b[j*ldb+p]
				}
			} else {
				bp := b[p*ldb : p*ldb+n]
				for j := range ci {
					ci[j] += av * bp[j]
				}
			}
		}
	}
}

func (refBLAS[T]) prepare(*operand[T]) {}

func (r refBLAS[T]) gemmOp(tA bool, m int, a []T, lda int, o *operand[T], beta T, c []T, ldc int) {
	r.gemm(tA, o.trans, m, o.n, o.k, a, lda, o.b, o.ldb, beta, c, ldc)
}
