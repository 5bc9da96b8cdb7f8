package examples

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/modax/modax-ml/internal/config"
	"github.com/modax/modax-ml/internal/testutil"
	"github.com/modax/modax-ml/internal/tracking/mlflowtest"
	"github.com/modax/modax-ml/train"
	"github.com/modax/modax-ml/train/sweep"
)

// TestConfigs decodes every example config strictly (an unknown key fails,
// as `modax-ml --config` refuses it) and checks that none sets a key copied
// from another stage's (validate's window is features').
func TestConfigs(t *testing.T) {
	files, _ := filepath.Glob("*.yaml")
	if len(files) < 2 {
		t.Fatalf("example configs: %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(f, "sweep") {
			// a `train --sweep` space, not a config
			if _, err := sweep.ParseSpace(f, b, train.DefaultOptions()); err != nil {
				t.Error(err)
			}
			continue
		}
		c := config.Default()
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range config.Copied {
			stage, key, _ := strings.Cut(k.Key, ".")
			if sec, ok := m[stage].(map[string]any); ok && sec[key] != nil {
				t.Errorf("%s sets %s, which is copied from %s (the value is ignored)", f, k.Key, k.From)
			}
		}
	}
	if !bytes.Equal(DefaultYAML, must(os.ReadFile("default.yaml"))) {
		t.Error("the embedded default differs from default.yaml")
	}
}

