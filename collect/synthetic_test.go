package collect

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/duration"
)

// windowSet is a supervised view of a fleet: per-window features and the
// capped RUL at the window's end, for rows whose next failure is known.
type windowSet struct {
	x      [][]float64
	last   [][]float64 // the raw sensor values of the window's last row
	rul    []float64
	device []int
}

const (
	testWindow  = 50
	testHorizon = 100.0
)

func nanMean(v []float64) float64 {
	s, n := 0.0, 0
	for _, x := range v {
		if !math.IsNaN(x) {
			s += x
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return s / float64(n)
}

func nanStd(v []float64) float64 {
	m := nanMean(v)
	s, n := 0.0, 0
	for _, x := range v {
		if !math.IsNaN(x) {
			s += (x - m) * (x - m)
			n++
		}
	}
	if n < 2 {
		return math.NaN()
	}
	return math.Sqrt(s / float64(n-1))
}

func buildWindows(frames []*dataset.Frame, failures []dataset.Failure, step time.Duration, stride int) windowSet {
	var ws windowSet
	byDev := map[string][]int64{}
	for _, f := range failures {
		byDev[f.Device] = append(byDev[f.Device], f.Time)
	}
	stepUS := step.Microseconds()
	for d, f := range frames {
		fails := byDev[f.Device]
		for end := testWindow - 1; end < f.Len(); end += stride {
			lo := end - testWindow + 1
			if f.Time[end]-f.Time[lo] != int64(testWindow-1)*stepUS {
				continue // a repair gap inside the window
			}
			i, _ := slices.BinarySearch(fails, f.Time[end])
			if i == len(fails) {
				continue // censored
			}
			rul := min(float64(fails[i]-f.Time[end])/3.6e9, testHorizon)
			var feat, last []float64
			ok := true
			for s := range f.Sensors {
				w := f.Sensors[s][lo : end+1]
				m, m10, sd := nanMean(w), nanMean(w[testWindow-10:]), nanStd(w)
				if math.IsNaN(m) || math.IsNaN(m10) || math.IsNaN(sd) {
					ok = false
				}
				feat = append(feat, m, m10, sd)
				last = append(last, f.Sensors[s][end])
			}
			// Vibration relative to the load (current) separates wear from regime.
			feat = append(feat, feat[3]/feat[0], feat[6]/feat[0], feat[9]/feat[0], feat[12]/feat[0])
			if !ok {
				continue
			}
			ws.x = append(ws.x, feat)
			ws.last = append(ws.last, last)
			ws.rul = append(ws.rul, rul)
			ws.device = append(ws.device, d)
		}
	}
	return ws
}

// ridgeR2 fits ridge regression on the windows of devices < split and returns
// R² and RMSE on the others.
func ridgeR2(ws windowSet, split int) (r2, rmse float64) {
	nf := len(ws.x[0]) + 1
	var trX, teX []float64
	var trY, teY []float64
	for i, row := range ws.x {
		r := append([]float64{1}, row...)
		if ws.device[i] < split {
			trX, trY = append(trX, r...), append(trY, ws.rul[i])
		} else {
			teX, teY = append(teX, r...), append(teY, ws.rul[i])
		}
	}
	// Standardise columns on the training rows.
	ntr, nte := len(trY), len(teY)
	for c := 1; c < nf; c++ {
		col := make([]float64, ntr)
		for i := range ntr {
			col[i] = trX[i*nf+c]
		}
		m, sd := stat.MeanStdDev(col, nil)
		if sd == 0 {
			sd = 1
		}
		for i := range ntr {
			trX[i*nf+c] = (trX[i*nf+c] - m) / sd
		}
		for i := range nte {
			teX[i*nf+c] = (teX[i*nf+c] - m) / sd
		}
	}
	X := mat.NewDense(ntr, nf, trX)
	var xtx mat.SymDense
	xtx.SymOuterK(1, X.T())
	for i := 1; i < nf; i++ {
		xtx.SetSym(i, i, xtx.At(i, i)+1e-3*float64(ntr))
	}
	var xty mat.VecDense
	xty.MulVec(X.T(), mat.NewVecDense(ntr, trY))
	var beta mat.VecDense
	if err := beta.SolveVec(&xtx, &xty); err != nil {
		panic(err)
	}
	var pred mat.VecDense
	pred.MulVec(mat.NewDense(nte, nf, teX), &beta)
	ss, tot := 0.0, 0.0
	m := stat.Mean(teY, nil)
	for i, y := range teY {
		p := min(max(pred.AtVec(i), 0), testHorizon)
		ss += (y - p) * (y - p)
		tot += (y - m) * (y - m)
	}
	return 1 - ss/tot, math.Sqrt(ss / float64(nte))
}

// The default fleet is learnable (RUL predictable from the last 50 samples)
// but not trivial (no single sensor gives RUL).
func TestSyntheticLearnable(t *testing.T) {
	opts := DefaultSyntheticOptions()
	frames, failures, err := Synthetic(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ws := buildWindows(frames, failures, opts.Interval.D(), 5)
	if len(ws.rul) < 5000 {
		t.Fatalf("only %d labelled windows", len(ws.rul))
	}
	r2, rmse := ridgeR2(ws, opts.Devices*7/10)
	t.Logf("%d windows; ridge on window statistics: held-out R² %.3f, RMSE %.1f h (RUL capped at %v h)", len(ws.rul), r2, rmse, testHorizon)
	if r2 < 0.5 {
		t.Errorf("held-out R² = %.3f: RUL is not learnable from the last %d samples", r2, testWindow)
	}
	if r2 > 0.97 {
		t.Errorf("held-out R² = %.3f: RUL is trivially predictable", r2)
	}
	for s, name := range SyntheticSensors {
		x := make([]float64, len(ws.rul))
		for i := range x {
			x[i] = ws.last[i][s]
		}
		var xs, ys []float64
		for i, v := range x {
			if !math.IsNaN(v) {
				xs, ys = append(xs, v), append(ys, ws.rul[i])
			}
		}
		c := stat.Correlation(xs, ys, nil)
		t.Logf("corr(%s, RUL) = %.3f", name, c)
		if math.Abs(c) > 0.8 {
			t.Errorf("sensor %s alone correlates %.3f with RUL: too trivial", name, c)
		}
	}
}

func TestSyntheticFleetShape(t *testing.T) {
	opts := DefaultSyntheticOptions()
	opts.Devices, opts.Days = 6, 90
	opts.MissingRate, opts.DropoutsPerDay = 0.01, 0.5
	opts.Tenant = "acme"
	frames, failures, err := Synthetic(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 6 {
		t.Fatalf("%d devices", len(frames))
	}
	perDevice := map[string]int{}
	components := map[string]int{}
	for i, f := range failures {
		perDevice[f.Device]++
		components[f.Component]++
		if f.Tenant != "acme" || f.EventType != "failure" || math.IsNaN(f.OpHours) {
			t.Fatalf("failure %+v", f)
		}
		if i > 0 && failures[i-1].Device == f.Device && failures[i-1].Time >= f.Time {
			t.Fatalf("failures of %s not in time order", f.Device)
		}
	}
	step := opts.Interval.D().Microseconds()
	nan := 0
	total := 0
	for i, f := range frames {
		if f.Device != DeviceID(i, 6) || f.Tenant != "acme" {
			t.Fatalf("frame %d is %s/%s", i, f.Tenant, f.Device)
		}
		if perDevice[f.Device] < 2 {
			t.Errorf("%s has %d failures over %v days, want several", f.Device, perDevice[f.Device], opts.Days)
		}
		gaps := 0
		for j := 1; j < f.Len(); j++ {
			d := f.Time[j] - f.Time[j-1]
			if d <= 0 || d%step != 0 {
				t.Fatalf("%s: bad time step %d", f.Device, d)
			}
			if d > step {
				gaps++
			}
		}
		// No reading during a repair: every failure lies inside a gap.
		for _, fl := range failures {
			if fl.Device != f.Device {
				continue
			}
			j, _ := slices.BinarySearch(f.Time, fl.Time)
			if j == f.Len() {
				gaps++ // the repair outlasts the data
				continue
			}
			if j == 0 || f.Time[j]-f.Time[j-1] < 4*3600e6 {
				t.Errorf("%s: failure at %v is not followed by a repair gap", f.Device, dataset.TimeOf(fl.Time))
			}
		}
		if gaps != perDevice[f.Device] {
			t.Errorf("%s: %d repair gaps for %d failures", f.Device, gaps, perDevice[f.Device])
		}
		for _, col := range f.Sensors {
			for _, v := range col {
				total++
				if math.IsNaN(v) {
					nan++
				} else if math.IsInf(v, 0) {
					t.Fatal("infinite value")
				}
			}
		}
	}
	if len(components) < 2 {
		t.Errorf("components %v: want several kinds", components)
	}
	rate := float64(nan) / float64(total)
	if rate < 0.01 || rate > 0.1 {
		t.Errorf("missing rate %.4f with missing_rate 0.01 and dropouts", rate)
	}
	t.Logf("%d failures, components %v, missing %.3f", len(failures), components, rate)
}

func TestSyntheticDeterministic(t *testing.T) {
	opts := DefaultSyntheticOptions()
	opts.Devices, opts.Days = 3, 20
	a, fa, err := Synthetic(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	b, fb, _ := Synthetic(context.Background(), opts)
	if !slices.Equal(fa, fb) && !equalFailures(fa, fb) {
		t.Fatal("failures differ between two runs with the same seed")
	}
	for i := range a {
		if !slices.Equal(a[i].Time, b[i].Time) {
			t.Fatal("times differ")
		}
		for s := range a[i].Sensors {
			for j := range a[i].Sensors[s] {
				x, y := a[i].Sensors[s][j], b[i].Sensors[s][j]
				if x != y && !(math.IsNaN(x) && math.IsNaN(y)) {
					t.Fatalf("%s sensor %d row %d: %v != %v", a[i].Device, s, j, x, y)
				}
			}
		}
	}
	opts.Seed++
	c, _, _ := Synthetic(context.Background(), opts)
	if c[0].Sensors[0][0] == a[0].Sensors[0][0] {
		t.Fatal("another seed gives the same fleet")
	}
	// A device's data does not depend on the fleet size.
	opts.Seed--
	opts.Devices = 2
	d, _, _ := Synthetic(context.Background(), opts)
	if d[1].Sensors[2][100] != a[1].Sensors[2][100] {
		t.Fatal("device 2 changed with the fleet size")
	}
}

func equalFailures(a, b []dataset.Failure) bool {
	return slices.EqualFunc(a, b, func(x, y dataset.Failure) bool {
		return x.Tenant == y.Tenant && x.Device == y.Device && x.Time == y.Time && x.Component == y.Component &&
			(x.OpHours == y.OpHours || (math.IsNaN(x.OpHours) && math.IsNaN(y.OpHours)))
	})
}

func TestSyntheticOptionsChecked(t *testing.T) {
	for _, mod := range []func(*SyntheticOptions){
		func(o *SyntheticOptions) { o.Devices = 0 },
		func(o *SyntheticOptions) { o.Days = -1 },
		func(o *SyntheticOptions) { o.Interval = duration.Duration(time.Millisecond) },
		func(o *SyntheticOptions) { o.MissingRate = 1 },
		func(o *SyntheticOptions) { o.Start = "yesterday" },
	} {
		o := DefaultSyntheticOptions()
		mod(&o)
		if _, _, err := Synthetic(context.Background(), o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := Synthetic(ctx, DefaultSyntheticOptions()); err == nil {
		t.Fatal("cancelled context ignored")
	}
}

func TestSyntheticDefaultSize(t *testing.T) {
	start := time.Now()
	frames, failures, err := Synthetic(context.Background(), DefaultSyntheticOptions())
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, f := range frames {
		rows += f.Len()
	}
	t.Logf("default fleet: %d devices, %d readings, %d failures, generated in %v", len(frames), rows, len(failures), time.Since(start))
	if rows < 150_000 || rows > int(DefaultSyntheticOptions().Rows()) || len(failures) < 40 {
		t.Fatalf("default fleet has %d rows and %d failures", rows, len(failures))
	}
}
