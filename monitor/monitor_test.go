package monitor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/drift"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/pg"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/internal/testutil"
	"github.com/modax/modax-ml/internal/tracking"
)

func TestResolveAndScore(t *testing.T) {
	now := time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC)
	h := func(x float64) time.Time { return now.Add(time.Duration(x * float64(time.Hour))) }
	fails := map[string][]time.Time{"a": {h(-200), h(-20)}, "b": {h(-50)}}
	preds := []prediction{
		{device: "a", at: h(-30), rul: 12},  // next failure of a at -20: truth 10, late by 2
		{device: "a", at: h(-20), rul: 0},   // a failure at exactly the prediction's time: truth 0
		{device: "a", at: h(-250), rul: 90}, // next failure 50 h later: truth 50, late by 40
		{device: "a", at: h(-400), rul: 80}, // failure 200 h later: truth capped at 100, early by 20
		{device: "b", at: h(-150), rul: 100},
		{device: "b", at: h(-40), rul: 30},  // after b's last failure, horizon not yet passed: pending
		{device: "c", at: h(-120), rul: 70}, // c never failed, 120 h > horizon ago: truth 100
		{device: "c", at: h(-10), rul: 70},  // pending
	}
	out, pending := resolve(preds, fails, 100, now)
	if pending != 2 {
		t.Errorf("pending %d, want 2", pending)
	}
	want := []outcome{{pred: 12, truth: 10}, {pred: 0, truth: 0}, {pred: 90, truth: 50}, {pred: 80, truth: 100}, {pred: 100, truth: 100}, {pred: 70, truth: 100}}
	if !slices.Equal(out, want) {
		t.Fatalf("outcomes %v, want %v", out, want)
	}
	testMAE := 10.0
	p := score(out, &testMAE)
	d := []float64{2, 0, 40, -20, 0, -30}
	var abs, sq, sc float64
	for _, x := range d {
		abs += math.Abs(x)
		sq += x * x
		if x < 0 {
			sc += math.Exp(-x/13) - 1
		} else {
			sc += math.Exp(x/10) - 1
		}
	}
	if p.N != 6 || *p.MAE != abs/6 || *p.RMSE != math.Sqrt(sq/6) || math.Abs(*p.Score-sc) > 1e-9 || *p.ScoreMean != *p.Score/6 {
		t.Errorf("performance %+v", p)
	}
	if *p.LateRate != 2.0/6 || *p.EarlyRate != 2.0/6 || *p.Degradation != (abs/6)/10 {
		t.Errorf("rates %v %v degradation %v", *p.LateRate, *p.EarlyRate, *p.Degradation)
	}
	if e := score(nil, &testMAE); e.N != 0 || e.MAE != nil {
		t.Errorf("empty score %+v", e)
	}
}

// fleet plants a production history in a fresh database: devices that fail
// at known times, the deployed model's predictions (truth + error), and
// readings whose temperature is shifted by tempShift.
type fleet struct {
	db      *pgxpool.Pool
	cfg     pg.Config
	now     time.Time
	dir     string // working directory: models/, runs/
	sensors []string
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	return newFleetOn(t, testutil.Database{DSN: testutil.NewDatabase(t)})
}

// newFleetOn is newFleet in tdb: on TimescaleDB db migrate makes hypertables.
func newFleetOn(t *testing.T, tdb testutil.Database) *fleet {
	t.Helper()
	dsn := tdb.DSN
	ctx := context.Background()
	cfg := pg.DefaultConfig()
	cfg.DSN = dsn
	db, err := pg.Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	mode := pg.TimescaleOff
	if tdb.TimescaleDB {
		mode = pg.TimescaleOn
	}
	if _, err := pg.Migrate(ctx, db, cfg, mode, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	f := &fleet{db: db, cfg: cfg, now: time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC), dir: t.TempDir(), sensors: cfg.Sensors}
	f.deployModel(t, "v1", 6)
	f.reference(t, "train-1")
	return f
}

