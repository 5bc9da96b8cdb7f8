package score

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/location"
)

// device is one device as a source hands it over: its readings since the
// last failure at or before --at (at most the readings the window needs,
// oldest first, sensors in the model's column order), or why there are none.
type device struct {
	name  string
	frame *dataset.Frame // nil: see reason
	// reason and detail are set when the source already knows the device
	// cannot be scored (unknown device, no readings since the last repair).
	reason, detail string
}

// source yields the devices to score in batches.
type source interface {
	// scan calls fn with batches of at most batch devices; need is the
	// number of most recent readings wanted per device.
	scan(ctx context.Context, batch, need int, fn func([]device) error) error
	// describe is the source as recorded in the scores file's metadata.
	describe() map[string]any
	inputs() []string
	close()
}

// unknownTenantError says the tenant has no readings at all.
type unknownTenantError struct {
	tenant, where string
	known         []string
}

func (e *unknownTenantError) Error() string {
	msg := fmt.Sprintf("tenant %q has no readings in %s", e.tenant, e.where)
	if len(e.known) > 0 {
		msg += " (tenants there: " + strings.Join(e.known, ", ") + ")"
	}
	return msg + "; set db.tenant / --tenant"
}

// fileSource reads a readings file and, when there is one, its failure log.
type fileSource struct {
	s        *settings
	cols     []string
	failures map[string][]int64 // device → failure times, ascending
	failLoc  string
}

func openFile(ctx context.Context, s *settings, cols []string) (*fileSource, error) {
	r, err := dataset.Open(s.Readings, dataset.KindReadings)
	if err != nil {
		return nil, fmt.Errorf("%w: score: %w", exitcode.ErrValidation, err)
	}
	sensors, err := r.Sensors()
	r.Close()
	if err != nil {
		return nil, fmt.Errorf("%w: score: %w", exitcode.ErrValidation, err)
	}
	var lacks []string
	for _, c := range cols {
		if !slices.Contains(sensors, c) {
			lacks = append(lacks, c)
		}
	}
	if len(lacks) > 0 {
		return nil, fmt.Errorf("%w: score: %s lacks the model's input column(s) %s (it has %s)", exitcode.ErrValidation,
			s.Readings, strings.Join(lacks, ", "), strings.Join(sensors, ", "))
	}
	src := &fileSource{s: s, cols: cols, failures: map[string][]int64{}}
	if s.Failures != "" {
		fs, err := readFailures(ctx, s)
		if err != nil {
			return nil, err
		}
		if fs != nil {
			src.failLoc = s.Failures
			for _, f := range fs {
				if f.Tenant == s.DB.Tenant {
					src.failures[f.Device] = append(src.failures[f.Device], f.Time)
				}
			}
			for _, ts := range src.failures {
				slices.Sort(ts)
			}
		}
	}
	return src, nil
}

// readFailures reads the failure log; the default file may be absent (no
// failures known), a named one must exist. It returns nil when there is none.
func readFailures(ctx context.Context, s *settings) ([]dataset.Failure, error) {
	if ok, err := location.Exists(ctx, s.Failures); err == nil && !ok && s.Failures == DefaultOptions().Failures {
		return nil, nil
	}
	fs, _, err := dataset.ReadFailures(ctx, s.Failures)
	if err != nil {
		return nil, fmt.Errorf("%w: score: --failures: %w", exitcode.ErrValidation, err)
	}
	return fs, nil
}

func (f *fileSource) describe() map[string]any {
	return map[string]any{"source": SourceFile, "readings": f.s.Readings, "failures": f.failLoc}
}

func (f *fileSource) inputs() []string {
	if f.failLoc != "" {
		return []string{f.s.Readings, f.failLoc}
	}
	return []string{f.s.Readings}
}

func (f *fileSource) close() {}

// lastFailure returns the latest of ts at or before at (0 when none).
func lastFailure(ts []int64, at int64) (int64, bool) {
	i := sort.Search(len(ts), func(i int) bool { return ts[i] > at })
	if i == 0 {
		return 0, false
	}
	return ts[i-1], true
}

