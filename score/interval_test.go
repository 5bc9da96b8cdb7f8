package score

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/conformal"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/fixture"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/onnxmodel"
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

// TestScoreClip: raw outputs below 0 or above the horizon (500 h) score as
// 0 and 500 h, each with its interval around the clipped point, so that
// 0 ≤ rul_lower ≤ rul_hours ≤ rul_upper ≤ horizon in the result and the
// scores file.
func TestScoreClip(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	ckpt, _, readings, failures := pipeline(t, dir)
	cal := &conformal.Calibration{Method: conformal.Method, Horizon: 500, Levels: []float64{0.9}, N: 100,
		Buckets: []conformal.Bucket{{Lo: 0, Hi: 500, N: 100, Radius: []conformal.Radius{30}}}}
	at := t0.Add(100 * time.Hour)
	for _, tc := range []struct {
		bias, want, lo, hi float64
	}{{-1e5, 0, 0, 30}, {1e5, 500, 470, 500}} {
		ck, err := model.Load(ckpt)
		if err != nil {
			t.Fatal(err)
		}
		ck.Params.Get("fc2.bias").Data[0] = float32(tc.bias)
		ck.Info.Calibration = cal
		if err := model.Save(ckpt, ck); err != nil {
			t.Fatal(err)
		}
		o := DefaultOptions()
		o.Readings, o.Failures, o.Model, o.At = readings, failures, ckpt, at.Format(time.RFC3339)
		o.DB.Tenant = "t"
		o.Out = filepath.Join(dir, fmt.Sprintf("scores-%g.parquet", tc.bias))
		res, err := Run(ctx, env(at), o)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Scored) == 0 {
			t.Fatalf("bias %g: nothing scored: %+v", tc.bias, res.Unscored)
		}
		for _, s := range res.Scored {
			if s.RUL != tc.want || s.Lower == nil || s.Upper == nil || *s.Lower != tc.lo || *s.Upper != tc.hi {
				t.Errorf("bias %g: %s RUL %g [%v, %v], want %g [%g, %g]", tc.bias, s.Device, s.RUL, s.Lower, s.Upper, tc.want, tc.lo, tc.hi)
			}
		}
		ss, _, err := dataset.ReadScores(ctx, o.Out)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ss {
			if s.RUL != tc.want || s.Lower != tc.lo || s.Upper != tc.hi {
				t.Errorf("bias %g: scores file %s RUL %g [%g, %g], want %g [%g, %g]", tc.bias, s.Device, s.RUL, s.Lower, s.Upper, tc.want, tc.lo, tc.hi)
			}
		}
	}
}

// TestScoreONNX: --model an exported ONNX file (gonnx; exported without the
// scaler, as a per-condition scaler must be, so score scales the input; the
// calibration from its metadata_props) scores the devices the checkpoint
// scores, with the same RUL to float32 rounding and the same intervals.
func TestScoreONNX(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	ckpt, _, readings, failures := pipeline(t, dir)
	ck, err := model.Load(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	ck.Info.Calibration = &conformal.Calibration{Method: conformal.Method, Horizon: 500, Levels: []float64{0.9}, N: 100,
		Buckets: []conformal.Bucket{{Lo: 0, Hi: 500, N: 100, Radius: []conformal.Radius{9}}}}
	if err := model.Save(ckpt, ck); err != nil {
		t.Fatal(err)
	}
	onnx := filepath.Join(dir, "model.onnx")
	if err := fixture.WriteONNX(onnx, ckpt, onnxmodel.BuildOptions{NoScaler: true}); err != nil { // per-condition scaling stays outside the graph
		t.Fatal(err)
	}
	at := t0.Add(100 * time.Hour)
	o := DefaultOptions()
	o.Readings, o.Failures, o.Model, o.At = readings, failures, ckpt, at.Format(time.RFC3339)
	o.DB.Tenant = "t"
	want, err := Run(ctx, env(at), o)
	if err != nil {
		t.Fatal(err)
	}
	o.Model = onnx
	got, err := Run(ctx, env(at), o)
	if err != nil {
		t.Fatal(err)
	}
	if got.Model.Format != "onnx" || !got.Model.Interval || len(got.Scored) != len(want.Scored) || len(got.Scored) == 0 {
		t.Fatalf("onnx: model %+v, scored %d; checkpoint scored %d", got.Model, len(got.Scored), len(want.Scored))
	}
	byDev := map[string]Scored{}
	for _, s := range want.Scored {
		byDev[s.Device] = s
	}
	for _, s := range got.Scored {
		w, ok := byDev[s.Device]
		if !ok || math.Abs(s.RUL-w.RUL) > 1e-3*math.Max(1, w.RUL) || s.Lower == nil || math.Abs(*s.Lower-*w.Lower) > 1e-3*math.Max(1, w.RUL) {
			t.Errorf("%s: onnx RUL %g [%v], checkpoint %g [%v]", s.Device, s.RUL, s.Lower, w.RUL, w.Lower)
		}
	}
}
