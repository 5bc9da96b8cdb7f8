package pg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/testutil"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func testPool(t *testing.T, dsn string) (Config, *pgxpool.Pool) {
	t.Helper()
	c := DefaultConfig()
	c.DSN = dsn
	pool, err := Connect(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return c, pool
}

func TestMigrate(t *testing.T) {
	testutil.EachDatabase(t, testMigrate)
}

func testMigrate(t *testing.T, db testutil.Database) { //nolint:thelper // a subtest body run by testutil.EachDatabase
	ctx := context.Background()
	c, pool := testPool(t, db.DSN)
	res, err := Migrate(ctx, pool, c, TimescaleAuto, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	if db.TimescaleDB {
		if len(res.Tables) != 4 || res.TimescaleDB == "" || fmt.Sprint(res.Hypertables) != fmt.Sprint([]string{c.SensorTable, c.PredictionTable}) {
			t.Fatalf("result %+v, want hypertables on TimescaleDB", res)
		}
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name IN ('sensor_data', 'rul_predictions')`).Scan(&n); err != nil || n != 2 {
			t.Fatalf("%d hypertables (%v), want 2", n, err)
		}
	} else if len(res.Tables) != 4 || len(res.Hypertables) != 0 || res.TimescaleDB != "" || len(res.AddedColumns) != 0 {
		t.Fatalf("result %+v (this server has no TimescaleDB)", res)
	}
	cols, err := TableColumns(ctx, pool, c.SensorTable)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"tenant_id": "text", "device_id": "text", "timestamp": "timestamp with time zone"}
	for _, s := range DefaultSensors {
		want[s] = "double precision"
	}
	if fmt.Sprint(cols) != fmt.Sprint(want) {
		t.Fatalf("columns %v, want %v", cols, want)
	}
	var coll string
	if err := pool.QueryRow(ctx, `SELECT collation_name FROM information_schema.columns WHERE table_name = 'sensor_data' AND column_name = 'device_id'`).Scan(&coll); err != nil || coll != "C" {
		t.Fatalf("device_id collation %q (%v), want C", coll, err)
	}
	for _, tbl := range []string{c.FailureTable, c.PredictionTable, c.MonitorTableName()} {
		if _, err := TableColumns(ctx, pool, tbl); err != nil {
			t.Fatal(err)
		}
	}
	// Idempotent; a new sensor is added as a column.
	c.Sensors = append(c.Sensors, "pressure_mean")
	res, err = Migrate(ctx, pool, c, TimescaleAuto, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.AddedColumns) != 1 || res.AddedColumns[0] != "pressure_mean" {
		t.Fatalf("added %v", res.AddedColumns)
	}
	if _, err := Migrate(ctx, pool, c, TimescaleOff, quietLog); err != nil {
		t.Fatal(err)
	}
	if db.TimescaleDB {
		if res, err := Migrate(ctx, pool, c, TimescaleOn, quietLog); err != nil || len(res.Hypertables) != 2 {
			t.Fatalf("timescaledb on, again: %+v %v", res, err)
		}
	} else if _, err := Migrate(ctx, pool, c, TimescaleOn, quietLog); err == nil ||
		!strings.Contains(err.Error(), "no timescaledb extension") && !strings.Contains(err.Error(), "does not preload TimescaleDB") {
		t.Fatalf("timescaledb on without the extension: %v", err)
	}
	// Quoted identifiers: odd table and column names work and inject nothing.
	odd := c
	odd.SensorTable = `weird "table"; DROP TABLE sensor_data; --`
	odd.Sensors = []string{`temp "°C"`, "Vib X"}
	if _, err := Migrate(ctx, pool, odd, TimescaleOff, quietLog); err != nil {
		t.Fatal(err)
	}
	if cols, err := TableColumns(ctx, pool, odd.SensorTable); err != nil || cols[`temp "°C"`] == "" {
		t.Fatalf("odd table columns %v, %v", cols, err)
	}
	if _, err := TableColumns(ctx, pool, c.SensorTable); err != nil {
		t.Fatal(err)
	}
}

func TestConfigCheck(t *testing.T) {
	for _, mod := range []func(*Config){
		func(c *Config) { c.Sensors = nil },
		func(c *Config) { c.Sensors = []string{"a", "a"} },
		func(c *Config) { c.Sensors = []string{"timestamp"} },
		func(c *Config) { c.Sensors = []string{""} },
		func(c *Config) { c.SensorTable = "a.b.c" },
		func(c *Config) { c.FailureTable = "" },
		func(c *Config) { c.PredictionTable = "s." },
	} {
		c := DefaultConfig()
		mod(&c)
		if err := c.Check(); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
	if id, err := Table("ops.sensor_data"); err != nil || id.Sanitize() != `"ops"."sensor_data"` {
		t.Fatalf("schema-qualified table: %v %v", id, err)
	}
}

func writeReadings(t *testing.T, dir string, sensors []string, frames ...*dataset.Frame) string {
	t.Helper()
	loc := filepath.Join(dir, "r.parquet")
	w, err := dataset.CreateFrames(loc, sensors, false, dataset.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		if err := w.Append(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestMigrateNotPreloaded: a server with TimescaleDB's files but without
// shared_preload_libraries=timescaledb (CREATE EXTENSION would end the
// session): auto falls back to plain tables with a warning, on is refused
// saying how to enable it, and the connection stays usable.
func TestMigrateNotPreloaded(t *testing.T) {
	ctx := context.Background()
	c, pool := testPool(t, testutil.NewDatabase(t))
	var available bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')`).Scan(&available); err != nil {
		t.Fatal(err)
	}
	testutil.RequireHint(t, available, "TimescaleDB's extension files on the plain test server",
		"`make test` builds them from ../shared/vendor/timescaledb when that is beside the repository")
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	if _, err := Migrate(ctx, pool, c, TimescaleOn, log); err == nil || !strings.Contains(err.Error(), "does not preload TimescaleDB: add timescaledb to shared_preload_libraries") {
		t.Fatalf("timescaledb on, not preloaded: %v", err)
	}
	res, err := Migrate(ctx, pool, c, TimescaleAuto, log)
	if err != nil {
		t.Fatalf("timescaledb auto, not preloaded: %v", err)
	}
	if len(res.Tables) != 4 || len(res.Hypertables) != 0 || res.TimescaleDB != "" {
		t.Fatalf("result %+v, want plain tables", res)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "does not preload it (shared_preload_libraries): creating plain tables") {
		t.Fatalf("no warning in %q", logs.String())
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM sensor_data`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("table after fallback: %d %v", n, err)
	}
}

func TestPreloads(t *testing.T) {
	for setting, want := range map[string]bool{
		"": false, "timescaledb": true, "pg_stat_statements, timescaledb": true, `"$libdir/timescaledb"`: true,
		"timescaledb.so": true, "timescaledb_toolkit": false, "pg_stat_statements": false,
	} {
		if got := preloads(setting, "timescaledb"); got != want {
			t.Errorf("preloads(%q) = %v", setting, got)
		}
	}
}

func TestLoad(t *testing.T) {
	testutil.EachDatabase(t, testLoad)
}

func testLoad(t *testing.T, db testutil.Database) { //nolint:thelper // a subtest body run by testutil.EachDatabase
	ctx := context.Background()
	c, pool := testPool(t, db.DSN)
	dir := t.TempDir()
	f := dataset.NewFrame("acme", "d1", 2, false)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	for i := range 3 {
		f.Time = append(f.Time, t0+int64(i)*1e6)
		f.Sensors[0] = append(f.Sensors[0], float64(i))
		f.Sensors[1] = append(f.Sensors[1], math.NaN())
	}
	loc := writeReadings(t, dir, []string{"current_mean", "temperature_mean"}, f)

	if _, err := LoadReadings(ctx, pool, c, loc, nil); err == nil || !strings.Contains(err.Error(), "does not exist (run `modax-ml db migrate` first)") {
		t.Fatalf("load before migrate: %v", err)
	}
	if _, err := Migrate(ctx, pool, c, TimescaleAuto, quietLog); err != nil {
		t.Fatal(err)
	}
	res, err := LoadReadings(ctx, pool, c, loc, nil)
	if err != nil || res.Rows != 3 {
		t.Fatalf("load: %+v %v", res, err)
	}
	var n int
	var nulls int
	if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE temperature_mean IS NULL) FROM sensor_data WHERE tenant_id = 'acme'`).Scan(&n, &nulls); err != nil || n != 3 || nulls != 3 {
		t.Fatalf("%d rows, %d nulls (%v)", n, nulls, err)
	}
	// Loading the same rows again is refused and loads nothing.
	if _, err := LoadReadings(ctx, pool, c, loc, nil); err == nil || !strings.Contains(err.Error(), "rows already in the table") || !strings.Contains(err.Error(), "nothing was loaded") {
		t.Fatalf("second load: %v", err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM sensor_data`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("%d rows after the refused load", n)
	}
	// A sensor the table lacks.
	loc2 := writeReadings(t, t.TempDir(), []string{"current_mean", "oil_pressure"}, f)
	if _, err := LoadReadings(ctx, pool, c, loc2, nil); err == nil || !strings.Contains(err.Error(), "no column for sensor(s) oil_pressure") {
		t.Fatalf("missing sensor column: %v", err)
	}
	// Failures, with nulls.
	floc := filepath.Join(dir, "f.parquet")
	fs := []dataset.Failure{
		{Tenant: "acme", Device: "d1", Time: t0 + 5e6, EventType: "failure", Component: "bearing", OpHours: 12.5},
		{Tenant: "acme", Device: "d1", Time: t0 + 9e6, EventType: "failure", OpHours: math.NaN()},
	}
	if err := dataset.WriteFailures(floc, fs, dataset.Meta{}); err != nil {
		t.Fatal(err)
	}
	fr, err := LoadFailures(ctx, pool, c, floc)
	if err != nil || fr.Rows != 2 {
		t.Fatalf("load failures: %+v %v", fr, err)
	}
	var comp *string
	var hours *float64
	if err := pool.QueryRow(ctx, `SELECT component_failed, operating_hours_at_failure FROM failure_events ORDER BY event_time DESC LIMIT 1`).Scan(&comp, &hours); err != nil || comp != nil || hours != nil {
		t.Fatalf("nulls not loaded as NULL: %v %v %v", comp, hours, err)
	}
	// Not a readings file.
	if _, err := LoadReadings(ctx, pool, c, floc, nil); err == nil || !strings.Contains(err.Error(), "want modax.readings/v1") {
		t.Fatalf("failures file as readings: %v", err)
	}
}

// freePort returns a local TCP port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestConnectErrors(t *testing.T) {
	ctx := context.Background()
	dsn := testutil.PostgresDSN(t)
	pc, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dsn, want string
	}{
		{"server down", fmt.Sprintf("postgres://modax:hunter2@127.0.0.1:%d/modax?connect_timeout=5", freePort(t)), "connection refused: is the database server running"},
		{"unknown database", strings.Replace(dsn, "/"+pc.Database+"?", "/no_such_db?", 1), `database "no_such_db" does not exist`},
		{"bad DSN", "postgres://modax:hunter2@localhost:notaport/db", "invalid database DSN"},
		{"bad key", "host=localhost password=hunter2 sslmode=maybe", "invalid database DSN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.DSN = tc.dsn
			_, err := Connect(ctx, c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("password in %q", err)
			}
		})
	}
	// An interrupted connection attempt keeps context.Canceled for exit code 130.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	c := DefaultConfig()
	c.DSN = dsn
	if _, err := Connect(cctx, c); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled connect: %v", err)
	}
}

func TestConnectFromEnvironment(t *testing.T) {
	ctx := context.Background()
	dsn := testutil.PostgresDSN(t)
	pc, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	// MODAX_DB_DSN when the config has none.
	t.Setenv(EnvDSN, dsn)
	pool, err := Connect(ctx, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	pool.Close()
	// libpq's PG* variables when neither is set.
	t.Setenv(EnvDSN, "")
	t.Setenv("PGHOST", pc.Host)
	t.Setenv("PGPORT", fmt.Sprint(pc.Port))
	t.Setenv("PGUSER", pc.User)
	t.Setenv("PGDATABASE", pc.Database)
	t.Setenv("PGSSLMODE", "disable")
	pool, err = Connect(ctx, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var tz string
	if err := pool.QueryRow(ctx, "SHOW timezone").Scan(&tz); err != nil || tz != "UTC" {
		t.Fatalf("session time zone %q (%v)", tz, err)
	}
	pool.Close()
}

// startPasswordServer starts a PostgreSQL server that requires a password
// (scram-sha-256), on a free port, and returns its port. It needs the server
// binaries of `make test` (MODAX_TEST_PG_BIN).
func startPasswordServer(t *testing.T, password string) int {
	t.Helper()
	bin := os.Getenv("MODAX_TEST_PG_BIN")
	testutil.Require(t, bin != "", "PostgreSQL server binaries (MODAX_TEST_PG_BIN)")
	dir, err := os.MkdirTemp("", "modax-pgpw-")
	if err != nil {
		t.Fatal(err)
	}
	root := os.Getuid() == 0
	run := func(args ...string) {
		t.Helper()
		var cmd *exec.Cmd
		if root {
			q := make([]string, len(args))
			for i, a := range args {
				q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
			}
			cmd = exec.Command("su", "postgres", "-s", "/bin/sh", "-c", strings.Join(q, " "))
		} else {
			cmd = exec.Command(args[0], args[1:]...)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if root {
		if out, err := exec.Command("chown", "-R", "postgres:postgres", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v %s", err, out)
		}
	}
	port := freePort(t)
	run(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"), "-U", "postgres", "--auth=scram-sha-256", "--pwfile="+filepath.Join(dir, "pw"), "--no-sync")
	run(filepath.Join(bin, "pg_ctl"), "-D", filepath.Join(dir, "data"), "-l", filepath.Join(dir, "log"), "-w", "-t", "60",
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", port, dir), "start")
	t.Cleanup(func() {
		run(filepath.Join(bin, "pg_ctl"), "-D", filepath.Join(dir, "data"), "-m", "immediate", "stop")
		os.RemoveAll(dir)
	})
	return port
}

func TestConnectPassword(t *testing.T) {
	ctx := context.Background()
	port := startPasswordServer(t, "s3cret-pw")
	c := DefaultConfig()
	c.DSN = fmt.Sprintf("postgres://postgres:wrong-pw-42@127.0.0.1:%d/postgres?sslmode=disable", port)
	_, err := Connect(ctx, c)
	var ce *ConnectError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "password authentication failed") {
		t.Fatalf("wrong password: %v", err)
	}
	if strings.Contains(err.Error(), "wrong-pw-42") || !strings.Contains(err.Error(), fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres", port)) {
		t.Fatalf("message %q leaks the password or lacks the target", err)
	}
	// The same in key=value form and through PGPASSWORD.
	c.DSN = fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable", port)
	t.Setenv("PGPASSWORD", "wrong-pw-43")
	if _, err := Connect(ctx, c); err == nil || strings.Contains(err.Error(), "wrong-pw-43") || !strings.Contains(err.Error(), "password authentication failed") {
		t.Fatalf("wrong PGPASSWORD: %v", err)
	}
	t.Setenv("PGPASSWORD", "s3cret-pw")
	pool, err := Connect(ctx, c)
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	pool.Close()
}
