package nn

import (
	"math"
	"unsafe"
)

// Activation functions. float64 uses the math package (exact to the last
// bit or two: the finite-difference checks run there); float32 uses a
// Cephes-style exp (max error about 1 ulp on the reduced range) so that the
// LSTM's 5·H transcendental functions per time step and sample stay cheap.

func is32[T Float]() bool {
	var z T
	return unsafe.Sizeof(z) == 4
}

// expf is exp for float32 arguments, clamped to [ln(min normal), ln(max
// float32)) so that 2^n stays a normal number. The vector version in
// act_amd64.s computes the same polynomial.
func expf(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		c1    = 0.693359375
		c2    = -2.12194440e-4
	)
	x = min(max(x, -87.3365447505531), 88.3762626647949)
	fn := float32(math.RoundToEven(float64(x * log2e)))
	r := x - fn*c1 - fn*c2
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	y := p*r*r + r + 1
	return y * math.Float32frombits(uint32(int32(fn)+127)<<23)
}

func sigmoid[T Float](x T) T {
	if is32[T]() {
		return T(1 / (1 + expf(-float32(x))))
	}
	return T(1 / (1 + math.Exp(-float64(x))))
}

func tanh[T Float](x T) T {
	if is32[T]() {
		e := expf(2 * float32(x))
		return T(1 - 2/(e+1))
	}
	return T(math.Tanh(float64(x)))
}
