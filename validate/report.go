package validate

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/drift"
)

// ReportSchema names the format of the report file.
const ReportSchema = "modax.validation/v1"

// Severity of a finding.
type Severity string

// Severities, and the status of a check that found nothing or did not run.
const (
	Info    Severity = "info"
	Warning Severity = "warning"
	Error   Severity = "error"
	OK      Severity = "ok"
	Skipped Severity = "skipped"
)

func (s Severity) rank() int {
	switch s {
	case Error:
		return 3
	case Warning:
		return 2
	case Info:
		return 1
	}
	return 0
}

// Check ids, in report order, with what they look at.
const (
	CheckSchema           = "schema"
	CheckEmpty            = "empty"
	CheckNullKeys         = "null_keys"
	CheckUnsorted         = "unsorted"
	CheckDuplicates       = "duplicates"
	CheckMissing          = "missing_values"
	CheckNaN              = "nan_values"
	CheckInf              = "inf_values"
	CheckConstant         = "constant_sensor"
	CheckNearConstant     = "near_constant_sensor"
	CheckOutOfRange       = "out_of_range"
	CheckOutliers         = "outliers"
	CheckGaps             = "sampling_gaps"
	CheckShortDevices     = "short_devices"
	CheckFailureUnknown   = "failure_unknown_device"
	CheckFailureOutside   = "failure_outside_range"
	CheckFailureDuplicate = "failure_duplicate"
	CheckFailureFuture    = "failure_in_future"
	CheckClassBalance     = "class_balance"
	CheckDrift            = "drift"
)

// checkInfo describes each check (its order is the report order).
var checkInfo = []struct{ id, what string }{
	{CheckSchema, "schema and types: required columns, sensor columns named in metadata present and float64"},
	{CheckEmpty, "the readings file has rows"},
	{CheckNullKeys, "no null tenant_id, device_id or timestamp"},
	{CheckUnsorted, "timestamps of each device ascend in file order (an error when the file is marked sorted)"},
	{CheckDuplicates, "no duplicate (tenant, device, timestamp) rows"},
	{CheckMissing, "missing (null) sensor values, ratio per device"},
	{CheckNaN, "NaN stored as a sensor value"},
	{CheckInf, "±Inf stored as a sensor value"},
	{CheckConstant, "sensors with a single value (zero variance)"},
	{CheckNearConstant, "sensors whose most frequent value covers at least near_constant of the values"},
	{CheckOutOfRange, "values outside the configured physical bounds"},
	{CheckOutliers, "robust outliers: spikes above or below both neighbours by more than outlier_z · 1.4826 · MAD of the device's steps (not across sampling gaps)"},
	{CheckGaps, "sampling gaps longer than gap_factor × the device's median interval"},
	{CheckShortDevices, "devices with fewer rows than the features window"},
	{CheckFailureUnknown, "failure events of devices without readings"},
	{CheckFailureOutside, "failure events before the device's first reading or long after its last"},
	{CheckFailureDuplicate, "failure events repeated for the same device and time"},
	{CheckFailureFuture, "failure events after the validation time"},
	{CheckClassBalance, "the labels to come: some device fails, some rows are critical"},
	{CheckDrift, "drift per sensor against the reference report (PSI, KS)"},
}

func checkIndex(id string) int {
	return slices.IndexFunc(checkInfo, func(c struct{ id, what string }) bool { return c.id == id })
}

