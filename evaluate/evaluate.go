package evaluate

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/conformal"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/infer"
	"github.com/modax/modax-ml/internal/location"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/runenv"
)

// Options configure the evaluate stage (the `evaluate` config section).
type Options struct {
	// Predictions is the predictions file to evaluate.
	Predictions string `yaml:"predictions"`
	// Model is the checkpoint that made the predictions: its training
	// history gives the training-curves plot. A missing file is no error
	// (the predictions file names its model).
	Model string `yaml:"model"`
	// Windows is the windows file evaluate predicts from when it predicts.
	Windows string `yaml:"windows"`
	// Predict says when evaluate runs Model over Windows itself (all splits)
	// and writes Predictions: "auto" when the predictions file is missing or
	// was made from an earlier version of the same model or windows file,
	// "always", or "never".
	Predict string `yaml:"predict"`
	// LastWindowOnly, when evaluate predicts, keeps only the last window of
	// each device life (the C-MAPSS protocol).
	LastWindowOnly bool `yaml:"last_window_only"`
	// BatchSize and Workers configure the forward pass when evaluate
	// predicts (0 workers: one per core).
	BatchSize int `yaml:"batch_size"`
	Workers   int `yaml:"workers"`
	// Metrics, Report and HTML are the output files; plots go to PlotsDir.
	Metrics  string `yaml:"metrics"`
	Report   string `yaml:"report"`
	HTML     string `yaml:"html"`
	PlotsDir string `yaml:"plots_dir"`
	// NoPlots skips the PNG plots and the SVG figures (and their place in
	// the reports).
	NoPlots bool `yaml:"no_plots"`
	// PlotSplit is the split the plots and the device tables show; empty
	// picks test, else val, else train.
	PlotSplit string `yaml:"plot_split"`
	// Compare names another metrics.json to diff against.
	Compare string `yaml:"compare"`
	// CriticalToleranceHours is the tolerance of the critical-window accuracy.
	CriticalToleranceHours float64 `yaml:"critical_tolerance_hours"`
	// CriticalHours and WarningHours override the health thresholds the
	// predictions file records (0: use the file's, else 10/50 h).
	CriticalHours float64 `yaml:"critical_hours"`
	WarningHours  float64 `yaml:"warning_hours"`
	// ImportanceRepeats is the number of permutations per feature of the
	// permutation importance (0: none); ImportanceSeed seeds them and
	// ImportanceWindows caps the windows scored (evenly spread; 0: all).
	// It needs Model and Windows and runs on the plot split.
	ImportanceRepeats int   `yaml:"importance_repeats"`
	ImportanceSeed    int64 `yaml:"importance_seed"`
	ImportanceWindows int   `yaml:"importance_windows"`
}

// DefaultOptions returns the DESIGN §3 file names and a 5 h critical
// tolerance.
func DefaultOptions() Options {
	return Options{
		Predictions:            "predictions.parquet",
		Model:                  "model.safetensors",
		Windows:                "windows.parquet",
		Predict:                "auto",
		BatchSize:              256,
		Metrics:                "metrics.json",
		Report:                 "report.md",
		HTML:                   "report.html",
		PlotsDir:               "plots",
		CriticalToleranceHours: 5,
		ImportanceRepeats:      3,
		ImportanceSeed:         1,
		ImportanceWindows:      2000,
	}
}

// Result is what `evaluate --output json` prints.
type Result struct {
	Metrics string   `json:"metrics"`
	Report  string   `json:"report"`
	HTML    string   `json:"html"`
	Plots   []string `json:"plots"`
	// Figures are the SVG figures of the reports (plots_dir/<id>.svg).
	Figures     []string `json:"figures"`
	Predictions string   `json:"predictions"`
	// Predicted is true when evaluate ran the model itself; Prediction
	// describes that run.
	Predicted  bool                     `json:"predicted"`
	Prediction *infer.Summary           `json:"prediction,omitempty"`
	Splits     map[string]*SplitMetrics `json:"splits"`
	Compare    *Comparison              `json:"compare,omitempty"`
	// FeatureImportance is metrics.json's feature_importance.
	FeatureImportance *Importance `json:"feature_importance,omitempty"`
	Warnings          []string    `json:"warnings,omitempty"`
	// Doc is the whole metrics document.
	Doc *Metrics `json:"-"`
}

