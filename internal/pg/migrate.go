package pg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Key columns of the sensor table; the other columns are sensors.
const (
	ColTenant    = "tenant_id"
	ColDevice    = "device_id"
	ColTimestamp = "timestamp"
)

// Querier is what the helpers need of a connection, pool or transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Table parses a table name from the config ("sensor_data" or
// "schema.sensor_data") into an identifier; Sanitize quotes it for SQL.
func Table(name string) (pgx.Identifier, error) {
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return nil, fmt.Errorf("table name %q: want table or schema.table", name)
	}
	for _, p := range parts {
		if p == "" || strings.ContainsRune(p, 0) {
			return nil, fmt.Errorf("table name %q: empty or invalid part", name)
		}
	}
	return pgx.Identifier(parts), nil
}

// Quote quotes a column name.
func Quote(col string) string { return pgx.Identifier{col}.Sanitize() }

// Check validates the table names and sensor columns of c.
func (c Config) Check() error {
	for _, t := range []struct{ key, name string }{
		{"db.sensor_table", c.SensorTable}, {"db.failure_table", c.FailureTable}, {"db.prediction_table", c.PredictionTable},
		{"db.monitor_table", c.MonitorTableName()},
	} {
		if _, err := Table(t.name); err != nil {
			return fmt.Errorf("%s: %w", t.key, err)
		}
	}
	return CheckSensors(c.Sensors)
}

// CheckSensors refuses an empty sensor list, empty or duplicate names and
// names of key columns.
func CheckSensors(sensors []string) error {
	if len(sensors) == 0 {
		return errors.New("db.sensors: no sensor columns configured")
	}
	seen := map[string]bool{ColTenant: true, ColDevice: true, ColTimestamp: true}
	for _, s := range sensors {
		if s == "" || strings.ContainsRune(s, 0) {
			return fmt.Errorf("db.sensors: invalid column name %q", s)
		}
		if seen[s] {
			return fmt.Errorf("db.sensors: column %q given twice or is a key column", s)
		}
		seen[s] = true
	}
	return nil
}

// Timescale modes of Migrate.
const (
	TimescaleAuto = "auto" // hypertables when the extension is available
	TimescaleOn   = "on"   // require TimescaleDB
	TimescaleOff  = "off"  // plain tables
)

// MigrateResult reports what Migrate did.
type MigrateResult struct {
	Tables       []string `json:"tables"`
	Hypertables  []string `json:"hypertables"`
	TimescaleDB  string   `json:"timescaledb_version,omitempty"`
	AddedColumns []string `json:"added_columns,omitempty"`
}

