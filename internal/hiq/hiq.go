// Package hiq measures how good a feature is as a health indicator over
// run-to-failure lives, with the three metrics of MATLAB's Predictive
// Maintenance Toolbox (monotonicity, trendability, prognosability; Coble and
// Hines, PHM 2009). Each takes one trajectory per life (the feature's values
// in time order, the last one at or next to the failure) and returns a value
// in [0, 1], 1 the best; NaN when it is undefined (too few lives or points).
package hiq

import (
	"math"
)

// Monotonicity is the mean over the lives of |#positive − #negative
// differences| / (n − 1), n the life's number of points: 1 when every life
// only rises (or only falls), about 0 for noise. MATLAB's
// monotonicity(X, 'Method', 'sign') with no smoothing (WindowSize 0). Lives
// with fewer than two points are left out; NaN when none is left.
func Monotonicity(lives [][]float64) float64 {
	sum, m := 0.0, 0
	for _, x := range lives {
		if len(x) < 2 {
			continue
		}
		pos, neg := 0, 0
		for i := 1; i < len(x); i++ {
			switch d := x[i] - x[i-1]; {
			case d > 0:
				pos++
			case d < 0:
				neg++
			}
		}
		sum += math.Abs(float64(pos-neg)) / float64(len(x)-1)
		m++
	}
	if m == 0 {
		return math.NaN()
	}
	return sum / float64(m)
}

// Trendability is the smallest absolute Pearson correlation between the
// trajectories of any two lives: 1 when all lives share one shape. Two
// lives of different lengths are compared after resampling both (linear
// interpolation over the fraction of life) to the shorter length. A
// constant trajectory correlates with nothing (0). NaN for fewer than two
// lives of two or more points.
func Trendability(lives [][]float64) float64 {
	var use [][]float64
	for _, x := range lives {
		if len(x) >= 2 {
			use = append(use, x)
		}
	}
	if len(use) < 2 {
		return math.NaN()
	}
	best := math.Inf(1)
	var ra, rb []float64
	for i := range use {
		for j := i + 1; j < len(use); j++ {
			n := min(len(use[i]), len(use[j]))
			ra = Resample(ra[:0], use[i], n)
			rb = Resample(rb[:0], use[j], n)
			c := math.Abs(Pearson(ra, rb))
			if math.IsNaN(c) {
				c = 0
			}
			best = math.Min(best, c)
		}
	}
	return best
}

// Prognosability is exp(−std(x_failure) / mean|x_start − x_failure|) over
// the lives: 1 when every life ends at the same value (a clear failure
// threshold) relative to how far it travels. std is the sample standard
// deviation (n − 1, MATLAB's std). NaN for fewer than two lives, or when no
// life moves and they all end at one value (0/0); 0 when no life moves but
// they end apart.
func Prognosability(lives [][]float64) float64 {
	var last []float64
	travel := 0.0
	for _, x := range lives {
		if len(x) == 0 {
			continue
		}
		last = append(last, x[len(x)-1])
		travel += math.Abs(x[0] - x[len(x)-1])
	}
	if len(last) < 2 {
		return math.NaN()
	}
	mean := 0.0
	for _, v := range last {
		mean += v
	}
	mean /= float64(len(last))
	ss := 0.0
	for _, v := range last {
		ss += (v - mean) * (v - mean)
	}
	sd := math.Sqrt(ss / float64(len(last)-1))
	travel /= float64(len(last))
	if travel == 0 {
		if sd == 0 {
			return math.NaN()
		}
		return 0
	}
	return math.Exp(-sd / travel)
}

// Pearson is the correlation of a and b (equal lengths); NaN when either is
// constant.
func Pearson(a, b []float64) float64 {
	n := float64(len(a))
	var ma, mb float64
	for i := range a {
		ma += a[i]
		mb += b[i]
	}
	ma, mb = ma/n, mb/n
	var sab, saa, sbb float64
	for i := range a {
		da, db := a[i]-ma, b[i]-mb
		sab += da * db
		saa += da * da
		sbb += db * db
	}
	if saa == 0 || sbb == 0 {
		return math.NaN()
	}
	return sab / math.Sqrt(saa*sbb)
}

// Resample appends to dst n points of x by linear interpolation at evenly
// spaced fractions of its length (the first and last points are kept).
func Resample(dst, x []float64, n int) []float64 {
	if n == len(x) {
		return append(dst, x...)
	}
	if n == 1 {
		return append(dst, x[len(x)-1])
	}
	for k := range n {
		p := float64(k) * float64(len(x)-1) / float64(n-1)
		i := int(p)
		if i >= len(x)-1 {
			dst = append(dst, x[len(x)-1])
			continue
		}
		f := p - float64(i)
		dst = append(dst, x[i]+f*(x[i+1]-x[i]))
	}
	return dst
}

// Decimator keeps at most about Max points of a stream of unknown length,
// evenly spaced: every point until it holds 2·Max, then every other one,
// and so on (the stride doubles). The first and the last point are always
// kept (Values).
type Decimator struct {
	Max    int
	points []float64
	stride int
	seen   int
	last   float64
}

// Values returns the kept points, the last point offered included.
func (d *Decimator) Values() []float64 {
	if d.seen == 0 {
		return nil
	}
	if (d.seen-1)%d.stride == 0 {
		return d.points
	}
	return append(d.points[:len(d.points):len(d.points)], d.last)
}

// Add offers the next point.
func (d *Decimator) Add(v float64) {
	if d.stride == 0 {
		d.stride = 1
	}
	d.last = v
	if d.seen%d.stride == 0 {
		d.points = append(d.points, v)
		if d.Max > 0 && len(d.points) >= 2*d.Max {
			k := 0
			for i := 0; i < len(d.points); i += 2 {
				d.points[k] = d.points[i]
				k++
			}
			d.points = d.points[:k]
			d.stride *= 2
		}
	}
	d.seen++
}
