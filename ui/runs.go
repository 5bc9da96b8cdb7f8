package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/modax/modax-ml/evaluate"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/runtable"
	"github.com/modax/modax-ml/internal/tracking"
	"github.com/modax/modax-ml/validate"
)

var funcs = template.FuncMap{
	"num":      func(v float64) string { return runtable.FormatFloat(v) },
	"fnum":     func(v tracking.Float) string { return runtable.FormatFloat(float64(v)) },
	"hours":    fmtHours,
	"dur":      runtable.FormatDuration,
	"time":     func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"short":    func(s string) string { return s[:min(len(s), 12)] },
	"size":     fmtSize,
	"pathesc":  url.PathEscape,
	"deltaCls": deltaClass,
	"finite":   finite,
	"utime":    dataset.TimeOf,
	"unix":     func(s int64) time.Time { return time.Unix(s, 0) },
	"deref":    deref,
	"hnum": func(v evaluate.Float) string {
		if !v.Valid() {
			return "–"
		}
		return fmt.Sprintf("%.2f", float64(v))
	},
	"qnum": func(p *float64) string {
		if p == nil {
			return "–"
		}
		return fmt.Sprintf("%.3f", *p)
	},
	"filesList": func(files map[string]bool) []string {
		var out []string
		for _, f := range runFiles[1:] {
			if files[f] {
				out = append(out, f)
			}
		}
		return out
	},
	"delta": func(d *tracking.Float) string {
		if d == nil {
			return ""
		}
		if *d > 0 {
			return "+" + runtable.FormatFloat(float64(*d))
		}
		return runtable.FormatFloat(float64(*d))
	},
}

func fmtHours(v float64) string {
	if !finite(v) {
		return "–"
	}
	return fmt.Sprintf("%.1f", v)
}

func fmtSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func deltaClass(d *tracking.Float) string {
	switch {
	case d == nil:
		return ""
	case *d > 0:
		return "up"
	case *d < 0:
		return "down"
	}
	return "same"
}

// runFiles are the files of a run directory the run page links to.
var runFiles = []string{"report.html", "report.md", "metrics.json", "validation.json", "config.yaml", "run.json", "pipeline.log"}

// deref returns what a pointer points to (nil for a nil pointer), for
// templates.
func deref(v any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer {
		return v
	}
	if rv.IsNil() {
		return nil
	}
	return rv.Elem().Interface()
}

// keyMetrics are the final metrics the runs table shows, when runs have them.
var keyMetrics = []string{"test_mae", "test_rmse", "test_r2", "test_score", "best_val_rmse"}

// maxKeyParams bounds the params shown in the runs table (those that differ
// between the listed runs; compare shows them all).
const maxKeyParams = 8

type runsData struct {
	Dir      string
	Filters  []string
	Sort     string
	Error    string
	Skipped  []string
	Total    int
	Columns  []runsColumn
	Rows     []runsRow
	FilterEx string
}

type runsColumn struct {
	Name, Header, SortURL, Arrow string
	Num                          bool
}

type runsRow struct {
	RunID, Status, Started string
	Cells                  []runtable.Value
}

func (s *Server) records() ([]*tracking.Record, []string) {
	recs, errs := tracking.List(s.opts.RunsDir)
	var skipped []string
	for _, err := range errs {
		skipped = append(skipped, err.Error())
	}
	return recs, skipped
}

