package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/location"
)

// SameFile reports whether a and b name the same existing file (the same
// device and inode, whatever the names: a symlink or a hard link is the same
// file), or the same path when neither exists yet.
func SameFile(a, b string) bool {
	if location.IsRemote(a) || location.IsRemote(b) {
		return location.IsRemote(a) && location.IsRemote(b) && location.Same(a, b)
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(fa, fb)
	}
	if errA != nil && errB != nil {
		ca, e1 := filepath.Abs(a)
		cb, e2 := filepath.Abs(b)
		return e1 == nil && e2 == nil && ca == cb
	}
	return false
}

// Path is a named file argument of a stage (flag names the flag it came from).
type Path struct {
	Flag string
	Path string
}

// CheckOutputs refuses (exit 2) an output that is one of the inputs or
// another output: writing it would destroy the input before it was read, or
// one output would overwrite the other. Call it before doing any work. Empty
// paths and devices (/dev/stdout, pipes) are ignored.
func CheckOutputs(inputs, outputs []Path) error {
	for i, o := range outputs {
		if skip(o.Path) {
			continue
		}
		for _, in := range inputs {
			if !skip(in.Path) && SameFile(in.Path, o.Path) {
				return fmt.Errorf("%w: %s %s is the input %s %s: writing it would destroy the input; choose another output path",
					exitcode.ErrUsage, o.Flag, o.Path, in.Flag, in.Path)
			}
		}
		for _, p := range outputs[:i] {
			if !skip(p.Path) && SameFile(p.Path, o.Path) {
				return fmt.Errorf("%w: %s %s and %s %s are the same file: one output would overwrite the other",
					exitcode.ErrUsage, p.Flag, p.Path, o.Flag, o.Path)
			}
		}
	}
	return nil
}

func skip(p string) bool {
	if p == "" || p == "-" {
		return true
	}
	if location.IsRemote(p) {
		return false
	}
	fi, err := os.Stat(p)
	return err == nil && !fi.Mode().IsRegular() && !fi.IsDir()
}

// P is the file argument path of flag.
func P(flag, path string) Path { return Path{Flag: flag, Path: path} }
