//go:build amd64 && !purego

package nn

import "unsafe"

//go:noescape
func sigmoidAVX2(dst, src unsafe.Pointer, n int)

//go:noescape
func tanhAVX2(dst, src unsafe.Pointer, n int)

// sigmoidVec sets dst[i] = σ(src[i]) (len(dst) ≥ len(src)).
func sigmoidVec(dst, src []float32) {
	n := len(src)
	if useAsm && n >= 8 {
		_ = dst[n-1]
		v := n &^ 7
		sigmoidAVX2(unsafe.Pointer(&dst[0]), unsafe.Pointer(&src[0]), v)
		src, dst = src[v:], dst[v:]
	}
	for i, x := range src {
		dst[i] = 1 / (1 + expf(-x))
	}
}

// tanhVec sets dst[i] = tanh(src[i]) (len(dst) ≥ len(src)).
func tanhVec(dst, src []float32) {
	n := len(src)
	if useAsm && n >= 8 {
		_ = dst[n-1]
		v := n &^ 7
		tanhAVX2(unsafe.Pointer(&dst[0]), unsafe.Pointer(&src[0]), v)
		src, dst = src[v:], dst[v:]
	}
	for i, x := range src {
		dst[i] = 1 - 2/(expf(2*x)+1)
	}
}
