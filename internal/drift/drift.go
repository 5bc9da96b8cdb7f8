// Package drift summarizes sensor distributions and compares them: the
// population stability index (PSI) and the two-sample Kolmogorov–Smirnov
// statistic. The validate stage stores a Distribution per sensor in every
// validation report (its "reference" section); a later validate --reference
// and the monitor read it back with ReadReference and compare new data
// against it with Compare.
//
// A Distribution is small (a few hundred numbers per sensor) so that it can
// travel with a deployed model:
//
//   - Quantiles at the 101 probabilities 0, 0.01, …, 1 (numpy's default
//     linear interpolation), from all values, or from a uniform seeded sample
//     of SampleSize values when there are more (Sketch);
//   - PSI bins: the distinct interior deciles as edges (bins are right-closed:
//     (-inf, e0], (e0, e1], …, (ek, +inf)) and the reference share of each bin.
//
// PSI = Σ (a − e)·ln(a / e) over the bins, with the reference shares e and the
// current shares a floored at PSIEpsilon so that an empty bin does not make it
// infinite. KS is the two-sample statistic sup |F_ref − F_cur| between the
// empirical distribution of the reference quantiles and the current values
// (scipy.stats.ks_2samp(quantiles, values)); with 101 quantiles it is within
// about 0.01 of the statistic against the full reference data.
package drift

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/modax/modax-ml/internal/location"
)

// Quantiles is the number of quantile points a Distribution stores.
const Quantiles = 101

// PSIEpsilon floors bin shares in the PSI.
const PSIEpsilon = 1e-4

// DefaultSampleSize is the number of values a Sketch keeps for quantiles.
const DefaultSampleSize = 100_000

// Distribution summarizes the finite values of one sensor.
type Distribution struct {
	// Count is the number of finite values seen; Sampled how many of them the
	// quantiles and bins were computed from (Count up to the sample size).
	Count   int64   `json:"count"`
	Sampled int     `json:"sampled"`
	Min     float64 `json:"min"`
	Max     float64 `json:"max"`
	Mean    float64 `json:"mean"`
	Std     float64 `json:"std"`
	// TopShare is the share of the most frequent value (1 for a constant).
	TopShare  float64   `json:"top_share"`
	Quantiles []float64 `json:"quantiles"`
	Bins      Bins      `json:"psi_bins"`
}

// Bins are the PSI bins of a reference distribution.
type Bins struct {
	Edges       []float64 `json:"edges"`
	Proportions []float64 `json:"proportions"`
}

// Empty reports whether the distribution holds no value.
func (d Distribution) Empty() bool { return d.Count == 0 || len(d.Quantiles) == 0 }

// Sketch accumulates the values of one sensor in bounded memory: exact count,
// min, max, mean and standard deviation, and a uniform reservoir sample for
// the quantiles. The sample is seeded, so the same values in the same order
// give the same Distribution.
type Sketch struct {
	size     int
	n        int64
	shift    float64
	sum, ssq float64
	min, max float64
	sample   []float64
	rng      *rand.Rand
}

// NewSketch returns a sketch keeping at most size values (DefaultSampleSize
// when size <= 0).
func NewSketch(size int) *Sketch {
	if size <= 0 {
		size = DefaultSampleSize
	}
	return &Sketch{size: size, min: math.Inf(1), max: math.Inf(-1), rng: rand.New(rand.NewPCG(0x6d6f646178, uint64(size)))}
}

// Add adds a value. NaN and ±Inf are ignored (they are counted as missing or
// non-finite by the caller).
func (s *Sketch) Add(v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	if s.n == 0 {
		s.shift = v
	}
	s.n++
	d := v - s.shift
	s.sum += d
	s.ssq += d * d
	s.min = min(s.min, v)
	s.max = max(s.max, v)
	if len(s.sample) < s.size {
		s.sample = append(s.sample, v)
		return
	}
	if j := s.rng.Int64N(s.n); j < int64(s.size) {
		s.sample[j] = v
	}
}

// Count returns the number of finite values added.
func (s *Sketch) Count() int64 { return s.n }

// Sorted returns the sample sorted ascending (owned by the sketch).
func (s *Sketch) Sorted() []float64 {
	slices.Sort(s.sample)
	return s.sample
}

// Distribution summarizes what was added.
func (s *Sketch) Distribution() Distribution {
	if s.n == 0 {
		return Distribution{}
	}
	d := Summarize(s.Sorted())
	n := float64(s.n)
	mean := s.sum / n
	d.Count = s.n
	d.Min, d.Max = s.min, s.max
	d.Mean = s.shift + mean
	d.Std = math.Sqrt(max(0, s.ssq/n-mean*mean))
	if s.min == s.max {
		d.Std = 0
	}
	return d
}

// Summarize returns the distribution of the sorted finite values xs (count,
// min, max, mean, population standard deviation, quantiles, PSI bins).
func Summarize(xs []float64) Distribution {
	n := len(xs)
	if n == 0 {
		return Distribution{}
	}
	d := Distribution{Count: int64(n), Sampled: n, Min: xs[0], Max: xs[n-1]}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	d.Mean = sum / float64(n)
	var ss float64
	for _, x := range xs {
		ss += (x - d.Mean) * (x - d.Mean)
	}
	d.Std = math.Sqrt(ss / float64(n))
	d.Quantiles = make([]float64, Quantiles)
	for i := range d.Quantiles {
		d.Quantiles[i] = Quantile(xs, float64(i)/float64(Quantiles-1))
	}
	d.TopShare = topShare(xs)
	var edges []float64
	for i := 10; i < Quantiles-1; i += 10 {
		e := d.Quantiles[i]
		if len(edges) == 0 || e > edges[len(edges)-1] {
			edges = append(edges, e)
		}
	}
	d.Bins = Bins{Edges: edges, Proportions: binShares(edges, xs)}
	return d
}

