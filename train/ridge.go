package train

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"gonum.org/v1/gonum/mat"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/runenv"
)

// Ridge regression on the per-window statistics (stats.parquet): the
// baseline that shows whether the LSTM earns its cost. Features are
// standardised with the train split's mean and (population) standard
// deviation, which the checkpoint records as its scaler; the intercept is
// not penalised (scikit-learn's Ridge with fit_intercept). It streams the
// file three times (moments, normal equations, metrics), so memory is
// O(features²) whatever the number of rows.

type statsFile struct {
	loc   string
	feats []string
	meta  dataset.Meta
}

// scan calls fn for every row of the named splits whose features are all
// present and finite; it counts the others per split.
func (s *statsFile) scan(ctx context.Context, splits map[string]bool, skipped map[string]int, fn func(split string, y float64, x []float64)) error {
	r, err := dataset.Open(s.loc, dataset.KindStats)
	if err != nil {
		return err
	}
	defer r.Close()
	cols := append([]string{dataset.ColSplit, dataset.ColRUL, dataset.ColDevice}, s.feats...)
	x := make([]float64, len(s.feats))
	row := 0
	for rec, err := range r.Batches(ctx, cols...) {
		if err != nil {
			return err
		}
		sp := rec.Column(0).(*array.String)
		rul := rec.Column(1).(*array.Float64)
		dv := rec.Column(2).(*array.String)
		fc := make([]*array.Float64, len(s.feats))
		for j := range fc {
			c, ok := rec.Column(3 + j).(*array.Float64)
			if !ok {
				return fmt.Errorf("%w: %s: feature column %s is %s, want double", exitcode.ErrValidation, s.loc, s.feats[j], rec.Column(3+j).DataType())
			}
			fc[j] = c
		}
	rows:
		for i := range int(rec.NumRows()) {
			row++
			split := sp.Value(i)
			if !splits[split] {
				continue
			}
			y := rul.Value(i)
			if rul.IsNull(i) || math.IsNaN(y) || math.IsInf(y, 0) {
				return fmt.Errorf("%w: %s: row %d (device %s): %s is %v", exitcode.ErrValidation, s.loc, row, dv.Value(i), dataset.ColRUL, y)
			}
			for j, c := range fc {
				v := c.Value(i)
				if c.IsNull(i) || math.IsNaN(v) || math.IsInf(v, 0) {
					skipped[split]++
					continue rows
				}
				x[j] = v
			}
			fn(split, y, x)
		}
	}
	return nil
}

