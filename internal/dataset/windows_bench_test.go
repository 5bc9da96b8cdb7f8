package dataset

import (
	"context"
	"math"
	"path/filepath"
	"strconv"
	"testing"
)

// writeBenchWindows writes n windows of t × f values (C-MAPSS-like: 30 × 14)
// to a file in dir and returns its path.
func writeBenchWindows(tb testing.TB, dir string, n, t, f int) string {
	tb.Helper()
	feats := make([]string, f)
	for j := range feats {
		feats[j] = "s" + strconv.Itoa(j)
	}
	wm := WindowsMeta{Window: t, Stride: 1, Features: feats, Horizon: 100, Thresholds: DefaultThresholds,
		Scaler: Scaler{Kind: "none", Features: feats, Offset: make([]float64, f), Scale: make([]float64, f)}}
	for j := range wm.Scaler.Scale {
		wm.Scaler.Scale[j] = 1
	}
	loc := filepath.Join(dir, "windows.parquet")
	w, err := CreateWindows(loc, wm, Meta{})
	if err != nil {
		tb.Fatal(err)
	}
	x := make([]float32, t*f)
	for i := range n {
		for j := range x {
			x[j] = float32(math.Sin(float64(i*len(x) + j)))
		}
		split := SplitTrain
		if i%5 == 0 {
			split = SplitTest
		}
		if err := w.Append(&Window{Tenant: "t", Device: "d" + strconv.Itoa(i/200), End: int64(i), RUL: float64(i % 200), RULRaw: math.NaN(), Health: Normal, Split: split, X: x}); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		tb.Fatal(err)
	}
	return loc
}

// BenchmarkReadWindows reads every window of a 20 000 × 30 × 14 file (the
// windows reader behind predict, evaluate and export).
func BenchmarkReadWindows(b *testing.B) {
	loc := writeBenchWindows(b, b.TempDir(), 20_000, 30, 14)
	b.ReportAllocs()
	b.SetBytes(20_000 * 30 * 14 * 4)
	for b.Loop() {
		ws, err := ReadWindows(context.Background(), loc)
		if err != nil {
			b.Fatal(err)
		}
		if ws.Len() != 20_000 {
			b.Fatalf("%d windows", ws.Len())
		}
	}
}