// Migrate creates the sensor, failure and prediction tables of c if they do
// not exist, and adds sensor columns configured since. It is idempotent and
// runs in one transaction. With TimescaleDB available (mode auto or on) the
// sensor and prediction tables become hypertables partitioned on time;
// otherwise they are plain tables with the same columns and indexes.
//
// Device ids use the "C" collation, so that ORDER BY device_id is byte order
// (the order of the files modax-ml writes) and served by the primary key.
func Migrate(ctx context.Context, db interface {
	Begin(context.Context) (pgx.Tx, error)
}, c Config, mode string, log *slog.Logger) (*MigrateResult, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	switch mode {
	case "", TimescaleAuto, TimescaleOn, TimescaleOff:
	default:
		return nil, fmt.Errorf("timescaledb mode %q: want auto, on or off", mode)
	}
	sensorT, _ := Table(c.SensorTable)
	failT, _ := Table(c.FailureTable)
	predT, _ := Table(c.PredictionTable)
	monT, _ := Table(c.MonitorTableName())

	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit

	res := &MigrateResult{}
	ts, err := timescale(ctx, tx, mode, log)
	if err != nil {
		return nil, err
	}
	res.TimescaleDB = ts

	existing, err := tableColumns(ctx, tx, sensorT)
	if err != nil {
		return nil, err
	}
	var cols strings.Builder
	for _, s := range c.Sensors {
		fmt.Fprintf(&cols, "\n  %s DOUBLE PRECISION,", Quote(s))
	}
	stmts := []string{
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  tenant_id TEXT NOT NULL,
  device_id TEXT COLLATE "C" NOT NULL,
  "timestamp" TIMESTAMPTZ NOT NULL,%s
  PRIMARY KEY (tenant_id, device_id, "timestamp")
)`, sensorT.Sanitize(), cols.String()),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  device_id TEXT COLLATE "C" NOT NULL,
  event_time TIMESTAMPTZ NOT NULL,
  event_type TEXT NOT NULL DEFAULT 'failure',
  component_failed TEXT,
  operating_hours_at_failure DOUBLE PRECISION
)`, failT.Sanitize()),
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (tenant_id, device_id, event_time)`,
			Quote(indexName(failT, "tenant_device_time_idx")), failT.Sanitize()),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  tenant_id TEXT NOT NULL,
  device_id TEXT COLLATE "C" NOT NULL,
  "timestamp" TIMESTAMPTZ NOT NULL,
  rul_hours DOUBLE PRECISION NOT NULL,
  rul_lower DOUBLE PRECISION,
  rul_upper DOUBLE PRECISION,
  interval_level DOUBLE PRECISION,
  health_status TEXT NOT NULL,
  model_version TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`, predT.Sanitize()),
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (tenant_id, device_id, "timestamp")`,
			Quote(indexName(predT, "tenant_device_time_idx")), predT.Sanitize()),
	}
	// The interval of a score (score --to-db; NULL for a bare prediction).
	for _, col := range []string{"rul_lower", "rul_upper", "interval_level"} {
		stmts = append(stmts, fmt.Sprintf(`ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s DOUBLE PRECISION`, predT.Sanitize(), Quote(col)))
	}
	// monitor --to-db: one row per check, what a dashboard plots over time.
	stmts = append(stmts, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  tenant_id TEXT NOT NULL,
  run_id TEXT NOT NULL,
  checked_at TIMESTAMPTZ NOT NULL,
  model_version TEXT NOT NULL,
  predictions INTEGER NOT NULL,
  outcomes INTEGER NOT NULL,
  pending INTEGER NOT NULL,
  realized_mae DOUBLE PRECISION,
  realized_rmse DOUBLE PRECISION,
  score_mean DOUBLE PRECISION,
  late_rate DOUBLE PRECISION,
  degradation DOUBLE PRECISION,
  max_psi DOUBLE PRECISION,
  interval_level DOUBLE PRECISION,
  coverage DOUBLE PRECISION,
  interval_width DOUBLE PRECISION,
  decision TEXT NOT NULL,
  reasons TEXT[] NOT NULL,
  report JSONB NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, run_id)
)`, monT.Sanitize()),
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (tenant_id, checked_at)`, Quote(indexName(monT, "tenant_time_idx")), monT.Sanitize()))
	for _, s := range c.Sensors {
		stmts = append(stmts, fmt.Sprintf(`ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s DOUBLE PRECISION`, sensorT.Sanitize(), Quote(s)))
		if existing != nil && existing[s] == "" {
			res.AddedColumns = append(res.AddedColumns, s)
		}
	}
	for _, q := range stmts {
		if _, err := tx.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
	}
	res.Tables = []string{c.SensorTable, c.FailureTable, c.PredictionTable, c.MonitorTableName()}
	if ts != "" {
		for _, t := range []pgx.Identifier{sensorT, predT} {
			// The legacy signature works on every TimescaleDB 2.x.
			if _, err := tx.Exec(ctx, `SELECT create_hypertable($1::regclass, 'timestamp'::name, if_not_exists => TRUE, migrate_data => TRUE)`, t.Sanitize()); err != nil {
				return nil, fmt.Errorf("migrate: hypertable %s: %w", t.Sanitize(), err)
			}
		}
		res.Hypertables = []string{c.SensorTable, c.PredictionTable}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return res, nil
}

// indexName derives an index name from a table name (PostgreSQL creates it in
// the table's schema).
func indexName(t pgx.Identifier, suffix string) string {
	return t[len(t)-1] + "_" + suffix
}

// timescale returns the TimescaleDB version to use ("" for plain tables),
// creating the extension when it is available but not installed.
func timescale(ctx context.Context, tx pgx.Tx, mode string, log *slog.Logger) (string, error) {
	if mode == TimescaleOff {
		return "", nil
	}
	var installed, preload *string
	var available bool
	// pg_settings hides shared_preload_libraries from roles that may not read
	// it (preload stays NULL: unknown).
	err := tx.QueryRow(ctx, `SELECT (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'),
  EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'),
  (SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries')`).Scan(&installed, &available, &preload)
	if err != nil {
		return "", fmt.Errorf("migrate: look for TimescaleDB: %w", err)
	}
	notPreloaded := preload != nil && !preloads(*preload, "timescaledb")
	if installed != nil {
		if notPreloaded {
			// Any use of the extension would make the server end the session
			// (FATAL: extension "timescaledb" must be preloaded).
			return "", fmt.Errorf("migrate: the database has the timescaledb extension %s, but the server does not preload it: add timescaledb to shared_preload_libraries in postgresql.conf and restart the server", *installed)
		}
		return *installed, nil
	}
	if !available {
		if mode == TimescaleOn {
			return "", errors.New("migrate: --timescaledb on, but the server has no timescaledb extension (pg_available_extensions)")
		}
		log.Info("TimescaleDB is not available: creating plain tables")
		return "", nil
	}
	if notPreloaded {
		// CREATE EXTENSION would not fail but end the session (FATAL).
		if mode == TimescaleOn {
			return "", errors.New("migrate: --timescaledb on, but the server does not preload TimescaleDB: add timescaledb to shared_preload_libraries in postgresql.conf and restart the server")
		}
		log.Warn("TimescaleDB is installed but the server does not preload it (shared_preload_libraries): creating plain tables")
		return "", nil
	}
	// CREATE EXTENSION fails without privileges:
	// in auto mode fall back to plain tables (a savepoint keeps the
	// transaction usable).
	sp, err := tx.Begin(ctx)
	if err != nil {
		return "", fmt.Errorf("migrate: %w", err)
	}
	var version string
	if _, err = sp.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS timescaledb`); err == nil {
		err = sp.QueryRow(ctx, `SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'`).Scan(&version)
	}
	if err != nil {
		_ = sp.Rollback(ctx)
		if mode == TimescaleOn {
			return "", fmt.Errorf("migrate: create extension timescaledb: %w", err)
		}
		log.Warn("TimescaleDB is available but could not be enabled: creating plain tables", "error", err.Error())
		return "", nil
	}
	if err := sp.Commit(ctx); err != nil {
		return "", fmt.Errorf("migrate: %w", err)
	}
	log.Info("TimescaleDB enabled", "version", version)
	return version, nil
}

