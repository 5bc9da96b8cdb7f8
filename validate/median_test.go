package validate

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestMedian(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for n := 1; n < 300; n++ {
		for _, kind := range []string{"random", "few values", "constant", "sorted"} {
			xs := make([]float64, n)
			for i := range xs {
				switch kind {
				case "random":
					xs[i] = rng.NormFloat64()
				case "few values":
					xs[i] = float64(rng.IntN(3))
				case "constant":
					xs[i] = 600
				case "sorted":
					xs[i] = float64(i)
				}
			}
			s := slices.Clone(xs)
			slices.Sort(s)
			want := s[n/2]
			if n%2 == 0 {
				want = s[n/2-1] + (s[n/2]-s[n/2-1])/2
			}
			if got := median(xs); got != want {
				t.Fatalf("%s n=%d: median %g, want %g", kind, n, got, want)
			}
		}
	}
}

func TestSpikes(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	n := 300
	xs := make([]float64, n)
	for i := range xs {
		// Accelerating degradation and a load step: a global median/MAD
		// would flag both.
		xs[i] = 100 + 0.001*float64(i*i)/10 + rng.NormFloat64()
		if i >= 200 {
			xs[i] += 40
		}
	}
	var got []int
	emit := func(i int, score, scale float64) { got = append(got, i) }
	spikes(xs, 6, nil, nil, emit)
	if len(got) != 0 {
		t.Fatalf("trend or step flagged at %v", got)
	}
	xs[150] += 15
	xs[80] -= 12
	spikes(xs, 6, nil, nil, emit)
	if !slices.Equal(got, []int{80, 150}) {
		t.Fatalf("spikes flagged at %v, want [80 150]", got)
	}
	got = nil
	flat := make([]float64, 50)
	flat[20] = 1
	spikes(flat, 6, nil, nil, emit)
	if len(got) != 0 {
		t.Fatalf("constant series (MAD 0) flagged at %v", got)
	}
	spikes(xs[:2], 6, nil, nil, emit)
	if len(got) != 0 {
		t.Fatalf("two values flagged at %v", got)
	}
	// A value next to a gap is not judged against the far side of the gap.
	xs[150] -= 15
	xs[81] -= 30 // after a gap at 81: 80 and 81 both look like spikes without it
	got = nil
	spikes(xs, 6, func(i int) bool { return i == 81 }, nil, emit)
	if len(got) != 0 {
		t.Fatalf("flagged across a gap at %v", got)
	}
}
