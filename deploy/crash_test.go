package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/modax/modax-ml/internal/fixture"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/runenv"
)

// helperEnv makes the test binary act as a deploy process that kills itself
// with SIGKILL at a named step (see TestMain).
const helperEnv = "MODAX_DEPLOY_CRASH_HELPER"

type helperJob struct {
	Action  string  `json:"action"` // deploy or rollback
	Opts    Options `json:"opts"`
	To      string  `json:"to"`
	CrashAt string  `json:"crash_at"`
	Nth     int     `json:"nth"` // crash at the nth time the step is reached (default 1)
}

func TestMain(m *testing.M) {
	if job := os.Getenv(helperEnv); job != "" {
		os.Exit(helperMain(job))
	}
	os.Exit(m.Run())
}

func helperMain(s string) int {
	var job helperJob
	if err := json.Unmarshal([]byte(s), &job); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	seen := 0
	testHooks.step = func(name string) {
		if name == job.CrashAt {
			seen++
			if seen >= max(job.Nth, 1) {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {} // the signal is on its way
			}
		}
	}
	var err error
	if job.Action == "rollback" {
		_, err = Rollback(context.Background(), runenv.Test(), job.Opts, job.To)
	} else {
		_, err = Run(context.Background(), runenv.Test(), job.Opts)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// crash runs job in a child process and checks that it was killed.
func crash(t *testing.T, job helperJob) {
	t.Helper()
	b, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(context.Background(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(b))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("helper was not killed at %q (err %v): %s", job.CrashAt, err, out)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper did not die at %q by SIGKILL: %v\n%s", job.CrashAt, err, out)
	}
}

// checkChain checks that the history is a chain of switches ending at the
// served version.
func checkChain(t *testing.T, models string) {
	t.Helper()
	h, err := (&store{dir: models}).history()
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(h.Events); i++ {
		if h.Events[i].Previous != h.Events[i-1].Version {
			t.Fatalf("history is not a chain: %+v", h.Events)
		}
	}
	if v := served(t, models); h.last().Version != v {
		t.Fatalf("history ends at %s, %s is served", h.last().Version, v)
	}
}

// TestCrashDuringDeploy kills a deploy of v2 over a served v1 at every step
// and checks that v1 or v2 is served, never a mix, and that the next deploy
// cleans up and finishes.
func TestCrashDuringDeploy(t *testing.T) {
	ctx := context.Background()
	c1, c2 := candidateDir(t, 51, 7), candidateDir(t, 52, 6)
	// v52 comes with a validation report: the fifth file staged.
	o2 := func(models string) Options {
		o := opts(models, c2)
		o.Validation = writeValidation(t, filepath.Dir(c2.Metrics), "sensor_0", "sensor_1", "sensor_2")
		return o
	}
	for _, tc := range []struct {
		step string
		nth  int
		want string // served after the crash
	}{
		{"locked", 1, "v51"},
		{"staging", 1, "v51"}, // after the first file of the version
		{"staging", 3, "v51"},
		{"staging", 5, "v51"},
		{"staged", 1, "v51"},
		{"published", 1, "v51"},
		{"link-created", 1, "v51"},
		{"switched", 1, "v52"},
		{"recorded", 1, "v52"},
	} {
		t.Run(fmt.Sprintf("%s-%d", tc.step, tc.nth), func(t *testing.T) {
			models := filepath.Join(t.TempDir(), "models")
			if _, err := Run(ctx, env(), opts(models, c1)); err != nil {
				t.Fatal(err)
			}
			crash(t, helperJob{Action: "deploy", Opts: o2(models), CrashAt: tc.step, Nth: tc.nth})
			if got := served(t, models); got != tc.want {
				t.Fatalf("after a crash at %s: %s served, want %s", tc.step, got, tc.want)
			}
			// The models dir stays readable by list.
			if _, err := List(ctx, opts(models, c2)); err != nil {
				t.Fatal(err)
			}
			res, err := Run(ctx, env(), o2(models))
			if err != nil {
				t.Fatalf("deploy after the crash: %v", err)
			}
			if err := checkServable(&store{dir: models}, "v52"); err != nil || res.Validation == "" {
				t.Fatalf("v52 after recovery: %v (validation %q)", err, res.Validation)
			}
			if served(t, models) != "v52" || len(leftovers(t, models)) > 0 {
				t.Fatalf("after recovery: served %s, leftovers %v, %+v", served(t, models), leftovers(t, models), res)
			}
			if err := (&store{dir: models}).complete("v52"); err != nil {
				t.Fatal(err)
			}
			checkChain(t, models)
		})
	}
}

func TestCrashDuringRollbackAndPrune(t *testing.T) {
	ctx := context.Background()
	cs := []fixture.Files{candidateDir(t, 61, 5), candidateDir(t, 62, 5), candidateDir(t, 63, 5), candidateDir(t, 64, 5)}
	setup := func(t *testing.T, n int) string {
		t.Helper()
		models := filepath.Join(t.TempDir(), "models")
		for _, c := range cs[:n] {
			if _, err := Run(ctx, env(), opts(models, c)); err != nil {
				t.Fatal(err)
			}
		}
		return models
	}
	for _, tc := range []struct{ step, want string }{{"link-created", "v63"}, {"switched", "v62"}} {
		t.Run("rollback-"+tc.step, func(t *testing.T) {
			models := setup(t, 3)
			crash(t, helperJob{Action: "rollback", Opts: opts(models, fixture.Files{}), CrashAt: tc.step})
			if got := served(t, models); got != tc.want {
				t.Fatalf("served %s, want %s", got, tc.want)
			}
			if _, err := Rollback(ctx, env(), opts(models, fixture.Files{}), "v62"); err != nil && !strings.Contains(err.Error(), "already served") {
				t.Fatal(err)
			}
			if served(t, models) != "v62" || len(leftovers(t, models)) > 0 {
				t.Fatalf("served %s leftovers %v", served(t, models), leftovers(t, models))
			}
			checkChain(t, models)
		})
	}
	t.Run("prune", func(t *testing.T) {
		models := setup(t, 3)
		o := opts(models, cs[3])
		o.Keep = 1
		crash(t, helperJob{Action: "deploy", Opts: o, CrashAt: "pruning"})
		if served(t, models) != "v64" {
			t.Fatal("the crash in pruning lost the new model")
		}
		if len(leftovers(t, models)) != 1 {
			t.Fatalf("want the half-removed version under a trash name, got %v", leftovers(t, models))
		}
		if _, err := Run(ctx, env(), o); err != nil {
			t.Fatal(err)
		}
		vs, _ := (&store{dir: models}).versions()
		if strings.Join(vs, ",") != "v63,v64" || len(leftovers(t, models)) > 0 {
			t.Fatalf("versions %v leftovers %v", vs, leftovers(t, models))
		}
		checkChain(t, models)
	})
}

// TestWriteErrors injects write errors at the file layer (a full disk, a
// read-only directory): clear errors, nothing half-published.
func TestWriteErrors(t *testing.T) {
	ctx := context.Background()
	c1, c2 := candidateDir(t, 71, 5), candidateDir(t, 72, 5)
	for _, tc := range []struct {
		name string
		file string
		err  error
		want string
	}{
		{"full disk at the checkpoint", fileCheckpoint, syscall.ENOSPC, "no space left on device"},
		{"full disk at the metadata", fileMetadata, syscall.ENOSPC, "no space left on device"},
		{"read-only at the onnx", fileONNX, syscall.EROFS, "read-only file system"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			models := filepath.Join(t.TempDir(), "models")
			if _, err := Run(ctx, env(), opts(models, c1)); err != nil {
				t.Fatal(err)
			}
			testHooks.write = func(path string) error {
				if filepath.Base(path) == tc.file {
					return tc.err
				}
				return nil
			}
			defer func() { testHooks.write = nil }()
			_, err := Run(ctx, env(), opts(models, c2))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nothing deployed; "+models+" still serves v71") {
				t.Fatalf("err = %v", err)
			}
			vs, _ := (&store{dir: models}).versions()
			if served(t, models) != "v71" || len(vs) != 1 || len(leftovers(t, models)) > 0 {
				t.Fatalf("served %s versions %v leftovers %v", served(t, models), vs, leftovers(t, models))
			}
		})
	}
	// The history write failing after the switch: the model is served, the
	// error says so, and the next run records the switch.
	models := filepath.Join(t.TempDir(), "models")
	if _, err := Run(ctx, env(), opts(models, c1)); err != nil {
		t.Fatal(err)
	}
	testHooks.write = func(path string) error {
		if filepath.Base(path) == historyFile {
			return syscall.ENOSPC
		}
		return nil
	}
	_, err := Run(ctx, env(), opts(models, c2))
	testHooks.write = nil
	if err == nil || !strings.Contains(err.Error(), "v72 is served, but the history was not updated") || served(t, models) != "v72" {
		t.Fatalf("err = %v, served %s", err, served(t, models))
	}
	l, err := List(ctx, opts(models, c2))
	if err != nil || l.Current != "v72" {
		t.Fatalf("list: %+v %v", l, err)
	}
	if _, err := Rollback(ctx, env(), opts(models, c2), ""); err != nil || served(t, models) != "v71" {
		t.Fatalf("rollback after the recovered switch: %v", err)
	}
	checkChain(t, models)
}