// Report is the validation report: the file validate writes and the result
// it prints with --output json. Maps marshal with sorted keys and slices are
// sorted, so the same inputs give the same report.
type Report struct {
	Schema      string          `json:"schema"`
	RunID       string          `json:"run_id,omitempty"`
	CreatedAt   string          `json:"created_at"`
	ToolVersion string          `json:"tool_version"`
	Inputs      []dataset.Input `json:"inputs"`
	// Status is the worst severity found: ok (nothing, or only infos),
	// warning or error. Failed tells whether the --fail-on gate failed.
	Status   Severity  `json:"status"`
	Counts   Counts    `json:"counts"`
	FailOn   string    `json:"fail_on"`
	Failed   bool      `json:"failed"`
	Options  Options   `json:"options"`
	Dataset  Dataset   `json:"dataset"`
	Checks   []Check   `json:"checks"`
	Findings []Finding `json:"findings"`
	// Sensors holds the data-quality counts of each sensor.
	Sensors      map[string]SensorQuality `json:"sensors"`
	ClassBalance *ClassBalance            `json:"class_balance,omitempty"`
	Drift        *Drift                   `json:"drift,omitempty"`
	// Reference is this data's per-sensor distributions, for a later
	// validate --reference or the monitor (drift.ReadReference).
	Reference drift.Reference `json:"reference"`
}

// Result is what Run returns: the report.
type Result = Report

// Counts counts findings by severity.
type Counts struct {
	Errors   int `json:"errors"`
	Warnings int `json:"warnings"`
	Infos    int `json:"infos"`
}

// Dataset describes the data checked.
type Dataset struct {
	Rows     int64    `json:"rows"`
	Devices  int64    `json:"devices"`
	Tenants  int64    `json:"tenants"`
	Sensors  []string `json:"sensors"`
	First    string   `json:"first_timestamp,omitempty"`
	Last     string   `json:"last_timestamp,omitempty"`
	Events   int64    `json:"failure_events"`
	SortedBy string   `json:"sorted_by,omitempty"`
	FileKind string   `json:"file_schema,omitempty"`
}

// Check is the outcome of one check: ok, the worst severity of its findings,
// or skipped (with the reason).
type Check struct {
	ID       string   `json:"id"`
	Status   Severity `json:"status"`
	Findings int      `json:"findings"`
	What     string   `json:"what"`
	Reason   string   `json:"reason,omitempty"`
}

// Finding is one problem: which check, how bad, how many rows (devices,
// events) and a few examples.
type Finding struct {
	Check    string   `json:"check"`
	Severity Severity `json:"severity"`
	Sensor   string   `json:"sensor,omitempty"`
	// Count of affected units (rows, devices, events, columns) out of Total.
	Count int64  `json:"count"`
	Unit  string `json:"unit"`
	Total int64  `json:"total,omitempty"`
	// Devices is the number of devices affected, where it applies.
	Devices  int64     `json:"devices,omitempty"`
	Message  string    `json:"message"`
	Examples []Example `json:"examples,omitempty"`
}

// Example points at one affected row or event.
type Example struct {
	Tenant    string   `json:"tenant_id,omitempty"`
	Device    string   `json:"device_id,omitempty"`
	Timestamp string   `json:"timestamp,omitempty"`
	Value     *float64 `json:"value,omitempty"`
	Detail    string   `json:"detail,omitempty"`
	us        int64
}

// SensorQuality are the data-quality counts of a sensor.
type SensorQuality struct {
	Missing      int64   `json:"missing"`
	NaN          int64   `json:"nan"`
	Inf          int64   `json:"inf"`
	MissingRatio float64 `json:"missing_ratio"`
	// MaxDeviceMissingRatio is the largest missing ratio of one device;
	// DevicesWithMissing counts devices with any missing value.
	MaxDeviceMissingRatio float64 `json:"max_device_missing_ratio"`
	DevicesWithMissing    int64   `json:"devices_with_missing"`
	OutOfRange            int64   `json:"out_of_range"`
	Outliers              int64   `json:"outliers"`
}

