// Package export is the export stage: a checkpoint becomes model.onnx
// (DESIGN.md §3, graph layout in internal/onnxmodel), and every export is
// validated before the file appears: the written file is run in-process by
// gonnx on real windows of the test split, at batch 1 and a full batch, and
// compared with the native forward pass.
package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"time"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/location"
	"github.com/modax/modax-ml/internal/metricsfile"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/nn"
	"github.com/modax/modax-ml/internal/onnxmodel"
	"github.com/modax/modax-ml/internal/runenv"
)

// Options configure an export. They are the `export` section of the config.
type Options struct {
	// Model is the checkpoint to export.
	Model string `yaml:"model"`
	// Windows provides the validation windows (LSTM) and the data range
	// recorded in the metadata.
	Windows string `yaml:"windows"`
	// Stats provides the validation rows of a ridge model.
	Stats string `yaml:"stats"`
	// Metrics is embedded in the metadata when the file exists; it must
	// belong to the checkpoint (model.sha256). Empty: embed none.
	Metrics string `yaml:"metrics"`
	// Out is the ONNX file written.
	Out string `yaml:"out"`
	// Opset is the ONNX opset: 13 (default), 12 or 11.
	Opset int `yaml:"opset"`
	// DynamicSeq makes the sequence axis dynamic (the batch axis always is).
	DynamicSeq bool `yaml:"dynamic_seq"`
	// NoScaler exports the bare network, whose input is already scaled.
	NoScaler bool `yaml:"no_scaler"`
	// ValidateSplit is the split whose windows validate the export.
	ValidateSplit string `yaml:"validate_split"`
	// ValidateBatch is the size of the full validation batch.
	ValidateBatch int `yaml:"validate_batch"`
	// RTol and ATol are the tolerances of the comparison with the native
	// forward pass: |onnx − native| ≤ atol + rtol·|native|.
	RTol float64 `yaml:"rtol"`
	ATol float64 `yaml:"atol"`
}

// DefaultOptions returns the defaults (DESIGN.md §3 file names).
func DefaultOptions() Options {
	return Options{
		Model: "model.safetensors", Windows: "windows.parquet", Stats: "stats.parquet", Metrics: "metrics.json",
		Out: "model.onnx", Opset: onnxmodel.DefaultOpset, ValidateSplit: dataset.SplitTest, ValidateBatch: 256,
		RTol: 1e-3, ATol: 1e-4,
	}
}

// Check is one validation run: the ONNX model and the native forward pass on
// the same inputs.
type Check struct {
	Batch   int     `json:"batch"`
	Seq     int     `json:"seq,omitempty"`
	MaxAbs  float64 `json:"max_abs_diff"`
	Worst   float64 `json:"worst_ratio"` // |diff| / (atol + rtol·|native|) of the worst element
	Passed  bool    `json:"passed"`
	Seconds float64 `json:"seconds"`
}

// Validation summarises the validation of an export.
type Validation struct {
	Source string  `json:"source"` // the windows or stats file
	Split  string  `json:"split"`
	RTol   float64 `json:"rtol"`
	ATol   float64 `json:"atol"`
	Checks []Check `json:"checks"`
	// Native names the forward pass compared against.
	Native string `json:"native"`
}

// Result describes a finished export.
type Result struct {
	Out              string `json:"out"`
	Bytes            int64  `json:"bytes"`
	SHA256           string `json:"sha256"`
	Opset            int    `json:"opset"`
	IRVersion        int64  `json:"ir_version"`
	ModelType        string `json:"model_type"`
	ModelVersion     string `json:"model_version"`
	Checkpoint       string `json:"checkpoint"`
	CheckpointSHA256 string `json:"checkpoint_sha256"`
	// WeightsSHA256 is the weights digest (model.WeightsDigest) recorded in
	// the ONNX model's metadata_props, the same as the checkpoint's.
	WeightsSHA256  string                  `json:"weights_sha256"`
	Features       int                     `json:"features"`
	Window         int                     `json:"window"`
	DynamicSeq     bool                    `json:"dynamic_seq"`
	ScalerEmbedded bool                    `json:"scaler_embedded"`
	Metrics        string                  `json:"metrics,omitempty"` // the embedded metrics file
	DataRange      *dataset.WindowsSummary `json:"data_range,omitempty"`
	Validation     Validation              `json:"validation"`
	Seconds        float64                 `json:"seconds"`
}

