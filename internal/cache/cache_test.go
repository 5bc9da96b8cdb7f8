package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func key(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// writeOutputs writes files under dir and returns them as cache Files.
func writeOutputs(t *testing.T, dir string, files map[string]string) []File {
	t.Helper()
	var out []File
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256([]byte(content))
		out = append(out, File{Path: name, SHA256: hex.EncodeToString(h[:]), Size: int64(len(content))})
	}
	return out
}

func TestPutGetRestore(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := Open(filepath.Join(root, ".modax", "cache"))
	run1 := filepath.Join(root, "runs", "a")
	outs := writeOutputs(t, run1, map[string]string{"windows.parquet": "WINDOWS", "plots/a.png": "PNG"})
	k := key("features")
	if e, err := s.Get(k); err != nil || e != nil {
		t.Fatalf("Get on an empty store: %v, %v", e, err)
	}
	e, err := s.Put(ctx, Entry{Key: k, Stage: "features", RunID: "a", CreatedAt: time.Now(), Options: json.RawMessage(`{"window":50}`), Outputs: outs}, run1)
	if err != nil {
		t.Fatal(err)
	}
	if e.Size() != int64(len("WINDOWS")+len("PNG")) {
		t.Errorf("size %d", e.Size())
	}
	// The cached file is a hard link of the run's file (same file system).
	a, _ := os.Stat(filepath.Join(run1, "windows.parquet"))
	b, _ := os.Stat(filepath.Join(e.Dir, "files", "windows.parquet"))
	if !os.SameFile(a, b) {
		t.Error("cached file is not a hard link of the output")
	}
	got, err := s.Get(k)
	if err != nil || got == nil || got.Stage != "features" || len(got.Outputs) != 2 {
		t.Fatalf("Get: %+v, %v", got, err)
	}
	run2 := filepath.Join(root, "runs", "b")
	if err := s.Restore(ctx, got, run2); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"windows.parquet": "WINDOWS", "plots/a.png": "PNG"} {
		b, err := os.ReadFile(filepath.Join(run2, name))
		if err != nil || string(b) != want {
			t.Errorf("restored %s = %q, %v", name, b, err)
		}
	}
	// Restoring over an existing file replaces it (stages write files by
	// rename, as this does).
	os.WriteFile(filepath.Join(run2, "old"), []byte("OLD"), 0o644)
	os.Rename(filepath.Join(run2, "old"), filepath.Join(run2, "windows.parquet"))
	if err := s.Restore(ctx, got, run2); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(run2, "windows.parquet")); string(b) != "WINDOWS" {
		t.Errorf("restore over an existing file: %q", b)
	}
	// A second Put of the same key keeps the first entry.
	e2, err := s.Put(ctx, Entry{Key: k, Stage: "features", RunID: "b", Outputs: outs}, run2)
	if err != nil || e2.RunID != "a" {
		t.Errorf("second Put: %+v, %v", e2, err)
	}
	// A file written in place through its hard link is detected on restore,
	// and the corrupt entry is removed.
	os.WriteFile(filepath.Join(run2, "windows.parquet"), []byte("CHANGED"), 0o644)
	if err := s.Restore(ctx, got, filepath.Join(root, "runs", "d")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("restore of a corrupt entry: %v", err)
	}
	if e, _ := s.Get(k); e != nil {
		t.Error("corrupt entry was kept")
	}
	e, err = s.Put(ctx, Entry{Key: k, Stage: "features", RunID: "a", Outputs: outs}, run1)
	if err != nil {
		t.Fatal(err)
	}
	// A cached file that lost its content is no entry.
	os.Truncate(filepath.Join(e.Dir, "files", "plots", "a.png"), 0)
	if e, err := s.Get(k); err != nil || e != nil {
		t.Errorf("Get of a damaged entry: %v, %v", e, err)
	}
	// ... and Put replaces it.
	run3 := filepath.Join(root, "runs", "c")
	outs3 := writeOutputs(t, run3, map[string]string{"windows.parquet": "WINDOWS", "plots/a.png": "PNG"})
	if e, err := s.Put(ctx, Entry{Key: k, Stage: "features", RunID: "c", Outputs: outs3}, run3); err != nil || e.RunID != "c" {
		t.Errorf("Put over a damaged entry: %+v, %v", e, err)
	}
}

