package evaluate

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/modax/modax-ml/internal/dataset"
)

// SplitMetrics are the metrics of one split (the "splits" object of
// metrics.json). RUL metrics are in hours, on the RUL the model was trained
// for (capped at the horizon); the _raw ones compare the same predictions with
// the uncapped RUL, on the samples where it is known (not censored).
type SplitMetrics struct {
	N           int `json:"n"`            // samples with a known true RUL
	NUnlabelled int `json:"n_unlabelled"` // predictions without truth (ignored)
	Devices     int `json:"devices"`

	MAE       Float `json:"mae"`
	RMSE      Float `json:"rmse"`
	R2        Float `json:"r2"`         // null when the truth is constant
	Bias      Float `json:"bias"`       // mean(pred − true)
	Score     Float `json:"score"`      // PHM08 score, a sum over the samples
	ScoreMean Float `json:"score_mean"` // score / n
	EarlyRate Float `json:"early_rate"` // pred < true
	LateRate  Float `json:"late_rate"`  // pred > true
	ExactRate Float `json:"exact_rate"` // pred == true

	NRaw     int   `json:"n_raw"`
	MAERaw   Float `json:"mae_raw"`
	RMSERaw  Float `json:"rmse_raw"`
	R2Raw    Float `json:"r2_raw"`
	BiasRaw  Float `json:"bias_raw"`
	ScoreRaw Float `json:"score_raw"`

	// CriticalN samples have a true RUL below the critical threshold;
	// CriticalAccuracy is the share of them predicted within the tolerance
	// (null when CriticalN is 0).
	CriticalN        int   `json:"critical_n"`
	CriticalAccuracy Float `json:"critical_accuracy"`

	Classification *Classification `json:"classification"`

	// Alerts are the critical alerts' lead time and false alarms.
	Alerts *AlertMetrics `json:"alerts"`

	// RULBuckets is the error broken down by true-RUL bucket (ErrorByBucket
	// with the model's RUL cap, horizon_hours).
	RULBuckets []BucketMetrics `json:"rul_buckets"`

	// Intervals is the measured coverage of the prediction intervals, one
	// entry per level (empty without intervals).
	Intervals []IntervalMetrics `json:"intervals"`
}

// DeviceMetrics are the metrics of one device in one split (samples with a
// known true RUL only).
type DeviceMetrics struct {
	Tenant string `json:"tenant_id"`
	Device string `json:"device_id"`
	Split  string `json:"split"`
	N      int    `json:"n"`
	Lives  int    `json:"lives"`
	MAE    Float  `json:"mae"`
	RMSE   Float  `json:"rmse"`
	Bias   Float  `json:"bias"`
	Score  Float  `json:"score"`
	// The device's last window with a known truth: what a maintenance planner
	// would have been told at the end of the data.
	LastWindowEnd string `json:"last_window_end,omitempty"`
	LastRULTrue   Float  `json:"last_rul_true"`
	LastRULPred   Float  `json:"last_rul_pred"`
}

// NaNError reports a prediction that is not a finite number.
type NaNError struct {
	Row    int // 1-based row of the predictions file
	Device string
	Split  string
	Value  float64
}

func (e *NaNError) Error() string {
	return fmt.Sprintf("row %d (device %s, split %s): rul_pred is %v; the model produced a non-finite prediction (diverged training or inputs outside the scaler's range?)", e.Row, e.Device, e.Split, e.Value)
}

// CheckFinite returns a *NaNError for the first prediction that is NaN or ±Inf.
func CheckFinite(ps []dataset.Prediction) error {
	for i := range ps {
		v := ps[i].RULPred
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return &NaNError{Row: i + 1, Device: ps[i].Device, Split: ps[i].Split, Value: v}
		}
		if t := ps[i].RULTrue; math.IsInf(t, 0) {
			return fmt.Errorf("row %d (device %s): rul_true is %v", i+1, ps[i].Device, t)
		}
	}
	return nil
}

// splitOrder orders split names: test, val, train, then others by name.
func splitOrder(a, b string) int {
	rank := func(s string) int {
		switch s {
		case dataset.SplitTest:
			return 0
		case dataset.SplitVal:
			return 1
		case dataset.SplitTrain:
			return 2
		}
		return 3
	}
	if c := cmp.Compare(rank(a), rank(b)); c != 0 {
		return c
	}
	return cmp.Compare(a, b)
}

// Splits returns the split names of ps in report order (test, val, train, …).
func Splits(ps []dataset.Prediction) []string {
	seen := map[string]bool{}
	var out []string
	for i := range ps {
		if !seen[ps[i].Split] {
			seen[ps[i].Split] = true
			out = append(out, ps[i].Split)
		}
	}
	slices.SortFunc(out, splitOrder)
	return out
}

