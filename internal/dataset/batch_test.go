package dataset

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// rowGroups returns the row counts of the row groups of a file.
func rowGroups(t *testing.T, loc, kind string) []int64 {
	t.Helper()
	r, err := Open(loc, kind)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []int64
	for i := range r.pf.NumRowGroups() {
		out = append(out, r.pf.MetaData().RowGroup(i).NumRows())
	}
	return out
}

// The typed writers share one batching mechanism: a full batch becomes a row
// group, the rest is written on Commit, and the rows read back in order.
func TestBatchedWritersSplitRowGroups(t *testing.T) {
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer alloc.AssertSize(t, 0)
	ctx := context.Background()
	dir := t.TempDir()

	t.Run("windows", func(t *testing.T) {
		loc := filepath.Join(dir, "windows.parquet")
		wm := WindowsMeta{Window: 1, Stride: 1, Features: []string{"a"}, Horizon: 10, Thresholds: DefaultThresholds,
			Scaler: Scaler{Kind: "none", Features: []string{"a"}, Offset: []float64{0}, Scale: []float64{1}}}
		w, err := CreateWindows(loc, wm, Meta{}, WithAllocator(alloc))
		if err != nil {
			t.Fatal(err)
		}
		n := windowsBatch + 5
		for i := range n {
			split := SplitTrain
			if i%2 == 1 {
				split = SplitTest
			}
			if err := w.Append(&Window{Tenant: "t", Device: "d", End: int64(i), RUL: float64(i), RULRaw: float64(i), Health: Normal, Split: split, X: []float32{float32(i)}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		if got := rowGroups(t, loc, KindWindows); len(got) != 2 || got[0] != int64(windowsBatch) || got[1] != 5 {
			t.Fatalf("row groups %v, want [%d 5]", got, windowsBatch)
		}
		ws, err := ReadWindows(ctx, loc, SplitTest)
		if err != nil {
			t.Fatal(err)
		}
		if ws.Len() != n/2 || ws.End[ws.Len()-1] != int64(n-2) || ws.XAt(ws.Len() - 1)[0] != float32(n-2) || ws.RULRaw[3] != 7 {
			t.Fatalf("read back %d test windows, last end %d", ws.Len(), ws.End[ws.Len()-1])
		}
		// Stopping after n windows works across a batch boundary.
		few, err := ReadWindowsN(ctx, loc, windowsBatch+1)
		if err != nil || few.Len() != windowsBatch+1 || few.XAt(windowsBatch)[0] != float32(windowsBatch) {
			t.Fatalf("ReadWindowsN: %v", err)
		}
	})

	t.Run("stats", func(t *testing.T) {
		loc := filepath.Join(dir, "stats.parquet")
		w, err := CreateStats(loc, []string{"a__mean"}, Meta{}, WithAllocator(alloc))
		if err != nil {
			t.Fatal(err)
		}
		n := DefaultBatchRows + 5
		for i := range n {
			row := StatsRow{Tenant: "t", Device: "d", End: int64(i), RUL: 1, RULRaw: math.NaN(), Health: Warning, Split: SplitVal}
			if err := w.Append(&row, []float64{float64(i)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		if got := rowGroups(t, loc, KindStats); len(got) != 2 || got[0] != DefaultBatchRows || got[1] != 5 {
			t.Fatalf("row groups %v, want [%d 5]", got, DefaultBatchRows)
		}
		s, err := ReadStats(ctx, loc)
		if err != nil {
			t.Fatal(err)
		}
		if s.Len() != n || s.Row(n - 1)[0] != float64(n-1) || !math.IsNaN(s.RULRaw[n-1]) || s.Health[0] != Warning {
			t.Fatalf("read back %d rows", s.Len())
		}
	})

	t.Run("frames", func(t *testing.T) {
		loc := filepath.Join(dir, "readings.parquet")
		w, err := CreateFrames(loc, []string{"s"}, false, Meta{}, WithAllocator(alloc))
		if err != nil {
			t.Fatal(err)
		}
		n := DefaultBatchRows + 5
		f := NewFrame("t", "d", 1, false)
		for i := range n {
			f.Time = append(f.Time, int64(i))
			f.Sensors[0] = append(f.Sensors[0], float64(i))
		}
		if err := w.Append(f); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		if got := rowGroups(t, loc, KindReadings); len(got) != 2 || got[0] != DefaultBatchRows || got[1] != 5 {
			t.Fatalf("row groups %v, want [%d 5]", got, DefaultBatchRows)
		}
	})
}

// Reading a file whose column appears twice names the column.
func TestReadStatsDuplicateColumn(t *testing.T) {
	loc := filepath.Join(t.TempDir(), "dup.parquet")
	cols := append(StatsColumns([]string{"a"}), Column{"a", arrow.PrimitiveTypes.Float64, true})
	m := Meta{}
	m.MustSet(MetaFeatures, []string{"a"})
	sch := NewSchema(KindStats, cols, m)
	w, err := Create(loc, sch)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	b := array.NewRecordBuilder(memory.DefaultAllocator, sch)
	defer b.Release()
	rec := b.NewRecordBatch()
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	_, err = ReadStats(context.Background(), loc)
	if err == nil || !strings.Contains(err.Error(), `column "a": appears more than once`) {
		t.Fatalf("got %v, want the duplicated column named", err)
	}
}
