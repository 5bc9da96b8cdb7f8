package infer

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/modax/modax-ml/internal/conformal"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/fixture"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/onnxmodel"
	"github.com/modax/modax-ml/internal/runenv"
)

// TestONNXMatchesCheckpoint: predicting with the exported ONNX file (gonnx)
// gives the checkpoint's predictions (native), with the scaler embedded (the
// windows are un-scaled to raw values for it) and without.
func TestONNXMatchesCheckpoint(t *testing.T) {
	dir := t.TempDir()
	ck := fixture.Checkpoint(model.Arch{Type: model.TypeLSTM, InputSize: 3, Hidden: 8, Layers: 2, FC: 4}, 10, 5)
	cal, err := conformal.Calibrate([]float64{10, 20, 30}, []float64{12, 17, 30}, []float64{0.5}, ck.Info.Horizon, conformal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ck.Info.Calibration = cal
	files, err := fixture.WriteAll(context.Background(), dir, ck, 12, fixture.Metrics{N: 12, MAE: 1, RMSE: 1, Score: 1})
	if err != nil {
		t.Fatal(err)
	}
	bare := filepath.Join(dir, "bare.onnx")
	if err := fixture.WriteONNX(bare, files.Checkpoint, onnxmodel.BuildOptions{NoScaler: true}); err != nil {
		t.Fatal(err)
	}
	w, err := dataset.ReadWindows(context.Background(), files.Windows)
	if err != nil {
		t.Fatal(err)
	}
	env := runenv.Test()
	native, err := Load(files.Checkpoint, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer native.Close()
	want, err := Predict(context.Background(), env, native, w, files.Windows, Options{BatchSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{files.ONNX, bare} {
		m, err := Load(path, 2)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m.Calibration, cal) || !reflect.DeepEqual(native.Calibration, cal) {
			t.Errorf("%s: calibration %+v, checkpoint %+v, want %+v", path, m.Calibration, native.Calibration, cal)
		}
		if m.Format != "onnx" || m.Version != ck.Info.ModelVersion || (m.Scaler == nil) != (path == files.ONNX) {
			t.Errorf("%s: format %s version %q scaler %v", path, m.Format, m.Version, m.Scaler)
		}
		got, err := Predict(context.Background(), env, m, w, files.Windows, Options{BatchSize: 7})
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if d := math.Abs(got[i].RULPred - want[i].RULPred); d > 1e-3*math.Max(1, math.Abs(want[i].RULPred)) {
				t.Fatalf("%s window %d: onnx %g, native %g", path, i, got[i].RULPred, want[i].RULPred)
			}
		}
	}
	// An ONNX file of a ridge model is refused.
	rk := fixture.Checkpoint(model.Arch{Type: model.TypeRidge, InputSize: 3}, 1, 1)
	rdir := t.TempDir()
	rf, err := fixture.WriteAll(context.Background(), rdir, rk, 4, fixture.Metrics{N: 4, MAE: 1, RMSE: 1, Score: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Load(rf.ONNX, 1); !errors.Is(err, exitcode.ErrUsage) || !strings.Contains(err.Error(), "ridge") {
		t.Errorf("ridge onnx: %v", err)
	}
}
