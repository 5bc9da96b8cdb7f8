package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modax/modax-ml/internal/config"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/internal/tracking"
)

// The tests in this file check the middleware's bookkeeping (keys, stamps,
// cache reuse, --from/--until/--force, errors) on a chain of eight tiny
// file-copying stages, where every case runs in milliseconds. The real
// stages go through the same middleware in pipeline_test.go.

// toyOptions are the options of a toy stage.
type toyOptions struct {
	In   string `json:"in"`
	Out  string `json:"out"`
	Salt string `json:"salt"`
}

// toy counts the runs of each stage.
type toy struct {
	runs   map[string]*atomic.Int32
	salt   map[string]string
	fail   map[string]error
	cancel map[string]context.CancelFunc
}

func newToy() *toy {
	t := &toy{runs: map[string]*atomic.Int32{}, salt: map[string]string{}, fail: map[string]error{}, cancel: map[string]context.CancelFunc{}}
	for _, n := range Order {
		t.runs[n] = &atomic.Int32{}
	}
	return t
}

// stages builds the toy chain: stage i copies stage i-1's file and appends
// its name and salt.
func (ty *toy) stages(_ config.Config, d Dirs) ([]*Stage, error) {
	var out []*Stage
	prev := ""
	for _, name := range Order {
		o := toyOptions{In: prev, Out: d.Out(name + ".txt"), Salt: ty.salt[name]}
		s := &Stage{Name: name, Options: o, Outputs: []string{o.Out}}
		if prev != "" {
			s.Inputs = []string{prev}
		}
		if name == Deploy {
			s.NoCache = "deploy publishes outside the run directory"
		}
		s.Run = func(ctx context.Context, _ *runenv.Env) (any, error) {
			ty.runs[name].Add(1)
			if c := ty.cancel[name]; c != nil {
				c()
				return nil, fmt.Errorf("%s: interrupted: %w", name, ctx.Err())
			}
			if err := ty.fail[name]; err != nil {
				return nil, err
			}
			var b []byte
			if o.In != "" {
				var err error
				if b, err = os.ReadFile(o.In); err != nil {
					return nil, err
				}
			}
			b = append(b, name+o.Salt+"\n"...)
			return name, os.WriteFile(o.Out, b, 0o644)
		}
		out = append(out, s)
		prev = o.Out
	}
	return out, nil
}

func (ty *toy) counts() string {
	var b strings.Builder
	for _, n := range Order {
		fmt.Fprintf(&b, "%d", ty.runs[n].Load())
	}
	return b.String()
}

func toyOpts(t *testing.T, ty *toy, dir string) Options {
	t.Helper()
	cfg := config.Default()
	cfg.Dir = dir
	return Options{Config: cfg, stages: ty.stages, RepoDir: dir, Getenv: func(string) string { return "" }}
}

func statuses(res *Result) string {
	var parts []string
	for _, s := range res.Stages {
		parts = append(parts, s.Status)
	}
	return strings.Join(parts, ",")
}

