//go:build openblas

package nn

import "github.com/modax/modax-ml/internal/nn/openblas"

// defaultBackend is OpenBLAS in builds with the openblas tag (make build does
// this when libopenblas-dev is installed).
const defaultBackend = "openblas"

func init() {
	registerBackend(backend32{
		name: "openblas",
		desc: func() string {
			return "cgo, " + openblas.Config() + ", 1 thread per worker; per-time-step products on the Go kernels"
		},
		new: func() blas[float32] { return &openBLAS{} },
	})
}

// openBLAS calls cblas_sgemm for the large products (the input projection
// of all time steps, the weight gradients). The per-time-step products with
// the prepared weights have few rows (the batch shard), where OpenBLAS packs
// the whole weight matrix on every call and reaches a third of the Go
// kernels' speed, so those run on the pure-Go backend with its operands
// packed once per batch.
type openBLAS struct{ small goBLAS }

// smallRows is the largest row count of a prepared product that runs on the
// Go kernels.
const smallRows = 256

func (*openBLAS) gemm(tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		scaleRows(m, n, beta, c, ldc)
		return
	}
	openblas.Sgemm(tA, tB, m, n, k, a, lda, b, ldb, beta, c, ldc)
}

func (o *openBLAS) prepare(op *operand[float32]) { o.small.prepare(op) }

func (o *openBLAS) gemmOp(tA bool, m int, a []float32, lda int, op *operand[float32], beta float32, c []float32, ldc int) {
	if m <= smallRows {
		o.small.gemmOp(tA, m, a, lda, op, beta, c, ldc)
		return
	}
	o.gemm(tA, op.trans, m, op.n, op.k, a, lda, op.b, op.ldb, beta, c, ldc)
}
