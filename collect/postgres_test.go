package collect

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/pg"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/internal/testutil"
)

const injection = "x'; DROP TABLE sensor_data; --"

// fleetDB is a test database holding two tenants' fleets, loaded with
// db migrate + db load from Parquet files written by collect.
type fleetDB struct {
	cfg      pg.Config
	pool     *pgxpool.Pool
	frames   []*dataset.Frame // tenant acme
	failures []dataset.Failure
}

func newFleetDB(t *testing.T, dsn string) *fleetDB {
	t.Helper()
	ctx := context.Background()
	cfg := pg.DefaultConfig()
	cfg.DSN = dsn
	pool, err := pg.Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	env := runenv.Test()
	if _, err := pg.Migrate(ctx, pool, cfg, pg.TimescaleAuto, env.Log); err != nil {
		t.Fatal(err)
	}
	db := &fleetDB{cfg: cfg, pool: pool}
	// Two tenants with the same device ids: only tenant scoping keeps them apart.
	for _, tenant := range []string{"acme", "other", injection} {
		dir := t.TempDir()
		opts := testOptions(dir)
		opts.DB.Tenant = tenant
		opts.Synthetic.Days = 20
		opts.Synthetic.MissingRate = 0.01
		if tenant == "other" {
			opts.Synthetic.Seed = 7
		}
		if tenant == injection {
			opts.Synthetic.Devices, opts.Synthetic.Days = 1, 1
		}
		if _, err := Run(ctx, env, opts); err != nil {
			t.Fatal(err)
		}
		if _, err := pg.LoadReadings(ctx, pool, cfg, opts.Out, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := pg.LoadFailures(ctx, pool, cfg, opts.FailuresOut); err != nil {
			t.Fatal(err)
		}
		if tenant == "acme" {
			so := opts.Synthetic
			so.Tenant = tenant
			if db.frames, db.failures, err = Synthetic(ctx, so); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A device whose id is an injection attempt, for tenant acme.
	if _, err := pool.Exec(ctx, `INSERT INTO sensor_data (tenant_id, device_id, "timestamp", current_mean) VALUES ('acme', $1, '2024-01-02T00:00:00Z', 1.5)`, injection); err != nil {
		t.Fatal(err)
	}
	return db
}

func (db *fleetDB) options(t *testing.T) Options {
	t.Helper()
	opts := testOptions(t.TempDir())
	opts.Source = SourcePostgres
	opts.DB = db.cfg
	opts.DB.Tenant = "acme"
	return opts
}

// TestPostgresCollect runs on plain PostgreSQL and on TimescaleDB, where db
// migrate made sensor_data a hypertable and the 20 days span several chunks.
func TestPostgresCollect(t *testing.T) {
	testutil.EachDatabase(t, testPostgresCollect)
}

func testPostgresCollect(t *testing.T, tdb testutil.Database) { //nolint:thelper // a subtest body run by testutil.EachDatabase
	db := newFleetDB(t, tdb.DSN)
	ctx := context.Background()
	if tdb.TimescaleDB {
		var chunks int
		if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM show_chunks('sensor_data')`).Scan(&chunks); err != nil || chunks < 3 {
			t.Fatalf("sensor_data has %d chunks (%v), want several", chunks, err)
		}
	}
	for _, method := range []string{MethodQuery, MethodCopy} {
		t.Run(method, func(t *testing.T) {
			opts := db.options(t)
			opts.Postgres.Method = method
			opts.Postgres.BatchRows = 1000 // many batches
			opts.Devices = deviceIDs(4)
			res, err := Run(ctx, runenv.Test(), opts)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := readFrames(t, opts.Out)
			compareFrames(t, got, db.frames) // every value, acme only
			gf, _, _ := dataset.ReadFailures(ctx, opts.FailuresOut)
			compareFailures(t, gf, db.failures)
			if res.Devices != 4 || !equalStrings(res.Tenants, []string{"acme"}) {
				t.Fatalf("result %+v", res)
			}
		})
	}

	t.Run("all devices", func(t *testing.T) {
		opts := db.options(t)
		if _, err := Run(ctx, runenv.Test(), opts); err != nil {
			t.Fatal(err)
		}
		got, _ := readFrames(t, opts.Out)
		// dev-001..dev-004 and the injection device, all of tenant acme.
		if len(got) != 5 || got[4].Device != injection || got[4].Tenant != "acme" || got[4].Sensors[0][0] != 1.5 {
			t.Fatalf("%d devices, last %q", len(got), got[len(got)-1].Device)
		}
		compareFrames(t, got[:4], db.frames)
	})

	t.Run("device filter and inclusive time range", func(t *testing.T) {
		for _, method := range []string{MethodQuery, MethodCopy} {
			opts := db.options(t)
			opts.Postgres.Method = method
			f := db.frames[2]
			from, to := f.Time[10], f.Time[500]
			opts.Devices = []string{f.Device, db.frames[0].Device}
			opts.From = dataset.TimeOf(from).Format(time.RFC3339Nano)
			opts.To = dataset.TimeOf(to).Format(time.RFC3339Nano)
			if _, err := Run(ctx, runenv.Test(), opts); err != nil {
				t.Fatal(err)
			}
			got, _ := readFrames(t, opts.Out)
			var want []*dataset.Frame
			var wantF []dataset.Failure
			for _, d := range []*dataset.Frame{db.frames[0], f} {
				w := *d
				lo, hi := 0, d.Len()
				for lo < hi && d.Time[lo] < from {
					lo++
				}
				for hi > lo && d.Time[hi-1] > to {
					hi--
				}
				w.Time = d.Time[lo:hi]
				w.Sensors = make([][]float64, len(d.Sensors))
				for s := range d.Sensors {
					w.Sensors[s] = d.Sensors[s][lo:hi]
				}
				want = append(want, &w)
			}
			for _, fl := range db.failures {
				if (fl.Device == f.Device || fl.Device == db.frames[0].Device) && fl.Time >= from {
					wantF = append(wantF, fl)
				}
			}
			compareFrames(t, got, want)
			if got[1].Time[0] != from || got[1].Time[got[1].Len()-1] != to {
				t.Fatalf("%s: bounds not inclusive", method)
			}
			gf, _, _ := dataset.ReadFailures(ctx, opts.FailuresOut)
			compareFailures(t, gf, wantF)
		}
	})

	t.Run("injection is just a string", func(t *testing.T) {
		for _, method := range []string{MethodQuery, MethodCopy} {
			opts := db.options(t)
			opts.Postgres.Method = method
			opts.Devices = []string{injection}
			if _, err := Run(ctx, runenv.Test(), opts); err != nil {
				t.Fatal(err)
			}
			got, _ := readFrames(t, opts.Out)
			if len(got) != 1 || got[0].Device != injection || got[0].Len() != 1 {
				t.Fatalf("got %d devices", len(got))
			}
			// As a tenant, too: its own single device, nobody else's rows.
			opts = db.options(t)
			opts.Postgres.Method = method
			opts.DB.Tenant = injection
			res, err := Run(ctx, runenv.Test(), opts)
			if err != nil {
				t.Fatal(err)
			}
			if res.Devices != 1 || res.Tenants[0] != injection {
				t.Fatalf("result %+v", res)
			}
		}
		var n int
		if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM sensor_data`).Scan(&n); err != nil || n == 0 {
			t.Fatalf("sensor_data: %d rows, %v", n, err)
		}
	})

	t.Run("no readings", func(t *testing.T) {
		for _, tc := range []struct {
			mod  func(*Options)
			want string
		}{
			{func(o *Options) { o.DB.Tenant = "nobody" }, `tenant "nobody" has no readings in sensor_data`},
			{func(o *Options) { o.Devices = []string{"dev-999"} }, "no readings in sensor_data for tenant \"acme\" with devices dev-999"},
			{func(o *Options) { o.From = "2031-01-01" }, "with from 2031-01-01T00:00:00Z"},
		} {
			for _, method := range []string{MethodQuery, MethodCopy} {
				opts := db.options(t)
				opts.Postgres.Method = method
				tc.mod(&opts)
				_, err := Run(ctx, runenv.Test(), opts)
				if !errors.Is(err, ErrNoReadings) || !strings.Contains(err.Error(), tc.want) || exitcode.Code(err) != exitcode.Validation {
					t.Fatalf("%s: err = %v, want %q", method, err, tc.want)
				}
				assertEmptyDir(t, filepath.Dir(opts.Out))
			}
		}
	})
}

func equalStrings(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }

// deviceIDs returns the ids of the first n synthetic devices.
func deviceIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = DeviceID(i, n)
	}
	return out
}

