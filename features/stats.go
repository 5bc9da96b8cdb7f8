package features

import (
	"math"
	"slices"

	"gonum.org/v1/gonum/dsp/fourier"
	"gonum.org/v1/gonum/dsp/window"
	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/stat"
)

// Per-sensor statistics, in column order (`<sensor>__<stat>`), and the
// spectral ones of the vibration axes.
var (
	statNames = []string{"mean", "std", "min", "max", "range", "skew", "kurtosis", "roc"}
	psdNames  = []string{"psd_peak_hz", "psd_energy"}
)

// statColumns lists the stats columns for the features; vibration axes get
// the PSD columns after their statistics.
func statColumns(features, vib []string) []string {
	var out []string
	for _, f := range features {
		for _, s := range statNames {
			out = append(out, f+"__"+s)
		}
		if slices.Contains(vib, f) {
			for _, s := range psdNames {
				out = append(out, f+"__"+s)
			}
		}
	}
	return out
}

// describe writes the statistics of x (len ≥ 1) to dst[:8] in statNames
// order:
//
//	mean, std       gonum stat.PopMeanStdDev (population std, numpy's np.std)
//	min, max, range
//	skew            m3 / m2^1.5 (scipy.stats.skew, bias=True)
//	kurtosis        m4 / m2² − 3 (scipy.stats.kurtosis: Fisher, bias=True)
//	roc             (x[n−1] − x[0]) / n, the design's rate of change
//
// m_k are the central moments Σ(x−mean)^k / n. scipy returns NaN skew and
// kurtosis for a constant sample (m2 ≤ (1e-15·mean)²); they are 0 here, so
// that tabular models get finite inputs.
func describe(dst, x []float64) {
	n := float64(len(x))
	mean, std := stat.PopMeanStdDev(x, nil)
	lo, hi := floats.Min(x), floats.Max(x)
	// Central moments in one pass (gonum's stat.Moment uses math.Pow and
	// recomputes the mean per call: the same numbers, ten times slower).
	var m2, m3, m4 float64
	for _, v := range x {
		d := v - mean
		d2 := d * d
		m2 += d2
		m3 += d2 * d
		m4 += d2 * d2
	}
	m2, m3, m4 = m2/n, m3/n, m4/n
	var skew, kurt float64
	if r := 1e-15 * mean; m2 > r*r {
		skew = m3 / (m2 * math.Sqrt(m2))
		kurt = m4/(m2*m2) - 3
	}
	dst[0], dst[1], dst[2], dst[3], dst[4] = mean, std, lo, hi, hi-lo
	dst[5], dst[6], dst[7] = skew, kurt, (x[len(x)-1]-x[0])/n
}

// welch estimates the power spectral density of x as scipy.signal.welch(x,
// fs) with its defaults: periodic Hann window of nperseg samples (nperseg =
// min(256, len(x)) by default, as scipy shortens it for short inputs), 50%
// overlap, constant detrend, one-sided density scaling, mean over segments.
// It reports the frequency of the largest density (the first on ties) and
// the spectral energy Σ Pxx over the frequency bins (numpy's sum(Pxx), as the
// design). One welch value per worker: it caches the FFT plan and buffers.
type welch struct {
	fs      float64
	nperseg int // configured maximum

	n     int // current segment length
	fft   *fourier.FFT
	win   []float64
	scale float64 // 1 / (fs · Σ win²)
	seg   []float64
	coef  []complex128
	psd   []float64
}

func newWelch(fs float64, nperseg int) *welch { return &welch{fs: fs, nperseg: nperseg} }

func (w *welch) setup(n int) {
	w.n = n
	if w.fft == nil {
		w.fft = fourier.NewFFT(n)
	} else {
		w.fft.Reset(n)
	}
	// scipy's get_window('hann', n) is periodic: the first n points of a
	// symmetric Hann window of n+1 points (gonum's window.Hann is symmetric).
	w.win = make([]float64, n+1)
	for i := range w.win {
		w.win[i] = 1
	}
	if n == 1 {
		w.win[0] = 1 // scipy: a window of one point is [1]
	} else {
		window.Hann(w.win)
	}
	w.win = w.win[:n]
	w.scale = 1 / (w.fs * floats.Dot(w.win, w.win))
	w.seg = make([]float64, n)
	w.coef = make([]complex128, n/2+1)
	w.psd = make([]float64, n/2+1)
}

// peakEnergy returns the dominant frequency (Hz) and spectral energy of x.
func (w *welch) peakEnergy(x []float64) (peak, energy float64) {
	nper := min(w.nperseg, len(x))
	if nper != w.n {
		w.setup(nper)
	}
	over := nper / 2
	step := nper - over
	nseg := (len(x) - over) / step
	clear(w.psd)
	for k := range nseg {
		seg := x[k*step : k*step+nper]
		mean := floats.Sum(seg) / float64(nper)
		for i, v := range seg {
			w.seg[i] = (v - mean) * w.win[i]
		}
		w.fft.Coefficients(w.coef, w.seg)
		for i, c := range w.coef {
			w.psd[i] += real(c)*real(c) + imag(c)*imag(c)
		}
	}
	scale := w.scale / float64(nseg)
	last := len(w.psd) - 1
	best := -1.0
	bestAt := 0
	for i, p := range w.psd {
		p *= scale
		if i > 0 && (nper%2 == 1 || i < last) {
			p *= 2 // one-sided: every bin but DC (and Nyquist for even n) twice
		}
		energy += p
		if p > best {
			best, bestAt = p, i
		}
	}
	// Frequencies as numpy's rfftfreq(n, d=1/fs) computes them: k · 1/(n·d).
	return float64(bestAt) * (1 / (float64(nper) * (1 / w.fs))), energy
}

// statsCalc computes a stats row: for each feature the statistics and, for
// vibration axes, the Welch features.
type statsCalc struct {
	isVib []bool // per feature
	welch *welch
}

func newStatsCalc(features, vib []string, fs float64, nperseg int) *statsCalc {
	c := &statsCalc{welch: newWelch(fs, nperseg)}
	for _, f := range features {
		c.isVib = append(c.isVib, slices.Contains(vib, f))
	}
	return c
}

// width returns the number of values of a row.
func (c *statsCalc) width() int {
	n := 0
	for _, v := range c.isVib {
		n += len(statNames)
		if v {
			n += len(psdNames)
		}
	}
	return n
}

// row writes the stats of the rows [lo, hi) of cols (features first) to dst.
func (c *statsCalc) row(dst []float64, cols [][]float64, lo, hi int) {
	k := 0
	for j, vib := range c.isVib {
		x := cols[j][lo:hi]
		describe(dst[k:k+len(statNames)], x)
		k += len(statNames)
		if vib {
			dst[k], dst[k+1] = c.welch.peakEnergy(x)
			k += 2
		}
	}
}

// rowSkipNaN is row for values that may be missing (time buckets): each
// feature's statistics use its present values; with none they are NaN.
func (c *statsCalc) rowSkipNaN(dst []float64, cols [][]float64, lo, hi int, buf []float64) []float64 {
	k := 0
	for j, vib := range c.isVib {
		buf = buf[:0]
		for _, v := range cols[j][lo:hi] {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				buf = append(buf, v)
			}
		}
		width := len(statNames)
		if vib {
			width += len(psdNames)
		}
		if len(buf) == 0 {
			for i := range width {
				dst[k+i] = math.NaN()
			}
			k += width
			continue
		}
		describe(dst[k:k+len(statNames)], buf)
		k += len(statNames)
		if vib {
			dst[k], dst[k+1] = c.welch.peakEnergy(buf)
			k += 2
		}
	}
	return buf
}