// preloads reports whether a shared_preload_libraries value lists lib (as a
// name or a path such as $libdir/timescaledb).
func preloads(setting, lib string) bool {
	for _, item := range strings.Split(setting, ",") {
		item = strings.Trim(strings.TrimSpace(item), `"`)
		item = item[strings.LastIndexByte(item, '/')+1:]
		if strings.TrimSuffix(item, ".so") == lib {
			return true
		}
	}
	return false
}

// TableExists reports whether table t exists (on the search path when it is
// not schema-qualified).
func TableExists(ctx context.Context, q Querier, t pgx.Identifier) (bool, error) {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, t.Sanitize()).Scan(&exists); err != nil {
		return false, fmt.Errorf("look up table %s: %w", t.Sanitize(), err)
	}
	return exists, nil
}

// tableColumns returns the columns of table t with their types, or nil when
// the table does not exist.
func tableColumns(ctx context.Context, q Querier, t pgx.Identifier) (map[string]string, error) {
	if exists, err := TableExists(ctx, q, t); err != nil || !exists {
		return nil, err
	}
	rows, err := q.Query(ctx, `SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, t.Sanitize())
	if err != nil {
		return nil, fmt.Errorf("look up columns of %s: %w", t.Sanitize(), err)
	}
	out := map[string]string{}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			rows.Close()
			return nil, err
		}
		out[name] = typ
	}
	return out, rows.Err()
}

// TableColumns returns the columns of the named table with their SQL types;
// an error says so when the table does not exist.
func TableColumns(ctx context.Context, q Querier, name string) (map[string]string, error) {
	t, err := Table(name)
	if err != nil {
		return nil, err
	}
	cols, err := tableColumns(ctx, q, t)
	if err != nil {
		return nil, err
	}
	if cols == nil {
		return nil, fmt.Errorf("table %s does not exist (run `modax-ml db migrate` first)", t.Sanitize())
	}
	return cols, nil
}
