package collect

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/testutil"
)

func TestReadCMAPSSTrain(t *testing.T) {
	dir := testutil.CMAPSSDir(t)
	frames, failures, sensors, err := ReadCMAPSS(filepath.Join(dir, "train_FD001.txt"), "", "nasa")
	if err != nil {
		t.Fatal(err)
	}
	if len(sensors) != 24 || sensors[0] != "setting_1" || sensors[3] != "s_1" || sensors[23] != "s_21" {
		t.Fatalf("sensors = %v", sensors)
	}
	rows := 0
	for i, f := range frames {
		rows += f.Len()
		if f.Tenant != "nasa" {
			t.Fatalf("tenant = %q", f.Tenant)
		}
		if i > 0 && frames[i-1].Device >= f.Device {
			t.Fatalf("devices not sorted: %s before %s", frames[i-1].Device, f.Device)
		}
		for s := range f.Sensors {
			if len(f.Sensors[s]) != f.Len() {
				t.Fatalf("%s sensor %d has %d values for %d rows", f.Device, s, len(f.Sensors[s]), f.Len())
			}
		}
	}
	if rows != 20631 || len(frames) != 100 || len(failures) != 100 {
		t.Fatalf("rows %d devices %d failures %d, want 20631 / 100 / 100", rows, len(frames), len(failures))
	}
	// Unit 1, cycle 1 is the first line of the file.
	var u1 = frames[0]
	if u1.Device != "unit-1" {
		t.Fatalf("first device %s", u1.Device)
	}
	if got, want := u1.Time[0], CMAPSSEpoch.Add(time.Hour).UnixMicro(); got != want {
		t.Fatalf("unit-1 first time %d, want %d", got, want)
	}
	want := []float64{-0.0007, -0.0004, 100.0, 518.67, 641.82}
	for i, w := range want {
		if u1.Sensors[i][0] != w {
			t.Fatalf("unit-1 row 0 %s = %v, want %v", sensors[i], u1.Sensors[i][0], w)
		}
	}
	// One failure per unit at the timestamp of its last cycle (RUL 0 there).
	for i, f := range frames {
		fl := failures[i]
		if fl.Device != f.Device || fl.Time != f.Time[f.Len()-1] || fl.EventType != "failure" || fl.Tenant != "nasa" {
			t.Fatalf("failure %d = %+v, frame %s ends at %d", i, fl, f.Device, f.Time[f.Len()-1])
		}
		if fl.OpHours != float64(f.Len()) {
			t.Fatalf("%s: operating hours %v, want %d cycles", f.Device, fl.OpHours, f.Len())
		}
	}
}

func TestReadCMAPSSTestWithRUL(t *testing.T) {
	dir := testutil.CMAPSSDir(t)
	rulPath := filepath.Join(dir, "RUL_FD001.txt")
	frames, failures, _, err := ReadCMAPSS(filepath.Join(dir, "test_FD001.txt"), rulPath, "nasa")
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, f := range frames {
		rows += f.Len()
	}
	if rows != 13096 || len(frames) != 100 || len(failures) != 100 {
		t.Fatalf("rows %d devices %d failures %d, want 13096 / 100 / 100", rows, len(frames), len(failures))
	}
	// The failure times reproduce RUL_FD001: failure − last reading = true RUL.
	truth := testutil.ReadRULFile(t, rulPath)
	byDevice := map[string]int{}
	for i, f := range frames {
		byDevice[f.Device] = i
	}
	for unit, rul := range truth {
		dev := "unit-" + strconv.Itoa(unit+1)
		f := frames[byDevice[dev]]
		// failures are sorted like frames: one per unit.
		fl := failures[byDevice[dev]]
		if fl.Device != dev {
			t.Fatalf("failure %d is of %s, want %s", byDevice[dev], fl.Device, dev)
		}
		got := float64(fl.Time-f.Time[f.Len()-1]) / float64(time.Hour/time.Microsecond)
		if math.Abs(got-rul) > 1e-9 {
			t.Fatalf("%s: failure %v h after the last reading, RUL_FD001 says %v", dev, got, rul)
		}
	}
}

