package label

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/modax/modax-ml/collect"
	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/atomicfile/atomictest"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/validate"
)

// collectOpts collects a small synthetic fleet of the given seed into
// dir/readings.parquet and dir/failures.parquet.
func collectOpts(dir string, seed int64) collect.Options {
	o := collect.DefaultOptions()
	o.Synthetic.Devices, o.Synthetic.Days, o.Synthetic.Seed = 3, 20, seed
	o.Out, o.FailuresOut = filepath.Join(dir, "readings.parquet"), filepath.Join(dir, "failures.parquet")
	return o
}

func collectInto(t *testing.T, dir string, seed int64) (collect.Options, error) {
	t.Helper()
	o := collectOpts(dir, seed)
	_, err := collect.Run(context.Background(), runenv.Test(), o)
	return o, err
}

func mustCollect(t *testing.T, dir string, seed int64) collect.Options {
	t.Helper()
	o, err := collectInto(t, dir, seed)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func labelPair(o collect.Options) error {
	lo := DefaultOptions()
	lo.Readings, lo.Failures, lo.Out = o.Out, o.FailuresOut, filepath.Join(filepath.Dir(o.Out), "labeled.parquet")
	_, err := Run(context.Background(), runenv.Test(), lo)
	return err
}

func validatePair(o collect.Options) error {
	vo := validate.DefaultOptions()
	vo.Readings, vo.Failures, vo.Out = o.Out, o.FailuresOut, filepath.Join(filepath.Dir(o.Out), "validation.json")
	_, err := validate.Run(context.Background(), runenv.Test(), vo)
	return err
}

// wantMixed checks that err refuses the pair as files of different writes,
// exit 3, naming both files.
func wantMixed(t *testing.T, what string, err error, o collect.Options) {
	t.Helper()
	if !errors.Is(err, atomicfile.ErrMixedSet) || exitcode.Code(err) != exitcode.Validation ||
		!strings.Contains(err.Error(), o.Out) || !strings.Contains(err.Error(), o.FailuresOut) {
		t.Fatalf("%s: got %v, want a refusal of the mixed pair naming both files", what, err)
	}
}

func readAll(t *testing.T, paths ...string) []string {
	t.Helper()
	out := make([]string, len(paths))
	for i, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = string(b)
	}
	return out
}

// TestCollectOutputsOneWriteSet: collect's readings and failures are one
// write set. An ENOSPC at the second rename leaves the previous pair byte for
// byte (it used to leave the new failures beside the old readings), and
// label and validate refuse a failures file copied from another collect.
func TestCollectOutputsOneWriteSet(t *testing.T) {
	dir := t.TempDir()
	o := mustCollect(t, dir, 1)
	before := readAll(t, o.Out, o.FailuresOut)

	t.Cleanup(func() { atomicfile.RenameHook = nil })
	n := 0
	atomicfile.RenameHook = func(int, string, string) error {
		if n++; n == 2 {
			return syscall.ENOSPC
		}
		return nil
	}
	_, err := collectInto(t, dir, 2)
	atomicfile.RenameHook = nil
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "left as they were") {
		t.Fatalf("ENOSPC at the second rename: %v", err)
	}
	for i, got := range readAll(t, o.Out, o.FailuresOut) {
		if got != before[i] {
			t.Errorf("%s changed", []string{o.Out, o.FailuresOut}[i])
		}
	}
	if des, _ := os.ReadDir(dir); len(des) != 2 {
		t.Errorf("%d files left in %s, want the 2 outputs", len(des), dir)
	}
	if err := labelPair(o); err != nil {
		t.Fatal(err)
	}
	if err := validatePair(o); err != nil && exitcode.Code(err) != exitcode.Validation {
		t.Fatal(err)
	}

	other := t.TempDir()
	oo := mustCollect(t, other, 3)
	if err := os.WriteFile(o.FailuresOut, []byte(readAll(t, oo.FailuresOut)[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	wantMixed(t, "label", labelPair(o), o)
	wantMixed(t, "validate", validatePair(o), o)
}

// TestCollectKilledBetweenRenames: a collect killed between its two renames
// leaves new failures beside the previous readings, which label refuses.
func TestCollectKilledBetweenRenames(t *testing.T) {
	dir := atomictest.KillAtRename(t, 2, func() string {
		dir := t.TempDir()
		mustCollect(t, dir, 1)
		return dir
	}, func(dir string) { _, _ = collectInto(t, dir, 2) })
	o := collectOpts(dir, 2)
	wantMixed(t, "label after the kill", labelPair(o), o)
}