// mountTmpfs mounts a small tmpfs at a new directory, or skips the test
// when this process may not mount (the injected-error test covers that case).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); TestWriteErrors injects the same errors", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestFullDiskTmpfs deploys onto a real, small tmpfs until it is full.
func TestFullDiskTmpfs(t *testing.T) {
	ctx := context.Background()
	models := filepath.Join(mountTmpfs(t, "160k"), "models")
	if _, err := Run(ctx, env(), opts(models, candidateDir(t, 81, 5))); err != nil {
		t.Fatal(err)
	}
	// A model too large for what is left (≈ 300 KB of weights).
	big := model.Arch{Type: model.TypeLSTM, InputSize: 3, Hidden: 64, Layers: 2, FC: 32}
	cb := candidateAt(t, t.TempDir(), fixture.Checkpoint(big, 8, 82), 5)
	o := opts(models, cb)
	o.AllowInterfaceChange = true
	_, err := Run(ctx, env(), o)
	if err == nil || !strings.Contains(err.Error(), "no space left on device") || !strings.Contains(err.Error(), "still serves v81") {
		t.Fatalf("err = %v", err)
	}
	vs, _ := (&store{dir: models}).versions()
	if served(t, models) != "v81" || len(vs) != 1 || len(leftovers(t, models)) > 0 {
		t.Fatalf("served %s versions %v leftovers %v", served(t, models), vs, leftovers(t, models))
	}
}

