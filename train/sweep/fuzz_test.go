package sweep

import (
	"os"
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
