package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/modax/modax-ml/internal/exitcode"
)

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeSet(t *testing.T, files map[string]string) error {
	t.Helper()
	s := NewSet()
	defer s.Abort()
	for _, p := range []string{"a", "b", "c"} {
		if data, ok := files[p]; ok {
			if err := s.WriteFile(p, []byte(data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return s.Commit()
}

// TestSetRollbackAtEveryRename: an ENOSPC at the first, second or third
// rename of a three-file set leaves all three previous files as they were
// (the second rename failing used to leave the first file new and the
// others old), and no temporary or backup file behind.
func TestSetRollbackAtEveryRename(t *testing.T) {
	t.Cleanup(func() { RenameHook = nil })
	for fail := 1; fail <= 3; fail++ {
		dir := t.TempDir()
		t.Chdir(dir)
		RenameHook = nil
		if err := writeSet(t, map[string]string{"a": "old a", "b": "old b", "c": "old c"}); err != nil {
			t.Fatal(err)
		}
		base := renames
		RenameHook = func(n int, from, to string) error {
			if n-base == fail {
				return syscall.ENOSPC
			}
			return nil
		}
		err := writeSet(t, map[string]string{"a": "new a", "b": "new b", "c": "new c"})
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("rename %d failing: %v", fail, err)
		}
		for _, p := range []string{"a", "b", "c"} {
			if got := read(t, p); got != "old "+p {
				t.Errorf("rename %d failing: %s = %q, want the previous content", fail, p, got)
			}
		}
		des, _ := os.ReadDir(dir)
		if len(des) != 3 {
			var names []string
			for _, d := range des {
				names = append(names, d.Name())
			}
			t.Errorf("rename %d failing: left %v", fail, names)
		}
	}
	RenameHook = nil
	// A new file of the set (no previous one) is removed again.
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile("a", []byte("old a"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := renames
	RenameHook = func(n int, _, _ string) error {
		if n-base == 2 {
			return syscall.ENOSPC
		}
		return nil
	}
	if err := writeSet(t, map[string]string{"b": "new b", "c": "new c"}); err == nil {
		t.Fatal("no error")
	}
	if _, err := os.Stat("b"); !os.IsNotExist(err) {
		t.Errorf("b of the failed set is left: %v", err)
	}
}

// TestSetBackupsOfAKilledCommitRemoved: backups that a process killed between
// two renames left behind are removed by the next successful commit.
func TestSetBackupsOfAKilledCommitRemoved(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, p := range []string{"a", ".a.prev-0123456789abcdef"} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeSet(t, map[string]string{"a": "new a", "b": "new b"}); err != nil {
		t.Fatal(err)
	}
	des, _ := os.ReadDir(dir)
	if len(des) != 2 || read(t, "a") != "new a" {
		t.Fatalf("left %d files", len(des))
	}
}

func TestSetRefusesTheSamePathTwice(t *testing.T) {
	t.Chdir(t.TempDir())
	s := NewSet()
	defer s.Abort()
	if _, err := s.Create("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create("./a"); err == nil || !strings.Contains(err.Error(), "written twice") {
		t.Fatalf("got %v", err)
	}
}

func TestCheckSameSet(t *testing.T) {
	if err := CheckSameSet("m", "1", "o", "1"); err != nil {
		t.Fatal(err)
	}
	if err := CheckSameSet("m", "", "o", "1"); err != nil {
		t.Fatal("an unrecorded ID is refused:", err)
	}
	err := CheckSameSet("m.safetensors", "1", "o.safetensors", "2")
	if !errors.Is(err, ErrMixedSet) || exitcode.Code(err) != exitcode.Validation || !strings.Contains(err.Error(), "o.safetensors") {
		t.Fatalf("got %v", err)
	}
}

// TestCheckOutputs: an output that is an input by name, by another spelling,
// through a symlink or a hard link is refused with exit 2; a new file or a
// device is not.
func TestCheckOutputs(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.parquet")
	if err := os.WriteFile(in, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	sym := filepath.Join(dir, "sym.parquet")
	hard := filepath.Join(dir, "hard.parquet")
	if err := os.Symlink("in.parquet", sym); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(in, hard); err != nil {
		t.Fatal(err)
	}
	inputs := []Path{P("--windows", in)}
	for _, out := range []string{in, filepath.Join(dir, ".", "in.parquet"), sym, hard} {
		err := CheckOutputs(inputs, []Path{P("--out", out)})
		if exitcode.Code(err) != exitcode.Usage || !strings.Contains(err.Error(), "--out "+out+" is the input --windows") {
			t.Errorf("%s: got %v", out, err)
		}
	}
	if err := CheckOutputs(inputs, []Path{{"--out", filepath.Join(dir, "new.parquet")}, {"--x", "/dev/null"}, {"--y", ""}}); err != nil {
		t.Fatal(err)
	}
	new := filepath.Join(dir, "w.parquet")
	err := CheckOutputs(nil, []Path{{"--out", new}, {"--stats", new}})
	if exitcode.Code(err) != exitcode.Usage || !strings.Contains(err.Error(), "same file") {
		t.Fatalf("two outputs the same: %v", err)
	}
	if got := read(t, in); got != "data" {
		t.Fatal("the input changed")
	}
}
