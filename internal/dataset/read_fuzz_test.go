package dataset

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
)

// The Fuzz*File targets feed corrupted copies of a valid file of each kind to
// every reader of that kind: a reader must return an error (or data), never
// panic, and never allocate more than maxFuzzAlloc for a file of a few
// kilobytes (a corrupt length or count in a footer or page header must not
// make it allocate what the file claims).

// maxFuzzAlloc bounds what one read of a fuzzed file may allocate in total.
const maxFuzzAlloc = 256 << 20

// fuzzSeeds writes a valid file of one kind twice, zstd-compressed (as the
// stages write it) and uncompressed (so that mutations reach the page
// decoders instead of failing decompression), and adds both as seeds.
// check is the main reader of the kind, which must accept both.
func fuzzSeeds(f *testing.F, write func(loc string, opts ...WriterOption) error, check func(loc string) error) {
	f.Helper()
	dir := f.TempDir()
	for i, opts := range [][]WriterOption{nil, {withParquetProps(parquet.WithCompression(compress.Codecs.Uncompressed))}} {
		loc := filepath.Join(dir, "seed"+string(rune('0'+i))+".parquet")
		if err := write(loc, opts...); err != nil {
			f.Fatal(err)
		}
		if err := check(loc); err != nil {
			f.Fatalf("seed %d: %v", i, err)
		}
		b, err := os.ReadFile(loc)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("PAR1PAR1"))
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
}

// fuzzRead writes b to a file and runs read on it, failing when it allocates
// more than maxFuzzAlloc. Errors are the expected outcome for most inputs.
func fuzzRead(t *testing.T, dir string, b []byte, read func(loc string)) {
	t.Helper()
	loc := filepath.Join(dir, "fuzz.parquet")
	if err := os.WriteFile(loc, b, 0o644); err != nil {
		t.Fatal(err)
	}
	before := heapAllocs()
	read(loc)
	if n := heapAllocs() - before; n > maxFuzzAlloc {
		t.Fatalf("reading a %d-byte file allocated %d MiB", len(b), n>>20)
	}
}

func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// FuzzReadingsFile: readings and labeled files (Open, Devices, DeviceFrames).
func FuzzReadingsFile(f *testing.F) {
	for _, labeled := range []bool{false, true} {
		fuzzSeeds(f, func(loc string, opts ...WriterOption) error {
			w, err := CreateFrames(loc, []string{"s1", "s2"}, labeled, Meta{MetaSource: "fuzz"}, opts...)
			if err != nil {
				return err
			}
			defer w.Abort()
			for d, dev := range []string{"a", "b"} {
				fr := NewFrame("t", dev, 2, labeled)
				for i := range 5 {
					fr.Time = append(fr.Time, int64(1000*i))
					fr.Sensors[0] = append(fr.Sensors[0], float64(i))
					fr.Sensors[1] = append(fr.Sensors[1], math.NaN())
					if labeled {
						fr.RUL = append(fr.RUL, float64(10-i))
						fr.RULRaw = append(fr.RULRaw, float64(10-i))
						fr.Health = append(fr.Health, Health(i%3))
						fr.Censored = append(fr.Censored, d == 1)
						fr.LifeID = append(fr.LifeID, int32(d))
					}
				}
				if err := w.Append(fr); err != nil {
					return err
				}
			}
			return w.Commit()
		}, func(loc string) error {
			kind := KindReadings
			if labeled {
				kind = KindLabeled
			}
			r, err := Open(loc, kind)
			if err != nil {
				return err
			}
			defer r.Close()
			for _, err := range r.DeviceFrames(context.Background(), nil) {
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRead(t, dir, b, func(loc string) {
			for _, kind := range []string{KindReadings, KindLabeled} {
				r, err := Open(loc, kind, WithBatchRows(3))
				if err != nil {
					continue
				}
				_, _ = r.Sensors()
				_, _ = r.Devices(context.Background())
				for _, err := range r.DeviceFrames(context.Background(), nil) {
					if err != nil {
						break
					}
				}
				r.Close()
			}
		})
	})
}

// FuzzFailuresFile: ReadFailures.
func FuzzFailuresFile(f *testing.F) {
	fuzzSeeds(f, func(loc string, opts ...WriterOption) error {
		return WriteFailures(loc, []Failure{
			{Tenant: "t", Device: "a", Time: 10, EventType: "failure", Component: "bearing", OpHours: 12.5},
			{Tenant: "t", Device: "b", Time: 20, EventType: "failure", OpHours: math.NaN()},
		}, Meta{}, opts...)
	}, func(loc string) error { _, _, err := ReadFailures(context.Background(), loc); return err })
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRead(t, dir, b, func(loc string) { _, _, _ = ReadFailures(context.Background(), loc) })
	})
}

