//go:build amd64 && !purego

package nn

import (
	"os"
	"unsafe"

	"golang.org/x/sys/cpu"
)

var (
	useAsm  = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	use512  = useAsm && cpu.X86.HasAVX512F && !noAVX512
	asmName = func() string {
		if use512 {
			return "avx512f+avx2+fma"
		}
		return "avx2+fma"
	}()
)

// noAVX512 is set by the environment variable MODAX_NO_AVX512=1 (to compare
// the AVX2 kernels on AVX-512 machines).
var noAVX512 = os.Getenv("MODAX_NO_AVX512") == "1"

//go:noescape
func kern4x16avx2(k int, a unsafe.Pointer, astride int, b, c unsafe.Pointer, ldc int, acc bool)

//go:noescape
func kern1x16avx512(k int, a unsafe.Pointer, astride int, b, c unsafe.Pointer, acc bool)

//go:noescape
func kern1x16avx2(k int, a unsafe.Pointer, astride int, b, c unsafe.Pointer, acc bool)

//go:noescape
func kern4x32avx512(k int, a unsafe.Pointer, astride int, b0, b1, c unsafe.Pointer, ldc int, acc bool)

//go:noescape
func kern8x32avx512(k int, a0, a1 unsafe.Pointer, ks, rs int, b0, b1, c unsafe.Pointer, ldc int, acc bool)

//go:noescape
func kern1x32avx512(k int, a unsafe.Pointer, astride int, b0, b1, c unsafe.Pointer, acc bool)

//go:noescape
func kern4x64avx512(k int, a unsafe.Pointer, ks, rs int, b0, b1, b2, b3, c unsafe.Pointer, ldc int, acc bool)

// kernel4x64 computes the 4×64 tile c (+)= A·[B0 B1 B2 B3] (AVX-512
// machines only): row r of A at step k is a[k*ks+r*rs]. Every value of c
// gets the bits kernel4x32 gives it.
func kernel4x64(kb int, a []float32, ks, rs int, bp []float32, c []float32, ldc int, acc bool) {
	_ = a[(kb-1)*ks+3*rs]
	_ = bp[4*kb*nr-1]
	_ = c[3*ldc+4*nr-1]
	pb := kb * nr
	kern4x64avx512(kb, unsafe.Pointer(&a[0]), ks, rs, unsafe.Pointer(&bp[0]), unsafe.Pointer(&bp[pb]), unsafe.Pointer(&bp[2*pb]),
		unsafe.Pointer(&bp[3*pb]), unsafe.Pointer(&c[0]), ldc, acc)
}

// kernel8x32 computes the 8×32 tile c (+)= A·[B0 B1] (AVX-512 machines
// only): row r < 4 of A at step k is a0[k*ks+r*rs], row 4+r is
// a1[k*ks+r*rs]. Every value of c gets the bits kernel4x32 gives it.
func kernel8x32(kb int, a0, a1 []float32, ks, rs int, b0, b1, c []float32, ldc int, acc bool) {
	_ = a0[(kb-1)*ks+3*rs]
	_ = a1[(kb-1)*ks+3*rs]
	_ = b0[kb*nr-1]
	_ = b1[kb*nr-1]
	_ = c[7*ldc+2*nr-1]
	kern8x32avx512(kb, unsafe.Pointer(&a0[0]), unsafe.Pointer(&a1[0]), ks, rs, unsafe.Pointer(&b0[0]), unsafe.Pointer(&b1[0]),
		unsafe.Pointer(&c[0]), ldc, acc)
}

// kernel1x32 is two kernel1x16 calls on adjacent column panels in one pass
// over a (AVX-512 machines only), with the same bits.
func kernel1x32(kb int, a []float32, astride int, b0, b1, c []float32, acc bool) {
	_ = a[(kb-1)*astride]
	_ = b0[kb*nr-1]
	_ = b1[kb*nr-1]
	_ = c[2*nr-1]
	kern1x32avx512(kb, unsafe.Pointer(&a[0]), astride, unsafe.Pointer(&b0[0]), unsafe.Pointer(&b1[0]), unsafe.Pointer(&c[0]), acc)
}

// kernel4x32 computes the 4×32 tile c (+)= A·[B0 B1] from an A panel whose
// four values of step k start at a[k*astride] (astride mr when packed) and
// two packed B panels (AVX-512 machines only; see use512).
func kernel4x32(kb int, a []float32, astride int, b0, b1, c []float32, ldc int, acc bool) {
	_ = a[(kb-1)*astride+mr-1]
	_ = b0[kb*nr-1]
	_ = b1[kb*nr-1]
	_ = c[(mr-1)*ldc+2*nr-1]
	kern4x32avx512(kb, unsafe.Pointer(&a[0]), astride, unsafe.Pointer(&b0[0]), unsafe.Pointer(&b1[0]), unsafe.Pointer(&c[0]), ldc, acc)
}

// kernel4x16 computes the 4×16 tile c (leading dimension ldc) (+)= A·B from
// packed panels a (kb×mr) and b (kb×nr). Callers guarantee the bounds.
func kernel4x16(kb int, a []float32, astride int, b, c []float32, ldc int, acc bool) {
	if !useAsm {
		gemmKernelGo(kb, a, astride, b, c, ldc, acc)
		return
	}
	_ = a[(kb-1)*astride+mr-1]
	_ = b[kb*nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	kern4x16avx2(kb, unsafe.Pointer(&a[0]), astride, unsafe.Pointer(&b[0]), unsafe.Pointer(&c[0]), ldc, acc)
}

// kernel1x16 computes one row: c[0:16] (+)= a[0], a[astride], ... times b.
func kernel1x16(kb int, a []float32, astride int, b, c []float32, acc bool) {
	if !useAsm {
		gemvKernelGo(kb, a, astride, b, c, acc)
		return
	}
	_ = a[(kb-1)*astride]
	_ = b[kb*nr-1]
	_ = c[nr-1]
	if use512 {
		kern1x16avx512(kb, unsafe.Pointer(&a[0]), astride, unsafe.Pointer(&b[0]), unsafe.Pointer(&c[0]), acc)
		return
	}
	kern1x16avx2(kb, unsafe.Pointer(&a[0]), astride, unsafe.Pointer(&b[0]), unsafe.Pointer(&c[0]), acc)
}