// Quantile returns the p-quantile of sorted xs with linear interpolation
// between order statistics (numpy's default, Hyndman–Fan type 7).
func Quantile(xs []float64, p float64) float64 {
	n := len(xs)
	pos := p * float64(n-1)
	lo := int(math.Floor(pos))
	if lo >= n-1 {
		return xs[n-1]
	}
	if lo < 0 {
		return xs[0]
	}
	t := pos - float64(lo)
	a, b := xs[lo], xs[lo+1]
	// numpy's _lerp: symmetric in t so that t=1 gives b exactly.
	if t >= 0.5 {
		return b - (b-a)*(1-t)
	}
	return a + (b-a)*t
}

// topShare returns the share of the most frequent value of sorted xs.
func topShare(xs []float64) float64 {
	best, run := 0, 0
	for i := range xs {
		if i > 0 && xs[i] == xs[i-1] {
			run++
		} else {
			run = 1
		}
		best = max(best, run)
	}
	return float64(best) / float64(len(xs))
}

// binShares returns the share of sorted xs in each right-closed bin of edges.
func binShares(edges, xs []float64) []float64 {
	counts := make([]float64, len(edges)+1)
	for _, x := range xs {
		counts[bin(edges, x)]++
	}
	for i := range counts {
		counts[i] /= float64(len(xs))
	}
	return counts
}

// bin returns the index of the right-closed bin of x: the number of edges < x.
func bin(edges []float64, x float64) int {
	return sort.SearchFloat64s(edges, x)
}

// PSI returns the population stability index of the current shares against
// the reference shares (same bins), each floored at PSIEpsilon.
func PSI(ref, cur []float64) float64 {
	var psi float64
	for i := range ref {
		e := max(ref[i], PSIEpsilon)
		a := max(cur[i], PSIEpsilon)
		psi += (a - e) * math.Log(a/e)
	}
	return psi
}

// KS2 returns the two-sample Kolmogorov–Smirnov statistic of the sorted
// finite samples a and b: the largest distance between their empirical
// distribution functions (scipy.stats.ks_2samp's statistic).
func KS2(a, b []float64) float64 {
	na, nb := len(a), len(b)
	if na == 0 || nb == 0 {
		return math.NaN()
	}
	i, j := 0, 0
	var d float64
	for i < na && j < nb {
		x := min(a[i], b[j])
		for i < na && a[i] <= x {
			i++
		}
		for j < nb && b[j] <= x {
			j++
		}
		d = max(d, math.Abs(float64(i)/float64(na)-float64(j)/float64(nb)))
	}
	return d
}

// Comparison is the drift of current values against a reference.
type Comparison struct {
	PSI float64 `json:"psi"`
	KS  float64 `json:"ks"`
	// Count is the number of current values compared.
	Count int `json:"count"`
}

// Compare measures the drift of the values cur (any order; NaN and ±Inf are
// ignored; cur is not modified) against ref. It returns ok=false when either
// side has no value.
func Compare(ref Distribution, cur []float64) (Comparison, bool) {
	if !slices.IsSorted(cur) || slices.ContainsFunc(cur, nonFinite) {
		c := make([]float64, 0, len(cur))
		for _, x := range cur {
			if !nonFinite(x) {
				c = append(c, x)
			}
		}
		slices.Sort(c)
		cur = c
	}
	if ref.Empty() || len(cur) == 0 || len(ref.Bins.Proportions) != len(ref.Bins.Edges)+1 {
		return Comparison{}, false
	}
	return Comparison{
		PSI:   PSI(ref.Bins.Proportions, binShares(ref.Bins.Edges, cur)),
		KS:    KS2(ref.Quantiles, cur),
		Count: len(cur),
	}, true
}

func nonFinite(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) }

// Reference is the per-sensor reference distributions stored in a validation
// report.
type Reference struct {
	// Sensors maps a sensor name to its distribution.
	Sensors map[string]Distribution `json:"sensors"`
}

// ReadReference reads the "reference" section of a validation report (the
// JSON file validate writes) at loc.
func ReadReference(loc string) (*Reference, error) {
	b, err := location.ReadFile(context.Background(), loc)
	if err != nil {
		return nil, fmt.Errorf("read reference: %w", err)
	}
	return DecodeReference(loc, b)
}

// DecodeReference decodes the "reference" section of the validation report
// b read from loc.
func DecodeReference(loc string, b []byte) (*Reference, error) {
	var doc struct {
		Reference *Reference `json:"reference"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("read reference %s: %w", loc, err)
	}
	if doc.Reference == nil || doc.Reference.Sensors == nil {
		return nil, fmt.Errorf("read reference %s: no \"reference\" section (is it a validation report?)", loc)
	}
	for name, d := range doc.Reference.Sensors {
		if d.Count > 0 && (len(d.Quantiles) != Quantiles || len(d.Bins.Proportions) != len(d.Bins.Edges)+1) {
			return nil, fmt.Errorf("read reference %s: sensor %q: malformed distribution (%d quantiles, %d edges, %d proportions)",
				loc, name, len(d.Quantiles), len(d.Bins.Edges), len(d.Bins.Proportions))
		}
	}
	return doc.Reference, nil
}
