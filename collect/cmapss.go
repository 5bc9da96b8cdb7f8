package collect

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/location"
)

// CMAPSSEpoch is the time of cycle 0 of every C-MAPSS unit: cycle c is read
// at CMAPSSEpoch + c hours (one cycle is taken as one hour of operation).
var CMAPSSEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// CMAPSSSensors are the sensor columns of a C-MAPSS readings file, in the
// order of the text format: three operational settings, then 21 sensors.
var CMAPSSSensors = func() []string {
	s := []string{"setting_1", "setting_2", "setting_3"}
	for i := 1; i <= 21; i++ {
		s = append(s, "s_"+strconv.Itoa(i))
	}
	return s
}()

// cmapssFields is the number of columns of a C-MAPSS row: unit, cycle,
// 3 settings, 21 sensors.
const cmapssFields = 2 + 24

// ReadCMAPSS reads a NASA C-MAPSS file (train_FD00x.txt or test_FD00x.txt:
// space-separated unit, cycle, 3 settings, 21 sensors) into one frame per unit
// for the given tenant, sorted by device id (byte order), with device ids
// "unit-<n>" and timestamps CMAPSSEpoch + cycle hours.
//
// For a training file (rulPath == "") every unit fails at its last cycle (RUL
// 0 there: RUL = last_cycle − cycle). For a test file, rulPath names the
// RUL_FD00x.txt file holding the true RUL of unit n on line n, and the failure
// is at the last observed cycle + RUL hours. Failures have event type
// "failure", no component (C-MAPSS does not say which module failed) and
// operating_hours_at_failure = the failure cycle.
//
// Errors name the file and line. A file named test_* without rulPath is refused:
// its units do not fail at their last cycle.
func ReadCMAPSS(path, rulPath, tenant string) (frames []*dataset.Frame, failures []dataset.Failure, sensors []string, err error) {
	if rulPath == "" && strings.HasPrefix(strings.ToLower(location.Base(path)), "test_") {
		return nil, nil, nil, fmt.Errorf("%w: %s looks like a C-MAPSS test file, whose units do not fail at their last cycle: give the true RUL with --rul RUL_FD00x.txt", exitcode.ErrUsage, path)
	}
	f, err := location.OpenStream(context.Background(), path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cmapss: %w", err)
	}
	defer f.Close()
	var rul []float64
	if rulPath != "" {
		rf, err := location.OpenStream(context.Background(), rulPath)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("cmapss: %w", err)
		}
		defer rf.Close()
		if rul, err = parseCMAPSSRUL(rulPath, rf); err != nil {
			return nil, nil, nil, err
		}
	}
	frames, failures, err = parseCMAPSS(path, f, rul, rulPath, tenant)
	if err != nil {
		return nil, nil, nil, err
	}
	return frames, failures, slices.Clone(CMAPSSSensors), nil
}

// dataError marks bad input data (exit code 3).
func dataError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{exitcode.ErrValidation}, args...)...)
}

// cmapssUnit collects the rows of one unit while reading.
type cmapssUnit struct {
	n      int
	cycles []int64
	lines  []int
	values [][]float64 // [sensor][row]
}