// SplitNames returns the result's splits in report order.
func (r *Result) SplitNames() []string {
	var out []string
	for s := range r.Splits {
		out = append(out, s)
	}
	slices.SortFunc(out, splitOrder)
	return out
}

func (o Options) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("evaluate: %w: %s", exitcode.ErrUsage, fmt.Sprintf(format, a...))
	}
	switch {
	case o.Predictions == "":
		return bad("--predictions is empty")
	case o.Metrics == "":
		return bad("--metrics is empty")
	case o.Predict != "auto" && o.Predict != "always" && o.Predict != "never":
		return bad("--predict %q: want auto, always or never", o.Predict)
	case o.BatchSize < 1 || o.BatchSize > runenv.MaxBatch:
		return bad("--batch-size %d (config evaluate.batch_size): want 1 to %d windows", o.BatchSize, runenv.MaxBatch)
	case o.Workers < 0 || o.Workers > runenv.MaxWorkers:
		return bad("--workers %d (config evaluate.workers): want 0 (one per core) to %d", o.Workers, runenv.MaxWorkers)
	case o.CriticalToleranceHours <= 0:
		return bad("--critical-tolerance %g: want > 0 hours", o.CriticalToleranceHours)
	case o.ImportanceRepeats < 0 || o.ImportanceRepeats > 100:
		return bad("--importance-repeats %d: want 0 (none) to 100", o.ImportanceRepeats)
	case o.ImportanceWindows < 0:
		return bad("--importance-windows %d: want ≥ 0 (0: all)", o.ImportanceWindows)
	case (o.CriticalHours != 0 || o.WarningHours != 0) && !(o.CriticalHours > 0 && o.WarningHours > o.CriticalHours):
		return bad("--critical-hours %g / --warning-hours %g: want 0 < critical < warning (or both 0 to use the file's thresholds)", o.CriticalHours, o.WarningHours)
	}
	return nil
}

