package rul

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/modax/modax-ml/internal/dataset"
)

// hours converts hours to microseconds.
func hours(xs ...float64) []int64 {
	out := make([]int64, len(xs))
	for i, x := range xs {
		out[i] = int64(math.Round(x * MicrosPerHour))
	}
	return out
}

const (
	C = dataset.Critical
	W = dataset.Warning
	N = dataset.Normal
)

var nan = math.NaN()

func label(t *testing.T, times, failures []int64, r Rules) (Labels, Stats) {
	t.Helper()
	out := Labels{}.Resize(len(times))
	st, err := Label(times, FailureTimes(failures), r, out)
	if err != nil {
		t.Fatal(err)
	}
	return out, st
}

func TestLabelRules(t *testing.T) {
	def := DefaultRules()
	cmapss := Rules{Horizon: 125, Thresholds: dataset.Thresholds{Critical: 15, Warning: 30}}
	for _, tc := range []struct {
		name     string
		rules    Rules
		readings []float64 // hours
		failures []float64 // hours, in the order the events arrive
		rul, raw []float64
		health   []dataset.Health
		censored []bool
		life     []int32
		stats    Stats
	}{
		{
			name:     "one failure, cap and thresholds at their boundaries",
			rules:    def,
			readings: []float64{0, 50, 100, 150, 190, 195, 200},
			failures: []float64{200},
			rul:      []float64{100, 100, 100, 50, 10, 5, 0},
			raw:      []float64{200, 150, 100, 50, 10, 5, 0},
			health:   []dataset.Health{N, N, N, N, W, C, C},
			censored: []bool{false, false, false, false, false, false, false},
			life:     []int32{0, 0, 0, 0, 0, 0, 0},
			stats:    Stats{Rows: 7, Lives: 1, Failures: 1, Health: [3]int64{2, 1, 4}},
		},
		{
			name:     "events in random order, several lives, reading at a failure ends its life",
			rules:    def,
			readings: []float64{50, 100, 150, 250, 300, 350},
			failures: []float64{300, 100, 200},
			rul:      []float64{50, 0, 50, 50, 0, 0},
			raw:      []float64{50, 0, 50, 50, 0, nan},
			health:   []dataset.Health{N, C, N, N, C, C},
			censored: []bool{false, false, false, false, false, true},
			life:     []int32{0, 0, 1, 2, 2, 3},
			stats:    Stats{Rows: 6, Lives: 4, Failures: 3, Censored: 1, Health: [3]int64{3, 0, 3}},
		},
		{
			name:     "simultaneous failures are one failure",
			rules:    def,
			readings: []float64{90, 100, 150},
			failures: []float64{200, 100, 100},
			rul:      []float64{10, 0, 50},
			raw:      []float64{10, 0, 50},
			health:   []dataset.Health{W, C, N},
			censored: []bool{false, false, false},
			life:     []int32{0, 0, 1},
			stats:    Stats{Rows: 3, Lives: 2, Failures: 2, Health: [3]int64{1, 1, 1}},
		},
		{
			name:     "failures without readings before them take no life",
			rules:    def,
			readings: []float64{50, 90, 130, 240},
			failures: []float64{120, 10, 100},
			rul:      []float64{50, 10, 100, 0},
			raw:      []float64{50, 10, nan, nan},
			health:   []dataset.Health{N, W, N, C},
			censored: []bool{false, false, false, true},
			life:     []int32{0, 0, 1, 1},
			stats:    Stats{Rows: 4, Lives: 2, Failures: 3, FailuresWithoutReadings: 2, Censored: 1, ExactCapped: 1, Health: [3]int64{1, 1, 2}},
		},
		{
			name:     "no failures: censored only where the bound is below the horizon",
			rules:    def,
			readings: []float64{0, 50, 100, 150, 195, 200},
			rul:      []float64{100, 100, 100, 50, 5, 0},
			raw:      []float64{nan, nan, nan, nan, nan, nan},
			health:   []dataset.Health{N, N, N, N, C, C},
			censored: []bool{false, false, false, true, true, true},
			life:     []int32{0, 0, 0, 0, 0, 0},
			stats:    Stats{Rows: 6, Lives: 1, Censored: 3, ExactCapped: 3, Health: [3]int64{2, 0, 4}},
		},
		{
			name:     "after the last failure: bound equal to the horizon is exact",
			rules:    def,
			readings: []float64{0, 10, 60, 110},
			failures: []float64{0},
			rul:      []float64{0, 100, 50, 0},
			raw:      []float64{0, nan, nan, nan},
			health:   []dataset.Health{C, N, N, C},
			censored: []bool{false, false, true, true},
			life:     []int32{0, 1, 1, 1},
			stats:    Stats{Rows: 4, Lives: 2, Failures: 1, Censored: 2, ExactCapped: 1, Health: [3]int64{2, 0, 2}},
		},
		{
			name:     "failure after the last reading: labels exact, nothing censored",
			rules:    def,
			readings: []float64{0, 100, 460},
			failures: []float64{500},
			rul:      []float64{100, 100, 40},
			raw:      []float64{500, 400, 40},
			health:   []dataset.Health{N, N, W},
			censored: []bool{false, false, false},
			life:     []int32{0, 0, 0},
			stats:    Stats{Rows: 3, Lives: 1, Failures: 1, Health: [3]int64{0, 1, 2}},
		},
		{
			name:     "duplicate reading times share their label",
			rules:    def,
			readings: []float64{95, 95, 100, 100},
			failures: []float64{100},
			rul:      []float64{5, 5, 0, 0},
			raw:      []float64{5, 5, 0, 0},
			health:   []dataset.Health{C, C, C, C},
			censored: []bool{false, false, false, false},
			life:     []int32{0, 0, 0, 0},
			stats:    Stats{Rows: 4, Lives: 1, Failures: 1, Health: [3]int64{4, 0, 0}},
		},
		{
			name:     "C-MAPSS style: cycles as hours, horizon 125",
			rules:    cmapss,
			readings: []float64{1, 2, 70, 180, 186, 192},
			failures: []float64{192},
			rul:      []float64{125, 125, 122, 12, 6, 0},
			raw:      []float64{191, 190, 122, 12, 6, 0},
			health:   []dataset.Health{N, N, N, C, C, C},
			censored: []bool{false, false, false, false, false, false},
			life:     []int32{0, 0, 0, 0, 0, 0},
			stats:    Stats{Rows: 6, Lives: 1, Failures: 1, Health: [3]int64{3, 0, 3}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, st := label(t, hours(tc.readings...), hours(tc.failures...), tc.rules)
			for i := range tc.readings {
				if !approx(got.RUL[i], tc.rul[i]) || !approx(got.Raw[i], tc.raw[i]) || got.Health[i] != tc.health[i] ||
					got.Censored[i] != tc.censored[i] || got.Life[i] != tc.life[i] {
					t.Errorf("reading at %gh: rul %g raw %g %s censored %v life %d; want rul %g raw %g %s censored %v life %d",
						tc.readings[i], got.RUL[i], got.Raw[i], got.Health[i], got.Censored[i], got.Life[i],
						tc.rul[i], tc.raw[i], tc.health[i], tc.censored[i], tc.life[i])
				}
			}
			if st != tc.stats {
				t.Errorf("stats %+v, want %+v", st, tc.stats)
			}
		})
	}
}

