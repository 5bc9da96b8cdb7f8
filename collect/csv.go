package collect

import (
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/location"
	"github.com/modax/modax-ml/internal/runenv"
)

// timeLayouts are the ISO-8601 forms a timestamp may take; without a zone
// the time is UTC. The zone may be Z, ±hh:mm, ±hhmm, ±hh or ±hh:mm:ss: the
// last two are how PostgreSQL (COPY ... CSV, psql) and DuckDB export a
// timestamptz, "2024-01-01 00:00:00+00", "2024-01-01 05:30:00.123+05:30",
// "1900-01-01 00:00:00+00:53:28".
var timeLayouts = func() []string {
	var ls []string
	for _, date := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"} {
		for _, zone := range []string{"Z07:00", "Z0700", "Z07", "Z07:00:00", " Z07:00", ""} {
			ls = append(ls, date+zone)
		}
	}
	return append(ls, "2006-01-02T15:04Z07:00", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02")
}()

// timeForms is the hint of a time that cannot be parsed.
const timeForms = "want ISO-8601 such as 2024-01-31T12:00:00Z or 2024-01-31 12:00:00+00, or epoch seconds"

// parseTime reads an ISO-8601 time (UTC when it has no zone) or an epoch
// number: seconds (may be fractional), or milliseconds, microseconds or
// nanoseconds when the value is too large to be seconds (|v| ≥ 1e11, 1e14,
// 1e17: years after 5138 in seconds). A time that has the form of one of the
// layouts but an impossible field (month 13, offset +99) says which.
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, errors.New("empty timestamp")
	}
	if c := s[0]; c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9' && !strings.ContainsAny(s, "-:T ")) {
		return parseEpoch(s)
	}
	why := ""
	for _, l := range timeLayouts {
		t, err := time.Parse(l, s)
		if err == nil {
			return t.UTC().Truncate(time.Microsecond), nil
		}
		var pe *time.ParseError
		if errors.As(err, &pe) && strings.HasSuffix(pe.Message, "out of range") && why == "" {
			why = strings.TrimPrefix(pe.Message, ": ") + "; "
		}
	}
	return time.Time{}, fmt.Errorf("cannot parse %q as a time (%s%s)", s, why, timeForms)
}

func parseEpoch(s string) (time.Time, error) {
	bad := fmt.Errorf("cannot parse %q as a time (%s)", s, timeForms)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		a := n
		if a < 0 {
			a = -a
		}
		switch {
		case a < 1e11:
			return time.Unix(n, 0).UTC(), nil
		case a < 1e14:
			return time.UnixMilli(n).UTC(), nil
		case a < 1e17:
			return time.UnixMicro(n).UTC(), nil
		default:
			return time.Unix(0, n).UTC().Truncate(time.Microsecond), nil
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return time.Time{}, bad
	}
	scale := 1e6 // µs per unit
	switch a := math.Abs(v); {
	case a < 1e11:
	case a < 1e14:
		scale = 1e3
	case a < 1e17:
		scale = 1
	case a < 9e18:
		scale = 1e-3
	default:
		return time.Time{}, bad
	}
	return time.UnixMicro(int64(math.Floor(v * scale))).UTC(), nil
}

// csvSource is a CSV file being read, for file:line errors.
type csvSource struct {
	name   string
	r      *csv.Reader
	header []string
}

func openCSV(name string, r io.Reader) (*csvSource, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	cr.TrimLeadingSpace = true
	hdr, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, dataError("%s: empty file (want a header row)", name)
	}
	if err != nil {
		return nil, csvError(name, err)
	}
	header := make([]string, len(hdr))
	seen := map[string]int{}
	for i, h := range hdr {
		h = strings.TrimSpace(h)
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff")
		}
		if h == "" {
			return nil, dataError("%s:1: column %d has no name", name, i+1)
		}
		if j, ok := seen[h]; ok {
			return nil, dataError("%s:1: column %q appears twice (columns %d and %d)", name, h, j+1, i+1)
		}
		seen[h] = i
		header[i] = h
	}
	return &csvSource{name: name, r: cr, header: header}, nil
}

// next returns the next record and its line, or io.EOF.
func (c *csvSource) next() ([]string, int, error) {
	rec, err := c.r.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, 0, io.EOF
		}
		return nil, 0, csvError(c.name, err)
	}
	line, _ := c.r.FieldPos(0)
	return rec, line, nil
}

func (c *csvSource) col(name string) int { return slices.Index(c.header, name) }

func csvError(name string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			return dataError("%s:%d: wrong number of fields (the header has a different count)", name, pe.Line)
		}
		return dataError("%s:%d:%d: %v", name, pe.Line, pe.Column, pe.Err)
	}
	return fmt.Errorf("read %s: %w", name, err)
}

// csvFrame is a device's rows while reading, with their lines.
type csvFrame struct {
	*dataset.Frame
	lines []int
}

