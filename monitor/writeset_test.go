package monitor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/modax/modax-ml/internal/atomicfile"
)

// TestMonitorReportsOneWriteSet: the report in the run directory and the
// --out copy are one write set. An ENOSPC at --out's rename leaves the
// previous --out as it was and no report of this run in its run directory
// (the run-directory copy used to stay, beside an --out of another run).
func TestMonitorReportsOneWriteSet(t *testing.T) {
	f := newFleet(t)
	f.plant(t, "v1", 0, 0)
	o := f.opts()
	o.Out = filepath.Join(f.dir, "monitor.json")
	if err := os.WriteFile(o.Out, []byte("previous report\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { atomicfile.RenameHook = nil })
	atomicfile.RenameHook = func(_ int, _, to string) error {
		if to == o.Out {
			return syscall.ENOSPC
		}
		return nil
	}
	_, err := Run(context.Background(), f.env(), o)
	atomicfile.RenameHook = nil
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("ENOSPC at --out's rename: %v", err)
	}
	if b, _ := os.ReadFile(o.Out); string(b) != "previous report\n" {
		t.Errorf("--out changed: %q", b)
	}
	if left, _ := filepath.Glob(filepath.Join(o.RunsDir, "*", ReportFile)); len(left) > 0 {
		t.Errorf("the run directory's report is left: %v", left)
	}
}
