package evaluate

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
)

// life makes hourly windows of one device life from (true raw RUL,
// predicted RUL) pairs; the label is capped at 100 h.
func life(device string, id int32, start time.Time, truth, pred []float64) []dataset.Prediction {
	var out []dataset.Prediction
	for i := range truth {
		out = append(out, dataset.Prediction{Device: device, LifeID: id, Split: dataset.SplitTest,
			End: dataset.Micros(start.Add(time.Duration(i) * time.Hour)), RULRaw: truth[i], RULTrue: math.Min(truth[i], 100), RULPred: pred[i]})
	}
	return out
}

// TestComputeAlertsHand checks lead times, never-alerted and false alarms
// against values worked out by hand (thresholds 10/50 h).
func TestComputeAlertsHand(t *testing.T) {
	var ps []dataset.Prediction
	// a: fails; first alert (pred 8 < 10) at true 20 h (warning): lead 20 h.
	ps = append(ps, life("a", 0, t0, []float64{30, 20, 12, 8, 4, 0}, []float64{40, 8, 9, 5, 2, 1})...)
	// b: fails; its only alert (pred 5) comes at true 60 h (normal): a false
	// alarm, and no alert while degrading: never alerted.
	ps = append(ps, life("b", 0, t0, []float64{60, 40, 9, 2}, []float64{5, 30, 30, 30})...)
	// c: never reaches the critical zone; alerts at 200 h, off, on again at
	// 180 h: two false-alarm onsets (the second window still alerting is
	// the same alarm).
	ps = append(ps, life("c", 0, t0, []float64{200, 190, 185, 180, 170}, []float64{3, 4, 60, 2, 60})...)
	// a's second life fails with the alert at true 9 h (critical): lead 9 h;
	// its alert at true 70 h (normal) before that is a false alarm.
	ps = append(ps, life("a", 1, t0.Add(24*time.Hour), []float64{70, 45, 9, 3}, []float64{6, 20, 7, 1})...)
	// A window without truth is ignored.
	ps = append(ps, dataset.Prediction{Device: "d", Split: dataset.SplitTest, RULTrue: math.NaN(), RULRaw: math.NaN(), RULPred: 1})

	a := ComputeAlerts(ps, dataset.DefaultThresholds)
	if a.Lives != 4 || a.FailingLives != 3 || a.Alerted != 2 || a.NeverAlerted != 1 {
		t.Errorf("lives %d failing %d alerted %d never %d, want 4 3 2 1", a.Lives, a.FailingLives, a.Alerted, a.NeverAlerted)
	}
	near(t, "never alerted share", float64(a.NeverAlertedShare), 1.0/3)
	near(t, "lead mean", float64(a.LeadTimeMean), (20+9)/2.0)
	near(t, "lead median", float64(a.LeadTimeMedian), (9+20)/2.0) // two values: their mean
	near(t, "lead min", float64(a.LeadTimeMin), 9)
	// False alarms: b at 60 h, c at 200 h and 180 h, a/1 at 70 h.
	if a.FalseAlarms != 4 {
		t.Errorf("false alarms = %d, want 4", a.FalseAlarms)
	}
	// Spans: a/0 5 h, b 3 h, c 4 h, a/1 3 h = 15 h = 0.625 days.
	near(t, "device days", float64(a.DeviceDays), 15.0/24)
	near(t, "per device-day", float64(a.FalseAlarmsPerDeviceDay), 4/(15.0/24))
	want := []struct {
		device string
		life   int32
		lead   float64
	}{{"a", 0, 20}, {"a", 1, 9}, {"b", 0, math.NaN()}}
	if len(a.PerLife) != len(want) {
		t.Fatalf("per life %+v", a.PerLife)
	}
	for i, w := range want {
		got := a.PerLife[i]
		if got.Device != w.device || got.LifeID != w.life {
			t.Errorf("per_life[%d] = %+v, want %s/%d", i, got, w.device, w.life)
		}
		near(t, "lead "+w.device, float64(got.LeadTimeHours), w.lead)
	}
	if a.PerLife[0].AlertAt != "2024-03-01T01:00:00Z" || a.PerLife[2].AlertAt != "" {
		t.Errorf("alert_at %q / %q", a.PerLife[0].AlertAt, a.PerLife[2].AlertAt)
	}

	// No failing lives, a single window: everything undefined, nothing NaN
	// in JSON.
	one := ComputeAlerts(life("x", 0, t0, []float64{80}, []float64{70}), dataset.DefaultThresholds)
	if one.FailingLives != 0 || one.NeverAlertedShare.Valid() || one.LeadTimeMedian.Valid() || one.FalseAlarmsPerDeviceDay.Valid() || one.DeviceDays != 0 {
		t.Errorf("single window: %+v", one)
	}
}

// TestRunAlerts: metrics.json and both reports carry the alert metrics of
// every split, the numbers ComputeAlerts gives for the split's rows.
func TestRunAlerts(t *testing.T) {
	ps := fleet(4, 5, 40, dataset.SplitTest, dataset.SplitVal)
	f := writeFixture(t, ps, nil)
	o := f.opts()
	o.NoPlots = true
	res, err := Run(context.Background(), testEnv(), o)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Splits map[string]struct {
			Alerts map[string]json.RawMessage `json:"alerts"`
		} `json:"splits"`
	}
	b, _ := os.ReadFile(o.Metrics)
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"failing_lives", "never_alerted_share", "lead_time_mean_hours", "lead_time_median_hours", "false_alarms", "device_days", "false_alarms_per_device_day", "per_life"} {
		if _, ok := doc.Splits["test"].Alerts[k]; !ok {
			t.Errorf("splits.test.alerts.%s missing", k)
		}
	}
	var test []dataset.Prediction
	for _, p := range ps {
		if p.Split == dataset.SplitTest {
			test = append(test, p)
		}
	}
	want := ComputeAlerts(test, dataset.DefaultThresholds)
	got := res.Splits["test"].Alerts
	// Every device's life runs to failure (true RUL 0): five failing lives.
	if got.FailingLives != 5 || got.FailingLives != want.FailingLives || got.FalseAlarms != want.FalseAlarms || len(got.PerLife) != 5 {
		t.Errorf("alerts = %+v, want %+v", got, want)
	}
	near(t, "lead median", float64(got.LeadTimeMedian), float64(want.LeadTimeMedian))
	// 40 windows 3 h apart: 117 h per life, five lives.
	near(t, "device days", float64(got.DeviceDays), 5*117.0/24)
	md, _ := os.ReadFile(o.Report)
	html, _ := os.ReadFile(o.HTML)
	if !strings.Contains(string(md), "## Critical alerts") || !strings.Contains(string(md), "| test | 5 | ") {
		t.Errorf("report.md lacks the alert table")
	}
	if !strings.Contains(string(html), `<h3 id="alerts">`) || !strings.Contains(string(html), `<tr><td>val</td><td class="n">5</td>`) {
		t.Errorf("report.html lacks the alert table")
	}
}
