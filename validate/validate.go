// Package validate is the data-quality gate of modax-ml: it reads readings
// (and failure events), runs the checks listed in checkInfo, and writes a
// deterministic JSON report with each finding's severity, counts and examples
// (device, timestamp). With fail_on set, problems make Run return an error
// wrapping exitcode.ErrValidation (exit code 3), so CI and cron can stop a bad
// retrain.
//
// The readings are read twice, both times streaming: once in file order
// (Reader.Batches: null keys, timestamp order as written, missing/NaN/Inf,
// bounds, the per-sensor distributions) and once a device at a time in time
// order (Reader.DeviceFrames: duplicates, gaps, short devices, robust
// outliers (isolated spikes, median/MAD scaled), and the class balance of the labels to come, computed with the
// label stage's rules from internal/rul).
//
// Every report carries this data's per-sensor distributions ("reference"),
// so that a later run (--reference) or the monitor can measure drift against
// it with internal/drift.
package validate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/drift"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/rul"
	"github.com/modax/modax-ml/internal/runenv"
)

type deviceKey struct{ tenant, device string }

// device accumulates what the checks need to know about one device.
type device struct {
	key         deviceKey
	rows        int64
	first, last int64 // smallest and largest timestamp
	prev        int64 // last timestamp in file order
	missing     []int64
	medianIvl   float64 // µs, from the second pass (0: unknown)
	failures    []int64 // distinct failure times
}

// sensor accumulates one sensor's counts over the whole file.
type sensor struct {
	name       string
	bound      *Bound
	sketch     *drift.Sketch
	missing    int64
	nan, inf   int64
	oor        int64
	outliers   int64
	outlierDev int64
	exMissing  examples
	exNaN      examples
	exInf      examples
	exOOR      examples
	exOutliers examples
}

type validator struct {
	opts    Options
	env     *runenv.Env
	rep     *Report
	skipped map[string]string
	rules   rul.Rules

	devices      map[deviceKey]*device
	order        []*device // first-seen order
	sensors      []*sensor
	markedSorted bool
	nullRows     int64
}

// Run validates opts.Readings (and opts.Failures), writes the report to
// opts.Out and returns it. When the fail_on gate fails it returns the report
// together with an error wrapping exitcode.ErrValidation.
func Run(ctx context.Context, env *runenv.Env, opts Options) (*Report, error) {
	if err := opts.check(); err != nil {
		return nil, fmt.Errorf("validate: %w: %w", exitcode.ErrUsage, err)
	}
	if err := atomicfile.CheckOutputs([]atomicfile.Path{atomicfile.P("--readings", opts.Readings), atomicfile.P("--failures", opts.Failures), atomicfile.P("--reference", opts.Reference)},
		[]atomicfile.Path{atomicfile.P("--out", opts.Out)}); err != nil {
		return nil, err
	}
	v := &validator{opts: opts, env: env, skipped: map[string]string{}, rules: opts.Rules(), devices: map[deviceKey]*device{}}
	start := time.Now()
	locs := []string{opts.Readings}
	if opts.Failures != "" {
		locs = append(locs, opts.Failures)
	}
	inputs, err := dataset.Inputs(locs...)
	if err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	v.rep = &Report{
		Schema:      ReportSchema,
		RunID:       env.RunID,
		CreatedAt:   env.Now().UTC().Format(time.RFC3339Nano),
		ToolVersion: env.ToolVersion,
		Inputs:      inputs,
		FailOn:      opts.FailOn,
		Options:     opts,
		Findings:    []Finding{},
		Sensors:     map[string]SensorQuality{},
		Reference:   drift.Reference{Sensors: map[string]drift.Distribution{}},
	}
	var ref *drift.Reference
	if opts.Reference != "" {
		if ref, err = drift.ReadReference(opts.Reference); err != nil {
			return nil, fmt.Errorf("validate: %w", err)
		}
	} else {
		v.skip("no reference report given (--reference)", CheckDrift)
	}
	if len(opts.Bounds) == 0 {
		v.skip("no physical bounds configured (--bound sensor=min:max)", CheckOutOfRange)
	}

	if err := v.run(ctx, ref); err != nil {
		return nil, err
	}
	v.rep.finalize(v.skipped)
	b, err := json.MarshalIndent(v.rep, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("validate: encode report: %w", err)
	}
	if err := atomicfile.WriteFile(opts.Out, append(b, '\n')); err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	env.Log.Info("validate: done", "report", opts.Out, "status", string(v.rep.Status), "errors", v.rep.Counts.Errors,
		"warnings", v.rep.Counts.Warnings, "seconds", time.Since(start).Seconds())
	if v.rep.Failed {
		return v.rep, fmt.Errorf("validate: %s: %d errors, %d warnings (fail_on %s): %w",
			opts.Readings, v.rep.Counts.Errors, v.rep.Counts.Warnings, opts.FailOn, exitcode.ErrValidation)
	}
	return v.rep, nil
}

