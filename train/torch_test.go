package train

import (
	"context"
	"math"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/nn"
	"github.com/modax/modax-ml/internal/testutil"
	"github.com/modax/modax-ml/train/traintest"
)

// TestTorchLoadsCheckpoint: the design's LSTMRULPredictor (tools/torchref)
// loads a trained checkpoint with a strict load_state_dict and predicts the
// same hours as the native predictor on the val windows.
func TestTorchLoadsCheckpoint(t *testing.T) {
	py := testutil.Python(t, "torch", "numpy")
	win := windowsFile(t, traintest.Default())
	dir := t.TempDir()
	o := smallOptions(win, filepath.Join(dir, "model.safetensors"))
	o.Epochs = 2
	if _, err := Run(context.Background(), testEnv(), o); err != nil {
		t.Fatal(err)
	}
	ck, err := model.Load(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	d, err := loadWindows(context.Background(), win, "val")
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "x.safetensors")
	if err := model.WriteSafetensors(data, []*model.Tensor{{Name: "x", Shape: []int{d.val.n, d.t, d.f}, Data: d.val.x}}, nil); err != nil {
		t.Fatal(err)
	}
	outPath := filepath.Join(dir, "y.safetensors")
	cmd := exec.CommandContext(context.Background(), py, filepath.Join(testutil.RepoRoot(t), "tools", "torchref", "torchref.py"),
		"forward", "--model", o.Out, "--data", data, "--out", outPath)
	cmd.Env = append(cmd.Environ(), "OPENBLAS_NUM_THREADS=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("torchref: %v\n%s", err, b)
	}
	ts, _, err := model.ReadSafetensors(outPath)
	if err != nil {
		t.Fatal(err)
	}
	want := ts[0].Data
	got := make([]float32, d.val.n)
	if err := nn.NewPredictor(ck.Params, 2).Predict(d.val.x, d.val.n, got); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if math.Abs(float64(got[i]-want[i])) > 1e-4*math.Abs(float64(want[i]))+1e-4 {
			t.Fatalf("window %d: ours %g h, PyTorch %g h", i, got[i], want[i])
		}
	}
	if math.Abs(float64(want[0])) < 1 {
		t.Fatalf("PyTorch predicts %g: not hours (fc2 scale not folded?)", want[0])
	}
}
