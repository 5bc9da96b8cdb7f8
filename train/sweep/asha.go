package sweep

import (
	"context"
	"math"
	"sort"
	"sync"
)

// ASHA (asynchronous successive halving, Li et al. 2020) compares each
// trial's metric at the rungs min_epochs × rf^k with the other trials' at
// the same rung and stops a trial outside the top 1/rf. Plain ASHA decides
// against whichever trials happen to have reached the rung, so its choices
// depend on timing; here trial i decides against trials 0..i only, and
// waits until each of those has reached the rung or finished. The decisions
// are then a function of the space and the seed alone, whatever the number
// of trials side by side, and a resumed sweep replays them from its journal.
// The wait never deadlocks: trials start in id order, so the lowest
// unfinished trial has nobody to wait for.

// keepAtRung reports whether a trial whose rung value is v stays in among
// the earlier trials' values at that rung (others, all from lower ids): it
// must rank in the top max(1, ⌊n/rf⌋) of the n = len(others)+1 values,
// ties going to the lower id. NaN ranks last.
func keepAtRung(v float64, others []float64, rf int) bool {
	rank := 0
	for _, o := range others {
		if less(o, v) || o == v {
			rank++
		}
	}
	return rank < max(1, (len(others)+1)/rf)
}

func less(a, b float64) bool {
	if math.IsNaN(b) {
		return !math.IsNaN(a)
	}
	return a < b
}

// rungValue is the value at rung epoch r of a trial whose metric by epoch
// is curve: the best (lowest) of its first r epochs (false when it ran
// fewer).
func rungValue(curve []float64, r int) (float64, bool) {
	if len(curve) < r {
		return 0, false
	}
	best := math.NaN()
	for _, v := range curve[:r] {
		if less(v, best) {
			best = v
		}
	}
	return best, true
}

// ashaState holds every trial's rung values and whether it has finished.
type ashaState struct {
	rungs []int
	rf    int

	mu   sync.Mutex
	cond *sync.Cond
	// reached[i][k] is trial i's value at rung k.
	reached map[int][]float64
	done    map[int]bool
}

func newASHA(p *Prune) *ashaState {
	a := &ashaState{rungs: p.Rungs(), rf: p.ReductionFactor, reached: map[int][]float64{}, done: map[int]bool{}}
	a.cond = sync.NewCond(&a.mu)
	return a
}

// replay records a finished trial (from the journal) with its metric curve.
func (a *ashaState) replay(id int, curve []float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.rungs {
		v, ok := rungValue(curve, r)
		if !ok {
			break
		}
		a.reached[id] = append(a.reached[id], v)
	}
	a.done[id] = true
}

// finish marks trial id finished (it reaches no more rungs).
func (a *ashaState) finish(id int) {
	a.mu.Lock()
	a.done[id] = true
	a.mu.Unlock()
	a.cond.Broadcast()
}

// rung returns the index of the rung at epoch e, or -1.
func (a *ashaState) rung(e int) int {
	if i := sort.SearchInts(a.rungs, e); i < len(a.rungs) && a.rungs[i] == e {
		return i
	}
	return -1
}

// report records trial id's curve at the end of epoch len(curve) and, when
// that epoch is a rung, waits for the lower trials to reach it and returns
// whether the trial stays in. Cancellation while waiting returns ctx's
// error.
func (a *ashaState) report(ctx context.Context, id int, curve []float64) (keep bool, err error) {
	e := len(curve)
	k := a.rung(e)
	if k < 0 {
		return true, nil
	}
	v, _ := rungValue(curve, e)
	stop := context.AfterFunc(ctx, func() {
		a.mu.Lock()
		a.cond.Broadcast()
		a.mu.Unlock()
	})
	defer stop()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reached[id] = append(a.reached[id][:k], v)
	a.cond.Broadcast()
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		var others []float64
		ready := true
		for j := range id {
			switch {
			case len(a.reached[j]) > k:
				others = append(others, a.reached[j][k])
			case !a.done[j]:
				ready = false
			}
		}
		if ready {
			return keepAtRung(v, others, a.rf), nil
		}
		a.cond.Wait()
	}
}
