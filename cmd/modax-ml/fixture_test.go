package main

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/modax/modax-ml/evaluate"
	"github.com/modax/modax-ml/internal/conformal"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/infer"
	"github.com/modax/modax-ml/internal/model"
)

// fixtureMain is the test-only "evalfixture" command of the testscript
// stories: it writes small deterministic files that the stories' stages read.
//
//	evalfixture model OUT [SEED]                          a checkpoint with a training history
//	evalfixture predictions OUT MODEL [--worse] [--nan] [--calibrated]
//	                                                      predictions recorded as made by MODEL (--calibrated: with a 90 % interval calibration)
//	evalfixture windows OUT [--swapped] [--window N] [--bad V]  windows for the fixture model (features temperature, vibration; window 4);
//	                                                      --bad puts V (NaN, +Inf, -Inf) at position 5 of row 130 (a test window)
//	evalfixture model-for WINDOWS OUT                     an untrained checkpoint with the input contract of a real windows file (a stand-in for train)
func fixtureMain() int {
	args := os.Args[1:]
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "evalfixture:", err)
		return 1
	}
	if len(args) < 2 {
		return fail(fmt.Errorf("usage: evalfixture model OUT | predictions OUT MODEL [--worse] [--nan]"))
	}
	switch args[0] {
	case "model":
		seed := uint64(1)
		if len(args) > 2 {
			if _, err := fmt.Sscan(args[2], &seed); err != nil {
				return fail(err)
			}
		}
		if err := fixtureModel(args[1], seed); err != nil {
			return fail(err)
		}
	case "predictions":
		if len(args) < 3 {
			return fail(fmt.Errorf("predictions OUT MODEL"))
		}
		if err := fixturePredictions(args[1], args[2], slices.Contains(args, "--worse"), slices.Contains(args, "--nan"), slices.Contains(args, "--calibrated")); err != nil {
			return fail(err)
		}
	case "model-for":
		if len(args) < 3 {
			return fail(fmt.Errorf("model-for WINDOWS OUT"))
		}
		if err := fixtureModelFor(args[1], args[2]); err != nil {
			return fail(err)
		}
	case "windows":
		window := 4
		if i := slices.Index(args, "--window"); i > 0 && i+1 < len(args) {
			if _, err := fmt.Sscan(args[i+1], &window); err != nil {
				return fail(err)
			}
		}
		bad := 0.0
		if i := slices.Index(args, "--bad"); i > 0 && i+1 < len(args) {
			v, err := strconv.ParseFloat(args[i+1], 64)
			if err != nil {
				return fail(err)
			}
			bad = v
		}
		if err := fixtureWindows(args[1], slices.Contains(args, "--swapped"), window, bad); err != nil {
			return fail(err)
		}
	default:
		return fail(fmt.Errorf("unknown fixture %q", args[0]))
	}
	return 0
}

func fixtureModel(out string, seed uint64) error {
	feats := []string{"temperature", "vibration"}
	p, err := model.NewParams(model.Arch{Type: model.TypeLSTM, InputSize: len(feats), Hidden: 4, Layers: 1, FC: 3})
	if err != nil {
		return err
	}
	p.Init(seed)
	// As train writes it: MSE on RUL/100, RMSE in hours.
	hist := []model.Epoch{{Epoch: 1, TrainLoss: 0.9, ValLoss: 1.1}, {Epoch: 2, TrainLoss: 0.4, ValLoss: 0.5}, {Epoch: 3, TrainLoss: 0.2, ValLoss: 0.3}}
	for i := range hist {
		hist[i].TrainRMSE, hist[i].ValRMSE = 100*math.Sqrt(hist[i].TrainLoss), 100*math.Sqrt(hist[i].ValLoss)
	}
	return model.Save(out, &model.Checkpoint{Params: p, Info: model.Info{Arch: p.Arch, Features: feats, Window: 4,
		Scaler:  dataset.Scaler{Kind: "zscore", Features: feats, Offset: []float64{0, 0}, Scale: []float64{1, 1}},
		Horizon: 100, Thresholds: dataset.DefaultThresholds, ModelVersion: "fixture-v1", History: hist,
		CreatedAt: "2024-03-01T00:00:00Z"}})
}

