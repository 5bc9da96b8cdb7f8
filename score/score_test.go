package score

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/modax/modax-ml/features"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/internal/testutil"
	"github.com/modax/modax-ml/label"
	"github.com/modax/modax-ml/predict"
)

const hour = int64(time.Hour / time.Microsecond)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fleet writes readings of 4 devices (sensors a, b, c and an operating
// condition op with two settings), hourly, with missing values the forward
// fill covers and some it does not, and a failure in the middle of dev-0's
// and dev-1's history.
func fleet(t *testing.T, dir string) (readings, failures string, events []dataset.Failure) {
	t.Helper()
	sensors := []string{"a", "b", "c", "op"}
	var frames []*dataset.Frame
	for d := range 4 {
		f := dataset.NewFrame("t", fmt.Sprint("dev-", d), len(sensors), false)
		for i := range 120 {
			f.Time = append(f.Time, dataset.Micros(t0)+int64(i)*hour)
			op := float64((i / 7) % 2)
			f.Sensors[0] = append(f.Sensors[0], 10+float64(d)+0.1*float64(i)+3*op+math.Sin(float64(i)))
			f.Sensors[1] = append(f.Sensors[1], 50-0.2*float64(i)*float64(d+1)+20*op)
			f.Sensors[2] = append(f.Sensors[2], math.Cos(float64(i*(d+1)))+op)
			f.Sensors[3] = append(f.Sensors[3], op)
			if i%11 == 3 { // filled forward
				f.Sensors[1][i] = math.NaN()
			}
			if d == 2 && i >= 60 && i < 70 { // beyond max fill: no window ends in [60, 74)
				f.Sensors[0][i] = math.NaN()
			}
		}
		frames = append(frames, f)
	}
	events = []dataset.Failure{
		{Tenant: "t", Device: "dev-0", Time: dataset.Micros(t0) + 60*hour + hour/2, EventType: "failure", OpHours: math.NaN()},
		{Tenant: "t", Device: "dev-1", Time: dataset.Micros(t0) + 40*hour + hour/2, EventType: "failure", OpHours: math.NaN()},
		{Tenant: "t", Device: "dev-1", Time: dataset.Micros(t0) + 200*hour, EventType: "failure", OpHours: math.NaN()},
		{Tenant: "t", Device: "dev-0", Time: dataset.Micros(t0) + 200*hour, EventType: "failure", OpHours: math.NaN()},
		{Tenant: "t", Device: "dev-2", Time: dataset.Micros(t0) + 200*hour, EventType: "failure", OpHours: math.NaN()},
		{Tenant: "t", Device: "dev-3", Time: dataset.Micros(t0) + 200*hour, EventType: "failure", OpHours: math.NaN()},
	}
	readings, failures = testutil.WriteReadings(t, dir, sensors, frames, events, dataset.Meta{})
	return readings, failures, events
}

// pipeline labels and windows the fleet as the offline path does (window 8,
// stride 1, per-condition z-score on op) and saves an LSTM checkpoint with the
// windows' scaler.
func pipeline(t *testing.T, dir string) (ckpt, windows, readings, failures string) {
	t.Helper()
	ctx := context.Background()
	readings, failures, _ = fleet(t, dir)
	lo := label.DefaultOptions()
	lo.Readings, lo.Failures, lo.Out, lo.Horizon = readings, failures, filepath.Join(dir, "labeled.parquet"), 500
	if _, err := label.Run(ctx, runenv.Test(), lo); err != nil {
		t.Fatal(err)
	}
	fo := features.DefaultOptions()
	fo.Labeled, fo.Out, fo.Stats = lo.Out, filepath.Join(dir, "windows.parquet"), ""
	fo.Window, fo.Features, fo.ConditionColumns, fo.ConditionDecimals = 8, []string{"a", "b", "c"}, []string{"op"}, 0
	fo.TestSize, fo.ValSize = 0.25, 0.34
	if _, err := features.Run(ctx, runenv.Test(), fo); err != nil {
		t.Fatal(err)
	}
	wm, err := dataset.ReadWindows(ctx, fo.Out)
	if err != nil {
		t.Fatal(err)
	}
	if wm.Meta.Scaler.Conditions == nil {
		t.Fatal("the windows have no per-condition scaler")
	}
	p, err := model.NewParams(model.Arch{Type: model.TypeLSTM, InputSize: 3, Hidden: 6, Layers: 2, FC: 4})
	if err != nil {
		t.Fatal(err)
	}
	p.Init(5)
	w := p.Get("fc2.weight") // outputs spread over tens of hours
	for i := range w.Data {
		w.Data[i] *= 100
	}
	p.Get("fc2.bias").Data[0] = 60
	ckpt = filepath.Join(dir, "model.safetensors")
	if err := model.Save(ckpt, &model.Checkpoint{Params: p, Info: model.Info{Arch: p.Arch, Features: wm.Meta.Features, Window: 8,
		Scaler: wm.Meta.Scaler, Horizon: 500, Thresholds: dataset.DefaultThresholds, ModelVersion: "v1"}}); err != nil {
		t.Fatal(err)
	}
	return ckpt, fo.Out, readings, failures
}

func env(now time.Time) *runenv.Env {
	e := runenv.Test()
	e.Now = func() time.Time { return now }
	return e
}

// TestParity: for windows both paths build, score at the window's end gives
// the number predict gives for the window, to 1e-6 h.
func TestParity(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	ckpt, windows, readings, failures := pipeline(t, dir)
	po := predict.DefaultOptions()
	po.Model, po.Windows, po.Out = ckpt, windows, filepath.Join(dir, "predictions.parquet")
	if _, err := predict.Run(ctx, runenv.Test(), po); err != nil {
		t.Fatal(err)
	}
	ps, _, err := dataset.ReadPredictions(ctx, po.Out)
	if err != nil {
		t.Fatal(err)
	}
	ends := map[string]map[int64]float64{}
	for _, p := range ps {
		if ends[p.Device] == nil {
			ends[p.Device] = map[int64]float64{}
		}
		ends[p.Device][p.End] = p.RULPred
	}
	if len(ends) != 4 {
		t.Fatalf("predictions of %d devices, want 4", len(ends))
	}
	checked, refused := 0, 0
	for i := 0; i < 120; i += 3 {
		at := t0.Add(time.Duration(i) * time.Hour)
		o := DefaultOptions()
		o.Readings, o.Failures, o.Model, o.At = readings, failures, ckpt, at.Format(time.RFC3339)
		o.DB.Tenant = "t"
		res, err := Run(ctx, env(at), o)
		if err != nil && !errors.Is(err, ErrNoneScored) {
			t.Fatal(err)
		}
		byDev := map[string]bool{}
		for _, s := range res.Scored {
			byDev[s.Device] = true
			want, ok := ends[s.Device][dataset.Micros(s.LastReading)]
			if !ok {
				t.Errorf("at %s: score scored %s (window ending %s), features made no such window", at, s.Device, s.LastReading)
				continue
			}
			if math.Abs(s.RUL-want) > 1e-6 {
				t.Errorf("at %s: %s: score %.9f h, predict %.9f h", at, s.Device, s.RUL, want)
			}
			checked++
		}
		for d, e := range ends {
			if _, ok := e[dataset.Micros(at)]; ok && !byDev[d] {
				t.Errorf("at %s: features made a window of %s ending there, score did not score it (%+v)", at, d, res.Unscored)
			}
		}
		refused += len(res.Unscored)
	}
	if checked < 100 || refused == 0 {
		t.Errorf("%d scores checked, %d devices refused: the fixture does not exercise both", checked, refused)
	}
}

// TestReasons: each reason a device is not scored, and the exit codes.
func TestReasons(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	ckpt, _, readings, failures := pipeline(t, dir)
	base := func(at time.Time) Options {
		o := DefaultOptions()
		o.Readings, o.Failures, o.Model, o.At = readings, failures, ckpt, at.Format(time.RFC3339)
		o.DB.Tenant = "t"
		return o
	}
	// dev-0 failed at 60.5 h: at 67 h it has 7 readings of its new life;
	// dev-2's a is missing since 60 h, more than max fill 5.
	at := t0.Add(67 * time.Hour)
	o := base(at)
	o.Devices = []string{"dev-0", "dev-1", "dev-2", "nope"}
	o.Out = filepath.Join(dir, "scores.parquet")
	res, err := Run(ctx, env(at), o)
	if err != nil {
		t.Fatal(err)
	}
	why := map[string]string{}
	for _, u := range res.Unscored {
		why[u.Device] = u.Reason
	}
	if why["dev-0"] != ReasonTooFew || why["dev-2"] != features.ReasonMissing || why["nope"] != ReasonUnknownDevice || len(res.Scored) != 1 || res.Scored[0].Device != "dev-1" {
		t.Errorf("scored %+v, unscored %+v", res.Scored, res.Unscored)
	}
	if res.Note != "model has no interval calibration" || res.Scored[0].Lower != nil {
		t.Errorf("note %q, interval %v: want no interval", res.Note, res.Scored[0].Lower)
	}
	ss, meta, err := dataset.ReadScores(ctx, o.Out)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || ss[0].Device != "dev-1" || ss[0].RUL != res.Scored[0].RUL || !math.IsNaN(ss[0].Lower) || !math.IsNaN(ss[0].Change) || meta[dataset.MetaSchema] != dataset.KindScores {
		t.Errorf("scores file %+v, meta %v", ss, meta)
	}

	// Scored again 6 h later: the change since the previous score comes
	// from the file being replaced.
	at2 := at.Add(6 * time.Hour)
	o2 := base(at2)
	o2.Devices, o2.Out = []string{"dev-1"}, o.Out
	res2, err := Run(ctx, env(at2), o2)
	if err != nil {
		t.Fatal(err)
	}
	if c := res2.Scored[0].Change; c == nil || math.Abs(*c-(res2.Scored[0].RUL-res.Scored[0].RUL)) > 1e-9 {
		t.Errorf("change %v, want %g", c, res2.Scored[0].RUL-res.Scored[0].RUL)
	}

	// Stale: the last reading (119 h) is more than 2 × 8 h old.
	late := t0.Add(119*time.Hour + 17*time.Hour)
	o3 := base(late)
	o3.Out = filepath.Join(dir, "none.parquet")
	res3, err := Run(ctx, env(late), o3)
	if !errors.Is(err, ErrNoneScored) || exitcode.Code(err) != exitcode.Validation || res3 == nil || len(res3.Unscored) != 4 || res3.Unscored[0].Reason != ReasonStale {
		t.Fatalf("err %v (exit %d), result %+v", err, exitcode.Code(err), res3)
	}
	if _, err := os.Stat(o3.Out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s written although nothing was scored", o3.Out)
	}
	if err := o3.MaxAge.Set("24h"); err != nil {
		t.Fatal(err)
	}
	if res, err := Run(ctx, env(late), o3); err != nil || len(res.Scored) != 4 {
		t.Errorf("--max-age 24h: %v, %+v", err, res)
	}

	// Unknown tenant.
	o4 := base(at)
	o4.DB.Tenant = "other"
	res4, err := Run(ctx, env(at), o4)
	if exitcode.Code(err) != exitcode.Validation || res4 == nil || len(res4.Unscored) != 1 || res4.Unscored[0].Reason != ReasonUnknownTenant {
		t.Errorf("unknown tenant: %v, %+v", err, res4)
	}
}

func TestBadOptions(t *testing.T) {
	for _, mut := range []func(*Options){
		func(o *Options) { o.Source = "kafka" },
		func(o *Options) { o.At = "yesterday" },
		func(o *Options) { o.BatchDevices = 0 },
		func(o *Options) { o.IntervalLevel = 1.5 },
		func(o *Options) { o.Devices = []string{""} },
		func(o *Options) { o.Model, o.ModelsDir = "", "" },
		func(o *Options) { o.ModelsDir = t.TempDir() }, // nothing deployed
	} {
		o := DefaultOptions()
		mut(&o)
		_, err := Run(context.Background(), runenv.Test(), o)
		if exitcode.Code(err) != exitcode.Usage {
			t.Errorf("%+v: %v (exit %d), want a usage error", o, err, exitcode.Code(err))
		}
	}
}

// TestNoFailureLog: without a failure log (--failures empty) nothing says where
// a life started, so every device's newest window is scored, dev-0's too
// (refused at 67 h with its repair at 60.5 h known); no labels are needed.
func TestNoFailureLog(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	ckpt, _, readings, _ := pipeline(t, dir)
	at := t0.Add(67 * time.Hour)
	o := DefaultOptions()
	o.Readings, o.Failures, o.Model, o.At = readings, "", ckpt, at.Format(time.RFC3339)
	o.DB.Tenant = "t"
	res, err := Run(ctx, env(at), o)
	if err != nil {
		t.Fatal(err)
	}
	scored := map[string]bool{}
	for _, s := range res.Scored {
		scored[s.Device] = true
	}
	if !scored["dev-0"] || !scored["dev-1"] || len(res.Unscored) != 1 || res.Unscored[0].Device != "dev-2" || res.Source["failures"] != "" {
		t.Errorf("scored %v, unscored %+v, source %v", scored, res.Unscored, res.Source)
	}
}
