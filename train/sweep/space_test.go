package sweep

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/train"
)

func TestParseSpace(t *testing.T) {
	base := train.DefaultOptions()
	s, err := ParseSpace("s.yaml", []byte(`
method: random
trials: 5
seed: 3
prune: {method: asha, min_epochs: 2, reduction_factor: 3, max_epochs: 20}
params:
  train.lr: {min: 1.0e-4, max: 1.0e-2, log: true}
  hidden_size: {values: [16, 32, 64]}
  train.num_layers: {min: 1, max: 3}
  train.dropout: {min: 0, max: 0.5}
  train.loss: {values: [mse, huber]}
`), base)
	if err != nil {
		t.Fatal(err)
	}
	if s.Method != MethodRandom || s.Trials != 5 || s.Seed != 3 || s.Metric != MetricValRMSE {
		t.Errorf("space %+v", s)
	}
	if got := s.Prune.Rungs(); !reflect.DeepEqual(got, []int{2, 6, 18}) {
		t.Errorf("rungs %v, want [2 6 18]", got)
	}
	var keys []string
	for _, p := range s.Params {
		keys = append(keys, p.Key)
	}
	if want := []string{"train.dropout", "train.hidden_size", "train.loss", "train.lr", "train.num_layers"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
	types := map[string]string{}
	for _, p := range s.Params {
		types[p.Key] = p.Type()
	}
	if want := map[string]string{"train.dropout": "float64", "train.hidden_size": "int64", "train.loss": "string", "train.lr": "float64", "train.num_layers": "int64"}; !reflect.DeepEqual(types, want) {
		t.Errorf("types %v, want %v", types, want)
	}

	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown top key", "metrc: val_rmse\nparams: {train.lr: {values: [0.1]}}", `unknown key "metrc" (did you mean "metric"?)`},
		{"unknown param", "params: {train.hiden_size: {values: [8]}}", `unknown key "train.hiden_size" (did you mean "train.hidden_size"?)`},
		{"test metric", "metric: test_rmse\nparams: {train.lr: {values: [0.1]}}", `metric "test_rmse": refused: a sweep chooses on validation only`},
		{"other metric", "metric: val_rsme\nparams: {train.lr: {values: [0.1]}}", `(did you mean "val_rmse"?)`},
		{"min above max", "method: random\ntrials: 2\nparams: {train.lr: {min: 0.1, max: 0.01}}", "train.lr: min 0.1 > max 0.01"},
		{"log needs positive", "method: random\ntrials: 2\nparams: {train.weight_decay: {min: 0, max: 0.1, log: true}}", "train.weight_decay: a log range needs min > 0"},
		{"grid range", "params: {train.lr: {min: 0.001, max: 0.01}}", "train.lr: a grid needs values"},
		{"random trials", "method: random\nparams: {train.lr: {values: [0.1]}}", "method random needs trials ≥ 1"},
		{"grid trials", "trials: 3\nparams: {train.lr: {values: [0.1]}}", "trials: applies to method random"},
		{"method", "method: bayes\nparams: {train.lr: {values: [0.1]}}", `method "bayes": want grid or random`},
		{"not swept", "params: {train.val_split: {values: [val, test]}}", "train.val_split cannot be swept"},
		{"workers", "params: {train.workers: {values: [1, 2]}}", "train.workers cannot be swept"},
		{"epochs with prune", "prune: {max_epochs: 9}\nparams: {train.epochs: {values: [3]}}", "train.epochs cannot be swept with pruning"},
		{"prune rf", "prune: {reduction_factor: 1}\nparams: {train.lr: {values: [0.1]}}", "prune.reduction_factor 1 < 2"},
		{"prune key", "prune: {min_epoch: 1}\nparams: {train.lr: {values: [0.1]}}", `prune: unknown key "min_epoch" (did you mean "min_epochs"?)`},
		{"prune max", "prune: {min_epochs: 5, max_epochs: 5}\nparams: {train.lr: {values: [0.1]}}", "prune.max_epochs 5 must be above"},
		{"bad value", "params: {train.dropout: {values: [0.1, 1.5]}}", "train.dropout: value 1.5"},
		{"fraction for an int", "method: random\ntrials: 2\nparams: {train.hidden_size: {min: 8.5, max: 16}}", "train.hidden_size: value 8.5"},
		{"spec key", "params: {train.lr: {values: [0.1], step: 2}}", `unknown key "step"`},
		{"values and range", "params: {train.lr: {values: [0.1], min: 0}}", "values cannot be combined"},
		{"no params", "method: grid", "params: missing"},
		{"not yaml", "params: [", "s.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSpace("s.yaml", []byte(tc.yaml), base)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !errors.Is(err, exitcode.ErrUsage) {
				t.Errorf("%v: not a usage error", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "s.yaml") {
				t.Errorf("error %q, want it to name s.yaml and say %q", err, tc.want)
			}
		})
	}
}

