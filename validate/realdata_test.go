package validate

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/modax/modax-ml/collect"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/testutil"
)

// TestCMAPSS: FD001's constant sensors are flagged, and nothing is an error.
func TestCMAPSS(t *testing.T) {
	frames, events, sensors, err := collect.ReadCMAPSS(filepath.Join(testutil.CMAPSSDir(t), "train_FD001.txt"), "", "nasa")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	readings, failures := testutil.WriteReadings(t, dir, sensors, frames, events, dataset.Meta{})
	for _, tc := range []struct {
		nearConstant float64
		near         []string
	}{
		{0.99, nil},
		{0.98, []string{"s_6"}}, // 98.03% of s_6 is 21.61
	} {
		opts := DefaultOptions()
		opts.Readings, opts.Failures, opts.Out = readings, failures, filepath.Join(dir, "validation.json")
		opts.NearConstant = tc.nearConstant
		rep, err := Run(context.Background(), testEnv(), opts)
		if err != nil {
			t.Fatal(err)
		}
		var constant, near []string
		for _, f := range rep.Findings {
			switch {
			case f.Severity == Error:
				t.Errorf("error on C-MAPSS: %s %s", f.Check, f.Message)
			case f.Check == CheckConstant:
				constant = append(constant, f.Sensor)
			case f.Check == CheckNearConstant:
				near = append(near, f.Sensor)
			}
		}
		slices.Sort(constant)
		if want := []string{"s_1", "s_10", "s_16", "s_18", "s_19", "s_5", "setting_3"}; !slices.Equal(constant, want) {
			t.Errorf("constant sensors %v, want %v", constant, want)
		}
		if !slices.Equal(near, tc.near) {
			t.Errorf("near_constant %g: near-constant sensors %v, want %v", tc.nearConstant, near, tc.near)
		}
		if tc.nearConstant == 0.99 && (rep.Counts.Warnings != 7 || rep.Counts.Infos != 0 || len(rep.Findings) != 7) {
			t.Errorf("C-MAPSS at the defaults: %d warnings, %d infos, want the 7 constant sensors only", rep.Counts.Warnings, rep.Counts.Infos)
		}
		cb := rep.ClassBalance
		if cb.DevicesWithFailures != 100 || cb.Lives != 100 || cb.Rows != 20631 || cb.Critical != 1000 || cb.Censored != 0 {
			t.Errorf("class balance %+v", cb)
		}
	}
}

// TestSyntheticFleet: collect's clean synthetic fleet has no errors.
func TestSyntheticFleet(t *testing.T) {
	opts := collect.DefaultSyntheticOptions()
	opts.Devices, opts.Days = 6, 30
	frames, events, err := collect.Synthetic(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	readings, failures := testutil.WriteReadings(t, dir, collect.SyntheticSensors, frames, events, dataset.Meta{})
	vo := DefaultOptions()
	vo.Readings, vo.Failures, vo.Out = readings, failures, filepath.Join(dir, "validation.json")
	rep, err := Run(context.Background(), testEnv(), vo)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		t.Logf("%s %s %s: %s", f.Severity, f.Check, f.Sensor, f.Message)
	}
	if rep.Counts.Errors != 0 || rep.Failed {
		t.Fatalf("clean synthetic fleet: %d errors", rep.Counts.Errors)
	}
	if cb := rep.ClassBalance; cb.DevicesWithFailures == 0 || cb.Critical == 0 || cb.Censored == 0 {
		t.Fatalf("class balance %+v", cb)
	}
}
