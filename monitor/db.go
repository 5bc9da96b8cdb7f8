package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/drift"
	"github.com/modax/modax-ml/internal/pg"
)

// readPredictions reads the model version's predictions of the tenant in
// [from, to]. A (device, time) predicted more than once counts once, with
// its latest prediction.
func readPredictions(ctx context.Context, db *pgxpool.Pool, c pg.Config, tenant, version string, from, to time.Time) ([]prediction, error) {
	t, err := pg.Table(c.PredictionTable)
	if err != nil {
		return nil, fmt.Errorf("monitor: db.prediction_table: %w", err)
	}
	q := `SELECT DISTINCT ON (device_id, "timestamp") device_id, "timestamp", rul_hours, rul_lower, rul_upper, interval_level FROM ` + t.Sanitize() +
		` WHERE tenant_id = $1 AND model_version = $2 AND "timestamp" >= $3 AND "timestamp" <= $4
		 ORDER BY device_id, "timestamp", created_at DESC`
	rows, err := db.Query(ctx, q, tenant, version, from, to)
	if err != nil {
		return nil, fmt.Errorf("monitor: read %s: %w", c.PredictionTable, err)
	}
	var out []prediction
	for rows.Next() {
		var p prediction
		if err := rows.Scan(&p.device, &p.at, &p.rul, &p.lower, &p.upper, &p.level); err != nil {
			rows.Close()
			return nil, fmt.Errorf("monitor: read %s: %w", c.PredictionTable, err)
		}
		p.at = p.at.UTC()
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("monitor: read %s: %w", c.PredictionTable, err)
	}
	return out, nil
}

// readFailures reads the tenant's failures at or after since, by device,
// sorted by time.
func readFailures(ctx context.Context, db *pgxpool.Pool, c pg.Config, tenant string, since time.Time) (map[string][]time.Time, error) {
	t, err := pg.Table(c.FailureTable)
	if err != nil {
		return nil, fmt.Errorf("monitor: db.failure_table: %w", err)
	}
	rows, err := db.Query(ctx, `SELECT device_id, event_time FROM `+t.Sanitize()+` WHERE tenant_id = $1 AND event_time >= $2`, tenant, since)
	if err != nil {
		return nil, fmt.Errorf("monitor: read %s: %w", c.FailureTable, err)
	}
	out := map[string][]time.Time{}
	for rows.Next() {
		var d string
		var at time.Time
		if err := rows.Scan(&d, &at); err != nil {
			rows.Close()
			return nil, fmt.Errorf("monitor: read %s: %w", c.FailureTable, err)
		}
		out[d] = append(out[d], at.UTC())
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("monitor: read %s: %w", c.FailureTable, err)
	}
	for _, ts := range out {
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	}
	return out, nil
}

// readReadings streams the tenant's readings in (from, to] into one sketch
// per sensor (a bounded uniform sample) and counts them. Sensors the table
// lacks are left out.
func readReadings(ctx context.Context, db *pgxpool.Pool, c pg.Config, tenant string, sensors []string, from, to time.Time, sample int) (map[string]*drift.Sketch, int64, error) {
	t, err := pg.Table(c.SensorTable)
	if err != nil {
		return nil, 0, fmt.Errorf("monitor: db.sensor_table: %w", err)
	}
	cols, err := pg.TableColumns(ctx, db, c.SensorTable)
	if err != nil {
		return nil, 0, fmt.Errorf("monitor: %w", err)
	}
	sensors = slices.DeleteFunc(slices.Clone(sensors), func(s string) bool { _, ok := cols[s]; return !ok })
	if len(sensors) == 0 {
		return nil, 0, nil
	}
	quoted := make([]string, len(sensors))
	for i, s := range sensors {
		quoted[i] = pg.Quote(s)
	}
	q := `SELECT ` + strings.Join(quoted, ", ") + ` FROM ` + t.Sanitize() + ` WHERE tenant_id = $1 AND "timestamp" > $2 AND "timestamp" <= $3`
	rows, err := db.Query(ctx, q, tenant, from, to)
	if err != nil {
		return nil, 0, fmt.Errorf("monitor: read %s: %w", c.SensorTable, err)
	}
	defer rows.Close()
	sk := make([]*drift.Sketch, len(sensors))
	for i := range sk {
		sk[i] = drift.NewSketch(sample)
	}
	vals := make([]*float64, len(sensors))
	dest := make([]any, len(sensors))
	for i := range vals {
		dest[i] = &vals[i]
	}
	var n int64
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, 0, fmt.Errorf("monitor: read %s: %w", c.SensorTable, err)
		}
		for i, v := range vals {
			if v != nil {
				sk[i].Add(*v)
			}
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("monitor: read %s: %w", c.SensorTable, err)
	}
	out := make(map[string]*drift.Sketch, len(sensors))
	for i, s := range sensors {
		out[s] = sk[i]
	}
	return out, n, nil
}

