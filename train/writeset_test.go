package train

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/train/traintest"
)

// TestTrainOutputsOneWriteSet: the checkpoint and its optimizer state are
// committed together. An ENOSPC at the second rename leaves the previous
// pair byte for byte (it used to delete the previous optimizer state), and
// --resume refuses a checkpoint with another run's optimizer state.
func TestTrainOutputsOneWriteSet(t *testing.T) {
	win := windowsFile(t, traintest.Default())
	dir := t.TempDir()
	o := smallOptions(win, filepath.Join(dir, "model.safetensors"))
	o.Epochs, o.Patience = 1, 0
	if _, err := Run(context.Background(), testEnv(), o); err != nil {
		t.Fatal(err)
	}
	side := SidecarPath(o.Out)
	oldModel, _ := os.ReadFile(o.Out)
	oldSide, _ := os.ReadFile(side)

	t.Cleanup(func() { atomicfile.RenameHook = nil })
	renames := 0
	atomicfile.RenameHook = func(_ int, _, to string) error {
		renames++
		if renames == 2 {
			return syscall.ENOSPC
		}
		return nil
	}
	o2 := o
	o2.Seed = 7
	if _, err := Run(context.Background(), testEnv(), o2); !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "left as they were") {
		t.Fatalf("ENOSPC at the second rename: %v", err)
	}
	atomicfile.RenameHook = nil
	if b, _ := os.ReadFile(o.Out); string(b) != string(oldModel) {
		t.Error("the previous checkpoint changed")
	}
	if b, _ := os.ReadFile(side); string(b) != string(oldSide) {
		t.Error("the previous optimizer state changed or was deleted")
	}

	// Another run's optimizer state next to the checkpoint.
	other := o
	other.Out = filepath.Join(dir, "other.safetensors")
	if _, err := Run(context.Background(), testEnv(), other); err != nil {
		t.Fatal(err)
	}
	otherSide, _ := os.ReadFile(SidecarPath(other.Out))
	if err := os.WriteFile(side, otherSide, 0o644); err != nil {
		t.Fatal(err)
	}
	r := o
	r.Resume, r.Epochs = o.Out, 2
	_, err := Run(context.Background(), testEnv(), r)
	if !errors.Is(err, atomicfile.ErrMixedSet) || exitcode.Code(err) != exitcode.Validation || !strings.Contains(err.Error(), side) {
		t.Fatalf("resume with another run's optimizer state: %v", err)
	}
}