func fixturePredictions(out, modelPath string, worse, withNaN, calibrated bool) error {
	sha, err := dataset.FileSHA256(modelPath)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	th := dataset.DefaultThresholds
	t0 := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	var ps []dataset.Prediction
	for _, split := range []string{"train", "val", "test"} {
		for k := range 5 {
			for w := range 40 {
				raw := float64(39-w) * 3
				truth := math.Min(raw, 100)
				err := float64(k-2)*2 + rng.NormFloat64()*3
				if worse {
					err *= 2
				}
				pred := math.Max(0, truth+err)
				ps = append(ps, dataset.Prediction{Tenant: "acme", Device: fmt.Sprintf("%s-%02d", split, k),
					End: dataset.Micros(t0.Add(time.Duration(w) * 3 * time.Hour)), Split: split, RULTrue: truth, RULRaw: raw,
					RULPred: pred, HealthTrue: th.Classify(truth), HealthPred: th.Classify(pred), ModelVersion: "fixture-v1"})
			}
		}
	}
	if withNaN {
		ps[42].RULPred = math.NaN()
	}
	meta := dataset.Meta{}
	meta.MustSet(dataset.MetaThresholds, th)
	meta.MustSet(dataset.MetaHorizon, 100.0)
	meta.MustSet(dataset.MetaModel, infer.ModelRef{Path: modelPath, SHA256: sha, ModelVersion: "fixture-v1"})
	meta.MustSet(dataset.MetaInputs, []dataset.Input{{Path: "windows.parquet", SHA256: "0000"}, {Path: modelPath, SHA256: sha}})
	if calibrated {
		meta.MustSet(model.MetaCalibration, &conformal.Calibration{Method: conformal.Method, Horizon: 100, Levels: []float64{0.9}, N: 200,
			Buckets: []conformal.Bucket{{Lo: 0, Hi: 50, N: 100, Radius: []conformal.Radius{6}}, {Lo: 50, Hi: 100, N: 100, Radius: []conformal.Radius{8}}}})
	}
	return dataset.WritePredictions(out, ps, meta)
}

func fixtureWindows(out string, swapped bool, window int, bad float64) error {
	feats := []string{"temperature", "vibration"}
	if swapped {
		feats = []string{"vibration", "temperature"}
	}
	th := dataset.DefaultThresholds
	wm := dataset.WindowsMeta{Window: window, Stride: 1, Features: feats, Horizon: 100, Thresholds: th,
		Scaler: dataset.Scaler{Kind: "zscore", Features: feats, Offset: []float64{0, 0}, Scale: []float64{1, 1}, FitSplit: "train"}}
	w, err := dataset.CreateWindows(out, wm, dataset.Meta{}, dataset.WithNonFiniteX())
	if err != nil {
		return err
	}
	defer w.Abort()
	rng := rand.New(rand.NewPCG(5, 6))
	t0 := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, split := range []string{"train", "val", "test"} {
		for k := range 3 {
			for i := range 20 {
				rul := float64(19-i) * 5
				x := make([]float32, window*len(feats))
				for j := range x {
					x[j] = float32(rng.NormFloat64())
				}
				if bad != 0 && split == "test" && k == 0 && i == 9 && len(x) > 5 {
					x[5] = float32(bad)
				}
				if err := w.Append(&dataset.Window{Tenant: "acme", Device: fmt.Sprintf("%s-%02d", split, k), LifeID: 0,
					End: dataset.Micros(t0.Add(time.Duration(i) * time.Hour)), RUL: rul, RULRaw: rul, Health: th.Classify(rul),
					Split: split, X: x}); err != nil {
					return err
				}
			}
		}
	}
	return w.Commit()
}

func fixtureModelFor(windows, out string) error {
	r, err := dataset.Open(windows, dataset.KindWindows)
	if err != nil {
		return err
	}
	wm, err := dataset.ReadWindowsMeta(windows, r.Meta())
	r.Close()
	if err != nil {
		return err
	}
	p, err := model.NewParams(model.Arch{Type: model.TypeLSTM, InputSize: len(wm.Features), Hidden: 8, Layers: 2, FC: 4})
	if err != nil {
		return err
	}
	p.Init(3)
	for _, n := range []string{"fc2.weight", "fc2.bias"} { // outputs in hours, as a trainer saves them
		for i := range p.Get(n).Data {
			p.Get(n).Data[i] *= float32(wm.Horizon)
		}
	}
	return model.Save(out, &model.Checkpoint{Params: p, Info: model.Info{Arch: p.Arch, Features: wm.Features, Window: wm.Window,
		Scaler: wm.Scaler, Horizon: wm.Horizon, Thresholds: wm.Thresholds, ModelVersion: "untrained"}})
}

// cmapssSummaryMain is tools/cmapss-summary for the testscript stories:
// cmapss-summary -subset NAME metrics.json...
func cmapssSummaryMain() int {
	args := os.Args[1:]
	subset := "FD001"
	if len(args) >= 2 && args[0] == "-subset" {
		subset, args = args[1], args[2:]
	}
	s, err := evaluate.SummarizeSeeds(subset, args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cmapss-summary:", err)
		return 1
	}
	b, err := json.Marshal(s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cmapss-summary:", err)
		return 1
	}
	fmt.Println(string(b))
	return 0
}
