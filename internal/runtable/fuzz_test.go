package runtable

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/tracking"
)

// FuzzQuery feeds arbitrary `runs --filter`, `--sort` and `--columns` values
// to their parsers and applies what they accept to a set of runs: an error
// naming the flag value or a result, never a panic.
func FuzzQuery(f *testing.F) {
	for _, s := range [][3]string{
		{"metric.test_rmse<12", "-metric.test_rmse", "run_id,metric.test_rmse"},
		{"param.train.epochs>=10", "status,-started", "param.train.epochs,duration"},
		{"duration>1m30s", "", "status,stages"},
		{"status!=finished", "+param.train.engine", ""},
		{"<3", "-", ","},
		{"metric.test_rmse=NaN", "metric.test_mae", "metric.test_mae"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	recs := testRuns()
	now := time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, filter, sort, columns string) {
		var filters []string
		if filter != "" {
			filters = strings.Split(filter, "\n")
		}
		if q, err := ParseQuery(filters, sort, recs); err == nil {
			q.Apply(recs, now)
		}
		if columns == "" {
			return
		}
		cols, err := ParseColumns(strings.Split(columns, ","), recs)
		if err != nil {
			return
		}
		for _, c := range cols {
			_ = c.Header()
			for _, r := range recs {
				c.Get(r, now)
			}
		}
	})
}

// FuzzRunRecord feeds arbitrary run.json files to the run-record reader and
// to everything `runs`, `runs show` and `runs compare` compute from a record:
// an error naming the file or a record every column can be read from, never a
// panic.
func FuzzRunRecord(f *testing.F) {
	for _, r := range testRuns() {
		r.Schema = tracking.RecordSchema
		r.Metrics = []tracking.Metric{{Name: "train_loss", Step: 1, Value: 2}, {Name: "val_rmse", Step: 1, Value: tracking.Float(math.NaN())}, {Name: "val_rmse", Step: 2, Value: 3}}
		r.Stages = []tracking.Stage{{Name: "train", Status: tracking.StageRan, DurationSeconds: 3}}
		r.MLflow = &tracking.MLflowState{TrackingURI: "http://x", MetricsSent: 1, FinalSent: map[string]tracking.Float{"test_rmse": 1}}
		r.Deploy = &tracking.Deploy{Decision: tracking.DeployDeployed}
		b, err := json.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"schema":"` + tracking.RecordSchema + `","run_id":"x","end_time":null,"final_metrics":{"a":"NaN","b":"-Infinity"}}`))
	dir := f.TempDir()
	others := testRuns()
	now := time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, tracking.RecordFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := tracking.Load(dir)
		if err != nil {
			return
		}
		r.Duration(now)
		r.StageCounts()
		r.TrackingState()
		recs := append([]*tracking.Record{r}, others...)
		cols, err := ParseColumns(KnownColumns(recs), recs)
		if err != nil {
			t.Fatalf("known columns: %v", err)
		}
		for _, c := range cols {
			c.Get(r, now)
		}
		FormatStages(r.StageCounts())
		Compare(recs[:2], now)
		BestEpoch(r)
		for _, name := range SeriesNames(recs) {
			Curve(r, name)
		}
		q, err := ParseQuery([]string{"metric.test_rmse<12"}, "-started,status", recs)
		if err != nil {
			t.Fatal(err)
		}
		q.Apply(recs, now)
	})
}
