package features

import (
	"context"
	"errors"
	"iter"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
)

// TestOrderedBoundsAndOrder: items arrive in device order whatever the
// workers' speed, and at most workers+2 devices are held at once (read but
// not yet fully consumed): memory is bounded by a few devices, not the fleet.
func TestOrderedBoundsAndOrder(t *testing.T) {
	const devices, workers = 200, 3
	var held, maxHeld atomic.Int64
	frames := iter.Seq2[*dataset.Frame, error](func(yield func(*dataset.Frame, error) bool) {
		for i := range devices {
			f := dataset.NewFrame("t", "d", 0, false)
			f.Time = make([]int64, i) // the device's index, for the check
			if h := held.Add(1); h > maxHeld.Load() {
				maxHeld.Store(h)
			}
			if !yield(f, nil) {
				return
			}
		}
	})
	type item struct{ dev, part int }
	next := item{}
	err := ordered(context.Background(), frames, workers,
		func(_ context.Context, _, seq int, f *dataset.Frame, emit func(item) error) error {
			time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
			for p := range 3 {
				if err := emit(item{f.Len(), p}); err != nil {
					return err
				}
			}
			return nil
		},
		func(seq int, it item) error {
			if it != next || seq != it.dev {
				t.Fatalf("got device %d part %d (seq %d), want %v", it.dev, it.part, seq, next)
			}
			if it.part == 2 {
				held.Add(-1)
				next = item{it.dev + 1, 0}
			} else {
				next.part++
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if next.dev != devices {
		t.Fatalf("consumed %d devices, want %d", next.dev, devices)
	}
	if m := maxHeld.Load(); m > workers+2 {
		t.Fatalf("%d devices held at once, want ≤ workers+2 = %d", m, workers+2)
	}
}

// TestOrderedErrors: the first error stops everything, from any side.
func TestOrderedErrors(t *testing.T) {
	boom := errors.New("boom")
	many := iter.Seq2[*dataset.Frame, error](func(yield func(*dataset.Frame, error) bool) {
		for range 1000 {
			if !yield(dataset.NewFrame("t", "d", 0, false), nil) {
				return
			}
		}
	})
	failAt := func(n int) func(_ context.Context, _, seq int, _ *dataset.Frame, emit func(int) error) error {
		return func(_ context.Context, _, seq int, _ *dataset.Frame, emit func(int) error) error {
			if seq == n {
				return boom
			}
			return emit(seq)
		}
	}
	ok := func(int, int) error { return nil }
	if err := ordered(context.Background(), many, 2, failAt(17), ok); !errors.Is(err, boom) {
		t.Fatalf("worker error: %v", err)
	}
	if err := ordered(context.Background(), many, 2, failAt(-1), func(seq, _ int) error {
		if seq == 5 {
			return boom
		}
		return nil
	}); !errors.Is(err, boom) {
		t.Fatalf("consumer error: %v", err)
	}
	bad := iter.Seq2[*dataset.Frame, error](func(yield func(*dataset.Frame, error) bool) {
		yield(dataset.NewFrame("t", "d", 0, false), nil)
		yield(nil, boom)
	})
	if err := ordered(context.Background(), bad, 2, failAt(-1), ok); !errors.Is(err, boom) {
		t.Fatalf("reader error: %v", err)
	}
}