func TestToyCacheAndForce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ty := newToy()
	env := runenv.Test()

	res, err := Run(ctx, env, toyOpts(t, ty, dir))
	if err != nil {
		t.Fatal(err)
	}
	if ty.counts() != "11111111" || res.Status != tracking.StatusFinished {
		t.Fatalf("first run: runs %s, status %s", ty.counts(), res.Status)
	}
	if !strings.Contains(res.Stages[0].Reason, "not in the cache") {
		t.Errorf("first run reason %q", res.Stages[0].Reason)
	}
	first := res.RunID

	// Second run: everything cached but deploy (never cached).
	o := toyOpts(t, ty, dir)
	o.Config.RunID = "second"
	res, err = Run(ctx, env, o)
	if err != nil {
		t.Fatal(err)
	}
	if ty.counts() != "11111112" {
		t.Fatalf("second run: runs %s", ty.counts())
	}
	if got := statuses(res); got != "skipped,skipped,skipped,skipped,skipped,skipped,skipped,ran" {
		t.Errorf("second run statuses %s", got)
	}
	if r := res.Stages[3].Reason; !strings.Contains(r, "cached") || !strings.Contains(r, first) {
		t.Errorf("cached reason %q does not name the run that computed it", r)
	}
	b, err := os.ReadFile(filepath.Join(dir, "runs", "second", "deploy.txt"))
	if err != nil || string(b) != "collect\nvalidate\nlabel\nfeatures\ntrain\nevaluate\nexport\ndeploy\n" {
		t.Errorf("restored chain produced %q, %v", b, err)
	}

	// Changing features' options reruns features and everything after it,
	// and says which option changed.
	ty.salt[Features] = "-v2"
	o.Config.RunID = "third"
	res, err = Run(ctx, env, o)
	if err != nil {
		t.Fatal(err)
	}
	if ty.counts() != "11122223" {
		t.Fatalf("third run: runs %s", ty.counts())
	}
	if r := res.Stages[3].Reason; !strings.Contains(r, "options changed (salt)") {
		t.Errorf("features reason %q", r)
	}
	if r := res.Stages[4].Reason; !strings.Contains(r, "inputs changed (features.txt)") {
		t.Errorf("train reason %q", r)
	}

	// --force=train reruns train (and what depends on it: its output is the
	// same, so the later stages are cached again).
	o.Config.RunID, o.Force = "fourth", []string{Train}
	res, err = Run(ctx, env, o)
	if err != nil {
		t.Fatal(err)
	}
	if ty.counts() != "11123224" || res.Stages[4].Reason != "forced (--force)" {
		t.Fatalf("--force=train: runs %s, reason %q", ty.counts(), res.Stages[4].Reason)
	}

	// Cache off: everything runs.
	o.Config.RunID, o.Force, o.Config.Pipeline.Cache = "fifth", nil, false
	if _, err = Run(ctx, env, o); err != nil {
		t.Fatal(err)
	}
	if ty.counts() != "22234335" {
		t.Fatalf("cache off: runs %s", ty.counts())
	}
}

func TestToyFromUntilPlan(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ty := newToy()
	env := runenv.Test()

	o := toyOpts(t, ty, dir)
	o.Until = Features
	res, err := Run(ctx, env, o)
	if err != nil {
		t.Fatal(err)
	}
	if ty.counts() != "11110000" || res.Deploy == nil || res.Deploy.Decision != tracking.DeploySkipped || res.Deploy.Reason != "--until features" {
		t.Fatalf("--until features: runs %s, deploy %+v", ty.counts(), res.Deploy)
	}
	if got := statuses(res); got != "ran,ran,ran,ran,not run,not run,not run,not run" {
		t.Errorf("statuses %s", got)
	}

	// Dry run of a full new run: the first four are cached, train runs, the
	// rest follow it; nothing is written.
	o = toyOpts(t, ty, dir)
	o.Config.RunID = "planned"
	p, err := Plan(ctx, env, o)
	if err != nil {
		t.Fatal(err)
	}
	var acts []string
	for _, s := range p.Stages {
		acts = append(acts, s.Action)
	}
	if got := strings.Join(acts, ","); got != "cached,cached,cached,cached,run,run,run,run" {
		t.Errorf("plan actions %s", got)
	}
	if p.Stages[3].Key == "" || p.Stages[5].Key != "" || !strings.Contains(p.Stages[5].Reason, "made by an earlier stage that runs") {
		t.Errorf("plan keys/reasons: %+v", p.Stages)
	}
	if _, err := os.Stat(filepath.Join(dir, "runs", "planned")); !os.IsNotExist(err) {
		t.Error("the dry run created the run directory")
	}
	var sb strings.Builder
	if err := p.WriteText(&sb); err != nil || !strings.Contains(sb.String(), "STAGE") {
		t.Errorf("plan text: %q, %v", sb.String(), err)
	}

	// --from train in a new run: the stages before come from the cache.
	o.Config.RunID, o.From = "from-train", Train
	if _, err := Run(ctx, env, o); err != nil {
		t.Fatal(err)
	}
	if ty.counts() != "11111111" {
		t.Fatalf("--from train: runs %s", ty.counts())
	}
	// --from with nothing cached for the earlier stages is an error.
	empty := toyOpts(t, ty, t.TempDir())
	empty.From = Train
	if _, err := Run(ctx, env, empty); err == nil || !strings.Contains(err.Error(), "--from train") {
		t.Errorf("--from without cached outputs: %v", err)
	}
	bad := toyOpts(t, ty, dir)
	bad.From, bad.Until = Train, Label
	if _, err := Run(ctx, env, bad); !errors.Is(err, exitcode.ErrUsage) {
		t.Errorf("--from after --until: %v", err)
	}
	bad.From, bad.Until = "trian", ""
	if _, err := Run(ctx, env, bad); !errors.Is(err, exitcode.ErrUsage) || !strings.Contains(err.Error(), "want one of collect") {
		t.Errorf("unknown stage: %v", err)
	}
}