func (s *Server) runs(w http.ResponseWriter, r *http.Request) {
	recs, skipped := s.records()
	q := r.URL.Query()
	var filters []string
	for _, f := range q["filter"] {
		if f = strings.TrimSpace(f); f != "" {
			filters = append(filters, f)
		}
	}
	d := runsData{Dir: s.opts.RunsDir, Filters: filters, Sort: q.Get("sort"), Skipped: skipped, Total: len(recs), FilterEx: "metric.test_rmse<12"}
	status := http.StatusOK
	now := s.opts.Now()
	query, err := runtable.ParseQuery(filters, d.Sort, recs)
	if err != nil {
		d.Error, status = err.Error(), http.StatusBadRequest
	} else {
		recs = query.Apply(recs, now)
	}
	names := append([]string{"status", "started", "duration"}, keyParams(recs)...)
	for _, m := range keyMetrics {
		for _, rec := range recs {
			if _, ok := rec.FinalMetrics[m]; ok {
				names = append(names, runtable.MetricPrefix+m)
				break
			}
		}
	}
	cols, err := runtable.ParseColumns(names, recs)
	if err != nil { // the names come from the records themselves
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	for _, c := range cols {
		rc := runsColumn{Name: c.Name, Header: strings.ToLower(c.Header()), Num: c.Metric != "" || c.Name == "duration"}
		next := c.Name
		switch d.Sort {
		case c.Name:
			next, rc.Arrow = "-"+c.Name, "▲"
		case "-" + c.Name:
			rc.Arrow = "▼"
		}
		v := url.Values{"sort": {next}, "filter": filters}
		rc.SortURL = "/runs?" + v.Encode()
		d.Columns = append(d.Columns, rc)
	}
	for _, rec := range recs {
		row := runsRow{RunID: rec.RunID, Status: string(rec.Status)}
		for _, c := range cols {
			row.Cells = append(row.Cells, c.Get(rec, now))
		}
		d.Rows = append(d.Rows, row)
	}
	s.render(w, status, "runs", "Runs", d)
}

// keyParams picks the params whose values differ between the runs, most
// telling first (training and features settings), at most maxKeyParams.
func keyParams(recs []*tracking.Record) []string {
	c := runtable.Compare(recs, time.Time{})
	var out []string
	for _, p := range c.Params {
		if p.Differs && p.Key != "run_id" {
			out = append(out, p.Key)
		}
	}
	rank := func(k string) int {
		for i, pre := range []string{"train.", "features.", "label.", "collect."} {
			if strings.HasPrefix(k, pre) {
				return i
			}
		}
		return 9
	}
	slices.SortStableFunc(out, func(a, b string) int { return rank(a) - rank(b) })
	out = out[:min(len(out), maxKeyParams)]
	for i, k := range out {
		out[i] = runtable.ParamPrefix + k
	}
	return out
}

// findRun resolves the run of a URL: a directory name listed under the runs
// directory, nothing else (no paths).
func (s *Server) findRun(id string) (*tracking.Record, error) {
	if id == "" || strings.ContainsAny(id, `/\`) || strings.HasPrefix(id, ".") {
		return nil, fmt.Errorf("no run %q", id)
	}
	rec, err := tracking.Load(filepath.Join(s.opts.RunsDir, id))
	if err != nil {
		return nil, fmt.Errorf("no run %q in %s", id, s.opts.RunsDir)
	}
	return rec, nil
}

type compareData struct {
	*runtable.Comparison
	All     bool
	AllURL  string
	Curves  template.HTML
	Differs int
}

func (s *Server) compare(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ids := q["run"]
	if len(ids) < 2 {
		s.fail(w, r, http.StatusBadRequest, errors.New("select two or more runs to compare (compare?run=A&run=B)"))
		return
	}
	var recs []*tracking.Record
	for _, id := range ids {
		rec, err := s.findRun(id)
		if err != nil {
			s.fail(w, r, http.StatusNotFound, err)
			return
		}
		recs = append(recs, rec)
	}
	c := runtable.Compare(recs, s.opts.Now())
	d := compareData{Comparison: c, All: q.Get("all") == "1", Differs: c.DifferingParams()}
	v := url.Values{"run": ids}
	if !d.All {
		v.Set("all", "1")
	}
	d.AllURL = "/compare?" + v.Encode()
	d.Curves = curvesChart("curves", recs)
	s.render(w, http.StatusOK, "compare", "Compare runs", d)
}

// curvesChart overlays the runs' learning curves: validation (solid) and
// training (dashed) error, each run one colour, the best epoch marked.
func curvesChart(id string, recs []*tracking.Record) template.HTML {
	c := LineChart{ID: id, Title: "Learning curves", XLabel: "epoch", YZero: true, XInt: true}
	unit := ""
	for i, rec := range recs {
		name, best, _ := runtable.BestEpoch(rec)
		if name == "" {
			continue
		}
		trainName := "train_" + strings.TrimPrefix(name, "val_")
		if strings.HasSuffix(name, "_loss") {
			unit = "loss (scaled units)"
		} else if unit == "" {
			unit = strings.ToUpper(strings.TrimPrefix(name, "val_")) + " (hours)"
		}
		val := runtable.Curve(rec, name)
		sv := Series{Name: rec.RunID + " " + name, Color: i}
		for j, p := range val {
			sv.X, sv.Y = append(sv.X, float64(p.Step)), append(sv.Y, p.Value)
			if p.Step == best {
				sv.Marks = append(sv.Marks, Mark{Index: j, Label: fmt.Sprintf("best epoch %d", best)})
			}
		}
		c.Series = append(c.Series, sv)
		if tr := runtable.Curve(rec, trainName); len(tr) > 0 {
			st := Series{Name: rec.RunID + " " + trainName, Color: i, Dashed: true}
			for _, p := range tr {
				st.X, st.Y = append(st.X, float64(p.Step)), append(st.Y, p.Value)
			}
			c.Series = append(c.Series, st)
		}
	}
	c.YLabel = unit
	return c.SVG()
}

type runData struct {
	*tracking.Record
	Duration   float64
	Report     string
	Files      map[string]bool
	Stages     template.HTML
	Curves     template.HTML
	HasCurves  bool
	Metrics    []string
	Validation *validationSummary
	ValError   string
	Lineage    []lineageRow
	Sensors    sensorsData
}

// validationSummary is the part of validate's report (validation.json) the
// run page shows, with validate's own types.
type validationSummary struct {
	Schema   string             `json:"schema"`
	Status   validate.Severity  `json:"status"`
	Counts   validate.Counts    `json:"counts"`
	Dataset  validate.Dataset   `json:"dataset"`
	Findings []validate.Finding `json:"findings"`
}

type lineageRow struct {
	Stage           string
	Inputs, Outputs []tracking.File
}

func (s *Server) run(w http.ResponseWriter, r *http.Request) {
	rec, err := s.findRun(r.PathValue("id"))
	if err != nil {
		s.fail(w, r, http.StatusNotFound, err)
		return
	}
	d := runData{Record: rec, Duration: rec.Duration(s.opts.Now()).Seconds(), Files: map[string]bool{}}
	for _, name := range runFiles {
		if st, err := os.Stat(filepath.Join(rec.Dir, name)); err == nil && st.Mode().IsRegular() {
			d.Files[name] = true
		}
	}
	for _, a := range rec.Artifacts {
		if local(a.Path) {
			if _, err := os.Stat(filepath.Join(rec.Dir, a.Path)); err == nil {
				d.Files[a.Path] = true
			}
		}
	}
	var bars []Bar
	for _, st := range rec.Stages {
		bars = append(bars, Bar{Label: st.Name + " (" + string(st.Status) + ")", Value: st.DurationSeconds, Color: stageColor(st.Status)})
		if len(st.Inputs)+len(st.Outputs) > 0 {
			d.Lineage = append(d.Lineage, lineageRow{Stage: st.Name, Inputs: st.Inputs, Outputs: st.Outputs})
		}
	}
	if len(bars) > 0 {
		d.Stages = BarChart("stage-timings", "Stage timings", "s", bars, func(v float64) string { return fmt.Sprintf("%.2f", v) })
	}
	if name, _, _ := runtable.BestEpoch(rec); name != "" {
		d.HasCurves = true
		d.Curves = curvesChart("curves", []*tracking.Record{rec})
	}
	d.Metrics = slices.Sorted(maps.Keys(rec.FinalMetrics))
	if b, err := os.ReadFile(filepath.Join(rec.Dir, "validation.json")); err == nil {
		var v validationSummary
		if err := json.Unmarshal(b, &v); err != nil {
			d.ValError = fmt.Sprintf("validation.json: %v", err)
		} else {
			d.Validation = &v
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		d.ValError = err.Error()
	}
	d.Sensors = loadSensors(rec)
	s.render(w, http.StatusOK, "run", "Run "+rec.RunID, d)
}

func stageColor(st tracking.StageStatus) int {
	switch st {
	case tracking.StageFailed, tracking.StageKilled:
		return 1
	case tracking.StageSkipped:
		return 5
	}
	return 0
}

// local reports whether an artifact path is a relative path inside the run
// directory.
func local(p string) bool {
	return p != "" && filepath.IsLocal(p)
}

// runFile serves a file of a run directory (report.html, its plots, the
// artifacts). os.Root refuses any path that leaves the directory, through
// ".." or a symbolic link.
func (s *Server) runFile(w http.ResponseWriter, r *http.Request) {
	rec, err := s.findRun(r.PathValue("id"))
	if err != nil {
		s.fail(w, r, http.StatusNotFound, err)
		return
	}
	name := r.PathValue("path")
	if !filepath.IsLocal(filepath.FromSlash(name)) {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("no file %q in run %s", name, rec.RunID))
		return
	}
	root, err := os.OpenRoot(rec.Dir)
	if err != nil {
		s.fail(w, r, http.StatusNotFound, err)
		return
	}
	defer root.Close()
	f, err := root.Open(filepath.FromSlash(name))
	if err != nil {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("no file %q in run %s", name, rec.RunID))
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("no file %q in run %s", name, rec.RunID))
		return
	}
	// Files of a run are data, not pages of this app: no scripts, no forms.
	w.Header().Set("Content-Security-Policy", "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'")
	switch strings.ToLower(filepath.Ext(name)) {
	case ".md", ".log", ".yaml", ".yml", ".txt":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	case ".parquet", ".safetensors", ".onnx":
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	http.ServeContent(w, r, st.Name(), st.ModTime(), f)
}