// Run evaluates the predictions and writes metrics.json, the reports and the
// plots.
func Run(ctx context.Context, env *runenv.Env, opts Options) (*Result, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if err := atomicfile.CheckOutputs([]atomicfile.Path{atomicfile.P("--predictions", opts.Predictions), atomicfile.P("--model", opts.Model), atomicfile.P("--windows", opts.Windows), atomicfile.P("--compare", opts.Compare)},
		[]atomicfile.Path{atomicfile.P("--metrics", opts.Metrics), atomicfile.P("--report", opts.Report), atomicfile.P("--html", opts.HTML)}); err != nil {
		return nil, err
	}
	res := &Result{Predictions: opts.Predictions}
	warn := func(msg string) {
		env.Log.Warn(msg)
		res.Warnings = append(res.Warnings, msg)
	}
	why, err := needPredict(opts)
	if err != nil {
		return nil, err
	}
	if why != "" {
		env.Log.Info("evaluate predicts first", "why", why, "model", opts.Model, "windows", opts.Windows)
		if res.Prediction, err = predictFirst(ctx, env, opts); err != nil {
			return nil, err
		}
		res.Predicted = true
	}
	ps, meta, err := dataset.ReadPredictions(ctx, opts.Predictions)
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("evaluate: %s holds no predictions", opts.Predictions)
	}
	if err := CheckFinite(ps); err != nil {
		return nil, fmt.Errorf("evaluate: %s: %w: %w", opts.Predictions, exitcode.ErrValidation, err)
	}

	doc := &Metrics{Schema: MetricsSchema, CreatedAt: env.Now().UTC().Format(time.RFC3339), RunID: env.RunID,
		ToolVersion: env.ToolVersion, CriticalToleranceHours: opts.CriticalToleranceHours, HorizonHours: NaN(),
		Definitions: Definitions}
	if err := lineage(doc, opts.Predictions, meta); err != nil {
		return nil, err
	}
	doc.Thresholds, err = thresholds(opts, meta, warn)
	if err != nil {
		return nil, err
	}
	var h float64
	if ok, err := meta.Get(dataset.MetaHorizon, &h); err != nil {
		return nil, fmt.Errorf("evaluate: %s: %w", opts.Predictions, err)
	} else if ok {
		doc.HorizonHours = Float(h)
	}
	cal, err := predictionsCalibration(meta, opts.Predictions)
	if err != nil {
		return nil, err
	}
	var history []model.Epoch
	modelMade := false // opts.Model is the model that made the predictions
	if opts.Model != "" && exists(opts.Model) {
		var w string
		var modelCal *conformal.Calibration
		if history, modelCal, w, err = checkModel(doc, opts.Model, opts.Predictions); err != nil {
			return nil, err
		}
		if w != "" {
			warn(w)
		}
		modelMade = w == ""
		if cal == nil {
			// Predictions made before predict recorded the calibration: the
			// checkpoint that made them has it.
			cal = modelCal
		}
	}
	doc.Calibration = cal
	if n := healthMismatches(ps, doc.Thresholds); n > 0 {
		warn(fmt.Sprintf("%d rows of %s have a health_true that the thresholds (%g/%g h) do not give for their rul_true; classes are recomputed from the RUL with these thresholds",
			n, opts.Predictions, doc.Thresholds.Critical, doc.Thresholds.Warning))
	}

	doc.Splits = map[string]*SplitMetrics{}
	for _, s := range Splits(ps) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var in []dataset.Prediction
		for i := range ps {
			if ps[i].Split == s {
				in = append(in, ps[i])
			}
		}
		m := ComputeSplit(in, doc.Thresholds, opts.CriticalToleranceHours)
		truth, pred := labelled(in)
		m.RULBuckets = ErrorByBucket(truth, pred, float64(doc.HorizonHours))
		if m.Intervals, err = ComputeIntervals(in, cal); err != nil {
			return nil, fmt.Errorf("evaluate: %s: split %s: %w", opts.Predictions, s, err)
		}
		doc.Splits[s] = m
		env.Log.Info("evaluate", "split", s, "n", m.N, "mae", float64(m.MAE), "rmse", float64(m.RMSE),
			"score", float64(m.Score), "critical_accuracy", float64(m.CriticalAccuracy))
		for _, iv := range m.Intervals {
			env.Log.Info("evaluate: interval coverage", "split", s, "level", iv.Level, "n", iv.N,
				"coverage", float64(iv.Coverage), "mean_width_hours", float64(iv.MeanWidth))
		}
		if m.N == 0 {
			warn(fmt.Sprintf("split %s has no predictions with a known true RUL", s))
		}
	}
	doc.PerDevice = ComputeDevices(ps)
	res.Splits, res.Doc = doc.Splits, doc

	primary, err := primarySplit(opts.PlotSplit, doc.Splits)
	if err != nil {
		return nil, err
	}
	rd := &reportData{M: doc, Primary: primary, PrimaryM: doc.Splits[primary], History: summarizeHistory(history), Warnings: res.Warnings}
	for _, s := range res.SplitNames() {
		rd.Splits = append(rd.Splits, splitView{Name: s, SplitMetrics: doc.Splits[s]})
	}
	rd.Worst, rd.Best = worstBestDevices(doc.PerDevice, primary, 5)
	if doc.FeatureImportance, err = importance(ctx, env, opts, meta, primary, modelMade, warn); err != nil {
		return nil, err
	}
	rd.Importance, res.FeatureImportance = doc.FeatureImportance, doc.FeatureImportance

	if opts.Compare != "" {
		other, err := ReadMetrics(opts.Compare)
		if err != nil {
			return nil, fmt.Errorf("evaluate: --compare: %w", err)
		}
		res.Compare = Compare(doc, other, opts.Metrics, opts.Compare)
		rd.Compare = res.Compare
	}

	b, err := doc.Marshal()
	if err != nil {
		return nil, err
	}
	// The plots, the reports and metrics.json are one write set: renamed
	// into place together, and a failed rename puts every previous file
	// back. metrics.json, the file later stages read, is renamed last.
	set := atomicfile.NewSet()
	defer set.Abort()
	var written []string
	if !opts.NoPlots {
		plots, err := makePlots(ctx, ps, primary, doc.Splits[primary], history)
		if err != nil {
			return nil, fmt.Errorf("evaluate: plots: %w", err)
		}
		if written, err = writePlots(set, opts.PlotsDir, plots); err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
		rd.Figures = makeFigures(ps, primary, doc.Splits[primary], history, cal)
		if f := figImportance(doc.FeatureImportance); f != nil {
			rd.Figures = append(rd.Figures, f)
		}
		for _, f := range rd.Figures {
			path := location.Join(opts.PlotsDir, f.ID+".svg")
			if err := set.WriteFile(path, f.File()); err != nil {
				return nil, fmt.Errorf("evaluate: %w", err)
			}
			res.Figures = append(res.Figures, path)
		}
		// The reports show the SVG figures; the PNG plots they replace stay
		// files (for report readers, MLflow, other tools), the others are
		// folded under "More plots".
		for _, p := range plots {
			if !replacedByFigure(p.Name, rd.Figures) {
				rd.Plots = append(rd.Plots, plotView{Plot: p})
			}
		}
	}
	md, html, err := renderReports(rd, opts.Report, opts.PlotsDir)
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	outs := []struct {
		path string
		data []byte
	}{{opts.Report, md}, {opts.HTML, html}, {opts.Metrics, b}}
	for _, o := range outs {
		if o.path == "" {
			continue
		}
		if err := set.WriteFile(o.path, o.data); err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
	}
	if err := set.Commit(); err != nil {
		return nil, fmt.Errorf("evaluate: %w (the previous metrics, reports and plots are left as they were)", err)
	}
	if !opts.NoPlots {
		if err := removeStalePlots(opts.PlotsDir, append(slices.Clone(written), res.Figures...)); err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
	}
	res.Plots, res.Metrics, res.Report, res.HTML = written, opts.Metrics, opts.Report, opts.HTML
	return res, nil
}

