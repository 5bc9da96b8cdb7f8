package conformal

import (
	"encoding/json"
	"math"
	"testing"
)

// FuzzCalibration feeds arbitrary interval calibrations, as a checkpoint's or
// model.onnx's metadata carries them, to the decoder and Validate: whatever
// passes must give an interval in [0, horizon] for any prediction at every
// calibrated level, never a panic.
func FuzzCalibration(f *testing.F) {
	for _, s := range []string{
		`{"method":"split-conformal","horizon_hours":100,"levels":[0.8,0.9],"n":40,"buckets":[{"lo_hours":0,"hi_hours":20,"n":20,"radius_hours":[3,5]},{"lo_hours":20,"hi_hours":100,"n":20,"radius_hours":[8,null]}]}`,
		`{"horizon_hours":50,"levels":[0.9],"buckets":[{"lo_hours":0,"radius_hours":[1e308]}]}`,
		`{"horizon_hours":50,"levels":[0.9],"buckets":[]}`,
	} {
		f.Add([]byte(s), 12.5)
	}
	f.Fuzz(func(t *testing.T, b []byte, pred float64) {
		var c Calibration
		if json.Unmarshal(b, &c) != nil || c.Validate() != nil {
			return
		}
		for _, level := range c.Levels {
			lo, hi, err := c.Interval(pred, level)
			if err != nil {
				t.Fatalf("level %g of a valid calibration: %v", level, err)
			}
			if !math.IsNaN(pred) && (lo < 0 || hi > c.Horizon || lo > hi) {
				t.Fatalf("interval [%g, %g] of %g outside [0, %g]", lo, hi, pred, c.Horizon)
			}
		}
		if _, _, err := c.Interval(pred, 0.123456); err == nil && c.LevelIndex(0.123456) < 0 {
			t.Fatal("an uncalibrated level gave an interval")
		}
	})
}
