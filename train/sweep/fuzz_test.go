package sweep

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/modax/modax-ml/train"
)

// FuzzParseSpace feeds arbitrary YAML to the `train --sweep SPACE.yaml`
// parser: it must return a space or a usage error, never panic or hang; an
// accepted space must enumerate its trials and turn each into train options.
func FuzzParseSpace(f *testing.F) {
	if b, err := os.ReadFile("../../examples/sweep.yaml"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"method: random\ntrials: 5\nseed: 3\nprune: {method: asha, min_epochs: 2, reduction_factor: 3, max_epochs: 20}\nparams:\n  train.lr: {min: 1.0e-4, max: 1.0e-2, log: true}\n  hidden_size: {values: [16, 32, 64]}\n  train.num_layers: {min: 1, max: 3}\n  train.dropout: {min: 0, max: 0.5}\n  train.loss: {values: [mse, huber]}\n",
		"params: {train.lr: {values: [0.1, 0.01]}, train.batch_size: {values: [32, 64]}}",
		"method: random\ntrials: 3\nparams: {train.hidden_size: {min: 8, max: 64, log: true}, train.seed: {min: 0, max: 100}}",
		"prune: none\nparams: {train.lr: {values: [0.1]}}",
		"",
	} {
		f.Add([]byte(s))
	}
	base := train.DefaultOptions()
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSpace("fuzz.yaml", b, base)
		if err != nil {
			return
		}
		if s.Prune != nil {
			_ = s.Prune.Rungs()
		}
		_ = s.canonical()
		for i, tr := range s.Enumerate() {
			if i == 50 {
				break
			}
			if _, err := Apply(base, s, tr.Values); err != nil {
				t.Fatalf("trial %d %v of an accepted space: %v", i, tr.Values, err)
			}
		}
	})
}

// FuzzJournal feeds corrupted sweep journals (journal.jsonl, read when a
// sweep resumes) to the journal reader: a clear error or the trials it
// holds, which must survive the checks Run makes of them and the ASHA
// replay; the file is truncated to its good lines only, never grown.
func FuzzJournal(f *testing.F) {
	base := train.DefaultOptions()
	space, err := ParseSpace("s.yaml", []byte("method: random\ntrials: 4\nseed: 1\nprune: {method: asha, min_epochs: 1, reduction_factor: 2, max_epochs: 4}\nparams: {train.lr: {min: 0.001, max: 0.01}}"), base)
	if err != nil {
		f.Fatal(err)
	}
	h := header{Type: "sweep", ID: "sweep-1", Space: space.canonical(), Base: map[string]any{"epochs": 4.0}, Windows: "abc"}
	hl, err := json.Marshal(h)
	if err != nil {
		f.Fatal(err)
	}
	trials := space.Enumerate()
	var seed bytes.Buffer
	seed.Write(append(hl, '\n'))
	for _, tr := range trials[:3] {
		v := 10.0
		line, err := json.Marshal(record{Type: "trial", TrialResult: TrialResult{Trial: tr.ID, Params: paramMap(space, tr.Values), Status: "completed",
			Epochs: 4, BestValRMSE: &v, Curve: []float64{12, 11, 10.5, 10}}})
		if err != nil {
			f.Fatal(err)
		}
		seed.Write(append(line, '\n'))
	}
	f.Add(seed.Bytes())
	f.Add(append(append([]byte{}, seed.Bytes()...), `{"type":"trial","trial":3,"par`...))
	f.Add(append(hl, '\n'))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, journalName)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		j, done, err := openJournal(dir, h, false)
		if err != nil {
			return
		}
		j.close()
		if st, err := os.Stat(path); err != nil || st.Size() > int64(len(b)) {
			t.Fatalf("journal of %d bytes is now %v (%v)", len(b), st.Size(), err)
		}
		asha := newASHA(space.Prune)
		for id, tr := range done {
			if id < 0 || id >= len(trials) || !sameParams(paramMap(space, trials[id].Values), tr.Params) {
				continue // Run refuses the journal
			}
			asha.replay(id, tr.Curve)
			_ = tr.metric(space.Metric)
		}
	})
}
