package conformal

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func seq(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(i + 1)
	}
	return out
}

// TestQuantile checks k = ⌈(n+1)·level⌉ on hand-computed cases.
func TestQuantile(t *testing.T) {
	for _, c := range []struct {
		n     int
		level float64
		want  float64
	}{
		{9, 0.9, 9},           // ⌈10·0.9⌉ = 9 (not 10: float rounding of 9.000000000000002)
		{9, 0.8, 8},           // ⌈8⌉ = 8
		{9, 0.5, 5},           // ⌈5⌉ = 5
		{8, 0.9, math.Inf(1)}, // ⌈8.1⌉ = 9 > 8
		{8, 0.8, 8},           // ⌈7.2⌉ = 8
		{19, 0.9, 18},         // ⌈18⌉ = 18
		{20, 0.9, 19},         // ⌈18.9⌉ = 19
		{99, 0.9, 90},         // ⌈90⌉ = 90
		{100, 0.9, 91},        // ⌈90.9⌉ = 91
		{1, 0.4, 1},           // ⌈0.8⌉ = 1
		{1, 0.5, 1},           // ⌈1⌉ = 1
		{1, 0.6, math.Inf(1)},
	} {
		if got := Quantile(seq(c.n), c.level); got != c.want {
			t.Errorf("Quantile(1..%d, %g) = %g, want %g", c.n, c.level, got, c.want)
		}
	}
}

// TestCalibrateOneBucket: residuals 1..9 in one bucket; the 0.8 and 0.9
// radii are the 8th and 9th smallest, and the interval is clipped; a
// prediction outside [0, horizon] is clipped before its interval is taken.
func TestCalibrateOneBucket(t *testing.T) {
	pred := []float64{50, 50, 50, 50, 50, 50, 50, 50, 50}
	truth := []float64{51, 48, 53, 46, 55, 56, 43, 58, 59} // |r| = 1..9
	c, err := Calibrate(pred, truth, []float64{0.9, 0.8}, 100, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Levels, []float64{0.8, 0.9}) || len(c.Buckets) != 1 || c.N != 9 {
		t.Fatalf("calibration %+v", c)
	}
	if got := c.Buckets[0].Radius; !slices.Equal(got, []Radius{8, 9}) {
		t.Fatalf("radii %v, want [8 9]", got)
	}
	for _, cs := range []struct {
		pred, level, lo, hi float64
	}{
		{50, 0.9, 41, 59}, {50, 0.8, 42, 58}, {3, 0.9, 0, 12}, {95, 0.9, 86, 100}, {-2, 0.8, 0, 8}, {120, 0.8, 92, 100}, {100, 0.9, 91, 100},
	} {
		lo, hi, err := Interval(cs.pred, c, cs.level)
		if err != nil || lo != cs.lo || hi != cs.hi {
			t.Errorf("Interval(%g, %g) = %g, %g, %v; want %g, %g", cs.pred, cs.level, lo, hi, err, cs.lo, cs.hi)
		}
	}
	if _, _, err := Interval(50, c, 0.95); !errors.Is(err, ErrLevel) {
		t.Errorf("level 0.95: err %v, want ErrLevel", err)
	}
	if _, _, err := Interval(50, nil, 0.9); !errors.Is(err, ErrLevel) {
		t.Errorf("nil calibration: err %v, want ErrLevel", err)
	}
}

