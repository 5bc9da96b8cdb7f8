package validate

import "math"

// median returns the median of xs (the mean of the two middle values when
// len(xs) is even), reordering xs. xs must not be empty or hold NaN. It is a
// quickselect, linear on average, so that per-device medians of long
// histories stay cheap.
func median(xs []float64) float64 {
	n := len(xs)
	k := n / 2
	hi := selectK(xs, k)
	if n%2 == 1 {
		return hi
	}
	// After selection xs[:k] holds the k smallest values.
	lo := xs[0]
	for _, x := range xs[1:k] {
		lo = max(lo, x)
	}
	return lo + (hi-lo)/2
}

// selectK reorders xs so that xs[k] is the value it would have if xs were
// sorted, everything before it is <= and everything after it >=, and returns it.
func selectK(xs []float64, k int) float64 {
	lo, hi := 0, len(xs)-1
	for lo < hi {
		// Median of three as the pivot.
		mid := lo + (hi-lo)/2
		if xs[mid] < xs[lo] {
			xs[mid], xs[lo] = xs[lo], xs[mid]
		}
		if xs[hi] < xs[lo] {
			xs[hi], xs[lo] = xs[lo], xs[hi]
		}
		if xs[hi] < xs[mid] {
			xs[hi], xs[mid] = xs[mid], xs[hi]
		}
		p := xs[mid]
		// Hoare partition: equal keys split evenly, so constant runs
		// (regular sampling intervals) stay linear.
		i, j := lo, hi
		for i <= j {
			for xs[i] < p {
				i++
			}
			for xs[j] > p {
				j--
			}
			if i <= j {
				xs[i], xs[j] = xs[j], xs[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return xs[k]
		}
	}
	return xs[k]
}

// spikes finds isolated spikes in a series: values that stand out from both
// neighbours in the same direction by more than z robust standard deviations
// of the series' steps, where the scale is 1.4826 × the MAD of the first
// differences x[i] − x[i−1] (for white noise of deviation σ it estimates
// σ·√2). A value inside a trend, a step or a smooth transition lies between
// its neighbours and is never a spike; the first and last values have one
// neighbour and are not judged. broken(i) reports that the step from i−1 to i
// crosses a sampling gap: that step takes no part in the scale and the values
// on either side of it are not judged (nil: no gaps). Nothing is reported when
// the MAD is 0 (constant or few-valued series). xs must be finite; diffs is
// scratch space (returned for reuse). emit gets the index, the signed score
// (the smaller excess over both neighbours, in robust deviations) and the scale.
func spikes(xs []float64, z float64, broken func(i int) bool, diffs []float64, emit func(i int, score, scale float64)) []float64 {
	n := len(xs)
	diffs = diffs[:0]
	if n < 3 {
		return diffs
	}
	gap := func(i int) bool { return broken != nil && broken(i) }
	for i := 1; i < n; i++ {
		if !gap(i) {
			diffs = append(diffs, xs[i]-xs[i-1])
		}
	}
	if len(diffs) == 0 {
		return diffs
	}
	center := median(diffs)
	for i := range diffs {
		diffs[i] = math.Abs(diffs[i] - center)
	}
	mad := median(diffs)
	if mad == 0 {
		return diffs
	}
	scale := 1.4826 * mad
	limit := z * scale
	for i := 1; i < n-1; i++ {
		if gap(i) || gap(i+1) {
			continue
		}
		up, down := xs[i]-xs[i-1], xs[i]-xs[i+1]
		switch {
		case up > limit && down > limit:
			emit(i, min(up, down)/scale, scale)
		case up < -limit && down < -limit:
			emit(i, max(up, down)/scale, scale)
		}
	}
	return diffs
}