func approx(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= 1e-9*max(1, math.Abs(b))
}

func TestLabelEdgeCases(t *testing.T) {
	r := DefaultRules()
	st, err := Label(nil, FailureTimes(hours(5, 1, 5)), r, Labels{})
	if err != nil || st != (Stats{Failures: 2, FailuresWithoutReadings: 2}) {
		t.Fatalf("no readings: %+v %v", st, err)
	}
	out := Labels{}.Resize(3)
	_, err = Label(hours(0, 2, 1), nil, r, out)
	if !errors.Is(err, ErrUnsorted) {
		t.Fatalf("unsorted readings after the last failure: err %v", err)
	}
	_, err = Label(hours(0, 2, 1), hours(10), r, out)
	if !errors.Is(err, ErrUnsorted) {
		t.Fatalf("unsorted readings before a failure: err %v", err)
	}
	for _, bad := range []Rules{
		{Horizon: 0, Thresholds: dataset.DefaultThresholds},
		{Horizon: math.Inf(1), Thresholds: dataset.DefaultThresholds},
		{Horizon: math.NaN(), Thresholds: dataset.DefaultThresholds},
		{Horizon: 100, Thresholds: dataset.Thresholds{Critical: 50, Warning: 10}},
	} {
		if bad.Validate() == nil {
			t.Errorf("rules %+v accepted", bad)
		}
	}
}

// naive is the definition, written as plainly as possible: for each reading,
// the smallest failure time at or after it, searched over the events as given.
func naive(times, events []int64, r Rules) Labels {
	out := Labels{}.Resize(len(times))
	end := times[len(times)-1]
	var lastFailure int64 = math.MinInt64
	for _, f := range events {
		lastFailure = max(lastFailure, f)
	}
	for i, t := range times {
		next := int64(math.MaxInt64)
		found := false
		for _, f := range events {
			if f >= t && f < next {
				next, found = f, true
			}
		}
		if found {
			out.Raw[i] = float64(next-t) / MicrosPerHour
			out.RUL[i] = min(out.Raw[i], r.Horizon)
		} else {
			out.Raw[i] = math.NaN()
			lb := float64(end-t) / MicrosPerHour
			out.RUL[i] = min(lb, r.Horizon)
			out.Censored[i] = lb < r.Horizon
		}
		out.Health[i] = r.Thresholds.Classify(out.RUL[i])
		// life: the number of distinct lives with readings before this one.
		if i > 0 {
			out.Life[i] = out.Life[i-1]
			prev := times[i-1]
			for _, f := range events {
				if f >= prev && f < t {
					out.Life[i]++
					break
				}
			}
		}
	}
	return out
}

