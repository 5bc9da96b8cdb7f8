package atomictest

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Snapshot reads every file under dir (hidden ones and those in
// subdirectories too), keyed by its path relative to dir, except the names
// in skip: the state a failed commit must leave byte for byte.
func Snapshot(t *testing.T, dir string, skip ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if slices.Contains(skip, rel) {
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