func TestReadCMAPSSBadInput(t *testing.T) {
	dir := t.TempDir()
	row := func(unit, cycle string) string {
		return unit + " " + cycle + " 0.1 0.2 100" + strings.Repeat(" 1.5", 21) + "\n"
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("train_ok.txt", row("1", "1")+row("1", "2")+row("2", "1"))
	for _, tc := range []struct {
		name, file, rul, want string
		code                  int
	}{
		{"empty", write("train_empty.txt", ""), "", "train_empty.txt: no rows", 3},
		{"columns", write("train_cols.txt", row("1", "1")+"1 2 3\n"), "", "train_cols.txt:2: 3 columns, want 26", 3},
		{"unit", write("train_unit.txt", row("x", "1")), "", `train_unit.txt:1: unit "x"`, 3},
		{"nan", write("train_nan.txt", strings.Replace(row("1", "1"), "0.2", "NaN", 1)), "", "train_nan.txt:1: column setting_2", 3},
		{"inf", write("train_inf.txt", strings.Replace(row("1", "1"), "0.2", "+Inf", 1)), "", "not a finite number", 3},
		{"duplicate", write("train_dup.txt", row("1", "1")+row("1", "2")+row("1", "1")), "", "train_dup.txt:3: unit 1 cycle 1 duplicates line 1", 3},
		{"test without rul", write("test_FD009.txt", row("1", "1")), "", "--rul", 2},
		{"rul count", good, write("RUL_short.txt", "5\n"), "RUL_short.txt holds 1 RUL values but", 3},
		{"rul value", good, write("RUL_bad.txt", "5\n-1\n"), "RUL_bad.txt:2", 3},
		{"missing", filepath.Join(dir, "nope.txt"), "", "no such file", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := ReadCMAPSS(tc.file, tc.rul, "t")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if got := exitcode.Code(err); got != tc.code {
				t.Fatalf("exit code %d, want %d (%v)", got, tc.code, err)
			}
		})
	}
	// Out-of-order cycles are sorted.
	frames, fails, _, err := ReadCMAPSS(write("train_order.txt", row("1", "2")+row("1", "1")), "", "t")
	if err != nil {
		t.Fatal(err)
	}
	if frames[0].Time[0] >= frames[0].Time[1] || fails[0].Time != frames[0].Time[1] {
		t.Fatalf("rows not sorted: %v, failure %v", frames[0].Time, fails[0].Time)
	}
}

// FuzzParseCMAPSS: the reader never panics, and what it accepts is sorted,
// finite and free of duplicate (device, time) rows.
func FuzzParseCMAPSS(f *testing.F) {
	f.Add([]byte("1 1 0.1 0.2 100"+strings.Repeat(" 1.5", 21)+"\n1 2 0.1 0.2 100"+strings.Repeat(" 2", 21)+"\n"), []byte("3\n"))
	f.Add([]byte("2 5 1 1 1"+strings.Repeat(" 1e3", 21)+"\n1 1 1 1 1"+strings.Repeat(" -1", 21)), []byte(""))
	f.Add([]byte("1 1 NaN"), []byte("x"))
	f.Fuzz(func(t *testing.T, data, rulText []byte) {
		var rul []float64
		if len(rulText) > 0 {
			r, err := parseCMAPSSRUL("rul", strings.NewReader(string(rulText)))
			if err != nil {
				return
			}
			rul = r
		}
		frames, failures, err := parseCMAPSS("in", strings.NewReader(string(data)), rul, "rul", "t")
		if err != nil {
			return
		}
		if len(failures) != len(frames) {
			t.Fatalf("%d failures for %d frames", len(failures), len(frames))
		}
		for i, fr := range frames {
			if i > 0 && frames[i-1].Device >= fr.Device {
				t.Fatalf("devices not sorted")
			}
			for j := 1; j < fr.Len(); j++ {
				if fr.Time[j] <= fr.Time[j-1] {
					t.Fatalf("%s: times not strictly increasing", fr.Device)
				}
			}
			for _, col := range fr.Sensors {
				if len(col) != fr.Len() {
					t.Fatal("ragged frame")
				}
				for _, v := range col {
					if math.IsNaN(v) || math.IsInf(v, 0) {
						t.Fatal("non-finite value accepted")
					}
				}
			}
			if failures[i].Time < fr.Time[fr.Len()-1] {
				t.Fatalf("%s fails before its last reading", fr.Device)
			}
		}
	})
}
