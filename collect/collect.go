package collect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/pg"
	"github.com/modax/modax-ml/internal/progress"
	"github.com/modax/modax-ml/internal/runenv"
)

// Stage is the stage name recorded in the files' metadata.
const Stage = "collect"

// Source kinds.
const (
	SourceSynthetic = "synthetic"
	SourcePostgres  = "postgres"
	SourceCSV       = "csv"
	SourceCMAPSS    = "cmapss"
)

// ErrNoReadings is returned when a source yields no readings (unknown tenant,
// devices or time range with no data, a CSV with only a header). It is a data
// error (exit code 3).
var ErrNoReadings = fmt.Errorf("%w: no readings", exitcode.ErrValidation)

// Options configure collect (config section `collect`).
type Options struct {
	// Source is synthetic, postgres, csv:PATH or cmapss:PATH.
	Source string `yaml:"source"`
	// Failures is the failures CSV of a csv source (csv:PATH or PATH).
	Failures string `yaml:"failures"`
	// RUL is the true-RUL file of a C-MAPSS test file (RUL_FD00x.txt).
	RUL string `yaml:"rul"`
	// Out and FailuresOut are the files written.
	Out         string `yaml:"out"`
	FailuresOut string `yaml:"failures_out"`
	// Devices restricts the devices (all when empty).
	Devices []string `yaml:"devices"`
	// From and To bound the readings' time range, inclusive (RFC 3339 or
	// YYYY-MM-DD; empty: unbounded). Failures after To are kept: they are the
	// RUL labels of the last readings.
	From string `yaml:"from"`
	To   string `yaml:"to"`
	// Synthetic shapes the simulated fleet.
	Synthetic SyntheticOptions `yaml:"synthetic"`
	// Postgres tunes the database source.
	Postgres PostgresOptions `yaml:"postgres"`

	// DB holds the database, tenant, tables and sensor columns (config
	// section `db`; the command layer copies it here). DB.Tenant is the
	// tenant of every source.
	DB pg.Config `yaml:"-"`
}

// DefaultOptions returns the defaults: the synthetic fleet into
// readings.parquet and failures.parquet.
func DefaultOptions() Options {
	return Options{
		Source:      SourceSynthetic,
		Out:         "readings.parquet",
		FailuresOut: "failures.parquet",
		Synthetic:   DefaultSyntheticOptions(),
		Postgres:    DefaultPostgresOptions(),
		DB:          pg.DefaultConfig(),
	}
}

// File describes a written file.
type File struct {
	Path   string `json:"path"`
	Schema string `json:"schema"`
	Rows   int64  `json:"rows"`
	SHA256 string `json:"sha256"`
}

// TimeRange is the time span of the readings written.
type TimeRange struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Result summarises a collect run (printed by --output json).
type Result struct {
	Source        string    `json:"source"`
	Tenants       []string  `json:"tenants"`
	Rows          int64     `json:"rows"`
	Devices       int       `json:"devices"`
	Failures      int       `json:"failures"`
	Sensors       []string  `json:"sensors"`
	TimeRange     TimeRange `json:"time_range"`
	Files         []File    `json:"files"`
	Seconds       float64   `json:"seconds"`
	RowsPerSecond float64   `json:"rows_per_second"`
}

// filter is the device and time restriction of a run.
type filter struct {
	devices  map[string]bool // nil: all
	from, to *time.Time
}

func (f filter) device(d string) bool { return f.devices == nil || f.devices[d] }

func (o Options) filter() (filter, error) {
	var f filter
	if len(o.Devices) > 0 {
		f.devices = map[string]bool{}
		for _, d := range o.Devices {
			f.devices[d] = true
		}
	}
	for _, b := range []struct {
		key, val string
		dst      **time.Time
	}{{"from", o.From, &f.from}, {"to", o.To, &f.to}} {
		if b.val == "" {
			continue
		}
		t, err := parseTime(b.val)
		if err != nil {
			return f, fmt.Errorf("%w: collect.%s (--%s) %q: %w", exitcode.ErrUsage, b.key, b.key, b.val, err)
		}
		*b.dst = &t
	}
	if f.from != nil && f.to != nil && f.to.Before(*f.from) {
		return f, fmt.Errorf("%w: --to %s is before --from %s", exitcode.ErrUsage, o.To, o.From)
	}
	return f, nil
}

