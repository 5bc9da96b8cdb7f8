package dataset

import (
	"context"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// KindSweep is the schema of a hyper-parameter sweep's results (train
// --sweep): one row per trial, its parameters as columns named by their
// config keys ("train.lr") between trial and status.
const KindSweep = "modax.sweep/v1"

// MetaSweepID is the sweep id metadata key of a sweep file.
const MetaSweepID = "modax.sweep_id"

// Sweep columns.
const (
	ColTrial       = "trial"
	ColStatus      = "status"
	ColEpochs      = "epochs"
	ColBestEpoch   = "best_epoch"
	ColBestValRMSE = "best_val_rmse"
	ColBestValLoss = "best_val_loss"
	ColPrunedAt    = "pruned_at_epoch"
	ColSeconds     = "seconds"
	ColError       = "error"
)

var sweepCols = []Column{
	{ColTrial, arrow.PrimitiveTypes.Int64, false},
	{ColStatus, arrow.BinaryTypes.String, false},
	{ColEpochs, arrow.PrimitiveTypes.Int64, false},
	{ColBestEpoch, arrow.PrimitiveTypes.Int64, true},
	{ColBestValRMSE, arrow.PrimitiveTypes.Float64, true},
	{ColBestValLoss, arrow.PrimitiveTypes.Float64, true},
	{ColPrunedAt, arrow.PrimitiveTypes.Int64, true},
	{ColSeconds, arrow.PrimitiveTypes.Float64, false},
	{ColError, arrow.BinaryTypes.String, true},
}

// SweepParam is a parameter column of a sweep file.
type SweepParam struct {
	// Name is the config key ("train.hidden_size").
	Name string
	// Type is int64, float64, bool or string.
	Type string
}

// SweepTrial is one row of a sweep file. Params holds one value per
// SweepParam (int64, float64, bool or string as its Type says); a zero
// BestEpoch, NaN metrics, a zero PrunedAt and an empty Error are null.
type SweepTrial struct {
	Trial       int
	Params      []any
	Status      string
	Epochs      int
	BestEpoch   int
	BestValRMSE float64
	BestValLoss float64
	PrunedAt    int
	Seconds     float64
	Error       string
}

func sweepParamType(t string) (arrow.DataType, error) {
	switch t {
	case "int64":
		return arrow.PrimitiveTypes.Int64, nil
	case "float64":
		return arrow.PrimitiveTypes.Float64, nil
	case "bool":
		return arrow.FixedWidthTypes.Boolean, nil
	case "string":
		return arrow.BinaryTypes.String, nil
	}
	return nil, fmt.Errorf("sweep parameter type %q: want int64, float64, bool or string", t)
}

// SweepColumns are the columns of a sweep file with these parameters.
func SweepColumns(params []SweepParam) ([]Column, error) {
	cols := []Column{sweepCols[0]}
	for _, p := range params {
		t, err := sweepParamType(p.Type)
		if err != nil {
			return nil, err
		}
		cols = append(cols, Column{p.Name, t, false})
	}
	return append(cols, sweepCols[1:]...), nil
}

// WriteSweep writes a sweep file (in the given row order) to loc
// atomically (or as one of the InSet set's files).
func WriteSweep(loc string, params []SweepParam, trials []SweepTrial, meta Meta, opts ...WriterOption) error {
	cfg := writerConfig{mem: memory.DefaultAllocator}
	for _, o := range opts {
		o(&cfg)
	}
	cols, err := SweepColumns(params)
	if err != nil {
		return err
	}
	sch := NewSchema(KindSweep, cols, meta)
	w, err := Create(loc, sch, opts...)
	if err != nil {
		return err
	}
	defer w.Abort()
	b := array.NewRecordBuilder(cfg.mem, sch)
	defer b.Release()
	for _, t := range trials {
		if len(t.Params) != len(params) {
			return fmt.Errorf("write %s: trial %d has %d parameters, want %d", loc, t.Trial, len(t.Params), len(params))
		}
		b.Field(0).(*array.Int64Builder).Append(int64(t.Trial))
		for i, p := range params {
			fb := b.Field(1 + i)
			ok := false
			switch p.Type {
			case "int64":
				var v int64
				if v, ok = t.Params[i].(int64); ok {
					fb.(*array.Int64Builder).Append(v)
				}
			case "float64":
				var v float64
				if v, ok = t.Params[i].(float64); ok {
					fb.(*array.Float64Builder).Append(v)
				}
			case "bool":
				var v bool
				if v, ok = t.Params[i].(bool); ok {
					fb.(*array.BooleanBuilder).Append(v)
				}
			case "string":
				var v string
				if v, ok = t.Params[i].(string); ok {
					fb.(*array.StringBuilder).Append(v)
				}
			}
			if !ok {
				return fmt.Errorf("write %s: trial %d: %s is %T, want %s", loc, t.Trial, p.Name, t.Params[i], p.Type)
			}
		}
		n := 1 + len(params)
		b.Field(n).(*array.StringBuilder).Append(t.Status)
		b.Field(n + 1).(*array.Int64Builder).Append(int64(t.Epochs))
		appendIntOrNull(b.Field(n+2).(*array.Int64Builder), t.BestEpoch)
		appendFloatOrNull(b.Field(n+3).(*array.Float64Builder), t.BestValRMSE)
		appendFloatOrNull(b.Field(n+4).(*array.Float64Builder), t.BestValLoss)
		appendIntOrNull(b.Field(n+5).(*array.Int64Builder), t.PrunedAt)
		b.Field(n + 6).(*array.Float64Builder).Append(t.Seconds)
		if t.Error == "" {
			b.Field(n + 7).AppendNull()
		} else {
			b.Field(n + 7).(*array.StringBuilder).Append(t.Error)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		return err
	}
	return w.Commit()
}

func appendIntOrNull(b *array.Int64Builder, v int) {
	if v == 0 {
		b.AppendNull()
		return
	}
	b.Append(int64(v))
}

func appendFloatOrNull(b *array.Float64Builder, v float64) {
	if math.IsNaN(v) {
		b.AppendNull()
		return
	}
	b.Append(v)
}

// ReadSweep reads a sweep file: its parameter columns (those between trial
// and status) and its rows.
func ReadSweep(ctx context.Context, loc string) ([]SweepParam, []SweepTrial, Meta, error) {
	r, err := Open(loc, KindSweep)
	if err != nil {
		return nil, nil, nil, err
	}
	defer r.Close()
	sch := r.Schema()
	var params []SweepParam
	for _, f := range sch.Fields() {
		var t string
		switch f.Type.ID() {
		case arrow.INT64:
			t = "int64"
		case arrow.FLOAT64:
			t = "float64"
		case arrow.BOOL:
			t = "bool"
		case arrow.STRING:
			t = "string"
		}
		if len(f.Name) > 0 && !isSweepCol(f.Name) && t != "" {
			params = append(params, SweepParam{Name: f.Name, Type: t})
		}
	}
	names := []string{ColTrial}
	for _, p := range params {
		names = append(names, p.Name)
	}
	for _, c := range sweepCols[1:] {
		names = append(names, c.Name)
	}
	var out []SweepTrial
	for rec, err := range r.Batches(ctx, names...) {
		if err != nil {
			return nil, nil, nil, err
		}
		n := 1 + len(params)
		for i := range int(rec.NumRows()) {
			t := SweepTrial{Trial: int(rec.Column(0).(*array.Int64).Value(i))}
			for j, p := range params {
				c := rec.Column(1 + j)
				switch p.Type {
				case "int64":
					t.Params = append(t.Params, c.(*array.Int64).Value(i))
				case "float64":
					t.Params = append(t.Params, c.(*array.Float64).Value(i))
				case "bool":
					t.Params = append(t.Params, c.(*array.Boolean).Value(i))
				case "string":
					t.Params = append(t.Params, c.(*array.String).Value(i))
				}
			}
			t.Status = rec.Column(n).(*array.String).Value(i)
			t.Epochs = int(rec.Column(n + 1).(*array.Int64).Value(i))
			t.BestEpoch = intOrZero(rec.Column(n+2).(*array.Int64), i)
			t.BestValRMSE, t.BestValLoss = floatOrNaN(rec.Column(n+3).(*array.Float64), i), floatOrNaN(rec.Column(n+4).(*array.Float64), i)
			t.PrunedAt = intOrZero(rec.Column(n+5).(*array.Int64), i)
			t.Seconds = rec.Column(n + 6).(*array.Float64).Value(i)
			t.Error = rec.Column(n + 7).(*array.String).Value(i)
			out = append(out, t)
		}
	}
	return params, out, r.Meta(), nil
}

func intOrZero(a *array.Int64, i int) int {
	if a.IsNull(i) {
		return 0
	}
	return int(a.Value(i))
}

func floatOrNaN(a *array.Float64, i int) float64 {
	if a.IsNull(i) {
		return math.NaN()
	}
	return a.Value(i)
}

func isSweepCol(name string) bool {
	for _, c := range sweepCols {
		if c.Name == name {
			return true
		}
	}
	return false
}