func TestGridEnumeration(t *testing.T) {
	s, err := ParseSpace("g.yaml", []byte("params:\n  train.hidden_size: {values: [8, 16]}\n  train.lr: {values: [0.1, 0.01, 0.001]}\n"), train.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	got := s.Enumerate()
	want := [][]any{{int64(8), 0.1}, {int64(8), 0.01}, {int64(8), 0.001}, {int64(16), 0.1}, {int64(16), 0.01}, {int64(16), 0.001}}
	if len(got) != len(want) || s.Trials != 6 {
		t.Fatalf("%d trials (space says %d), want 6", len(got), s.Trials)
	}
	for i, tr := range got {
		if tr.ID != i || !reflect.DeepEqual(tr.Values, want[i]) {
			t.Errorf("trial %d: %v, want %v", tr.ID, tr.Values, want[i])
		}
	}
	o, err := Apply(train.DefaultOptions(), s, got[4].Values)
	if err != nil {
		t.Fatal(err)
	}
	if o.Hidden != 16 || o.LR != 0.01 || o.Epochs != train.DefaultOptions().Epochs {
		t.Errorf("applied trial 4: hidden %d lr %g epochs %d", o.Hidden, o.LR, o.Epochs)
	}
}

func TestRandomReproducible(t *testing.T) {
	src := "method: random\ntrials: 200\nseed: %d\nparams:\n  train.lr: {min: 1.0e-4, max: 1.0e-1, log: true}\n  train.hidden_size: {min: 4, max: 9}\n  train.fc_size: {min: 4, max: 64, log: true}\n  train.dropout: {min: 0.1, max: 0.2}\n  train.loss: {values: [mse, huber]}\n"
	parse := func(seed int) []Trial {
		t.Helper()
		s, err := ParseSpace("r.yaml", []byte(strings.Replace(src, "%d", string(rune('0'+seed)), 1)), train.DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		return s.Enumerate()
	}
	a, b, c := parse(1), parse(1), parse(2)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed drew different trials")
	}
	if reflect.DeepEqual(a, c) {
		t.Fatal("seeds 1 and 2 drew the same trials")
	}
	// keys in order: dropout, fc_size, hidden_size, loss, lr
	hidden := map[int64]bool{}
	var lowLR int
	for _, tr := range a {
		d, fc, h, lr := tr.Values[0].(float64), tr.Values[1].(int64), tr.Values[2].(int64), tr.Values[4].(float64)
		if d < 0.1 || d > 0.2 || fc < 4 || fc > 64 || h < 4 || h > 9 || lr < 1e-4 || lr > 1e-1 {
			t.Fatalf("trial %d out of its ranges: %v", tr.ID, tr.Values)
		}
		hidden[h] = true
		if lr < 1e-3 {
			lowLR++
		}
	}
	if len(hidden) != 6 {
		t.Errorf("the int range 4..9 drew %v, want all six values", hidden)
	}
	// log-uniform over 3 decades: about a third below 1e-3 (uniform: 1 %)
	if lowLR < 40 || lowLR > 95 {
		t.Errorf("%d of 200 learning rates below 1e-3, want about 67 (log-uniform)", lowLR)
	}
}

func TestKeepAtRung(t *testing.T) {
	for _, tc := range []struct {
		v      float64
		others []float64
		rf     int
		want   bool
	}{
		{5, nil, 2, true},                         // the first trial always continues
		{5, []float64{4}, 2, false},               // 2 at the rung, top 1: the other is better
		{3, []float64{4}, 2, true},                // it is the top 1
		{4, []float64{4}, 2, false},               // a tie goes to the lower id
		{3, []float64{1, 2}, 3, false},            // 3 at the rung, top 1
		{2, []float64{1, 9, 8}, 2, true},          // 4 at the rung, top 2: ranks second
		{8, []float64{1, 9, 2}, 2, false},         // ranks third
		{math.NaN(), []float64{1}, 2, false},      // NaN ranks last
		{1, []float64{math.NaN(), 5, 6}, 4, true}, // n=4, rf 4: top 1
	} {
		if got := keepAtRung(tc.v, tc.others, tc.rf); got != tc.want {
			t.Errorf("keepAtRung(%v, %v, rf %d) = %v, want %v", tc.v, tc.others, tc.rf, got, tc.want)
		}
	}
}

// TestASHADecisions runs hand-made curves through the rung decisions as a
// sweep does (trial by trial, in order) and checks who is stopped where.
func TestASHADecisions(t *testing.T) {
	a := newASHA(&Prune{Method: "asha", MinEpochs: 1, ReductionFactor: 2, MaxEpochs: 8}) // rungs 1, 2, 4
	curves := [][]float64{
		{10, 9, 8, 7, 6, 5, 4, 3}, // trial 0: first everywhere: never stopped
		{12, 11, 10, 9, 8},        // trial 1: rung 1 vs {10}: top 1 of 2 is trial 0 → stopped at 1
		{9, 8.5, 8, 7.5, 7},       // trial 2: rung 1 vs {10,12}: 9 best → on; rung 2 vs {9}: 8.5 best of 2 → on; rung 4 vs {7}: 7.5 → stopped at 4
		{11, 10, 9.5},             // trial 3: rung 1 vs {10,12,9}: rank 3 of 4, top 2 → stopped at 1
		{9.5, 8, 7, 6},            // trial 4: rung 1: rank 2 of 5 (9, 9.5, ...), top 2 → on; rung 2 vs {9, 8.5}: 8 best → on; rung 4 vs {7, 7.5}: 6 best → on
	}
	want := []int{0, 1, 4, 1, 0} // epoch stopped at (0: ran to the end)
	ctx := context.Background()
	for id, c := range curves {
		stopped := 0
		for e := 1; e <= len(c) && stopped == 0; e++ {
			keep, err := a.report(ctx, id, c[:e])
			if err != nil {
				t.Fatal(err)
			}
			if !keep {
				stopped = e
			}
		}
		a.finish(id)
		if stopped != want[id] {
			t.Errorf("trial %d stopped at epoch %d, want %d", id, stopped, want[id])
		}
	}
	// a replayed journal gives the same state: trial 5 decides the same
	b := newASHA(&Prune{Method: "asha", MinEpochs: 1, ReductionFactor: 2, MaxEpochs: 8})
	for id, c := range curves {
		if want[id] > 0 {
			c = c[:want[id]]
		}
		b.replay(id, c)
	}
	for _, st := range []*ashaState{a, b} {
		keep1, _ := st.report(ctx, 5, []float64{9.2})
		keep2, _ := st.report(ctx, 5, []float64{9.2, 8.9})
		if !keep1 || keep2 {
			t.Errorf("trial 5: kept at rung 1 %v (want true: second of 6, top 3), at rung 2 %v (want false)", keep1, keep2)
		}
	}
}

// TestASHAWaitsForLowerTrials: trial 1 reaching a rung before trial 0 waits
// for it, so the decision does not depend on which ran faster.
func TestASHAWaitsForLowerTrials(t *testing.T) {
	a := newASHA(&Prune{Method: "asha", MinEpochs: 1, ReductionFactor: 2, MaxEpochs: 4})
	got := make(chan bool)
	go func() {
		keep, _ := a.report(context.Background(), 1, []float64{5})
		got <- keep
	}()
	if keep, _ := a.report(context.Background(), 0, []float64{3}); !keep {
		t.Fatal("trial 0 stopped")
	}
	if keep := <-got; keep {
		t.Error("trial 1 (5) kept against trial 0 (3) at rung 1")
	}
	// cancellation ends a wait
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := a.report(ctx, 3, []float64{1}) // waits for trial 2, which never reports
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait returned %v", err)
	}
}