func (v *validator) skip(reason string, checks ...string) {
	for _, c := range checks {
		if _, ok := v.skipped[c]; !ok {
			v.skipped[c] = reason
		}
	}
}

func (v *validator) add(f Finding) { v.rep.Findings = append(v.rep.Findings, f) }

var (
	perDeviceChecks = []string{CheckDuplicates, CheckOutliers, CheckGaps, CheckShortDevices, CheckClassBalance, CheckFailureOutside}
	failureChecks   = []string{CheckFailureUnknown, CheckFailureOutside, CheckFailureDuplicate, CheckFailureFuture, CheckClassBalance}
	allDataChecks   = []string{CheckEmpty, CheckNullKeys, CheckUnsorted, CheckDuplicates, CheckMissing, CheckNaN, CheckInf,
		CheckConstant, CheckNearConstant, CheckOutOfRange, CheckOutliers, CheckGaps, CheckShortDevices,
		CheckFailureUnknown, CheckFailureOutside, CheckFailureDuplicate, CheckFailureFuture, CheckClassBalance, CheckDrift}
)

func (v *validator) run(ctx context.Context, ref *drift.Reference) error {
	r, err := dataset.Open(v.opts.Readings, "")
	if err != nil {
		return fmt.Errorf("validate: %w", err)
	}
	defer r.Close()
	sensors, ok, err := v.checkSchema(r)
	if err != nil {
		return fmt.Errorf("validate: %w", err)
	}
	var events []dataset.Failure
	if v.opts.Failures == "" {
		v.skip("no failures file given", failureChecks...)
	} else {
		var fmeta dataset.Meta
		events, fmeta, err = dataset.ReadFailures(ctx, v.opts.Failures)
		var se *dataset.SchemaError
		switch {
		case errors.As(err, &se):
			v.add(Finding{Check: CheckSchema, Severity: Error, Count: 1, Unit: "columns", Message: se.Error()})
			v.skip("the failures file has schema errors", failureChecks...)
			events = nil
		case err != nil:
			return fmt.Errorf("validate: %w", err)
		default:
			if err := dataset.CheckSameSet(v.opts.Readings, r.Meta(), v.opts.Failures, fmeta); err != nil {
				return fmt.Errorf("validate: %w", err)
			}
		}
		v.rep.Dataset.Events = int64(len(events))
	}
	if !ok {
		v.skip("the readings file has schema errors", allDataChecks...)
		return nil
	}
	for _, name := range sensors {
		s := &sensor{name: name, sketch: drift.NewSketch(v.opts.SampleSize)}
		for i := range v.opts.Bounds {
			if v.opts.Bounds[i].Sensor == name {
				s.bound = &v.opts.Bounds[i]
			}
		}
		for _, ex := range []*examples{&s.exMissing, &s.exNaN, &s.exInf, &s.exOOR, &s.exOutliers} {
			ex.max = v.opts.Examples
		}
		v.sensors = append(v.sensors, s)
	}
	for _, b := range v.opts.Bounds {
		if !slices.Contains(sensors, b.Sensor) {
			return fmt.Errorf("validate: %w: bound %s: %q is not a sensor column of %s", exitcode.ErrUsage, b, b.Sensor, v.opts.Readings)
		}
	}

	sortedOK, err := v.scan(ctx, r)
	if err != nil {
		return fmt.Errorf("validate: %w", err)
	}
	if v.rep.Dataset.Rows == 0 {
		v.add(Finding{Check: CheckEmpty, Severity: Error, Count: 0, Unit: "rows", Message: fmt.Sprintf("%s has no rows", v.opts.Readings)})
		v.skip("the readings file has no rows", allDataChecks...)
		return nil
	}
	v.sensorFindings(ref)

	// Failure events by device (distinct times), for the class balance.
	for _, e := range events {
		if d := v.devices[deviceKey{e.Tenant, e.Device}]; d != nil {
			d.failures = append(d.failures, e.Time)
		}
	}
	for _, d := range v.devices {
		d.failures = rul.FailureTimes(d.failures)
	}
	switch {
	case v.nullRows > 0:
		v.skip("rows with null keys: the per-device checks cannot read the file", perDeviceChecks...)
	case !sortedOK:
		v.skip("the file is marked sorted but is not: the stages would refuse it", perDeviceChecks...)
	default:
		if err := v.perDevice(ctx, r, sensors, events != nil); err != nil {
			return fmt.Errorf("validate: %w", err)
		}
	}
	if v.opts.Failures != "" {
		v.failureFindings(events)
	}
	return nil
}