// workflow is the part of a GitHub Actions workflow the tests read.
type workflow struct {
	Jobs map[string]struct {
		Env   map[string]string `yaml:"env"`
		Steps []struct {
			Name string            `yaml:"name"`
			Uses string            `yaml:"uses"`
			Run  string            `yaml:"run"`
			With map[string]string `yaml:"with"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

// TestWorkflow parses the GitHub Actions workflow, checks that it chains
// every stage in order, and runs it: its job's env and every run: step in
// order, as a runner does (bash -eo pipefail in the checkout, an
// unprivileged user when the test is root, so /srv is not writable as on a
// runner), against a test database holding a fleet of tenant acme and an
// MLflow test server (internal/tracking/mlflowtest) as MLFLOW_TRACKING_URI.
// Skipped: the actions (checkout, setup-go, upload-artifact: their paths are
// checked to exist instead) and the steps that set up the machine — the
// OpenBLAS package and `make build`, whose bin/modax-ml the test builds
// itself from this tree (and checks `make -n build` writes that path). The
// model is made tiny through MODAX_TRAIN_* and the gate wide (the test runs
// the chain, not the model's quality).
func TestWorkflow(t *testing.T) {
	var wf workflow
	if err := yaml.Unmarshal(must(os.ReadFile("github/nightly-retrain.yml")), &wf); err != nil {
		t.Fatal(err)
	}
	job := wf.Jobs["retrain"]
	var stages []string
	for _, s := range job.Steps {
		if strings.Contains(s.Run, "$ML ") {
			stages = append(stages, s.Name)
		}
	}
	want := "collect validate label features train evaluate export deploy"
	if got := strings.Join(stages, " "); got != want {
		t.Errorf("workflow stages %q, want %q", got, want)
	}

	t.Run("steps", func(t *testing.T) {
		dsn := testutil.NewDatabase(t)
		ml := modaxML(t)
		root := testutil.RepoRoot(t)
		if out, err := exec.Command("make", "-C", root, "-n", "build").CombinedOutput(); err != nil || !strings.Contains(string(out), "-o bin/modax-ml ./cmd/modax-ml") {
			t.Fatalf("make -n build does not build bin/modax-ml: %v\n%s", err, out)
		}
		srv := mlflowtest.New(mlflowtest.WithBearerToken("tok"))
		defer srv.Close()

		// The checkout: the examples and bin/modax-ml; HOME beside it.
		tmp := t.TempDir()
		checkout, home := filepath.Join(tmp, "checkout"), filepath.Join(tmp, "home")
		for _, d := range []string{filepath.Join(checkout, "bin"), filepath.Join(checkout, "examples"), home} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		copyFile(t, ml, filepath.Join(checkout, "bin", "modax-ml"), 0o755)
		yamls, _ := filepath.Glob("*.yaml")
		for _, f := range yamls {
			copyFile(t, f, filepath.Join(checkout, "examples", f), 0o644)
		}

		// The database the job collects from: a fleet of tenant acme.
		seed := filepath.Join(tmp, "seed")
		for _, args := range [][]string{
			{"db", "migrate", "--config", "examples/postgres.yaml"},
			{"collect", "--tenant", "acme", "--devices", "6", "--days", "20", "--interval", "30m", "-o", seed + "/readings.parquet", "--failures-out", seed + "/failures.parquet"},
			{"db", "load", "--config", "examples/postgres.yaml", "--readings", seed + "/readings.parquet", "--failures", seed + "/failures.parquet"},
		} {
			cmd := exec.Command(ml, args...)
			cmd.Dir = checkout
			cmd.Env = exampleEnv(home, "MODAX_DB_DSN="+dsn)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("modax-ml %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}

		// The job's env, its secrets and variables the test's.
		values := map[string]string{
			"${{ secrets.MODAX_DB_DSN }}":          dsn,
			"${{ vars.MLFLOW_TRACKING_URI }}":      srv.URL,
			"${{ secrets.MLFLOW_TRACKING_TOKEN }}": "tok",
		}
		env := exampleEnv(home, "CI=true", "GITHUB_ACTIONS=true", "GITHUB_WORKSPACE="+checkout,
			"MODAX_TRAIN_EPOCHS=2", "MODAX_TRAIN_HIDDEN_SIZE=16", "MODAX_TRAIN_FC_SIZE=8", "MODAX_DEPLOY_MAX_MAE=1000",
			"MODAX_TRACKING_MAX_RETRIES=0")
		for k, v := range job.Env {
			if strings.Contains(v, "${{") {
				var ok bool
				if v, ok = values[v]; !ok {
					t.Fatalf("job env %s: no test value for %q", k, job.Env[k])
				}
			}
			env = append(env, k+"="+v)
		}
		var asUser []string
		if os.Geteuid() == 0 {
			// A runner's user cannot write /srv: neither may the steps.
			setpriv, err := exec.LookPath("setpriv")
			testutil.Require(t, err == nil, "setpriv (util-linux), to run the steps unprivileged")
			asUser = []string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"}
			for _, d := range []string{filepath.Dir(tmp), tmp} {
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, d := range []string{checkout, home} {
				if err := filepath.Walk(d, func(p string, _ os.FileInfo, err error) error {
					if err != nil {
						return err
					}
					return os.Lchown(p, 65534, 65534)
				}); err != nil {
					t.Fatal(err)
				}
			}
		}

		var artifacts []string
		var ran, skipped []string
		for i, s := range job.Steps {
			name := s.Name
			if name == "" {
				name = s.Uses
			}
			switch {
			case strings.HasPrefix(s.Uses, "actions/upload-artifact@"):
				artifacts = strings.Fields(s.With["path"])
				skipped = append(skipped, name)
				continue
			case s.Uses != "" || name == "install OpenBLAS" || name == "build":
				skipped = append(skipped, name)
				continue
			}
			if strings.Contains(s.Run, "${{") {
				t.Fatalf("step %q: an expression the test cannot evaluate: %s", name, s.Run)
			}
			argv := append(asUser[:len(asUser):len(asUser)], "bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", s.Run)
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Dir, cmd.Env = checkout, env
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("step %d %q: %v\n%s", i+1, name, err, tail(string(out), 40))
			}
			if strings.Contains(string(out), "::warning::") {
				t.Errorf("step %q warned: %s", name, tail(string(out), 5))
			}
			ran = append(ran, name)
		}
		if got, want := strings.Join(skipped, ", "), "actions/checkout@v4, actions/setup-go@v5, install OpenBLAS, build, actions/upload-artifact@v4"; got != want {
			t.Errorf("skipped steps %q, want only %q", got, want)
		}
		if got := strings.Join(ran, " "); got != want {
			t.Errorf("ran %q, want %q", got, want)
		}

		// What the artifact step uploads exists (so the model is where it
		// says, not in work/work/models), and nothing went to /srv.
		if len(artifacts) == 0 {
			t.Fatal("no upload-artifact paths")
		}
		for _, a := range artifacts {
			if _, err := os.Stat(filepath.Join(checkout, a)); err != nil {
				t.Errorf("artifact path %s: %v", a, err)
			}
		}
		if _, err := os.Stat(filepath.Join(checkout, "work", "work")); err == nil {
			t.Error("the steps wrote work/work/")
		}
		if _, err := os.Stat(filepath.Join(checkout, "work", "models", "rul_predictor.onnx")); err != nil {
			t.Errorf("deployed model: %v", err)
		}
		// With MLflow configured, deploy registered the served version.
		m := srv.Model("rul_predictor")
		if m == nil || len(m.Versions) != 1 || m.Aliases["champion"] != m.Versions[0].Version {
			t.Errorf("MLflow registry: %+v", m)
		}
		runs, _ := filepath.Glob(filepath.Join(checkout, "work", "runs", "deploy-*", "run.json"))
		if len(runs) != 1 {
			t.Errorf("deploy run records in work/runs: %v", runs)
		}
	})
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
