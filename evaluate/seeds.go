package evaluate

import (
	"fmt"
	"math"
)

// SeedSummary summarises the test split of several runs of one recipe that
// differ only in the training seed (the C-MAPSS recipe's result line): RMSE
// and PHM08 score against the raw truth (C-MAPSS: RUL_FD00x as NASA gives
// it, not clipped), RMSE and PHM08 score against the truth capped at the
// horizon (clipped at 125, as FFVE and most papers score), as means
// with their sample standard deviations, and the per-seed values; and the
// empirical coverage and mean width of the SummaryIntervalLevel prediction
// interval on the test windows (against the capped truth, the model's
// target), when every seed has it. Values are rounded to 3 decimals.
type SeedSummary struct {
	Subset             string    `json:"subset"`
	Units              int       `json:"units"`
	RMSE               float64   `json:"rmse"`
	RMSEStd            float64   `json:"rmse_std"`
	RMSEClipped        float64   `json:"rmse_clipped"`
	RMSEClippedStd     float64   `json:"rmse_clipped_std"`
	Score              float64   `json:"score"`
	ScoreStd           float64   `json:"score_std"`
	ScoreClipped       float64   `json:"score_clipped"`
	ScoreClippedStd    float64   `json:"score_clipped_std"`
	Seeds              int       `json:"seeds"`
	RMSEPerSeed        []float64 `json:"rmse_per_seed"`
	RMSEClippedPerSeed []float64 `json:"rmse_clipped_per_seed"`
	ScorePerSeed       []float64 `json:"score_per_seed"`
	// ScoreClippedPerSeed is each seed's splits.test.score: the truth is
	// the label capped at the horizon.
	ScoreClippedPerSeed []float64 `json:"score_clipped_per_seed"`

	// IntervalLevel is set (to SummaryIntervalLevel) when every run measured
	// that interval; the coverage and width fields are then set too.
	IntervalLevel        *float64  `json:"interval_level,omitempty"`
	Coverage             *float64  `json:"coverage,omitempty"`
	CoverageStd          *float64  `json:"coverage_std,omitempty"`
	IntervalWidth        *float64  `json:"interval_width,omitempty"`
	IntervalWidthStd     *float64  `json:"interval_width_std,omitempty"`
	CoveragePerSeed      []float64 `json:"coverage_per_seed,omitempty"`
	IntervalWidthPerSeed []float64 `json:"interval_width_per_seed,omitempty"`
}

// SummaryIntervalLevel is the interval level SummarizeSeeds reports.
const SummaryIntervalLevel = 0.9

// SummarizeSeeds reads one metrics.json per seed and summarises their test
// splits. Every run must have scored the same number of units, each with a
// known raw truth.
func SummarizeSeeds(subset string, paths []string) (*SeedSummary, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("summarize seeds: no metrics files")
	}
	s := &SeedSummary{Subset: subset, Seeds: len(paths)}
	var cov, width []float64
	for _, p := range paths {
		m, err := ReadMetrics(p)
		if err != nil {
			return nil, err
		}
		t, ok := m.Splits["test"]
		if !ok || t.N == 0 {
			return nil, fmt.Errorf("summarize seeds: %s has no test split", p)
		}
		if t.NRaw != t.N {
			return nil, fmt.Errorf("summarize seeds: %s: %d of %d test units lack the raw true RUL", p, t.N-t.NRaw, t.N)
		}
		if s.Units != 0 && s.Units != t.N {
			return nil, fmt.Errorf("summarize seeds: %s scored %d test units, an earlier run %d", p, t.N, s.Units)
		}
		s.Units = t.N
		s.RMSEPerSeed = append(s.RMSEPerSeed, round3(float64(t.RMSERaw)))
		s.RMSEClippedPerSeed = append(s.RMSEClippedPerSeed, round3(float64(t.RMSE)))
		s.ScorePerSeed = append(s.ScorePerSeed, round3(float64(t.ScoreRaw)))
		s.ScoreClippedPerSeed = append(s.ScoreClippedPerSeed, round3(float64(t.Score)))
		for _, iv := range t.Intervals {
			if math.Abs(iv.Level-SummaryIntervalLevel) < 1e-9 && iv.Coverage.Valid() && iv.MeanWidth.Valid() {
				cov = append(cov, round3(float64(iv.Coverage)))
				width = append(width, round3(float64(iv.MeanWidth)))
			}
		}
	}
	if len(cov) == len(paths) {
		lv := SummaryIntervalLevel
		c, cs := meanStd(cov)
		w, ws := meanStd(width)
		s.IntervalLevel, s.Coverage, s.CoverageStd, s.IntervalWidth, s.IntervalWidthStd = &lv, &c, &cs, &w, &ws
		s.CoveragePerSeed, s.IntervalWidthPerSeed = cov, width
	}
	s.RMSE, s.RMSEStd = meanStd(s.RMSEPerSeed)
	s.RMSEClipped, s.RMSEClippedStd = meanStd(s.RMSEClippedPerSeed)
	s.Score, s.ScoreStd = meanStd(s.ScorePerSeed)
	s.ScoreClipped, s.ScoreClippedStd = meanStd(s.ScoreClippedPerSeed)
	return s, nil
}

// meanStd returns the mean and the sample standard deviation (0 for one
// value), rounded to 3 decimals.
func meanStd(v []float64) (mean, std float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	if len(v) > 1 {
		for _, x := range v {
			std += (x - mean) * (x - mean)
		}
		std = math.Sqrt(std / float64(len(v)-1))
	}
	return round3(mean), round3(std)
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
