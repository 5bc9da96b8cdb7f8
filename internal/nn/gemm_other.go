//go:build !amd64 || purego

package nn

const (
	useAsm  = false
	use512  = false
	asmName = ""
)

func kernel4x32(kb int, a []float32, astride int, b0, b1, c []float32, ldc int, acc bool) {
	panic("nn: kernel4x32 without AVX-512")
}

func kernel8x32(kb int, a0, a1 []float32, ks, rs int, b0, b1, c []float32, ldc int, acc bool) {
	panic("nn: kernel8x32 without AVX-512")
}

func kernel4x64(kb int, a []float32, ks, rs int, bp []float32, c []float32, ldc int, acc bool) {
	panic("nn: kernel4x64 without AVX-512")
}

func kernel1x32(kb int, a []float32, astride int, b0, b1, c []float32, acc bool) {
	panic("nn: kernel1x32 without AVX-512")
}

func kernel4x16(kb int, a []float32, astride int, b, c []float32, ldc int, acc bool) {
	gemmKernelGo(kb, a, astride, b, c, ldc, acc)
}

func kernel1x16(kb int, a []float32, astride int, b, c []float32, acc bool) {
	gemvKernelGo(kb, a, astride, b, c, acc)
}

func sigmoidVec(dst, src []float32) {
	for i, x := range src {
		dst[i] = 1 / (1 + expf(-x))
	}
}

func tanhVec(dst, src []float32) {
	for i, x := range src {
		dst[i] = 1 - 2/(expf(2*x)+1)
	}
}

func cellBackwardRow32(g, cp, tc, dho, dh, dc, dG []float32, H int) bool { return false }

func cellInferRow32(g, cp, c, h []float32, H int) bool { return false }
