package train

import (
	"fmt"
	"time"

	"github.com/modax/modax-ml/internal/conformal"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/nn"
	"github.com/modax/modax-ml/internal/runenv"
)

// DefaultIntervalLevels is --interval-levels' default.
const DefaultIntervalLevels = "0.9"

// intervalLevels parses IntervalLevels; "" or "none" calibrates nothing.
func (o *Options) intervalLevels() ([]float64, error) {
	if o.IntervalLevels == "" || o.IntervalLevels == "none" {
		return nil, nil
	}
	lv, err := conformal.ParseLevels(o.IntervalLevels)
	if err != nil {
		return nil, usage("--interval-levels %q: %v", o.IntervalLevels, err)
	}
	return lv, nil
}

// calibrationChunk is the number of val windows per forward pass.
const calibrationChunk = 256

// predictSplit runs p (hours) over the windows of s with the native
// predictor, the forward pass predict and score use.
func predictSplit(p *model.Params, d *data, s *split, workers int) ([]float64, error) {
	pr := nn.NewPredictor(p, workers)
	defer pr.Close()
	size := d.t * d.f
	out := make([]float32, calibrationChunk)
	pred := make([]float64, 0, s.n)
	for lo := 0; lo < s.n; lo += calibrationChunk {
		hi := min(lo+calibrationChunk, s.n)
		if err := pr.Predict(s.x[lo*size:hi*size], hi-lo, out[:hi-lo]); err != nil {
			return nil, err
		}
		for _, v := range out[:hi-lo] {
			pred = append(pred, float64(v))
		}
	}
	return pred, nil
}

// calibrateLSTM calibrates the intervals of the checkpoint's weights p
// (hours) on the val windows: split-conformal needs a model that has not
// seen them, so with --refit (whose model trained on val) it is called with
// the selection run's best weights and says so in Source. Without val
// windows or levels it returns nil.
func calibrateLSTM(env *runenv.Env, o *Options, d *data, p *model.Params, source string) (*conformal.Calibration, float64, error) {
	lv, err := o.intervalLevels()
	if err != nil || lv == nil || d.val.n == 0 {
		return nil, 0, err
	}
	start := time.Now()
	pred, err := predictSplit(p, d, &d.val, o.Workers)
	if err != nil {
		return nil, 0, fmt.Errorf("train: calibrate: %w", err)
	}
	truth := make([]float64, d.val.n)
	for i, y := range d.val.rul {
		truth[i] = float64(y)
	}
	return calibrate(env, pred, truth, lv, d.meta.Horizon, source, start)
}

// calibrate computes and logs the calibration of pred against truth.
func calibrate(env *runenv.Env, pred, truth, levels []float64, horizon float64, source string, start time.Time) (*conformal.Calibration, float64, error) {
	c, err := conformal.Calibrate(pred, truth, levels, horizon, conformal.Options{})
	if err != nil {
		return nil, 0, fmt.Errorf("train: calibrate: %w", err)
	}
	c.Source = source
	secs := time.Since(start).Seconds()
	radii := make([][]float64, len(c.Buckets))
	for i, b := range c.Buckets {
		for _, r := range b.Radius {
			radii[i] = append(radii[i], float64(r))
		}
	}
	env.Log.Info("calibrated prediction intervals", "windows", c.N, "levels", fmt.Sprint(c.Levels), "buckets", len(c.Buckets),
		"radius_hours", fmt.Sprint(radii), "source", source, "seconds", secs)
	return c, secs, nil
}