func runRidge(ctx context.Context, env *runenv.Env, o Options) (*Result, error) {
	start := time.Now()
	r, err := dataset.Open(o.Stats, dataset.KindStats)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	s := &statsFile{loc: o.Stats, meta: r.Meta()}
	r.Close()
	ok, err := s.meta.Get(dataset.MetaFeatures, &s.feats)
	if err != nil || !ok || len(s.feats) == 0 {
		return nil, fmt.Errorf("%w: train: %s lacks the %s metadata (feature column names)", exitcode.ErrValidation, o.Stats, dataset.MetaFeatures)
	}
	var wm dataset.WindowsMeta
	wm.Features = s.feats
	for _, kv := range []struct {
		k string
		v any
	}{{dataset.MetaWindow, &wm.Window}, {dataset.MetaHorizon, &wm.Horizon}, {dataset.MetaThresholds, &wm.Thresholds}} {
		if _, err := s.meta.Get(kv.k, kv.v); err != nil {
			return nil, fmt.Errorf("train: %s: %w", o.Stats, err)
		}
	}
	if wm.Thresholds == (dataset.Thresholds{}) {
		wm.Thresholds = dataset.DefaultThresholds
	}
	F := len(s.feats)
	train := map[string]bool{dataset.SplitTrain: true}
	skipped := map[string]int{}

	// Pass 1: means and standard deviations of the train split (Welford).
	var n int
	mean, m2 := make([]float64, F), make([]float64, F)
	var ymean float64
	err = s.scan(ctx, train, skipped, func(_ string, y float64, x []float64) {
		n++
		for j, v := range x {
			d := v - mean[j]
			mean[j] += d / float64(n)
			m2[j] += d * (v - mean[j])
		}
		ymean += (y - ymean) / float64(n)
	})
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: train: %s has no complete rows in the train split (%d with missing features)", exitcode.ErrValidation, o.Stats, skipped[dataset.SplitTrain])
	}
	if k := skipped[dataset.SplitTrain]; k > 0 {
		env.Log.Warn("skipped train rows with missing or non-finite features", "rows", k, "file", o.Stats)
	}
	std := make([]float64, F)
	for j := range std {
		std[j] = math.Sqrt(m2[j] / float64(n))
		if !(std[j] > 1e-12) {
			std[j] = 1
		}
	}
	// Pass 2: normal equations on standardised, centred data.
	a := mat.NewSymDense(F, nil)
	rhs := mat.NewVecDense(F, nil)
	z := make([]float64, F)
	ata := make([]float64, F*F)
	atb := make([]float64, F)
	if err := s.scan(ctx, train, map[string]int{}, func(_ string, y float64, x []float64) {
		for j, v := range x {
			z[j] = (v - mean[j]) / std[j]
		}
		yc := y - ymean
		for j, zj := range z {
			atb[j] += zj * yc
			row := ata[j*F : (j+1)*F]
			for k := j; k < F; k++ {
				row[k] += zj * z[k]
			}
		}
	}); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	for j := range F {
		for k := j; k < F; k++ {
			v := ata[j*F+k]
			if j == k {
				v += o.RidgeAlpha
			}
			a.SetSym(j, k, v)
		}
		rhs.SetVec(j, atb[j])
	}
	var w mat.VecDense
	var chol mat.Cholesky
	if !chol.Factorize(a) {
		return nil, fmt.Errorf("%w: train: ridge normal equations are singular (constant or duplicate features?): set --ridge-alpha > 0", exitcode.ErrValidation)
	}
	if err := chol.SolveVecTo(&w, rhs); err != nil {
		return nil, fmt.Errorf("train: ridge solve: %w", err)
	}
	// Pass 3: train and val errors in hours.
	valSplit := o.ValSplit
	var sq [2]float64
	var cnt [2]int
	both := map[string]bool{dataset.SplitTrain: true, valSplit: valSplit != "" && valSplit != "none"}
	levels, err := o.intervalLevels()
	if err != nil {
		return nil, err
	}
	var valPred, valTrue []float64
	if err := s.scan(ctx, both, skipped, func(split string, y float64, x []float64) {
		pred := ymean
		for j, v := range x {
			pred += w.AtVec(j) * (v - mean[j]) / std[j]
		}
		i := 0
		if split != dataset.SplitTrain {
			i = 1
			if levels != nil {
				valPred, valTrue = append(valPred, pred), append(valTrue, y)
			}
		}
		sq[i] += (pred - y) * (pred - y)
		cnt[i]++
	}); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	arch := model.Arch{Type: model.TypeRidge, InputSize: F}
	p, err := model.NewParams(arch)
	if err != nil {
		return nil, err
	}
	wt := p.Get("ridge.weight")
	for j := range F {
		wt.Data[j] = float32(w.AtVec(j))
	}
	p.Get("ridge.bias").Data[0] = float32(ymean)
	wm.Scaler = dataset.Scaler{Kind: "zscore", Features: s.feats, Offset: mean, Scale: std, FitSplit: dataset.SplitTrain, FitRows: int64(n)}
	row := model.Epoch{Epoch: 1, TrainLoss: sq[0] / float64(cnt[0]), TrainRMSE: math.Sqrt(sq[0] / float64(cnt[0])), Seconds: time.Since(start).Seconds()}
	res := &Result{Model: o.Out, ModelType: ModelRidge, Parameters: p.Count(), Input: o.Stats, Features: s.feats, Window: wm.Window,
		TrainWindows: n, ValWindows: cnt[1], Epochs: 1, TargetScale: 1}
	if cnt[1] > 0 {
		row.ValLoss = sq[1] / float64(cnt[1])
		row.ValRMSE = math.Sqrt(row.ValLoss)
		res.BestEpoch, res.BestValLoss, res.BestValRMSE = 1, &row.ValLoss, &row.ValRMSE
	}
	res.FinalTrainLoss = row.TrainLoss
	res.History = []model.Epoch{row}
	res.ModelVersion = modelVersion(env, &o)
	ti := trainInfo{Model: ModelRidge, TargetScale: 1, ValSplit: o.ValSplit, Seed: o.Seed, TrainWindows: n, ValWindows: cnt[1],
		EpochsRun: 1, RidgeAlpha: o.RidgeAlpha}
	info, err := baseInfo(env, arch, wm, res.ModelVersion, o.Seed, ti, o.Stats)
	if err != nil {
		return nil, err
	}
	info.History = res.History
	if len(valPred) > 0 {
		info.Calibration, res.CalibrationSeconds, err = calibrate(env, valPred, valTrue, levels, wm.Horizon,
			fmt.Sprintf("%s split, the saved weights", valSplit), time.Now())
		if err != nil {
			return nil, err
		}
		res.Calibration = info.Calibration
	}
	if err := model.Save(o.Out, &model.Checkpoint{Params: p, Info: info}); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	env.Log.Info("ridge", "train_rmse_h", row.TrainRMSE, "val_rmse_h", row.ValRMSE, "features", F, "train_rows", n, "alpha", o.RidgeAlpha)
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}
