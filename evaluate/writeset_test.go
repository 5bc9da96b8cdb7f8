package evaluate

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/atomicfile/atomictest"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/model"
)

// outputsOf reads every file evaluate wrote in dir (the metrics, the reports
// and the plots; not its inputs), by name relative to dir.
func outputsOf(t *testing.T, dir string) map[string]string {
	t.Helper()
	return atomictest.Snapshot(t, dir, "predictions.parquet", "model.safetensors")
}

func evaluateFixture(t *testing.T) fixture {
	t.Helper()
	history := []model.Epoch{{Epoch: 1, TrainLoss: 900, ValLoss: 1000}, {Epoch: 2, TrainLoss: 100, ValLoss: 150}}
	f := writeFixture(t, fleet(1, 5, 30, dataset.SplitVal, dataset.SplitTest), history)
	o := f.opts()
	o.Model = f.model
	if _, err := Run(context.Background(), testEnv(), o); err != nil {
		t.Fatal(err)
	}
	return f
}

// rewritePredictions replaces the fixture's predictions with another fleet's,
// so that the next evaluate writes other metrics, reports and plots.
func rewritePredictions(t *testing.T, f fixture) {
	t.Helper()
	_, meta, err := dataset.ReadPredictions(context.Background(), f.preds)
	if err != nil {
		t.Fatal(err)
	}
	if err := dataset.WritePredictions(f.preds, fleet(2, 5, 30, dataset.SplitVal, dataset.SplitTest), meta); err != nil {
		t.Fatal(err)
	}
}

// TestEvaluateOutputsOneWriteSet: metrics.json, the reports and the plots
// are one write set. An ENOSPC at the second or at the last rename leaves
// every previous output byte for byte (the metrics used to be replaced
// before the plots and reports were written), and nothing else behind.
func TestEvaluateOutputsOneWriteSet(t *testing.T) {
	f := evaluateFixture(t)
	before := outputsOf(t, f.dir)
	if len(before) < 5 {
		t.Fatalf("the first evaluate wrote %d files", len(before))
	}
	rewritePredictions(t, f)
	o := f.opts()
	o.Model = f.model
	t.Cleanup(func() { atomicfile.RenameHook = nil })
	for _, fail := range []int{2, len(before)} {
		n := 0
		atomicfile.RenameHook = func(_ int, _, to string) error {
			if n++; n == fail {
				if fail == len(before) && filepath.Base(to) != "metrics.json" {
					t.Errorf("the last rename is %s, want metrics.json", to)
				}
				return syscall.ENOSPC
			}
			return nil
		}
		_, err := Run(context.Background(), testEnv(), o)
		atomicfile.RenameHook = nil
		if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "left as they were") {
			t.Fatalf("ENOSPC at rename %d: %v", fail, err)
		}
		after := outputsOf(t, f.dir)
		if len(after) != len(before) {
			t.Errorf("ENOSPC at rename %d: %d files, want the %d previous ones", fail, len(after), len(before))
		}
		for name, b := range before {
			if after[name] != b {
				t.Errorf("ENOSPC at rename %d: %s changed", fail, name)
			}
		}
	}
}

// TestEvaluateKilledBetweenRenames: killed after its first rename, evaluate
// leaves the previous metrics.json (renamed last) as it was; the next run
// replaces everything and removes the backups the killed one left.
func TestEvaluateKilledBetweenRenames(t *testing.T) {
	var before map[string]string
	dir := atomictest.KillAtRename(t, 2, func() string {
		f := evaluateFixture(t)
		before = outputsOf(t, f.dir)
		rewritePredictions(t, f)
		return f.dir
	}, func(dir string) {
		f := fixture{dir: dir, preds: filepath.Join(dir, "predictions.parquet"), model: filepath.Join(dir, "model.safetensors")}
		o := f.opts()
		o.Model = f.model
		_, _ = Run(context.Background(), testEnv(), o)
	})
	after := outputsOf(t, dir)
	if after["metrics.json"] != before["metrics.json"] {
		t.Error("metrics.json changed: it is renamed last")
	}
	f := fixture{dir: dir, preds: filepath.Join(dir, "predictions.parquet"), model: filepath.Join(dir, "model.safetensors")}
	o := f.opts()
	o.Model = f.model
	if _, err := Run(context.Background(), testEnv(), o); err != nil {
		t.Fatal(err)
	}
	for name := range outputsOf(t, dir) {
		if strings.Contains(name, ".prev-") {
			t.Errorf("backup %s left behind", name)
		}
	}
}
