package label

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/modax/modax-ml/collect"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/internal/testutil"
)

// writeCMAPSS converts a C-MAPSS file with collect's reader into readings and
// failures files in dir.
func writeCMAPSS(t *testing.T, dir, file, rulFile string) (readings, failures string) {
	t.Helper()
	src := testutil.CMAPSSDir(t)
	rulPath := ""
	if rulFile != "" {
		rulPath = filepath.Join(src, rulFile)
	}
	frames, events, sensors, err := collect.ReadCMAPSS(filepath.Join(src, file), rulPath, "nasa")
	if err != nil {
		t.Fatal(err)
	}
	return testutil.WriteReadings(t, dir, sensors, frames, events, dataset.Meta{dataset.MetaSource: "cmapss"})
}

// cmapssTruth reads unit and cycle of each row of a C-MAPSS text file
// directly (independently of collect): the last cycle of each unit.
func cmapssTruth(t *testing.T, file string) (lastCycle map[string]int, rows int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.CMAPSSDir(t), file))
	if err != nil {
		t.Fatal(err)
	}
	lastCycle = map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		unit, err1 := strconv.Atoi(f[0])
		cycle, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %q", file, line)
		}
		dev := "unit-" + strconv.Itoa(unit)
		lastCycle[dev] = max(lastCycle[dev], cycle)
		rows++
	}
	return lastCycle, rows
}

// TestCMAPSSFD001 checks every row of the 100 training units: the label is
// last_cycle − cycle capped at --horizon 125, never censored, one life per
// unit.
func TestCMAPSSFD001(t *testing.T) {
	dir := t.TempDir()
	opts := DefaultOptions()
	opts.Readings, opts.Failures = writeCMAPSS(t, dir, "train_FD001.txt", "")
	opts.Out = filepath.Join(dir, "labeled.parquet")
	opts.Horizon = 125
	res, err := Run(context.Background(), runenv.Test(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 20631 || res.Devices != 100 || res.Lives != 100 || res.Failures != 100 || res.CensoredRows != 0 {
		t.Fatalf("result %+v", res)
	}
	last, rows := cmapssTruth(t, "train_FD001.txt")
	checked := checkCMAPSSLabels(t, opts.Out, 125, func(dev string, cycle int) float64 { return float64(last[dev] - cycle) })
	if checked != rows || rows != 20631 || len(last) != 100 {
		t.Fatalf("checked %d rows, the file has %d (%d units)", checked, rows, len(last))
	}
}

// TestCMAPSSTestFD001 labels the test units, which fail the true RUL
// (RUL_FD001.txt, line n for unit n) after their last observed cycle:
// label = true_rul + last_cycle − cycle, capped.
func TestCMAPSSTestFD001(t *testing.T) {
	dir := t.TempDir()
	opts := DefaultOptions()
	opts.Readings, opts.Failures = writeCMAPSS(t, dir, "test_FD001.txt", "RUL_FD001.txt")
	opts.Out = filepath.Join(dir, "labeled.parquet")
	opts.Horizon = 125
	if _, err := Run(context.Background(), runenv.Test(), opts); err != nil {
		t.Fatal(err)
	}
	last, rows := cmapssTruth(t, "test_FD001.txt")
	b, err := os.ReadFile(filepath.Join(testutil.CMAPSSDir(t), "RUL_FD001.txt"))
	if err != nil {
		t.Fatal(err)
	}
	trueRUL := map[string]int{}
	for i, f := range strings.Fields(string(b)) {
		v, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		trueRUL["unit-"+strconv.Itoa(i+1)] = v
	}
	checked := checkCMAPSSLabels(t, opts.Out, 125, func(dev string, cycle int) float64 { return float64(trueRUL[dev] + last[dev] - cycle) })
	if checked != rows {
		t.Fatalf("checked %d rows, the file has %d", checked, rows)
	}
}

// checkCMAPSSLabels compares every row of a labeled C-MAPSS file with
// want(device, cycle) (uncapped) and returns the number of rows checked.
func checkCMAPSSLabels(t *testing.T, loc string, horizon float64, want func(dev string, cycle int) float64) int {
	t.Helper()
	r, err := dataset.Open(loc, dataset.KindLabeled)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var horizonMeta float64
	if _, err := r.Meta().Get(dataset.MetaHorizon, &horizonMeta); err != nil || horizonMeta != horizon {
		t.Fatalf("horizon metadata %g (%v)", horizonMeta, err)
	}
	epoch := dataset.Micros(collect.CMAPSSEpoch)
	rows, devices := 0, 0
	for f, err := range r.DeviceFrames(context.Background(), []string{}) {
		if err != nil {
			t.Fatal(err)
		}
		devices++
		for i, ts := range f.Time {
			cycle := int((ts - epoch) / hour)
			raw := want(f.Device, cycle)
			if f.RULRaw[i] != raw || f.RUL[i] != min(raw, horizon) || f.Censored[i] || f.LifeID[i] != 0 {
				t.Fatalf("%s cycle %d: rul %g raw %g censored %v life %d; want rul %g raw %g",
					f.Device, cycle, f.RUL[i], f.RULRaw[i], f.Censored[i], f.LifeID[i], min(raw, horizon), raw)
			}
			rows++
		}
	}
	if devices != 100 {
		t.Fatalf("%d devices, want 100", devices)
	}
	return rows
}
