//go:build amd64 && !purego

package nn

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

var (
	useAsm  = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	asmName = "avx2+fma"
)

//go:noescape
func kern4x16avx2(k int, a, b, c unsafe.Pointer, ldc int, acc bool)

//go:noescape
func kern1x16avx2(k int, a unsafe.Pointer, astride int, b, c unsafe.Pointer, acc bool)

// kernel4x16 computes the 4×16 tile c (leading dimension ldc) (+)= A·B from
// packed panels a (kb×mr) and b (kb×nr). Callers guarantee the bounds.
func kernel4x16(kb int, a, b, c []float32, ldc int, acc bool) {
	if !useAsm {
		gemmKernelGo(kb, a, b, c, ldc, acc)
		return
	}
	_ = a[kb*mr-1]
	_ = b[kb*nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	kern4x16avx2(kb, unsafe.Pointer(&a[0]), unsafe.Pointer(&b[0]), unsafe.Pointer(&c[0]), ldc, acc)
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
	kern1x16avx2(kb, unsafe.Pointer(&a[0]), astride, unsafe.Pointer(&b[0]), unsafe.Pointer(&c[0]), acc)
}