// ClassBalance is what the label stage will produce with the same rules.
type ClassBalance struct {
	HorizonHours        float64            `json:"horizon_hours"`
	Thresholds          dataset.Thresholds `json:"thresholds"`
	Devices             int64              `json:"devices"`
	DevicesWithFailures int64              `json:"devices_with_failures"`
	Failures            int64              `json:"failures"`
	Lives               int64              `json:"lives"`
	// ShortLives have fewer rows than the window.
	ShortLives  int64 `json:"short_lives"`
	Rows        int64 `json:"rows"`
	Critical    int64 `json:"critical"`
	Warning     int64 `json:"warning"`
	Normal      int64 `json:"normal"`
	Censored    int64 `json:"censored"`
	ExactCapped int64 `json:"exact_capped"`
}

// Drift holds the drift of each sensor against the reference report.
type Drift struct {
	Reference string                 `json:"reference"`
	Sensors   map[string]SensorDrift `json:"sensors"`
}

// SensorDrift is one sensor's drift.
type SensorDrift struct {
	PSI            float64  `json:"psi"`
	KS             float64  `json:"ks"`
	Count          int      `json:"count"`
	ReferenceCount int64    `json:"reference_count"`
	Status         Severity `json:"status"`
}

// examples keeps the max smallest examples by (tenant, device, time, detail).
type examples struct {
	max   int
	items []Example
}

func exampleLess(a, b Example) int {
	return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Device, b.Device), cmp.Compare(a.us, b.us), cmp.Compare(a.Detail, b.Detail))
}

func (e *examples) add(x Example) {
	if e.max <= 0 {
		return
	}
	if len(e.items) == e.max && exampleLess(x, e.items[len(e.items)-1]) >= 0 {
		return
	}
	i, _ := slices.BinarySearchFunc(e.items, x, exampleLess)
	e.items = slices.Insert(e.items, i, x)
	if len(e.items) > e.max {
		e.items = e.items[:e.max]
	}
}

// full reports whether x would not be kept (for skipping work).
func (e *examples) full(tenant, device string, us int64) bool {
	if len(e.items) < e.max {
		return false
	}
	last := e.items[len(e.items)-1]
	return cmp.Or(cmp.Compare(tenant, last.Tenant), cmp.Compare(device, last.Device), cmp.Compare(us, last.us)) > 0
}

func example(tenant, device string, us int64, value float64, detail string) Example {
	x := Example{Tenant: tenant, Device: device, us: us, Detail: detail}
	if us != math.MinInt64 {
		x.Timestamp = formatTime(us)
	}
	if !math.IsNaN(value) && !math.IsInf(value, 0) {
		v := value
		x.Value = &v
	}
	return x
}

func formatTime(us int64) string { return dataset.TimeOf(us).Format(time.RFC3339Nano) }

// finalize sorts the findings, fills the check list, counts and status.
func (r *Report) finalize(skipped map[string]string) {
	slices.SortStableFunc(r.Findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(b.Severity.rank(), a.Severity.rank()), cmp.Compare(checkIndex(a.Check), checkIndex(b.Check)),
			cmp.Compare(a.Sensor, b.Sensor), cmp.Compare(a.Message, b.Message))
	})
	r.Counts = Counts{}
	worst := map[string]Severity{}
	n := map[string]int{}
	for _, f := range r.Findings {
		switch f.Severity {
		case Error:
			r.Counts.Errors++
		case Warning:
			r.Counts.Warnings++
		case Info:
			r.Counts.Infos++
		}
		if f.Severity.rank() > worst[f.Check].rank() {
			worst[f.Check] = f.Severity
		}
		n[f.Check]++
	}
	r.Checks = r.Checks[:0]
	for _, c := range checkInfo {
		st := OK
		if s, ok := worst[c.id]; ok {
			st = s
		}
		ch := Check{ID: c.id, Status: st, Findings: n[c.id], What: c.what}
		if reason, ok := skipped[c.id]; ok && n[c.id] == 0 {
			ch.Status, ch.Reason = Skipped, reason
		}
		r.Checks = append(r.Checks, ch)
	}
	switch {
	case r.Counts.Errors > 0:
		r.Status = Error
	case r.Counts.Warnings > 0:
		r.Status = Warning
	default:
		r.Status = OK
	}
	switch r.FailOn {
	case "error":
		r.Failed = r.Counts.Errors > 0
	case "warning":
		r.Failed = r.Counts.Errors+r.Counts.Warnings > 0
	default:
		r.Failed = false
	}
}

