package tracking

import (
	"math"
	"slices"
	"time"
)

// Summary is one line of `modax-ml runs list`.
type Summary struct {
	RunID           string           `json:"run_id"`
	Name            string           `json:"name,omitempty"`
	Status          Status           `json:"status"`
	StartTime       time.Time        `json:"start_time"`
	EndTime         *time.Time       `json:"end_time,omitempty"`
	DurationSeconds float64          `json:"duration_s"`
	Stages          map[string]int   `json:"stages"`
	Deploy          string           `json:"deploy,omitempty"`
	FinalMetrics    map[string]Float `json:"final_metrics,omitempty"`
	// Tracking is "off", "synced" or "pending".
	Tracking    string `json:"tracking"`
	MLflowRunID string `json:"mlflow_run_id,omitempty"`
	Dir         string `json:"dir"`
}

// Summarize condenses a record (as loaded, with its Dir); now dates a
// running run.
func Summarize(r *Record, now time.Time) Summary {
	s := Summary{
		RunID: r.RunID, Name: r.Name, Status: r.Status, StartTime: r.StartTime, EndTime: r.EndTime,
		DurationSeconds: r.Duration(now).Seconds(), Stages: map[string]int{}, FinalMetrics: r.FinalMetrics,
		Tracking: r.TrackingState(), Dir: r.Dir,
	}
	for st, n := range r.StageCounts() {
		s.Stages[string(st)] = n
	}
	if r.Deploy != nil {
		s.Deploy = r.Deploy.Decision
	}
	if r.MLflow != nil {
		s.MLflowRunID = r.MLflow.RunID
	}
	return s
}

// Series summarises one metric series.
type Series struct {
	Name      string `json:"name"`
	Points    int    `json:"points"`
	FirstStep int64  `json:"first_step"`
	LastStep  int64  `json:"last_step"`
	First     Float  `json:"first"`
	Last      Float  `json:"last"`
	Min       Float  `json:"min"`
	Max       Float  `json:"max"`
}

// Series summarises the metric series of the record, by name. NaN values
// are skipped by Min and Max.
func (r *Record) Series() []Series {
	idx := map[string]int{}
	var out []Series
	for _, m := range r.Metrics {
		i, ok := idx[m.Name]
		if !ok {
			i = len(out)
			idx[m.Name] = i
			out = append(out, Series{Name: m.Name, FirstStep: m.Step, First: m.Value, Min: Float(math.NaN()), Max: Float(math.NaN())})
		}
		s := &out[i]
		s.Points++
		s.LastStep, s.Last = m.Step, m.Value
		v := float64(m.Value)
		if !math.IsNaN(v) {
			if math.IsNaN(float64(s.Min)) || v < float64(s.Min) {
				s.Min = m.Value
			}
			if math.IsNaN(float64(s.Max)) || v > float64(s.Max) {
				s.Max = m.Value
			}
		}
	}
	slices.SortFunc(out, func(a, b Series) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}
