package dataset

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestPredictionsIntervals: the interval columns round-trip, a prediction
// without an interval (NaN, or the zero Level) is written as nulls.
func TestPredictionsIntervals(t *testing.T) {
	loc := filepath.Join(t.TempDir(), "p.parquet")
	nan := math.NaN()
	in := []Prediction{
		{Tenant: "t", Device: "a", End: 1, Split: SplitTest, RULTrue: 10, RULRaw: 10, RULPred: 12, ModelVersion: "v", Lower: 8, Upper: 16, Level: 0.9},
		{Tenant: "t", Device: "a", End: 2, Split: SplitTest, RULTrue: 9, RULRaw: 9, RULPred: 11, ModelVersion: "v", Lower: nan, Upper: nan, Level: nan},
		{Tenant: "t", Device: "a", End: 3, Split: SplitTest, RULTrue: 8, RULRaw: 8, RULPred: 10, ModelVersion: "v"}, // zero Level: none
	}
	if err := WritePredictions(loc, in, Meta{}); err != nil {
		t.Fatal(err)
	}
	out, _, err := ReadPredictions(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	if p := out[0]; !p.HasInterval() || p.Lower != 8 || p.Upper != 16 || p.Level != 0.9 {
		t.Errorf("row 1: %+v", p)
	}
	for _, p := range out[1:] {
		if p.HasInterval() || !math.IsNaN(p.Lower) || !math.IsNaN(p.Upper) || !math.IsNaN(p.Level) {
			t.Errorf("row without interval read as %+v", p)
		}
	}
}

// oldPredictions writes a predictions file with the given columns only (the
// file layout before the interval columns, or a broken one).
func oldPredictions(t *testing.T, cols []Column) string {
	t.Helper()
	loc := filepath.Join(t.TempDir(), "old.parquet")
	sch := NewSchema(KindPredictions, cols, Meta{})
	w, err := Create(loc, sch)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	b := array.NewRecordBuilder(memory.DefaultAllocator, sch)
	defer b.Release()
	for i, c := range cols {
		switch c.Name {
		case ColTenant, ColDevice, ColSplit, ColHealthTrue, ColHealthPred, ColModelVersion:
			v := map[string]string{ColTenant: "t", ColDevice: "a", ColSplit: SplitTest, ColHealthTrue: "normal", ColHealthPred: "normal", ColModelVersion: "v1"}[c.Name]
			b.Field(i).(*array.StringBuilder).Append(v)
		case ColLifeID:
			b.Field(i).(*array.Int32Builder).Append(0)
		case ColWindowEnd:
			b.Field(i).(*array.TimestampBuilder).Append(arrow.Timestamp(5))
		default:
			b.Field(i).(*array.Float64Builder).Append(60)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestOldPredictionsReadable: a predictions file without the interval
// columns (written before they existed) reads, with no intervals; one with
// only some of them is refused naming the missing column.
func TestOldPredictionsReadable(t *testing.T) {
	ps, _, err := ReadPredictions(context.Background(), oldPredictions(t, predictionCols))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].RULPred != 60 || ps[0].HasInterval() || !math.IsNaN(ps[0].Lower) || !math.IsNaN(ps[0].Level) {
		t.Errorf("old file read as %+v", ps)
	}
	_, _, err = ReadPredictions(context.Background(), oldPredictions(t, append(PredictionsColumns()[:len(predictionCols)], predictionIntervalCols[0])))
	var se *SchemaError
	if !errors.As(err, &se) || se.Column != ColRULUpper {
		t.Errorf("file with rul_lower only: %v, want a SchemaError naming rul_upper", err)
	}
}