// TestCalibrateBuckets: two strata of 4 windows each (MinPerBucket 4), the
// edge midway between them, each with its own radius; an unbounded radius
// gives [0, horizon] and round-trips through JSON as null.
func TestCalibrateBuckets(t *testing.T) {
	pred := []float64{80, 10, 12, 82, 11, 81, 13, 83}
	truth := []float64{70, 11, 10, 92, 14, 61, 9, 83} // near: |r| 1,2,3,4; far: 10,10,20,0
	c, err := Calibrate(pred, truth, []float64{0.5, 0.8}, 100, Options{MaxBuckets: 3, MinPerBucket: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Buckets) != 2 {
		t.Fatalf("%d buckets, want 2: %+v", len(c.Buckets), c.Buckets)
	}
	b0, b1 := c.Buckets[0], c.Buckets[1]
	if b0.Lo != 0 || b0.Hi != 46.5 || b1.Lo != 46.5 || b1.Hi != 100 || b0.N != 4 || b1.N != 4 {
		t.Fatalf("buckets %+v", c.Buckets)
	}
	// n = 4: level 0.5 → k = ⌈2.5⌉ = 3; level 0.8 → k = ⌈4⌉ = 4.
	if !slices.Equal(b0.Radius, []Radius{3, 4}) || !slices.Equal(b1.Radius, []Radius{10, 20}) {
		t.Fatalf("radii %v %v, want [3 4] [10 20]", b0.Radius, b1.Radius)
	}
	if lo, hi, _ := Interval(40, c, 0.5); lo != 37 || hi != 43 {
		t.Errorf("Interval(40) = %g, %g; want 37, 43 (near bucket)", lo, hi)
	}
	if lo, hi, _ := Interval(46.5, c, 0.5); lo != 36.5 || hi != 56.5 {
		t.Errorf("Interval(46.5) = %g, %g; want 36.5, 56.5 (far bucket starts at the edge)", lo, hi)
	}

	c2, err := Calibrate(pred, truth, []float64{0.9}, 100, Options{MaxBuckets: 3, MinPerBucket: 4})
	if err != nil {
		t.Fatal(err)
	}
	if lo, hi, _ := Interval(50, c2, 0.9); lo != 0 || hi != 100 {
		t.Errorf("unbounded radius: %g, %g; want 0, 100", lo, hi)
	}
	b, err := json.Marshal(c2)
	if err != nil {
		t.Fatal(err)
	}
	var back Calibration
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Validate(); err != nil {
		t.Fatal(err)
	}
	if !math.IsInf(float64(back.Buckets[0].Radius[0]), 1) {
		t.Errorf("JSON %s: radius %v, want +Inf back", b, back.Buckets[0].Radius)
	}
}

// TestCalibrateTies: a cut never separates equal predictions.
func TestCalibrateTies(t *testing.T) {
	pred := []float64{1, 1, 1, 1, 1, 1, 2, 3}
	truth := slices.Clone(pred)
	c, err := Calibrate(pred, truth, []float64{0.5}, 10, Options{MaxBuckets: 2, MinPerBucket: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Buckets) != 2 || c.Buckets[0].N != 6 || c.Buckets[1].Lo != 1.5 {
		t.Fatalf("buckets %+v, want 6 ones then [1.5, 10)", c.Buckets)
	}
}

func TestCalibrateErrors(t *testing.T) {
	for name, f := range map[string]func() error{
		"lengths": func() error { _, err := Calibrate([]float64{1}, nil, []float64{0.9}, 1, Options{}); return err },
		"empty":   func() error { _, err := Calibrate(nil, nil, []float64{0.9}, 1, Options{}); return err },
		"nan": func() error {
			_, err := Calibrate([]float64{math.NaN()}, []float64{1}, []float64{0.9}, 1, Options{})
			return err
		},
		"level 1":  func() error { _, err := Calibrate([]float64{1}, []float64{1}, []float64{1}, 1, Options{}); return err },
		"level 0":  func() error { _, err := Calibrate([]float64{1}, []float64{1}, []float64{0}, 1, Options{}); return err },
		"no level": func() error { _, err := Calibrate([]float64{1}, []float64{1}, nil, 1, Options{}); return err },
		"horizon": func() error {
			_, err := Calibrate([]float64{1}, []float64{1}, []float64{0.9}, 0, Options{})
			return err
		},
	} {
		if f() == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseLevels(t *testing.T) {
	got, err := ParseLevels("0.9, 0.8")
	if err != nil || !slices.Equal(got, []float64{0.8, 0.9}) {
		t.Fatalf("ParseLevels = %v, %v", got, err)
	}
	for _, s := range []string{"", "0.9,", "90", "0", "1", "0.9,0.9", "x", "NaN"} {
		if _, err := ParseLevels(s); err == nil {
			t.Errorf("ParseLevels(%q): no error", s)
		}
	}
}

// synth draws windows whose residual grows with the true RUL (as a real
// model's does: near failure it is sure, at the cap it is not).
func synth(rng *rand.Rand, n int, horizon float64) (pred, truth []float64) {
	for range n {
		y := rng.Float64() * horizon
		p := y + rng.NormFloat64()*(2+0.2*y)
		pred, truth = append(pred, p), append(truth, y)
	}
	return pred, truth
}

// TestCoverageSynthetic: on exchangeable data the empirical coverage of
// fresh windows is the nominal one, overall and within each bucket, and
// Mondrian stratification makes intervals near failure narrower than at
// the cap.
func TestCoverageSynthetic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const horizon = 100.0
	cp, ct := synth(rng, 4000, horizon)
	c, err := Calibrate(cp, ct, []float64{0.8, 0.9}, horizon, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Buckets) != DefaultMaxBuckets {
		t.Fatalf("%d buckets, want %d", len(c.Buckets), DefaultMaxBuckets)
	}
	if first, last := c.Buckets[0].Radius[1], c.Buckets[len(c.Buckets)-1].Radius[1]; !(first < last/2) {
		t.Errorf("90%% radius near failure %g, at the cap %g: want the first under half the last", first, last)
	}
	tp, tt := synth(rng, 40000, horizon)
	for _, level := range c.Levels {
		cov, err := Measure(c, level, tp, tt, nil)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(cov.Coverage-level) > 0.015 {
			t.Errorf("level %g: coverage %.4f over %d windows", level, cov.Coverage, cov.N)
		}
		for b := range c.Buckets {
			cb, _ := Measure(c, level, tp, tt, func(i int) bool { return c.BucketOf(tp[i]) == b })
			if math.Abs(cb.Coverage-level) > 0.03 {
				t.Errorf("level %g bucket %d: coverage %.4f over %d windows", level, b, cb.Coverage, cb.N)
			}
		}
	}
}

// TestClipConsistent: for any model output, in range or not, the reported
// point Clip(p) and its interval satisfy 0 ≤ lower ≤ point ≤ upper ≤
// horizon, at every level and bucket, bounded radius or not.
func TestClipConsistent(t *testing.T) {
	const horizon = 125
	var pred, truth []float64
	for i := range 400 {
		p := float64(i%140) - 5
		pred = append(pred, p)
		truth = append(truth, Clip(p+float64(i%17)-8, horizon))
	}
	c, err := Calibrate(pred, truth, []float64{0.5, 0.9, 0.999}, horizon, Options{MinPerBucket: 50})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Buckets) < 2 || !math.IsInf(float64(c.Buckets[0].Radius[2]), 1) {
		t.Fatalf("calibration %+v: want several buckets and an unbounded radius at 0.999", c)
	}
	for _, p := range []float64{math.Inf(-1), -1e9, -300, -0.001, 0, 0.5, 7, 62.5, 124.9, 125, 125.001, 400, 1e12, math.Inf(1)} {
		point := Clip(p, horizon)
		if point < 0 || point > horizon {
			t.Errorf("Clip(%g) = %g, outside [0, %d]", p, point, horizon)
		}
		for _, level := range c.Levels {
			lo, hi, err := Interval(p, c, level)
			if err != nil || !(lo >= 0 && lo <= point && point <= hi && hi <= horizon) {
				t.Errorf("Interval(%g, %g) = [%g, %g] for the point %g: want 0 ≤ lower ≤ point ≤ upper ≤ %d (err %v)", p, level, lo, hi, point, horizon, err)
			}
		}
	}
	if got := Clip(-3, 0); got != 0 {
		t.Errorf("Clip(-3) without a horizon = %g, want 0", got)
	}
	if got := Clip(1e6, 0); got != 1e6 {
		t.Errorf("Clip(1e6) without a horizon = %g, want 1e6 (no upper bound)", got)
	}
}

// TestCalibrateClips: the residuals are those of the clipped predictions
// (the ones reported): outputs below 0 and above the horizon whose clipped
// values hit the truth exactly give radius 0.
func TestCalibrateClips(t *testing.T) {
	pred := []float64{-10, -20, -5, 130, 150, 111, 0, 100}
	truth := []float64{0, 0, 0, 100, 100, 100, 0, 100}
	c, err := Calibrate(pred, truth, []float64{0.8}, 100, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Buckets[0].Radius[0]; r != 0 {
		t.Errorf("radius %g, want 0: the clipped predictions are exact", float64(r))
	}
}
