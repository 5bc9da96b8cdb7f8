package features

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/runenv"
)

const hour = int64(3_600_000_000) // µs

// lifeFrame returns a labeled frame of one device: n readings one hour
// apart starting at t0 (hours), one life ending in a failure at the last
// reading (RUL = n−1−i, capped at horizon), sensor values from val.
func lifeFrame(tenant, device string, n int, t0 int64, horizon float64, sensors int, val func(s, i int) float64) *dataset.Frame {
	f := dataset.NewFrame(tenant, device, sensors, true)
	for i := range n {
		f.Time = append(f.Time, (t0+int64(i))*hour)
		for s := range sensors {
			f.Sensors[s] = append(f.Sensors[s], val(s, i))
		}
		raw := float64(n - 1 - i)
		f.RUL = append(f.RUL, math.Min(raw, horizon))
		f.RULRaw = append(f.RULRaw, raw)
		f.Health = append(f.Health, dataset.DefaultThresholds.Classify(math.Min(raw, horizon)))
		f.Censored = append(f.Censored, false)
		f.LifeID = append(f.LifeID, 0)
	}
	return f
}

// concat appends the rows of b to a (same device), shifting b's life ids
// after a's.
func concat(a, b *dataset.Frame) *dataset.Frame {
	next := a.LifeID[a.Len()-1] + 1
	a.Time = append(a.Time, b.Time...)
	for s := range a.Sensors {
		a.Sensors[s] = append(a.Sensors[s], b.Sensors[s]...)
	}
	a.RUL = append(a.RUL, b.RUL...)
	a.RULRaw = append(a.RULRaw, b.RULRaw...)
	a.Health = append(a.Health, b.Health...)
	a.Censored = append(a.Censored, b.Censored...)
	for _, l := range b.LifeID {
		a.LifeID = append(a.LifeID, next+l)
	}
	return a
}

// writeLabeled writes frames (in order) as a labeled file.
func writeLabeled(t testing.TB, path string, sensors []string, horizon float64, frames ...*dataset.Frame) string {
	t.Helper()
	meta := dataset.Meta{}
	meta.MustSet(dataset.MetaHorizon, horizon)
	meta.MustSet(dataset.MetaThresholds, dataset.DefaultThresholds)
	w, err := dataset.CreateFrames(path, sensors, true, meta)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		if err := w.Append(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return path
}

// fleet returns n devices of one life each, lengths 30 + 7·(i mod 5), whose
// sensor s at reading i is a device-specific function.
func fleet(n int, sensors int) []*dataset.Frame {
	var out []*dataset.Frame
	for d := range n {
		out = append(out, lifeFrame("t", fmt.Sprintf("dev-%03d", d), 30+7*(d%5), int64(d)*1000, 100, sensors, func(s, i int) float64 {
			return float64(d) + float64(s)*10 + math.Sin(float64(i)*0.3+float64(d))
		}))
	}
	return out
}

func sensorNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("s%d", i)
	}
	return out
}

// runIn runs the stage in dir with options adjusted by mod.
func runIn(t testing.TB, dir string, mod func(*Options)) *Result {
	t.Helper()
	o := DefaultOptions()
	o.Labeled = filepath.Join(dir, "labeled.parquet")
	o.Out = filepath.Join(dir, "windows.parquet")
	o.Stats = filepath.Join(dir, "stats.parquet")
	o.BucketOut = filepath.Join(dir, "buckets.parquet")
	o.Window = 10
	if mod != nil {
		mod(&o)
	}
	res, err := Run(context.Background(), runenv.Test(), o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func readWindows(t testing.TB, path string, splits ...string) *dataset.Windows {
	t.Helper()
	ws, err := dataset.ReadWindows(context.Background(), path, splits...)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}