// FuzzWindowsFile: ReadWindows, ReadWindowsN and SummarizeWindows.
func FuzzWindowsFile(f *testing.F) {
	wm := WindowsMeta{Window: 3, Stride: 1, Features: []string{"a", "b"}, Horizon: 100, Thresholds: DefaultThresholds,
		Scaler: Scaler{Kind: "zscore", Features: []string{"a", "b"}, Offset: []float64{0, 1}, Scale: []float64{1, 2}}}
	fuzzSeeds(f, func(loc string, opts ...WriterOption) error {
		w, err := CreateWindows(loc, wm, Meta{}, opts...)
		if err != nil {
			return err
		}
		defer w.Abort()
		for i := range 4 {
			split := []string{SplitTrain, SplitVal, SplitTest, SplitTrain}[i]
			raw := float64(i)
			if i == 2 {
				raw = math.NaN()
			}
			if err := w.Append(&Window{Tenant: "t", Device: "d", LifeID: int32(i / 2), End: int64(i), RUL: float64(i), RULRaw: raw,
				Health: Health(i % 3), Split: split, X: []float32{1, 2, 3, 4, 5, float32(i)}}); err != nil {
				return err
			}
		}
		return w.Commit()
	}, func(loc string) error { _, err := ReadWindows(context.Background(), loc); return err })
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRead(t, dir, b, func(loc string) {
			ctx := context.Background()
			_, _ = ReadWindows(ctx, loc)
			_, _ = ReadWindows(ctx, loc, SplitTest)
			_, _ = ReadWindowsN(ctx, loc, 2, SplitTrain)
			_, _ = SummarizeWindows(ctx, loc)
		})
	})
}

// FuzzStatsFile: ReadStats and ReadStatsRows, windowed and bucketed.
func FuzzStatsFile(f *testing.F) {
	feats := []string{"a__mean", "a__std"}
	fuzzSeeds(f, func(loc string, opts ...WriterOption) error {
		w, err := CreateStats(loc, feats, Meta{MetaWindow: "3"}, opts...)
		if err != nil {
			return err
		}
		defer w.Abort()
		rows := []StatsRow{
			{Tenant: "t", Device: "d1", LifeID: 0, End: 10, RUL: 5, RULRaw: 5, Health: Critical, Split: SplitTrain},
			{Tenant: "t", Device: "d2", LifeID: 1, End: 20, RUL: 100, RULRaw: math.NaN(), Health: Normal, Split: SplitTest},
		}
		for i := range rows {
			if err := w.Append(&rows[i], []float64{float64(i), math.NaN()}); err != nil {
				return err
			}
		}
		return w.Commit()
	}, func(loc string) error { _, err := ReadStats(context.Background(), loc); return err })
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRead(t, dir, b, func(loc string) {
			ctx := context.Background()
			_, _ = ReadStats(ctx, loc)
			_, _ = ReadStats(ctx, loc, SplitTest)
			_, _ = ReadStatsRows(ctx, loc, SplitTrain, feats, 10)
			_, _ = ReadStatsRows(ctx, loc, "", nil, 0)
		})
	})
}