// ReadCSV reads a readings CSV file and, when failuresPath is not empty, a
// failures CSV file.
//
// Readings: a header row naming device_id, timestamp, optionally tenant_id
// (default: tenant), and one column per sensor (every other column, in header
// order). Timestamps are ISO-8601 (UTC when no zone is given) or epoch
// seconds (milliseconds/microseconds/nanoseconds when the value is too large
// for seconds). An empty sensor field is a missing value; NaN or Inf is an
// error (missing values are left empty). Two rows of the same device and time
// are an error naming both lines.
//
// Failures: a header row with device_id, event_time, and optionally tenant_id,
// event_type (default "failure"), component_failed, operating_hours_at_failure.
//
// The frames are sorted by tenant, device and time; failures by tenant,
// device and time. Errors name the file and line.
func ReadCSV(path, failuresPath, tenant string) (frames []*dataset.Frame, failures []dataset.Failure, sensors []string, err error) {
	f, err := location.OpenStream(context.Background(), path)
	if err != nil {
		return nil, nil, nil, err
	}
	defer f.Close()
	frames, sensors, err = parseReadingsCSV(path, f, tenant)
	if err != nil {
		return nil, nil, nil, err
	}
	if failuresPath != "" {
		ff, err := location.OpenStream(context.Background(), failuresPath)
		if err != nil {
			return nil, nil, nil, err
		}
		defer ff.Close()
		if failures, err = parseFailuresCSV(failuresPath, ff, tenant); err != nil {
			return nil, nil, nil, err
		}
	}
	return frames, failures, sensors, nil
}

func parseReadingsCSV(name string, r io.Reader, tenant string) ([]*dataset.Frame, []string, error) {
	c, err := openCSV(name, r)
	if err != nil {
		return nil, nil, err
	}
	ti, di, tsi := c.col(dataset.ColTenant), c.col(dataset.ColDevice), c.col(dataset.ColTimestamp)
	for _, k := range []struct {
		name string
		i    int
	}{{dataset.ColDevice, di}, {dataset.ColTimestamp, tsi}} {
		if k.i < 0 {
			return nil, nil, dataError("%s:1: missing column %q (header: %s)", name, k.name, strings.Join(c.header, ","))
		}
	}
	var sensors []string
	var sensorIdx []int
	for i, h := range c.header {
		if i != ti && i != di && i != tsi {
			sensors = append(sensors, h)
			sensorIdx = append(sensorIdx, i)
		}
	}
	if len(sensors) == 0 {
		return nil, nil, dataError("%s:1: no sensor columns (header: %s)", name, strings.Join(c.header, ","))
	}
	byKey := map[[2]string]*csvFrame{}
	var all []*csvFrame
	for {
		rec, line, err := c.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		t := tenant
		if ti >= 0 {
			if t = strings.TrimSpace(rec[ti]); t == "" {
				return nil, nil, dataError("%s:%d: empty %s", name, line, dataset.ColTenant)
			}
		}
		dev := strings.TrimSpace(rec[di])
		if dev == "" {
			return nil, nil, dataError("%s:%d: empty %s", name, line, dataset.ColDevice)
		}
		ts, err := parseTime(rec[tsi])
		if err != nil {
			return nil, nil, dataError("%s:%d: column %s: %v", name, line, dataset.ColTimestamp, err)
		}
		key := [2]string{t, dev}
		fr := byKey[key]
		if fr == nil {
			fr = &csvFrame{Frame: dataset.NewFrame(t, dev, len(sensors), false)}
			byKey[key] = fr
			all = append(all, fr)
		}
		fr.Time = append(fr.Time, dataset.Micros(ts))
		fr.lines = append(fr.lines, line)
		for s, i := range sensorIdx {
			v, err := parseValue(rec[i])
			if err != nil {
				return nil, nil, dataError("%s:%d: column %s: %v", name, line, sensors[s], err)
			}
			fr.Sensors[s] = append(fr.Sensors[s], v)
		}
	}
	if len(all) == 0 {
		return nil, nil, fmt.Errorf("%s: %w (only a header row)", name, ErrNoReadings)
	}
	slices.SortFunc(all, func(a, b *csvFrame) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Device, b.Device))
	})
	frames := make([]*dataset.Frame, len(all))
	for i, fr := range all {
		if err := fr.sortByTime(name); err != nil {
			return nil, nil, err
		}
		frames[i] = fr.Frame
	}
	return frames, sensors, nil
}

// parseValue reads a sensor value: empty is missing (NaN), NaN/Inf refused.
func parseValue(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return math.NaN(), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("%q is out of the float64 range", s)
		}
		return 0, fmt.Errorf("%q is not a number (leave the field empty for a missing value)", s)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a finite number (leave the field empty for a missing value)", s)
	}
	return v, nil
}

