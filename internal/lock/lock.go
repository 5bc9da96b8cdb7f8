// Package lock is an advisory file lock (flock(2)) that dies with its
// process: the kernel releases it when the holder exits, however it exits, so
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
	"syscall"
	"time"
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
	f    *os.File
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
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	how := syscall.LOCK_EX
	if opts.Shared {
		how = syscall.LOCK_SH
	}
	deadline := time.Now().Add(opts.Wait)
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !time.Now().Before(deadline) {
			holder, _ := os.ReadFile(path)
			f.Close()
			return nil, &HeldError{Path: path, Holder: strings.TrimSpace(string(holder))}
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(25 * time.Millisecond):
		}
	}
	if !opts.Shared {
		host, _ := os.Hostname()
		line := fmt.Sprintf("pid %d on %s since %s", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
		if opts.What != "" {
			line += ": " + opts.What
		}
		if err := f.Truncate(0); err == nil {
			_, _ = f.WriteAt([]byte(line+"\n"), 0)
		}
	}
	return &Lock{f: f, path: path}, nil
}

// Path returns the lock file.
func (l *Lock) Path() string { return l.path }

// Unlock releases the lock. It is safe to call more than once.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	if err != nil {
		return fmt.Errorf("unlock %s: %w", l.path, err)
	}
	return nil
}
