package export

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/fixture"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/onnxmodel"
	"github.com/modax/modax-ml/internal/runenv"
)

var smallArch = model.Arch{Type: model.TypeLSTM, InputSize: 4, Hidden: 16, Layers: 2, FC: 8, Dropout: 0.2}

// setup writes a checkpoint, windows and a matching metrics.json into a
// fresh directory and returns options pointing at them.
func setup(t *testing.T, ck *model.Checkpoint, n int) (Options, fixture.Files) {
	t.Helper()
	dir := t.TempDir()
	files, err := fixture.WriteAll(context.Background(), dir, ck, n, fixture.Metrics{N: n, MAE: 7, RMSE: 9, Score: 120})
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.Model, o.Windows, o.Metrics, o.Out = files.Checkpoint, files.Windows, files.Metrics, filepath.Join(dir, "model.onnx")
	o.Stats = filepath.Join(dir, "stats.parquet")
	return o, files
}

func TestExport(t *testing.T) {
	ck := fixture.Checkpoint(smallArch, 20, 1)
	o, files := setup(t, ck, 40)
	res, err := Run(context.Background(), runenv.Test(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Validation.Checks) != 2 || res.Validation.Checks[0].Batch != 1 || res.Validation.Checks[1].Batch != 40 {
		t.Fatalf("checks %+v, want batch 1 and 40", res.Validation.Checks)
	}
	if res.Validation.Split != dataset.SplitTest || res.Metrics != files.Metrics {
		t.Errorf("split %s metrics %q", res.Validation.Split, res.Metrics)
	}
	b, err := os.ReadFile(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != res.Bytes || onnxmodel.SHA256(b) != res.SHA256 {
		t.Errorf("result size/sha do not describe the file")
	}
	mp, err := onnxmodel.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	p := onnxmodel.Props(mp)
	ckSHA, _ := dataset.FileSHA256(files.Checkpoint)
	if p[onnxmodel.MetaCheckpointSHA256] != ckSHA || p[onnxmodel.MetaModelVersion] != "fixture-1" || p[onnxmodel.MetaRunID] != "test-run" {
		t.Errorf("metadata %v", p)
	}
	if !strings.Contains(p[onnxmodel.MetaMetrics], `"mae":7`) || !strings.Contains(p[onnxmodel.MetaDataRange], `"test"`) {
		t.Errorf("metrics %q data range %q", p[onnxmodel.MetaMetrics], p[onnxmodel.MetaDataRange])
	}
	if onnxmodel.Opset(mp) != 13 || mp.IrVersion != 7 {
		t.Errorf("opset %d IR %d", onnxmodel.Opset(mp), mp.IrVersion)
	}
	// No temporary files are left next to the output.
	ents, _ := os.ReadDir(filepath.Dir(o.Out))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left %s behind", e.Name())
		}
	}
}

func TestExportVariants(t *testing.T) {
	for _, tc := range []struct {
		name   string
		arch   model.Arch
		mod    func(*Options)
		checks int
	}{
		{"opset11-dynamic-seq", smallArch, func(o *Options) { o.Opset, o.DynamicSeq = 11, true }, 3},
		{"no-scaler", smallArch, func(o *Options) { o.NoScaler = true }, 2},
		{"3-layers", model.Arch{Type: model.TypeLSTM, InputSize: 3, Hidden: 5, Layers: 3, FC: 4}, func(*Options) {}, 2},
		{"no-metrics", smallArch, func(o *Options) { o.Metrics = "" }, 2},
		{"ridge", model.Arch{Type: model.TypeRidge, InputSize: 6}, func(*Options) {}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ck := fixture.Checkpoint(tc.arch, 10, 2)
			o, _ := setup(t, ck, 25)
			tc.mod(&o)
			res, err := Run(context.Background(), runenv.Test(), o)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Validation.Checks) != tc.checks {
				t.Errorf("checks %+v, want %d", res.Validation.Checks, tc.checks)
			}
			if tc.name == "no-metrics" && res.Metrics != "" {
				t.Errorf("metrics %q embedded", res.Metrics)
			}
		})
	}
}

// TestExportMismatch: a tolerance below float32's precision cannot be met,
// so validation fails: the error names the worst window, no file appears,
// and an existing output is left as it was.
func TestExportMismatch(t *testing.T) {
	ck := fixture.Checkpoint(smallArch, 20, 3)
	o, _ := setup(t, ck, 30)
	if err := os.WriteFile(o.Out, []byte("previous"), 0o644); err != nil {
		t.Fatal(err)
	}
	o.RTol, o.ATol = 1e-12, 0
	_, err := Run(context.Background(), runenv.Test(), o)
	var me *MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("err = %v, want a MismatchError", err)
	}
	if exitcode.Code(err) != exitcode.Error || !strings.Contains(err.Error(), "window ") || !strings.Contains(err.Error(), "device dev-test-") ||
		!strings.Contains(err.Error(), "not written") {
		t.Errorf("err = %v", err)
	}
	if b, _ := os.ReadFile(o.Out); string(b) != "previous" {
		t.Errorf("previous output changed to %d bytes", len(b))
	}
	ents, _ := os.ReadDir(filepath.Dir(o.Out))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left %s behind", e.Name())
		}
	}
}

