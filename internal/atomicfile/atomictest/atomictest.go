// Package atomictest kills a stage between two renames of its write set, in
// a child process, for tests of what the next stage makes of the files left
// behind.
package atomictest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/modax/modax-ml/internal/atomicfile"
)

// The child's instructions: the rename to be killed at and the directory the
// parent's files are in.
const (
	envRename = "MODAX_ATOMICTEST_KILL_AT_RENAME"
	envDir    = "MODAX_ATOMICTEST_DIR"
)

// KillAtRename runs setup, then fn(dir) on the directory setup returned in a
// child process — this test binary running only the calling test, which
// reaches this call again — that SIGKILLs itself when the nth rename after fn
// starts is about to happen: the renames before it are done, it and the ones
// after never are. It returns dir once the child is dead, and fails the test
// when the child was not killed (fn finished, or failed, before its nth
// rename).
//
// The child skips setup and runs fn on the parent's dir: what fn needs
// besides dir it rebuilds from dir. Work the test does before the call is
// done again in the child.
func KillAtRename(t *testing.T, n int, setup func() string, fn func(dir string)) string {
	t.Helper()
	if at := os.Getenv(envRename); at != "" {
		child(t, at, fn)
		return ""
	}
	dir := setup()
	cmd := exec.CommandContext(context.Background(), os.Args[0], "-test.run="+runPattern(t.Name()), "-test.count=1")
	cmd.Env = append(os.Environ(), envRename+"="+strconv.Itoa(n), envDir+"="+dir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return dir
		}
	}
	t.Fatalf("the child was not killed at rename %d (%v):\n%s", n, err, out)
	return ""
}

func child(t *testing.T, at string, fn func(dir string)) {
	t.Helper()
	n, err := strconv.Atoi(at)
	if err != nil {
		t.Fatalf("%s=%q: %v", envRename, at, err)
	}
	seen := 0
	atomicfile.RenameHook = func(int, string, string) error {
		seen++
		if seen == n {
			if p, err := os.FindProcess(os.Getpid()); err == nil {
				_ = p.Kill() // SIGKILL
			}
			select {} // the signal is on its way
		}
		return nil
	}
	fn(os.Getenv(envDir))
	atomicfile.RenameHook = nil
	t.Fatalf("finished after %d renames without reaching rename %d", seen, n)
}

// runPattern is the -test.run pattern that selects exactly the test (or
// subtest) named name.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}
