package evaluate

import (
	"fmt"
	"math"

	"github.com/modax/modax-ml/internal/dataset"
)

// The metric functions below take the true and predicted RUL in hours as two
// slices of equal length (a programming error otherwise: they panic). The
// values must be finite; Run rejects NaN and ±Inf predictions before calling
// them. An undefined result (no samples, constant truth for R², no critical
// samples) is NaN, which metrics.json writes as null.

// Regression is the error of predictions against truth, in hours.
type Regression struct {
	N    int
	MAE  float64 // mean |pred − true|
	RMSE float64 // sqrt(mean (pred − true)²)
	// R2 is 1 − Σ(true−pred)² / Σ(true−mean(true))². It is NaN when the truth
	// is constant (or n < 2): the ratio divides by zero. scikit-learn's
	// r2_score returns 1.0 or 0.0 there instead (force_finite); we refuse to
	// invent a number.
	R2   float64
	Bias float64 // mean(pred − true): > 0 predicts too much life on average
	// Score is the PHM08 / NASA asymmetric score (ScorePHM08).
	Score float64
	// EarlyRate is the share of predictions below the truth (pred < true:
	// the model expects the failure before it happens, the safe side) and
	// LateRate the share above it (pred > true: the failure comes before the
	// model expects it). ExactRate is the rest (pred == true).
	EarlyRate, LateRate, ExactRate float64
}

// Regress computes the regression metrics of pred against truth.
func Regress(truth, pred []float64) Regression {
	mustSameLen(truth, pred)
	n := len(truth)
	r := Regression{N: n}
	if n == 0 {
		nan := math.NaN()
		r.MAE, r.RMSE, r.R2, r.Bias, r.Score = nan, nan, nan, nan, nan
		r.EarlyRate, r.LateRate, r.ExactRate = nan, nan, nan
		return r
	}
	var sumAbs, sumSq, sumD, mean float64
	var early, late int
	for i, t := range truth {
		d := pred[i] - t
		sumAbs += math.Abs(d)
		sumSq += d * d
		sumD += d
		mean += t
		switch {
		case d < 0:
			early++
		case d > 0:
			late++
		}
	}
	fn := float64(n)
	mean /= fn
	var ssTot float64
	for _, t := range truth {
		ssTot += (t - mean) * (t - mean)
	}
	r.MAE = sumAbs / fn
	r.RMSE = math.Sqrt(sumSq / fn)
	r.Bias = sumD / fn
	r.R2 = math.NaN()
	if ssTot > 0 {
		r.R2 = 1 - sumSq/ssTot
	}
	r.Score = ScorePHM08(truth, pred)
	r.EarlyRate = float64(early) / fn
	r.LateRate = float64(late) / fn
	r.ExactRate = float64(n-early-late) / fn
	return r
}

// ScorePHM08 is the asymmetric scoring function of the PHM08 data challenge
// (Saxena et al. 2008), with d = pred − true:
//
//	s = Σ exp(−d/13) − 1   for d < 0 (early: mildly penalised)
//	  + Σ exp(d/10) − 1    for d ≥ 0 (late: penalised harder)
//
// Lower is better; 0 is perfect. It is a sum, so it grows with the number of
// samples: compare scores over the same samples only (the C-MAPSS protocol
// scores one prediction per test unit).
func ScorePHM08(truth, pred []float64) float64 {
	mustSameLen(truth, pred)
	var s float64
	for i, t := range truth {
		d := pred[i] - t
		if d < 0 {
			s += math.Expm1(-d / 13)
		} else {
			s += math.Expm1(d / 10)
		}
	}
	return s
}

// CriticalAccuracy is the share of samples whose true RUL is below critical
// (the critical health class) that are predicted within tol hours
// (|pred − true| < tol). It returns the number of such samples too; the
// accuracy is NaN when there are none.
func CriticalAccuracy(truth, pred []float64, critical, tol float64) (acc float64, n int) {
	mustSameLen(truth, pred)
	hit := 0
	for i, t := range truth {
		if t < critical {
			n++
			if math.Abs(pred[i]-t) < tol {
				hit++
			}
		}
	}
	if n == 0 {
		return math.NaN(), 0
	}
	return float64(hit) / float64(n), n
}