// compareDrift compares the sketches with the reference report's
// distributions.
func compareDrift(d *Drift, reference string, sketches map[string]*drift.Sketch, maxPSI float64) error {
	ref, err := drift.ReadReference(reference)
	if err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	names := make([]string, 0, len(sketches))
	for s := range sketches {
		names = append(names, s)
	}
	sort.Strings(names)
	d.Sensors = []SensorDrift{}
	for _, name := range names {
		dist, ok := ref.Sensors[name]
		if !ok {
			continue
		}
		cmp, ok := drift.Compare(dist, sketches[name].Sorted())
		if !ok {
			continue
		}
		s := SensorDrift{Sensor: name, PSI: cmp.PSI, KS: cmp.KS, Count: cmp.Count, Drifted: maxPSI > 0 && cmp.PSI > maxPSI}
		d.Sensors = append(d.Sensors, s)
		if d.MaxPSI == nil || s.PSI > *d.MaxPSI {
			d.MaxPSI = ptr(s.PSI)
		}
	}
	return nil
}

// WritePredictions inserts predictions into the prediction table
// (db.prediction_table: tenant, device, time of the window's last reading,
// predicted RUL in hours, its interval when it has one, predicted health
// class, model version), as the serving side records them, with one COPY.
// It returns the rows written.
func WritePredictions(ctx context.Context, db *pgxpool.Pool, c pg.Config, ps []dataset.Prediction) (int64, error) {
	t, err := pg.Table(c.PredictionTable)
	if err != nil {
		return 0, fmt.Errorf("db.prediction_table: %w", err)
	}
	i := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i == len(ps) {
			return nil, nil
		}
		p := &ps[i]
		i++
		var lo, hi, lv *float64
		if p.HasInterval() {
			lo, hi, lv = &p.Lower, &p.Upper, &p.Level
		}
		return []any{p.Tenant, p.Device, dataset.TimeOf(p.End), p.RULPred, lo, hi, lv, p.HealthPred.String(), p.ModelVersion}, nil
	})
	n, err := db.CopyFrom(ctx, t, []string{"tenant_id", "device_id", "timestamp", "rul_hours", "rul_lower", "rul_upper", "interval_level",
		"health_status", "model_version"}, src)
	if err != nil {
		return n, fmt.Errorf("write predictions to %s: %w", c.PredictionTable, err)
	}
	return n, nil
}

// writeResult upserts the report into db.monitor_table (monitor --to-db), one
// row per check: what a dashboard plots over time. The interval columns are
// the highest level's (null without intervals); the whole report is in
// report.
func writeResult(ctx context.Context, db *pgxpool.Pool, c pg.Config, rep *Report) error {
	t, err := pg.Table(c.MonitorTableName())
	if err != nil {
		return fmt.Errorf("monitor: db.monitor_table: %w", err)
	}
	body, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	p := rep.Performance
	var level, cov, width *float64
	if n := len(p.Intervals); n > 0 {
		iv := p.Intervals[n-1]
		level, cov, width = &iv.Level, &iv.Coverage, &iv.MeanWidth
	}
	_, err = db.Exec(ctx, `INSERT INTO `+t.Sanitize()+` (tenant_id, run_id, checked_at, model_version, predictions, outcomes, pending,
  realized_mae, realized_rmse, score_mean, late_rate, degradation, max_psi, interval_level, coverage, interval_width, decision, reasons, report)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
ON CONFLICT (tenant_id, run_id) DO UPDATE SET checked_at = EXCLUDED.checked_at, model_version = EXCLUDED.model_version,
  predictions = EXCLUDED.predictions, outcomes = EXCLUDED.outcomes, pending = EXCLUDED.pending, realized_mae = EXCLUDED.realized_mae,
  realized_rmse = EXCLUDED.realized_rmse, score_mean = EXCLUDED.score_mean, late_rate = EXCLUDED.late_rate,
  degradation = EXCLUDED.degradation, max_psi = EXCLUDED.max_psi, interval_level = EXCLUDED.interval_level,
  coverage = EXCLUDED.coverage, interval_width = EXCLUDED.interval_width, decision = EXCLUDED.decision,
  reasons = EXCLUDED.reasons, report = EXCLUDED.report, created_at = now()`,
		rep.Tenant, rep.RunID, rep.To, rep.Model.Version, rep.Predictions.Total, p.N, rep.Predictions.Pending,
		p.MAE, p.RMSE, p.ScoreMean, p.LateRate, p.Degradation, rep.Drift.MaxPSI, level, cov, width, rep.Decision, rep.Reasons, string(body))
	if err != nil {
		return fmt.Errorf("monitor: write %s (run db migrate first): %w", c.MonitorTableName(), err)
	}
	return nil
}
