package location_test

import (
	"context"
	"math"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/location"
	"github.com/modax/modax-ml/internal/testutil"
)

// benchWindows writes n windows of t × f values (C-MAPSS-like: 30 × 14) to
// a local file and returns its bytes.
func benchWindows(b *testing.B, n, t, f int) []byte {
	b.Helper()
	feats := make([]string, f)
	for j := range feats {
		feats[j] = "s" + strconv.Itoa(j)
	}
	wm := dataset.WindowsMeta{Window: t, Stride: 1, Features: feats, Horizon: 100, Thresholds: dataset.DefaultThresholds,
		Scaler: dataset.Scaler{Kind: "none", Features: feats, Offset: make([]float64, f), Scale: make([]float64, f)}}
	for j := range wm.Scaler.Scale {
		wm.Scaler.Scale[j] = 1
	}
	loc := filepath.Join(b.TempDir(), "windows.parquet")
	w, err := dataset.CreateWindows(loc, wm, dataset.Meta{})
	if err != nil {
		b.Fatal(err)
	}
	x := make([]float32, t*f)
	for i := range n {
		for j := range x {
			x[j] = float32(math.Sin(float64(i*len(x) + j)))
		}
		split := dataset.SplitTrain
		if i%5 == 0 {
			split = dataset.SplitTest
		}
		if err := w.Append(&dataset.Window{Tenant: "t", Device: "d" + strconv.Itoa(i/200), End: int64(i), RUL: float64(i % 200),
			RULRaw: math.NaN(), Health: dataset.Normal, Split: split, X: x}); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		b.Fatal(err)
	}
	data, err := location.ReadFile(context.Background(), loc)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkReadWindows reads a 20 000 × 30 × 14 windows file (dataset's
// BenchmarkReadWindows) from a local file and from a bucket: the in-process
// gofakes3 and the npm s3rver in its own process (real HTTP on loopback,
// ranged GETs of 1 MiB). The ratio to local is the cost of reading through
// ranged requests.
func BenchmarkReadWindows(b *testing.B) {
	data := benchWindows(b, 20_000, 30, 14)
	read := func(b *testing.B, loc string) {
		b.Helper()
		b.ReportAllocs()
		b.SetBytes(20_000 * 30 * 14 * 4)
		for b.Loop() {
			ws, err := dataset.ReadWindows(context.Background(), loc)
			if err != nil {
				b.Fatal(err)
			}
			if ws.Len() != 20_000 {
				b.Fatalf("%d windows", ws.Len())
			}
		}
	}
	b.Run("local", func(b *testing.B) {
		loc := filepath.Join(b.TempDir(), "windows.parquet")
		if err := atomicfile.WriteFile(loc, data); err != nil {
			b.Fatal(err)
		}
		read(b, loc)
	})
	for _, srv := range []string{"gofakes3", "s3rver"} {
		b.Run(srv, func(b *testing.B) {
			if srv == "gofakes3" {
				testutil.FakeS3(b, "bench")
			} else {
				testutil.S3rver(b, "bench")
			}
			loc := "s3://bench/windows.parquet"
			if err := atomicfile.WriteFile(loc, data); err != nil {
				b.Fatal(err)
			}
			read(b, loc)
		})
	}
}
