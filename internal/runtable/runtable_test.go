package runtable

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/tracking"
)

func testRuns() []*tracking.Record {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	end := func(d time.Duration) *time.Time { e := t0.Add(d); return &e }
	return []*tracking.Record{
		{RunID: "a", Status: tracking.StatusFinished, StartTime: t0, EndTime: end(2 * time.Minute),
			Params:       map[string]string{"train.epochs": "20", "train.engine": "fused"},
			FinalMetrics: map[string]tracking.Float{"test_rmse": 11.5, "test_mae": 6}},
		{RunID: "b", Status: tracking.StatusFinished, StartTime: t0.Add(time.Hour), EndTime: end(time.Hour + 30*time.Second),
			Params:       map[string]string{"train.epochs": "3", "train.engine": "fused"},
			FinalMetrics: map[string]tracking.Float{"test_rmse": 16, "test_mae": 9.5}},
		{RunID: "c", Status: tracking.StatusFailed, StartTime: t0.Add(2 * time.Hour), EndTime: end(2*time.Hour + time.Second),
			Params:       map[string]string{"train.epochs": "100"},
			FinalMetrics: map[string]tracking.Float{"test_rmse": tracking.Float(math.NaN())}},
		{RunID: "d", Status: tracking.StatusKilled, StartTime: t0.Add(3 * time.Hour), EndTime: end(3*time.Hour + 45*time.Second)},
	}
}

func ids(recs []*tracking.Record) string {
	var s []string
	for _, r := range recs {
		s = append(s, r.RunID)
	}
	return strings.Join(s, ",")
}

func TestQuery(t *testing.T) {
	recs := testRuns()
	now := time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		filters []string
		sort    string
		want    string
	}{
		{nil, "", "a,b,c,d"},
		{[]string{"metric.test_rmse<12"}, "", "a"},
		{[]string{"metric.test_rmse<=16"}, "", "a,b"},
		{[]string{"metric.test_rmse>=11.5", "metric.test_mae<9"}, "", "a"},
		{[]string{"metric.test_rmse!=16"}, "", "a,c,d"}, // NaN and missing pass only !=
		{[]string{"param.train.epochs>10"}, "", "a,c"},  // numerically, not "3" > "10" as text
		{[]string{"param.train.engine=fused"}, "", "a,b"},
		{[]string{"status!=finished"}, "", "c,d"},
		{[]string{"duration>1m"}, "", "a"},
		{[]string{"duration<=30"}, "", "b,c"},
		{nil, "metric.test_rmse", "a,b,c,d"},  // NaN and missing last
		{nil, "-metric.test_rmse", "b,a,c,d"}, // ... in both directions
		{nil, "-param.train.epochs", "c,a,b,d"},
		{nil, "status,-started", "c,b,a,d"}, // failed < finished < killed, then newest first
	} {
		q, err := ParseQuery(tc.filters, tc.sort, recs)
		if err != nil {
			t.Fatalf("%v %q: %v", tc.filters, tc.sort, err)
		}
		if got := ids(q.Apply(recs, now)); got != tc.want {
			t.Errorf("filters %v sort %q: got %s, want %s", tc.filters, tc.sort, got, tc.want)
		}
	}
}

func TestQueryErrors(t *testing.T) {
	recs := testRuns()
	for _, tc := range []struct {
		filter, sort, want string
	}{
		{"metric.test_rmes<1", "", `did you mean "metric.test_rmse"`},
		{"param.train.epoch>1", "", `no run has the param "train.epoch" (did you mean "param.train.epochs"?)`},
		{"stauts=ok", "", `did you mean "status"`},
		{"metric.test_rmse~1", "", "want COLUMN OP VALUE"},
		{"<3", "", "want COLUMN OP VALUE"},
		{"metric.test_rmse<x", "", `compares with a number, not "x"`},
		{"duration>soon", "", "neither seconds nor a Go duration"},
		{"", "-metric.nope", `sort: column "metric.nope"`},
	} {
		var filters []string
		if tc.filter != "" {
			filters = []string{tc.filter}
		}
		_, err := ParseQuery(filters, tc.sort, recs)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q %q: error %v, want %q", tc.filter, tc.sort, err, tc.want)
		}
	}
}

func TestCompare(t *testing.T) {
	recs := testRuns()[:3]
	recs[0].Metrics = []tracking.Metric{{Name: "val_rmse", Step: 1, Value: 20}, {Name: "val_rmse", Step: 2, Value: 12}, {Name: "val_rmse", Step: 3, Value: 14}}
	c := Compare(recs, time.Now())
	if h := c.Runs[0]; h.BestEpoch != 2 || h.Epochs != 3 || h.CurveMetric != "val_rmse" {
		t.Errorf("best epoch: %+v", h)
	}
	diff := map[string]bool{}
	for _, p := range c.Params {
		diff[p.Key] = p.Differs
	}
	if !diff["train.epochs"] || !diff["train.engine"] { // engine: missing in c differs
		t.Errorf("differs: %v", diff)
	}
	if n := c.DifferingParams(); n != 2 {
		t.Errorf("DifferingParams = %d", n)
	}
	for _, m := range c.Metrics {
		if m.Key != "test_rmse" {
			continue
		}
		if m.Deltas[0] != nil || *m.Deltas[1] != 4.5 || !math.IsNaN(float64(*m.Deltas[2])) {
			t.Errorf("test_rmse deltas: %v %v %v", m.Deltas[0], m.Deltas[1], m.Deltas[2])
		}
	}
}
