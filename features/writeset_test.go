package features

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/atomicfile/atomictest"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/duration"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/runenv"
)

// writeSetOptions are the features options of the write-set tests: windows,
// stats and bucket stats from dir/labeled.parquet, windows of window steps.
func writeSetOptions(dir string, window int) Options {
	o := DefaultOptions()
	o.Labeled = filepath.Join(dir, "labeled.parquet")
	o.Out, o.Stats, o.BucketOut = filepath.Join(dir, "windows.parquet"), filepath.Join(dir, "stats.parquet"), filepath.Join(dir, "buckets.parquet")
	o.Window, o.StatsBucket = window, duration.Duration(6*time.Hour)
	return o
}

func writeSetFixture(t *testing.T) (dir string, before map[string]string) {
	t.Helper()
	dir = t.TempDir()
	writeLabeled(t, filepath.Join(dir, "labeled.parquet"), sensorNames(2), 100, fleet(6, 2)...)
	if _, err := Run(context.Background(), runenv.Test(), writeSetOptions(dir, 10)); err != nil {
		t.Fatal(err)
	}
	return dir, atomictest.Snapshot(t, dir)
}

// TestFeaturesOutputsOneWriteSet: windows, stats and bucket stats are one
// write set. An ENOSPC at the second or third rename leaves all three
// previous files byte for byte (and nothing else in the directory); the
// three files of a run carry one ID, and a stats file copied from another run
// is refused beside the windows, naming both files.
func TestFeaturesOutputsOneWriteSet(t *testing.T) {
	dir, before := writeSetFixture(t)
	if len(before) != 4 {
		t.Fatalf("fixture wrote %d files", len(before))
	}
	t.Cleanup(func() { atomicfile.RenameHook = nil })
	for _, fail := range []int{2, 3} {
		n := 0
		atomicfile.RenameHook = func(int, string, string) error {
			if n++; n == fail {
				return syscall.ENOSPC
			}
			return nil
		}
		_, err := Run(context.Background(), runenv.Test(), writeSetOptions(dir, 12))
		atomicfile.RenameHook = nil
		if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "left as they were") {
			t.Fatalf("ENOSPC at rename %d: %v", fail, err)
		}
		after := atomictest.Snapshot(t, dir)
		if len(after) != len(before) {
			t.Errorf("ENOSPC at rename %d: %d files left, want %d", fail, len(after), len(before))
		}
		for name, b := range before {
			if after[name] != b {
				t.Errorf("ENOSPC at rename %d: %s changed", fail, name)
			}
		}
	}

	o := writeSetOptions(dir, 10)
	if err := dataset.CheckSameSetFiles(o.Stats, dataset.KindStats, o.Out, dataset.KindWindows); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	writeLabeled(t, filepath.Join(other, "labeled.parquet"), sensorNames(2), 100, fleet(6, 2)...)
	oo := writeSetOptions(other, 12)
	if _, err := Run(context.Background(), runenv.Test(), oo); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(oo.Stats)
	if err := os.WriteFile(o.Stats, b, 0o644); err != nil {
		t.Fatal(err)
	}
	err := dataset.CheckSameSetFiles(o.Stats, dataset.KindStats, o.Out, dataset.KindWindows)
	if !errors.Is(err, atomicfile.ErrMixedSet) || exitcode.Code(err) != exitcode.Validation ||
		!strings.Contains(err.Error(), o.Stats) || !strings.Contains(err.Error(), o.Out) {
		t.Fatalf("stats of another run: %v", err)
	}
}

// TestFeaturesKilledBetweenRenames: a features run killed between its
// renames leaves new windows beside the previous stats, which a reader of the
// pair refuses.
func TestFeaturesKilledBetweenRenames(t *testing.T) {
	dir := atomictest.KillAtRename(t, 2, func() string {
		dir, _ := writeSetFixture(t)
		return dir
	}, func(dir string) { _, _ = Run(context.Background(), runenv.Test(), writeSetOptions(dir, 12)) })
	o := writeSetOptions(dir, 12)
	ws := readWindows(t, o.Out)
	if ws.T != 12 {
		t.Fatalf("the first rename should have put the new windows in place: window %d", ws.T)
	}
	err := dataset.CheckSameSetFiles(o.Stats, dataset.KindStats, o.Out, dataset.KindWindows)
	if !errors.Is(err, atomicfile.ErrMixedSet) {
		t.Fatalf("the pair left by the kill: %v", err)
	}
}