// deployModel writes the model_metadata.json deploy would have written.
func (f *fleet) deployModel(t *testing.T, version string, testMAE float64) {
	t.Helper()
	md := map[string]any{
		"schema": "modax.model_metadata/v1", "model_version": version, "horizon_hours": 100.0, "features": f.sensors,
		"training_run_id": "train-1", "test_metrics": map[string]any{"n": 500, "mae": testMAE, "rmse": testMAE * 1.3, "score": 1000.0},
	}
	b, _ := json.Marshal(md)
	if err := os.MkdirAll(filepath.Join(f.dir, "models"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "models", "model_metadata.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// sensorValue is the training distribution of sensor i: normal(50+10i, 5).
func sensorValue(rng *rand.Rand, i int) float64 { return 50 + 10*float64(i) + 5*rng.NormFloat64() }

// reference writes the training run's validation report (its reference
// section, as validate writes it).
func (f *fleet) reference(t *testing.T, runID string) {
	t.Helper()
	dir := filepath.Join(f.dir, "runs", runID)
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "validation.json"), f.referenceJSON(0), 0o644); err != nil {
		t.Fatal(err)
	}
}

// referenceJSON is a validation report whose reference is the training
// distribution, with temperature_mean shifted by tempShift.
func (f *fleet) referenceJSON(tempShift float64) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	ref := drift.Reference{Sensors: map[string]drift.Distribution{}}
	for i, s := range f.sensors {
		xs := make([]float64, 5000)
		for j := range xs {
			xs[j] = sensorValue(rng, i)
			if s == "temperature_mean" {
				xs[j] += tempShift
			}
		}
		slices.Sort(xs)
		ref.Sensors[s] = drift.Summarize(xs)
	}
	b, _ := json.Marshal(map[string]any{"schema": "modax.validation/v1", "reference": ref})
	return b
}

