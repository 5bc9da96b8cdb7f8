package score

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/modax/modax-ml/internal/pg"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/internal/testutil"
)

// TestPostgres scores the fleet from PostgreSQL and from TimescaleDB
// (hypertables over several chunks): the same scores as from the files, the
// batch query an index scan of the sensor table (EXPLAIN: never a sequential
// scan of the table or of a chunk), and --to-db idempotent.
func TestPostgres(t *testing.T) {
	testutil.EachDatabase(t, func(t *testing.T, db testutil.Database) { //nolint:thelper // a subtest body run by testutil.EachDatabase
		ctx := context.Background()
		pool, c, ckpt, readings, failures := loadFleet(t, db)
		if db.TimescaleDB {
			var chunks int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'sensor_data'`).Scan(&chunks); err != nil {
				t.Fatal(err)
			}
			if chunks < 5 {
				t.Fatalf("sensor_data has %d chunks, want several", chunks)
			}
		}

		at := t0.Add(100 * time.Hour)
		file := DefaultOptions()
		file.Readings, file.Failures, file.Model, file.At = readings, failures, ckpt, at.Format(time.RFC3339)
		file.DB.Tenant = "t"
		want, err := Run(ctx, env(at), file)
		if err != nil {
			t.Fatal(err)
		}
		o := file
		o.Source, o.DB, o.BatchDevices, o.ToDB = SourcePostgres, c, 3, true
		got, err := Run(ctx, env(at), o)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Scored) != len(want.Scored) || len(got.Scored) == 0 || len(got.Unscored) != len(want.Unscored) {
			t.Fatalf("postgres scored %d, refused %v; the files scored %d, refused %v", len(got.Scored), got.Unscored, len(want.Scored), want.Unscored)
		}
		for i, s := range got.Scored {
			w := want.Scored[i]
			if s.Device != w.Device || !s.LastReading.Equal(w.LastReading) || math.Abs(s.RUL-w.RUL) > 1e-9 {
				t.Errorf("postgres %s %s %.9f, files %s %s %.9f", s.Device, s.LastReading, s.RUL, w.Device, w.LastReading, w.RUL)
			}
		}
		for i, u := range got.Unscored {
			if u.Device != want.Unscored[i].Device || u.Reason != want.Unscored[i].Reason {
				t.Errorf("postgres refused %s (%s), files %s (%s)", u.Device, u.Reason, want.Unscored[i].Device, want.Unscored[i].Reason)
			}
		}
		// --to-db again: the same rows, replaced, not added.
		if _, err := Run(ctx, env(at), o); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM rul_predictions WHERE tenant_id = 't' AND rul_lower IS NULL AND interval_level IS NULL`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != len(got.Scored) {
			t.Errorf("rul_predictions holds %d rows after scoring twice, want %d", n, len(got.Scored))
		}
		// Unknown devices and tenants.
		o.ToDB, o.Devices = false, []string{"dev-0", "nope"}
		res, err := Run(ctx, env(at), o)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Unscored) != 1 || res.Unscored[0].Reason != ReasonUnknownDevice {
			t.Errorf("unscored %+v, want nope unknown", res.Unscored)
		}
		o.Devices, o.DB.Tenant = nil, "acme"
		if _, err := Run(ctx, env(at), o); !errors.Is(err, ErrNoneScored) {
			t.Errorf("unknown tenant: %v", err)
		}

		// The batch query's plan: index scans of the sensor table.
		src := &pgSource{s: &settings{Options: file}, cols: []string{"a", "b", "c", "op"}}
		src.s.DB = c
		src.sensor, _ = pg.Table(c.SensorTable)
		src.fail, _ = pg.Table(c.FailureTable)
		var plan []byte
		if err := pool.QueryRow(ctx, `EXPLAIN (FORMAT JSON) `+src.batchQuery(), "other", []string{"o-1", "o-2", "o-3"}, at, 16).Scan(&plan); err != nil {
			t.Fatal(err)
		}
		var nodes []any
		if err := json.Unmarshal(plan, &nodes); err != nil {
			t.Fatal(err)
		}
		index, seq := 0, 0
		var walk func(v any)
		walk = func(v any) {
			switch x := v.(type) {
			case map[string]any:
				rel, _ := x["Relation Name"].(string)
				if rel == "sensor_data" || strings.HasPrefix(rel, "_hyper_") {
					switch x["Node Type"] {
					case "Seq Scan":
						seq++
					case "Index Scan", "Index Only Scan":
						index++
					}
				}
				for _, c := range x {
					walk(c)
				}
			case []any:
				for _, c := range x {
					walk(c)
				}
			}
		}
		walk(nodes)
		if seq > 0 || index == 0 {
			t.Errorf("the batch query scans sensor_data with %d sequential and %d index scans:\n%s", seq, index, plan)
		}
	})
}

// loadFleet migrates db, loads the test fleet (readings and failures of
// tenant t) and another tenant's 200 devices over 60 days, and returns the
// pool, the db config (tenant t) and the files the fleet came from with a
// checkpoint for it.
func loadFleet(t *testing.T, db testutil.Database) (pool *pgxpool.Pool, c pg.Config, ckpt, readings, failures string) {
	t.Helper()
	ctx := context.Background()
	ckpt, _, readings, failures = pipeline(t, t.TempDir())
	c = pg.DefaultConfig()
	c.DSN, c.Tenant, c.Sensors = db.DSN, "t", []string{"a", "b", "c", "op"}
	pool, err := pg.Connect(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pg.Migrate(ctx, pool, c, pg.TimescaleAuto, runenv.Test().Log); err != nil {
		t.Fatal(err)
	}
	if _, err := pg.LoadReadings(ctx, pool, c, readings, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := pg.LoadFailures(ctx, pool, c, failures); err != nil {
		t.Fatal(err)
	}
	// Another tenant's 200 devices over 60 days: a table the planner
	// would rather not read whole, and several chunks on TimescaleDB.
	if _, err := pool.Exec(ctx, `INSERT INTO sensor_data (tenant_id, device_id, "timestamp", a, b, c, op)
SELECT 'other', 'o-' || d, $1::timestamptz - make_interval(hours => 6 * i), i, d, 1, 0
FROM generate_series(1, 200) d, generate_series(0, 240) i`, t0.Add(100*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	return pool, c, ckpt, readings, failures
}
