package dataset

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func testFrames() []*Frame {
	a := NewFrame("t1", "dev-a", 2, true)
	b := NewFrame("t1", "dev-b", 2, true)
	for i := range 5 {
		for _, f := range []*Frame{a, b} {
			f.Time = append(f.Time, int64(i)*3_600_000_000)
			f.Sensors[0] = append(f.Sensors[0], float64(i)+0.5)
			v := float64(i) * 2
			if i == 2 {
				v = math.NaN()
			}
			f.Sensors[1] = append(f.Sensors[1], v)
			f.RUL = append(f.RUL, float64(4-i))
			raw := float64(4 - i)
			if f == b {
				raw = math.NaN()
			}
			f.RULRaw = append(f.RULRaw, raw)
			f.Health = append(f.Health, Critical)
			f.Censored = append(f.Censored, f == b)
			f.LifeID = append(f.LifeID, 0)
		}
	}
	return []*Frame{a, b}
}

func TestFramesRoundTrip(t *testing.T) {
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer alloc.AssertSize(t, 0)
	dir := t.TempDir()
	loc := filepath.Join(dir, "labeled.parquet")
	meta := Meta{MetaRunID: "run-1"}
	meta.MustSet(MetaHorizon, 100.0)
	w, err := CreateFrames(loc, []string{"s1", "s2"}, true, meta, WithAllocator(alloc))
	if err != nil {
		t.Fatal(err)
	}
	w.batch = 3 // several batches and row groups
	for _, f := range testFrames() {
		if err := w.Append(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(loc, KindLabeled, WithReadAllocator(alloc), WithBatchRows(4))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.NumRows() != 10 {
		t.Fatalf("rows = %d, want 10", r.NumRows())
	}
	if r.Meta()[MetaRunID] != "run-1" || r.Meta()[MetaSchema] != KindLabeled || r.Meta()[MetaCreatedAt] == "" {
		t.Fatalf("metadata not carried: %v", r.Meta())
	}
	want := testFrames()
	i := 0
	for f, err := range r.DeviceFrames(context.Background(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		compareFrames(t, f, want[i])
		i++
	}
	if i != 2 {
		t.Fatalf("got %d devices, want 2", i)
	}
}

func compareFrames(t *testing.T, got, want *Frame) {
	t.Helper()
	if got.Tenant != want.Tenant || got.Device != want.Device || got.Len() != want.Len() {
		t.Fatalf("frame %s/%s len %d, want %s/%s len %d", got.Tenant, got.Device, got.Len(), want.Tenant, want.Device, want.Len())
	}
	eq := func(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }
	for i := range want.Time {
		if got.Time[i] != want.Time[i] || got.RUL[i] != want.RUL[i] || !eq(got.RULRaw[i], want.RULRaw[i]) ||
			got.Health[i] != want.Health[i] || got.Censored[i] != want.Censored[i] || got.LifeID[i] != want.LifeID[i] {
			t.Fatalf("%s row %d differs", want.Device, i)
		}
		for s := range want.Sensors {
			if !eq(got.Sensors[s][i], want.Sensors[s][i]) {
				t.Fatalf("%s row %d sensor %d: %v, want %v", want.Device, i, s, got.Sensors[s][i], want.Sensors[s][i])
			}
		}
	}
}

func TestOpenSchemaErrors(t *testing.T) {
	dir := t.TempDir()
	// A readings file whose timestamp column is int64.
	sch := arrow.NewSchema([]arrow.Field{
		{Name: ColTenant, Type: arrow.BinaryTypes.String},
		{Name: ColDevice, Type: arrow.BinaryTypes.String},
		{Name: ColTimestamp, Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	md := Meta{MetaSchema: KindReadings}.arrow()
	sch = arrow.NewSchema(sch.Fields(), &md)
	loc := filepath.Join(dir, "bad.parquet")
	w, err := Create(loc, sch)
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, sch)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).Append("t")
	b.Field(1).(*array.StringBuilder).Append("d")
	b.Field(2).(*array.Int64Builder).Append(1)
	rec := b.NewRecordBatch()
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	_, err = Open(loc, KindReadings)
	var se *SchemaError
	if !errors.As(err, &se) || se.Column != ColTimestamp || !strings.Contains(err.Error(), "bad.parquet") {
		t.Fatalf("err = %v, want a SchemaError naming bad.parquet and timestamp", err)
	}
	if _, err := Open(loc, KindFailures); err == nil || !strings.Contains(err.Error(), "is a modax.readings/v1 file") {
		t.Fatalf("err = %v, want wrong-kind error", err)
	}
	empty := filepath.Join(dir, "empty.parquet")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(empty, KindReadings); err == nil || !strings.Contains(err.Error(), "empty file") {
		t.Fatalf("err = %v, want empty-file error", err)
	}
	junk := filepath.Join(dir, "junk.parquet")
	if err := os.WriteFile(junk, []byte("device_id,timestamp\nx,1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(junk, KindReadings); err == nil || !strings.Contains(err.Error(), "junk.parquet") {
		t.Fatalf("err = %v, want not-Parquet error", err)
	}
}

func TestAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	loc := filepath.Join(dir, "readings.parquet")
	if err := os.WriteFile(loc, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := CreateFrames(loc, []string{"s"}, false, Meta{})
	if err != nil {
		t.Fatal(err)
	}
	f := NewFrame("t", "d", 1, false)
	f.Time = []int64{1, 2}
	f.Sensors[0] = []float64{1, 2}
	if err := w.Append(f); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	got, err := os.ReadFile(loc)
	if err != nil || string(got) != "old" {
		t.Fatalf("destination changed: %q %v", got, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("left files behind: %v", ents)
	}
}

// TestAtomicIntoPipe: writing to a named pipe or a device (modax-ml evaluate
// --report /dev/null, -o /dev/stdout) writes into it, and the node stays what
// it was: a rename would have replaced it with a regular file (as it once
// replaced /dev/null). Abort leaves it in place too. (A pipe, not /dev/null:
// a regression must not break the machine's /dev/null.)
func TestAtomicIntoPipe(t *testing.T) {
	for _, commit := range []bool{true, false} {
		fifo := filepath.Join(t.TempDir(), "out.parquet")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Skip("no named pipes here:", err)
		}
		got := make(chan []byte, 1)
		go func() {
			b, _ := os.ReadFile(fifo)
			got <- b
		}()
		w, err := CreateFrames(fifo, []string{"s"}, false, Meta{})
		if err != nil {
			t.Fatal(err)
		}
		f := NewFrame("t", "d", 1, false)
		f.Time = []int64{1, 2}
		f.Sensors[0] = []float64{1, 2}
		if err := w.Append(f); err != nil {
			t.Fatal(err)
		}
		if commit {
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
		} else {
			w.Abort()
		}
		if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
			t.Fatalf("commit %v: the named pipe was replaced: %v %v", commit, fi.Mode(), err)
		}
		select {
		case b := <-got:
			if commit && (len(b) < 8 || string(b[:4]) != "PAR1" || string(b[len(b)-4:]) != "PAR1") {
				t.Fatalf("the pipe got %d bytes, not a Parquet file", len(b))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("commit %v: nothing was written into the pipe", commit)
		}
	}
}

func TestWindowsRoundTrip(t *testing.T) {
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer alloc.AssertSize(t, 0)
	loc := filepath.Join(t.TempDir(), "windows.parquet")
	wm := WindowsMeta{Window: 3, Stride: 1, Features: []string{"a", "b"}, Horizon: 100, Thresholds: DefaultThresholds,
		Scaler: Scaler{Kind: "zscore", Features: []string{"a", "b"}, Offset: []float64{1, 2}, Scale: []float64{3, 4}}}
	w, err := CreateWindows(loc, wm, Meta{}, WithAllocator(alloc))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		x := make([]float32, 6)
		for j := range x {
			x[j] = float32(i*10 + j)
		}
		split := SplitTrain
		if i == 3 {
			split = SplitTest
		}
		if err := w.Append(&Window{Tenant: "t", Device: "d", End: int64(i), RUL: float64(10 - i), RULRaw: math.NaN(), Health: Critical, Split: split, X: x}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	ws, err := ReadWindows(context.Background(), loc, SplitTest)
	if err != nil {
		t.Fatal(err)
	}
	if ws.Len() != 1 || ws.XAt(0)[5] != 35 || ws.RUL[0] != 7 || !math.IsNaN(ws.RULRaw[0]) || ws.Meta.Scaler.Scale[1] != 4 {
		t.Fatalf("windows read back wrong: %+v", ws)
	}
}