// ClassMetrics are the one-vs-rest metrics of one health class.
type ClassMetrics struct {
	Precision Float `json:"precision"`
	Recall    Float `json:"recall"`
	F1        Float `json:"f1"`
	Support   int   `json:"support"`   // samples whose true class this is
	Predicted int   `json:"predicted"` // samples predicted as this class
}

// Classification is the classification report of health classes, as
// scikit-learn's classification_report(labels=[critical, warning, normal],
// zero_division=0) computes it, with the classes named correctly.
type Classification struct {
	// Labels is the row and column order of Confusion.
	Labels []string `json:"labels"`
	// Confusion[i][j] counts samples of true class Labels[i] predicted as
	// Labels[j].
	Confusion [3][3]int    `json:"confusion"`
	Critical  ClassMetrics `json:"critical"`
	Warning   ClassMetrics `json:"warning"`
	Normal    ClassMetrics `json:"normal"`
	Accuracy  Float        `json:"accuracy"`
	// MacroAvg is the unweighted mean over the three classes, WeightedAvg the
	// mean weighted by support; their Support is the number of samples.
	MacroAvg    ClassMetrics `json:"macro_avg"`
	WeightedAvg ClassMetrics `json:"weighted_avg"`
}

// Class returns the metrics of class h.
func (c *Classification) Class(h dataset.Health) *ClassMetrics {
	switch h {
	case dataset.Critical:
		return &c.Critical
	case dataset.Warning:
		return &c.Warning
	case dataset.Normal:
		return &c.Normal
	}
	panic(fmt.Sprintf("evaluate: no class %d", h))
}

// Classify computes the classification report of predicted against true
// health classes.
//
// Precision of a class nobody predicted, and recall of a class absent from the
// truth, divide by zero; like scikit-learn with zero_division=0 they are
// reported as 0 (and F1 with them), so that the averages match scikit-learn's.
// Predicted and Support show when that happened.
func Classify(truth, pred []dataset.Health) Classification {
	if len(truth) != len(pred) {
		panic(fmt.Sprintf("evaluate: %d true classes but %d predictions", len(truth), len(pred)))
	}
	c := Classification{}
	for _, h := range dataset.HealthClasses {
		c.Labels = append(c.Labels, h.String())
	}
	for i, t := range truth {
		c.Confusion[t][pred[i]]++
	}
	n := len(truth)
	div := func(a, b Float) Float {
		if b == 0 {
			return 0
		}
		return a / b
	}
	correct := 0
	var macro, weighted ClassMetrics
	for _, h := range dataset.HealthClasses {
		m := c.Class(h)
		tp := c.Confusion[h][h]
		for k := range 3 {
			m.Support += c.Confusion[h][k]
			m.Predicted += c.Confusion[k][h]
		}
		m.Precision = div(Float(tp), Float(m.Predicted))
		m.Recall = div(Float(tp), Float(m.Support))
		m.F1 = div(2*m.Precision*m.Recall, m.Precision+m.Recall)
		correct += tp
		w := Float(m.Support)
		macro.Precision += m.Precision / 3
		macro.Recall += m.Recall / 3
		macro.F1 += m.F1 / 3
		weighted.Precision += w * m.Precision
		weighted.Recall += w * m.Recall
		weighted.F1 += w * m.F1
	}
	macro.Support, weighted.Support = n, n
	macro.Predicted, weighted.Predicted = n, n
	if n == 0 {
		nan := Float(math.NaN())
		c.Accuracy = nan
		macro.Precision, macro.Recall, macro.F1 = nan, nan, nan
		weighted.Precision, weighted.Recall, weighted.F1 = nan, nan, nan
	} else {
		c.Accuracy = Float(correct) / Float(n)
		weighted.Precision /= Float(n)
		weighted.Recall /= Float(n)
		weighted.F1 /= Float(n)
	}
	c.MacroAvg, c.WeightedAvg = macro, weighted
	return c
}

func mustSameLen(a, b []float64) {
	if len(a) != len(b) {
		panic(fmt.Sprintf("evaluate: %d true values but %d predictions", len(a), len(b)))
	}
}
