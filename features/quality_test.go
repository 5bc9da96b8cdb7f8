package features

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"

	"github.com/modax/modax-ml/internal/dataset"
	"testing"
)

// TestHealthIndicators: over a fleet whose sensor "wear" climbs to a common
// failure value and whose sensor "noise" is white noise, the features stage
// rates wear far above noise on all three metrics; only the train split's
// run-to-failure lives count.
func TestHealthIndicators(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 6))
	var frames []*dataset.Frame
	for d := range 20 {
		n := 60 + 5*(d%7)
		noise := make([]float64, n)
		for i := range noise {
			noise[i] = rng.NormFloat64()
		}
		frames = append(frames, lifeFrame("t", fmt.Sprintf("dev-%02d", d), n, int64(d)*1000, 100, 2, func(s, i int) float64 {
			if s == 0 {
				f := float64(i) / float64(n-1)
				return 1 + 9*f*f + 0.01*math.Sin(float64(7*i+d))
			}
			return noise[i]
		}))
	}
	writeLabeled(t, filepath.Join(dir, "labeled.parquet"), []string{"wear", "noise"}, 100, frames...)
	res := runIn(t, dir, nil)
	h := res.HealthIndicators
	if h == nil || h.Split != "train" || h.MaxPoints != hiMaxPoints || len(h.Features) != 2 {
		t.Fatalf("health indicators %+v", h)
	}
	// Devices split 20 → 4 test, 16 → 4 val (ceil of 0.2), 12 train lives.
	if h.Lives != res.Split.Devices["train"] || h.Lives != 12 {
		t.Fatalf("%d lives rated, %d train devices", h.Lives, res.Split.Devices["train"])
	}
	wear, noise := h.Features[0], h.Features[1]
	if wear.Feature != "wear" || noise.Feature != "noise" {
		t.Fatalf("ranking %s, %s", wear.Feature, noise.Feature)
	}
	for _, m := range []struct {
		name string
		w, n *float64
	}{{"monotonicity", wear.Monotonicity, noise.Monotonicity}, {"trendability", wear.Trendability, noise.Trendability}, {"prognosability", wear.Prognosability, noise.Prognosability}} {
		if m.w == nil || m.n == nil {
			t.Fatalf("%s undefined", m.name)
		}
		t.Logf("%s: wear %.3f, noise %.3f", m.name, *m.w, *m.n)
		if *m.w < *m.n+0.3 {
			t.Errorf("%s: wear %.3f not clearly above noise %.3f", m.name, *m.w, *m.n)
		}
	}
	// wear rises strictly at every window end: monotonicity exactly 1.
	if *wear.Monotonicity != 1 {
		t.Errorf("wear monotonicity %v, want 1", *wear.Monotonicity)
	}
	// The same ratings are stored in windows.parquet (modax.health_indicators,
	// what modax-ml ui reads), and only there.
	for _, f := range []struct {
		name, kind string
		want       bool
	}{{"windows.parquet", dataset.KindWindows, true}, {"stats.parquet", dataset.KindStats, false}} {
		r, err := dataset.Open(filepath.Join(dir, f.name), f.kind)
		if err != nil {
			t.Fatal(err)
		}
		var stored HealthIndicators
		ok, err := r.Meta().Get(dataset.MetaHealthIndicators, &stored)
		r.Close()
		if err != nil || ok != f.want {
			t.Fatalf("%s: %s present %v (want %v), %v", f.name, dataset.MetaHealthIndicators, ok, f.want, err)
		}
		if ok && !reflect.DeepEqual(&stored, h) {
			t.Errorf("%s: stored %+v, computed %+v", f.name, stored, *h)
		}
	}
}