// lineage fills the model, predictions and windows references from the
// predictions file's metadata (written by predict).
func lineage(doc *Metrics, predPath string, meta dataset.Meta) error {
	sha, err := dataset.FileSHA256(predPath)
	if err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	doc.Predictions = &FileRef{Path: predPath, SHA256: sha}
	var mref FileRef
	if ok, err := meta.Get(dataset.MetaModel, &mref); err != nil {
		return fmt.Errorf("evaluate: %s: %w", predPath, err)
	} else if ok {
		doc.Model = &mref
	}
	var inputs []dataset.Input
	if _, err := meta.Get(dataset.MetaInputs, &inputs); err != nil {
		return fmt.Errorf("evaluate: %s: %w", predPath, err)
	}
	for _, in := range inputs {
		if doc.Model == nil || in.Path != doc.Model.Path {
			doc.Windows = &FileRef{Path: in.Path, SHA256: in.SHA256}
			break
		}
	}
	return nil
}

func thresholds(opts Options, meta dataset.Meta, warn func(string)) (dataset.Thresholds, error) {
	if opts.CriticalHours > 0 {
		return dataset.Thresholds{Critical: opts.CriticalHours, Warning: opts.WarningHours}, nil
	}
	var th dataset.Thresholds
	ok, err := meta.Get(dataset.MetaThresholds, &th)
	if err != nil {
		return th, fmt.Errorf("evaluate: %s: %w", opts.Predictions, err)
	}
	if !ok {
		warn(fmt.Sprintf("%s records no health thresholds; using the design's %g/%g h (set --critical-hours/--warning-hours)",
			opts.Predictions, dataset.DefaultThresholds.Critical, dataset.DefaultThresholds.Warning))
		return dataset.DefaultThresholds, nil
	}
	if err := th.Validate(); err != nil {
		return th, fmt.Errorf("evaluate: %s: %w", opts.Predictions, err)
	}
	return th, nil
}

