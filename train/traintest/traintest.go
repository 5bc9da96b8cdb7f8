// Package traintest writes small synthetic windows and stats files with a
// learnable signal, for the train stage's tests and the CLI stories.
package traintest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/modax/modax-ml/internal/dataset"
)

// Spec describes a synthetic file. Each window has a hidden health h in
// [0, 1): its RUL is Horizon·(1-h) and its features drift with slope
// proportional to h over the window, plus noise.
type Spec struct {
	Train, Val, Test int // windows per split
	Window, Features int
	Horizon          float64
	Noise            float64
	Seed             uint64
	// NaNRow puts a NaN into x (windows) or the RUL (stats) of this row
	// (1-based; 0: none).
	NaNRow int
	// ValAsTrain writes the val windows with split train: the same rows,
	// in the same order, as a file whose train and val windows are one
	// train split.
	ValAsTrain bool
}

// Default is 256/64/64 windows of 12 steps × 3 features, horizon 100.
func Default() Spec {
	return Spec{Train: 256, Val: 64, Test: 64, Window: 12, Features: 3, Horizon: 100, Noise: 0.3, Seed: 1}
}

func (s Spec) features() []string {
	f := make([]string, s.Features)
	for i := range f {
		f[i] = fmt.Sprintf("sensor_%d", i)
	}
	return f
}

type row struct {
	split  string
	device string
	h      float64
}

func (s Spec) rows() []row {
	var rows []row
	rng := rand.New(rand.NewPCG(s.Seed, 7))
	for _, sp := range []struct {
		name string
		n    int
	}{{dataset.SplitTrain, s.Train}, {dataset.SplitVal, s.Val}, {dataset.SplitTest, s.Test}} {
		name := sp.name
		if s.ValAsTrain && name == dataset.SplitVal {
			name = dataset.SplitTrain
		}
		for i := range sp.n {
			rows = append(rows, row{split: name, device: fmt.Sprintf("%s-%d", sp.name, i%7), h: rng.Float64()})
		}
	}
	return rows
}

// WriteWindows writes a windows file (modax.windows/v1).
func WriteWindows(path string, s Spec) error {
	feats := s.features()
	wm := dataset.WindowsMeta{Window: s.Window, Stride: 1, Features: feats, Horizon: s.Horizon, Thresholds: dataset.DefaultThresholds,
		Scaler: dataset.Scaler{Kind: "zscore", Features: feats, Offset: make([]float64, len(feats)), Scale: ones(len(feats)), FitSplit: dataset.SplitTrain}}
	w, err := dataset.CreateWindows(path, wm, dataset.Meta{dataset.MetaStage: "traintest"}, dataset.WithNonFiniteX())
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(s.Seed, 8))
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	for i, r := range s.rows() {
		x := make([]float32, s.Window*s.Features)
		for t := range s.Window {
			for f := range s.Features {
				slope := float64(f+1) / float64(s.Features)
				x[t*s.Features+f] = float32(2*r.h*slope*float64(t+1)/float64(s.Window) - r.h + s.Noise*rng.NormFloat64())
			}
		}
		if i+1 == s.NaNRow {
			x[len(x)/2] = float32(math.NaN())
		}
		rul := s.Horizon * (1 - r.h)
		if err := w.Append(&dataset.Window{Tenant: "t", Device: r.device, LifeID: 1, End: t0 + int64(i)*3600e6, RUL: rul, RULRaw: math.NaN(),
			Health: dataset.DefaultThresholds.Classify(rul), Split: r.split, X: x}); err != nil {
			w.Abort()
			return err
		}
	}
	return w.Commit()
}

// WriteStats writes a stats file (modax.stats/v1): per feature the window
// mean and slope of the same signal, every 9th row missing one value.
func WriteStats(path string, s Spec) error {
	var feats []string
	for _, f := range s.features() {
		feats = append(feats, f+"__mean", f+"__roc")
	}
	cols := []arrow.Field{
		{Name: dataset.ColTenant, Type: arrow.BinaryTypes.String},
		{Name: dataset.ColDevice, Type: arrow.BinaryTypes.String},
		{Name: dataset.ColLifeID, Type: arrow.PrimitiveTypes.Int32},
		{Name: dataset.ColWindowEnd, Type: dataset.Timestamp},
		{Name: dataset.ColRUL, Type: arrow.PrimitiveTypes.Float64},
		{Name: dataset.ColRULRaw, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: dataset.ColHealth, Type: arrow.BinaryTypes.String},
		{Name: dataset.ColSplit, Type: arrow.BinaryTypes.String},
	}
	for _, f := range feats {
		cols = append(cols, arrow.Field{Name: f, Type: arrow.PrimitiveTypes.Float64, Nullable: true})
	}
	meta := dataset.Meta{dataset.MetaStage: "traintest"}
	meta.MustSet(dataset.MetaFeatures, feats)
	meta.MustSet(dataset.MetaWindow, s.Window)
	meta.MustSet(dataset.MetaHorizon, s.Horizon)
	meta.MustSet(dataset.MetaThresholds, dataset.DefaultThresholds)
	meta[dataset.MetaSchema] = dataset.KindStats
	keys, vals := make([]string, 0, len(meta)), make([]string, 0, len(meta))
	for k, v := range meta {
		keys, vals = append(keys, k), append(vals, v)
	}
	md := arrow.NewMetadata(keys, vals)
	sch := arrow.NewSchema(cols, &md)
	w, err := dataset.Create(path, sch)
	if err != nil {
		return err
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, sch)
	defer b.Release()
	rng := rand.New(rand.NewPCG(s.Seed, 9))
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	for i, r := range s.rows() {
		rul := s.Horizon * (1 - r.h)
		if i+1 == s.NaNRow {
			rul = math.NaN()
		}
		b.Field(0).(*array.StringBuilder).Append("t")
		b.Field(1).(*array.StringBuilder).Append(r.device)
		b.Field(2).(*array.Int32Builder).Append(1)
		b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(t0 + int64(i)*3600e6))
		b.Field(4).(*array.Float64Builder).Append(rul)
		b.Field(5).AppendNull()
		b.Field(6).(*array.StringBuilder).Append(dataset.DefaultThresholds.Classify(rul).String())
		b.Field(7).(*array.StringBuilder).Append(r.split)
		for f := range s.Features {
			slope := float64(f+1) / float64(s.Features)
			mean := r.h*slope*(1+1/float64(s.Window)) - r.h + s.Noise*rng.NormFloat64()/math.Sqrt(float64(s.Window))
			roc := 2*r.h*slope/float64(s.Window) + s.Noise*rng.NormFloat64()/float64(s.Window)
			fb := b.Field(8 + 2*f).(*array.Float64Builder)
			if i%9 == 4 && f == 0 {
				fb.AppendNull()
			} else {
				fb.Append(mean)
			}
			b.Field(9 + 2*f).(*array.Float64Builder).Append(roc)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		w.Abort()
		return err
	}
	return w.Commit()
}

func ones(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = 1
	}
	return s
}