// MismatchError is a failed validation: the export does not compute what the
// checkpoint computes.
type MismatchError struct {
	Check  Check
	Index  int
	Where  string // the window or row
	ONNX   float64
	Native float64
	Abs    float64
	Tol    float64
}

func (e *MismatchError) Error() string {
	seq := ""
	if e.Check.Seq > 0 {
		seq = fmt.Sprintf(", seq %d", e.Check.Seq)
	}
	return fmt.Sprintf("validation failed at batch %d%s: %s: onnx %.9g, native %.9g, |diff| %.3g > tolerance %.3g",
		e.Check.Batch, seq, e.Where, e.ONNX, e.Native, e.Abs, e.Tol)
}

// Run exports a checkpoint to ONNX and validates the file.
func Run(ctx context.Context, env *runenv.Env, opts Options) (*Result, error) {
	start := env.Now()
	if err := checkOptions(opts); err != nil {
		return nil, err
	}
	if err := atomicfile.CheckOutputs([]atomicfile.Path{atomicfile.P("--model", opts.Model), atomicfile.P("--windows", opts.Windows), atomicfile.P("--stats", opts.Stats), atomicfile.P("--metrics", opts.Metrics)},
		[]atomicfile.Path{atomicfile.P("--out", opts.Out)}); err != nil {
		return nil, err
	}
	ck, err := model.Load(opts.Model)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	ckSHA, err := dataset.FileSHA256(opts.Model)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	a := ck.Params.Arch
	embed := !opts.NoScaler && ck.Info.Scaler.Kind != "none"
	if !opts.NoScaler {
		// The stored JSON, to catch scaler fields this exporter does not know.
		_, meta, err := model.ReadSafetensors(opts.Model)
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		if err := onnxmodel.CheckScaler(ck.Info.Scaler, ck.Info.Features, meta[model.MetaScaler]); err != nil {
			return nil, fmt.Errorf("export %s: %w", opts.Model, err)
		}
	}
	res := &Result{Out: opts.Out, Opset: opts.Opset, IRVersion: onnxmodel.Opsets[opts.Opset], ModelType: a.Type,
		ModelVersion: ck.Info.ModelVersion, Checkpoint: opts.Model, CheckpointSHA256: ckSHA, Features: len(ck.Info.Features),
		Window: ck.Info.Window, DynamicSeq: opts.DynamicSeq && a.Type == model.TypeLSTM, ScalerEmbedded: embed}

	props := map[string]string{
		onnxmodel.MetaCreatedAt:   start.UTC().Format(time.RFC3339),
		onnxmodel.MetaToolVersion: env.ToolVersion,
		onnxmodel.MetaRunID:       env.RunID,
	}
	if err := embedMetrics(env, opts, ckSHA, props, res); err != nil {
		return nil, err
	}

	// Validation inputs, read before building so that a bad windows file
	// fails early.
	val, err := loadValidation(ctx, env, opts, ck)
	if err != nil {
		return nil, err
	}
	if a.Type == model.TypeRidge && fileExists(opts.Windows) {
		// A ridge model validates on the stats and describes its data with
		// the windows: they must be one features run's.
		if err := dataset.CheckSameSetFiles(opts.Stats, dataset.KindStats, opts.Windows, dataset.KindWindows); err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
	}
	if fileExists(opts.Windows) {
		sum, err := dataset.SummarizeWindows(ctx, opts.Windows)
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		res.DataRange = sum
		b, err := json.Marshal(sum)
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		props[onnxmodel.MetaDataRange] = string(b)
	}

	mp, err := onnxmodel.Build(ck, onnxmodel.BuildOptions{Opset: opts.Opset, DynamicSeq: opts.DynamicSeq,
		NoScaler: opts.NoScaler, Props: props, CheckpointSHA256: ckSHA})
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", opts.Model, err)
	}
	data, err := onnxmodel.Marshal(mp)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	res.WeightsSHA256 = onnxmodel.Props(mp)[onnxmodel.MetaWeightsSHA256]

	// Write under a temporary name, run what was written, then rename; a
	// failed validation removes the temporary file and leaves any previous
	// output untouched.
	f, err := atomicfile.Create(opts.Out)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return nil, fmt.Errorf("export: write %s: %w", opts.Out, err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("export: write %s: %w", opts.Out, err)
	}
	written := data
	if f.Name() != "" { // a local file: run what is on disk
		written, err = os.ReadFile(f.Name())
		if err != nil {
			return nil, fmt.Errorf("export: read back %s: %w", f.Name(), err)
		}
	}
	res.Validation, err = validate(ctx, env, opts, ck, written, val)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w (%s not written)", opts.Model, err, opts.Out)
	}
	if err := f.Commit(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	res.Bytes = int64(len(written))
	res.SHA256 = onnxmodel.SHA256(written)
	res.Seconds = env.Now().Sub(start).Seconds()
	env.Log.Info("exported", "out", opts.Out, "bytes", res.Bytes, "opset", opts.Opset, "model_version", res.ModelVersion,
		"validated_windows", val.n, "seconds", math.Round(res.Seconds*1000)/1000)
	return res, nil
}

