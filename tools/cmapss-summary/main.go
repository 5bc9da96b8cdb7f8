// Command cmapss-summary prints the one-line JSON result of the C-MAPSS recipe
// (scripts/cmapss.sh) from the metrics.json of each seed's run: the test
// split's RMSE against the true RUL as NASA gives it (not clipped), the RMSE
// against the truth clipped at the horizon, and the PHM08 score (unclipped
// truth), as means over the seeds with their standard deviations, and the
// per-seed values.
//
//	go run ./tools/cmapss-summary -subset FD001 metrics-s1.json metrics-s2.json ...
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"

	"github.com/modax/modax-ml/evaluate"
)

// Summary is the recipe's result line.
type Summary struct {
	Subset             string    `json:"subset"`
	Units              int       `json:"units"`
	RMSE               float64   `json:"rmse"`
	RMSEStd            float64   `json:"rmse_std"`
	RMSEClipped        float64   `json:"rmse_clipped"`
	RMSEClippedStd     float64   `json:"rmse_clipped_std"`
	Score              float64   `json:"score"`
	ScoreStd           float64   `json:"score_std"`
	Seeds              int       `json:"seeds"`
	RMSEPerSeed        []float64 `json:"rmse_per_seed"`
	RMSEClippedPerSeed []float64 `json:"rmse_clipped_per_seed"`
	ScorePerSeed       []float64 `json:"score_per_seed"`
}

func main() {
	subset := flag.String("subset", "FD001", "subset name for the output")
	flag.Parse()
	s, err := summarize(*subset, flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "cmapss-summary:", err)
		os.Exit(1)
	}
	b, err := json.Marshal(s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cmapss-summary:", err)
		os.Exit(1)
	}
	fmt.Println(string(b))
}

func summarize(subset string, paths []string) (*Summary, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("no metrics files")
	}
	s := &Summary{Subset: subset, Seeds: len(paths)}
	for _, p := range paths {
		m, err := evaluate.ReadMetrics(p)
		if err != nil {
			return nil, err
		}
		t, ok := m.Splits["test"]
		if !ok || t.N == 0 {
			return nil, fmt.Errorf("%s: no test split", p)
		}
		if t.NRaw != t.N {
			return nil, fmt.Errorf("%s: %d of %d test units lack the true RUL", p, t.N-t.NRaw, t.N)
		}
		if s.Units != 0 && s.Units != t.N {
			return nil, fmt.Errorf("%s: %d test units, an earlier seed had %d", p, t.N, s.Units)
		}
		s.Units = t.N
		s.RMSEPerSeed = append(s.RMSEPerSeed, round(float64(t.RMSERaw)))
		s.RMSEClippedPerSeed = append(s.RMSEClippedPerSeed, round(float64(t.RMSE)))
		s.ScorePerSeed = append(s.ScorePerSeed, round(float64(t.ScoreRaw)))
	}
	s.RMSE, s.RMSEStd = meanStd(s.RMSEPerSeed)
	s.RMSEClipped, s.RMSEClippedStd = meanStd(s.RMSEClippedPerSeed)
	s.Score, s.ScoreStd = meanStd(s.ScorePerSeed)
	return s, nil
}

// meanStd returns the mean and the sample standard deviation (0 for one value).
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
	return round(mean), round(std)
}

func round(v float64) float64 { return math.Round(v*1000) / 1000 }