// checkSchema reports schema findings and returns the sensor columns to check
// and whether the key columns are usable.
func (v *validator) checkSchema(r *dataset.Reader) ([]string, bool, error) {
	loc, sch, meta := v.opts.Readings, r.Schema(), r.Meta()
	v.rep.Dataset.FileKind = meta[dataset.MetaSchema]
	v.rep.Dataset.SortedBy = meta[dataset.MetaSortedBy]
	v.markedSorted = meta[dataset.MetaSortedBy] == dataset.SortedByDevice
	schemaErr := func(col, msg string) {
		v.add(Finding{Check: CheckSchema, Severity: Error, Count: 1, Unit: "columns", Message: fmt.Sprintf("%s: column %q: %s", loc, col, msg)})
	}
	ok := true
	if k := meta[dataset.MetaSchema]; k != "" && k != dataset.KindReadings && k != dataset.KindLabeled {
		v.add(Finding{Check: CheckSchema, Severity: Error, Count: 1, Unit: "files",
			Message: fmt.Sprintf("%s is a %s file, want %s", loc, k, dataset.KindReadings)})
		ok = false
	}
	for _, c := range dataset.ReadingsColumns(nil) {
		idx := sch.FieldIndices(c.Name)
		switch {
		case len(idx) == 0:
			schemaErr(c.Name, fmt.Sprintf("missing (want %s)", c.Type))
			ok = false
		case len(idx) > 1:
			schemaErr(c.Name, "appears more than once")
			ok = false
		case !keyTypeOK(c.Type, sch.Field(idx[0]).Type):
			schemaErr(c.Name, fmt.Sprintf("has type %s, want %s", sch.Field(idx[0]).Type, c.Type))
			ok = false
		}
	}
	sensors, err := r.Sensors()
	if err != nil {
		return nil, false, err
	}
	var good []string
	for _, s := range sensors {
		idx := sch.FieldIndices(s)
		switch {
		case len(idx) == 0:
			schemaErr(s, "named in "+dataset.MetaSensors+" but missing")
		case len(idx) > 1:
			schemaErr(s, "appears more than once")
		case sch.Field(idx[0]).Type.ID() != arrow.FLOAT64:
			schemaErr(s, fmt.Sprintf("has type %s, want double", sch.Field(idx[0]).Type))
		default:
			good = append(good, s)
		}
	}
	if len(sensors) == 0 {
		v.add(Finding{Check: CheckSchema, Severity: Error, Count: 0, Unit: "columns", Message: fmt.Sprintf("%s has no sensor column", loc)})
	}
	v.rep.Dataset.Sensors = sensors
	if v.rep.Dataset.Sensors == nil {
		v.rep.Dataset.Sensors = []string{}
	}
	return good, ok, nil
}

func keyTypeOK(want, got arrow.DataType) bool {
	if w, ok := want.(*arrow.TimestampType); ok {
		g, ok := got.(*arrow.TimestampType)
		return ok && g.Unit == w.Unit && (g.TimeZone == "UTC" || g.TimeZone == "+00:00" || g.TimeZone == "Etc/UTC")
	}
	return arrow.TypeEqual(want, got)
}