// deployServed lays out models/ as deploy does (versions/<v>/, the current
// link, model_metadata.json through it), with validation published in the
// version directory and its sha256 in the metadata.
func (f *fleet) deployServed(t *testing.T, version string, testMAE float64, validation []byte) {
	t.Helper()
	models := filepath.Join(f.dir, "models")
	vdir := filepath.Join(models, "versions", version)
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(validation)
	md := map[string]any{
		"schema": "modax.model_metadata/v1", "model_version": version, "horizon_hours": 100.0, "features": f.sensors,
		"training_run_id": "train-1", "test_metrics": map[string]any{"n": 500, "mae": testMAE, "rmse": testMAE * 1.3, "score": 1000.0},
		"validation": map[string]any{"file": "validation.json", "sha256": hex.EncodeToString(sum[:]), "bytes": len(validation)},
	}
	b, _ := json.Marshal(md)
	for name, data := range map[string][]byte{"model_metadata.json": b, "validation.json": validation} {
		if err := os.WriteFile(filepath.Join(vdir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{"current": "versions/" + version, "model_metadata.json": "current/model_metadata.json"} {
		os.Remove(filepath.Join(models, name))
		if err := os.Symlink(target, filepath.Join(models, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// plant writes 10 devices that each failed 30 h ago, hourly predictions of
// version over the 100 h before (truth + bias + noise), one pending
// prediction per device, and hourly readings of the last 7 days.
func (f *fleet) plant(t *testing.T, version string, bias, tempShift float64) {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	var preds []dataset.Prediction
	var failRows, readRows [][]any
	for d := range 10 {
		dev := fmt.Sprintf("dev-%02d", d)
		fail := f.now.Add(-30 * time.Hour)
		failRows = append(failRows, []any{"default", dev, fail, "failure"})
		for k := 1; k <= 100; k++ {
			at := fail.Add(-time.Duration(k) * time.Hour)
			truth := float64(k)
			preds = append(preds, dataset.Prediction{Tenant: "default", Device: dev, End: dataset.Micros(at),
				RULPred: truth + bias + 2*rng.NormFloat64(), ModelVersion: version})
		}
		preds = append(preds, dataset.Prediction{Tenant: "default", Device: dev, End: dataset.Micros(f.now.Add(-2 * time.Hour)), RULPred: 80, ModelVersion: version})
		for k := range 7 * 24 {
			row := []any{"default", dev, f.now.Add(-time.Duration(k) * time.Hour)}
			for i, s := range f.sensors {
				v := sensorValue(rng, i)
				if s == "temperature_mean" {
					v += tempShift
				}
				row = append(row, v)
			}
			readRows = append(readRows, row)
		}
	}
	// Another tenant's rows are never read.
	preds = append(preds, dataset.Prediction{Tenant: "other", Device: "dev-00", End: dataset.Micros(f.now.Add(-40 * time.Hour)), RULPred: 1e6, ModelVersion: version})
	if n, err := WritePredictions(ctx, f.db, f.cfg, preds); err != nil || n != int64(len(preds)) {
		t.Fatalf("write predictions: %d, %v", n, err)
	}
	if _, err := f.db.CopyFrom(ctx, pgx.Identifier{f.cfg.FailureTable}, []string{"tenant_id", "device_id", "event_time", "event_type"}, pgx.CopyFromRows(failRows)); err != nil {
		t.Fatal(err)
	}
	cols := append([]string{"tenant_id", "device_id", "timestamp"}, f.sensors...)
	if _, err := f.db.CopyFrom(ctx, pgx.Identifier{f.cfg.SensorTable}, cols, pgx.CopyFromRows(readRows)); err != nil {
		t.Fatal(err)
	}
}

func (f *fleet) opts() Options {
	o := DefaultOptions()
	o.DB = f.cfg
	o.ModelsDir = filepath.Join(f.dir, "models")
	o.RunsDir = filepath.Join(f.dir, "runs")
	return o
}

func (f *fleet) env() *runenv.Env {
	e := runenv.New(slog.New(slog.NewTextHandler(io.Discard, nil)), nil, "")
	e.Now = func() time.Time { return f.now }
	return e
}

// TestMonitorGoodModel runs on plain PostgreSQL and on TimescaleDB
// (rul_predictions and sensor_data hypertables).
// TestIntervalCoverage: coverage counts the outcomes inside their interval
// per level, and decide makes a level below --min-coverage (default the
// level − 0.10) a retrain reason once --min-outcomes are known.
func TestIntervalCoverage(t *testing.T) {
	iv := func(pred, truth, lo, hi, lv float64) outcome {
		return outcome{pred: pred, truth: truth, lower: &lo, upper: &hi, level: &lv}
	}
	os := []outcome{
		iv(50, 55, 40, 60, 0.9), iv(50, 61, 40, 60, 0.9), iv(50, 40, 40, 60, 0.9), iv(50, 60, 40, 60, 0.9),
		iv(20, 5, 10, 30, 0.8), iv(20, 12, 10, 30, 0.8),
		{pred: 70, truth: 70}, // no interval
	}
	got := coverage(os)
	if len(got) != 2 || got[0].Level != 0.8 || got[0].N != 2 || got[0].Coverage != 0.5 || got[0].MeanWidth != 20 ||
		got[1].Level != 0.9 || got[1].N != 4 || got[1].Coverage != 0.75 || got[1].MeanWidth != 20 {
		t.Fatalf("coverage %+v", got)
	}
	for _, c := range []struct {
		min         float64
		minOutcomes int
		reasons     int
		notes       int
	}{
		{0, 2, 2, 0},    // 0.5 < 0.7 and 0.75 < 0.8
		{0.6, 2, 1, 0},  // 0.5 < 0.6 only
		{-1, 2, 0, 0},   // off
		{0, 3, 1, 1},    // the 0.8 level has too few outcomes
		{0.5, 10, 0, 2}, // neither judged
	} {
		rep := &Report{Performance: Performance{N: 100, Intervals: coverage(os)}, Drift: Drift{Readings: 1}}
		decide(rep, Options{MinCoverage: c.min, MinOutcomes: c.minOutcomes})
		if len(rep.Reasons) != c.reasons || len(rep.Notes) != c.notes {
			t.Errorf("--min-coverage %g --min-outcomes %d: reasons %q notes %q", c.min, c.minOutcomes, rep.Reasons, rep.Notes)
		}
		if (c.reasons > 0) != (rep.Decision == DecisionRetrain) {
			t.Errorf("--min-coverage %g: decision %s", c.min, rep.Decision)
		}
	}
}

func TestMonitorGoodModel(t *testing.T) {
	testutil.EachDatabase(t, testMonitorGoodModel)
}

func testMonitorGoodModel(t *testing.T, tdb testutil.Database) { //nolint:thelper // a subtest body run by testutil.EachDatabase
	f := newFleetOn(t, tdb)
	f.plant(t, "v1", 0, 0)
	rep, err := Run(context.Background(), f.env(), f.opts())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Decision != DecisionOK || len(rep.Reasons) != 0 {
		t.Fatalf("good model: %s %v", rep.Decision, rep.Reasons)
	}
	// 10 devices × 100 predictions with outcomes (truth 1..100 h), 10 pending;
	// the other tenant's prediction is not counted.
	if rep.Predictions.Total != 1010 || rep.Predictions.WithOutcome != 1000 || rep.Predictions.Pending != 10 {
		t.Errorf("counts %+v", rep.Predictions)
	}
	p := rep.Performance
	if p.N != 1000 || *p.MAE > 2 || *p.Degradation > 0.5 {
		t.Errorf("performance MAE %v, degradation %v", *p.MAE, *p.Degradation)
	}
	if rep.Drift.Readings != 10*7*24 || len(rep.Drift.Sensors) != 5 || *rep.Drift.MaxPSI > 0.1 {
		t.Errorf("drift %+v", rep.Drift)
	}
	if rep.Drift.Reference != filepath.Join(f.dir, "runs", "train-1", "validation.json") {
		t.Errorf("reference %s", rep.Drift.Reference)
	}
	// The report and the monitor's run record.
	rec, err := tracking.Load(filepath.Dir(rep.Path))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != tracking.StatusFinished || rec.Tags["modax.monitor.decision"] != "ok" || float64(rec.FinalMetrics["realized_mae"]) != *p.MAE {
		t.Errorf("monitor run record: %s %v %v", rec.Status, rec.Tags, rec.FinalMetrics)
	}
	var back Report
	b, _ := os.ReadFile(rep.Path)
	if err := json.Unmarshal(b, &back); err != nil || back.Decision != "ok" || back.Schema != ReportSchema {
		t.Errorf("report file: %v %+v", err, back)
	}

	if len(p.Intervals) != 0 {
		t.Errorf("intervals without any predicted: %+v", p.Intervals)
	}

	// Predictions with a 90 % interval: the errors are N(0, 2²), so ±3.29 h
	// covers 90 %; --to-db writes the result to monitor_results.
	ctx := context.Background()
	predT := pgx.Identifier{f.cfg.PredictionTable}.Sanitize()
	if _, err := f.db.Exec(ctx, `UPDATE `+predT+` SET rul_lower = rul_hours - 3.29, rul_upper = rul_hours + 3.29, interval_level = 0.9`); err != nil {
		t.Fatal(err)
	}
	o := f.opts()
	o.ToDB = true
	rep, err = Run(ctx, f.env(), o)
	if err != nil {
		t.Fatal(err)
	}
	iv := rep.Performance.Intervals
	if len(iv) != 1 || iv[0].Level != 0.9 || iv[0].N != 1000 || iv[0].Coverage < 0.85 || iv[0].Coverage > 0.95 ||
		math.Abs(iv[0].MeanWidth-6.58) > 1e-9 || iv[0].MinCoverage == nil || math.Abs(*iv[0].MinCoverage-0.8) > 1e-12 || rep.Decision != DecisionOK {
		t.Fatalf("intervals %+v, decision %s %v", iv, rep.Decision, rep.Reasons)
	}
	var cov, mae float64
	var decision, version string
	var reasons []string
	monT := pgx.Identifier{f.cfg.MonitorTableName()}.Sanitize()
	if err := f.db.QueryRow(ctx, `SELECT coverage, realized_mae, decision, model_version, reasons FROM `+monT+` WHERE run_id = $1`, rep.RunID).
		Scan(&cov, &mae, &decision, &version, &reasons); err != nil {
		t.Fatal(err)
	}
	if cov != iv[0].Coverage || mae != *rep.Performance.MAE || decision != "ok" || version != "v1" || len(reasons) != 0 {
		t.Errorf("monitor_results row: coverage %v mae %v %s %s %v", cov, mae, decision, version, reasons)
	}

	// Intervals that miss the outcome: coverage below --min-coverage is a
	// retrain reason.
	if _, err := f.db.Exec(ctx, `UPDATE `+predT+` SET rul_lower = rul_hours + 20, rul_upper = rul_hours + 30`); err != nil {
		t.Fatal(err)
	}
	rep, err = Run(ctx, f.env(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Decision != DecisionRetrain || len(rep.Reasons) != 1 || !strings.Contains(rep.Reasons[0], "90 % interval covered 0.0 % of 1000 outcomes < --min-coverage 80.0 %") {
		t.Errorf("missed intervals: %s %v", rep.Decision, rep.Reasons)
	}
	if err := f.db.QueryRow(ctx, `SELECT decision, reasons FROM `+monT+` WHERE run_id = $1`, rep.RunID).Scan(&decision, &reasons); err != nil || decision != "retrain" || len(reasons) != 1 {
		t.Errorf("monitor_results row: %v %s %v", err, decision, reasons)
	}
}

func TestMonitorDegradedModel(t *testing.T) {
	f := newFleet(t)
	f.plant(t, "v1", 15, 0) // predicts failures 15 h too late
	o := f.opts()
	rep, err := Run(context.Background(), f.env(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Decision != DecisionRetrain || len(rep.Reasons) != 1 || !strings.Contains(rep.Reasons[0], "the model's test MAE 6 h") {
		t.Fatalf("degraded model: %s %v", rep.Decision, rep.Reasons)
	}
	if *rep.Performance.LateRate < 0.99 {
		t.Errorf("late rate %v", *rep.Performance.LateRate)
	}
	// An absolute limit names itself; too few outcomes judge nothing.
	o.MaxMAE, o.MaxDegradation = 10, 0
	rep, _ = Run(context.Background(), f.env(), o)
	if rep.Decision != DecisionRetrain || !strings.Contains(rep.Reasons[0], "> --max-mae 10 h") {
		t.Errorf("max-mae: %v", rep.Reasons)
	}
	o.MinOutcomes = 5000
	rep, _ = Run(context.Background(), f.env(), o)
	if rep.Decision != DecisionOK || len(rep.Notes) == 0 || !strings.Contains(rep.Notes[0], "fewer than --min-outcomes 5000") {
		t.Errorf("min-outcomes: %s %v", rep.Decision, rep.Notes)
	}
	// Predictions of another model version are not the deployed model's.
	f.deployModel(t, "v2", 6)
	rep, err = Run(context.Background(), f.env(), f.opts())
	if err != nil || rep.Predictions.Total != 0 || rep.Decision != DecisionOK {
		t.Errorf("new model without predictions: %v %+v %s", err, rep.Predictions, rep.Decision)
	}
}

func TestMonitorDriftAndRetrain(t *testing.T) {
	f := newFleet(t)
	f.plant(t, "v1", 0, 25) // temperature recalibrated by +25
	o := f.opts()
	calls := 0
	o.Retrain = true
	o.Retrainer = func(context.Context) (*Retrained, error) {
		calls++
		return &Retrained{RunID: "retrain-1", Status: "finished", Decision: "deployed", Version: "v2"}, nil
	}
	rep, err := Run(context.Background(), f.env(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Decision != DecisionRetrain || len(rep.Reasons) != 1 || !strings.HasPrefix(rep.Reasons[0], "drift: temperature_mean PSI") {
		t.Fatalf("drift: %s %v", rep.Decision, rep.Reasons)
	}
	for _, s := range rep.Drift.Sensors {
		if s.Drifted != (s.Sensor == "temperature_mean") {
			t.Errorf("sensor %s drifted=%v (PSI %.3f)", s.Sensor, s.Drifted, s.PSI)
		}
	}
	if calls != 1 || rep.Retrain == nil || rep.Retrain.Version != "v2" {
		t.Errorf("retrain: %d calls, %+v", calls, rep.Retrain)
	}
	// A retrained model that misses the gate: exit 5.
	o.Retrainer = func(context.Context) (*Retrained, error) {
		return &Retrained{RunID: "retrain-2", Status: "finished", Decision: "rejected"}, fmt.Errorf("pipeline: deploy: test MAE 30 > 15: %w", exitcode.ErrGate)
	}
	rep, err = Run(context.Background(), f.env(), o)
	if exitcode.Code(err) != exitcode.Gate || rep.Retrain.Decision != "rejected" {
		t.Errorf("gate miss: %v, %+v", err, rep.Retrain)
	}
	// A failed retraining: exit 1.
	o.Retrainer = func(context.Context) (*Retrained, error) { return nil, errors.New("pipeline: collect: boom") }
	_, err = Run(context.Background(), f.env(), o)
	if exitcode.Code(err) != exitcode.Error || !strings.Contains(err.Error(), "boom") {
		t.Errorf("failed retrain: %v", err)
	}
	// Without --retrain the decision is reported only.
	o.Retrain = false
	calls = 0
	if rep, err := Run(context.Background(), f.env(), o); err != nil || rep.Decision != DecisionRetrain || rep.Retrain != nil {
		t.Errorf("without --retrain: %v %+v", err, rep)
	}
}

// The reference statistics come from the served version (deploy publishes
// the validation report there), not from the training run's directory, and
// a report that no longer matches the metadata's sha256 is refused.
func TestMonitorReferenceFromServedVersion(t *testing.T) {
	f := newFleet(t)
	// The run directory's report is of other data: temperature 25 higher.
	if err := os.WriteFile(filepath.Join(f.dir, "runs", "train-1", "validation.json"), f.referenceJSON(25), 0o644); err != nil {
		t.Fatal(err)
	}
	f.deployServed(t, "v1", 6, f.referenceJSON(0))
	f.plant(t, "v1", 0, 0)
	rep, err := Run(context.Background(), f.env(), f.opts())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.EvalSymlinks(filepath.Join(f.dir, "models", "versions", "v1", "validation.json"))
	if rep.Drift.Reference != want {
		t.Errorf("reference %s, want the served version's %s", rep.Drift.Reference, want)
	}
	if rep.Decision != DecisionOK || *rep.Drift.MaxPSI > 0.1 {
		t.Errorf("against the served reference nothing drifts: %s %v", rep.Decision, rep.Reasons)
	}
	// Changed after the deploy: refused, not silently used.
	if err := os.WriteFile(want, f.referenceJSON(1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), f.env(), f.opts()); err == nil || !strings.Contains(err.Error(), "corrupt") || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("a changed reference: %v", err)
	}
	// --reference still names one explicitly.
	o := f.opts()
	o.Reference = filepath.Join(f.dir, "runs", "train-1", "validation.json")
	if rep, err := Run(context.Background(), f.env(), o); err != nil || rep.Drift.Reference != o.Reference || rep.Decision != DecisionRetrain {
		t.Errorf("--reference: %v %+v", err, rep)
	}
}

func TestMonitorErrors(t *testing.T) {
	f := newFleet(t)
	o := f.opts()
	o.ModelsDir = t.TempDir()
	if _, err := Run(context.Background(), f.env(), o); err == nil || !strings.Contains(err.Error(), "no deployed model") {
		t.Errorf("no model: %v", err)
	}
	o = f.opts()
	os.RemoveAll(filepath.Join(f.dir, "runs", "train-1"))
	if _, err := Run(context.Background(), f.env(), o); !errors.Is(err, exitcode.ErrUsage) || !strings.Contains(err.Error(), "--reference") {
		t.Errorf("no reference: %v", err)
	}
	o = f.opts()
	o.Retrain = true
	if _, err := Run(context.Background(), f.env(), o); !errors.Is(err, exitcode.ErrUsage) {
		t.Errorf("--retrain without a retrainer: %v", err)
	}
}
