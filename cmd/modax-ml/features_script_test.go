package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/modax/modax-ml/internal/dataset"
)

// cmdGenLabeled writes a small labeled fleet for the features stories (until
// the collect and label stages can make one):
//
//	gen-labeled FILE [devices=N] [rows=N] [sensors=a,b,...] [horizon=H]
//
// Every device has two lives of rows/2 hourly readings: the first ends in a
// failure, the second's last 10 readings are censored; one value is missing.
func cmdGenLabeled(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: gen-labeled FILE [devices=N] [rows=N] [sensors=a,b] [horizon=H]")
	}
	devices, rows, horizon := 6, 80, 100.0
	sensors := []string{"current_mean", "vibration_x_mean", "temperature_mean"}
	for _, a := range args[1:] {
		k, v, _ := strings.Cut(a, "=")
		var err error
		switch k {
		case "devices":
			devices, err = strconv.Atoi(v)
		case "rows":
			rows, err = strconv.Atoi(v)
		case "horizon":
			horizon, err = strconv.ParseFloat(v, 64)
		case "sensors":
			sensors = strings.Split(v, ",")
		default:
			ts.Fatalf("gen-labeled: unknown argument %q", a)
		}
		ts.Check(err)
	}
	meta := dataset.Meta{}
	meta.MustSet(dataset.MetaHorizon, horizon)
	meta.MustSet(dataset.MetaThresholds, dataset.DefaultThresholds)
	w, err := dataset.CreateFrames(ts.MkAbs(args[0]), sensors, true, meta)
	ts.Check(err)
	const hour = 3_600_000_000
	for d := range devices {
		f := dataset.NewFrame("acme", fmt.Sprintf("press-%02d", d), len(sensors), true)
		half := rows / 2
		for i := range rows {
			life, pos := int32(i/half), i%half
			f.Time = append(f.Time, int64(1_700_000_000_000_000+int64(i)*hour))
			for s := range sensors {
				v := float64(10*s+d) + math.Sin(float64(i)*0.7+float64(s)) + 0.05*float64(pos)
				if d == 1 && s == 0 && i == 7 {
					v = math.NaN()
				}
				f.Sensors[s] = append(f.Sensors[s], v)
			}
			raw := float64(half - 1 - pos)
			censored := life == 1 && pos >= half-10
			rul := math.Min(raw, horizon)
			if censored {
				raw = math.NaN()
			}
			f.RUL = append(f.RUL, rul)
			f.RULRaw = append(f.RULRaw, raw)
			f.Health = append(f.Health, dataset.DefaultThresholds.Classify(rul))
			f.Censored = append(f.Censored, censored)
			f.LifeID = append(f.LifeID, life)
		}
		ts.Check(w.Append(f))
	}
	ts.Check(w.Commit())
}