func checkOptions(o Options) error {
	if _, ok := onnxmodel.Opsets[o.Opset]; !ok {
		return fmt.Errorf("%w: --opset %d: want 11, 12 or 13", exitcode.ErrUsage, o.Opset)
	}
	if o.ValidateBatch < 1 {
		return fmt.Errorf("%w: --validate-batch %d: want ≥ 1", exitcode.ErrUsage, o.ValidateBatch)
	}
	if !(o.RTol >= 0) || !(o.ATol >= 0) || o.RTol+o.ATol == 0 {
		return fmt.Errorf("%w: --rtol %g --atol %g: want non-negative tolerances, not both 0", exitcode.ErrUsage, o.RTol, o.ATol)
	}
	if o.Model == "" || o.Out == "" {
		return fmt.Errorf("%w: --model and --out are required", exitcode.ErrUsage)
	}
	return nil
}

func fileExists(p string) bool {
	if p == "" {
		return false
	}
	ok, _ := location.Exists(context.Background(), p)
	return ok
}

// embedMetrics adds the metrics file (if any) to the metadata after checking
// that it belongs to the checkpoint.
func embedMetrics(env *runenv.Env, opts Options, ckSHA string, props map[string]string, res *Result) error {
	if opts.Metrics == "" {
		return nil
	}
	m, err := metricsfile.Read(opts.Metrics)
	if errors.Is(err, fs.ErrNotExist) {
		env.Log.Info("no metrics embedded", "metrics", opts.Metrics, "reason", "file does not exist")
		return nil
	}
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := m.CheckModel(ckSHA); err != nil {
		return fmt.Errorf("export: %w (or pass --metrics '' to embed none)", err)
	}
	splits, err := m.SplitsJSON()
	if err != nil {
		return fmt.Errorf("export: metrics %s: %w", opts.Metrics, err)
	}
	props[onnxmodel.MetaMetrics] = string(splits)
	props[onnxmodel.MetaMetricsSHA256] = m.SHA256
	res.Metrics = opts.Metrics
	return nil
}

// valData are the validation inputs: n rows for the ONNX model (raw values
// when the scaler is embedded) and the same rows for the native forward
// pass (scaled by the checkpoint's scaler), with a description of each row.
type valData struct {
	source, split string
	n, t, f       int
	onnx, native  []float32
	where         func(i int) string
}