// checkModel loads the checkpoint for its training history. When the
// predictions file records another model (other content), the checkpoint is
// left out: metrics.json keeps naming the model that made the predictions,
// and the returned warning says so.
//
// An ONNX model (.onnx) has no training history; it is only checked. The
// checkpoint's interval calibration is returned too (nil: none).
func checkModel(doc *Metrics, path, predPath string) ([]model.Epoch, *conformal.Calibration, string, error) {
	sha, err := dataset.FileSHA256(path)
	if err != nil {
		return nil, nil, "", fmt.Errorf("evaluate: %w", err)
	}
	if doc.Model != nil && doc.Model.SHA256 != "" && doc.Model.SHA256 != sha {
		return nil, nil, fmt.Sprintf("%s was made by the model %s (sha256 %.12s…), not by %s (sha256 %.12s…): its training curves are left out and metrics.json names the model that made the predictions",
			predPath, doc.Model.Path, doc.Model.SHA256, path, sha), nil
	}
	if strings.EqualFold(location.Ext(path), ".onnx") {
		version := ""
		if doc.Model != nil {
			version = doc.Model.ModelVersion
		}
		doc.Model = &FileRef{Path: path, SHA256: sha, ModelVersion: version}
		return nil, nil, "", nil
	}
	ck, err := model.Load(path)
	if err != nil {
		return nil, nil, "", fmt.Errorf("evaluate: %w", err)
	}
	doc.Model = &FileRef{Path: path, SHA256: sha, ModelVersion: ck.Info.ModelVersion}
	return ck.Info.History, ck.Info.Calibration, "", nil
}

func healthMismatches(ps []dataset.Prediction, th dataset.Thresholds) int {
	n := 0
	for i := range ps {
		if ps[i].HasTruth() && ps[i].HealthTrue != th.Classify(ps[i].RULTrue) {
			n++
		}
	}
	return n
}

func primarySplit(want string, splits map[string]*SplitMetrics) (string, error) {
	if want != "" {
		if _, ok := splits[want]; !ok {
			var have []string
			for s := range splits {
				have = append(have, s)
			}
			slices.SortFunc(have, splitOrder)
			return "", fmt.Errorf("evaluate: %w: --plot-split %s: the predictions hold splits %s", exitcode.ErrUsage, want, strings.Join(have, ", "))
		}
		return want, nil
	}
	for _, s := range []string{dataset.SplitTest, dataset.SplitVal, dataset.SplitTrain} {
		if m, ok := splits[s]; ok && m.N > 0 {
			return s, nil
		}
	}
	var names []string
	for s := range splits {
		names = append(names, s)
	}
	slices.SortFunc(names, splitOrder)
	return names[0], nil
}

// plotNames are every plot evaluate may write (stale ones are removed).
var plotNames = []string{"pred_vs_true.png", "error_hist.png", "error_vs_true.png", "trajectories.png", "confusion.png", "calibration.png", "training_curves.png", importanceFigure + ".svg"}

func makePlots(ctx context.Context, ps []dataset.Prediction, split string, m *SplitMetrics, history []model.Epoch) ([]*Plot, error) {
	var truth, pred []float64
	var in []dataset.Prediction
	for i := range ps {
		if ps[i].Split == split && ps[i].HasTruth() {
			truth = append(truth, ps[i].RULTrue)
			pred = append(pred, ps[i].RULPred)
			in = append(in, ps[i])
		}
	}
	var out []*Plot
	add := func(p *Plot, err error) error {
		if err != nil {
			return err
		}
		if p != nil {
			out = append(out, p)
		}
		return ctx.Err()
	}
	if len(truth) > 0 {
		for _, f := range []func([]float64, []float64, string) (*Plot, error){PlotPredVsTrue, PlotErrorHist, PlotErrorVsTrue} {
			if err := add(f(truth, pred, split)); err != nil {
				return nil, err
			}
		}
		if err := add(PlotTrajectories(deviceSeries(in), split)); err != nil {
			return nil, err
		}
		if err := add(PlotConfusion(m.Classification, split)); err != nil {
			return nil, err
		}
		if err := add(PlotCalibration(m.Intervals, split)); err != nil {
			return nil, err
		}
	}
	if err := add(PlotTraining(history)); err != nil {
		return nil, err
	}
	return out, nil
}

