// Package lock is an advisory file lock (flock(2) on Unix, LockFileEx on
// Windows, through github.com/gofrs/flock) that dies with its process: the
// kernel releases it when the holder exits, however it exits, so
// a crashed run never leaves a stale lock behind. The lock file itself is
// never removed (removing it would let two processes lock two different
// inodes under one name); it holds a line saying who holds the lock, for the
// message of the process that finds it taken.
package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// ErrHeld is returned (wrapped in a *HeldError) when the lock is taken by
// another process (or another Lock of this process) and waiting is over.
var ErrHeld = errors.New("lock is held")

// HeldError says who holds a lock.
type HeldError struct {
	Path   string
	Holder string // "pid 123 on host since 2025-03-01T12:00:00Z: modax-ml pipeline run"
}

func (e *HeldError) Error() string {
	h := e.Holder
	if h == "" {
		h = "unknown holder"
	}
	return fmt.Sprintf("%s is locked by %s", e.Path, h)
}

// Unwrap returns ErrHeld.
func (e *HeldError) Unwrap() error { return ErrHeld }

// Lock is a held lock. Release it with Unlock.
type Lock struct {
	fl   *flock.Flock
	path string
}

// Options configure Acquire.
type Options struct {
	// Wait is how long to wait for the lock (0: fail at once if it is held).
	Wait time.Duration
	// Shared takes a shared (read) lock: any number of shared holders, no
	// exclusive one.
	Shared bool
	// What describes the holder ("pipeline run 2025…"); written into the
	// lock file of an exclusive lock.
	What string
}

// Acquire takes the lock at path (creating the file and its directory),
// waiting up to opts.Wait or until ctx ends.
func Acquire(ctx context.Context, path string, opts Options) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	fl := flock.New(path, flock.SetFlag(os.O_CREATE|os.O_RDWR), flock.SetPermissions(0o644))
	try := fl.TryLock
	if opts.Shared {
		try = fl.TryRLock
	}
	deadline := time.Now().Add(opts.Wait)
	for {
		ok, err := try()
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if ok {
			break
		}
		if !time.Now().Before(deadline) {
			holder, _ := os.ReadFile(path)
			return nil, &HeldError{Path: path, Holder: strings.TrimSpace(string(holder))}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(25 * time.Millisecond):
		}
	}
	if !opts.Shared {
		writeHolder(path, opts.What)
	}
	return &Lock{fl: fl, path: path}, nil
}

// writeHolder replaces the lock file's line with this process's. It is best
// effort: the line only makes a HeldError's message; on Windows the region
// lock keeps other handles out, so the line stays as it was. It writes
// through a second handle, which leaves a flock(2) lock alone (that lock
// belongs to the open file of the first handle).
func writeHolder(path, what string) {
	host, _ := os.Hostname()
	line := fmt.Sprintf("pid %d on %s since %s", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	if what != "" {
		line += ": " + what
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(line+"\n"), 0)
	}
	_ = f.Close()
}

// Path returns the lock file.
func (l *Lock) Path() string { return l.path }

// Unlock releases the lock. It is safe to call more than once.
func (l *Lock) Unlock() error {
	if l == nil || l.fl == nil {
		return nil
	}
	err := l.fl.Close()
	l.fl = nil
	if err != nil {
		return fmt.Errorf("unlock %s: %w", l.path, err)
	}
	return nil
}
