//go:build !amd64 || purego

package nn

const (
	useAsm  = false
	asmName = ""
)

func kernel4x16(kb int, a, b, c []float32, ldc int, acc bool) { gemmKernelGo(kb, a, b, c, ldc, acc) }

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
