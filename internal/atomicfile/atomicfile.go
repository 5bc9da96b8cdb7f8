// Package atomicfile writes files so that a reader never sees a half-written
// one, and commits the several files of one stage as a set: the one place in
// the tree that renames temporary files into place.
//
// A single file (Create, WriteFile) is written under a hidden temporary name
// in its destination's directory, fsynced and renamed over the destination.
//
// A Set stages several files the same way and commits them together. Every
// file of a set records the set's ID (a stage stores it in its format's
// metadata: Parquet footer, safetensors header, JSON field), so that a reader
// of two files that must belong together can refuse a mixed pair
// (CheckSameSet). Before the renames, each destination that exists is kept
// under a hidden backup name (a hard link); when a rename fails (a full disk,
// a read-only directory), the renames already done are rolled back from the
// backups, so every previous output is left as it was. A process killed
// between two renames leaves a mixed set, which readers refuse by its IDs,
// and the backups, which the next successful commit removes.
package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/modax/modax-ml/internal/exitcode"
)

// File is a file written under a temporary name in the destination's
// directory and renamed over the destination on Commit. Until then the
// destination is untouched; Abort (or a crash) leaves at most a hidden
// temporary file, which Abort removes.
//
// A destination that exists and is neither a regular file nor a directory —
// a device such as /dev/null or /dev/stdout, a named pipe, a socket — is
// written directly: there is nothing to replace atomically, and a rename
// would replace the device node itself with a regular file.
type File struct {
	*os.File
	dest   string
	done   bool
	direct bool // writing straight into a device, pipe or socket
	set    *Set // staged in a set: Commit only syncs; the set renames
}

// Create starts an atomic write of path. Always defer Abort; call Commit
// when everything was written.
func Create(path string) (*File, error) {
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() && !fi.IsDir() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", path, err)
		}
		return &File{File: f, dest: path, direct: true}, nil
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	return &File{File: f, dest: path}, nil
}

// Dest is the destination path.
func (a *File) Dest() string { return a.dest }

// finish flushes and closes the temporary file, leaving it ready to rename.
func (a *File) finish() error {
	tmp := a.Name()
	if err := a.Sync(); err != nil {
		a.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", a.dest, err)
	}
	if err := a.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", a.dest, err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", a.dest, err)
	}
	return nil
}

// Commit flushes the file to disk and renames it over the destination. For a
// file of a Set it only flushes: the set's Commit renames all its files.
func (a *File) Commit() error {
	if a.done {
		return fmt.Errorf("commit %s: already finished", a.dest)
	}
	a.done = true
	if a.direct {
		if err := a.Close(); err != nil {
			return fmt.Errorf("write %s: %w", a.dest, err)
		}
		return nil
	}
	if err := a.finish(); err != nil {
		if a.set != nil {
			a.set.failed = err
		}
		return err
	}
	if a.set != nil {
		a.set.ready = append(a.set.ready, a)
		return nil
	}
	tmp := a.Name()
	if err := rename(tmp, a.dest); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", a.dest, err)
	}
	_ = SyncDir(filepath.Dir(a.dest))
	return nil
}

// Abort removes the temporary file. It is a no-op after Commit.
func (a *File) Abort() {
	if a.done {
		return
	}
	a.done = true
	a.Close()
	if !a.direct {
		os.Remove(a.Name())
	}
}

// WriteFile writes data to path atomically.
func WriteFile(path string, data []byte) error { return writeWith(Create, path, data) }

