package hiq

import (
	"math"
	"math/rand/v2"
	"testing"
)

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.IsNaN(want) != math.IsNaN(got) || (!math.IsNaN(want) && math.Abs(got-want) > 1e-12) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// Hand-computed values on tiny series.
func TestHandComputed(t *testing.T) {
	// [1 2 3 2]: 2 rises, 1 fall → |2−1|/3; [5 4 3]: 2 falls → 1; [7 7 8]:
	// one tie, one rise → 1/2.
	near(t, "monotonicity", Monotonicity([][]float64{{1, 2, 3, 2}, {5, 4, 3}, {7, 7, 8}}), (1.0/3+1+0.5)/3)
	near(t, "monotonicity of a single point", Monotonicity([][]float64{{4}}), math.NaN())

	// a ~ b (r = 1), a ~ c anti (|r| = 1), a ~ d: deviations (−1,0,1) and
	// (−1,1,0): r = 1/2; b ~ d the same.
	a, b, c, d := []float64{1, 2, 3}, []float64{2, 4, 6}, []float64{3, 2, 1}, []float64{1, 3, 2}
	near(t, "trendability a b c", Trendability([][]float64{a, b, c}), 1)
	near(t, "trendability a b d", Trendability([][]float64{a, b, d}), 0.5)
	// Different lengths: [0 1 2 3 4] resampled to 3 points is [0 2 4];
	// with [0 2 1]: deviations (−2,0,2), (−1,1,0): r = 2/√(8·2) = 1/2.
	near(t, "trendability of unequal lives", Trendability([][]float64{{0, 1, 2, 3, 4}, {0, 2, 1}}), 0.5)
	near(t, "trendability with a constant life", Trendability([][]float64{a, {5, 5, 5}}), 0)
	near(t, "trendability of one life", Trendability([][]float64{a}), math.NaN())

	// Failure values 10, 12, 8: sample std 2; travel 10, 11, 8: mean 29/3.
	near(t, "prognosability", Prognosability([][]float64{{0, 5, 10}, {1, 12}, {0, 3, 8}}), math.Exp(-2/(29.0/3)))
	near(t, "prognosability, same end", Prognosability([][]float64{{0, 10}, {3, 10}}), 1)
	near(t, "prognosability, nothing moves", Prognosability([][]float64{{1, 1}, {1, 1}}), math.NaN())
	near(t, "prognosability, nothing moves, ends apart", Prognosability([][]float64{{1, 1}, {2, 2}}), 0)

	got := Resample(nil, []float64{0, 1, 4, 9}, 3) // at positions 0, 1.5, 3
	if len(got) != 3 || got[0] != 0 || got[1] != 2.5 || got[2] != 9 {
		t.Errorf("resample %v, want [0 2.5 9]", got)
	}
}

// A degrading sensor (a drift toward a common failure value plus noise)
// scores higher than pure noise on all three metrics.
func TestDegradingBeatsNoise(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var degr, noise [][]float64
	for range 20 {
		n := 80 + rng.IntN(80)
		start := rng.Float64()
		dx, nx := make([]float64, n), make([]float64, n)
		for i := range n {
			f := float64(i) / float64(n-1)
			dx[i] = start + (5-start)*f*f + 0.05*rng.NormFloat64()
			nx[i] = rng.NormFloat64()
		}
		degr, noise = append(degr, dx), append(noise, nx)
	}
	for _, m := range []struct {
		name string
		fn   func([][]float64) float64
	}{{"monotonicity", Monotonicity}, {"trendability", Trendability}, {"prognosability", Prognosability}} {
		d, n := m.fn(degr), m.fn(noise)
		t.Logf("%s: degrading %.3f, noise %.3f", m.name, d, n)
		if !(d > n+0.2) {
			t.Errorf("%s: degrading %.3f is not clearly above noise %.3f", m.name, d, n)
		}
	}
}

func TestDecimator(t *testing.T) {
	d := Decimator{Max: 4}
	for i := range 37 {
		d.Add(float64(i))
	}
	v := d.Values()
	if v[0] != 0 || v[len(v)-1] != 36 || len(v) > 9 {
		t.Fatalf("values %v", v)
	}
	for i := 1; i < len(v)-1; i++ {
		if v[i]-v[i-1] != v[1]-v[0] {
			t.Fatalf("uneven %v", v)
		}
	}
	e := Decimator{Max: 100}
	for i := range 5 {
		e.Add(float64(i))
	}
	if v := e.Values(); len(v) != 5 || v[4] != 4 {
		t.Fatalf("short stream %v", v)
	}
}
