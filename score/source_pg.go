package score

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/pg"
)

// pgSource reads each device's newest readings from db.sensor_table: per
// batch of devices one query, whose per-device part is an index (or, on a
// hypertable, chunk-pruned index) scan of (tenant_id, device_id, timestamp)
// backwards from --at, stopped after the readings the window needs and at
// the device's last failure.
type pgSource struct {
	s      *settings
	pool   *pgxpool.Pool
	cols   []string
	sensor pgx.Identifier
	fail   pgx.Identifier
}

func openPostgres(ctx context.Context, s *settings, pool *pgxpool.Pool, cols []string) (*pgSource, error) {
	sensor, err := pg.Table(s.DB.SensorTable)
	if err != nil {
		return nil, fmt.Errorf("%w: score: db.sensor_table: %w", exitcode.ErrUsage, err)
	}
	fail, err := pg.Table(s.DB.FailureTable)
	if err != nil {
		return nil, fmt.Errorf("%w: score: db.failure_table: %w", exitcode.ErrUsage, err)
	}
	have, err := pg.TableColumns(ctx, pool, s.DB.SensorTable)
	if err != nil {
		return nil, fmt.Errorf("%w: score: db.sensor_table: %w", exitcode.ErrValidation, err)
	}
	var lacks []string
	for _, c := range cols {
		if have[c] == "" {
			lacks = append(lacks, c)
		}
	}
	if len(lacks) > 0 {
		return nil, fmt.Errorf("%w: score: table %s lacks the model's input column(s) %s", exitcode.ErrValidation, s.DB.SensorTable, strings.Join(lacks, ", "))
	}
	if _, err := pg.TableColumns(ctx, pool, s.DB.FailureTable); err != nil {
		return nil, fmt.Errorf("%w: score: db.failure_table: %w", exitcode.ErrValidation, err)
	}
	return &pgSource{s: s, pool: pool, cols: cols, sensor: sensor, fail: fail}, nil
}

func (p *pgSource) describe() map[string]any {
	return map[string]any{"source": SourcePostgres, "sensor_table": p.s.DB.SensorTable, "failure_table": p.s.DB.FailureTable}
}

func (p *pgSource) inputs() []string { return nil }

func (p *pgSource) close() {}

// devicesQuery lists the tenant's devices in byte order without reading its
// readings: a loose index scan of the primary key, one probe per device.
func (p *pgSource) devicesQuery() string {
	t := p.sensor.Sanitize()
	return fmt.Sprintf(`WITH RECURSIVE d AS (
  (SELECT device_id FROM %[1]s WHERE tenant_id = $1 ORDER BY device_id LIMIT 1)
  UNION ALL
  SELECT (SELECT s.device_id FROM %[1]s s WHERE s.tenant_id = $1 AND s.device_id > d.device_id ORDER BY s.device_id LIMIT 1)
  FROM d WHERE d.device_id IS NOT NULL
) SELECT device_id::text FROM d WHERE device_id IS NOT NULL`, t)
}

// batchQuery is the readings query of one batch of devices ($2), as of $3,
// at most $4 readings per device: one row per device (ord, its 1-based
// position in $2), the device's last failure and its readings as arrays, one
// per column, newest first (the order of the index scan; orderRows puts them
// oldest first), a missing value as NaN. A device without readings in its
// current life has NULL arrays. One row per device instead of one per reading
// spares the server the per-row sort and output and the client the per-row
// decoding.
func (p *pgSource) batchQuery() string {
	var agg, inner strings.Builder
	for j, c := range p.cols {
		fmt.Fprintf(&agg, ", array_agg(coalesce(q.c%[1]d, 'NaN'))", j)
		fmt.Fprintf(&inner, ", s.%s::float8 AS c%d", pg.Quote(c), j)
	}
	return fmt.Sprintf(`SELECT d.ord, lf.t, r.*
FROM unnest($2::text[]) WITH ORDINALITY AS d(device_id, ord)
LEFT JOIN LATERAL (
  SELECT max(f.event_time) AS t FROM %[3]s f
  WHERE f.tenant_id = $1 AND f.device_id = d.device_id COLLATE "C" AND f.event_time <= $3
) lf ON true
LEFT JOIN LATERAL (
  SELECT array_agg(q."timestamp")%[1]s FROM (
    SELECT s."timestamp"%[2]s FROM %[4]s s
    WHERE s.tenant_id = $1 AND s.device_id = d.device_id COLLATE "C" AND s."timestamp" <= $3
      AND (lf.t IS NULL OR s."timestamp" > lf.t)
    ORDER BY s."timestamp" DESC LIMIT $4
  ) q
) r ON true
ORDER BY d.ord`, agg.String(), inner.String(), p.fail.Sanitize(), p.sensor.Sanitize())
}

