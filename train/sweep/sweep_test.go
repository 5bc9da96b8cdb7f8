package sweep

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/train"
	"github.com/modax/modax-ml/train/traintest"
)

// tinySpace: 6 random trials, ASHA at epochs 1 and 2 of 4 (rf 2).
const tinySpace = `method: random
trials: 6
seed: 11
prune: {method: asha, min_epochs: 1, reduction_factor: 2, max_epochs: 4}
params:
  train.hidden_size: {values: [8, 16]}
  train.lr: {min: 0.002, max: 0.02, log: true}
  train.dropout: {min: 0.0, max: 0.3}
`

// setup writes synthetic windows, whose first test row holds a NaN (a
// sweep that read the test split would refuse the file), and the space.
func setup(t *testing.T, space string) (dir string, base train.Options) {
	t.Helper()
	dir = t.TempDir()
	spec := traintest.Default()
	spec.NaNRow = spec.Train + spec.Val + 1
	win := filepath.Join(dir, "windows.parquet")
	if err := traintest.WriteWindows(win, spec); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "space.yaml"), []byte(space), 0o644); err != nil {
		t.Fatal(err)
	}
	base = train.DefaultOptions()
	base.Windows, base.Out = win, filepath.Join(dir, "model.safetensors")
	base.BatchSize, base.FC = 32, 8
	return dir, base
}

// table is a sweep's results without the timings.
func table(r *Result) []TrialResult {
	out := make([]TrialResult, len(r.Trials))
	for i, t := range r.Trials {
		t.Seconds = 0
		out[i] = t
	}
	return out
}

func sameTable(t *testing.T, what string, a, b *Result) {
	t.Helper()
	ja, _ := yaml.Marshal(table(a))
	jb, _ := yaml.Marshal(table(b))
	if !bytes.Equal(ja, jb) {
		t.Errorf("%s: the tables differ:\n%s\nvs\n%s", what, ja, jb)
	}
}

func TestSweep(t *testing.T) {
	dir, base := setup(t, tinySpace)
	env := runenv.Test()
	run := func(sub string, workers int) *Result {
		t.Helper()
		r, err := Run(context.Background(), env, Options{Space: filepath.Join(dir, "space.yaml"), Dir: filepath.Join(dir, sub), Workers: workers, Base: base})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := run("a", 1)
	if len(r.Trials) != 6 || r.Completed+r.Pruned != 6 || r.Pruned == 0 || r.Completed == 0 {
		t.Fatalf("%d trials, %d completed, %d pruned, %d failed: want 6, some of each", len(r.Trials), r.Completed, r.Pruned, r.Failed)
	}
	if r.TestSplitRead || r.TrainWindows != 256 || r.ValWindows != 64 {
		t.Errorf("windows %d/%d, test split read %v", r.TrainWindows, r.ValWindows, r.TestSplitRead)
	}
	for i, tr := range r.Trials {
		if i > 0 && *tr.BestValRMSE < *r.Trials[i-1].BestValRMSE {
			t.Errorf("table not sorted by val RMSE at row %d", i)
		}
		switch tr.Status {
		case StatusPruned:
			if tr.PrunedAt != 1 && tr.PrunedAt != 2 || tr.Epochs != tr.PrunedAt {
				t.Errorf("trial %d pruned at epoch %d after %d epochs, want at a rung", tr.Trial, tr.PrunedAt, tr.Epochs)
			}
		case StatusCompleted:
			if tr.Epochs != 4 && !tr.StoppedEarly {
				t.Errorf("trial %d completed after %d epochs, want 4", tr.Trial, tr.Epochs)
			}
		}
	}
	if r.Best == nil || r.Best.Trial != r.Trials[0].Trial {
		t.Fatalf("best %+v, want the first row", r.Best)
	}

	// sweep.parquet: one row per trial, params as columns
	params, rows, meta, err := dataset.ReadSweep(context.Background(), r.Parquet)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 6 || len(params) != 3 || params[0].Name != "train.dropout" || params[1] != (dataset.SweepParam{Name: "train.hidden_size", Type: "int64"}) {
		t.Fatalf("sweep.parquet: %d rows, params %v", len(rows), params)
	}
	if meta[dataset.MetaSweepID] != r.ID {
		t.Errorf("sweep.parquet sweep id %q, want %q", meta[dataset.MetaSweepID], r.ID)
	}
	pruned := 0
	for i, row := range rows {
		tr := r.Trials[i]
		if row.Trial != tr.Trial || row.Status != tr.Status || row.Epochs != tr.Epochs || row.BestValRMSE != *tr.BestValRMSE || row.PrunedAt != tr.PrunedAt {
			t.Errorf("row %d %+v, trial %+v", i, row, tr)
		}
		if row.Params[1].(int64) != int64(tr.Params["train.hidden_size"].(float64)) {
			t.Errorf("row %d hidden_size %v, trial %v", i, row.Params[1], tr.Params)
		}
		if row.Status == StatusPruned {
			pruned++
		}
	}
	if pruned == 0 {
		t.Error("no pruned row in sweep.parquet")
	}

	// best.yaml is a config whose train section retrains the best trial:
	// train.Run on it gives the sweep's val RMSE exactly.
	b, err := os.ReadFile(r.BestConfig)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("# Chosen on validation only: the sweep never read the test split.")) || !bytes.Contains(b, []byte("sweep "+r.ID)) {
		t.Errorf("best.yaml lacks its comment:\n%s", b)
	}
	var doc struct {
		Train train.Options `yaml:"train"`
	}
	doc.Train = train.DefaultOptions()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	o := doc.Train
	o.Windows, o.Out = base.Windows, filepath.Join(dir, "best.safetensors")
	res, err := train.Run(context.Background(), env, o)
	if err != nil {
		t.Fatal(err)
	}
	if *res.BestValRMSE != *r.Best.BestValRMSE || res.BestEpoch != r.Best.BestEpoch {
		t.Errorf("train --config best.yaml: val RMSE %v at epoch %d, the sweep's best %v at %d", *res.BestValRMSE, res.BestEpoch, *r.Best.BestValRMSE, r.Best.BestEpoch)
	}

	// the same sweep with 3 trials side by side: the same table
	sameTable(t, "3 workers vs 1", r, run("b", 3))

	// a rerun finds every trial in the journal and trains nothing
	again := run("a", 2)
	if again.Resumed != 6 {
		t.Errorf("rerun resumed %d trials, want 6", again.Resumed)
	}
	sameTable(t, "rerun", r, again)
}

