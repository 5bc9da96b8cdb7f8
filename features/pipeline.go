package features

import (
	"context"
	"iter"

	"golang.org/x/sync/errgroup"

	"github.com/modax/modax-ml/internal/dataset"
)

// job is one device on its way through the pipeline.
type job[T any] struct {
	seq int
	f   *dataset.Frame
	out chan T
}

// ordered streams frames (one device at a time, as Reader.DeviceFrames
// yields them) to workers goroutines and hands what each worker emits to
// consume, in frame order: all items of device 0, then of device 1, ... So
// the output does not depend on the number of workers.
//
// Memory: at most workers+1 frames are held at once, plus up to two
// undelivered items per device in flight; a worker whose device is not yet
// being consumed waits. work gets the worker index (for per-worker scratch).
// The first error cancels everything and is returned.
func ordered[T any](ctx context.Context, frames iter.Seq2[*dataset.Frame, error], workers int,
	work func(ctx context.Context, worker, seq int, f *dataset.Frame, emit func(T) error) error,
	consume func(seq int, item T) error,
) error {
	g, ctx := errgroup.WithContext(ctx)
	jobs := make(chan *job[T])
	order := make(chan *job[T], workers)
	g.Go(func() error {
		defer close(order)
		defer close(jobs)
		seq := 0
		for f, err := range frames {
			if err != nil {
				return err
			}
			j := &job[T]{seq: seq, f: f, out: make(chan T, 2)}
			seq++
			select {
			case order <- j:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case jobs <- j:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	for w := range workers {
		g.Go(func() error {
			for j := range jobs {
				f := j.f
				j.f = nil
				err := work(ctx, w, j.seq, f, func(item T) error {
					select {
					case j.out <- item:
						return nil
					case <-ctx.Done():
						return ctx.Err()
					}
				})
				close(j.out)
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		for j := range order {
			for {
				var (
					item T
					ok   bool
				)
				select {
				case item, ok = <-j.out:
				case <-ctx.Done():
					return ctx.Err()
				}
				if !ok {
					break
				}
				if err := consume(j.seq, item); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return g.Wait()
}
