package train

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/modax/modax-ml/internal/conformal"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/train/traintest"
)

// TestTrainCalibration: the checkpoint carries a calibration on the val
// windows whose radii are the finite-sample quantiles of the saved weights'
// absolute val residuals, recomputed here with the reference forward pass.
func TestTrainCalibration(t *testing.T) {
	win := windowsFile(t, traintest.Default())
	out := filepath.Join(t.TempDir(), "model.safetensors")
	o := smallOptions(win, out)
	o.Epochs, o.IntervalLevels = 3, "0.9,0.8"
	res, err := Run(context.Background(), testEnv(), o)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	c := ck.Info.Calibration
	if c == nil || res.Calibration == nil || !slices.Equal(c.Levels, []float64{0.8, 0.9}) || c.N != 64 || len(c.Buckets) != 1 || c.Horizon != 100 {
		t.Fatalf("calibration %+v", c)
	}
	d, err := loadWindows(context.Background(), win, "val")
	if err != nil {
		t.Fatal(err)
	}
	pred, err := ck.Params.Forward(d.val.x, d.val.n, d.t)
	if err != nil {
		t.Fatal(err)
	}
	r := make([]float64, d.val.n)
	for i := range r {
		r[i] = math.Abs(float64(d.val.rul[i]) - float64(pred[i]))
	}
	slices.Sort(r)
	// n = 64: level 0.8 → k = ⌈52⌉ = 52, level 0.9 → k = ⌈58.5⌉ = 59.
	for li, k := range []int{52, 59} {
		if got := float64(c.Buckets[0].Radius[li]); math.Abs(got-r[k-1]) > 1e-3 {
			t.Errorf("level %g: radius %.5f, the %d-th smallest residual is %.5f", c.Levels[li], got, k, r[k-1])
		}
	}

	o.IntervalLevels = "none"
	o.Out = filepath.Join(t.TempDir(), "none.safetensors")
	if res, err := Run(context.Background(), testEnv(), o); err != nil || res.Calibration != nil {
		t.Fatalf("--interval-levels none: %v, calibration %+v", err, res.Calibration)
	}
	o.IntervalLevels, o.ValSplit = "0.9", "none"
	o.Out = filepath.Join(t.TempDir(), "noval.safetensors")
	if res, err := Run(context.Background(), testEnv(), o); err != nil || res.Calibration != nil {
		t.Fatalf("no val split: %v, calibration %+v", err, res.Calibration)
	}
	for _, bad := range []string{"90", "0.9,x", "1"} {
		o.IntervalLevels = bad
		if _, err := Run(context.Background(), testEnv(), o); !errors.Is(err, exitcode.ErrUsage) {
			t.Errorf("--interval-levels %q: err %v, want a usage error", bad, err)
		}
	}
}

// TestTrainRefitCalibration: with --refit the saved model trained on val,
// so the calibration comes from the selection run's weights and says so.
func TestTrainRefitCalibration(t *testing.T) {
	win := windowsFile(t, traintest.Default())
	o := smallOptions(win, filepath.Join(t.TempDir(), "model.safetensors"))
	o.Epochs, o.Refit = 3, true
	res, err := Run(context.Background(), testEnv(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Calibration == nil || res.Calibration.Source != "val split, the selection run's best weights (the --refit model trained on val)" {
		t.Fatalf("calibration %+v", res.Calibration)
	}
	if _, _, err := conformal.Interval(50, res.Calibration, 0.9); err != nil {
		t.Fatal(err)
	}
}

func TestTrainRidgeCalibration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stats.parquet")
	if err := traintest.WriteStats(path, traintest.Default()); err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.Model, o.Stats, o.Out = ModelRidge, path, filepath.Join(t.TempDir(), "ridge.safetensors")
	res, err := Run(context.Background(), testEnv(), o)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := model.Load(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	if c := ck.Info.Calibration; c == nil || c.N != res.ValWindows || !slices.Equal(c.Levels, []float64{0.9}) {
		t.Fatalf("ridge calibration %+v (val windows %d)", c, res.ValWindows)
	}
}
