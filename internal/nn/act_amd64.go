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

//go:noescape
func cellBackwardAVX2(gates, dgates, tc, dho, dh, dc, cp unsafe.Pointer, h int)

// cellBackwardRow32 is one row of cellBackward in float32; it reports false
// when it cannot (no AVX2 or H not a multiple of 8).
func cellBackwardRow32(g, cp, tc, dho, dh, dc, dG []float32, H int) bool {
	if !useAsm || H%8 != 0 || H == 0 {
		return false
	}
	_, _, _, _, _ = g[4*H-1], dG[4*H-1], tc[H-1], dho[H-1], dh[H-1]
	_ = dc[H-1]
	var cpp unsafe.Pointer
	if cp != nil {
		_ = cp[H-1]
		cpp = unsafe.Pointer(&cp[0])
	}
	cellBackwardAVX2(unsafe.Pointer(&g[0]), unsafe.Pointer(&dG[0]), unsafe.Pointer(&tc[0]), unsafe.Pointer(&dho[0]),
		unsafe.Pointer(&dh[0]), unsafe.Pointer(&dc[0]), cpp, H)
	return true
}

//go:noescape
func cellInferAVX512(gates, cp, c, h unsafe.Pointer, hn int)

// cellInferRow32 is one row of the LSTM cell in inference (c and h from the
// gate pre-activations g [4H] and the previous cell state cp, nil for a zero
// state) with the bits of cellForward32; g is left as it was and no
// tanh(c) is kept. It reports false when it cannot (no AVX-512 or H not a
// multiple of 16).
func cellInferRow32(g, cp, c, h []float32, H int) bool {
	if !use512 || H%16 != 0 || H == 0 {
		return false
	}
	_, _, _ = g[4*H-1], c[H-1], h[H-1]
	var cpp unsafe.Pointer
	if cp != nil {
		_ = cp[H-1]
		cpp = unsafe.Pointer(&cp[0])
	}
	cellInferAVX512(unsafe.Pointer(&g[0]), cpp, unsafe.Pointer(&c[0]), unsafe.Pointer(&h[0]), H)
	return true
}