// scan is the first pass, in file order. It reports whether the per-device
// pass can run (a file marked sorted must really be sorted).
func (v *validator) scan(ctx context.Context, r *dataset.Reader) (bool, error) {
	cols := []string{dataset.ColTenant, dataset.ColDevice, dataset.ColTimestamp}
	for _, s := range v.sensors {
		cols = append(cols, s.name)
	}
	bar := v.env.Progress("validate: scan", "rows", r.NumRows())
	defer bar.Finish()
	ex := func() examples { return examples{max: v.opts.Examples} }
	exNull, exUnsorted, exOrder := ex(), ex(), ex()
	var nullRows, unsortedRows, orderViolations int64
	var cur *device
	seenRun := map[*device]bool{}
	var row int64
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	for rec, err := range r.Batches(ctx, cols...) {
		if err != nil {
			return false, err
		}
		sch := rec.Schema()
		col := func(name string) arrow.Array { return rec.Column(sch.FieldIndices(name)[0]) }
		tenant := col(dataset.ColTenant).(*array.String)
		dev := col(dataset.ColDevice).(*array.String)
		tsCol := col(dataset.ColTimestamp).(*array.Timestamp)
		ts := tsCol.Values()
		vals := make([]*array.Float64, len(v.sensors))
		for i, s := range v.sensors {
			vals[i] = col(s.name).(*array.Float64)
		}
		n := int(rec.NumRows())
		keyNulls := tenant.NullN() + dev.NullN() + tsCol.NullN()
		nullKey := func(i int) bool {
			return keyNulls > 0 && (tenant.IsNull(i) || dev.IsNull(i) || tsCol.IsNull(i))
		}
		for lo := 0; lo < n; {
			if nullKey(lo) {
				// Rows without a key take part in no other check.
				nullRows++
				exNull.add(Example{Detail: fmt.Sprintf("row %d", row+int64(lo)+1), us: row + int64(lo)})
				lo++
				continue
			}
			t, d := tenant.Value(lo), dev.Value(lo)
			hi := lo + 1
			for hi < n && !nullKey(hi) && dev.Value(hi) == d && tenant.Value(hi) == t {
				hi++
			}
			dv := v.devices[deviceKey{t, d}]
			if dv == nil {
				// Value is a view into the batch: keep copies, not the batch.
				key := deviceKey{strings.Clone(t), strings.Clone(d)}
				dv = &device{key: key, first: math.MaxInt64, last: math.MinInt64, prev: math.MinInt64, missing: make([]int64, len(v.sensors))}
				v.devices[key] = dv
				v.order = append(v.order, dv)
			}
			t, d = dv.key.tenant, dv.key.device
			if dv != cur {
				if v.markedSorted {
					switch {
					case seenRun[dv]:
						orderViolations++
						exOrder.add(example(t, d, int64(ts[lo]), math.NaN(), fmt.Sprintf("row %d: rows of the device are not contiguous", row+int64(lo)+1)))
					case cur != nil && (cur.key.tenant > t || (cur.key.tenant == t && cur.key.device > d)):
						orderViolations++
						exOrder.add(example(t, d, int64(ts[lo]), math.NaN(), fmt.Sprintf("row %d: device comes after %s/%s", row+int64(lo)+1, cur.key.tenant, cur.key.device)))
					}
				}
				seenRun[dv] = true
				cur = dv
			}
			for i := lo; i < hi; i++ {
				x := int64(ts[i])
				if x < dv.prev {
					unsortedRows++
					if !exUnsorted.full(t, d, x) {
						exUnsorted.add(example(t, d, x, math.NaN(), fmt.Sprintf("row %d: after %s", row+int64(i)+1, formatTime(dv.prev))))
					}
				}
				dv.prev = x
				dv.first = min(dv.first, x)
				dv.last = max(dv.last, x)
			}
			first, last = min(first, dv.first), max(last, dv.last)
			dv.rows += int64(hi - lo)
			for si, s := range v.sensors {
				v.scanSensor(s, si, dv, vals[si], ts, lo, hi)
			}
			lo = hi
		}
		row += int64(n)
		bar.Add(int64(n))
	}
	v.rep.Dataset.Rows = row - nullRows
	v.nullRows = nullRows
	v.rep.Dataset.Devices = int64(len(v.devices))
	tenants := map[string]bool{}
	for k := range v.devices {
		tenants[k.tenant] = true
	}
	v.rep.Dataset.Tenants = int64(len(tenants))
	if row > 0 {
		v.rep.Dataset.First, v.rep.Dataset.Last = formatTime(first), formatTime(last)
	}
	if nullRows > 0 {
		v.add(Finding{Check: CheckNullKeys, Severity: Error, Count: nullRows, Unit: "rows", Total: row,
			Message:  fmt.Sprintf("%d rows have a null tenant_id, device_id or timestamp: no other check looks at them, and the stages cannot read the file", nullRows),
			Examples: exNull.items})
	}
	sev, what := Warning, "stages sort them, reading the whole file into memory"
	if v.markedSorted {
		sev, what = Error, "the file is marked sorted by "+dataset.SortedByDevice+", so the stages will refuse it"
	}
	if unsortedRows > 0 {
		v.add(Finding{Check: CheckUnsorted, Severity: sev, Count: unsortedRows, Unit: "rows", Total: row,
			Message:  fmt.Sprintf("%d rows have a timestamp before the previous row of their device (file order); %s", unsortedRows, what),
			Examples: exUnsorted.items})
	}
	if orderViolations > 0 {
		v.add(Finding{Check: CheckUnsorted, Severity: Error, Count: orderViolations, Unit: "runs",
			Message:  fmt.Sprintf("%d runs of rows break the (tenant, device) order the file claims; %s", orderViolations, what),
			Examples: exOrder.items})
	}
	return !v.markedSorted || (unsortedRows == 0 && orderViolations == 0), nil
}