// parseCMAPSS parses the C-MAPSS text in r (named name in errors). rul holds
// the true RUL per unit for a test file (nil for a training file).
func parseCMAPSS(name string, r io.Reader, rul []float64, rulName, tenant string) ([]*dataset.Frame, []dataset.Failure, error) {
	units := map[int]*cmapssUnit{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		fields := bytes.Fields(sc.Bytes())
		if len(fields) == 0 {
			continue
		}
		if len(fields) != cmapssFields {
			return nil, nil, dataError("%s:%d: %d columns, want %d (unit, cycle, 3 settings, 21 sensors)", name, line, len(fields), cmapssFields)
		}
		unit, err := strconv.Atoi(string(fields[0]))
		if err != nil || unit < 1 {
			return nil, nil, dataError("%s:%d: unit %q is not a positive integer", name, line, fields[0])
		}
		cycle, err := strconv.Atoi(string(fields[1]))
		if err != nil || cycle < 1 || cycle > 1e7 {
			return nil, nil, dataError("%s:%d: cycle %q is not a positive integer", name, line, fields[1])
		}
		u := units[unit]
		if u == nil {
			u = &cmapssUnit{n: unit, values: make([][]float64, len(CMAPSSSensors))}
			units[unit] = u
		}
		u.cycles = append(u.cycles, int64(cycle))
		u.lines = append(u.lines, line)
		for i, fv := range fields[2:] {
			v, err := strconv.ParseFloat(string(fv), 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, nil, dataError("%s:%d: column %s: %q is not a finite number", name, line, CMAPSSSensors[i], fv)
			}
			u.values[i] = append(u.values[i], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("cmapss: read %s: line %d: %w", name, line+1, err)
	}
	if len(units) == 0 {
		return nil, nil, dataError("%s: no rows (empty C-MAPSS file)", name)
	}
	if rul != nil {
		maxUnit := 0
		for n := range units {
			maxUnit = max(maxUnit, n)
		}
		if len(rul) != len(units) || maxUnit > len(rul) {
			return nil, nil, dataError("%s holds %d RUL values but %s has %d units (numbered up to %d): they must match one to one", rulName, len(rul), name, len(units), maxUnit)
		}
	}
	nums := make([]int, 0, len(units))
	for n := range units {
		nums = append(nums, n)
	}
	frames := make([]*dataset.Frame, 0, len(units))
	failures := make([]dataset.Failure, 0, len(units))
	epoch := dataset.Micros(CMAPSSEpoch)
	const hour = int64(time.Hour / time.Microsecond)
	for _, n := range nums {
		u := units[n]
		if err := u.sort(name); err != nil {
			return nil, nil, err
		}
		f := dataset.NewFrame(tenant, "unit-"+strconv.Itoa(n), len(CMAPSSSensors), false)
		f.Time = make([]int64, len(u.cycles))
		for i, c := range u.cycles {
			f.Time[i] = epoch + c*hour
		}
		f.Sensors = u.values
		frames = append(frames, f)
		last := u.cycles[len(u.cycles)-1]
		end := float64(last)
		if rul != nil {
			end += rul[n-1]
		}
		failures = append(failures, dataset.Failure{
			Tenant: tenant, Device: f.Device,
			Time:      epoch + int64(end*float64(hour)),
			EventType: "failure", OpHours: end,
		})
	}
	slices.SortFunc(frames, func(a, b *dataset.Frame) int { return cmp.Compare(a.Device, b.Device) })
	dataset.SortFailures(failures)
	return frames, failures, nil
}

// sort orders the unit's rows by cycle and refuses a cycle given twice.
func (u *cmapssUnit) sort(name string) error {
	if !slices.IsSorted(u.cycles) {
		perm := make([]int, len(u.cycles))
		for i := range perm {
			perm[i] = i
		}
		slices.SortStableFunc(perm, func(a, b int) int { return cmp.Compare(u.cycles[a], u.cycles[b]) })
		u.cycles = permute(u.cycles, perm)
		u.lines = permute(u.lines, perm)
		for s := range u.values {
			u.values[s] = permute(u.values[s], perm)
		}
	}
	for i := 1; i < len(u.cycles); i++ {
		if u.cycles[i] == u.cycles[i-1] {
			return dataError("%s:%d: unit %d cycle %d duplicates line %d", name, max(u.lines[i], u.lines[i-1]), u.n, u.cycles[i], min(u.lines[i], u.lines[i-1]))
		}
	}
	return nil
}

func permute[T any](s []T, perm []int) []T {
	out := make([]T, len(s))
	for i, p := range perm {
		out[i] = s[p]
	}
	return out
}

// parseCMAPSSRUL reads a RUL_FD00x.txt file: one non-negative number per line.
func parseCMAPSSRUL(name string, r io.Reader) ([]float64, error) {
	var out []float64
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" {
			continue
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 1e7 {
			return nil, dataError("%s:%d: RUL %q is not a non-negative number", name, line, s)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cmapss: read %s: %w", name, err)
	}
	if len(out) == 0 {
		return nil, dataError("%s: no RUL values (empty file)", name)
	}
	return out, nil
}
