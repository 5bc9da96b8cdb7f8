package dataset

import (
	"context"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Prediction is one row of a predictions file. RULTrue and RULRaw are NaN when
// unknown; HealthTrue is then meaningless and written as null. Lower, Upper
// and Level are the prediction interval, NaN (null) when the model has no
// interval calibration or the file predates the interval columns; a Level
// that is not in (0, 1) (the zero value) means no interval.
type Prediction struct {
	Tenant, Device string
	LifeID         int32
	End            int64
	Split          string
	RULTrue        float64
	RULRaw         float64
	RULPred        float64
	HealthTrue     Health
	HealthPred     Health
	ModelVersion   string
	Lower, Upper   float64
	Level          float64
}

// HasTruth reports whether the true RUL is known.
func (p *Prediction) HasTruth() bool { return !math.IsNaN(p.RULTrue) }

// HasInterval reports whether the prediction has an interval.
func (p *Prediction) HasInterval() bool {
	return p.Level > 0 && p.Level < 1 && !math.IsNaN(p.Lower) && !math.IsNaN(p.Upper)
}

// WritePredictions writes predictions to loc atomically.
func WritePredictions(loc string, ps []Prediction, meta Meta, opts ...WriterOption) error {
	cfg := writerConfig{mem: memory.DefaultAllocator}
	for _, o := range opts {
		o(&cfg)
	}
	sch := NewSchema(KindPredictions, PredictionsColumns(), meta)
	w, err := Create(loc, sch, opts...)
	if err != nil {
		return err
	}
	defer w.Abort()
	b := array.NewRecordBuilder(cfg.mem, sch)
	defer b.Release()
	flush := func() error {
		rec := b.NewRecordBatch()
		defer rec.Release()
		return w.Write(rec)
	}
	nullable := func(fb array.Builder, v float64) {
		if math.IsNaN(v) {
			fb.AppendNull()
		} else {
			fb.(*array.Float64Builder).Append(v)
		}
	}
	for i := range ps {
		p := &ps[i]
		b.Field(0).(*array.StringBuilder).Append(p.Tenant)
		b.Field(1).(*array.StringBuilder).Append(p.Device)
		b.Field(2).(*array.Int32Builder).Append(p.LifeID)
		b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(p.End))
		b.Field(4).(*array.StringBuilder).Append(p.Split)
		nullable(b.Field(5), p.RULTrue)
		nullable(b.Field(6), p.RULRaw)
		b.Field(7).(*array.Float64Builder).Append(p.RULPred)
		if p.HasTruth() {
			b.Field(8).(*array.StringBuilder).Append(p.HealthTrue.String())
		} else {
			b.Field(8).AppendNull()
		}
		b.Field(9).(*array.StringBuilder).Append(p.HealthPred.String())
		b.Field(10).(*array.StringBuilder).Append(p.ModelVersion)
		if p.HasInterval() {
			nullable(b.Field(11), p.Lower)
			nullable(b.Field(12), p.Upper)
			b.Field(13).(*array.Float64Builder).Append(p.Level)
		} else {
			b.Field(11).AppendNull()
			b.Field(12).AppendNull()
			b.Field(13).AppendNull()
		}
		if (i+1)%DefaultBatchRows == 0 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return w.Commit()
}

// ReadPredictions reads a whole predictions file.
func ReadPredictions(ctx context.Context, loc string) ([]Prediction, Meta, error) {
	r, err := Open(loc, KindPredictions)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	idx, err := locateColumns(loc, r.Schema(), predictionCols)
	if err != nil {
		return nil, nil, err
	}
	// The interval columns are optional: all three or none.
	var ivIdx []int
	if len(r.Schema().FieldIndices(ColRULLower)) > 0 || len(r.Schema().FieldIndices(ColRULUpper)) > 0 ||
		len(r.Schema().FieldIndices(ColIntervalLevel)) > 0 {
		if ivIdx, err = locateColumns(loc, r.Schema(), predictionIntervalCols); err != nil {
			return nil, nil, err
		}
	}
	out := make([]Prediction, 0, sizeHint(r.NumRows()))
	for rec, err := range r.Batches(ctx) {
		if err != nil {
			return nil, nil, err
		}
		tn := rec.Column(idx[0]).(*array.String)
		dv := rec.Column(idx[1]).(*array.String)
		li := rec.Column(idx[2]).(*array.Int32)
		we := rec.Column(idx[3]).(*array.Timestamp)
		sp := rec.Column(idx[4]).(*array.String)
		rt := rec.Column(idx[5]).(*array.Float64)
		rr := rec.Column(idx[6]).(*array.Float64)
		rp := rec.Column(idx[7]).(*array.Float64)
		ht := rec.Column(idx[8]).(*array.String)
		hp := rec.Column(idx[9]).(*array.String)
		mv := rec.Column(idx[10]).(*array.String)
		var lo, hi, lv *array.Float64
		if ivIdx != nil {
			lo = rec.Column(ivIdx[0]).(*array.Float64)
			hi = rec.Column(ivIdx[1]).(*array.Float64)
			lv = rec.Column(ivIdx[2]).(*array.Float64)
		}
		opt := func(a *array.Float64, i int) float64 {
			if a == nil || !a.IsValid(i) {
				return math.NaN()
			}
			return a.Value(i)
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			p := Prediction{Tenant: tn.Value(i), Device: dv.Value(i), LifeID: li.Value(i), End: int64(we.Value(i)),
				Split: sp.Value(i), RULTrue: math.NaN(), RULRaw: math.NaN(), RULPred: rp.Value(i), ModelVersion: mv.Value(i),
				Lower: opt(lo, i), Upper: opt(hi, i), Level: opt(lv, i)}
			if rt.IsValid(i) {
				p.RULTrue = rt.Value(i)
			}
			if rr.IsValid(i) {
				p.RULRaw = rr.Value(i)
			}
			if ht.IsValid(i) {
				if p.HealthTrue, err = ParseHealth(ht.Value(i)); err != nil {
					return nil, nil, fmt.Errorf("%s: row %d: %w", loc, len(out)+1, err)
				}
			}
			if p.HealthPred, err = ParseHealth(hp.Value(i)); err != nil {
				return nil, nil, fmt.Errorf("%s: row %d: %w", loc, len(out)+1, err)
			}
			out = append(out, p)
		}
	}
	return out, r.Meta(), nil
}
