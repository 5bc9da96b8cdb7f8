package evaluate

import (
	"cmp"
	"math"
	"slices"

	"github.com/modax/modax-ml/internal/dataset"
)

// AlertMetrics measure the model's critical alerts in one split, as a
// maintenance planner would meet them: an alert is a window whose predicted
// RUL is below the critical threshold (predicted class critical).
//
//   - A failing life is a device life whose windows reach the critical zone
//     (true raw RUL < critical hours): the model had the chance to warn.
//   - Its lead time is the true (raw) RUL at its first alert raised while the
//     device was really degrading (true RUL < warning hours): how long before
//     the failure the model first said "critical". A failing life with no
//     such alert was never alerted.
//   - A false alarm is the onset of an alert (an alert window after a
//     non-alert window, or the life's first window) while the true class is
//     normal (true RUL ≥ warning hours), counted over every life; per
//     device-day divides by the days the lives' windows span.
type AlertMetrics struct {
	CriticalHours float64 `json:"critical_hours"`
	WarningHours  float64 `json:"warning_hours"`
	// Lives have at least one window with a known truth; FailingLives of
	// them reach the critical zone.
	Lives        int `json:"lives"`
	FailingLives int `json:"failing_lives"`
	Alerted      int `json:"alerted"`
	NeverAlerted int `json:"never_alerted"`
	// NeverAlertedShare is NeverAlerted / FailingLives (null without
	// failing lives).
	NeverAlertedShare Float `json:"never_alerted_share"`
	// Lead times over the alerted failing lives, hours (null when none).
	LeadTimeMean   Float `json:"lead_time_mean_hours"`
	LeadTimeMedian Float `json:"lead_time_median_hours"`
	LeadTimeMin    Float `json:"lead_time_min_hours"`
	FalseAlarms    int   `json:"false_alarms"`
	DeviceDays     Float `json:"device_days"`
	// FalseAlarmsPerDeviceDay is FalseAlarms / DeviceDays (null when the
	// windows span no time).
	FalseAlarmsPerDeviceDay Float `json:"false_alarms_per_device_day"`
	// PerLife is every failing life's lead time (null: never alerted).
	PerLife []LifeAlert `json:"per_life"`
}

// LifeAlert is the first critical alert of one failing life.
type LifeAlert struct {
	Tenant        string `json:"tenant_id"`
	Device        string `json:"device_id"`
	LifeID        int32  `json:"life_id"`
	LeadTimeHours Float  `json:"lead_time_hours"`
	// AlertAt is the end of the alerting window ("" when never alerted).
	AlertAt string `json:"alert_at,omitempty"`
}

// rawTruth is the true time to failure of p: the raw RUL where known, else
// the (capped) label.
func rawTruth(p *dataset.Prediction) float64 {
	if !math.IsNaN(p.RULRaw) {
		return p.RULRaw
	}
	return p.RULTrue
}

// ComputeAlerts computes the alert metrics of one split's predictions
// (windows without a known truth are left out).
func ComputeAlerts(ps []dataset.Prediction, th dataset.Thresholds) *AlertMetrics {
	a := &AlertMetrics{CriticalHours: th.Critical, WarningHours: th.Warning, PerLife: []LifeAlert{}}
	type key struct {
		tenant, device string
		life           int32
	}
	lives := map[key][]int{}
	var keys []key
	for i := range ps {
		if !ps[i].HasTruth() {
			continue
		}
		k := key{ps[i].Tenant, ps[i].Device, ps[i].LifeID}
		if _, ok := lives[k]; !ok {
			keys = append(keys, k)
		}
		lives[k] = append(lives[k], i)
	}
	slices.SortFunc(keys, func(x, y key) int {
		return cmp.Or(cmp.Compare(x.tenant, y.tenant), cmp.Compare(x.device, y.device), cmp.Compare(x.life, y.life))
	})
	a.Lives = len(keys)
	var leads []float64
	var micros int64
	for _, k := range keys {
		rows := lives[k]
		slices.SortStableFunc(rows, func(x, y int) int { return cmp.Compare(ps[x].End, ps[y].End) })
		micros += ps[rows[len(rows)-1]].End - ps[rows[0]].End
		failing := false
		lead := LifeAlert{Tenant: k.tenant, Device: k.device, LifeID: k.life, LeadTimeHours: NaN()}
		prevAlert := false
		for _, i := range rows {
			p := &ps[i]
			alert := p.RULPred < th.Critical
			trueClass := th.Classify(p.RULTrue)
			if rawTruth(p) < th.Critical {
				failing = true
			}
			if alert && !prevAlert && trueClass == dataset.Normal {
				a.FalseAlarms++
			}
			if alert && trueClass != dataset.Normal && !lead.LeadTimeHours.Valid() {
				lead.LeadTimeHours = Float(rawTruth(p))
				lead.AlertAt = dataset.TimeOf(p.End).Format("2006-01-02T15:04:05Z07:00")
			}
			prevAlert = alert
		}
		if !failing {
			continue
		}
		a.FailingLives++
		if lead.LeadTimeHours.Valid() {
			a.Alerted++
			leads = append(leads, float64(lead.LeadTimeHours))
		} else {
			a.NeverAlerted++
		}
		a.PerLife = append(a.PerLife, lead)
	}
	a.NeverAlertedShare, a.LeadTimeMean, a.LeadTimeMedian, a.LeadTimeMin = NaN(), NaN(), NaN(), NaN()
	if a.FailingLives > 0 {
		a.NeverAlertedShare = Float(float64(a.NeverAlerted) / float64(a.FailingLives))
	}
	if len(leads) > 0 {
		var sum float64
		for _, l := range leads {
			sum += l
		}
		slices.Sort(leads)
		a.LeadTimeMean, a.LeadTimeMin = Float(sum/float64(len(leads))), Float(leads[0])
		if n := len(leads); n%2 == 1 {
			a.LeadTimeMedian = Float(leads[n/2])
		} else {
			a.LeadTimeMedian = Float((leads[n/2-1] + leads[n/2]) / 2)
		}
	}
	a.DeviceDays = Float(float64(micros) / 86400e6)
	a.FalseAlarmsPerDeviceDay = NaN()
	if micros > 0 {
		a.FalseAlarmsPerDeviceDay = Float(float64(a.FalseAlarms) / float64(a.DeviceDays))
	}
	return a
}
