package collect

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/runenv"
)

func TestParseTime(t *testing.T) {
	want := time.Date(2024, 1, 31, 12, 30, 0, 0, time.UTC)
	for _, s := range []string{
		"2024-01-31T12:30:00Z", "2024-01-31T12:30:00.000000Z", "2024-01-31T13:30:00+01:00", "2024-01-31T13:30:00+0100",
		"2024-01-31 12:30:00", "2024-01-31T12:30:00", "2024-01-31 12:30", "2024-01-31T12:30",
		"1706704200", "1706704200.0", "1706704200000", "1706704200000000", "1706704200000000000", " 1706704200 ",
	} {
		got, err := parseTime(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	if got, _ := parseTime("2024-01-31"); !got.Equal(time.Date(2024, 1, 31, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("date only: %v", got)
	}
	if got, _ := parseTime("1706704200.5"); got.UnixMicro() != 1706704200500000 {
		t.Errorf("fractional seconds: %v", got)
	}
	for _, s := range []string{"", "yesterday", "2024-13-01", "NaN", "Inf", "1e400", "12:30", "2024-01-31T25:00:00Z"} {
		if _, err := parseTime(s); err == nil {
			t.Errorf("parseTime(%q) accepted", s)
		}
	}
}

// TestParseTimeExported: timestamps as PostgreSQL (COPY ... CSV, psql with
// DateStyle ISO) and DuckDB (COPY ... TO 'x.csv') write a timestamptz — a
// space, an hour-only or hh:mm offset, fractional seconds trimmed — and the
// near misses they must not be confused with.
func TestParseTimeExported(t *testing.T) {
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct{ in, want string }{
		{"2024-01-01 00:00:00+00", "2024-01-01T00:00:00Z"},
		{"2024-01-01 00:00:00.123+00", "2024-01-01T00:00:00.123Z"},
		{"2024-01-01 00:00:00.123456+00", "2024-01-01T00:00:00.123456Z"},
		{"2024-01-01 05:30:00+05:30", "2024-01-01T00:00:00Z"},
		{"2024-01-01 05:30:00.5+05:30", "2024-01-01T00:00:00.5Z"},
		{"2023-12-31 19:00:00-05", "2024-01-01T00:00:00Z"},
		{"2023-12-31 20:30:00-03:30", "2024-01-01T00:00:00Z"},
		{"2024-01-01T00:00:00+00", "2024-01-01T00:00:00Z"},
		{"2024-01-01T01:00:00.25+01", "2024-01-01T00:00:00.25Z"},
		{"1900-01-01 00:53:28+00:53:28", "1900-01-01T00:00:00Z"}, // PostgreSQL: a local mean time offset
		{"2024-01-01 00:00:00Z", "2024-01-01T00:00:00Z"},
		{"2024-01-01 00:00:00.1234567+00", "2024-01-01T00:00:00.123456Z"}, // microseconds, as stored
		{" 2024-01-01 00:00:00+00 ", "2024-01-01T00:00:00Z"},
	} {
		got, err := parseTime(tc.in)
		if err != nil || !got.Equal(utc(tc.want)) {
			t.Errorf("parseTime(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"2024-01-01 00:00:00+99", "time zone offset hour out of range"},
		{"2024-01-01 00:00:00+05:99", "time zone offset minute out of range"},
		{"2024-02-30 00:00:00+00", "day out of range"},
		{"2024-13-01 00:00:00+00", "month out of range"},
		{"2024-01-01 24:00:00+00", "hour out of range"},
		{"2024-01-01 00:00:00+0", `cannot parse "2024-01-01 00:00:00+0"`},
		{"2024-01-01 00:00:00+00 BC", `cannot parse "2024-01-01 00:00:00+00 BC"`},
		{"2024-01-01 00:00:00 UTC", `cannot parse "2024-01-01 00:00:00 UTC"`},
		{"2024-01-01 00:00:00+00:00:00:00", "cannot parse"},
		{"infinity", `cannot parse "infinity"`},
		{"-infinity", `cannot parse "-infinity"`},
		{"01/02/2024 00:00:00+00", "cannot parse"},
	} {
		_, err := parseTime(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "2024-01-31 12:00:00+00") {
			t.Errorf("parseTime(%q) err = %v, want %q and the accepted forms", tc.in, err, tc.want)
		}
	}
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadCSV(t *testing.T) {
	dir := t.TempDir()
	readings := writeFile(t, dir, "r.csv", "\ufeffdevice_id, timestamp ,temp,vib\n"+
		"b,2024-01-01T00:10:00Z,2.5,\n"+
		"a,1704067200,1,2\n"+
		"b,2024-01-01T00:00:00Z,-1e3,4\n"+
		"\"a\",2024-01-01 00:10:00,,0.5\n")
	failures := writeFile(t, dir, "f.csv", "device_id,event_time,component_failed,operating_hours_at_failure\n"+
		"b,2024-01-02T00:00:00Z,bearing,1200.5\n"+
		"a,2024-01-03T00:00:00Z,,\n")
	frames, fails, sensors, err := ReadCSV(readings, failures, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(sensors, ",") != "temp,vib" || len(frames) != 2 || frames[0].Device != "a" || frames[1].Device != "b" {
		t.Fatalf("sensors %v frames %d", sensors, len(frames))
	}
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	b := frames[1]
	if b.Tenant != "acme" || b.Time[0] != t0 || b.Time[1] != t0+600e6 || b.Sensors[0][0] != -1000 || b.Sensors[1][0] != 4 || !math.IsNaN(b.Sensors[1][1]) {
		t.Fatalf("device b = %+v", b)
	}
	if a := frames[0]; !math.IsNaN(a.Sensors[0][1]) || a.Sensors[1][1] != 0.5 {
		t.Fatalf("device a = %+v", a)
	}
	if len(fails) != 2 || fails[0].Device != "a" || fails[0].Component != "" || !math.IsNaN(fails[0].OpHours) ||
		fails[1].Component != "bearing" || fails[1].OpHours != 1200.5 || fails[1].EventType != "failure" || fails[1].Tenant != "acme" {
		t.Fatalf("failures %+v", fails)
	}

	// A tenant_id column overrides the default tenant; output is sorted by tenant.
	multi := writeFile(t, dir, "m.csv", "tenant_id,device_id,timestamp,x\nz,d,0,1\ny,d,0,2\n")
	frames, _, _, err = ReadCSV(multi, "", "acme")
	if err != nil || len(frames) != 2 || frames[0].Tenant != "y" || frames[1].Tenant != "z" {
		t.Fatalf("tenants: %v %v", frames, err)
	}
}

func TestReadCSVBadInput(t *testing.T) {
	const hdr = "device_id,timestamp,temp\n"
	for _, tc := range []struct {
		name, readings, failures, want string
	}{
		{"empty file", "", "", "r.csv: empty file"},
		{"header only", hdr, "", "no readings"},
		{"missing device", "timestamp,temp\n0,1\n", "", `r.csv:1: missing column "device_id"`},
		{"missing timestamp", "device_id,temp\nd,1\n", "", `r.csv:1: missing column "timestamp"`},
		{"no sensors", "device_id,timestamp\nd,0\n", "", "no sensor columns"},
		{"duplicate column", "device_id,timestamp,temp,temp\n", "", `column "temp" appears twice`},
		{"unnamed column", "device_id,timestamp,\n", "", "column 3 has no name"},
		{"extra field", hdr + "d,0,1\nd,1,2,3\n", "", "r.csv:3: wrong number of fields"},
		{"missing field", hdr + "d,0\n", "", "r.csv:2: wrong number of fields"},
		{"bad timestamp", hdr + "d,0,1\nd,tomorrow,1\n", "", `r.csv:3: column timestamp: cannot parse "tomorrow"`},
		{"bad offset", hdr + "d,2024-01-01 00:00:00+00,1\nd,2024-01-01 00:30:00+25,1\n", "", `r.csv:3: column timestamp: cannot parse "2024-01-01 00:30:00+25" as a time (time zone offset hour out of range`},
		{"BC timestamp", hdr + "d,0044-03-15 00:00:00+00 BC,1\n", "", `r.csv:2: column timestamp: cannot parse "0044-03-15 00:00:00+00 BC"`},
		{"mistyped value", hdr + "d,0,hot\n", "", `r.csv:2: column temp: "hot" is not a number`},
		{"NaN", hdr + "d,0,NaN\n", "", `r.csv:2: column temp: "NaN" is not a finite number`},
		{"Inf", hdr + "d,0,1\nd,1,-Inf\n", "", `r.csv:3: column temp: "-Inf" is not a finite number`},
		{"infinity", hdr + "d,0,infinity\n", "", "not a finite number"},
		{"overflow", hdr + "d,0,1e999\n", "", "out of the float64 range"},
		{"empty device", hdr + ",0,1\n", "", "r.csv:2: empty device_id"},
		{"duplicate row", hdr + "d,2024-01-01T00:00:00Z,1\ne,0,1\nd,1704067200,2\n", "", "r.csv:4: duplicate reading: device d at 2024-01-01T00:00:00Z is also on line 2"},
		{"bad quote", hdr + "d,0,\"1\n", "", "r.csv:2"},
		{"failures extra column", hdr + "d,0,1\n", "device_id,event_time,severity\n", `f.csv:1: unexpected column "severity"`},
		{"failures missing time", hdr + "d,0,1\n", "device_id,component_failed\n", `f.csv:1: missing column "event_time"`},
		{"failures bad time", hdr + "d,0,1\n", "device_id,event_time\nd,soon\n", "f.csv:2: column event_time"},
		{"failures bad offset", hdr + "d,0,1\n", "device_id,event_time\nd,2024-01-02 00:00:00+00\nd,2024-01-03 00:00:00+5\n", `f.csv:3: column event_time: cannot parse "2024-01-03 00:00:00+5"`},
		{"failures NaN hours", hdr + "d,0,1\n", "device_id,event_time,operating_hours_at_failure\nd,5,NaN\n", "f.csv:2: column operating_hours_at_failure"},
		{"failures duplicate", hdr + "d,0,1\n", "device_id,event_time\nd,5\nd,6\nd,5\n", "f.csv:4: duplicate failure event of device d"},
		{"failures empty", hdr + "d,0,1\n", "", "f.csv: empty file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			r := writeFile(t, dir, "r.csv", tc.readings)
			f := ""
			if tc.failures != "" || tc.name == "failures empty" {
				f = writeFile(t, dir, "f.csv", tc.failures)
			}
			_, _, _, err := ReadCSV(r, f, "t")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if c := exitcode.Code(err); c != exitcode.Validation {
				t.Fatalf("exit code %d, want 3", c)
			}
			// Through Run: the same error and no output file.
			out := t.TempDir()
			opts := testOptions(out)
			opts.Source = "csv:" + r
			opts.Failures = f
			if f != "" {
				opts.Failures = "csv:" + f
			}
			if _, err := Run(context.Background(), runenv.Test(), opts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run err = %v", err)
			}
			assertEmptyDir(t, out)
		})
	}
}

func TestRunCSV(t *testing.T) {
	dir := t.TempDir()
	// Write the synthetic fleet as CSV (shuffled device order), read it back
	// through collect and compare every value.
	so := DefaultSyntheticOptions()
	so.Devices, so.Days, so.MissingRate = 3, 5, 0.05
	frames, failures, err := Synthetic(context.Background(), so)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	sb.WriteString("timestamp,device_id," + strings.Join(SyntheticSensors, ",") + "\n")
	for i := len(frames) - 1; i >= 0; i-- {
		f := frames[i]
		for j := range f.Len() {
			sb.WriteString(dataset.TimeOf(f.Time[j]).Format(time.RFC3339Nano) + "," + f.Device)
			for s := range f.Sensors {
				sb.WriteString(",")
				if v := f.Sensors[s][j]; !math.IsNaN(v) {
					sb.WriteString(formatFloat(v))
				}
			}
			sb.WriteString("\n")
		}
	}
	var fb strings.Builder
	fb.WriteString("device_id,event_time,event_type,component_failed,operating_hours_at_failure\n")
	for _, f := range failures {
		fb.WriteString(f.Device + "," + dataset.TimeOf(f.Time).Format(time.RFC3339Nano) + ",failure," + f.Component + "," + formatFloat(f.OpHours) + "\n")
	}
	opts := testOptions(dir)
	opts.Source = "csv:" + writeFile(t, dir, "fleet.csv", sb.String())
	opts.Failures = "csv:" + writeFile(t, dir, "failures.csv", fb.String())
	res, err := Run(context.Background(), runenv.Test(), opts)
	if err != nil {
		t.Fatal(err)
	}
	got, sensors := readFrames(t, opts.Out)
	if strings.Join(sensors, ",") != strings.Join(SyntheticSensors, ",") {
		t.Fatalf("sensors %v", sensors)
	}
	compareFrames(t, got, frames)
	gf, _, _ := dataset.ReadFailures(context.Background(), opts.FailuresOut)
	compareFailures(t, gf, failures)
	if res.Devices != 3 || res.Failures != len(failures) {
		t.Fatalf("result %+v", res)
	}
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// FuzzReadCSV: the CSV reader never panics, and what it accepts is sorted by
// tenant, device and time with no duplicates and no NaN/Inf values other than
// missing ones.
func FuzzReadCSV(f *testing.F) {
	f.Add([]byte("device_id,timestamp,temp\nd,0,1\nd,2024-01-01T00:00:00Z,\ne,1,2\n"), []byte("device_id,event_time\nd,5\n"))
	f.Add([]byte("tenant_id,device_id,timestamp,a,b\nt,d,1.5,1,2\nt,d,1,NaN,2\n"), []byte(""))
	f.Add([]byte("device_id,timestamp,x\n\"d\nx\",1,2\n"), []byte("device_id,event_time,event_type,component_failed,operating_hours_at_failure\nd,1,f,c,3\n"))
	f.Fuzz(func(t *testing.T, readings, failures []byte) {
		frames, sensors, err := parseReadingsCSV("r.csv", strings.NewReader(string(readings)), "t")
		if err == nil {
			for i, fr := range frames {
				if i > 0 && (frames[i-1].Tenant > fr.Tenant || (frames[i-1].Tenant == fr.Tenant && frames[i-1].Device >= fr.Device)) {
					t.Fatal("frames not sorted")
				}
				if len(fr.Sensors) != len(sensors) {
					t.Fatal("sensor count")
				}
				for j := 1; j < fr.Len(); j++ {
					if fr.Time[j] <= fr.Time[j-1] {
						t.Fatal("times not strictly increasing")
					}
				}
				for _, col := range fr.Sensors {
					if len(col) != fr.Len() {
						t.Fatal("ragged")
					}
					for _, v := range col {
						if math.IsInf(v, 0) {
							t.Fatal("Inf accepted")
						}
					}
				}
			}
		}
		fs, err := parseFailuresCSV("f.csv", strings.NewReader(string(failures)), "t")
		if err == nil {
			for i := 1; i < len(fs); i++ {
				if fs[i].Device == fs[i-1].Device && fs[i].Tenant == fs[i-1].Tenant && fs[i].Time < fs[i-1].Time {
					t.Fatal("failures not sorted")
				}
			}
		}
	})
}