func loadValidation(ctx context.Context, env *runenv.Env, opts Options, ck *model.Checkpoint) (*valData, error) {
	in := ck.Info
	sc := in.Scaler
	scale := func(j int, v float64) float64 {
		if sc.Kind == "none" {
			return v
		}
		return sc.Apply(j, v)
	}
	switch ck.Params.Arch.Type {
	case model.TypeRidge:
		if !fileExists(opts.Stats) {
			return nil, fmt.Errorf("export: validation needs the stats file of a ridge model: %s does not exist (--stats)", opts.Stats)
		}
		var rows *dataset.StatsRows
		split := opts.ValidateSplit
		for _, s := range []string{split, ""} {
			var err error
			rows, err = dataset.ReadStatsRows(ctx, opts.Stats, s, in.Features, opts.ValidateBatch)
			if err != nil {
				return nil, fmt.Errorf("export: %w", err)
			}
			if rows.Len() > 0 {
				split = s
				break
			}
		}
		if rows.Len() == 0 {
			return nil, fmt.Errorf("export: %s has no complete rows for the model's %d features", opts.Stats, len(in.Features))
		}
		if split != opts.ValidateSplit {
			env.Log.Warn("validation split is empty; validating on the first rows of every split", "split", opts.ValidateSplit, "stats", opts.Stats)
			split = "all"
		}
		// Stats are raw: the native input needs the checkpoint's scaler even
		// when the export leaves it out.
		if err := onnxmodel.CheckScaler(sc, in.Features, ""); err != nil {
			return nil, fmt.Errorf("export: cannot validate on the raw rows of %s: %w", opts.Stats, err)
		}
		F := len(in.Features)
		v := &valData{source: opts.Stats, split: split, n: rows.Len(), t: 1, f: F,
			onnx: make([]float32, len(rows.X)), native: make([]float32, len(rows.X))}
		for i, x := range rows.X {
			raw := float32(x)
			v.native[i] = float32(scale(i%F, float64(raw)))
			v.onnx[i] = raw
			if opts.NoScaler {
				v.onnx[i] = v.native[i]
			}
		}
		v.where = func(i int) string {
			return fmt.Sprintf("row %d (device %s, window_end %s)", i, rows.Device[i], time.UnixMicro(rows.End[i]).UTC().Format(time.RFC3339))
		}
		return v, nil
	default:
		if !fileExists(opts.Windows) {
			return nil, fmt.Errorf("export: validation needs windows: %s does not exist (--windows)", opts.Windows)
		}
		split := opts.ValidateSplit
		ws, err := dataset.ReadWindowsN(ctx, opts.Windows, opts.ValidateBatch, split)
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		if ws.Len() == 0 {
			env.Log.Warn("validation split is empty; validating on the first windows of the file", "split", split, "windows", opts.Windows)
			split = "all"
			if ws, err = dataset.ReadWindowsN(ctx, opts.Windows, opts.ValidateBatch); err != nil {
				return nil, fmt.Errorf("export: %w", err)
			}
			if ws.Len() == 0 {
				return nil, fmt.Errorf("export: %s has no windows to validate with", opts.Windows)
			}
		}
		if err := sameInput(opts.Windows, ws.Meta, in); err != nil {
			return nil, err
		}
		F := ws.F
		v := &valData{source: opts.Windows, split: split, n: ws.Len(), t: ws.T, f: F}
		if opts.NoScaler {
			// The bare network takes what windows.parquet stores.
			v.onnx, v.native = ws.X, ws.X
		} else {
			// windows.parquet stores scaled values: undo the windows' scaler to
			// get the raw sensor values the ONNX model takes, and scale them
			// again with the checkpoint's for the native pass.
			wsc := ws.Meta.Scaler
			if err := onnxmodel.CheckScaler(wsc, ws.Meta.Features, ws.FileMeta[dataset.MetaScaler]); err != nil {
				return nil, fmt.Errorf("export: cannot recover raw values from %s: %w", opts.Windows, err)
			}
			v.onnx, v.native = make([]float32, len(ws.X)), make([]float32, len(ws.X))
			for i, x := range ws.X {
				j := i % F
				r := float64(x)
				if wsc.Kind != "none" {
					r = wsc.Invert(j, r)
				}
				v.onnx[i] = float32(r)
				v.native[i] = float32(scale(j, float64(v.onnx[i])))
			}
		}
		v.where = func(i int) string {
			return fmt.Sprintf("window %d (device %s, window_end %s)", i, ws.Device[i], time.UnixMicro(ws.End[i]).UTC().Format(time.RFC3339))
		}
		return v, nil
	}
}