// splitSource splits "kind:path" (a bare "synthetic" or "postgres" has no path).
func splitSource(s string) (kind, path string, err error) {
	kind, path, _ = strings.Cut(s, ":")
	switch kind {
	case SourceSynthetic, SourcePostgres:
		if path != "" {
			return "", "", fmt.Errorf("%w: --source %q: %s takes no path", exitcode.ErrUsage, s, kind)
		}
	case SourceCSV, SourceCMAPSS:
		if path == "" {
			return "", "", fmt.Errorf("%w: --source %q: want %s:PATH", exitcode.ErrUsage, s, kind)
		}
	default:
		return "", "", fmt.Errorf("%w: --source %q: want synthetic, postgres, csv:PATH or cmapss:PATH", exitcode.ErrUsage, s)
	}
	return kind, path, nil
}

// Run collects readings and failures from the configured source into
// opts.Out and opts.FailuresOut. The two files are one write set
// (internal/atomicfile): both record its ID, which label and validate compare,
// and they are renamed into place together — on an error, a cancellation or a
// failed rename every previous output is left as it was.
func Run(ctx context.Context, env *runenv.Env, opts Options) (*Result, error) {
	start := env.Now()
	kind, path, err := splitSource(opts.Source)
	if err != nil {
		return nil, err
	}
	if opts.Out == "" || opts.FailuresOut == "" {
		return nil, fmt.Errorf("%w: collect needs output paths (--out, --failures-out)", exitcode.ErrUsage)
	}
	if opts.Out == opts.FailuresOut {
		return nil, fmt.Errorf("%w: --out and --failures-out are both %s", exitcode.ErrUsage, opts.Out)
	}
	if err := atomicfile.CheckOutputs([]atomicfile.Path{atomicfile.P("--source", path), atomicfile.P("--failures", opts.Failures), atomicfile.P("--rul", opts.RUL)},
		[]atomicfile.Path{atomicfile.P("--out", opts.Out), atomicfile.P("--failures-out", opts.FailuresOut)}); err != nil {
		return nil, err
	}
	flt, err := opts.filter()
	if err != nil {
		return nil, err
	}
	if kind != SourceCSV && opts.Failures != "" {
		return nil, fmt.Errorf("%w: --failures is for --source csv:PATH (the %s source brings its own failures)", exitcode.ErrUsage, kind)
	}
	if kind != SourceCMAPSS && opts.RUL != "" {
		return nil, fmt.Errorf("%w: --rul is for --source cmapss:PATH", exitcode.ErrUsage)
	}
	tenant := opts.DB.Tenant
	if tenant == "" {
		tenant = "default"
	}
	env.Log.Info("collect", "source", kind, "path", path, "tenant", tenant)

	var res *Result
	switch kind {
	case SourceSynthetic:
		res, err = runSynthetic(ctx, env, opts, tenant, flt)
	case SourceCMAPSS:
		res, err = runCMAPSS(ctx, env, opts, path, tenant, flt)
	case SourceCSV:
		res, err = runCSV(ctx, env, opts, path, tenant, flt)
	case SourcePostgres:
		res, err = runPostgres(ctx, env, opts, tenant, flt)
	}
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, context.Canceled) {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return nil, fmt.Errorf("collect: %w", err)
	}
	res.Source = kind
	res.Seconds = env.Now().Sub(start).Seconds()
	if res.Seconds > 0 {
		res.RowsPerSecond = math.Round(float64(res.Rows) / res.Seconds)
	}
	env.Log.Info("collected", "rows", res.Rows, "devices", res.Devices, "failures", res.Failures, "seconds", math.Round(res.Seconds*1000)/1000)
	return res, nil
}

