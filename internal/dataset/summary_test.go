package dataset

import (
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestSummarizeAndSampleWindows(t *testing.T) {
	loc := filepath.Join(t.TempDir(), "windows.parquet")
	wm := WindowsMeta{Window: 2, Stride: 1, Features: []string{"a"}, Horizon: 100, Thresholds: DefaultThresholds,
		Scaler: Scaler{Kind: "zscore", Features: []string{"a"}, Offset: []float64{0}, Scale: []float64{1}}}
	w, err := CreateWindows(loc, wm, Meta{})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	for i := range 10 {
		split, dev := SplitTrain, "d1"
		if i >= 6 {
			split, dev = SplitTest, "d"+string(rune('2'+i%2))
		}
		if err := w.Append(&Window{Tenant: "t", Device: dev, End: base + int64(i)*3600e6, RUL: 1, RULRaw: math.NaN(), Health: Normal, Split: split, X: []float32{float32(i), 0}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ws, err := ReadWindowsN(ctx, loc, 3, SplitTest)
	if err != nil {
		t.Fatal(err)
	}
	if ws.Len() != 3 || ws.XAt(0)[0] != 6 || ws.XAt(2)[0] != 8 {
		t.Fatalf("ReadWindowsN: %d windows, first %v", ws.Len(), ws.X)
	}
	s, err := SummarizeWindows(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	tr, te := s.Splits[SplitTrain], s.Splits[SplitTest]
	if tr.Windows != 6 || tr.Devices != 1 || te.Windows != 4 || te.Devices != 2 {
		t.Fatalf("summary %+v", s)
	}
	if !te.First.Equal(time.UnixMicro(base+6*3600e6)) || !s.Last.Equal(time.UnixMicro(base+9*3600e6)) || !s.First.Equal(time.UnixMicro(base)) {
		t.Fatalf("time range %+v", s)
	}
	if got := s.SortedSplits(); len(got) != 2 || got[0] != SplitTrain || got[1] != SplitTest {
		t.Fatalf("SortedSplits %v", got)
	}
}

func TestReadStatsRows(t *testing.T) {
	loc := filepath.Join(t.TempDir(), "stats.parquet")
	cols := []Column{
		{ColTenant, arrow.BinaryTypes.String, false}, {ColDevice, arrow.BinaryTypes.String, false},
		{ColWindowEnd, Timestamp, false}, {ColRUL, arrow.PrimitiveTypes.Float64, false},
		{ColSplit, arrow.BinaryTypes.String, false},
		{"a__mean", arrow.PrimitiveTypes.Float64, true}, {"a__std", arrow.PrimitiveTypes.Float64, true},
	}
	sch := NewSchema(KindStats, cols, Meta{})
	w, err := Create(loc, sch)
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, sch)
	defer b.Release()
	for i := range 5 {
		b.Field(0).(*array.StringBuilder).Append("t")
		b.Field(1).(*array.StringBuilder).Append("d")
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(i))
		b.Field(3).(*array.Float64Builder).Append(float64(i))
		split := SplitTest
		if i == 0 {
			split = SplitTrain
		}
		b.Field(4).(*array.StringBuilder).Append(split)
		b.Field(5).(*array.Float64Builder).Append(float64(10 * i))
		if i == 2 {
			b.Field(6).AppendNull()
		} else {
			b.Field(6).(*array.Float64Builder).Append(float64(i) / 2)
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
	// Feature order is the caller's; the row with a null feature is skipped.
	s, err := ReadStatsRows(context.Background(), loc, SplitTest, []string{"a__std", "a__mean"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 3 || s.X[0] != 0.5 || s.X[1] != 10 || s.End[1] != 3 || s.RUL[2] != 4 {
		t.Fatalf("stats rows %+v", s)
	}
	if s, _ := ReadStatsRows(context.Background(), loc, "", []string{"a__mean"}, 2); s.Len() != 2 {
		t.Fatalf("limit: %d rows", s.Len())
	}
	if _, err := ReadStatsRows(context.Background(), loc, SplitTest, []string{"b__mean"}, 0); err == nil {
		t.Fatal("missing feature column accepted")
	}
}
