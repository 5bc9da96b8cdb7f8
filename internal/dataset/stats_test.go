package dataset

import (
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestStatsRoundTrip(t *testing.T) {
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer alloc.AssertSize(t, 0)
	dir := t.TempDir()
	loc := filepath.Join(dir, "stats.parquet")
	feats := []string{"a__mean", "a__std"}
	w, err := CreateStats(loc, feats, Meta{MetaWindow: "3"}, WithAllocator(alloc))
	if err != nil {
		t.Fatal(err)
	}
	rows := []StatsRow{
		{Tenant: "t", Device: "d1", LifeID: 0, End: 10, RUL: 5, RULRaw: 5, Health: Critical, Split: SplitTrain},
		{Tenant: "t", Device: "d2", LifeID: 1, End: 20, RUL: 100, RULRaw: math.NaN(), Health: Normal, Split: SplitTest},
	}
	vals := [][]float64{{1.5, 0.25}, {math.NaN(), 2}}
	for i := range rows {
		if err := w.Append(&rows[i], vals[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Append(&rows[0], []float64{1}); err == nil {
		t.Fatal("a row of the wrong width was accepted")
	}
	if err := w.AppendBucket("t", "d", 0, 1, vals[0]); err == nil {
		t.Fatal("AppendBucket on a windowed stats file was accepted")
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	all, err := ReadStats(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	if all.Len() != 2 || !slices.Equal(all.Features, feats) || all.Row(0)[0] != 1.5 || !math.IsNaN(all.Row(1)[0]) ||
		!math.IsNaN(all.RULRaw[1]) || all.Health[0] != Critical || all.Meta[MetaWindow] != "3" {
		t.Fatalf("read back %+v", all)
	}
	test, err := ReadStats(context.Background(), loc, SplitTest)
	if err != nil || test.Len() != 1 || test.Device[0] != "d2" {
		t.Fatalf("split filter: %+v %v", test, err)
	}

	bl := filepath.Join(dir, "buckets.parquet")
	bw, err := CreateBucketStats(bl, feats, time.Hour, Meta{}, WithAllocator(alloc))
	if err != nil {
		t.Fatal(err)
	}
	if err := bw.AppendBucket("t", "d", 3600e6, 12, vals[0]); err != nil {
		t.Fatal(err)
	}
	if err := bw.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadStats(context.Background(), bl); err == nil || !strings.Contains(err.Error(), "time-bucketed") {
		t.Fatalf("reading a bucketed file as windowed stats: %v", err)
	}
	r, err := Open(bl, KindStats)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Meta()[MetaBucket] != "1h0m0s" || r.NumRows() != 1 {
		t.Fatalf("bucket metadata %v rows %d", r.Meta(), r.NumRows())
	}
	if _, err := CreateStats(filepath.Join(dir, "dup.parquet"), []string{"a", "a"}, Meta{}); err == nil {
		t.Fatal("duplicate feature columns were accepted")
	}
}

func TestDevices(t *testing.T) {
	loc := filepath.Join(t.TempDir(), "labeled.parquet")
	w, err := CreateFrames(loc, []string{"s1", "s2"}, true, Meta{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range testFrames() {
		if err := w.Append(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(loc, KindLabeled, WithBatchRows(3))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	keys, err := r.Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []DeviceKey{{"t1", "dev-a"}, {"t1", "dev-b"}}; !slices.Equal(keys, want) {
		t.Fatalf("devices %v, want %v", keys, want)
	}
}

// TestConditionScalerShape pins the JSON shape of a per-condition scaler
// (documented in the README for the trainer and the ONNX export).
func TestConditionScalerShape(t *testing.T) {
	s := Scaler{Kind: "zscore", Features: []string{"s_2"}, FitSplit: SplitTrain, FitRows: 30,
		Conditions: &ConditionScaler{Columns: []string{"setting_1", "setting_3"}, Centers: [][]float64{{0, 100}, {42, 100}},
			Offset: [][]float64{{1}, {2}}, Scale: [][]float64{{10}, {20}}, FitRows: []int64{10, 20}}}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"zscore","features":["s_2"],"offset":null,"scale":null,"fit_split":"train","fit_rows":30,` +
		`"conditions":{"columns":["setting_1","setting_3"],"decimals":0,"centers":[[0,100],[42,100]],"offset":[[1],[2]],"scale":[[10],[20]],"fit_rows":[10,20]}}`
	if string(b) != want {
		t.Fatalf("json\n%s\nwant\n%s", b, want)
	}
	if !s.PerCondition() || s.Conditions.Condition([]float64{40, 99}) != 1 {
		t.Fatal("nearest condition")
	}
	if off, scale := s.Params([]float64{1, 100}); off[0] != 1 || scale[0] != 10 {
		t.Fatalf("params %v %v", off, scale)
	}
	if err := s.check(1); err != nil {
		t.Fatal(err)
	}
	if err := s.check(2); err == nil {
		t.Fatal("a per-condition scaler with the wrong width passed the check")
	}
	g := Scaler{Kind: "zscore", Offset: []float64{1}, Scale: []float64{2}}
	if g.PerCondition() || g.check(1) != nil || g.check(2) == nil {
		t.Fatal("global scaler check")
	}
}
