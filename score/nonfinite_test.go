package score

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/testutil"
)

// TestNonFiniteReadings: a non-finite reading is a missing one (the forward
// fill covers it and the device is scored), but a finite reading that
// overflows the model's float32 input once scaled is invalid data (exit 3,
// naming the device, the sensor and the time), and nothing is written.
func TestNonFiniteReadings(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	ckpt, _, _, _ := pipeline(t, dir)
	sensors := []string{"a", "b", "c", "op"}
	readings := func(name string, last float64) string {
		f := dataset.NewFrame("t", "dev-9", len(sensors), false)
		for i := range 20 {
			f.Time = append(f.Time, dataset.Micros(t0)+int64(i)*hour)
			f.Sensors[0] = append(f.Sensors[0], 10+0.1*float64(i))
			f.Sensors[1] = append(f.Sensors[1], 50-0.2*float64(i))
			f.Sensors[2] = append(f.Sensors[2], math.Cos(float64(i)))
			f.Sensors[3] = append(f.Sensors[3], 0)
		}
		f.Sensors[1][19] = last
		sub := filepath.Join(dir, name)
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		r, _ := testutil.WriteReadings(t, sub, sensors, []*dataset.Frame{f}, nil, dataset.Meta{})
		return r
	}
	at := t0.Add(19 * time.Hour)
	run := func(r string) (*Result, error) {
		o := DefaultOptions()
		o.Readings, o.Failures, o.Model, o.At = r, "", ckpt, at.Format(time.RFC3339)
		o.Out = filepath.Join(filepath.Dir(r), "scores.parquet")
		o.DB.Tenant = "t"
		return Run(ctx, env(at), o)
	}
	for i, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		res, err := run(readings(fmt.Sprint("filled-", i), v))
		if err != nil || len(res.Scored) != 1 {
			t.Errorf("reading %v (filled forward): %v, %+v", v, err, res)
		}
	}
	r := readings("huge", 1e300)
	_, err := run(r)
	if exitcode.Code(err) != exitcode.Validation || err == nil ||
		!strings.Contains(err.Error(), "device dev-9: reading of b at 2026-01-01T19:00:00Z is 1e+300, +Inf once scaled") {
		t.Fatalf("reading 1e300: %v (exit %d), want exit 3 naming device, sensor and time", err, exitcode.Code(err))
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(r), "scores.parquet")); !os.IsNotExist(err) {
		t.Errorf("scores written although the input was refused: %v", err)
	}
}
