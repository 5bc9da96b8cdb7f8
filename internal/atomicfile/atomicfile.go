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
//
// A destination in a bucket (s3://…, see internal/location) is written the
// same way with the store's primitives: a single file streams as a multipart
// upload that appears under its key only when complete; a file of a set is
// staged under a hidden temporary key and copied into place by the set's
// Commit, with the previous objects kept under backup keys and put back when
// a copy fails.
package atomicfile

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"

	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/location"
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
	*os.File                  // the local temporary file (nil for a bucket destination)
	remote   *location.Writer // a single object streaming to its key
	staged   *location.Staged // an object of a set, under a temporary key
	dest     string
	done     bool
	direct   bool // writing straight into a device, pipe or socket
	set      *Set // staged in a set: Commit only syncs; the set renames
}

// Write writes to the temporary file or the upload.
func (a *File) Write(p []byte) (int, error) {
	switch {
	case a.remote != nil:
		return a.remote.Write(p)
	case a.staged != nil:
		return a.staged.Write(p)
	}
	return a.File.Write(p)
}

// Name is the temporary file's name; "" for a bucket destination.
func (a *File) Name() string {
	if a.File == nil {
		return ""
	}
	return a.File.Name()
}

// Sync flushes the temporary file to disk (nothing for a bucket destination:
// the upload completes at Commit).
func (a *File) Sync() error {
	if a.File == nil {
		return nil
	}
	return a.File.Sync()
}

var lostURL = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]+:$`)

// Create starts an atomic write of path (a local path or a bucket location).
// Always defer Abort; call Commit when everything was written.
func Create(path string) (*File, error) {
	if location.IsRemote(path) {
		w, err := location.Create(context.Background(), path)
		if err != nil {
			return nil, err
		}
		return &File{remote: w, dest: path}, nil
	}
	path, err := location.Local(path)
	if err != nil {
		return nil, err
	}
	if first, _, ok := strings.Cut(filepath.ToSlash(path), "/"); ok && lostURL.MatchString(first) {
		// "s3:/b/k": a bucket location passed through filepath.Join or
		// Clean, which collapse "//" — a bug of the caller; never create a
		// local directory "s3:" for it.
		return nil, fmt.Errorf("create %s: this looks like a URL that lost its \"//\"; bucket locations are not supported for this output", path)
	}
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
	if a.remote != nil {
		return a.remote.Commit()
	}
	if a.staged != nil {
		if err := a.staged.Commit(); err != nil {
			a.set.failed = err
			return err
		}
		a.set.ready = append(a.set.ready, a)
		return nil
	}
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
	switch {
	case a.remote != nil:
		a.remote.Abort()
		return
	case a.staged != nil:
		a.staged.Discard(context.Background())
		return
	}
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
	if location.IsRemote(path) {
		st, err := location.CreateStaged(context.Background(), path, s.id)
		if err != nil {
			return nil, err
		}
		f := &File{staged: st, dest: path, set: s}
		s.files = append(s.files, f)
		return f, nil
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
	if location.IsRemote(a) || location.IsRemote(b) {
		return location.IsRemote(a) && location.IsRemote(b) && location.Same(a, b)
	}
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
	if slices.ContainsFunc(s.ready, func(f *File) bool { return f.staged != nil }) {
		return s.commitRemote()
	}
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

// commitRemote copies every staged object of the set into place, keeping
// the previous objects under backup keys until all are in place; when a copy
// fails, what was already replaced is put back. (A set is all local or all
// in one store: a stage writes its outputs beside each other.)
func (s *Set) commitRemote() error {
	ctx := context.Background()
	backups := make([]string, len(s.ready))
	for i, f := range s.ready {
		if f.staged == nil {
			return fmt.Errorf("commit write set: %s is a local file and the set's other outputs are in a bucket; write a stage's outputs to one place", f.dest)
		}
		b, err := f.staged.Backup(ctx, s.id)
		if err != nil {
			for j := 0; j < i; j++ {
				s.ready[j].staged.DeleteKey(ctx, backups[j])
			}
			return err
		}
		backups[i] = b
	}
	for i, f := range s.ready {
		if err := f.staged.Promote(ctx); err != nil {
			for j := i - 1; j >= 0; j-- {
				done := s.ready[j]
				if rerr := done.staged.Restore(ctx, backups[j]); rerr != nil {
					err = fmt.Errorf("%w; restoring the previous %s failed: %w", err, done.dest, rerr)
				}
			}
			for j := i; j < len(s.ready); j++ {
				s.ready[j].staged.DeleteKey(ctx, backups[j])
			}
			return err
		}
	}
	for i, f := range s.ready {
		f.staged.DeleteKey(ctx, backups[i])
	}
	return nil
}

func (s *Set) removeTemps() {
	for _, f := range s.files {
		if f.staged != nil {
			f.staged.Discard(context.Background())
			continue
		}
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
