// Package infer runs a trained model over a windows file: the model's input
// contract (features in order, window length, scaling) checked against the
// file, batched forward passes, last-window selection (the C-MAPSS protocol)
// and the predictions file. The predict stage is a thin layer over it, and
// evaluate uses it to predict for itself; monitor can use it on new data.
package infer

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/modax/modax-ml/internal/conformal"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/runenv"
)

// Forward is a batched forward pass: x holds b windows [b][T][F] (time-major,
// as windows.parquet stores x) in the scaling the model expects, and out[:b]
// receives the predicted RUL in hours.
type Forward interface {
	Predict(x []float32, b int, out []float32) error
}

// Model is a loaded model and the input contract it was trained with.
type Model struct {
	Path    string
	SHA256  string
	Version string
	Format  string // "safetensors" or "onnx"
	// WeightsSHA256 is the weights digest (model.WeightsDigest) of the
	// loaded weights: computed from a checkpoint's tensors, or the one an
	// ONNX model records and Parse verified ("" for an ONNX file exported
	// before digests were recorded).
	WeightsSHA256 string

	Features []string // input features, in the model's order
	Window   int      // time steps per window
	// Scaler is the scaling the model's input must have; nil when the model
	// takes raw sensor values (an ONNX export with the scaler inside).
	Scaler *dataset.Scaler
	// trained is the scaler of the model's training windows (set for an ONNX
	// model, whose Scaler is nil when the graph scales inside): windows
	// scaled with it are un-scaled to the graph's raw input, not re-scaled.
	trained    *dataset.Scaler
	Horizon    float64
	Thresholds dataset.Thresholds
	// Calibration gives predictions their intervals (nil: uncalibrated).
	Calibration *conformal.Calibration
	// Info is the checkpoint's metadata (nil for ONNX).
	Info *model.Info

	Forward Forward
	close   func() error
}

// Close releases the model's resources.
func (m *Model) Close() error {
	if m.close == nil {
		return nil
	}
	return m.close()
}

// Clip is a model output as predict and score report it: clipped to
// [0, horizon] (conformal.Clip), the point the interval is centred on.
func (m *Model) Clip(v float64) float64 {
	return conformal.Clip(v, m.Horizon)
}

// Ref returns the model as a metrics/predictions lineage reference.
func (m *Model) Ref() ModelRef {
	return ModelRef{Path: m.Path, SHA256: m.SHA256, ModelVersion: m.Version}
}

// ModelRef is what a predictions file records about its model (metadata key
// modax.model), in metrics.json's shape.
type ModelRef struct {
	Path         string `json:"path"`
	SHA256       string `json:"sha256"`
	ModelVersion string `json:"model_version,omitempty"`
}

// Check refuses a windows file whose features, feature order or window
// length differ from what the model was trained on. The error wraps
// exitcode.ErrValidation and says exactly what differs.
func Check(m *Model, wm dataset.WindowsMeta, loc string) error {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s does not fit the model %s: %s", exitcode.ErrValidation, loc, m.Path, fmt.Sprintf(format, a...))
	}
	if wm.Window != m.Window {
		return fail("its windows have %d time steps, the model was trained on windows of %d (re-run features with --window %d)", wm.Window, m.Window, m.Window)
	}
	if slices.Equal(wm.Features, m.Features) {
		return nil
	}
	have := map[string]bool{}
	for _, f := range wm.Features {
		have[f] = true
	}
	want := map[string]bool{}
	var missing, extra []string
	for _, f := range m.Features {
		want[f] = true
		if !have[f] {
			missing = append(missing, f)
		}
	}
	for _, f := range wm.Features {
		if !want[f] {
			extra = append(extra, f)
		}
	}
	if len(missing) == 0 && len(extra) == 0 && len(wm.Features) == len(m.Features) {
		for i := range m.Features {
			if wm.Features[i] != m.Features[i] {
				return fail("same features in a different order: position %d is %q, the model expects %q (model order: %s)",
					i+1, wm.Features[i], m.Features[i], strings.Join(m.Features, ", "))
			}
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "it lacks "+strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		parts = append(parts, "it has features the model does not know: "+strings.Join(extra, ", "))
	}
	if len(parts) == 0 {
		parts = append(parts, fmt.Sprintf("%d features, the model expects %d", len(wm.Features), len(m.Features)))
	}
	return fail("%s (the model expects %s)", strings.Join(parts, "; "), strings.Join(m.Features, ", "))
}

