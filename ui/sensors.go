package ui

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"

	"github.com/modax/modax-ml/evaluate"
	"github.com/modax/modax-ml/features"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/tracking"
)

// sensorsData is the run page's "Which sensors matter" section: evaluate's
// permutation importance (metrics.json's feature_importance) and features'
// health-indicator quality (windows.parquet's modax.health_indicators).
// A run written before either existed has neither; an unreadable file is
// said in the *Error field.
type sensorsData struct {
	Importance      *evaluate.Importance
	ImportanceChart template.HTML
	ImportanceError string
	Health          *features.HealthIndicators
	HealthFile      string
	HealthError     string
}

// loadSensors reads both parts of the section from the run directory.
func loadSensors(rec *tracking.Record) sensorsData {
	var d sensorsData
	d.Importance, d.ImportanceError = readImportance(rec.Dir)
	if d.Importance != nil {
		d.ImportanceChart = evaluate.ImportanceChart("importance-chart", d.Importance)
	}
	d.Health, d.HealthFile, d.HealthError = readHealthIndicators(rec)
	return d
}

// readImportance returns metrics.json's feature_importance, sorted by mean
// RMSE increase (largest first, undefined last); nil when the run has no
// metrics.json or it holds none.
func readImportance(dir string) (*evaluate.Importance, string) {
	b, err := readRunFile(dir, "metrics.json")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ""
	}
	if err != nil {
		return nil, fmt.Sprintf("metrics.json: %v", err)
	}
	var m struct {
		FeatureImportance *evaluate.Importance `json:"feature_importance"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Sprintf("metrics.json: %v", err)
	}
	imp := m.FeatureImportance
	if imp == nil || len(imp.Features) == 0 {
		return nil, ""
	}
	slices.SortStableFunc(imp.Features, func(a, b evaluate.FeatureImportance) int {
		return cmp.Compare(orLowest(float64(b.Mean)), orLowest(float64(a.Mean)))
	})
	return imp, ""
}

// readHealthIndicators returns the modax.health_indicators metadata of the
// run's windows file (windows.parquet in the run directory, else a
// .parquet output of its features stage), sorted by score (the mean of
// monotonicity, trendability and prognosability; undefined last), and the
// file's name. nil when no windows file carries it.
func readHealthIndicators(rec *tracking.Record) (*features.HealthIndicators, string, string) {
	names := []string{"windows.parquet"}
	for _, st := range rec.Stages {
		if st.Name != "features" {
			continue
		}
		for _, o := range st.Outputs {
			if p := filepath.FromSlash(o.Path); local(p) && path.Ext(o.Path) == ".parquet" && !slices.Contains(names, p) {
				names = append(names, p)
			}
		}
	}
	for _, name := range names {
		if !inRunDir(rec.Dir, name) {
			continue
		}
		r, err := dataset.Open(filepath.Join(rec.Dir, name), dataset.KindWindows)
		if err != nil {
			continue // not there, or not a windows file (stats.parquet)
		}
		var h features.HealthIndicators
		ok, err := r.Meta().Get(dataset.MetaHealthIndicators, &h)
		r.Close()
		if err != nil {
			return nil, name, fmt.Sprintf("%s: %v", name, err)
		}
		if !ok {
			continue
		}
		slices.SortStableFunc(h.Features, func(a, b features.FeatureQuality) int {
			return cmp.Compare(orLowestPtr(b.Score), orLowestPtr(a.Score))
		})
		return &h, name, ""
	}
	return nil, "", ""
}

// readRunFile reads a file of a run directory through os.Root (no path
// leaves the directory, by ".." or a symbolic link).
func readRunFile(dir, name string) ([]byte, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return root.ReadFile(name)
}

// inRunDir reports whether name is a regular file inside the run directory
// (os.Root: not through ".." or a symbolic link out of it).
func inRunDir(dir, name string) bool {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return false
	}
	defer root.Close()
	st, err := root.Stat(name)
	return err == nil && st.Mode().IsRegular()
}

func orLowest(v float64) float64 {
	if math.IsNaN(v) {
		return math.Inf(-1)
	}
	return v
}

func orLowestPtr(p *float64) float64 {
	if p == nil {
		return math.Inf(-1)
	}
	return *p
}
