// Package predict is the predict stage: it runs a trained model (a
// model.safetensors checkpoint through the native Go forward pass, batched
// and parallel, or an exported model.onnx through gonnx) over a windows file
// and writes predictions.parquet, with each prediction's interval
// (rul_lower, rul_upper at --interval-level) when the model is calibrated. A windows
// file whose features, feature order or window length differ from the
// model's is refused; one scaled with another scaler is re-scaled to the
// model's.
package predict

import (
	"context"
	"fmt"
	"strings"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/infer"
	"github.com/modax/modax-ml/internal/runenv"
)

// Options configure the predict stage (the `predict` config section).
type Options struct {
	Model   string `yaml:"model"`
	Windows string `yaml:"windows"`
	Out     string `yaml:"out"`
	// Split selects the windows: test, val, train (or a comma-separated
	// list), or all.
	Split string `yaml:"split"`
	// LastWindowOnly keeps one prediction per device life: its last window
	// (the C-MAPSS test protocol).
	LastWindowOnly bool `yaml:"last_window_only"`
	BatchSize      int  `yaml:"batch_size"`
	// Workers is the number of goroutines of the forward pass (0: one per
	// core).
	Workers int `yaml:"workers"`
	// IntervalLevel is the coverage level of the rul_lower/rul_upper
	// columns: one the model is calibrated at (a model without it predicts
	// without intervals, with one warning).
	IntervalLevel float64 `yaml:"interval_level"`
}

// DefaultOptions returns the DESIGN §3 file names, all splits, batch 256.
func DefaultOptions() Options {
	return Options{Model: "model.safetensors", Windows: "windows.parquet", Out: "predictions.parquet", Split: "all", BatchSize: 256,
		IntervalLevel: infer.DefaultIntervalLevel}
}

// Result is what `predict --output json` prints.
type Result struct {
	infer.Summary
}

// Splits returns the splits opts.Split selects (nil: all).
func (o Options) Splits() []string {
	if o.Split == "" || o.Split == "all" {
		return nil
	}
	var out []string
	for _, s := range strings.Split(o.Split, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (o Options) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("predict: %w: %s", exitcode.ErrUsage, fmt.Sprintf(format, a...))
	}
	switch {
	case o.Model == "":
		return bad("--model is empty")
	case o.Windows == "":
		return bad("--windows is empty")
	case o.Out == "":
		return bad("--out is empty")
	case o.BatchSize < 1 || o.BatchSize > runenv.MaxBatch:
		return bad("--batch-size %d (config predict.batch_size): want 1 to %d windows", o.BatchSize, runenv.MaxBatch)
	case o.Workers < 0 || o.Workers > runenv.MaxWorkers:
		return bad("--workers %d (config predict.workers): want 0 (one per core) to %d", o.Workers, runenv.MaxWorkers)
	case !(o.IntervalLevel > 0 && o.IntervalLevel < 1):
		return bad("--interval-level %g: want a coverage level in (0, 1), e.g. 0.9", o.IntervalLevel)
	}
	return nil
}

// Run predicts and writes the predictions file.
func Run(ctx context.Context, env *runenv.Env, opts Options) (*Result, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if err := atomicfile.CheckOutputs([]atomicfile.Path{atomicfile.P("--model", opts.Model), atomicfile.P("--windows", opts.Windows)},
		[]atomicfile.Path{atomicfile.P("--out", opts.Out)}); err != nil {
		return nil, err
	}
	workers := opts.Workers
	if workers == 0 {
		workers = env.Workers
	}
	m, err := infer.Load(opts.Model, workers)
	if err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	defer m.Close()
	s, err := infer.PredictFile(ctx, env, m, infer.Spec{Windows: opts.Windows, Out: opts.Out, Splits: opts.Splits(),
		LastWindowOnly: opts.LastWindowOnly, BatchSize: opts.BatchSize, IntervalLevel: opts.IntervalLevel, Stage: "predict"})
	if err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	return &Result{Summary: *s}, nil
}