// scanSensor counts missing, NaN, ±Inf and out-of-range values of rows
// [lo, hi) of one device and feeds the rest to the sensor's sketch.
func (v *validator) scanSensor(s *sensor, si int, dv *device, col *array.Float64, ts []arrow.Timestamp, lo, hi int) {
	xs := col.Float64Values()
	hasNull := col.NullN() > 0
	t, d := dv.key.tenant, dv.key.device
	for i := lo; i < hi; i++ {
		if hasNull && col.IsNull(i) {
			s.missing++
			dv.missing[si]++
			if !s.exMissing.full(t, d, int64(ts[i])) {
				s.exMissing.add(example(t, d, int64(ts[i]), math.NaN(), ""))
			}
			continue
		}
		x := xs[i]
		switch {
		case math.IsNaN(x):
			s.nan++
			s.exNaN.add(example(t, d, int64(ts[i]), math.NaN(), "NaN"))
		case math.IsInf(x, 0):
			s.inf++
			s.exInf.add(example(t, d, int64(ts[i]), math.NaN(), fmt.Sprintf("%v", x)))
		case s.bound != nil && !s.bound.contains(x):
			s.oor++
			s.exOOR.add(example(t, d, int64(ts[i]), x, "bounds "+s.bound.String()))
		default:
			s.sketch.Add(x)
		}
	}
}

// sensorFindings turns the first pass's per-sensor counts into findings, the
// sensor quality table, the reference distributions and the drift.
func (v *validator) sensorFindings(ref *drift.Reference) {
	rows := v.rep.Dataset.Rows
	if ref != nil {
		v.rep.Drift = &Drift{Reference: v.opts.Reference, Sensors: map[string]SensorDrift{}}
	}
	for si, s := range v.sensors {
		q := SensorQuality{Missing: s.missing, NaN: s.nan, Inf: s.inf, OutOfRange: s.oor, MissingRatio: ratio(s.missing, rows)}
		var over int64
		for _, d := range v.order {
			r := ratio(d.missing[si], d.rows)
			q.MaxDeviceMissingRatio = max(q.MaxDeviceMissingRatio, r)
			if d.missing[si] > 0 {
				q.DevicesWithMissing++
			}
			if r > v.opts.MaxMissing {
				over++
			}
		}
		v.rep.Sensors[s.name] = q
		if s.missing > 0 {
			sev := Info
			msg := fmt.Sprintf("sensor %s is missing in %d of %d rows (%.2f%%); worst device %.1f%%", s.name, s.missing, rows, 100*q.MissingRatio, 100*q.MaxDeviceMissingRatio)
			if over > 0 {
				sev = Warning
				msg += fmt.Sprintf("; %d devices above max_missing %g", over, v.opts.MaxMissing)
			}
			v.add(Finding{Check: CheckMissing, Severity: sev, Sensor: s.name, Count: s.missing, Unit: "rows", Total: rows, Devices: over, Message: msg, Examples: s.exMissing.items})
		}
		if s.nan > 0 {
			v.add(Finding{Check: CheckNaN, Severity: Warning, Sensor: s.name, Count: s.nan, Unit: "rows", Total: rows,
				Message:  fmt.Sprintf("sensor %s stores NaN in %d rows (the stages treat it as missing; write null instead)", s.name, s.nan),
				Examples: s.exNaN.items})
		}
		if s.inf > 0 {
			v.add(Finding{Check: CheckInf, Severity: Error, Sensor: s.name, Count: s.inf, Unit: "rows", Total: rows,
				Message: fmt.Sprintf("sensor %s stores ±Inf in %d rows", s.name, s.inf), Examples: s.exInf.items})
		}
		if s.oor > 0 {
			v.add(Finding{Check: CheckOutOfRange, Severity: Error, Sensor: s.name, Count: s.oor, Unit: "rows", Total: rows,
				Message: fmt.Sprintf("sensor %s is outside its physical bounds %s in %d rows", s.name, s.bound, s.oor), Examples: s.exOOR.items})
		}
		dist := s.sketch.Distribution()
		v.rep.Reference.Sensors[s.name] = dist
		switch {
		case dist.Empty():
		case dist.Min == dist.Max:
			v.add(Finding{Check: CheckConstant, Severity: Warning, Sensor: s.name, Count: dist.Count, Unit: "rows", Total: rows,
				Message: fmt.Sprintf("sensor %s is constant (%g in every row): it carries no information; leave it out with features --features", s.name, dist.Min)})
		case dist.TopShare >= v.opts.NearConstant:
			v.add(Finding{Check: CheckNearConstant, Severity: Info, Sensor: s.name, Count: int64(math.Round(dist.TopShare * float64(dist.Count))), Unit: "rows", Total: dist.Count,
				Message: fmt.Sprintf("sensor %s is near-constant: one value holds %.2f%% of its values (near_constant %g)", s.name, 100*dist.TopShare, v.opts.NearConstant)})
		}
		if ref != nil {
			v.driftFinding(s, dist, ref)
		}
	}
	if ref != nil {
		for _, name := range sortedKeys(ref.Sensors) {
			if _, ok := v.rep.Reference.Sensors[name]; !ok {
				v.add(Finding{Check: CheckDrift, Severity: Warning, Sensor: name, Count: 0, Unit: "rows",
					Message: fmt.Sprintf("sensor %s of the reference is not in %s", name, v.opts.Readings)})
			}
		}
	}
}

