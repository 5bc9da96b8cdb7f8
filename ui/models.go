package ui

import (
	"html/template"
	"maps"
	"math"
	"net/http"
	"slices"

	"github.com/modax/modax-ml/deploy"
	"github.com/modax/modax-ml/internal/tracking"
)

type modelsData struct {
	Dir     string
	Error   string
	List    *deploy.ListResult
	Rows    []modelRow
	Chart   template.HTML
	Gates   []gateRow
	History []deploy.Event
}

type modelRow struct {
	deploy.VersionInfo
	RunID string
	// Gate is the deploy decision of the run that published the version.
	Gate *tracking.Deploy
}

type gateRow struct {
	RunID string
	*tracking.Deploy
	Metrics []string
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	d := modelsData{Dir: s.opts.ModelsDir}
	recs, _ := s.records()
	byID := map[string]*tracking.Record{}
	for _, rec := range recs {
		byID[rec.RunID] = rec
		if dep := rec.Deploy; dep != nil && dep.Decision != tracking.DeploySkipped {
			d.Gates = append(d.Gates, gateRow{RunID: rec.RunID, Deploy: dep, Metrics: slices.Sorted(maps.Keys(dep.Metrics))})
		}
	}
	list, err := deploy.List(r.Context(), deploy.Options{ModelsDir: s.opts.ModelsDir})
	if err != nil {
		d.Error = err.Error()
	} else {
		d.List = list
		d.History = slices.Clone(list.History)
		slices.Reverse(d.History)
		published := map[string]string{}
		for _, ev := range list.History {
			if ev.Action == "deploy" && ev.RunID != "" {
				published[ev.Version] = ev.RunID
			}
		}
		var bars []Bar
		for _, v := range list.Versions {
			row := modelRow{VersionInfo: v, RunID: published[v.Version]}
			if rec := byID[row.RunID]; rec != nil {
				row.Gate = rec.Deploy
			}
			d.Rows = append(d.Rows, row)
			mae := math.NaN()
			if v.TestMAE != nil {
				mae = *v.TestMAE
			}
			label := v.Version
			if v.Current {
				label += " (served)"
			}
			bars = append(bars, Bar{Label: label, Value: mae, Color: map[bool]int{true: 2, false: 0}[v.Current]})
		}
		if len(bars) > 0 {
			d.Chart = BarChart("versions-mae", "Test MAE by version", "h", bars, fmtHours)
		}
	}
	s.render(w, http.StatusOK, "models", "Models", d)
}
