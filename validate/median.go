package validate

import (
	"math"
	"slices"
)

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

// hampelHalf is the half-width of the Hampel filter's window: a value is
// compared with the median of itself and its hampelHalf neighbours on each
// side.
const hampelHalf = 5

// hampel finds robust outliers in a series (a Hampel filter): the residual of
// each value from the rolling median of its window (±hampelHalf values,
// truncated at the ends) is scored against the series' median and MAD of
// residuals, and emit is called for each value whose |score| exceeds z. The
// rolling median follows slow trends (the degradation a RUL model learns), so
// only spikes and jumps stand out. Nothing is reported when the residuals'
// MAD is 0 (constant or few-valued series). xs must be finite; resid and
// window are scratch space (returned for reuse).
func hampel(xs []float64, z float64, resid, window []float64, emit func(i int, score, med float64)) ([]float64, []float64) {
	n := len(xs)
	resid = resid[:0]
	window = window[:0]
	if n < 2*hampelHalf+1 {
		return resid, window
	}
	insert := func(v float64) {
		i, _ := slices.BinarySearch(window, v)
		window = slices.Insert(window, i, v)
	}
	remove := func(v float64) {
		i, _ := slices.BinarySearch(window, v)
		window = slices.Delete(window, i, i+1)
	}
	mid := func() float64 {
		m := len(window)
		if m%2 == 1 {
			return window[m/2]
		}
		return window[m/2-1] + (window[m/2]-window[m/2-1])/2
	}
	for j := 0; j <= hampelHalf && j < n; j++ {
		insert(xs[j])
	}
	for i := range n {
		if i > 0 {
			if j := i + hampelHalf; j < n {
				insert(xs[j])
			}
			if j := i - hampelHalf - 1; j >= 0 {
				remove(xs[j])
			}
		}
		resid = append(resid, xs[i]-mid())
	}
	// Center and scale of the residuals, on a copy (median reorders).
	tmp := append(window[:0], resid...)
	center := median(tmp)
	for i := range tmp {
		tmp[i] = math.Abs(resid[i] - center)
	}
	mad := median(tmp)
	window = tmp
	if mad == 0 {
		return resid, window
	}
	scale := 1.4826 * mad
	for i, r := range resid {
		if s := (r - center) / scale; math.Abs(s) > z {
			emit(i, s, xs[i]-r)
		}
	}
	return resid, window
}