func (v *validator) driftFinding(s *sensor, dist drift.Distribution, ref *drift.Reference) {
	rd, ok := ref.Sensors[s.name]
	if !ok {
		v.add(Finding{Check: CheckDrift, Severity: Info, Sensor: s.name, Count: dist.Count, Unit: "rows",
			Message: fmt.Sprintf("sensor %s is not in the reference %s", s.name, v.opts.Reference)})
		return
	}
	c, ok := drift.Compare(rd, s.sketch.Sorted())
	if !ok {
		return
	}
	sd := SensorDrift{PSI: c.PSI, KS: c.KS, Count: c.Count, ReferenceCount: rd.Count, Status: OK}
	if c.PSI > v.opts.MaxPSI || c.KS > v.opts.MaxKS {
		sd.Status = Warning
		v.add(Finding{Check: CheckDrift, Severity: Warning, Sensor: s.name, Count: dist.Count, Unit: "rows",
			Message: fmt.Sprintf("sensor %s drifted from the reference: PSI %.3f (max_psi %g), KS %.3f (max_ks %g); median %.4g vs %.4g",
				s.name, c.PSI, v.opts.MaxPSI, c.KS, v.opts.MaxKS, dist.Quantiles[50], rd.Quantiles[50])})
	}
	v.rep.Drift.Sensors[s.name] = sd
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// perDevice is the second pass, a device at a time in time order.
func (v *validator) perDevice(ctx context.Context, r *dataset.Reader, sensors []string, withFailures bool) error {
	bar := v.env.Progress("validate: devices", "rows", r.NumRows())
	defer bar.Finish()
	ex := func() examples { return examples{max: v.opts.Examples} }
	exDup, exGap, exShort := ex(), ex(), ex()
	var dupRows, dupDevices, gaps, gapDevices, short int64
	var cb ClassBalance
	var st rul.Stats
	var labels rul.Labels
	var scratch, diffs []float64
	var idx []int
	for f, err := range r.DeviceFrames(ctx, sensors) {
		if err != nil {
			return err
		}
		n := f.Len()
		dv := v.devices[deviceKey{f.Tenant, f.Device}]
		if dv == nil { // cannot happen: the first pass saw every device
			return fmt.Errorf("%s: device %s/%s appeared only in the second pass", v.opts.Readings, f.Tenant, f.Device)
		}
		// Duplicates and intervals.
		scratch = scratch[:0]
		var dups int64
		for i := 1; i < n; i++ {
			d := f.Time[i] - f.Time[i-1]
			if d == 0 {
				dups++
				exDup.add(example(f.Tenant, f.Device, f.Time[i], math.NaN(), ""))
				continue
			}
			scratch = append(scratch, float64(d))
		}
		if dups > 0 {
			dupRows += dups
			dupDevices++
		}
		gapLimit := math.Inf(1)
		if len(scratch) > 0 {
			med := median(scratch)
			dv.medianIvl = med
			limit := v.opts.GapFactor * med
			gapLimit = limit
			var g int64
			for i := 1; i < n; i++ {
				if d := float64(f.Time[i] - f.Time[i-1]); d > limit {
					g++
					exGap.add(example(f.Tenant, f.Device, f.Time[i], math.NaN(),
						fmt.Sprintf("gap of %s before this reading (median interval %s)", micros(d), micros(med))))
				}
			}
			if g > 0 {
				gaps += g
				gapDevices++
			}
		}
		if n < v.opts.Window {
			short++
			exShort.add(example(f.Tenant, f.Device, f.Time[0], math.NaN(), fmt.Sprintf("%d rows < window %d", n, v.opts.Window)))
		}
		// Robust outliers: isolated spikes among the device's usable values.
		for si, s := range v.sensors {
			scratch, idx = scratch[:0], idx[:0]
			for i, x := range f.Sensors[si] {
				if usable(s, x) {
					scratch = append(scratch, x)
					idx = append(idx, i)
				}
			}
			var o int64
			broken := func(k int) bool { return float64(f.Time[idx[k]]-f.Time[idx[k-1]]) > gapLimit }
			diffs = spikes(scratch, v.opts.OutlierZ, broken, diffs, func(k int, score, scale float64) {
				o++
				i := idx[k]
				if !s.exOutliers.full(f.Tenant, f.Device, f.Time[i]) {
					s.exOutliers.add(example(f.Tenant, f.Device, f.Time[i], f.Sensors[si][i],
						fmt.Sprintf("spike of %.1f robust deviations (%.3g) over both neighbours", score, scale)))
				}
			})
			if o > 0 {
				s.outliers += o
				s.outlierDev++
			}
		}
		// The labels to come.
		if withFailures {
			labels = labels.Resize(n)
			ds, err := rul.Label(f.Time, dv.failures, v.rules, labels)
			if err != nil {
				return fmt.Errorf("%s: device %s/%s: %w", v.opts.Readings, f.Tenant, f.Device, err)
			}
			st.Add(ds)
			cb.Devices++
			if ds.Failures > 0 {
				cb.DevicesWithFailures++
			}
			for lo := 0; lo < n; {
				hi := lo + 1
				for hi < n && labels.Life[hi] == labels.Life[lo] {
					hi++
				}
				if hi-lo < v.opts.Window {
					cb.ShortLives++
				}
				lo = hi
			}
		}
		bar.Add(int64(n))
	}
	rows := v.rep.Dataset.Rows
	if dupRows > 0 {
		v.add(Finding{Check: CheckDuplicates, Severity: Warning, Count: dupRows, Unit: "rows", Total: rows, Devices: dupDevices,
			Message: fmt.Sprintf("%d rows repeat the (tenant, device, timestamp) of another row, on %d devices", dupRows, dupDevices), Examples: exDup.items})
	}
	if gaps > 0 {
		v.add(Finding{Check: CheckGaps, Severity: Warning, Count: gaps, Unit: "gaps", Devices: gapDevices,
			Message: fmt.Sprintf("%d sampling gaps longer than %g × the device's median interval, on %d devices", gaps, v.opts.GapFactor, gapDevices), Examples: exGap.items})
	}
	if short > 0 {
		v.add(Finding{Check: CheckShortDevices, Severity: Warning, Count: short, Unit: "devices", Total: v.rep.Dataset.Devices,
			Message: fmt.Sprintf("%d devices have fewer rows than the window (%d): they yield no training window", short, v.opts.Window), Examples: exShort.items})
	}
	for _, s := range v.sensors {
		q := v.rep.Sensors[s.name]
		q.Outliers = s.outliers
		v.rep.Sensors[s.name] = q
		if s.outliers > 0 {
			v.add(Finding{Check: CheckOutliers, Severity: Warning, Sensor: s.name, Count: s.outliers, Unit: "rows", Total: rows, Devices: s.outlierDev,
				Message: fmt.Sprintf("sensor %s has %d spikes (above or below both neighbours by more than %g × 1.4826 × the device's MAD of steps) on %d devices",
					s.name, s.outliers, v.opts.OutlierZ, s.outlierDev),
				Examples: s.exOutliers.items})
		}
	}
	if !withFailures {
		return nil
	}
	cb.HorizonHours, cb.Thresholds = v.rules.Horizon, v.rules.Thresholds
	cb.Failures, cb.Lives, cb.Rows = st.Failures, st.Lives, st.Rows
	cb.Critical, cb.Warning, cb.Normal = st.Health[dataset.Critical], st.Health[dataset.Warning], st.Health[dataset.Normal]
	cb.Censored, cb.ExactCapped = st.Censored, st.ExactCapped
	v.rep.ClassBalance = &cb
	switch {
	case cb.Failures == 0:
		v.add(Finding{Check: CheckClassBalance, Severity: Error, Count: 0, Unit: "devices", Total: cb.Devices,
			Message: "no device with readings has a failure event: there is nothing to learn RUL from (every label would be censored or the horizon)"})
	case cb.Critical == 0:
		v.add(Finding{Check: CheckClassBalance, Severity: Warning, Count: 0, Unit: "rows", Total: cb.Rows,
			Message: fmt.Sprintf("no row would be critical (RUL < %gh): the model never sees a machine close to failure", v.rules.Thresholds.Critical)})
	}
	return nil
}

// usable reports whether x takes part in the robust statistics: finite and
// inside the sensor's bounds (out-of-range values are reported on their own).
func usable(s *sensor, x float64) bool {
	return !math.IsNaN(x) && !math.IsInf(x, 0) && (s.bound == nil || s.bound.contains(x))
}

func micros(us float64) string { return time.Duration(us * 1e3).String() }

// failureFindings checks the failure events against the readings.
func (v *validator) failureFindings(events []dataset.Failure) {
	ex := func() examples { return examples{max: v.opts.Examples} }
	exUnknown, exOutside, exDup, exFuture := ex(), ex(), ex(), ex()
	var unknown, outside, dup, future int64
	now := v.env.Now().UnixMicro()
	type eventKey struct {
		deviceKey
		t int64
	}
	seen := map[eventKey]bool{}
	sorted := slices.Clone(events)
	dataset.SortFailures(sorted)
	for _, e := range sorted {
		key := deviceKey{e.Tenant, e.Device}
		ek := eventKey{key, e.Time}
		if seen[ek] {
			dup++
			exDup.add(example(e.Tenant, e.Device, e.Time, math.NaN(), e.EventType))
			continue
		}
		seen[ek] = true
		if e.Time > now {
			future++
			exFuture.add(example(e.Tenant, e.Device, e.Time, math.NaN(), "validated at "+formatTime(now)))
			continue
		}
		d := v.devices[key]
		if d == nil {
			unknown++
			exUnknown.add(example(e.Tenant, e.Device, e.Time, math.NaN(), e.EventType))
			continue
		}
		if _, skipped := v.skipped[CheckFailureOutside]; skipped {
			continue
		}
		tol := int64(v.opts.GapFactor * d.medianIvl)
		switch {
		case e.Time < d.first:
			outside++
			exOutside.add(example(e.Tenant, e.Device, e.Time, math.NaN(), "before the device's first reading "+formatTime(d.first)))
		case e.Time > d.last+tol:
			outside++
			exOutside.add(example(e.Tenant, e.Device, e.Time, math.NaN(),
				fmt.Sprintf("%s after the device's last reading %s", micros(float64(e.Time-d.last)), formatTime(d.last))))
		}
	}
	total := int64(len(events))
	if unknown > 0 {
		v.add(Finding{Check: CheckFailureUnknown, Severity: Warning, Count: unknown, Unit: "events", Total: total,
			Message: fmt.Sprintf("%d failure events name a device without readings (label ignores them)", unknown), Examples: exUnknown.items})
	}
	if outside > 0 {
		v.add(Finding{Check: CheckFailureOutside, Severity: Warning, Count: outside, Unit: "events", Total: total,
			Message:  fmt.Sprintf("%d failure events lie before the device's first reading or more than %g median intervals after its last", outside, v.opts.GapFactor),
			Examples: exOutside.items})
	}
	if dup > 0 {
		v.add(Finding{Check: CheckFailureDuplicate, Severity: Warning, Count: dup, Unit: "events", Total: total,
			Message: fmt.Sprintf("%d failure events repeat another event of the same device and time (label counts them once)", dup), Examples: exDup.items})
	}
	if future > 0 {
		v.add(Finding{Check: CheckFailureFuture, Severity: Error, Count: future, Unit: "events", Total: total,
			Message: fmt.Sprintf("%d failure events are in the future (after %s)", future, formatTime(now)), Examples: exFuture.items})
	}
}
