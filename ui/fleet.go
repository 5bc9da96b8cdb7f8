package ui

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/monitor"
)

// scoreFiles finds the scores files: scores*.parquet in the working
// directory and in every run directory.
func (s *Server) scoreFiles() []string {
	var out []string
	for _, pat := range []string{filepath.Join(s.opts.Dir, "scores*.parquet"), filepath.Join(s.opts.RunsDir, "*", "scores*.parquet")} {
		m, _ := filepath.Glob(pat) // the patterns are well-formed
		out = append(out, m...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// scoreRow is one score with the file it came from.
type scoreRow struct {
	dataset.Score
	File string
	// Inputs are the files the score was made from (the scores file's
	// modax.inputs; none for the database's rows).
	Inputs []dataset.Input
}

// allScores reads every scores file; files that cannot be read are
// reported, not fatal.
func (s *Server) allScores(ctx context.Context) ([]scoreRow, []string) {
	var rows []scoreRow
	var bad []string
	for _, f := range s.scoreFiles() {
		ss, meta, err := dataset.ReadScores(ctx, f)
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		var inputs []dataset.Input
		_, _ = meta.Get(dataset.MetaInputs, &inputs) // lineage only: a bad value shows no sensor history
		for _, sc := range ss {
			rows = append(rows, scoreRow{Score: sc, File: f, Inputs: inputs})
		}
	}
	if s.opts.DBScores != nil {
		ss, err := s.opts.DBScores(ctx)
		if err != nil {
			bad = append(bad, s.opts.DBName+": "+err.Error())
		}
		for _, sc := range ss {
			rows = append(rows, scoreRow{Score: sc, File: s.opts.DBName})
		}
	}
	// Oldest first; the same score (device, reading, scored_at) found in
	// two files is kept once.
	slices.SortStableFunc(rows, func(a, b scoreRow) int {
		return cmp.Or(strings.Compare(a.Tenant, b.Tenant), strings.Compare(a.Device, b.Device), cmp.Compare(a.ScoredAt, b.ScoredAt), cmp.Compare(a.Time, b.Time))
	})
	rows = slices.CompactFunc(rows, func(a, b scoreRow) bool {
		return a.Tenant == b.Tenant && a.Device == b.Device && a.ScoredAt == b.ScoredAt && a.Time == b.Time
	})
	return rows, bad
}

type fleetData struct {
	Files    []string
	Problems []string
	Devices  []fleetDevice
	Counts   []classCount
	Top      float64
	Monitor  *monitorData
	RunsDir  string
	Dir      string
	// Newest is the newest scoring (Unix seconds); NOlder counts the
	// devices whose last score is older.
	Newest int64
	NOlder int
}

type fleetDevice struct {
	scoreRow
	Link      string
	Bar       template.HTML
	Trend     template.HTML
	Scores    int
	ScoredAt  time.Time
	LastRead  time.Time
	HasChange bool
	// Older: the device is not in the newest scoring (its last score is
	// from an earlier one).
	Older bool
}

type classCount struct {
	Class string
	N     int
}

func (s *Server) fleet(w http.ResponseWriter, r *http.Request) {
	rows, bad := s.allScores(r.Context())
	d := fleetData{Files: s.scoreFiles(), Problems: bad, RunsDir: s.opts.RunsDir, Dir: s.opts.Dir}
	if s.opts.DBScores != nil {
		d.Files = append(d.Files, s.opts.DBName)
	}
	byDev := map[[2]string][]scoreRow{}
	var order [][2]string
	for _, sc := range rows {
		k := [2]string{sc.Tenant, sc.Device}
		if _, ok := byDev[k]; !ok {
			order = append(order, k)
		}
		byDev[k] = append(byDev[k], sc)
	}
	counts := map[string]int{}
	for _, k := range order {
		hist := byDev[k]
		last := hist[len(hist)-1]
		fd := fleetDevice{scoreRow: last, Scores: len(hist), ScoredAt: dataset.TimeOf(last.ScoredAt), LastRead: dataset.TimeOf(last.Time),
			Link: "/fleet/" + url.PathEscape(last.Tenant) + "/" + url.PathEscape(last.Device), HasChange: finite(last.Change)}
		var trend []float64
		for _, h := range hist[max(0, len(hist)-20):] {
			trend = append(trend, h.RUL)
		}
		fd.Trend = Sparkline(trend)
		d.Top = math.Max(d.Top, math.Max(last.RUL, nz(last.Upper)))
		counts[last.Health.String()]++
		d.Devices = append(d.Devices, fd)
	}
	for _, fd := range d.Devices {
		d.Newest = max(d.Newest, fd.ScoredAt.Unix())
	}
	for i := range d.Devices {
		fd := &d.Devices[i]
		if fd.ScoredAt.Unix() < d.Newest {
			fd.Older = true
			d.NOlder++
		}
		fd.Bar = RangeBar(fd.RUL, fd.Lower, fd.Upper, d.Top, fd.Health.String())
	}
	slices.SortStableFunc(d.Devices, func(a, b fleetDevice) int {
		return cmp.Or(cmp.Compare(a.RUL, b.RUL), strings.Compare(a.Device, b.Device))
	})
	for _, h := range dataset.HealthClasses {
		if n := counts[h.String()]; n > 0 {
			d.Counts = append(d.Counts, classCount{Class: h.String(), N: n})
		}
	}
	d.Monitor = s.monitorHistory()
	s.render(w, http.StatusOK, "fleet", "Fleet", d)
}

func nz(f float64) float64 {
	if finite(f) {
		return f
	}
	return 0
}

type deviceData struct {
	Tenant, Device string
	Scores         []scoreRow
	Latest         *scoreRow
	RULChart       template.HTML
	Predictions    template.HTML
	PredRun        string
	PredN          int
	// Sensor history: the device's readings up to its latest score, from
	// the readings file that score was made from.
	Sensors     []template.HTML
	SensorsFrom string
	SensorsN    int
}

func (s *Server) device(w http.ResponseWriter, r *http.Request) {
	tenant, dev := r.PathValue("tenant"), r.PathValue("device")
	rows, _ := s.allScores(r.Context())
	d := deviceData{Tenant: tenant, Device: dev}
	for _, sc := range rows {
		if sc.Tenant == tenant && sc.Device == dev {
			d.Scores = append(d.Scores, sc)
		}
	}
	if len(d.Scores) > 0 {
		d.Latest = &d.Scores[len(d.Scores)-1]
		ser := Series{Name: "RUL (scored)", Color: 0}
		for _, sc := range d.Scores {
			ser.X = append(ser.X, float64(sc.Time)/1e6)
			ser.Y, ser.Lo, ser.Hi = append(ser.Y, sc.RUL), append(ser.Lo, sc.Lower), append(ser.Hi, sc.Upper)
		}
		d.RULChart = LineChart{ID: "rul-history", Title: "RUL at each score (band: interval)", XLabel: "last reading", YLabel: "RUL (hours)", XTime: true, YZero: true, Series: []Series{ser}}.SVG()
		d.Sensors, d.SensorsFrom, d.SensorsN = s.sensorHistory(r.Context(), d.Latest)
	}
	// The newest run whose predictions cover the device: the model's RUL
	// over the device's test windows, against the truth.
	recs, _ := s.records()
	for _, rec := range recs {
		ps, _, err := dataset.ReadPredictions(r.Context(), filepath.Join(rec.Dir, "predictions.parquet"))
		if err != nil {
			continue
		}
		pred := Series{Name: "predicted", Color: 0}
		truth := Series{Name: "true (capped)", Color: 6, Dashed: true}
		for _, p := range ps {
			if p.Tenant != tenant || p.Device != dev {
				continue
			}
			x := float64(p.End) / 1e6
			pred.X, pred.Y, pred.Lo, pred.Hi = append(pred.X, x), append(pred.Y, p.RULPred), append(pred.Lo, p.Lower), append(pred.Hi, p.Upper)
			truth.X, truth.Y = append(truth.X, x), append(truth.Y, p.RULTrue)
		}
		if len(pred.X) == 0 {
			continue
		}
		d.PredRun, d.PredN = rec.RunID, len(pred.X)
		d.Predictions = LineChart{ID: "rul-predictions", Title: "Run " + rec.RunID + ": predicted and true RUL over the device's windows", XLabel: "window end", YLabel: "RUL (hours)", XTime: true, YZero: true, Series: []Series{pred, truth}}.SVG()
		break
	}
	if d.Latest == nil && d.PredRun == "" {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("no scores or predictions for device %s of tenant %s", dev, tenant))
		return
	}
	s.render(w, http.StatusOK, "device", "Device "+dev, d)
}

// sensorHistoryRows is how many readings before the latest score the
// device page draws.
const sensorHistoryRows = 2000

// sensorHistory draws each sensor of the device over the last
// sensorHistoryRows readings up to the latest score, read from the readings
// file that score was made from (its Inputs; a relative path is taken from
// the ui's --dir). Nothing when that file is gone, is not a readings file,
// or lacks the device, and for scores from the database.
func (s *Server) sensorHistory(ctx context.Context, latest *scoreRow) (charts []template.HTML, from string, n int) {
	for _, in := range latest.Inputs {
		loc := in.Path
		if !filepath.IsAbs(loc) && !strings.Contains(loc, "://") {
			loc = filepath.Join(s.opts.Dir, loc)
		}
		rd, err := dataset.Open(loc, dataset.KindReadings)
		if err != nil {
			continue
		}
		sensors, err := rd.Sensors()
		if err != nil {
			rd.Close()
			continue
		}
		var f *dataset.Frame
		for fr, err := range rd.DeviceFrames(ctx, sensors) {
			if err != nil {
				break
			}
			if fr.Tenant == latest.Tenant && fr.Device == latest.Device {
				f = fr
				break
			}
		}
		rd.Close()
		if f == nil {
			continue
		}
		hi := len(f.Time)
		for hi > 0 && f.Time[hi-1] > latest.Time {
			hi--
		}
		lo := max(0, hi-sensorHistoryRows)
		if hi == lo {
			continue
		}
		for j, name := range sensors {
			ser := Series{Name: name, Color: j, Gaps: true}
			for i := lo; i < hi; i++ {
				ser.X, ser.Y = append(ser.X, float64(f.Time[i])/1e6), append(ser.Y, f.Sensors[j][i])
			}
			charts = append(charts, LineChart{ID: "sensor-" + name, Title: name, XLabel: "time", YLabel: name, XTime: true, Series: []Series{ser}}.SVG())
		}
		return charts, in.Path, hi - lo
	}
	return nil, "", 0
}

type monitorData struct {
	Reports  []monitorRow
	MAE      template.HTML
	Coverage template.HTML
	Drift    template.HTML
}

type monitorRow struct {
	RunID string
	*monitor.Report
	Coverage *monitor.IntervalCoverage
}

// monitorHistory reads the monitor reports of the runs (runs/*/monitor.json),
// oldest first; nil when there are none.
func (s *Server) monitorHistory() *monitorData {
	files, _ := filepath.Glob(filepath.Join(s.opts.RunsDir, "*", monitor.ReportFile))
	var rows []monitorRow
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var rep monitor.Report
		if json.Unmarshal(b, &rep) != nil || rep.Schema != monitor.ReportSchema {
			continue
		}
		row := monitorRow{RunID: filepath.Base(filepath.Dir(f)), Report: &rep}
		if iv := rep.Performance.Intervals; len(iv) > 0 {
			row.Coverage = &iv[0]
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return nil
	}
	slices.SortFunc(rows, func(a, b monitorRow) int { return a.CreatedAt.Compare(b.CreatedAt) })
	d := &monitorData{Reports: rows}
	mae := Series{Name: "realized MAE", Color: 0}
	cov := Series{Name: "interval coverage", Color: 2}
	drift := map[string]*Series{}
	var sensors []string
	for _, r := range rows {
		x := float64(r.CreatedAt.Unix())
		if m := r.Performance.MAE; m != nil {
			mae.X, mae.Y = append(mae.X, x), append(mae.Y, *m)
		}
		if r.Coverage != nil {
			cov.X, cov.Y = append(cov.X, x), append(cov.Y, r.Coverage.Coverage)
		}
		for _, sd := range r.Drift.Sensors {
			sr, ok := drift[sd.Sensor]
			if !ok {
				sr = &Series{Name: sd.Sensor, Color: len(sensors)}
				drift[sd.Sensor] = sr
				sensors = append(sensors, sd.Sensor)
			}
			sr.X, sr.Y = append(sr.X, x), append(sr.Y, sd.PSI)
		}
	}
	d.MAE = LineChart{ID: "monitor-mae", Title: "Realized MAE of the served model", XLabel: "monitor run", YLabel: "MAE (hours)", XTime: true, YZero: true, Series: []Series{mae}}.SVG()
	if len(cov.X) > 0 {
		d.Coverage = LineChart{ID: "monitor-coverage", Title: "Interval coverage", XLabel: "monitor run", YLabel: "coverage", XTime: true, Series: []Series{cov}}.SVG()
	}
	if len(sensors) > 0 {
		ch := LineChart{ID: "monitor-drift", Title: "Drift per sensor (PSI against the training data)", XLabel: "monitor run", YLabel: "PSI", XTime: true, YZero: true}
		for _, n := range sensors {
			ch.Series = append(ch.Series, *drift[n])
		}
		d.Drift = ch.SVG()
	}
	return d
}
