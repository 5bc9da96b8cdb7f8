package evaluate

import (
	"fmt"
	"math"
	"strconv"
)

// BucketEdges are the lower edges, in hours, of the true-RUL buckets the
// error is broken down by: [0,10), [10,25), [25,50), [50,cap) and = cap.
var BucketEdges = []float64{0, 10, 25, 50}

// BucketMetrics is the error of the predictions whose true RUL (capped at
// the horizon) lies in one bucket: [LoHours, HiHours), or exactly the cap
// when AtCap (LoHours = HiHours = the cap). HiHours is null for the last
// bucket of an uncapped model ([50, ∞)).
type BucketMetrics struct {
	Label   string `json:"label"`
	LoHours Float  `json:"lo_hours"`
	HiHours Float  `json:"hi_hours"`
	AtCap   bool   `json:"at_cap"`
	N       int    `json:"n"`
	MAE     Float  `json:"mae"`
	RMSE    Float  `json:"rmse"`
	Bias    Float  `json:"bias"` // mean(pred − true)
}

// capTol is how close to the cap a true RUL counts as "at the cap" (the
// capped truth is min(raw, cap), so it equals the cap up to rounding).
const capTol = 1e-9

// fmtEdge formats a bucket edge for a label.
func fmtEdge(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// Buckets returns the bucket skeleton for a RUL cap (NaN or ≤ 0:
// uncapped): the BucketEdges below the cap, the last one ending at the cap,
// then the = cap bucket. Uncapped, the last bucket is [50, ∞) and there is
// no = cap bucket.
func Buckets(rulCap float64) []BucketMetrics {
	capped := rulCap > 0 && !math.IsInf(rulCap, 0)
	var out []BucketMetrics
	for i, lo := range BucketEdges {
		if capped && lo >= rulCap {
			break
		}
		hi := math.Inf(1)
		if i+1 < len(BucketEdges) {
			hi = BucketEdges[i+1]
		}
		if capped {
			hi = math.Min(hi, rulCap)
		}
		b := BucketMetrics{LoHours: Float(lo), HiHours: Float(hi)}
		if math.IsInf(hi, 1) {
			b.HiHours = NaN()
			b.Label = "[" + fmtEdge(lo) + ",∞)"
		} else {
			b.Label = "[" + fmtEdge(lo) + "," + fmtEdge(hi) + ")"
		}
		out = append(out, b)
	}
	if capped {
		out = append(out, BucketMetrics{Label: "=" + fmtEdge(rulCap), LoHours: Float(rulCap), HiHours: Float(rulCap), AtCap: true})
	}
	return out
}

// bucketOf returns the index in bs of the bucket of true RUL t (a negative
// truth, which labels do not produce, counts in the first).
func bucketOf(bs []BucketMetrics, t float64) int {
	for i := len(bs) - 1; i >= 0; i-- {
		b := bs[i]
		if b.AtCap {
			if t >= float64(b.LoHours)-capTol {
				return i
			}
			continue
		}
		if t >= float64(b.LoHours) {
			return i
		}
	}
	return 0
}

// ErrorByBucket computes MAE, RMSE, bias and count of pred against truth
// per true-RUL bucket (Buckets(rulCap)). Every bucket is returned, the empty
// ones with n = 0 and null metrics; the counts add up to len(truth). A
// truth above the cap (which a capped label does not produce) counts as at
// the cap.
func ErrorByBucket(truth, pred []float64, rulCap float64) []BucketMetrics {
	mustSameLen(truth, pred)
	bs := Buckets(rulCap)
	ts := make([][]float64, len(bs))
	ps := make([][]float64, len(bs))
	for i, t := range truth {
		k := bucketOf(bs, t)
		ts[k] = append(ts[k], t)
		ps[k] = append(ps[k], pred[i])
	}
	for k := range bs {
		r := Regress(ts[k], ps[k])
		bs[k].N, bs[k].MAE, bs[k].RMSE, bs[k].Bias = r.N, Float(r.MAE), Float(r.RMSE), Float(r.Bias)
	}
	return bs
}

// bucketTitle is the bucket's label spelt out for the reports.
func (b BucketMetrics) bucketTitle() string {
	if b.AtCap {
		return fmt.Sprintf("= %s h (at the cap)", fmtEdge(float64(b.LoHours)))
	}
	if !b.HiHours.Valid() {
		return fmt.Sprintf("[%s h, ∞)", fmtEdge(float64(b.LoHours)))
	}
	return fmt.Sprintf("[%s, %s) h", fmtEdge(float64(b.LoHours)), fmtEdge(float64(b.HiHours)))
}
