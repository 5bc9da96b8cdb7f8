package collect

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/duration"
	"github.com/modax/modax-ml/internal/exitcode"
)

func TestSyntheticDrift(t *testing.T) {
	o := DefaultSyntheticOptions()
	o.Devices, o.Days, o.Interval = 2, 10, duration.Duration(time.Hour)
	base, _, err := Synthetic(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	o.Drift = SyntheticDrift{From: "2024-01-06T00:00:00Z", Offset: map[string]float64{"temperature_mean": 10}, Scale: map[string]float64{"current_mean": 2}}
	drifted, _, err := Synthetic(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	from := dataset.Micros(time.Date(2024, 1, 6, 0, 0, 0, 0, time.UTC))
	temp, cur := 4, 0 // indexes in SyntheticSensors
	if SyntheticSensors[temp] != "temperature_mean" || SyntheticSensors[cur] != "current_mean" {
		t.Fatalf("sensor order %v", SyntheticSensors)
	}
	changed := 0
	for d := range base {
		b, g := base[d], drifted[d]
		for i, ts := range b.Time {
			for j := range SyntheticSensors {
				want := b.Sensors[j][i]
				if ts >= from {
					switch j {
					case temp:
						want += 10
					case cur:
						want *= 2
					}
				}
				got := g.Sensors[j][i]
				if !(got == want || math.IsNaN(got) && math.IsNaN(want)) {
					t.Fatalf("device %d row %d sensor %s: %v, want %v", d, i, SyntheticSensors[j], got, want)
				}
			}
			if ts >= from {
				changed++
			}
		}
	}
	if changed == 0 {
		t.Fatal("no row after the drift start")
	}
	for _, bad := range []SyntheticDrift{
		{From: "yesterday", Offset: map[string]float64{"temperature_mean": 1}},
		{From: "2024-01-06T00:00:00Z", Offset: map[string]float64{"pressure": 1}},
	} {
		o.Drift = bad
		if _, _, err := Synthetic(context.Background(), o); !errors.Is(err, exitcode.ErrUsage) {
			t.Errorf("drift %+v: %v", bad, err)
		}
	}
}