// transform maps the windows file's scaled values to the model's input:
// y = a[f]·x + b[f] per feature. identity is true when nothing is to be done;
// rescaled when the windows were scaled otherwise than the model's training
// windows (un-scaling them for a graph that scales inside is not that).
type transform struct {
	a, b     []float64
	identity bool
	rescaled bool
}

// sameScaling reports whether two scalers map raw values identically.
func sameScaling(a, b *dataset.Scaler) bool {
	return slices.Equal(a.Offset, b.Offset) && slices.Equal(a.Scale, b.Scale) && reflect.DeepEqual(a.Conditions, b.Conditions)
}

// newTransform un-scales with the file's scaler and re-scales with the
// model's (or leaves raw values for a model that scales inside). Windows
// scaled per operating condition cannot be re-scaled (the rows' conditions
// are not in the windows file): they must have been scaled exactly as the
// model's training windows were.
func newTransform(m *Model, file dataset.Scaler, loc string) (transform, error) {
	n := len(m.Features)
	t := transform{a: make([]float64, n), b: make([]float64, n), identity: true}
	if m.Scaler != nil && sameScaling(m.Scaler, &file) {
		return t, nil
	}
	if file.PerCondition() || (m.Scaler != nil && m.Scaler.PerCondition()) {
		what := "the model expects raw sensor values"
		if m.Scaler != nil {
			what = "the model was trained on windows scaled with other parameters"
		}
		return t, fmt.Errorf("%w: %s does not fit the model %s: its windows are scaled per operating condition and %s; windows scaled per condition cannot be re-scaled (re-run features with the model's scaler, or predict with the checkpoint)",
			exitcode.ErrValidation, loc, m.Path, what)
	}
	if len(file.Offset) != n || len(file.Scale) != n {
		return t, fmt.Errorf("%s: scaler has %d/%d parameters for %d features", loc, len(file.Offset), len(file.Scale), n)
	}
	t.rescaled = m.Scaler != nil || m.trained == nil || !sameScaling(m.trained, &file)
	for j := range n {
		// raw = x·sw + ow; model input = (raw − om)/sm
		sw, ow := file.Scale[j], file.Offset[j]
		om, sm := 0.0, 1.0
		if m.Scaler != nil {
			om, sm = m.Scaler.Offset[j], m.Scaler.Scale[j]
		}
		t.a[j], t.b[j] = sw/sm, (ow-om)/sm
		if t.a[j] != 1 || t.b[j] != 0 {
			t.identity = false
		}
	}
	return t, nil
}

func (t transform) apply(dst, src []float32) {
	if t.identity {
		copy(dst, src)
		return
	}
	f := len(t.a)
	for i, v := range src {
		j := i % f
		dst[i] = float32(t.a[j]*float64(v) + t.b[j])
	}
}

// Options configure Predict.
type Options struct {
	// BatchSize is the number of windows per forward pass.
	BatchSize int
	// LastWindowOnly keeps only the last window (by window_end) of each
	// device life: one prediction per life, the C-MAPSS test protocol.
	LastWindowOnly bool
	// Interval gives every prediction its interval (when OK).
	Interval Interval
}