// WriteSummary writes the readable summary (what the command prints on
// stderr).
func (r *Report) WriteSummary(w io.Writer, reportPath string) error {
	var b strings.Builder
	d := r.Dataset
	fmt.Fprintf(&b, "validate: %s: %d rows, %d devices, %d sensors", r.Options.Readings, d.Rows, d.Devices, len(d.Sensors))
	if d.First != "" {
		fmt.Fprintf(&b, ", %s … %s", d.First, d.Last)
	}
	if r.Options.Failures != "" {
		fmt.Fprintf(&b, "; %s: %d events", r.Options.Failures, d.Events)
	}
	b.WriteString("\n")
	for _, f := range r.Findings {
		sensor := f.Sensor
		if sensor == "" {
			sensor = "-"
		}
		fmt.Fprintf(&b, "  %-7s  %-22s %-10s %s\n", strings.ToUpper(string(f.Severity)), f.Check, sensor, f.Message)
		for i, x := range f.Examples {
			if i == 2 {
				break
			}
			fmt.Fprintf(&b, "  %-7s  %-22s %-10s   e.g. %s\n", "", "", "", x.String())
		}
	}
	for _, c := range r.Checks {
		if c.Status == Skipped {
			fmt.Fprintf(&b, "  skipped  %-22s %s\n", c.ID, c.Reason)
		}
	}
	if cb := r.ClassBalance; cb != nil {
		pct := func(x int64) string {
			if cb.Rows == 0 {
				return "0%"
			}
			return fmt.Sprintf("%.1f%%", 100*float64(x)/float64(cb.Rows))
		}
		fmt.Fprintf(&b, "class balance (horizon %gh, critical < %gh, warning < %gh): %d of %d devices fail, %d lives; rows critical %d (%s), warning %d (%s), normal %d (%s), censored %d (%s)\n",
			cb.HorizonHours, cb.Thresholds.Critical, cb.Thresholds.Warning, cb.DevicesWithFailures, cb.Devices, cb.Lives,
			cb.Critical, pct(cb.Critical), cb.Warning, pct(cb.Warning), cb.Normal, pct(cb.Normal), cb.Censored, pct(cb.Censored))
	}
	if dr := r.Drift; dr != nil {
		var worstPSI, worstKS string
		var psi, ks float64
		for _, s := range sortedKeys(dr.Sensors) {
			v := dr.Sensors[s]
			if v.PSI >= psi {
				psi, worstPSI = v.PSI, s
			}
			if v.KS >= ks {
				ks, worstKS = v.KS, s
			}
		}
		fmt.Fprintf(&b, "drift against %s: largest PSI %.3f (%s), largest KS %.3f (%s)\n", dr.Reference, psi, worstPSI, ks, worstKS)
	}
	gate := ""
	if r.Failed {
		gate = fmt.Sprintf(", fails --fail-on %s", r.FailOn)
	}
	fmt.Fprintf(&b, "status: %s (%d errors, %d warnings, %d infos%s); report %s\n",
		strings.ToUpper(string(r.Status)), r.Counts.Errors, r.Counts.Warnings, r.Counts.Infos, gate, reportPath)
	_, err := io.WriteString(w, b.String())
	return err
}

// String renders an example on one line.
func (x Example) String() string {
	var parts []string
	if x.Device != "" {
		parts = append(parts, x.Tenant+"/"+x.Device)
	}
	if x.Timestamp != "" {
		parts = append(parts, x.Timestamp)
	}
	if x.Value != nil {
		parts = append(parts, fmt.Sprintf("value %g", *x.Value))
	}
	if x.Detail != "" {
		parts = append(parts, x.Detail)
	}
	return strings.Join(parts, " ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