func TestToyFailureAndResume(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ty := newToy()
	env := runenv.Test()

	ty.fail[Train] = fmt.Errorf("train: %w: windows has no train split", exitcode.ErrValidation)
	o := toyOpts(t, ty, dir)
	o.Config.RunID = "r1"
	o.Config.Pipeline.Cache = false // resume must work from the run directory alone
	res, err := Run(ctx, env, o)
	if !errors.Is(err, exitcode.ErrValidation) || err.Error() != "pipeline: train: data validation failed: windows has no train split" {
		t.Fatalf("failing train: %v", err)
	}
	if res.Status != tracking.StatusFailed || statuses(res) != "ran,ran,ran,ran,failed,not run,not run,not run" {
		t.Fatalf("failed run: %s %s", res.Status, statuses(res))
	}
	if res.Deploy.Decision != tracking.DeploySkipped {
		t.Errorf("deploy decision %+v", res.Deploy)
	}

	// Resume: the four done stages are fresh in the run directory.
	delete(ty.fail, Train)
	r := toyOpts(t, ty, dir)
	r.Resume = "r1"
	res, err = Run(ctx, env, r)
	if err != nil {
		t.Fatal(err)
	}
	if ty.counts() != "11112111" || res.Status != tracking.StatusFinished || !res.Resumed {
		t.Fatalf("resume: runs %s, status %s", ty.counts(), res.Status)
	}
	if s := res.Stages[0]; s.Status != "skipped" || !strings.Contains(s.Reason, "run directory are up to date") {
		t.Errorf("resumed collect: %+v", s)
	}
	// A finished run has nothing to resume.
	if _, err := Run(ctx, env, r); !errors.Is(err, exitcode.ErrUsage) {
		t.Errorf("resume of a finished run: %v", err)
	}
	// A new run with an existing id is refused.
	if _, err := Run(ctx, env, o); !errors.Is(err, exitcode.ErrUsage) || !strings.Contains(err.Error(), "--resume r1") {
		t.Errorf("rerun of an existing id: %v", err)
	}
}

func TestToyCancel(t *testing.T) {
	dir := t.TempDir()
	ty := newToy()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ty.cancel[Features] = cancel
	o := toyOpts(t, ty, dir)
	o.Config.RunID = "k"
	// A leftover temporary file of an interrupted atomic write.
	os.MkdirAll(filepath.Join(dir, "runs", "k"), 0o755)
	res, err := Run(ctx, runenv.Test(), o)
	if !errors.Is(err, context.Canceled) || exitcode.Code(err) != exitcode.Interrupted {
		t.Fatalf("cancelled run: %v", err)
	}
	if res.Status != tracking.StatusKilled || res.Stages[3].Status != "killed" {
		t.Fatalf("cancelled run status %s, features %s", res.Status, res.Stages[3].Status)
	}
	rec, err := tracking.Load(filepath.Join(dir, "runs", "k"))
	if err != nil || rec.Status != tracking.StatusKilled {
		t.Fatalf("run.json: %v, %v", rec, err)
	}
	// Resume continues at features.
	delete(ty.cancel, Features)
	r := toyOpts(t, ty, dir)
	r.Resume = "k"
	if _, err := Run(context.Background(), runenv.Test(), r); err != nil {
		t.Fatal(err)
	}
	if ty.counts() != "11121111" {
		t.Errorf("resume after cancel: runs %s", ty.counts())
	}
}

func TestToyLock(t *testing.T) {
	dir := t.TempDir()
	ty := newToy()
	o := toyOpts(t, ty, dir)
	o.Config.RunID = "locked"
	// Run a stage that tries to start the same run while the first holds it.
	var inner error
	ty.fail[Collect] = nil
	stages := ty.stages
	o.stages = func(c config.Config, d Dirs) ([]*Stage, error) {
		ss, err := stages(c, d)
		if err != nil {
			return nil, err
		}
		run := ss[1].Run
		ss[1].Run = func(ctx context.Context, env *runenv.Env) (any, error) {
			o2 := toyOpts(t, newToy(), dir)
			o2.Resume = "locked"
			_, inner = Run(ctx, runenv.Test(), o2)
			return run(ctx, env)
		}
		return ss, nil
	}
	if _, err := Run(context.Background(), runenv.Test(), o); err != nil {
		t.Fatal(err)
	}
	if inner == nil || !strings.Contains(inner.Error(), "another process is writing run locked") {
		t.Errorf("second writer of a run directory: %v", inner)
	}
}