// existsQuery says which of the devices $2 have any reading at all.
func (p *pgSource) existsQuery() string {
	return fmt.Sprintf(`SELECT d.device_id FROM unnest($2::text[]) AS d(device_id)
WHERE EXISTS (SELECT 1 FROM %s s WHERE s.tenant_id = $1 AND s.device_id = d.device_id COLLATE "C")`, p.sensor.Sanitize())
}

func (p *pgSource) listDevices(ctx context.Context) ([]string, error) {
	if len(p.s.Devices) > 0 {
		var out []string
		for _, d := range p.s.Devices {
			if !slices.Contains(out, d) {
				out = append(out, d)
			}
		}
		var known bool
		if err := p.pool.QueryRow(ctx, fmt.Sprintf(`SELECT EXISTS (SELECT 1 FROM %s WHERE tenant_id = $1)`, p.sensor.Sanitize()), p.s.DB.Tenant).Scan(&known); err != nil {
			return nil, fmt.Errorf("score: read %s: %w", p.s.DB.SensorTable, err)
		}
		if !known {
			return nil, &unknownTenantError{tenant: p.s.DB.Tenant, where: "table " + p.s.DB.SensorTable}
		}
		return out, nil
	}
	rows, err := p.pool.Query(ctx, p.devicesQuery(), p.s.DB.Tenant)
	if err != nil {
		return nil, fmt.Errorf("score: list the devices of %s: %w", p.s.DB.SensorTable, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("score: list the devices of %s: %w", p.s.DB.SensorTable, err)
	}
	if len(out) == 0 {
		return nil, &unknownTenantError{tenant: p.s.DB.Tenant, where: "table " + p.s.DB.SensorTable}
	}
	return out, nil
}

// scan reads the batches of devices, the next one while fn scores the
// current one (readAhead).
func (p *pgSource) scan(ctx context.Context, batch, need int, fn func([]device) error) error {
	names, err := p.listDevices(ctx)
	if err != nil {
		return err
	}
	return readAhead(ctx, func(ctx context.Context, emit func([]device) error) error {
		for lo := 0; lo < len(names); lo += batch {
			ds, err := p.readBatch(ctx, names[lo:min(lo+batch, len(names))], need)
			if err != nil {
				return err
			}
			if err := emit(ds); err != nil {
				return err
			}
		}
		return nil
	}, fn)
}

func (p *pgSource) readBatch(ctx context.Context, names []string, need int) ([]device, error) {
	rows, err := p.pool.Query(ctx, p.batchQuery(), p.s.DB.Tenant, names, p.s.at, need)
	if err != nil {
		return nil, fmt.Errorf("score: read %s: %w", p.s.DB.SensorTable, err)
	}
	defer rows.Close()
	nc := len(p.cols)
	ds := make([]device, 0, len(names))
	var ord int64
	var lf pgtype.Timestamptz
	var ts []time.Time
	dest := make([]any, 3+nc)
	dest[0], dest[1], dest[2] = &ord, &lf, &ts
	var empty []int
	for rows.Next() {
		cols := make([][]float64, nc)
		for j := range cols {
			dest[3+j] = &cols[j]
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("score: read %s: %w", p.s.DB.SensorTable, err)
		}
		if ord != int64(len(ds)+1) || len(ds) == len(names) {
			return nil, fmt.Errorf("score: read %s: the batch query returned device position %d after %d of %d", p.s.DB.SensorTable, ord, len(ds), len(names))
		}
		ds = append(ds, device{name: names[ord-1]})
		d := &ds[len(ds)-1]
		if len(ts) == 0 {
			d.reason, d.detail = ReasonTooFew, noReadings(lf.Valid, dataset.Micros(lf.Time))
			empty = append(empty, len(ds)-1)
			continue
		}
		for j, c := range cols {
			if len(c) != len(ts) {
				return nil, fmt.Errorf("score: read %s: device %s: %d values of %s for %d timestamps", p.s.DB.SensorTable, d.name, len(c), p.cols[j], len(ts))
			}
		}
		d.frame = orderRows(p.s.DB.Tenant, d.name, ts, cols)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("score: read %s: %w", p.s.DB.SensorTable, err)
	}
	rows.Close()
	if len(ds) != len(names) {
		return nil, fmt.Errorf("score: read %s: the batch query returned %d of %d devices", p.s.DB.SensorTable, len(ds), len(names))
	}
	if len(empty) > 0 {
		// Without readings now: unknown, or none since the last repair?
		var probe []string
		for _, i := range empty {
			probe = append(probe, ds[i].name)
		}
		r, err := p.pool.Query(ctx, p.existsQuery(), p.s.DB.Tenant, probe)
		if err != nil {
			return nil, fmt.Errorf("score: read %s: %w", p.s.DB.SensorTable, err)
		}
		known, err := pgx.CollectRows(r, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("score: read %s: %w", p.s.DB.SensorTable, err)
		}
		for _, i := range empty {
			if !slices.Contains(known, ds[i].name) {
				ds[i].reason = ReasonUnknownDevice
				ds[i].detail = fmt.Sprintf("no readings of device %q of tenant %q in table %s", ds[i].name, p.s.DB.Tenant, p.s.DB.SensorTable)
			}
		}
	}
	return ds, nil
}

// orderRows makes the frame of one device's readings, oldest first, from
// the batch query's arrays (newest first: reversed in place; any other order
// is sorted). The sensor arrays become the frame's columns.
func orderRows(tenant, name string, ts []time.Time, cols [][]float64) *dataset.Frame {
	f := dataset.NewFrame(tenant, name, 0, false)
	f.Sensors = cols
	f.Time = make([]int64, len(ts))
	n := len(ts)
	desc := true
	for i, t := range ts {
		f.Time[n-1-i] = dataset.Micros(t)
		if i > 0 && !t.Before(ts[i-1]) {
			desc = false
		}
	}
	if desc {
		for _, c := range cols {
			slices.Reverse(c)
		}
		return f
	}
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	slices.SortStableFunc(perm, func(a, b int) int { return ts[a].Compare(ts[b]) })
	for i, k := range perm {
		f.Time[i] = dataset.Micros(ts[k])
	}
	for j, c := range cols {
		sorted := make([]float64, n)
		for i, k := range perm {
			sorted[i] = c[k]
		}
		cols[j] = sorted
	}
	return f
}

// scoreColumns are the interval columns `db migrate` adds to the prediction
// table.
var scoreColumns = []string{"rul_lower", "rul_upper", "interval_level"}

// previousFromDB fills each score's change since the device's latest earlier
// row of the prediction table (one query; no table yet: no previous scores).
func previousFromDB(ctx context.Context, pool *pgxpool.Pool, s *settings, ss []dataset.Score) error {
	t, err := pg.Table(s.DB.PredictionTable)
	if err != nil {
		return fmt.Errorf("%w: score: db.prediction_table: %w", exitcode.ErrUsage, err)
	}
	exists, err := pg.TableExists(ctx, pool, t)
	if err != nil {
		return fmt.Errorf("score: %w", err)
	}
	if !exists {
		return nil
	}
	devs := make([]string, len(ss))
	times := make([]time.Time, len(ss))
	for i := range ss {
		devs[i], times[i] = ss[i].Device, dataset.TimeOf(ss[i].Time)
	}
	rows, err := pool.Query(ctx, fmt.Sprintf(`SELECT d.ord, p."timestamp", p.rul_hours
FROM unnest($2::text[], $3::timestamptz[]) WITH ORDINALITY AS d(device_id, ts, ord)
JOIN LATERAL (
  SELECT q."timestamp", q.rul_hours FROM %s q
  WHERE q.tenant_id = $1 AND q.device_id = d.device_id COLLATE "C" AND q."timestamp" < d.ts
  ORDER BY q."timestamp" DESC, q.created_at DESC LIMIT 1
) p ON true`, t.Sanitize()), s.DB.Tenant, devs, times)
	if err != nil {
		return fmt.Errorf("score: read the previous scores from %s: %w", s.DB.PredictionTable, err)
	}
	defer rows.Close()
	for rows.Next() {
		var ord int64
		var ts time.Time
		var rul float64
		if err := rows.Scan(&ord, &ts, &rul); err != nil {
			return fmt.Errorf("score: read the previous scores from %s: %w", s.DB.PredictionTable, err)
		}
		sc := &ss[ord-1]
		sc.Change, sc.PreviousTime = sc.RUL-rul, dataset.Micros(ts)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("score: read the previous scores from %s: %w", s.DB.PredictionTable, err)
	}
	return nil
}

// upsertScores writes the scores into the prediction table in one
// transaction, replacing rows of the same (tenant, device, timestamp, model
// version), so that scoring again is idempotent.
func upsertScores(ctx context.Context, pool *pgxpool.Pool, c pg.Config, ss []dataset.Score) (int64, error) {
	t, err := pg.Table(c.PredictionTable)
	if err != nil {
		return 0, fmt.Errorf("%w: score: db.prediction_table: %w", exitcode.ErrUsage, err)
	}
	have, err := pg.TableColumns(ctx, pool, c.PredictionTable)
	if err != nil {
		return 0, fmt.Errorf("score --to-db: %w", err)
	}
	for _, col := range scoreColumns {
		if have[col] == "" {
			return 0, fmt.Errorf("score --to-db: table %s has no column %s (run `modax-ml db migrate` to add it)", c.PredictionTable, col)
		}
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("score --to-db: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit
	byVersion := map[string][]int{}
	for i := range ss {
		byVersion[ss[i].ModelVersion] = append(byVersion[ss[i].ModelVersion], i)
	}
	for v, idx := range byVersion {
		devs := make([]string, len(idx))
		times := make([]time.Time, len(idx))
		for k, i := range idx {
			devs[k], times[k] = ss[i].Device, dataset.TimeOf(ss[i].Time)
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(`DELETE FROM %s p USING unnest($2::text[], $3::timestamptz[]) AS k(device_id, ts)
WHERE p.tenant_id = $1 AND p.device_id = k.device_id COLLATE "C" AND p."timestamp" = k.ts AND p.model_version = $4`, t.Sanitize()),
			c.Tenant, devs, times, v); err != nil {
			return 0, fmt.Errorf("score --to-db: replace earlier scores in %s: %w", c.PredictionTable, err)
		}
	}
	opt := func(v float64) any {
		if math.IsNaN(v) {
			return nil
		}
		return v
	}
	i := 0
	n, err := tx.CopyFrom(ctx, t, []string{"tenant_id", "device_id", "timestamp", "rul_hours", "health_status", "model_version", "rul_lower", "rul_upper", "interval_level"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == len(ss) {
				return nil, nil
			}
			s := &ss[i]
			i++
			return []any{s.Tenant, s.Device, dataset.TimeOf(s.Time), s.RUL, s.Health.String(), s.ModelVersion, opt(s.Lower), opt(s.Upper), opt(s.Level)}, nil
		}))
	if err != nil {
		return 0, fmt.Errorf("score --to-db: write %s: %w", c.PredictionTable, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("score --to-db: %w", err)
	}
	return n, nil
}
