package score

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/conformal"
	"github.com/modax/modax-ml/internal/model"
)

// TestScoreIntervals: a calibrated model scores with the interval
// conformal.Interval gives its prediction; a level it is not calibrated at
// scores without one.
func TestScoreIntervals(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	ckpt, _, readings, failures := pipeline(t, dir)
	ck, err := model.Load(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	cal, err := conformal.Calibrate([]float64{10, 20, 30, 40, 50}, []float64{14, 18, 33, 40, 55}, []float64{0.8}, ck.Info.Horizon, conformal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ck.Info.Calibration = cal
	if err := model.Save(ckpt, ck); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(100 * time.Hour)
	o := DefaultOptions()
	o.Readings, o.Failures, o.Model, o.At, o.IntervalLevel = readings, failures, ckpt, at.Format(time.RFC3339), 0.8
	o.DB.Tenant = "t"
	o.Out = filepath.Join(dir, "scores.parquet")
	res, err := Run(ctx, env(at), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Scored) == 0 || res.Note != "" {
		t.Fatalf("scored %d, note %q", len(res.Scored), res.Note)
	}
	for _, s := range res.Scored {
		lo, hi, err := conformal.Interval(s.RUL, cal, 0.8)
		if err != nil || s.Lower == nil || s.Upper == nil || s.Level == nil || *s.Lower != lo || *s.Upper != hi || *s.Level != 0.8 {
			t.Errorf("%s: RUL %g interval %v %v level %v, want [%g, %g] at 0.8", s.Device, s.RUL, s.Lower, s.Upper, s.Level, lo, hi)
		}
	}
	o.IntervalLevel, o.Out = 0.9, filepath.Join(dir, "scores90.parquet")
	res, err = Run(ctx, env(at), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Scored) == 0 || res.Scored[0].Lower != nil || res.Note != "model has no interval calibration at level 0.9 (calibrated: [0.8])" {
		t.Errorf("level 0.9 of a model calibrated at 0.8: %+v", res.Scored)
	}
}
