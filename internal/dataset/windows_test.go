package dataset

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modax/modax-ml/internal/exitcode"
)

// TestWindowsNonFinite: NaN and ±Inf in x are refused by the writer (unless
// WithNonFiniteX) and by the reader, with an error naming the file, the
// column, the row and the position; windows of splits not read are not
// looked at.
func TestWindowsNonFinite(t *testing.T) {
	dir := t.TempDir()
	wm := WindowsMeta{Window: 3, Stride: 1, Features: []string{"a", "b"}, Horizon: 100, Thresholds: DefaultThresholds,
		Scaler: Scaler{Kind: "none", Features: []string{"a", "b"}, Offset: []float64{0, 0}, Scale: []float64{1, 1}}}
	write := func(name string, bad float32, opts ...WriterOption) (string, error) {
		loc := filepath.Join(dir, name)
		w, err := CreateWindows(loc, wm, Meta{}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Abort()
		for i := range 5 {
			x := []float32{1, 2, 3, 4, 5, 6}
			split := SplitTrain
			if i == 3 {
				x[5] = bad // time step 2, feature b
				split = SplitTest
			}
			if err := w.Append(&Window{Tenant: "t", Device: "d", End: int64(i), RUL: 1, RULRaw: math.NaN(), Health: Critical, Split: split, X: x}); err != nil {
				return loc, err
			}
		}
		return loc, w.Commit()
	}
	for _, tc := range []struct {
		name string
		v    float32
		want string
	}{
		{"nan", float32(math.NaN()), "NaN"},
		{"inf", float32(math.Inf(1)), "+Inf"},
		{"neginf", float32(math.Inf(-1)), "-Inf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := write(tc.name+"-refused.parquet", tc.v)
			if !errors.Is(err, exitcode.ErrValidation) || !strings.Contains(err.Error(), "window of device d ending 1970-01-01T00:00:00Z: x is "+tc.want+" at position 5 (time step 2, feature b)") {
				t.Errorf("writer: %v, want a validation error naming the position", err)
			}
			loc, err := write(tc.name+".parquet", tc.v, WithNonFiniteX())
			if err != nil {
				t.Fatal(err)
			}
			for _, splits := range [][]string{nil, {SplitTest}} {
				_, err = ReadWindows(context.Background(), loc, splits...)
				want := loc + ": column x, row 4 (window 3): value " + tc.want + " at position 5 (time step 2, feature b)"
				if !errors.Is(err, exitcode.ErrValidation) || !strings.Contains(err.Error(), want) {
					t.Errorf("read %v: %v, want %q", splits, err, want)
				}
			}
			ws, err := ReadWindows(context.Background(), loc, SplitTrain)
			if err != nil || ws.Len() != 4 {
				t.Errorf("train split (finite): %v, %v", err, ws)
			}
			if ws, err := ReadWindowsN(context.Background(), loc, 2); err != nil || ws.Len() != 2 {
				t.Errorf("first 2 windows (finite): %v, %v", err, ws)
			}
		})
	}
}

func TestFirstNonFinite(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, tc := range []struct {
		xs   []float32
		want int
	}{
		{nil, -1},
		{[]float32{0, -0, 1, math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32}, -1},
		{[]float32{1, nan}, 1},
		{[]float32{-inf, 1, nan}, 0},
		{[]float32{1, 2, inf}, 2},
		{[]float32{math.Float32frombits(0x7fc00001)}, 0}, // a NaN payload
	} {
		if got := FirstNonFinite(tc.xs); got != tc.want {
			t.Errorf("FirstNonFinite(%v) = %d, want %d", tc.xs, got, tc.want)
		}
	}
}

// BenchmarkFirstNonFinite is the finiteness check alone over the x values of
// the BenchmarkReadWindows file (the reader's added cost).
func BenchmarkFirstNonFinite(b *testing.B) {
	xs := make([]float32, 20_000*30*14)
	for j := range xs {
		xs[j] = float32(math.Sin(float64(j)))
	}
	b.SetBytes(int64(len(xs)) * 4)
	for b.Loop() {
		if FirstNonFinite(xs) >= 0 {
			b.Fatal("non-finite")
		}
	}
}
