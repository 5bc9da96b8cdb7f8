package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

// TestGemmBackends compares every float32 backend with the reference triple
// loop on shapes around the tile and block sizes, all four transpose cases,
// leading dimensions wider than the matrices, beta 0 and 1, and prepared
// operands.
func TestGemmBackends(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := [][3]int{{1, 1, 1}, {1, 16, 7}, {1, 512, 128}, {3, 5, 2}, {4, 16, 1}, {5, 17, 9}, {16, 512, 128},
		{16, 128, 512}, {13, 64, 9}, {133, 96, 20}, {9, 32, 3}, {4, 128, 5}, {6, 64, 130}, {141, 128, 7}, {33, 14, 400}, {512, 5, 800}, {7, 64, 0}, {0, 3, 4}, {64, 70, kcBlock + 3}}
	for _, name := range Backends() {
		b, err := lookupBackend(name)
		if err != nil {
			t.Fatal(err)
		}
		impl := b.new()
		for _, sh := range shapes {
			m, n, k := sh[0], sh[1], sh[2]
			for _, tA := range []bool{false, true} {
				for _, tB := range []bool{false, true} {
					for _, beta := range []float32{0, 1} {
						for _, prep := range []bool{false, true} {
							t.Run(fmt.Sprintf("%s/%dx%dx%d/tA=%v/tB=%v/beta=%g/prep=%v", name, m, n, k, tA, tB, beta, prep), func(t *testing.T) {
								ar, ac := m, k
								if tA {
									ar, ac = k, m
								}
								br, bc := k, n
								if tB {
									br, bc = n, k
								}
								lda, ldb, ldc := ac+3, bc+1, n+2
								a := randSlice(rng, max(ar*lda, 1))
								bb := randSlice(rng, max(br*ldb, 1))
								c0 := randSlice(rng, max(m*ldc, 1))
								want := append([]float32(nil), c0...)
								got := append([]float32(nil), c0...)
								refBLAS[float32]{}.gemm(tA, tB, m, n, k, a, lda, bb, ldb, beta, want, ldc)
								if prep {
									var o operand[float32]
									o.set(bb, ldb, tB, k, n)
									impl.prepare(&o)
									impl.gemmOp(tA, m, a, lda, &o, beta, got, ldc)
								} else {
									impl.gemm(tA, tB, m, n, k, a, lda, bb, ldb, beta, got, ldc)
								}
								for i := range m {
									for j := range ldc {
										w, g := want[i*ldc+j], got[i*ldc+j]
										if j >= n && g != c0[i*ldc+j] {
											t.Fatalf("C[%d][%d] outside the matrix changed: %g -> %g", i, j, c0[i*ldc+j], g)
										}
										if d := math.Abs(float64(w - g)); d > 1e-4*(1+math.Abs(float64(w)))*math.Sqrt(float64(k+1)) {
											t.Fatalf("C[%d][%d] = %g, want %g", i, j, g, w)
										}
									}
								}
							})
						}
					}
				}
			}
		}
	}
}

// BenchmarkGemm measures the LSTM's product shapes (batch shard m, hidden
// 128) on each backend; GFLOP/s is reported as a metric.
func BenchmarkGemm(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	type shape struct {
		name     string
		tA, tB   bool
		m, n, k  int
		prepared bool
	}
	shapes := []shape{
		{"step-fwd/b16", false, true, 16, 512, 128, true},
		{"step-bwd/b16", false, false, 16, 128, 512, true},
		{"step-fwd/b128", false, true, 128, 512, 128, true},
		{"step-bwd/b128", false, false, 128, 128, 512, true},
		{"gemv-fwd/b1", false, true, 1, 512, 128, true},
		{"proj/T50b16/in128", false, true, 800, 512, 128, false},
		{"dW/T50b16", true, false, 512, 128, 800, false},
		{"dW/T30b128", true, false, 512, 128, 3840, false},
		{"square/256", false, false, 256, 256, 256, false},
	}
	for _, name := range Backends() {
		be, _ := lookupBackend(name)
		impl := be.new()
		for _, s := range shapes {
			b.Run(name+"/"+s.name, func(b *testing.B) {
				ar, ac := s.m, s.k
				if s.tA {
					ar, ac = s.k, s.m
				}
				br, bc := s.k, s.n
				if s.tB {
					br, bc = s.n, s.k
				}
				a, bb, c := randSlice(rng, ar*ac), randSlice(rng, br*bc), make([]float32, s.m*s.n)
				var o operand[float32]
				o.set(bb, bc, s.tB, s.k, s.n)
				impl.prepare(&o)
				b.ReportAllocs()
				c0 := cpuTime()
				for b.Loop() {
					if s.prepared {
						impl.gemmOp(s.tA, s.m, a, ac, &o, 1, c, s.n)
					} else {
						impl.gemm(s.tA, s.tB, s.m, s.n, s.k, a, ac, bb, bc, 1, c, s.n)
					}
				}
				flops := 2 * float64(s.m*s.n*s.k) * float64(b.N)
				b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				if cpu := (cpuTime() - c0).Seconds(); cpu > 0 {
					b.ReportMetric(flops/cpu/1e9, "GFLOP/cpu-s")
				}
			})
		}
	}
}

