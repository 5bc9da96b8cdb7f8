package pipeline

import (
	"context"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/modax/modax-ml/internal/dataset"
)

// Baseline is the trivial model every RUL model must beat: it predicts the
// mean RUL of the train split for every window.
type Baseline struct {
	TrainMean float64 `json:"train_mean"`
	// MAE and RMSE by split (test, val), in hours.
	MAE  map[string]float64 `json:"mae"`
	RMSE map[string]float64 `json:"rmse"`
}

// ComputeBaseline reads the rul_hours and split columns of a windows file
// and scores the train-mean prediction on the other splits.
func ComputeBaseline(ctx context.Context, windows string) (*Baseline, error) {
	r, err := dataset.Open(windows, dataset.KindWindows)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var ys []float64
	var splits []string // interned: array.String.Value is a view into the batch
	intern := map[string]string{}
	for rec, err := range r.Batches(ctx, "rul_hours", "split") {
		if err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
		yi, si := rec.Schema().FieldIndices("rul_hours"), rec.Schema().FieldIndices("split")
		if len(yi) != 1 || len(si) != 1 {
			return nil, fmt.Errorf("baseline: %s: no rul_hours or split column", windows)
		}
		y, ok1 := rec.Column(yi[0]).(*array.Float64)
		s, ok2 := rec.Column(si[0]).(*array.String)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("baseline: %s: unexpected column types", windows)
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			v := s.Value(i)
			name, ok := intern[v]
			if !ok {
				name = string([]byte(v))
				intern[name] = name
			}
			ys = append(ys, y.Value(i))
			splits = append(splits, name)
		}
	}
	var sum float64
	var n int
	for i, y := range ys {
		if splits[i] == dataset.SplitTrain {
			sum += y
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("baseline: %s has no train windows", windows)
	}
	b := &Baseline{TrainMean: sum / float64(n), MAE: map[string]float64{}, RMSE: map[string]float64{}}
	abs, sq, cnt := map[string]float64{}, map[string]float64{}, map[string]int{}
	for i, y := range ys {
		d := y - b.TrainMean
		abs[splits[i]] += math.Abs(d)
		sq[splits[i]] += d * d
		cnt[splits[i]]++
	}
	for _, s := range []string{dataset.SplitTest, dataset.SplitVal} {
		if cnt[s] > 0 {
			b.MAE[s] = abs[s] / float64(cnt[s])
			b.RMSE[s] = math.Sqrt(sq[s] / float64(cnt[s]))
		}
	}
	return b, nil
}

// Final returns the baseline's metrics named as the run's final metrics:
// baseline_<split>_mae, baseline_<split>_rmse.
func (b *Baseline) Final() map[string]float64 {
	out := map[string]float64{}
	for s, v := range b.MAE {
		out["baseline_"+s+"_mae"] = v
	}
	for s, v := range b.RMSE {
		out["baseline_"+s+"_rmse"] = v
	}
	return out
}