// Select returns the rows of w to predict: all, or the last window of each
// (tenant, device, life) in row order.
func Select(w *dataset.Windows, lastOnly bool) []int {
	n := w.Len()
	if !lastOnly {
		rows := make([]int, n)
		for i := range rows {
			rows[i] = i
		}
		return rows
	}
	type key struct {
		tenant, device string
		life           int32
	}
	last := map[key]int{}
	for i := range n {
		k := key{w.Tenant[i], w.Device[i], w.LifeID[i]}
		if j, ok := last[k]; !ok || w.End[i] >= w.End[j] {
			last[k] = i
		}
	}
	rows := make([]int, 0, len(last))
	for _, i := range last {
		rows = append(rows, i)
	}
	slices.Sort(rows)
	return rows
}

// Predict runs m over the selected windows of w in batches and returns one
// prediction per window, clipped to [0, horizon] (Clip). Health classes use the windows file's thresholds (the
// ones its labels were made with). A NaN or infinite model output is an
// error naming the window.
func Predict(ctx context.Context, env *runenv.Env, m *Model, w *dataset.Windows, loc string, opts Options) ([]dataset.Prediction, error) {
	if err := Check(m, w.Meta, loc); err != nil {
		return nil, err
	}
	if opts.BatchSize < 1 {
		return nil, fmt.Errorf("batch size %d: want ≥ 1", opts.BatchSize)
	}
	tr, err := newTransform(m, w.Meta.Scaler, loc)
	if err != nil {
		return nil, err
	}
	if tr.rescaled {
		env.Log.Info("rescaling windows to the model's scaler", "windows", loc, "model", m.Path)
	}
	if m.Thresholds != (dataset.Thresholds{}) && m.Thresholds != w.Meta.Thresholds {
		env.Log.Warn("the model was trained with other health thresholds than the windows' labels; predicted classes use the windows'",
			"model", m.Thresholds, "windows", w.Meta.Thresholds)
	}
	rows := Select(w, opts.LastWindowOnly)
	size := w.T * w.F
	bs := min(opts.BatchSize, max(1, len(rows)))
	x := make([]float32, bs*size)
	out := make([]float32, bs)
	preds := make([]dataset.Prediction, 0, len(rows))
	bar := env.Progress("predict", "windows", int64(len(rows)))
	defer bar.Finish()
	for lo := 0; lo < len(rows); lo += bs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+bs, len(rows))
		b := hi - lo
		for k, i := range rows[lo:hi] {
			tr.apply(x[k*size:(k+1)*size], w.XAt(i))
		}
		if err := m.Forward.Predict(x[:b*size], b, out[:b]); err != nil {
			return nil, fmt.Errorf("predict %s: %w", m.Path, err)
		}
		for k, i := range rows[lo:hi] {
			v := float64(out[k])
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("predict %s: the model output %v for window %d of %s (device %s, window_end %s)",
					m.Path, v, i+1, loc, w.Device[i], dataset.TimeOf(w.End[i]).Format(time.RFC3339))
			}
			v = m.Clip(v)
			p := dataset.Prediction{Tenant: w.Tenant[i], Device: w.Device[i], LifeID: w.LifeID[i], End: w.End[i],
				Split: w.Split[i], RULTrue: w.RUL[i], RULRaw: w.RULRaw[i], RULPred: v, HealthTrue: w.Health[i],
				HealthPred: w.Meta.Thresholds.Classify(v), ModelVersion: m.Version, Lower: math.NaN(), Upper: math.NaN(), Level: math.NaN()}
			if opts.Interval.OK {
				p.Lower, p.Upper = opts.Interval.Of(v)
				p.Level = opts.Interval.Level
			}
			preds = append(preds, p)
		}
		bar.Add(int64(b))
	}
	return preds, nil
}

// splitCounts counts predictions per split.
func splitCounts(ps []dataset.Prediction) map[string]int {
	out := map[string]int{}
	for i := range ps {
		out[ps[i].Split]++
	}
	return out
}

// devices counts distinct (tenant, device) pairs.
func devices(ps []dataset.Prediction) int {
	seen := map[[2]string]bool{}
	for i := range ps {
		seen[[2]string{ps[i].Tenant, ps[i].Device}] = true
	}
	return len(seen)
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmp.Compare)
	return keys
}
