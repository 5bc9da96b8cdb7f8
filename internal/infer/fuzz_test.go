package infer

import (
	"context"
	"os"
	"path/filepath"
	"runtime/metrics"
	"testing"

	"github.com/modax/modax-ml/internal/conformal"
	"github.com/modax/modax-ml/internal/fixture"
	"github.com/modax/modax-ml/internal/model"
)

// FuzzLoad feeds corrupted model files, as predict, score and evaluate take
// them with --model, to Load both as model.onnx and as model.safetensors,
// and runs what loads on one window of the size its metadata claims (when
// that is small): an error naming the file or predictions, never a panic,
// never more than 256 MiB allocated.
func FuzzLoad(f *testing.F) {
	dir := f.TempDir()
	ck := fixture.Checkpoint(model.Arch{Type: model.TypeLSTM, InputSize: 3, Hidden: 4, Layers: 2, FC: 4}, 5, 5)
	cal, err := conformal.Calibrate([]float64{10, 20, 30}, []float64{12, 17, 30}, []float64{0.5}, ck.Info.Horizon, conformal.Options{})
	if err != nil {
		f.Fatal(err)
	}
	ck.Info.Calibration = cal
	files, err := fixture.WriteAll(context.Background(), dir, ck, 4, fixture.Metrics{N: 4, MAE: 1, RMSE: 1, Score: 1})
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range []string{files.ONNX, files.Checkpoint} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, name := range []string{"m.onnx", "m.safetensors"} {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			before := heapAllocs()
			m, err := Load(p, 1)
			if err == nil {
				if n := m.Window * len(m.Features); n > 0 && n <= 1<<16 {
					out := make([]float32, 1)
					_ = m.Forward.Predict(make([]float32, n), 1, out)
				}
				m.Close()
			}
			if n := heapAllocs() - before; n > 256<<20 {
				t.Fatalf("loading a %d-byte %s allocated %d MiB", len(b), name, n>>20)
			}
		}
	})
}

func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