// Ctrl-C during the query: the query is cancelled on the server, the error
// maps to exit code 130 and no file is left behind.
func TestPostgresCancel(t *testing.T) {
	db := newFleetDB(t, testutil.NewDatabase(t))
	ctx := context.Background()
	if _, err := db.pool.Exec(ctx, `INSERT INTO sensor_data (tenant_id, device_id, "timestamp", current_mean)
SELECT 'big', 'd' || (i % 10), timestamptz '2024-01-01' + i * interval '1 minute', i FROM generate_series(1, 300000) i`); err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{MethodQuery, MethodCopy} {
		opts := db.options(t)
		opts.DB.Tenant = "big"
		opts.Postgres.Method = method
		opts.Postgres.BatchRows = 1000
		cctx, cancel := context.WithCancel(ctx)
		env := runenv.Test()
		env.Progress = cancelAfter(cancel, 1)
		_, err := Run(cctx, env, opts)
		cancel()
		if !errors.Is(err, context.Canceled) || exitcode.Code(err) != exitcode.Interrupted {
			t.Fatalf("%s: err = %v, want cancelled", method, err)
		}
		assertEmptyDir(t, filepath.Dir(opts.Out))
		// Nothing of ours keeps running on the server.
		deadline := time.Now().Add(10 * time.Second)
		for {
			var active int
			if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'modax-ml' AND state = 'active' AND pid <> pg_backend_pid()`).Scan(&active); err != nil {
				t.Fatal(err)
			}
			if active == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d queries still active after the cancel", method, active)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func TestPostgresBadConfig(t *testing.T) {
	db := newFleetDB(t, testutil.NewDatabase(t))
	for _, tc := range []struct {
		mod  func(*Options)
		want string
		code int
	}{
		{func(o *Options) { o.DB.SensorTable = "nope" }, `relation "nope" does not exist`, 1},
		{func(o *Options) { o.DB.Sensors = []string{"current_mean", "oil"} }, `column "oil" does not exist`, 1},
		{func(o *Options) { o.DB.Sensors = nil }, "db.sensors", 2},
		{func(o *Options) { o.Postgres.Method = "carrier-pigeon" }, "want query or copy", 2},
		{func(o *Options) { o.DB.DSN = "postgres://x:topsecret@127.0.0.1:1/db" }, "connection refused", 1},
	} {
		opts := db.options(t)
		tc.mod(&opts)
		_, err := Run(context.Background(), runenv.Test(), opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) || exitcode.Code(err) != tc.code {
			t.Fatalf("err = %v (exit %d), want %q (exit %d)", err, exitcode.Code(err), tc.want, tc.code)
		}
		if strings.Contains(err.Error(), "topsecret") {
			t.Fatal("password in the error")
		}
		assertEmptyDir(t, filepath.Dir(opts.Out))
	}
}
