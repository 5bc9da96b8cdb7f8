package features

import (
	"math"
	"slices"
	"testing"

	"github.com/modax/modax-ml/internal/dataset"
)

func TestWindowGrid(t *testing.T) {
	one := func(n int) *dataset.Frame {
		return lifeFrame("t", "d", n, 0, 100, 2, func(s, i int) float64 { return float64(10*s + i) })
	}
	tests := []struct {
		name           string
		frame          func() *dataset.Frame
		window, stride int
		maxGap         int64
		maxFill        int
		wantEnds       []int32
		check          func(t *testing.T, c Counts)
	}{
		{
			// The design's range(0, len−window, stride) gives 7 windows and
			// misses the one ending at the failure.
			name: "stride 1 keeps the last window", frame: func() *dataset.Frame { return one(10) }, window: 3, stride: 1,
			wantEnds: []int32{2, 3, 4, 5, 6, 7, 8, 9},
		},
		{
			name: "window equal to the life", frame: func() *dataset.Frame { return one(5) }, window: 5, stride: 1,
			wantEnds: []int32{4},
		},
		{
			name: "life shorter than the window", frame: func() *dataset.Frame { return one(4) }, window: 5, stride: 1,
			check: func(t *testing.T, c Counts) {
				t.Helper()
				if c.ShortSegments != 1 {
					t.Errorf("short segments = %d, want 1", c.ShortSegments)
				}
			},
		},
		{
			// Anchored at the last reading: ends 9, 6, 3 (not 2, 5, 8).
			name: "stride 3 ends at the last reading", frame: func() *dataset.Frame { return one(10) }, window: 3, stride: 3,
			wantEnds: []int32{3, 6, 9},
		},
		{
			name: "stride larger than the life", frame: func() *dataset.Frame { return one(6) }, window: 2, stride: 10,
			wantEnds: []int32{5},
		},
		{
			name: "never across a failure", window: 3, stride: 1,
			frame:    func() *dataset.Frame { return concat(one(5), one(6)) },
			wantEnds: []int32{2, 3, 4, 7, 8, 9, 10},
			check: func(t *testing.T, c Counts) {
				t.Helper()
				if c.Lives != 2 || c.Segments != 2 {
					t.Errorf("lives %d segments %d, want 2 and 2", c.Lives, c.Segments)
				}
			},
		},
		{
			name: "split at a sampling gap", window: 3, stride: 1, maxGap: 2 * hour,
			frame: func() *dataset.Frame {
				f := one(10)
				for i := 6; i < 10; i++ {
					f.Time[i] += 5 * hour // gap of 6 h between rows 5 and 6
				}
				return f
			},
			wantEnds: []int32{2, 3, 4, 5, 8, 9},
			check: func(t *testing.T, c Counts) {
				t.Helper()
				if c.GapSplits != 1 || c.Lives != 1 || c.Segments != 2 {
					t.Errorf("gap splits %d lives %d segments %d, want 1, 1, 2", c.GapSplits, c.Lives, c.Segments)
				}
			},
		},
		{
			name: "automatic gap: 5 × median interval", window: 3, stride: 1,
			frame: func() *dataset.Frame {
				f := one(10)
				for i := 6; i < 10; i++ {
					f.Time[i] += 5 * hour // 6 h > 5 h
				}
				f.Time[9] += 0
				return f
			},
			wantEnds: []int32{2, 3, 4, 5, 8, 9},
		},
		{
			name: "a gap of exactly max-gap does not split", window: 3, stride: 1, maxGap: 6 * hour,
			frame: func() *dataset.Frame {
				f := one(10)
				for i := 6; i < 10; i++ {
					f.Time[i] += 5 * hour
				}
				return f
			},
			wantEnds: []int32{2, 3, 4, 5, 6, 7, 8, 9},
		},
		{
			name: "censored rows never label a window", window: 3, stride: 1,
			frame: func() *dataset.Frame {
				f := one(10)
				for i := 7; i < 10; i++ {
					f.Censored[i] = true
					f.RULRaw[i] = math.NaN()
				}
				return f
			},
			wantEnds: []int32{2, 3, 4, 5, 6},
			check: func(t *testing.T, c Counts) {
				t.Helper()
				if c.CensoredRows != 3 || c.DroppedCensored != 3 {
					t.Errorf("censored rows %d dropped %d, want 3 and 3", c.CensoredRows, c.DroppedCensored)
				}
			},
		},
		{
			name: "stride anchors at the last uncensored reading", window: 3, stride: 2,
			frame: func() *dataset.Frame {
				f := one(10)
				f.Censored[9] = true
				return f
			},
			wantEnds: []int32{2, 4, 6, 8},
		},
		{
			name: "missing value without fill drops its windows", window: 3, stride: 1, maxFill: 0,
			frame: func() *dataset.Frame {
				f := one(10)
				f.Sensors[1][4] = math.NaN()
				return f
			},
			wantEnds: []int32{2, 3, 7, 8, 9},
			check: func(t *testing.T, c Counts) {
				t.Helper()
				if c.DroppedMissing != 3 || c.MissingValues != 1 || c.FilledValues != 0 {
					t.Errorf("dropped %d missing %d filled %d, want 3, 1, 0", c.DroppedMissing, c.MissingValues, c.FilledValues)
				}
			},
		},
		{
			name: "forward fill up to max-fill", window: 3, stride: 1, maxFill: 2,
			frame: func() *dataset.Frame {
				f := one(12)
				f.Sensors[0][3] = math.NaN()  // filled
				f.Sensors[1][6] = math.Inf(1) // non-finite: filled
				f.Sensors[1][7] = math.NaN()  // filled (2nd)
				f.Sensors[1][8] = math.NaN()  // 3rd in a row: missing
				f.Sensors[0][0] = math.NaN()  // nothing to fill from
				return f
			},
			// Rows 0 and 8 stay missing: windows ending at 2 and at 8..10 go.
			wantEnds: []int32{3, 4, 5, 6, 7, 11},
			check: func(t *testing.T, c Counts) {
				t.Helper()
				if c.FilledValues != 3 || c.MissingValues != 2 || c.DroppedMissing != 4 {
					t.Errorf("filled %d missing %d dropped %d, want 3, 2, 4", c.FilledValues, c.MissingValues, c.DroppedMissing)
				}
			},
		},
		{
			name: "fill does not reach across a failure", window: 2, stride: 1, maxFill: 5,
			frame: func() *dataset.Frame {
				f := concat(one(4), one(4))
				f.Sensors[0][4] = math.NaN() // first row of life 1
				return f
			},
			wantEnds: []int32{1, 2, 3, 6, 7},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &planner{window: tc.window, stride: tc.stride, maxGap: tc.maxGap, maxFill: tc.maxFill}
			f := tc.frame()
			d := p.prepare(0, f)
			if !slices.Equal(d.ends, tc.wantEnds) {
				t.Fatalf("window ends %v, want %v", d.ends, tc.wantEnds)
			}
			for _, e := range d.ends {
				lo := int(e) - tc.window + 1
				if f.LifeID[lo] != f.LifeID[e] {
					t.Fatalf("window ending at %d crosses lives", e)
				}
				for _, col := range d.cols {
					for i := lo; i <= int(e); i++ {
						if math.IsNaN(col[i]) {
							t.Fatalf("window ending at %d holds a missing value at %d", e, i)
						}
					}
				}
			}
			if tc.check != nil {
				tc.check(t, d.c)
			}
		})
	}
}

func TestFillForwardValues(t *testing.T) {
	nan := math.NaN()
	col := []float64{nan, 1, nan, nan, nan, 2, math.Inf(-1)}
	filled, missing := fillForward(col, 2)
	want := []float64{nan, 1, 1, 1, nan, 2, 2}
	for i := range want {
		if !(col[i] == want[i] || math.IsNaN(col[i]) && math.IsNaN(want[i])) {
			t.Fatalf("fill = %v, want %v", col, want)
		}
	}
	if filled != 3 || missing != 2 {
		t.Fatalf("filled %d missing %d, want 3 and 2", filled, missing)
	}
}