// sameInput refuses windows that are not the model's input.
func sameInput(loc string, wm dataset.WindowsMeta, in model.Info) error {
	if len(wm.Features) != len(in.Features) {
		return fmt.Errorf("export: %s has %d features, the model takes %d", loc, len(wm.Features), len(in.Features))
	}
	for i := range wm.Features {
		if wm.Features[i] != in.Features[i] {
			return fmt.Errorf("export: %s feature %d is %q, the model's is %q (order matters)", loc, i, wm.Features[i], in.Features[i])
		}
	}
	if wm.Window != in.Window {
		return fmt.Errorf("export: %s has windows of %d steps, the model was trained on %d", loc, wm.Window, in.Window)
	}
	return nil
}

// validate runs data (the ONNX file's bytes) with gonnx and compares it with
// the native forward pass: the first window alone, the whole batch, and with
// a dynamic sequence axis also the batch's last half-windows.
func validate(ctx context.Context, env *runenv.Env, opts Options, ck *model.Checkpoint, data []byte, v *valData) (Validation, error) {
	out := Validation{Source: v.source, Split: v.split, RTol: opts.RTol, ATol: opts.ATol, Native: nativeName}
	mp, err := onnxmodel.Parse(data)
	if err != nil {
		return out, err
	}
	runner, err := onnxmodel.NewRunner(mp)
	if err != nil {
		return out, err
	}
	type run struct{ b, t int }
	runs := []run{{1, v.t}, {v.n, v.t}}
	if v.n == 1 {
		runs = runs[:1]
	}
	lstm := ck.Params.Arch.Type == model.TypeLSTM
	if lstm && opts.DynamicSeq && v.t >= 2 {
		runs = append(runs, run{v.n, v.t / 2})
	}
	bar := env.Progress("validate onnx", "checks", int64(len(runs)))
	defer bar.Finish()
	for _, r := range runs {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		t0 := time.Now()
		oin, nin := tail(v.onnx, r.b, v.t, r.t, v.f), tail(v.native, r.b, v.t, r.t, v.f)
		shape := []int{r.b, r.t, v.f}
		if !lstm {
			shape = []int{r.b, v.f}
		}
		got, err := runner.Run(oin, shape...)
		if err != nil {
			return out, fmt.Errorf("run onnx (batch %d): %w", r.b, err)
		}
		want, err := native(ck.Params, nin, r.b, env.Workers)
		if err != nil {
			return out, err
		}
		d, ok := onnxmodel.Compare(got, want, opts.RTol, opts.ATol)
		c := Check{Batch: r.b, MaxAbs: d.MaxAbs, Worst: d.Ratio, Passed: ok, Seconds: time.Since(t0).Seconds()}
		if lstm {
			c.Seq = r.t
		}
		out.Checks = append(out.Checks, c)
		bar.Add(1)
		if !ok {
			return out, &MismatchError{Check: c, Index: d.Index, Where: v.where(d.Index), ONNX: d.Got, Native: d.Want, Abs: d.Abs,
				Tol: opts.ATol + opts.RTol*math.Abs(d.Want)}
		}
		env.Log.Debug("onnx validation", "batch", r.b, "seq", r.t, "max_abs_diff", d.MaxAbs, "worst_ratio", d.Ratio)
	}
	return out, nil
}

// tail returns the last t of T steps of b windows of x [b][T][f] (all of x's
// first b windows when t == T).
func tail(x []float32, b, T, t, f int) []float32 {
	if t == T {
		return x[:b*T*f]
	}
	out := make([]float32, 0, b*t*f)
	for i := range b {
		out = append(out, x[(i*T+T-t)*f:(i+1)*T*f]...)
	}
	return out
}

// nativeName is the forward pass the export is compared with.
const nativeName = "nn.Predictor (native float32 forward pass)"

// native runs the native predictor (the inference path of predict and
// evaluate) over b windows (it reads the sequence length from len(x)).
func native(p *model.Params, x []float32, b, workers int) ([]float32, error) {
	pr := nn.NewPredictor(p, workers)
	defer pr.Close()
	out := make([]float32, b)
	if err := pr.Predict(x, b, out); err != nil {
		return nil, fmt.Errorf("native forward pass: %w", err)
	}
	return out, nil
}
