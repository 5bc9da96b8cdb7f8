package evaluate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