// FuzzPredictionsFile: ReadPredictions.
func FuzzPredictionsFile(f *testing.F) {
	fuzzSeeds(f, func(loc string, opts ...WriterOption) error {
		return WritePredictions(loc, []Prediction{
			{Tenant: "t", Device: "d", LifeID: 1, End: 5, Split: SplitTest, RULTrue: 10, RULRaw: 10, RULPred: 9, HealthTrue: Warning, HealthPred: Critical,
				ModelVersion: "m1", Lower: 5, Upper: 12, Level: 0.9},
			{Tenant: "t", Device: "e", End: 6, Split: SplitTest, RULTrue: math.NaN(), RULRaw: math.NaN(), RULPred: 50,
				ModelVersion: "m1", Lower: math.NaN(), Upper: math.NaN(), Level: math.NaN()},
		}, Meta{}, opts...)
	}, func(loc string) error { _, _, err := ReadPredictions(context.Background(), loc); return err })
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRead(t, dir, b, func(loc string) { _, _, _ = ReadPredictions(context.Background(), loc) })
	})
}

// FuzzScoresFile: ReadScores.
func FuzzScoresFile(f *testing.F) {
	fuzzSeeds(f, func(loc string, opts ...WriterOption) error {
		return WriteScores(loc, []Score{
			{Tenant: "t", Device: "d", Time: 5, ScoredAt: 9, RUL: 12, Lower: 5, Upper: 20, Level: 0.9, Health: Warning, Change: -3, PreviousTime: 2, ModelVersion: "m1"},
			{Tenant: "t", Device: "e", Time: 6, ScoredAt: 9, RUL: 200, Lower: math.NaN(), Upper: math.NaN(), Level: math.NaN(), Change: math.NaN(), ModelVersion: "m1"},
		}, Meta{}, opts...)
	}, func(loc string) error { _, _, err := ReadScores(context.Background(), loc); return err })
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRead(t, dir, b, func(loc string) { _, _, _ = ReadScores(context.Background(), loc) })
	})
}

// FuzzSweepFile: ReadSweep.
func FuzzSweepFile(f *testing.F) {
	params := []SweepParam{{Name: "train.lr", Type: "float64"}, {Name: "train.hidden_size", Type: "int64"},
		{Name: "train.bidirectional", Type: "bool"}, {Name: "train.loss", Type: "string"}}
	fuzzSeeds(f, func(loc string, opts ...WriterOption) error {
		return WriteSweep(loc, params, []SweepTrial{
			{Trial: 0, Params: []any{0.01, int64(32), false, "mse"}, Status: "done", Epochs: 5, BestEpoch: 3, BestValRMSE: 20, BestValLoss: 0.1, Seconds: 2},
			{Trial: 1, Params: []any{0.1, int64(8), true, "huber"}, Status: "pruned", Epochs: 1, BestValRMSE: math.NaN(), BestValLoss: math.NaN(), PrunedAt: 1, Seconds: 1, Error: "x"},
		}, Meta{}, opts...)
	}, func(loc string) error { _, _, _, err := ReadSweep(context.Background(), loc); return err })
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRead(t, dir, b, func(loc string) { _, _, _, _ = ReadSweep(context.Background(), loc) })
	})
}

// TestCorruptArrowSchema: the failures file FuzzFailuresFile found, whose
// ARROW:schema claims ~40 million child fields (arrow-go allocated 4 GiB for
// them), is refused before arrow-go reads it, naming the file.
func TestCorruptArrowSchema(t *testing.T) {
	b, err := os.ReadFile("testdata/fuzz/FuzzFailuresFile/0718f99a9dd1c18c")
	if err != nil {
		t.Fatal(err)
	}
	lit := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[1]), "[]byte("), ")")
	data, err := strconv.Unquote(lit)
	if err != nil {
		t.Fatal(err)
	}
	loc := filepath.Join(t.TempDir(), "failures.parquet")
	if err := os.WriteFile(loc, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	before := heapAllocs()
	_, _, err = ReadFailures(context.Background(), loc)
	if err == nil || !strings.Contains(err.Error(), "open "+loc+": not a readable Parquet file (corrupt?): corrupt Arrow schema") {
		t.Errorf("ReadFailures: %v", err)
	}
	if n := heapAllocs() - before; n > 16<<20 {
		t.Errorf("refusing it allocated %d MiB", n>>20)
	}
}