// readAhead runs read in a goroutine of its own, handing each batch it
// emits to fn in the calling goroutine: the next batch is read while fn
// scores the current one, so that reading (the file's decoding, the
// database's work) and the forward pass overlap. At most two batches are
// held (the one fn has and the one read ahead). read's error, or fn's,
// ends both; read must stop when emit returns an error.
func readAhead(ctx context.Context, read func(ctx context.Context, emit func([]device) error) error, fn func([]device) error) error {
	type item struct {
		ds  []device
		err error
	}
	rctx, cancel := context.WithCancel(ctx)
	next := make(chan item)
	go func() {
		defer close(next)
		err := read(rctx, func(ds []device) error {
			select {
			case next <- item{ds: ds}:
				return nil
			case <-rctx.Done():
				return rctx.Err()
			}
		})
		if err != nil {
			select {
			case next <- item{err: err}:
			case <-rctx.Done():
			}
		}
	}()
	defer func() {
		cancel()
		for range next { // wait for the reader to stop
		}
	}()
	for it := range next {
		if it.err != nil {
			return it.err
		}
		if err := fn(it.ds); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (f *fileSource) scan(ctx context.Context, batch, need int, fn func([]device) error) error {
	return readAhead(ctx, func(ctx context.Context, emit func([]device) error) error { return f.read(ctx, batch, need, emit) }, fn)
}

// read emits the devices of the readings file in batches of at most batch.
func (f *fileSource) read(ctx context.Context, batch, need int, fn func([]device) error) error {
	r, err := dataset.Open(f.s.Readings, dataset.KindReadings)
	if err != nil {
		return fmt.Errorf("%w: score: %w", exitcode.ErrValidation, err)
	}
	defer r.Close()
	want := map[string]bool{}
	for _, d := range f.s.Devices {
		want[d] = true
	}
	seen := map[string]bool{}
	tenants := map[string]bool{}
	at := dataset.Micros(f.s.at)
	var buf []device
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		err := fn(buf)
		buf = nil
		return err
	}
	for fr, err := range r.DeviceFrames(ctx, f.cols) {
		if err != nil {
			return fmt.Errorf("%w: score: %w", exitcode.ErrValidation, err)
		}
		tenants[fr.Tenant] = true
		if fr.Tenant != f.s.DB.Tenant || (len(want) > 0 && !want[fr.Device]) {
			continue
		}
		seen[fr.Device] = true
		lf, hasFailure := lastFailure(f.failures[fr.Device], at)
		hi := sort.Search(fr.Len(), func(i int) bool { return fr.Time[i] > at })
		lo := 0
		if hasFailure {
			lo = sort.Search(hi, func(i int) bool { return fr.Time[i] > lf })
		}
		d := device{name: fr.Device}
		if lo == hi {
			d.reason, d.detail = ReasonTooFew, noReadings(hasFailure, lf)
		} else {
			d.frame = recent(fr, max(lo, hi-need), hi)
		}
		buf = append(buf, d)
		if len(buf) == batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if !tenants[f.s.DB.Tenant] {
		known := make([]string, 0, len(tenants))
		for t := range tenants {
			known = append(known, t)
		}
		slices.Sort(known)
		return &unknownTenantError{tenant: f.s.DB.Tenant, where: f.s.Readings, known: known}
	}
	for _, d := range f.s.Devices {
		if !seen[d] {
			seen[d] = true // a device named twice is listed once
			buf = append(buf, device{name: d, reason: ReasonUnknownDevice, detail: fmt.Sprintf("no readings of device %q of tenant %q in %s", d, f.s.DB.Tenant, f.s.Readings)})
			if len(buf) == batch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// noReadings explains a device without readings in its current life.
func noReadings(hasFailure bool, lf int64) string {
	if hasFailure {
		return "no readings at or before --at since the last repair at " + dataset.TimeOf(lf).Format("2006-01-02T15:04:05Z07:00")
	}
	return "no readings at or before --at"
}

// recent copies rows [lo, hi) of f's sensors and times into a new frame, so
// that the device's whole history is not kept.
func recent(f *dataset.Frame, lo, hi int) *dataset.Frame {
	g := dataset.NewFrame(f.Tenant, f.Device, len(f.Sensors), false)
	g.Time = slices.Clone(f.Time[lo:hi])
	for j, col := range f.Sensors {
		g.Sensors[j] = slices.Clone(col[lo:hi])
	}
	return g
}