func TestSweepResume(t *testing.T) {
	dir, base := setup(t, tinySpace)
	env := runenv.Test()
	opts := Options{Space: filepath.Join(dir, "space.yaml"), Dir: filepath.Join(dir, "s"), Workers: 2, Base: base}
	full, err := Run(context.Background(), env, Options{Space: opts.Space, Dir: filepath.Join(dir, "full"), Workers: 1, Base: base})
	if err != nil {
		t.Fatal(err)
	}
	// interrupted after the second trial is journaled (as Ctrl-C would)
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	o := opts
	o.OnTrial = func(TrialResult) {
		n++
		if n == 2 {
			cancel()
		}
	}
	_, err = Run(ctx, env, o)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "run the same command again to resume") {
		t.Fatalf("interrupted sweep: %v", err)
	}
	if _, err := os.Stat(filepath.Join(opts.Dir, ParquetName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an interrupted sweep wrote %s (%v)", ParquetName, err)
	}
	// a torn last line (a crash mid-write) is dropped
	jf, err := os.OpenFile(filepath.Join(opts.Dir, journalName), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jf.WriteString(`{"type":"trial","trial":5,"par`); err != nil {
		t.Fatal(err)
	}
	jf.Close()
	r, err := Run(context.Background(), env, opts)
	if err != nil {
		t.Fatal(err)
	}
	if r.Resumed < 2 || r.Resumed >= 6 {
		t.Errorf("resumed %d trials from the journal, want 2 to 5", r.Resumed)
	}
	sameTable(t, "resumed vs uninterrupted", full, r)

	// a changed space refuses to resume, saying why; --force-new starts over
	changed := strings.Replace(tinySpace, "seed: 11", "seed: 12", 1)
	if err := os.WriteFile(opts.Space, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), env, opts)
	if !errors.Is(err, exitcode.ErrUsage) || !strings.Contains(err.Error(), "the space is not the same (seed 11 → 12)") || !strings.Contains(err.Error(), "--force-new") {
		t.Fatalf("changed space: %v", err)
	}
	b2 := base
	b2.LR = 0.5
	_, err = Run(context.Background(), env, Options{Space: opts.Space, Dir: opts.Dir, Base: b2})
	if !errors.Is(err, exitcode.ErrUsage) || !strings.Contains(err.Error(), "train.lr 0.001 → 0.5") {
		t.Fatalf("changed base config: %v", err)
	}
	opts.ForceNew = true
	r2, err := Run(context.Background(), env, opts)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Resumed != 0 || r2.ID == r.ID {
		t.Errorf("--force-new: resumed %d, id %s (was %s)", r2.Resumed, r2.ID, r.ID)
	}
}

func TestSweepRefuses(t *testing.T) {
	dir, base := setup(t, tinySpace)
	env := runenv.Test()
	space := filepath.Join(dir, "space.yaml")
	for _, tc := range []struct {
		name string
		edit func(o *Options)
		want string
	}{
		{"test split", func(o *Options) { o.Base.ValSplit = dataset.SplitTest }, `train.val_split is "test": a sweep chooses on the "val" split only`},
		{"ridge", func(o *Options) { o.Base.Model = train.ModelRidge }, "a sweep trains the lstm"},
		{"missing space", func(o *Options) { o.Space = filepath.Join(dir, "nope.yaml") }, "nope.yaml"},
		{"bad combination", func(o *Options) { o.Base.BatchSize = 0 }, "--batch-size 0 < 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Space: space, Dir: filepath.Join(dir, "s"), Base: base}
			tc.edit(&o)
			_, err := Run(context.Background(), env, o)
			if !errors.Is(err, exitcode.ErrUsage) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want a usage error saying %q", err, tc.want)
			}
		})
	}
}

// TestSweepFailedTrial: a trial whose loss blows up is recorded as failed
// with its error, and the sweep goes on.
func TestSweepFailedTrial(t *testing.T) {
	dir, base := setup(t, "params:\n  train.lr: {values: [0.01, 1.0e+30]}\n")
	base.Epochs = 2
	r, err := Run(context.Background(), runenv.Test(), Options{Space: filepath.Join(dir, "space.yaml"), Dir: filepath.Join(dir, "s"), Base: base})
	if err != nil {
		t.Fatal(err)
	}
	if r.Completed != 1 || r.Failed != 1 || r.Best.Trial != 0 {
		t.Fatalf("%d completed, %d failed, best %d: want trial 0 completed and 1 failed", r.Completed, r.Failed, r.Best.Trial)
	}
	last := r.Trials[1]
	if last.Status != StatusFailed || last.Trial != 1 || last.BestValRMSE != nil || !strings.Contains(last.Error, "loss is") {
		t.Errorf("failed trial %+v", last)
	}
}
