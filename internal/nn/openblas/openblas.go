//go:build openblas

// Package openblas is the cgo binding of the fused engine's OpenBLAS backend
// (built with -tags openblas and Debian's libopenblas-dev). It lives in its
// own package because a package using cgo cannot also hold the Go assembly
// of the pure-Go backend.
package openblas

/*
#cgo LDFLAGS: -lopenblas
void openblas_set_num_threads(int);
char* openblas_get_config(void);
*/
import "C"

import (
	"strings"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/netlib/blas/netlib"
)

func init() {
	// The engine's workers parallelise over the batch; OpenBLAS's own thread
	// pool would fight them for the cores, so every call runs on its
	// caller's thread.
	C.openblas_set_num_threads(1)
}

// Config describes the library (version, kernel, threading).
func Config() string { return strings.TrimSpace(C.GoString(C.openblas_get_config())) }

func tr(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// Sgemm computes C = op(A)·op(B) + beta·C for row-major matrices.
func Sgemm(tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	netlib.Implementation{}.Sgemm(tr(tA), tr(tB), m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
}