// writeWith writes data to the file create starts at path and commits it.
func writeWith(create func(string) (*File, error), path string, data []byte) error {
	f, err := create(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}

// SyncDir fsyncs a directory so that renames in it survive a crash. File
// systems that cannot sync a directory (EINVAL) are not an error.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// RenameHook is a test hook: when set (tests only), it runs before every rename this package
// does, with the rename's 1-based number in the process; an error it returns
// is the rename's error.
var RenameHook func(n int, from, to string) error

var renames int

func rename(from, to string) error {
	renames++
	if RenameHook != nil {
		if err := RenameHook(renames, from, to); err != nil {
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
		}
	}
	return os.Rename(from, to)
}

// Set is the files of one stage, committed together. Create each file with
// the set's Create (and write the set's ID into it), Commit each one as
// usual, then Commit the set; always defer Abort.
type Set struct {
	id     string
	files  []*File
	ready  []*File
	failed error
	done   bool
}

// NewSet starts a write set with a new random ID.
func NewSet() *Set {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Set{id: hex.EncodeToString(b[:])}
}

// ID is the set's ID, which every file of the set records.
func (s *Set) ID() string { return s.id }

// Create starts the atomic write of a file of the set. Two files of a set may
// not have the same destination.
func (s *Set) Create(path string) (*File, error) {
	for _, f := range s.files {
		if same(f.dest, path) {
			return nil, fmt.Errorf("create %s: written twice in one stage (also as %s)", path, f.dest)
		}
	}
	f, err := Create(path)
	if err != nil {
		return nil, err
	}
	if !f.direct {
		f.set = s
	}
	s.files = append(s.files, f)
	return f, nil
}

// WriteFile writes data as a file of the set.
func (s *Set) WriteFile(path string, data []byte) error { return writeWith(s.Create, path, data) }

func same(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	return SameFile(a, b)
}

const backupMark = ".prev-"

func backupName(dest, id string) string {
	return filepath.Join(filepath.Dir(dest), "."+filepath.Base(dest)+backupMark+id)
}

// Commit renames every file of the set into place. When a rename fails, the
// files already renamed are put back from their backups and the error is
// returned: the previous outputs are all as they were.
func (s *Set) Commit() error {
	if s.done {
		return errors.New("commit write set: already finished")
	}
	if s.failed != nil {
		s.Abort()
		return s.failed
	}
	for _, f := range s.files {
		if !f.done {
			s.Abort()
			return fmt.Errorf("commit write set: %s was not finished", f.dest)
		}
	}
	s.done = true
	defer s.removeTemps()
	type step struct {
		f      *File
		backup string // "" when the destination did not exist (or cannot be kept)
	}
	steps := make([]step, 0, len(s.ready))
	for _, f := range s.ready {
		st := step{f: f}
		if fi, err := os.Lstat(f.dest); err == nil && fi.Mode().IsRegular() {
			b := backupName(f.dest, s.id)
			os.Remove(b)
			if err := os.Link(f.dest, b); err == nil {
				st.backup = b
			}
		}
		steps = append(steps, st)
	}
	for i, st := range steps {
		if err := rename(st.f.Name(), st.f.dest); err != nil {
			err = fmt.Errorf("write %s: %w", st.f.dest, err)
			for j := i - 1; j >= 0; j-- { // put back what was replaced
				done := steps[j]
				if done.backup != "" {
					if rerr := os.Rename(done.backup, done.f.dest); rerr != nil {
						err = fmt.Errorf("%w; restoring the previous %s failed: %w (it is kept as %s)", err, done.f.dest, rerr, done.backup)
					}
				} else {
					os.Remove(done.f.dest)
				}
			}
			for _, later := range steps[i:] {
				if later.backup != "" {
					os.Remove(later.backup)
				}
			}
			return err
		}
	}
	dirs := map[string]bool{}
	for _, st := range steps {
		dirs[filepath.Dir(st.f.dest)] = true
	}
	for d := range dirs {
		_ = SyncDir(d)
	}
	for _, st := range steps {
		removeBackups(st.f.dest)
	}
	return nil
}

// removeBackups removes the backups of dest: this commit's, and those a
// process killed between two renames left.
func removeBackups(dest string) {
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(dest), "."+escapeGlob(filepath.Base(dest))+backupMark+"*"))
	for _, m := range matches {
		os.Remove(m)
	}
}

func escapeGlob(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(s)
}

func (s *Set) removeTemps() {
	for _, f := range s.files {
		if !f.direct {
			os.Remove(f.Name()) // fails harmlessly once renamed
		}
	}
}

// Abort discards every file of the set; the destinations are untouched. It is
// a no-op after Commit.
func (s *Set) Abort() {
	if s.done {
		return
	}
	s.done = true
	for _, f := range s.files {
		f.Abort()
	}
	s.removeTemps()
}

// ErrMixedSet marks two files that should have been written together by one
// run of a stage but were not.
var ErrMixedSet = errors.New("files of different writes")

// CheckSameSet reports an error when the write-set IDs of two files that
// belong together differ. An ID of "" (a file written before write sets were
// recorded) is not checked.
func CheckSameSet(pathA, idA, pathB, idB string) error {
	if idA == "" || idB == "" || idA == idB {
		return nil
	}
	return fmt.Errorf("%s (write %s) and %s (write %s) are %w: a run was interrupted between writing them, or one was copied from another run; run the stage that writes them again: %w",
		pathA, idA, pathB, idB, ErrMixedSet, exitcode.ErrValidation)
}
