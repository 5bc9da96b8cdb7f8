package evaluate

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/modax/modax-ml/internal/dataset"
)

func writeMetrics(t *testing.T, dir, name string, n, nRaw int, rmse, rmseRaw, scoreRaw float64) string {
	t.Helper()
	m := &Metrics{Schema: MetricsSchema, Splits: map[string]*SplitMetrics{"test": {N: n, NRaw: nRaw, RMSE: Float(rmse), RMSERaw: Float(rmseRaw), ScoreRaw: Float(scoreRaw)}}}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSummarizeSeeds(t *testing.T) {
	dir := t.TempDir()
	a := writeMetrics(t, dir, "a.json", 100, 100, 12, 13, 250)
	b := writeMetrics(t, dir, "b.json", 100, 100, 14, 15, 350)
	c := writeMetrics(t, dir, "c.json", 100, 100, 13, 14, 300)
	s, err := SummarizeSeeds("FD001", []string{a, b, c})
	if err != nil {
		t.Fatal(err)
	}
	// mean 14, sample std of 13, 15, 14 = 1; clipped 13 ± 1; score 300 ± 50
	if s.Units != 100 || s.Seeds != 3 || s.RMSE != 14 || s.RMSEStd != 1 || s.RMSEClipped != 13 || s.RMSEClippedStd != 1 || s.Score != 300 || s.ScoreStd != 50 {
		t.Errorf("summary %+v", s)
	}
	if len(s.RMSEPerSeed) != 3 || s.RMSEPerSeed[1] != 15 {
		t.Errorf("per seed %v", s.RMSEPerSeed)
	}
	one, err := SummarizeSeeds("FD001", []string{a})
	if err != nil || one.RMSEStd != 0 {
		t.Errorf("one seed: %+v %v", one, err)
	}
	if s.IntervalLevel != nil || s.Coverage != nil || s.CoveragePerSeed != nil {
		t.Errorf("coverage without intervals: %+v", s)
	}
	// With a 90 % interval in every run: coverage 0.86, 0.9, 0.94 → 0.9 ± 0.04;
	// width 30, 34, 32 → 32 ± 2. One run without it: no coverage.
	withIv := func(name string, cov, width float64) string {
		p := writeMetrics(t, dir, name, 100, 100, 12, 13, 250)
		m, err := ReadMetrics(p)
		if err != nil {
			t.Fatal(err)
		}
		m.Splits["test"].Intervals = []IntervalMetrics{{Level: 0.8, N: 100, Coverage: 0.5, MeanWidth: 1}, {Level: 0.9, N: 100, Coverage: Float(cov), MeanWidth: Float(width)}}
		b, _ := m.Marshal()
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	iv := []string{withIv("i1.json", 0.86, 30), withIv("i2.json", 0.9, 34), withIv("i3.json", 0.94, 32)}
	s, err = SummarizeSeeds("FD001", iv)
	if err != nil || s.IntervalLevel == nil || *s.IntervalLevel != 0.9 || *s.Coverage != 0.9 || *s.CoverageStd != 0.04 ||
		*s.IntervalWidth != 32 || *s.IntervalWidthStd != 2 || len(s.CoveragePerSeed) != 3 || s.IntervalWidthPerSeed[1] != 34 {
		t.Errorf("coverage summary %+v %v", s, err)
	}
	if s, err = SummarizeSeeds("FD001", append(iv, a)); err != nil || s.Coverage != nil {
		t.Errorf("a run without intervals: %+v %v", s, err)
	}
	for name, paths := range map[string][]string{
		"units differ": {a, writeMetrics(t, dir, "d.json", 99, 99, 1, 1, 1)},
		"raw unknown":  {writeMetrics(t, dir, "e.json", 100, 90, 1, 1, 1)},
		"none":         nil,
	} {
		if _, err := SummarizeSeeds("FD001", paths); err == nil {
			t.Errorf("%s: no error", name)
		} else if name == "units differ" && !strings.Contains(err.Error(), "99 test units") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestSummarizeSeedsScoreClipped: score_clipped is the PHM08 score against
// the truth capped at the horizon (FFVE's), score against the raw truth;
// worked out by hand from evaluated predictions (the fixture caps at 100 h).
func TestSummarizeSeedsScoreClipped(t *testing.T) {
	// Unit 1: raw RUL 150, capped 100, predicted 95: d = −5 clipped, −55 raw.
	// Unit 2: raw = capped = 20, predicted 30: d = +10 either way.
	mk := func(pred1 float64) string {
		ps := []dataset.Prediction{
			{Device: "u1", Split: dataset.SplitTest, End: 1, RULTrue: 100, RULRaw: 150, RULPred: pred1, ModelVersion: "v"},
			{Device: "u2", Split: dataset.SplitTest, End: 1, RULTrue: 20, RULRaw: 20, RULPred: 30, ModelVersion: "v"},
		}
		f := writeFixture(t, ps, nil)
		o := f.opts()
		o.NoPlots, o.Report, o.HTML = true, "", ""
		if _, err := Run(context.Background(), testEnv(), o); err != nil {
			t.Fatal(err)
		}
		return o.Metrics
	}
	// Seed 2 predicts unit 1 at 87: d = −13 clipped, −63 raw.
	s, err := SummarizeSeeds("FD001", []string{mk(95), mk(87)})
	if err != nil {
		t.Fatal(err)
	}
	clip := []float64{round3(math.Expm1(5.0/13) + math.Expm1(1)), round3(math.Expm1(1) + math.Expm1(1))}
	raw := []float64{round3(math.Expm1(55.0/13) + math.Expm1(1)), round3(math.Expm1(63.0/13) + math.Expm1(1))}
	if !slices.Equal(s.ScoreClippedPerSeed, clip) || !slices.Equal(s.ScorePerSeed, raw) {
		t.Errorf("score_clipped_per_seed %v, want %v; score_per_seed %v, want %v", s.ScoreClippedPerSeed, clip, s.ScorePerSeed, raw)
	}
	m, sd := meanStd(clip)
	if s.ScoreClipped != m || s.ScoreClippedStd != sd || s.ScoreClipped >= s.Score {
		t.Errorf("score_clipped %v ± %v, want %v ± %v (below score %v)", s.ScoreClipped, s.ScoreClippedStd, m, sd, s.Score)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"score":`, `"score_clipped":`, `"score_clipped_std":`, `"score_clipped_per_seed":[`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("JSON line lacks %s: %s", k, b)
		}
	}
}
