package features

import (
	"cmp"
	"encoding/binary"
	"math"
	"slices"

	"github.com/modax/modax-ml/internal/dataset"
)

// moments accumulates count, mean, sum of squared deviations, min and max of
// one feature; partial results merge exactly as Chan et al.'s parallel
// variance algorithm does, in a fixed order (so the fit is deterministic).
type moments struct {
	n        int64
	mean, m2 float64
	min, max float64
}

func (m *moments) add(v float64) {
	if m.n == 0 {
		m.min, m.max = v, v
	}
	m.n++
	d := v - m.mean
	m.mean += d / float64(m.n)
	m.m2 += d * (v - m.mean)
	m.min = math.Min(m.min, v)
	m.max = math.Max(m.max, v)
}

func (m *moments) merge(o moments) {
	if o.n == 0 {
		return
	}
	if m.n == 0 {
		*m = o
		return
	}
	n := float64(m.n + o.n)
	d := o.mean - m.mean
	m.mean += d * float64(o.n) / n
	m.m2 += o.m2 + d*d*float64(m.n)*float64(o.n)/n
	m.n += o.n
	m.min = math.Min(m.min, o.min)
	m.max = math.Max(m.max, o.max)
}

// params returns the scaler parameters of a feature: (mean, std) for
// z-score, (min, max − min) for min-max. A constant feature gets scale 1;
// "constant" is scikit-learn's test (_is_constant_feature): a variance no
// larger than its own rounding error.
func (m *moments) params(kind string) (offset, scale float64) {
	if m.n == 0 {
		return 0, 1
	}
	n := float64(m.n)
	variance := m.m2 / n
	const eps = 2.220446049250313e-16
	bound := n*eps*variance + (n*m.mean*eps)*(n*m.mean*eps)
	constant := variance <= bound || m.max == m.min
	switch kind {
	case ScalerMinMax:
		if constant {
			return m.min, 1
		}
		return m.min, m.max - m.min
	case ScalerZScore:
		if constant {
			return m.mean, 1
		}
		return m.mean, math.Sqrt(variance)
	}
	return 0, 1
}

// fitAcc holds the moments of every (condition, feature) pair.
type fitAcc struct {
	nf int
	m  []moments // [condition*nf + feature]
}

func newFitAcc(conditions, nf int) *fitAcc {
	return &fitAcc{nf: nf, m: make([]moments, conditions*nf)}
}

func (a *fitAcc) merge(o *fitAcc) {
	for i := range a.m {
		a.m[i].merge(o.m[i])
	}
}

// scaler builds the fitted scaler. conds is nil for a global scaler.
func (a *fitAcc) scaler(kind string, features []string, conds *dataset.ConditionScaler) dataset.Scaler {
	s := dataset.Scaler{Kind: kind, Features: features, FitSplit: dataset.SplitTrain}
	nc := len(a.m) / a.nf
	offsets := make([][]float64, nc)
	scales := make([][]float64, nc)
	for k := range nc {
		offsets[k] = make([]float64, a.nf)
		scales[k] = make([]float64, a.nf)
		var rows int64
		for j := range a.nf {
			m := &a.m[k*a.nf+j]
			offsets[k][j], scales[k][j] = m.params(kind)
			rows = max(rows, m.n)
		}
		s.FitRows += rows
		if conds != nil {
			conds.FitRows = append(conds.FitRows, rows)
		}
	}
	if conds == nil {
		s.Offset, s.Scale = offsets[0], scales[0]
		return s
	}
	conds.Offset, conds.Scale = offsets, scales
	s.Conditions = conds
	return s
}

// condKey is one rounded operating condition seen on the train split.
type condKey struct {
	key []float64 // rounded condition values
	n   int64
	sum []float64 // sum of the raw condition values of its rows
}

// condAcc collects rounded conditions.
type condAcc struct {
	decimals float64 // 10^decimals
	keys     map[string]*condKey
	buf      []byte
	vals     []float64
}

func newCondAcc(decimals int) *condAcc {
	return &condAcc{decimals: math.Pow(10, float64(decimals)), keys: map[string]*condKey{}}
}

// add counts one row with raw condition values v.
func (a *condAcc) add(v []float64) {
	a.buf = a.buf[:0]
	a.vals = a.vals[:0]
	for _, x := range v {
		r := math.Round(x*a.decimals) / a.decimals
		if r == 0 {
			r = 0 // no negative zero
		}
		a.vals = append(a.vals, r)
		a.buf = binary.LittleEndian.AppendUint64(a.buf, math.Float64bits(r))
	}
	k, ok := a.keys[string(a.buf)]
	if !ok {
		k = &condKey{key: slices.Clone(a.vals), sum: make([]float64, len(v))}
		a.keys[string(a.buf)] = k
	}
	k.n++
	for i, x := range v {
		k.sum[i] += x
	}
}

func (a *condAcc) merge(o *condAcc) {
	for s, ok := range o.keys {
		k, found := a.keys[s]
		if !found {
			a.keys[s] = ok
			continue
		}
		k.n += ok.n
		for i := range k.sum {
			k.sum[i] += ok.sum[i]
		}
	}
}

// centers returns the operating conditions: rounded keys with at least
// minRows rows (smaller ones are merged into the nearest larger one, they
// are rounding noise), ordered by key, each with the mean raw condition
// values of its rows as center.
func (a *condAcc) centers(minRows int64) [][]float64 {
	keys := make([]*condKey, 0, len(a.keys))
	for _, k := range a.keys {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y *condKey) int {
		for i := range x.key {
			if c := cmp.Compare(x.key[i], y.key[i]); c != 0 {
				return c
			}
		}
		return 0
	})
	var big, small []*condKey
	for _, k := range keys {
		if k.n >= minRows {
			big = append(big, k)
		} else {
			small = append(small, k)
		}
	}
	if len(big) == 0 {
		// Every key is small: keep the largest one.
		best := slices.MaxFunc(keys, func(x, y *condKey) int { return cmp.Compare(x.n, y.n) })
		big = []*condKey{best}
		small = slices.DeleteFunc(slices.Clone(keys), func(k *condKey) bool { return k == best })
	}
	merged := make([]condKey, len(big))
	for i, k := range big {
		merged[i] = condKey{key: k.key, n: k.n, sum: slices.Clone(k.sum)}
	}
	for _, s := range small {
		best, bestD := 0, math.Inf(1)
		for i, b := range big {
			var d float64
			for j := range s.key {
				e := s.key[j] - b.key[j]
				d += e * e
			}
			if d < bestD {
				best, bestD = i, d
			}
		}
		merged[best].n += s.n
		for j := range s.sum {
			merged[best].sum[j] += s.sum[j]
		}
	}
	out := make([][]float64, len(merged))
	for i, m := range merged {
		out[i] = make([]float64, len(m.sum))
		for j, s := range m.sum {
			out[i][j] = s / float64(m.n)
		}
	}
	return out
}
