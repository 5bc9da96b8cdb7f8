package duration

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"", 0, false},
		{"0", 0, false},
		{"90m", 90 * time.Minute, false},
		{"24h", 24 * time.Hour, false},
		{"7d", 7 * 24 * time.Hour, false},
		{"1d12h", 36 * time.Hour, false},
		{"1.5d", 36 * time.Hour, false},
		{"d", 0, true},
		{"3x", 0, true},
		{"1d2", 0, true},
	} {
		got, err := Parse(tc.in)
		if (err != nil) != tc.err || (err == nil && got.D() != tc.want) {
			t.Errorf("Parse(%q) = %v, %v; want %v, error %v", tc.in, got.D(), err, tc.want, tc.err)
		}
	}
}

// FuzzParse: no input panics, and every accepted duration reads back from
// its own text form.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"90m", "7d", "1d12h", "0", "-1h", "1.5d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Parse(s)
		if err != nil {
			return
		}
		back, err := Parse(d.String())
		if err != nil || back != d {
			t.Fatalf("Parse(%q) = %v, but its text %q reads back as %v, %v", s, d, d.String(), back, err)
		}
	})
}