// TestWideKernelsSameBits: on AVX-512 machines the 8×32, 4×64 and 1×32
// kernels must give every value the bits of the 4×32 and 1×16 kernels they
// replace
// (training's results must not depend on which tile computed them), for A
// packed, Aᵀ in place and A in place, with and without accumulation.
func TestWideKernelsSameBits(t *testing.T) {
	if !use512 {
		t.Skip("no AVX-512 on this machine (or MODAX_NO_AVX512=1)")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, kb := range []int{1, 2, 3, 7, 8, 9, 14, 128, 385} {
		b0, b1 := randSlice(rng, kb*nr), randSlice(rng, kb*nr)
		c0 := randSlice(rng, 8*40)
		for _, acc := range []bool{false, true} {
			// A row-major 8×kb with lda kb+5, and its transpose with lda 11.
			lda := kb + 5
			a := randSlice(rng, 8*lda)
			at := make([]float32, kb*11)
			pk := make([]float32, 2*kb*mr) // two packed 4-row panels
			for r := range 8 {
				for k := range kb {
					at[k*11+r] = a[r*lda+k]
					pk[(r/mr)*kb*mr+k*mr+r%mr] = a[r*lda+k]
				}
			}
			want := append([]float32(nil), c0...)
			kernel4x32(kb, pk, mr, b0, b1, want, 40, acc)
			kernel4x32(kb, pk[kb*mr:], mr, b0, b1, want[4*40:], 40, acc)
			for name, got := range map[string][]float32{
				"packed": run8(kb, pk, pk[kb*mr:], mr, 1, b0, b1, c0, acc),
				"At":     run8(kb, at, at[mr:], 11, 1, b0, b1, c0, acc),
				"A":      run8(kb, a, a[4*lda:], 1, lda, b0, b1, c0, acc),
			} {
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("kb=%d acc=%v %s: c[%d] = %x, 4×32 gives %x", kb, acc, name, i, math.Float32bits(got[i]), math.Float32bits(want[i]))
					}
				}
			}
			// 4×64 against two 4×32 tiles, on panels b0 b1 b1 b0.
			bp := slices.Concat(b0, b1, b1, b0)
			w4 := append([]float32(nil), c0...)
			kernel4x32(kb, pk, mr, b0, b1, w4, 80, acc)
			kernel4x32(kb, pk, mr, b1, b0, w4[2*nr:], 80, acc)
			for name, g4 := range map[string][]float32{"At": append([]float32(nil), c0...), "A": append([]float32(nil), c0...)} {
				if name == "At" {
					kernel4x64(kb, at, 11, 1, bp, g4, 80, acc)
				} else {
					kernel4x64(kb, a, 1, lda, bp, g4, 80, acc)
				}
				for i := range w4 {
					if math.Float32bits(g4[i]) != math.Float32bits(w4[i]) {
						t.Fatalf("kb=%d acc=%v 4×64 %s: c[%d] = %g, 4×32 gives %g", kb, acc, name, i, g4[i], w4[i])
					}
				}
			}
			w1 := append([]float32(nil), c0[:2*nr]...)
			kernel1x16(kb, a, 1, b0, w1, acc)
			kernel1x16(kb, a, 1, b1, w1[nr:], acc)
			g1 := append([]float32(nil), c0[:2*nr]...)
			kernel1x32(kb, a, 1, b0, b1, g1, acc)
			for i := range w1 {
				if math.Float32bits(g1[i]) != math.Float32bits(w1[i]) {
					t.Fatalf("kb=%d acc=%v 1×32: c[%d] = %g, 1×16 gives %g", kb, acc, i, g1[i], w1[i])
				}
			}
		}
	}
}

func run8(kb int, a0, a1 []float32, ks, rs int, b0, b1, c0 []float32, acc bool) []float32 {
	c := append([]float32(nil), c0...)
	kernel8x32(kb, a0, a1, ks, rs, b0, b1, c, 40, acc)
	return c
}