// writePlots stages the plots in dir as files of set and returns their paths.
func writePlots(set *atomicfile.Set, dir string, plots []*Plot) ([]string, error) {
	var paths []string
	for _, p := range plots {
		path := location.Join(dir, p.Name)
		if err := set.WriteFile(path, p.PNG); err != nil {
			return nil, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// removeStalePlots removes the plots of an earlier run that this one did not
// write (once this run's files are in place).
func removeStalePlots(dir string, written []string) error {
	for _, name := range slices.Concat(plotNames, figureNames) {
		path := location.Join(dir, name)
		if slices.Contains(written, path) {
			continue
		}
		if err := location.Remove(context.Background(), path); err != nil {
			return fmt.Errorf("remove stale plot: %w", err)
		}
	}
	return nil
}

func exists(path string) bool {
	ok, _ := location.Exists(context.Background(), path)
	return ok
}

// needPredict says why evaluate must predict first ("" when it need not).
func needPredict(opts Options) (string, error) {
	switch opts.Predict {
	case "never":
		return "", nil
	case "always":
		return "--predict always", nil
	}
	if !exists(opts.Predictions) {
		if exists(opts.Model) && exists(opts.Windows) {
			return opts.Predictions + " does not exist", nil
		}
		return "", fmt.Errorf("evaluate: %w: %s does not exist, and evaluate cannot make it: it needs the model %s and the windows %s (run `modax-ml predict`, or name them with --model and --windows)",
			exitcode.ErrUsage, opts.Predictions, opts.Model, opts.Windows)
	}
	// Stale predictions: made from an earlier version of the same model or
	// windows file. Files made by another tool (no modax.model) are never
	// replaced.
	r, err := dataset.Open(opts.Predictions, dataset.KindPredictions)
	if err != nil {
		return "", fmt.Errorf("evaluate: %w", err)
	}
	meta := r.Meta()
	r.Close()
	var ref infer.ModelRef
	if ok, err := meta.Get(dataset.MetaModel, &ref); err != nil || !ok {
		return "", nil
	}
	var inputs []dataset.Input
	if _, err := meta.Get(dataset.MetaInputs, &inputs); err != nil {
		return "", nil
	}
	changed := func(path, recorded string) (bool, error) {
		if !exists(path) || recorded == "" {
			return false, nil
		}
		sha, err := dataset.FileSHA256(path)
		if err != nil {
			return false, fmt.Errorf("evaluate: %w", err)
		}
		return sha != recorded, nil
	}
	if ref.Path == opts.Model {
		if c, err := changed(opts.Model, ref.SHA256); err != nil || c {
			return opts.Model + " changed since " + opts.Predictions + " was made", err
		}
	}
	for _, in := range inputs {
		if in.Path == opts.Windows && in.Path != ref.Path {
			if c, err := changed(opts.Windows, in.SHA256); err != nil || c {
				return opts.Windows + " changed since " + opts.Predictions + " was made", err
			}
		}
	}
	return "", nil
}

// predictFirst runs the model over the windows (all splits) and writes the
// predictions file, as the predict stage does.
func predictFirst(ctx context.Context, env *runenv.Env, opts Options) (*infer.Summary, error) {
	workers := opts.Workers
	if workers == 0 {
		workers = env.Workers
	}
	m, err := infer.Load(opts.Model, workers)
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	defer m.Close()
	s, err := infer.PredictFile(ctx, env, m, infer.Spec{Windows: opts.Windows, Out: opts.Predictions,
		LastWindowOnly: opts.LastWindowOnly, BatchSize: opts.BatchSize, IntervalLevel: infer.DefaultIntervalLevel, Stage: "predict"})
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	return s, nil
}