// sourceMeta records where the data came from (never a DSN) in modax.source.
func sourceMeta(meta dataset.Meta, v any) {
	b, _ := json.Marshal(v)
	meta[dataset.MetaSource] = string(b)
}

// frameSink writes frames from the in-process sources (synthetic, C-MAPSS,
// CSV) to the readings file, applying the filter and checking order.
type frameSink struct {
	w       *dataset.FrameWriter
	loc     string
	flt     filter
	bar     progress.Bar
	stats   stats
	lastKey [2]string
}

// stats accumulates the summary of the readings written.
type stats struct {
	rows     int64
	devices  int
	tenants  []string
	min, max int64
}

func (s *stats) device(tenant string, rows int, first, last int64) {
	if rows == 0 {
		return
	}
	if s.rows == 0 || first < s.min {
		s.min = first
	}
	if s.rows == 0 || last > s.max {
		s.max = last
	}
	s.rows += int64(rows)
	s.devices++
	if len(s.tenants) == 0 || s.tenants[len(s.tenants)-1] != tenant {
		s.tenants = append(s.tenants, tenant)
	}
}

func newFrameSink(set *atomicfile.Set, loc string, sensors []string, meta dataset.Meta, flt filter, bar progress.Bar) (*frameSink, error) {
	w, err := dataset.CreateFrames(loc, sensors, false, meta, dataset.InSet(set))
	if err != nil {
		return nil, err
	}
	return &frameSink{w: w, loc: loc, flt: flt, bar: bar}, nil
}

// add writes the rows of f inside the filter. Frames must arrive in (tenant,
// device) order with strictly increasing times.
func (s *frameSink) add(f *dataset.Frame) error {
	key := [2]string{f.Tenant, f.Device}
	if s.stats.devices > 0 && (key[0] < s.lastKey[0] || (key[0] == s.lastKey[0] && key[1] <= s.lastKey[1])) {
		return fmt.Errorf("device %s/%s arrives after %s/%s (sources must yield devices in order)", f.Tenant, f.Device, s.lastKey[0], s.lastKey[1])
	}
	if !s.flt.device(f.Device) {
		return nil
	}
	for i := 1; i < f.Len(); i++ {
		if f.Time[i] <= f.Time[i-1] {
			return fmt.Errorf("device %s/%s: timestamps not strictly increasing at %s", f.Tenant, f.Device, dataset.TimeOf(f.Time[i]).Format(time.RFC3339Nano))
		}
	}
	lo, hi := 0, f.Len()
	if s.flt.from != nil {
		lo, _ = slices.BinarySearch(f.Time, dataset.Micros(*s.flt.from))
	}
	if s.flt.to != nil {
		hi, _ = slices.BinarySearch(f.Time, dataset.Micros(*s.flt.to)+1)
	}
	if lo >= hi {
		return nil
	}
	if err := s.w.AppendRange(f, lo, hi); err != nil {
		return err
	}
	s.lastKey = key
	s.stats.device(f.Tenant, hi-lo, f.Time[lo], f.Time[hi-1])
	s.bar.Add(int64(hi - lo))
	return nil
}

// filterFailures keeps the failures of the selected devices at or after From.
func filterFailures(fs []dataset.Failure, flt filter) []dataset.Failure {
	out := fs[:0:0]
	for _, f := range fs {
		if !flt.device(f.Device) || (flt.from != nil && f.Time < dataset.Micros(*flt.from)) {
			continue
		}
		out = append(out, f)
	}
	return out
}

