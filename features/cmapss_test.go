package features

import (
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/modax/modax-ml/collect"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/testutil"
)

// cmapssInformative are the 14 FD001 sensors that carry information.
var cmapssInformative = strings.Split("s_2,s_3,s_4,s_7,s_8,s_9,s_11,s_12,s_13,s_14,s_15,s_17,s_20,s_21", ",")

// labelCMAPSS writes a labeled file from a C-MAPSS file read by collect: one
// life per unit, RUL = failure time − reading time (hours), capped at
// horizon. (The label stage computes the same for C-MAPSS; this keeps the
// test independent of it.)
func labelCMAPSS(t *testing.T, path, rulPath, out string, horizon float64) []*dataset.Frame {
	t.Helper()
	frames, failures, sensors, err := collect.ReadCMAPSS(path, rulPath, "cmapss")
	if err != nil {
		t.Fatal(err)
	}
	fail := map[string]int64{}
	for _, f := range failures {
		fail[f.Device] = f.Time
	}
	for _, f := range frames {
		ft, ok := fail[f.Device]
		if !ok {
			t.Fatalf("no failure for %s", f.Device)
		}
		for _, ts := range f.Time {
			raw := float64(ft-ts) / float64(hour)
			rul := math.Min(raw, horizon)
			f.RUL = append(f.RUL, rul)
			f.RULRaw = append(f.RULRaw, raw)
			f.Health = append(f.Health, dataset.DefaultThresholds.Classify(rul))
			f.Censored = append(f.Censored, false)
			f.LifeID = append(f.LifeID, 0)
		}
	}
	writeLabeled(t, out, sensors, horizon, frames...)
	return frames
}

// TestCMAPSSFD001 runs the C-MAPSS protocol's features: window 30 on the 14
// informative sensors, train_FD001 as train, test_FD001 + RUL_FD001 as test.
func TestCMAPSSFD001(t *testing.T) {
	dir := testutil.CMAPSSDir(t)
	tmp := t.TempDir()
	train := labelCMAPSS(t, filepath.Join(dir, "train_FD001.txt"), "", filepath.Join(tmp, "labeled.parquet"), 125)
	test := labelCMAPSS(t, filepath.Join(dir, "test_FD001.txt"), filepath.Join(dir, "RUL_FD001.txt"), filepath.Join(tmp, "test.parquet"), 125)
	if len(train) != 100 || len(test) != 100 {
		t.Fatalf("%d train and %d test units, want 100 and 100", len(train), len(test))
	}
	res := runIn(t, tmp, func(o *Options) {
		o.Window = 30
		o.Features = cmapssInformative
		o.Scaler = ScalerMinMax
		o.TestSource = filepath.Join(tmp, "test.parquet")
		o.ValSize = 0
		o.Stats = ""
	})
	t.Logf("features took %.2fs", res.Seconds)
	if got := res.Split.Windows["train"]; got != 17731 || res.Input.Rows != 20631 {
		t.Fatalf("train windows %d from %d rows, want 17731 = 20631 − 100 × 29", got, res.Input.Rows)
	}
	ws := readWindows(t, filepath.Join(tmp, "windows.parquet"), "test")
	if ws.Len() != int(res.TestInput.Windows) || res.Input.Rows != 20631 || res.TestInput.Rows != 13096 {
		t.Fatalf("test windows %d (result %d), rows %d/%d", ws.Len(), res.TestInput.Windows, res.Input.Rows, res.TestInput.Rows)
	}
	// Exactly one test window per unit ends at the unit's last reading, and
	// its raw label is the unit's true RUL from RUL_FD001.
	trueRUL := testutil.ReadRULFile(t, filepath.Join(dir, "RUL_FD001.txt"))
	lastTime := map[string]int64{}
	for _, f := range test {
		lastTime[f.Device] = f.Time[f.Len()-1]
	}
	last := map[string]int{}
	for k := range ws.Len() {
		if ws.End[k] == lastTime[ws.Device[k]] {
			last[ws.Device[k]]++
			n, _ := strconv.Atoi(strings.TrimPrefix(ws.Device[k], "unit-"))
			if ws.RULRaw[k] != trueRUL[n-1] || ws.RUL[k] != math.Min(trueRUL[n-1], 125) {
				t.Fatalf("%s: last window labelled %g (raw %g), RUL_FD001 says %g", ws.Device[k], ws.RUL[k], ws.RULRaw[k], trueRUL[n-1])
			}
		}
	}
	if len(last) != 100 {
		t.Fatalf("%d test units have a last window, want 100", len(last))
	}
	for d, n := range last {
		if n != 1 {
			t.Fatalf("%s has %d last windows", d, n)
		}
	}
	// Min-max on train: train x within [0, 1], both bounds reached.
	tw := readWindows(t, filepath.Join(tmp, "windows.parquet"), "train")
	lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
	for _, v := range tw.X {
		lo, hi = min(lo, v), max(hi, v)
	}
	if lo != 0 || hi != 1 {
		t.Fatalf("train x in [%g, %g], want [0, 1]", lo, hi)
	}
}
