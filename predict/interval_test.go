package predict

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/modax/modax-ml/internal/conformal"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/progress"
	"github.com/modax/modax-ml/internal/runenv"
)

// calibrate stores c in the checkpoint of dir.
func calibrate(t *testing.T, dir string, c *conformal.Calibration) {
	t.Helper()
	path := filepath.Join(dir, "model.safetensors")
	ck, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ck.Info.Calibration = c
	if err := model.Save(path, ck); err != nil {
		t.Fatal(err)
	}
}

// logEnv is a test environment whose log lines land in the returned buffer.
func logEnv() (*runenv.Env, *bytes.Buffer) {
	var buf bytes.Buffer
	return runenv.New(slog.New(slog.NewTextHandler(&buf, nil)), progress.None, "test-run"), &buf
}

func predictAt(t *testing.T, dir string, level float64) (*Result, []dataset.Prediction, string) {
	t.Helper()
	o := DefaultOptions()
	o.Model, o.Windows, o.Out = filepath.Join(dir, "model.safetensors"), filepath.Join(dir, "windows.parquet"), filepath.Join(dir, "p.parquet")
	o.IntervalLevel = level
	env, logs := logEnv()
	res, err := Run(context.Background(), env, o)
	if err != nil {
		t.Fatal(err)
	}
	ps, _, err := dataset.ReadPredictions(context.Background(), o.Out)
	if err != nil {
		t.Fatal(err)
	}
	return res, ps, logs.String()
}

// TestIntervals: a calibrated model's predictions carry rul_lower ≤ rul_pred
// ≤ rul_upper at the asked level, each the prediction ∓ its bucket's radius
// clipped to [0, horizon]; an unbounded radius gives [0, horizon].
func TestIntervals(t *testing.T) {
	dir, _ := files(t)
	// The bucket edge is the median of the fixture model's outputs: both
	// buckets are used. Radius +Inf at 0.8 in the upper
	// bucket (too few windows for the level).
	_, ps, _ := predictAt(t, dir, 0.9)
	preds := make([]float64, len(ps))
	for i := range ps {
		preds[i] = ps[i].RULPred
	}
	slices.Sort(preds)
	edge := preds[len(preds)/2]
	c := &conformal.Calibration{Method: conformal.Method, Horizon: 100, Levels: []float64{0.8, 0.9}, N: 300, Buckets: []conformal.Bucket{
		{Lo: min(0, edge), Hi: edge, N: 150, Radius: []conformal.Radius{3, 5}},
		{Lo: edge, Hi: 100, N: 150, Radius: []conformal.Radius{conformal.Radius(math.Inf(1)), 7}},
	}}
	calibrate(t, dir, c)
	for _, level := range []float64{0.9, 0.8} {
		res, ps, logs := predictAt(t, dir, level)
		if res.IntervalLevel == nil || *res.IntervalLevel != level || res.IntervalNote != "" {
			t.Errorf("level %g: summary interval %v, note %q", level, res.IntervalLevel, res.IntervalNote)
		}
		if strings.Contains(logs, "level=WARN") {
			t.Errorf("level %g: warnings with a calibrated model:\n%s", level, logs)
		}
		buckets := map[int]int{}
		for i, p := range ps {
			b := c.BucketOf(p.RULPred)
			buckets[b]++
			q := float64(c.Buckets[b].Radius[c.LevelIndex(level)])
			lo, hi := math.Max(0, p.RULPred-q), math.Min(100, p.RULPred+q)
			if !p.HasInterval() || p.Level != level || p.Lower != lo || p.Upper != hi {
				t.Fatalf("level %g row %d: pred %g interval [%g, %g] at %g, want [%g, %g]", level, i, p.RULPred, p.Lower, p.Upper, p.Level, lo, hi)
			}
			clipped := math.Min(math.Max(p.RULPred, 0), 100)
			if !(0 <= p.Lower && p.Lower <= clipped && clipped <= p.Upper && p.Upper <= 100) {
				t.Fatalf("level %g row %d: 0 ≤ %g ≤ %g ≤ %g ≤ 100 fails", level, i, p.Lower, clipped, p.Upper)
			}
			if level == 0.8 && b == 1 && (p.Lower != 0 || p.Upper != 100) {
				t.Fatalf("row %d: unbounded radius gave [%g, %g], want [0, 100]", i, p.Lower, p.Upper)
			}
		}
		if buckets[0] == 0 || buckets[1] == 0 {
			t.Fatalf("the fixture's predictions fall in buckets %v: want both used", buckets)
		}
	}
}

// TestNoCalibration: an uncalibrated model predicts with null intervals and
// says so in exactly one warning; a level the model lacks does the same.
func TestNoCalibration(t *testing.T) {
	dir, _ := files(t)
	check := func(name, wantNote string) {
		t.Helper()
		res, ps, logs := predictAt(t, dir, 0.9)
		if n := strings.Count(logs, "level=WARN"); n != 1 || !strings.Contains(logs, wantNote) {
			t.Errorf("%s: %d warnings, want 1 saying %q:\n%s", name, n, wantNote, logs)
		}
		if res.IntervalLevel != nil || res.IntervalNote != wantNote {
			t.Errorf("%s: summary interval %v, note %q", name, res.IntervalLevel, res.IntervalNote)
		}
		for i, p := range ps {
			if p.HasInterval() || !math.IsNaN(p.Lower) || !math.IsNaN(p.Upper) || !math.IsNaN(p.Level) {
				t.Fatalf("%s: row %d has an interval: %+v", name, i, p)
			}
		}
	}
	check("uncalibrated", "model has no interval calibration")
	calibrate(t, dir, &conformal.Calibration{Method: conformal.Method, Horizon: 100, Levels: []float64{0.8}, N: 100,
		Buckets: []conformal.Bucket{{Lo: 0, Hi: 100, N: 100, Radius: []conformal.Radius{4}}}})
	check("other level", "model has no interval calibration at level 0.9 (calibrated: [0.8])")
}
