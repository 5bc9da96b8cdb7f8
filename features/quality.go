package features

import (
	"cmp"
	"math"
	"slices"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/hiq"
)

// hiMaxPoints bounds the points kept per life and feature for the
// health-indicator metrics (evenly decimated beyond 2× this).
const hiMaxPoints = 512

// HealthIndicators rates every input feature as a health indicator over the
// training lives that end in a failure (Result's "health_indicators"), with
// the three metrics of MATLAB's Predictive Maintenance Toolbox. The
// trajectory of a feature over a life is its mean over each window (a
// moving average of --window readings, at the stride; scaled, which the
// metrics do not see: they do not depend on a feature's affine scaling),
// in time order.
type HealthIndicators struct {
	Split string `json:"split"`
	// Source says which values make a trajectory.
	Source string `json:"source"`
	// Lives is the number of run-to-failure lives rated; a life runs to
	// failure when its rul_hours_raw is known (label: not after the last
	// failure).
	Lives int `json:"lives"`
	// MaxPoints bounds the points per life (longer lives are evenly
	// decimated to between MaxPoints and 2·MaxPoints, first and last kept).
	MaxPoints int `json:"max_points"`
	// Features, best first (by Score).
	Features []FeatureQuality `json:"features"`
}

// FeatureQuality is one feature's rating; a null value is undefined (too
// few lives or points).
type FeatureQuality struct {
	Feature        string   `json:"feature"`
	Monotonicity   *float64 `json:"monotonicity"`
	Trendability   *float64 `json:"trendability"`
	Prognosability *float64 `json:"prognosability"`
	// Score is the mean of the defined metrics (the ranking key).
	Score *float64 `json:"score"`
}

type lifeKey struct {
	tenant, device string
	life           int32
}

// hiAcc collects the trajectories of the training lives.
type hiAcc struct {
	features []string
	order    []lifeKey
	lives    map[lifeKey][]hiq.Decimator
}

func newHIAcc(features []string) *hiAcc {
	return &hiAcc{features: features, lives: map[lifeKey][]hiq.Decimator{}}
}

// add records one window: x is its window × features values.
func (a *hiAcc) add(win *dataset.Window, x []float32, window int) {
	if win.Split != dataset.SplitTrain || math.IsNaN(win.RULRaw) {
		return
	}
	k := lifeKey{win.Tenant, win.Device, win.LifeID}
	ds, ok := a.lives[k]
	if !ok {
		ds = make([]hiq.Decimator, len(a.features))
		for i := range ds {
			ds[i].Max = hiMaxPoints
		}
		a.lives[k] = ds
		a.order = append(a.order, k)
	}
	nf := len(a.features)
	for f := range nf {
		sum, n := 0.0, 0
		for t := range window {
			if v := float64(x[t*nf+f]); !math.IsNaN(v) && !math.IsInf(v, 0) {
				sum += v
				n++
			}
		}
		if n > 0 {
			ds[f].Add(sum / float64(n))
		}
	}
}

func (a *hiAcc) result() *HealthIndicators {
	h := &HealthIndicators{Split: dataset.SplitTrain, Source: "window mean (moving average over --window readings, at --stride)", Lives: len(a.order), MaxPoints: hiMaxPoints, Features: []FeatureQuality{}}
	for f, name := range a.features {
		lives := make([][]float64, 0, len(a.order))
		for _, k := range a.order {
			lives = append(lives, a.lives[k][f].Values())
		}
		q := FeatureQuality{Feature: name, Monotonicity: defined(hiq.Monotonicity(lives)),
			Trendability: defined(hiq.Trendability(lives)), Prognosability: defined(hiq.Prognosability(lives))}
		sum, n := 0.0, 0
		for _, v := range []*float64{q.Monotonicity, q.Trendability, q.Prognosability} {
			if v != nil {
				sum += *v
				n++
			}
		}
		if n > 0 {
			q.Score = defined(sum / float64(n))
		}
		h.Features = append(h.Features, q)
	}
	slices.SortStableFunc(h.Features, func(a, b FeatureQuality) int { return cmp.Compare(val(b.Score), val(a.Score)) })
	return h
}

func defined(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	v = math.Round(v*1e6) / 1e6
	return &v
}

func val(p *float64) float64 {
	if p == nil {
		return math.Inf(-1)
	}
	return *p
}