// ComputeSplit computes the metrics of the predictions of one split. ps must
// be finite (CheckFinite).
func ComputeSplit(ps []dataset.Prediction, th dataset.Thresholds, tol float64) *SplitMetrics {
	var truth, pred, rawT, rawP []float64
	var ht, hp []dataset.Health
	devices := map[[2]string]bool{}
	m := &SplitMetrics{}
	for i := range ps {
		p := &ps[i]
		devices[[2]string{p.Tenant, p.Device}] = true
		if !p.HasTruth() {
			m.NUnlabelled++
			continue
		}
		truth = append(truth, p.RULTrue)
		pred = append(pred, p.RULPred)
		ht = append(ht, th.Classify(p.RULTrue))
		hp = append(hp, th.Classify(p.RULPred))
		if !math.IsNaN(p.RULRaw) {
			rawT = append(rawT, p.RULRaw)
			rawP = append(rawP, p.RULPred)
		}
	}
	m.Devices = len(devices)
	r := Regress(truth, pred)
	m.N = r.N
	m.MAE, m.RMSE, m.R2, m.Bias, m.Score = Float(r.MAE), Float(r.RMSE), Float(r.R2), Float(r.Bias), Float(r.Score)
	m.ScoreMean = NaN()
	if r.N > 0 {
		m.ScoreMean = Float(r.Score / float64(r.N))
	}
	m.EarlyRate, m.LateRate, m.ExactRate = Float(r.EarlyRate), Float(r.LateRate), Float(r.ExactRate)
	raw := Regress(rawT, rawP)
	m.NRaw = raw.N
	m.MAERaw, m.RMSERaw, m.R2Raw, m.BiasRaw, m.ScoreRaw = Float(raw.MAE), Float(raw.RMSE), Float(raw.R2), Float(raw.Bias), Float(raw.Score)
	acc, n := CriticalAccuracy(truth, pred, th.Critical, tol)
	m.CriticalAccuracy, m.CriticalN = Float(acc), n
	c := Classify(ht, hp)
	m.Classification = &c
	m.Alerts = ComputeAlerts(ps, th)
	return m
}

// labelled returns the true and predicted RUL of the predictions with a
// known truth.
func labelled(ps []dataset.Prediction) (truth, pred []float64) {
	for i := range ps {
		if ps[i].HasTruth() {
			truth = append(truth, ps[i].RULTrue)
			pred = append(pred, ps[i].RULPred)
		}
	}
	return truth, pred
}

// series is one device's labelled predictions in one split, in time order.
type series struct {
	tenant, device, split string
	life                  []int32
	end                   []int64
	truth, pred           []float64
	// lo and hi are the prediction interval of each window (NaN: none).
	lo, hi []float64
}

// deviceSeries groups the labelled predictions by split and device, each in
// (life, time) order; the groups are ordered by split, tenant, device.
func deviceSeries(ps []dataset.Prediction) []*series {
	type key struct{ split, tenant, device string }
	idx := map[key][]int{}
	var keys []key
	for i := range ps {
		p := &ps[i]
		if !p.HasTruth() {
			continue
		}
		k := key{p.Split, p.Tenant, p.Device}
		if _, ok := idx[k]; !ok {
			keys = append(keys, k)
		}
		idx[k] = append(idx[k], i)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(splitOrder(a.split, b.split), cmp.Compare(a.tenant, b.tenant), cmp.Compare(a.device, b.device))
	})
	out := make([]*series, 0, len(keys))
	for _, k := range keys {
		rows := idx[k]
		slices.SortStableFunc(rows, func(a, b int) int {
			return cmp.Or(cmp.Compare(ps[a].LifeID, ps[b].LifeID), cmp.Compare(ps[a].End, ps[b].End))
		})
		s := &series{tenant: k.tenant, device: k.device, split: k.split}
		for _, i := range rows {
			s.life = append(s.life, ps[i].LifeID)
			s.end = append(s.end, ps[i].End)
			s.truth = append(s.truth, ps[i].RULTrue)
			s.pred = append(s.pred, ps[i].RULPred)
			lo, hi := math.NaN(), math.NaN()
			if ps[i].HasInterval() {
				lo, hi = ps[i].Lower, ps[i].Upper
			}
			s.lo, s.hi = append(s.lo, lo), append(s.hi, hi)
		}
		out = append(out, s)
	}
	return out
}

// lastByTime returns the index of the latest window of s.
func (s *series) lastByTime() int {
	last := 0
	for i := range s.end {
		if s.end[i] >= s.end[last] {
			last = i
		}
	}
	return last
}

func (s *series) metrics() DeviceMetrics {
	r := Regress(s.truth, s.pred)
	d := DeviceMetrics{Tenant: s.tenant, Device: s.device, Split: s.split, N: r.N,
		MAE: Float(r.MAE), RMSE: Float(r.RMSE), Bias: Float(r.Bias), Score: Float(r.Score),
		LastRULTrue: NaN(), LastRULPred: NaN()}
	lives := map[int32]bool{}
	for _, l := range s.life {
		lives[l] = true
	}
	d.Lives = len(lives)
	if len(s.end) > 0 {
		i := s.lastByTime()
		d.LastWindowEnd = dataset.TimeOf(s.end[i]).Format("2006-01-02T15:04:05Z07:00")
		d.LastRULTrue, d.LastRULPred = Float(s.truth[i]), Float(s.pred[i])
	}
	return d
}

// ComputeDevices computes the per-device breakdown of ps (labelled samples),
// ordered by split (test, val, train), tenant and device.
func ComputeDevices(ps []dataset.Prediction) []DeviceMetrics {
	ss := deviceSeries(ps)
	out := make([]DeviceMetrics, len(ss))
	for i, s := range ss {
		out[i] = s.metrics()
	}
	return out
}