// sortByTime orders the rows by time and refuses duplicate timestamps.
func (fr *csvFrame) sortByTime(name string) error {
	if !slices.IsSorted(fr.Time) {
		perm := make([]int, fr.Len())
		for i := range perm {
			perm[i] = i
		}
		slices.SortStableFunc(perm, func(a, b int) int { return cmp.Compare(fr.Time[a], fr.Time[b]) })
		fr.Time = permute(fr.Time, perm)
		fr.lines = permute(fr.lines, perm)
		for s := range fr.Sensors {
			fr.Sensors[s] = permute(fr.Sensors[s], perm)
		}
	}
	for i := 1; i < fr.Len(); i++ {
		if fr.Time[i] == fr.Time[i-1] {
			a, b := min(fr.lines[i], fr.lines[i-1]), max(fr.lines[i], fr.lines[i-1])
			return dataError("%s:%d: duplicate reading: device %s at %s is also on line %d", name, b, fr.Device,
				dataset.TimeOf(fr.Time[i]).Format(time.RFC3339Nano), a)
		}
	}
	return nil
}

var failureColumns = []string{dataset.ColTenant, dataset.ColDevice, dataset.ColEventTime, dataset.ColEventType, dataset.ColComponent, dataset.ColOpHours}

func parseFailuresCSV(name string, r io.Reader, tenant string) ([]dataset.Failure, error) {
	c, err := openCSV(name, r)
	if err != nil {
		return nil, err
	}
	for _, h := range c.header {
		if !slices.Contains(failureColumns, h) {
			return nil, dataError("%s:1: unexpected column %q (a failures file has %s)", name, h, strings.Join(failureColumns, ", "))
		}
	}
	ti, di, ei := c.col(dataset.ColTenant), c.col(dataset.ColDevice), c.col(dataset.ColEventTime)
	yi, ci, oi := c.col(dataset.ColEventType), c.col(dataset.ColComponent), c.col(dataset.ColOpHours)
	for _, k := range []struct {
		name string
		i    int
	}{{dataset.ColDevice, di}, {dataset.ColEventTime, ei}} {
		if k.i < 0 {
			return nil, dataError("%s:1: missing column %q (header: %s)", name, k.name, strings.Join(c.header, ","))
		}
	}
	var out []dataset.Failure
	var lines []int
	for {
		rec, line, err := c.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		f := dataset.Failure{Tenant: tenant, EventType: "failure", OpHours: math.NaN()}
		if ti >= 0 {
			if f.Tenant = strings.TrimSpace(rec[ti]); f.Tenant == "" {
				return nil, dataError("%s:%d: empty %s", name, line, dataset.ColTenant)
			}
		}
		if f.Device = strings.TrimSpace(rec[di]); f.Device == "" {
			return nil, dataError("%s:%d: empty %s", name, line, dataset.ColDevice)
		}
		t, err := parseTime(rec[ei])
		if err != nil {
			return nil, dataError("%s:%d: column %s: %v", name, line, dataset.ColEventTime, err)
		}
		f.Time = dataset.Micros(t)
		if yi >= 0 {
			if s := strings.TrimSpace(rec[yi]); s != "" {
				f.EventType = s
			}
		}
		if ci >= 0 {
			f.Component = strings.TrimSpace(rec[ci])
		}
		if oi >= 0 {
			if f.OpHours, err = parseValue(rec[oi]); err != nil {
				return nil, dataError("%s:%d: column %s: %v", name, line, dataset.ColOpHours, err)
			}
		}
		out = append(out, f)
		lines = append(lines, line)
	}
	perm := make([]int, len(out))
	for i := range perm {
		perm[i] = i
	}
	slices.SortStableFunc(perm, func(a, b int) int {
		x, y := out[a], out[b]
		return cmp.Or(cmp.Compare(x.Tenant, y.Tenant), cmp.Compare(x.Device, y.Device), cmp.Compare(x.Time, y.Time), cmp.Compare(x.EventType, y.EventType))
	})
	out, lines = permute(out, perm), permute(lines, perm)
	for i := 1; i < len(out); i++ {
		a, b := out[i-1], out[i]
		if a.Tenant == b.Tenant && a.Device == b.Device && a.Time == b.Time && a.EventType == b.EventType {
			return nil, dataError("%s:%d: duplicate %s event of device %s at %s (also on line %d)", name, max(lines[i], lines[i-1]),
				b.EventType, b.Device, dataset.TimeOf(b.Time).Format(time.RFC3339Nano), min(lines[i], lines[i-1]))
		}
	}
	return out, nil
}

// csvPath strips the optional "csv:" prefix of --failures.
func csvPath(s string) string {
	if p, ok := strings.CutPrefix(s, SourceCSV+":"); ok {
		return p
	}
	return s
}

func runCSV(ctx context.Context, env *runenv.Env, opts Options, path, tenant string, flt filter) (*Result, error) {
	failPath := csvPath(opts.Failures)
	frames, failures, sensors, err := ReadCSV(path, failPath, tenant)
	if err != nil {
		return nil, err
	}
	inputs := []string{path}
	if failPath != "" {
		inputs = append(inputs, failPath)
	}
	meta, err := env.FileMeta(Stage, inputs...)
	if err != nil {
		return nil, err
	}
	sourceMeta(meta, map[string]any{"source": SourceCSV, "path": path, "failures": failPath, "tenant": tenant})
	var total int64
	for _, f := range frames {
		total += int64(f.Len())
	}
	if failPath == "" {
		env.Log.Warn("no --failures csv:PATH given: every device's history is censored (no failure events)")
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