// TestReadOnlyTmpfs deploys into a models directory remounted read-only.
func TestReadOnlyTmpfs(t *testing.T) {
	ctx := context.Background()
	mnt := mountTmpfs(t, "1m")
	models := filepath.Join(mnt, "models")
	if _, err := Run(ctx, env(), opts(models, candidateDir(t, 91, 5))); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(ctx, env(), opts(models, candidateDir(t, 92, 5))); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("", mnt, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Skipf("cannot remount read-only: %v", err)
	}
	defer func() { _ = syscall.Mount("", mnt, "", syscall.MS_REMOUNT, "") }()
	c := candidateDir(t, 93, 5)
	if _, err := Run(ctx, env(), opts(models, c)); err == nil || !strings.Contains(err.Error(), "read-only file system") {
		t.Fatalf("deploy: %v", err)
	}
	if _, err := Rollback(ctx, env(), opts(models, c), ""); err == nil || !strings.Contains(err.Error(), "read-only file system") {
		t.Fatalf("rollback: %v", err)
	}
	if served(t, models) != "v92" {
		t.Fatal("served model changed")
	}
	if l, err := List(ctx, opts(models, c)); err != nil || l.Current != "v92" || l.Previous != "v91" {
		t.Fatalf("list on a read-only dir: %+v %v", l, err)
	}
}