// TestLabelProperties checks random fleets against the plain definition: a
// label never depends on event order, raw RUL falls by exactly the elapsed
// time within a life, life ids step by one, and the censoring invariants hold.
func TestLabelProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for dev := range 2000 {
		r := Rules{Horizon: float64(1 + rng.IntN(300)), Thresholds: dataset.Thresholds{Critical: 5, Warning: 20}}
		n := 1 + rng.IntN(200)
		times := make([]int64, n)
		t0 := rng.Int64N(1e12)
		for i := range times {
			if i > 0 && rng.IntN(10) == 0 {
				times[i] = times[i-1] // duplicate timestamps happen
				continue
			}
			t0 += 1 + rng.Int64N(3*MicrosPerHour)
			times[i] = t0
		}
		span := times[n-1] - times[0] + 1
		var events []int64
		for range rng.IntN(6) {
			var f int64
			switch rng.IntN(4) {
			case 0: // exactly at a reading
				f = times[rng.IntN(n)]
			case 1: // before all readings or after them
				f = times[0] - rng.Int64N(span) - 1
				if rng.IntN(2) == 0 {
					f = times[n-1] + rng.Int64N(span) + 1
				}
			default:
				f = times[0] + rng.Int64N(span)
			}
			events = append(events, f)
			if rng.IntN(5) == 0 {
				events = append(events, f) // simultaneous events
			}
		}
		name := fmt.Sprintf("device %d", dev)
		want := naive(times, events, r)
		got, _ := label(t, times, events, r)
		for range 3 {
			rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
			again, _ := label(t, times, events, r)
			if !equalLabels(got, again) {
				t.Fatalf("%s: labels depend on event order (events %v)", name, events)
			}
		}
		if !equalLabels(got, want) {
			t.Fatalf("%s: labels differ from the definition:\ngot  %+v\nwant %+v\ntimes %v events %v", name, got, want, times, events)
		}
		for i := 1; i < n; i++ {
			if d := got.Life[i] - got.Life[i-1]; d != 0 && d != 1 {
				t.Fatalf("%s: life id jumps from %d to %d", name, got.Life[i-1], got.Life[i])
			}
			if got.Life[i] == got.Life[i-1] && !math.IsNaN(got.Raw[i]) {
				elapsed := float64(times[i]-times[i-1]) / MicrosPerHour
				if !approx(got.Raw[i-1]-got.Raw[i], elapsed) {
					t.Fatalf("%s row %d: raw falls by %g, elapsed %g", name, i, got.Raw[i-1]-got.Raw[i], elapsed)
				}
			}
		}
		for i := range n {
			if got.RUL[i] > r.Horizon || got.RUL[i] < 0 {
				t.Fatalf("%s row %d: rul %g outside [0, %g]", name, i, got.RUL[i], r.Horizon)
			}
			if got.Censored[i] && (!math.IsNaN(got.Raw[i]) || got.RUL[i] >= r.Horizon) {
				t.Fatalf("%s row %d: censored with raw %g rul %g", name, i, got.Raw[i], got.RUL[i])
			}
		}
		if got.Life[0] != 0 {
			t.Fatalf("%s: first life id %d", name, got.Life[0])
		}
	}
}

func equalLabels(a, b Labels) bool {
	eq := func(x, y float64) bool { return x == y || (math.IsNaN(x) && math.IsNaN(y)) }
	return slices.EqualFunc(a.RUL, b.RUL, func(x, y float64) bool { return approx(x, y) }) &&
		slices.EqualFunc(a.Raw, b.Raw, func(x, y float64) bool { return eq(x, y) || approx(x, y) }) &&
		slices.Equal(a.Health, b.Health) && slices.Equal(a.Censored, b.Censored) && slices.Equal(a.Life, b.Life)
}

func ExampleLabel() {
	h := func(x float64) int64 { return int64(x * MicrosPerHour) }
	times := []int64{h(0), h(60), h(95), h(100), h(130), h(150)}
	failures := FailureTimes([]int64{h(100)})
	out := Labels{}.Resize(len(times))
	st, _ := Label(times, failures, DefaultRules(), out)
	for i := range times {
		fmt.Printf("%3.0fh rul=%3g raw=%3g %-8s censored=%v life=%d\n",
			float64(times[i])/MicrosPerHour, out.RUL[i], out.Raw[i], out.Health[i], out.Censored[i], out.Life[i])
	}
	fmt.Printf("lives=%d censored=%d\n", st.Lives, st.Censored)
	// Output:
	//   0h rul=100 raw=100 normal   censored=false life=0
	//  60h rul= 40 raw= 40 warning  censored=false life=0
	//  95h rul=  5 raw=  5 critical censored=false life=0
	// 100h rul=  0 raw=  0 critical censored=false life=0
	// 130h rul= 20 raw=NaN warning  censored=true life=1
	// 150h rul=  0 raw=NaN critical censored=true life=1
	// lives=2 censored=2
}