// finish writes the failures, commits the readings with them (the write set
// of both) and fills the result. The readings writer is aborted on any error.
func finish(set *atomicfile.Set, opts Options, w interface {
	Commit() error
	Abort()
}, st stats, sensors []string, failures []dataset.Failure, meta dataset.Meta) (*Result, error) {
	if st.rows == 0 {
		w.Abort()
		return nil, ErrNoReadings
	}
	dataset.SortFailures(failures)
	if err := dataset.WriteFailures(opts.FailuresOut, failures, meta, dataset.InSet(set)); err != nil {
		w.Abort()
		return nil, err
	}
	if err := w.Commit(); err != nil {
		return nil, err
	}
	if err := set.Commit(); err != nil {
		return nil, fmt.Errorf("%w (the previous %s and %s are left as they were)", err, opts.Out, opts.FailuresOut)
	}
	res := &Result{
		Tenants:   st.tenants,
		Rows:      st.rows,
		Devices:   st.devices,
		Failures:  len(failures),
		Sensors:   sensors,
		TimeRange: TimeRange{From: dataset.TimeOf(st.min), To: dataset.TimeOf(st.max)},
	}
	for _, f := range []struct {
		path, kind string
		rows       int64
	}{{opts.Out, dataset.KindReadings, st.rows}, {opts.FailuresOut, dataset.KindFailures, int64(len(failures))}} {
		sum, err := dataset.FileSHA256(f.path)
		if err != nil {
			return nil, err
		}
		res.Files = append(res.Files, File{Path: f.path, Schema: f.kind, Rows: f.rows, SHA256: sum})
	}
	return res, nil
}

// writeFrames runs a frame source into the output files.
func writeFrames(ctx context.Context, env *runenv.Env, opts Options, sensors []string, meta dataset.Meta, flt filter, total int64,
	gen func(add func(*dataset.Frame) error) ([]dataset.Failure, error)) (*Result, error) {
	bar := env.Progress("collect", "rows", total)
	defer bar.Finish()
	set := atomicfile.NewSet()
	defer set.Abort()
	sink, err := newFrameSink(set, opts.Out, sensors, meta, flt, bar)
	if err != nil {
		return nil, err
	}
	failures, err := gen(func(f *dataset.Frame) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return sink.add(f)
	})
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		sink.w.Abort()
		return nil, err
	}
	bar.SetTotal(sink.stats.rows) // the total was an upper bound
	return finish(set, opts, sink.w, sink.stats, sensors, filterFailures(failures, flt), meta)
}

func runSynthetic(ctx context.Context, env *runenv.Env, opts Options, tenant string, flt filter) (*Result, error) {
	so := opts.Synthetic
	so.Tenant = tenant
	if err := so.check(); err != nil {
		return nil, err
	}
	meta, err := env.FileMeta(Stage)
	if err != nil {
		return nil, err
	}
	sourceMeta(meta, map[string]any{"source": SourceSynthetic, "tenant": tenant, "options": so})
	return writeFrames(ctx, env, opts, SyntheticSensors, meta, flt, so.Rows(), func(add func(*dataset.Frame) error) ([]dataset.Failure, error) {
		var all []dataset.Failure
		err := SyntheticFleet(ctx, so, func(f *dataset.Frame, fs []dataset.Failure) error {
			all = append(all, fs...)
			return add(f)
		})
		return all, err
	})
}

func runCMAPSS(ctx context.Context, env *runenv.Env, opts Options, path, tenant string, flt filter) (*Result, error) {
	frames, failures, sensors, err := ReadCMAPSS(path, opts.RUL, tenant)
	if err != nil {
		return nil, err
	}
	inputs := []string{path}
	if opts.RUL != "" {
		inputs = append(inputs, opts.RUL)
	}
	meta, err := env.FileMeta(Stage, inputs...)
	if err != nil {
		return nil, err
	}
	sourceMeta(meta, map[string]any{"source": SourceCMAPSS, "path": path, "rul": opts.RUL, "tenant": tenant,
		"epoch": CMAPSSEpoch, "cycle": "1h"})
	var total int64
	for _, f := range frames {
		total += int64(f.Len())
	}
	return writeFrames(ctx, env, opts, sensors, meta, flt, total, func(add func(*dataset.Frame) error) ([]dataset.Failure, error) {
		for _, f := range frames {
			if err := add(f); err != nil {
				return nil, err
			}
		}
		return failures, nil
	})
}