func TestPutRefusesEscapingPaths(t *testing.T) {
	s := Open(t.TempDir())
	for _, p := range []string{"../x", "/etc/passwd", ""} {
		if _, err := s.Put(context.Background(), Entry{Key: key(p), Outputs: []File{{Path: p}}}, t.TempDir()); err == nil {
			t.Errorf("Put of %q: no error", p)
		}
	}
	if _, err := s.Get("../../etc"); err == nil {
		t.Error("Get of a bad key: no error")
	}
}

func TestListLatestGC(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := Open(filepath.Join(root, "cache"))
	base := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	var keys []string
	for i, stage := range []string{"collect", "features", "features"} {
		run := filepath.Join(root, "run", stage, string(rune('a'+i)))
		outs := writeOutputs(t, run, map[string]string{"f": strings.Repeat("x", 100*(i+1))})
		k := key(stage + string(rune('a'+i)))
		keys = append(keys, k)
		e, err := s.Put(ctx, Entry{Key: k, Stage: stage, CreatedAt: base.Add(time.Duration(i) * time.Hour), Outputs: outs}, run)
		if err != nil {
			t.Fatal(err)
		}
		used := base.Add(time.Duration(i) * 24 * time.Hour)
		os.Chtimes(filepath.Join(e.Dir, manifestFile), used, used)
	}
	os.MkdirAll(filepath.Join(s.Dir(), tmpPrefix+"dead"), 0o755)
	es, errs := s.List()
	if len(errs) > 0 || len(es) != 3 || es[0].Key != keys[2] || es[2].Key != keys[0] {
		t.Fatalf("List: %d entries, %v", len(es), errs)
	}
	if l := s.Latest("features"); l == nil || l.Key != keys[2] {
		t.Errorf("Latest(features) = %v", l)
	}
	if l := s.Latest("train"); l != nil {
		t.Errorf("Latest(train) = %v", l)
	}
	now := base.Add(3 * 24 * time.Hour)
	// Dry run: the oldest (used 3 days ago) goes; nothing is removed.
	res, err := s.GC(ctx, GCOptions{OlderThan: 60 * time.Hour, Now: now, DryRun: true})
	if err != nil || len(res.Removed) != 1 || res.Removed[0].Key != keys[0] || res.RemovedTemps != 1 {
		t.Fatalf("dry-run gc: %+v, %v", res, err)
	}
	if es, _ := s.List(); len(es) != 3 {
		t.Fatal("dry run removed entries")
	}
	// Size: keep the most recently used that fit in 500 bytes (300 + 200).
	res, err = s.GC(ctx, GCOptions{MaxBytes: 500, Now: now})
	if err != nil || len(res.Removed) != 1 || res.Removed[0].Key != keys[0] || res.Kept != 2 || res.KeptBytes != 500 || res.FreedBytes != 100 {
		t.Fatalf("size gc: %+v, %v", res, err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), tmpPrefix+"dead")); !os.IsNotExist(err) {
		t.Error("gc kept a temporary directory")
	}
	res, err = s.GC(ctx, GCOptions{All: true, Now: now})
	if err != nil || len(res.Removed) != 2 {
		t.Fatalf("gc --all: %+v, %v", res, err)
	}
	if es, _ := s.List(); len(es) != 0 {
		t.Errorf("after gc --all: %d entries", len(es))
	}
}

// TestCopyAcrossFileSystems checks the copy fallback when hard links are
// impossible (/dev/shm is another file system than the temp dir here).
func TestCopyAcrossFileSystems(t *testing.T) {
	shm := "/dev/shm"
	var a, b syscall.Statfs_t
	tmp := t.TempDir()
	if syscall.Statfs(shm, &a) != nil || syscall.Statfs(tmp, &b) != nil || a.Type == b.Type {
		t.Skip("no second file system to copy across")
	}
	dir, err := os.MkdirTemp(shm, "modax-cache-test-")
	if err != nil {
		t.Skip(err)
	}
	defer os.RemoveAll(dir)
	outs := writeOutputs(t, tmp, map[string]string{"m.safetensors": "WEIGHTS"})
	s := Open(filepath.Join(dir, "cache"))
	e, err := s.Put(context.Background(), Entry{Key: key("x"), Stage: "train", Outputs: outs}, tmp)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(e.Dir, "files", "m.safetensors")); string(b) != "WEIGHTS" {
		t.Errorf("copied content %q", b)
	}
}