func TestExportBadInput(t *testing.T) {
	ctx := context.Background()
	ck := fixture.Checkpoint(smallArch, 20, 4)
	o, files := setup(t, ck, 10)
	dir := filepath.Dir(o.Out)

	// Metrics of another model.
	other := fixture.Checkpoint(smallArch, 20, 5)
	otherPath := filepath.Join(dir, "other.safetensors")
	if err := model.Save(otherPath, other); err != nil {
		t.Fatal(err)
	}
	otherMetrics := filepath.Join(dir, "other-metrics.json")
	if err := fixture.WriteMetrics(otherMetrics, otherPath, "", fixture.Metrics{N: 1, MAE: 1, RMSE: 1, Score: 1}); err != nil {
		t.Fatal(err)
	}

	// A per-operating-condition scaler.
	cond := fixture.Checkpoint(smallArch, 20, 4)
	cond.Info.Scaler.Kind = "zscore_per_condition"
	condPath := filepath.Join(dir, "cond.safetensors")
	if err := model.Save(condPath, cond); err != nil {
		t.Fatal(err)
	}
	condWindows := filepath.Join(dir, "cond.parquet")
	if err := fixture.WriteWindows(condWindows, cond, 5, 1); err != nil {
		t.Fatal(err)
	}

	// Windows of other features and of another length.
	wrongFeat := fixture.Checkpoint(model.Arch{Type: model.TypeLSTM, InputSize: 3, Hidden: 4, Layers: 1, FC: 2}, 20, 6)
	wrongFeatPath := filepath.Join(dir, "wf.parquet")
	if err := fixture.WriteWindows(wrongFeatPath, wrongFeat, 3, 1); err != nil {
		t.Fatal(err)
	}
	wrongLen := fixture.Checkpoint(smallArch, 11, 6)
	wrongLenPath := filepath.Join(dir, "wl.parquet")
	if err := fixture.WriteWindows(wrongLenPath, wrongLen, 3, 1); err != nil {
		t.Fatal(err)
	}

	// A truncated checkpoint.
	b, _ := os.ReadFile(files.Checkpoint)
	trunc := filepath.Join(dir, "trunc.safetensors")
	if err := os.WriteFile(trunc, b[:len(b)-100], 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		mod  func(*Options)
		want string
		code int
	}{
		{"metrics of another model", func(o *Options) { o.Metrics = otherMetrics }, "belong to another model", exitcode.Error},
		{"per-condition scaler", func(o *Options) { o.Model = condPath }, "--no-scaler", exitcode.Error},
		{"per-condition windows", func(o *Options) { o.Windows = condWindows }, "cannot recover raw values", exitcode.Error},
		{"other features", func(o *Options) { o.Windows = wrongFeatPath }, "features", exitcode.Error},
		{"other window", func(o *Options) { o.Windows = wrongLenPath }, "trained on 20", exitcode.Error},
		{"truncated checkpoint", func(o *Options) { o.Model = trunc }, "trunc.safetensors", exitcode.Error},
		{"missing windows", func(o *Options) { o.Windows = filepath.Join(dir, "none.parquet") }, "validation needs windows", exitcode.Error},
		{"bad opset", func(o *Options) { o.Opset = 10 }, "--opset 10", exitcode.Usage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := o
			o.Out = filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".onnx")
			tc.mod(&o)
			_, err := Run(ctx, runenv.Test(), o)
			if err == nil || !strings.Contains(err.Error(), tc.want) || exitcode.Code(err) != tc.code {
				t.Fatalf("err = %v (exit %d), want %q (exit %d)", err, exitcode.Code(err), tc.want, tc.code)
			}
			if _, err := os.Stat(o.Out); err == nil {
				t.Errorf("%s written", o.Out)
			}
		})
	}
	// The per-condition checkpoint exports without its scaler, validated on
	// the scaled windows as they are.
	o.Model, o.Windows, o.NoScaler, o.Metrics = condPath, condWindows, true, ""
	res, err := Run(ctx, runenv.Test(), o)
	if err != nil || res.ScalerEmbedded || len(res.Validation.Checks) != 2 {
		t.Errorf("--no-scaler export of a per-condition checkpoint: %+v %v", res, err)
	}
}

// BenchmarkExport measures a whole export with validation for the default
// architecture (5 features, window 50, hidden 128, 2 layers, fc 64).
func BenchmarkExport(b *testing.B) {
	ck := fixture.Checkpoint(model.DefaultArch(5), 50, 1)
	dir := b.TempDir()
	files, err := fixture.WriteAll(context.Background(), dir, ck, 256, fixture.Metrics{N: 256, MAE: 5, RMSE: 7, Score: 100})
	if err != nil {
		b.Fatal(err)
	}
	o := DefaultOptions()
	o.Model, o.Windows, o.Metrics, o.Out = files.Checkpoint, files.Windows, files.Metrics, filepath.Join(dir, "model.onnx")
	b.ReportAllocs()
	for b.Loop() {
		res, err := Run(context.Background(), runenv.Test(), o)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(res.Bytes), "onnx_bytes")
	}
}

// The ONNX model records the weights digest of the checkpoint it came from:
// the checkpoint's modax.weights_sha256, the ONNX model's and the result's
// are one value, and it is what the tensors give.
func TestExportWeightsDigest(t *testing.T) {
	ck := fixture.Checkpoint(smallArch, 20, 3)
	o, files := setup(t, ck, 10)
	res, err := Run(context.Background(), runenv.Test(), o)
	if err != nil {
		t.Fatal(err)
	}
	_, meta, err := model.ReadSafetensors(files.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	mp, err := onnxmodel.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	want := model.WeightsDigest(ck.Params.Tensors)
	for what, got := range map[string]string{"checkpoint": meta[model.MetaWeightsSHA256], "onnx": onnxmodel.Props(mp)[onnxmodel.MetaWeightsSHA256], "result": res.WeightsSHA256} {
		if got != want {
			t.Errorf("%s weights digest %q, want %q", what, got, want)
		}
	}
}
