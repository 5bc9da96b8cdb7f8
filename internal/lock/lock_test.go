package lock

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExclusive(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", ".lock")
	a, err := Acquire(ctx, path, Options{What: "first"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(ctx, path, Options{})
	var he *HeldError
	if !errors.As(err, &he) || !errors.Is(err, ErrHeld) {
		t.Fatalf("second Acquire: %v, want a HeldError", err)
	}
	if !strings.Contains(he.Holder, "first") || !strings.Contains(he.Holder, "pid ") {
		t.Errorf("holder %q does not say who holds the lock", he.Holder)
	}
	if _, err := Acquire(ctx, path, Options{Shared: true}); !errors.Is(err, ErrHeld) {
		t.Errorf("shared Acquire under an exclusive lock: %v, want ErrHeld", err)
	}
	if err := a.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := a.Unlock(); err != nil {
		t.Fatalf("second Unlock: %v", err)
	}
	b, err := Acquire(ctx, path, Options{})
	if err != nil {
		t.Fatalf("Acquire after Unlock: %v", err)
	}
	b.Unlock()
}

func TestShared(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), ".lock")
	a, err := Acquire(ctx, path, Options{Shared: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Acquire(ctx, path, Options{Shared: true})
	if err != nil {
		t.Fatalf("two shared locks: %v", err)
	}
	if _, err := Acquire(ctx, path, Options{}); !errors.Is(err, ErrHeld) {
		t.Errorf("exclusive under shared: %v, want ErrHeld", err)
	}
	a.Unlock()
	b.Unlock()
	c, err := Acquire(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c.Unlock()
}

func TestWait(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), ".lock")
	a, err := Acquire(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		a.Unlock()
	}()
	b, err := Acquire(ctx, path, Options{Wait: 5 * time.Second})
	if err != nil {
		t.Fatalf("waiting Acquire: %v", err)
	}
	b.Unlock()

	// A cancelled context ends the wait.
	c, _ := Acquire(ctx, path, Options{})
	defer c.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := Acquire(cctx, path, Options{Wait: time.Hour}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Acquire with an ending context: %v", err)
	}
}

// TestDiesWithProcess kills a process holding the lock: the lock is free
// at once, with no stale lock to clean up.
func TestDiesWithProcess(t *testing.T) {
	if os.Getenv("LOCK_HELPER") != "" {
		l, err := Acquire(context.Background(), os.Getenv("LOCK_HELPER"), Options{What: "helper"})
		if err != nil {
			os.Exit(3)
		}
		_ = l
		os.Stdout.WriteString("locked\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	path := filepath.Join(t.TempDir(), ".lock")
	cmd := exec.Command(os.Args[0], "-test.run=^TestDiesWithProcess$")
	cmd.Env = append(os.Environ(), "LOCK_HELPER="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "locked\n" {
		t.Fatalf("helper said %q", line)
	}
	ctx := context.Background()
	if _, err := Acquire(ctx, path, Options{}); !errors.Is(err, ErrHeld) {
		t.Fatalf("lock of a live helper: %v, want ErrHeld", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	l, err := Acquire(ctx, path, Options{Wait: 5 * time.Second})
	if err != nil {
		t.Fatalf("lock after the holder was killed: %v", err)
	}
	l.Unlock()
}
