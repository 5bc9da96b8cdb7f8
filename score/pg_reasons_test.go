package score

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modax/modax-ml/features"
	"github.com/modax/modax-ml/internal/conformal"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/pg"
	"github.com/modax/modax-ml/internal/testutil"
)

// TestPostgresReasons, on PostgreSQL and TimescaleDB: the devices the
// database source cannot score, with the file source's reasons
// (too_few_readings since the last repair, feature_missing, stale,
// unknown_device); exit 3 and nothing written — no scores file, no row —
// when none could be scored or when the database write fails; exit 2 for a
// bad database setting; --to-db replacing a device's row (same tenant,
// device, timestamp, model version) with the new interval, not adding one.
func TestPostgresReasons(t *testing.T) {
	testutil.EachDatabase(t, func(t *testing.T, db testutil.Database) { //nolint:thelper // a subtest body run by testutil.EachDatabase
		ctx := context.Background()
		pool, c, ckpt, readings, failures := loadFleet(t, db)
		dir := t.TempDir()
		rows := func(table string) int {
			t.Helper()
			var n int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		opts := func(at time.Time) Options {
			o := DefaultOptions()
			o.Source, o.DB, o.Model, o.At = SourcePostgres, c, ckpt, at.Format(time.RFC3339)
			return o
		}

		// At 67 h dev-0 has 7 readings since its repair at 60.5 h (window
		// 8), dev-2's a has been missing since 60 h; dev-1 scores.
		at := t0.Add(67 * time.Hour)
		o := opts(at)
		o.Devices, o.BatchDevices = []string{"dev-0", "dev-1", "dev-2", "nope"}, 2
		res, err := Run(ctx, env(at), o)
		if err != nil {
			t.Fatal(err)
		}
		file := o
		file.Source, file.Readings, file.Failures = SourceFile, readings, failures
		want, err := Run(ctx, env(at), file)
		if err != nil {
			t.Fatal(err)
		}
		why := map[string]string{}
		for _, u := range res.Unscored {
			why[u.Device] = u.Reason
		}
		if why["dev-0"] != ReasonTooFew || why["dev-2"] != features.ReasonMissing || why["nope"] != ReasonUnknownDevice ||
			len(res.Scored) != 1 || res.Scored[0].Device != "dev-1" || math.Abs(res.Scored[0].RUL-want.Scored[0].RUL) > 1e-9 {
			t.Errorf("postgres scored %+v, refused %+v", res.Scored, res.Unscored)
		}
		if len(res.Unscored) != len(want.Unscored) {
			t.Fatalf("postgres refused %+v, the files %+v", res.Unscored, want.Unscored)
		}
		for i, u := range res.Unscored {
			if w := want.Unscored[i]; u.Device != w.Device || u.Reason != w.Reason {
				t.Errorf("postgres refused %s (%s: %s), the files %s (%s: %s)", u.Device, u.Reason, u.Detail, w.Device, w.Reason, w.Detail)
			}
		}
		// Stale (the last reading, 119 h, is more than 2 × 8 h old at 136 h):
		// exit 3, neither the scores file nor a row.
		late := t0.Add(136 * time.Hour)
		o = opts(late)
		o.ToDB, o.Out = true, filepath.Join(dir, "stale.parquet")
		res, err = Run(ctx, env(late), o)
		if !errors.Is(err, ErrNoneScored) || exitcode.Code(err) != exitcode.Validation || res == nil || len(res.Unscored) != 4 {
			t.Fatalf("stale: err %v (exit %d), result %+v", err, exitcode.Code(err), res)
		}
		for _, u := range res.Unscored {
			if u.Reason != ReasonStale || u.LastReading == nil {
				t.Errorf("stale: %+v", u)
			}
		}
		if _, err := os.Stat(o.Out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s written although nothing was scored", o.Out)
		}
		if n := rows("rul_predictions"); n != 0 {
			t.Errorf("rul_predictions has %d rows although nothing was scored", n)
		}

		// A prediction table from before the interval columns: --to-db fails
		// naming the fix, and neither the scores file nor a row is written;
		// db migrate adds the columns, and then it works.
		if _, err := pool.Exec(ctx, `CREATE TABLE old_predictions (tenant_id TEXT NOT NULL, device_id TEXT COLLATE "C" NOT NULL,
  "timestamp" TIMESTAMPTZ NOT NULL, rul_hours DOUBLE PRECISION NOT NULL, health_status TEXT NOT NULL, model_version TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
			t.Fatal(err)
		}
		at = t0.Add(100 * time.Hour)
		o = opts(at)
		o.DB.PredictionTable, o.ToDB, o.Out = "old_predictions", true, filepath.Join(dir, "scores.parquet")
		if _, err := Run(ctx, env(at), o); err == nil || !strings.Contains(err.Error(), "table old_predictions has no column rul_lower (run `modax-ml db migrate` to add it)") {
			t.Errorf("--to-db into a table without the interval columns: %v", err)
		}
		if _, err := os.Stat(o.Out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s written although the database write failed", o.Out)
		}
		if n := rows("old_predictions"); n != 0 {
			t.Errorf("old_predictions has %d rows after a failed --to-db", n)
		}
		if _, err := pg.Migrate(ctx, pool, o.DB, pg.TimescaleOff, env(at).Log); err != nil {
			t.Fatal(err)
		}
		if res, err = Run(ctx, env(at), o); err != nil || res.DBRows != 4 || res.Out != o.Out {
			t.Fatalf("after db migrate: %v, %+v", err, res)
		}

		// Calibrated at 0.8 and 0.9: scoring again at another level replaces
		// each device's row (same timestamp and model version), interval
		// and all.
		ck, err := model.Load(ckpt)
		if err != nil {
			t.Fatal(err)
		}
		cal := &conformal.Calibration{Method: conformal.Method, Horizon: 500, Levels: []float64{0.8, 0.9}, N: 200,
			Buckets: []conformal.Bucket{{Lo: 0, Hi: 500, N: 200, Radius: []conformal.Radius{7, 11}}}}
		ck.Info.Calibration = cal
		o.Model = filepath.Join(dir, "calibrated.safetensors")
		if err := model.Save(o.Model, ck); err != nil {
			t.Fatal(err)
		}
		o.Out = ""
		for _, level := range []float64{0.9, 0.8} {
			o.IntervalLevel = level
			res, err := Run(ctx, env(at), o)
			if err != nil {
				t.Fatal(err)
			}
			if n := rows("old_predictions"); n != 4 {
				t.Errorf("level %g: old_predictions has %d rows, want 4 (one per device, replaced)", level, n)
			}
			for _, s := range res.Scored {
				var lo, hi, lv, rul float64
				if err := pool.QueryRow(ctx, `SELECT rul_lower, rul_upper, interval_level, rul_hours FROM old_predictions
WHERE tenant_id = 't' AND device_id = $1 AND "timestamp" = $2`, s.Device, s.LastReading).Scan(&lo, &hi, &lv, &rul); err != nil {
					t.Fatal(err)
				}
				wlo, whi, _ := conformal.Interval(s.RUL, cal, level)
				if lo != wlo || hi != whi || lv != level || rul != s.RUL || !(lo <= rul && rul <= hi) {
					t.Errorf("level %g: %s row [%g, %g] at %g, RUL %g; want [%g, %g], RUL %g", level, s.Device, lo, hi, lv, rul, wlo, whi, s.RUL)
				}
			}
		}

		// Bad database settings: exit 2 naming the key, before any work; a
		// table that does not exist is exit 3 saying to migrate.
		o = opts(at)
		o.DB.SensorTable = "a.b.c"
		if _, err := Run(ctx, env(at), o); exitcode.Code(err) != exitcode.Usage || !strings.Contains(err.Error(), "db.sensor_table") {
			t.Errorf("bad db.sensor_table: %v (exit %d), want exit 2 naming it", err, exitcode.Code(err))
		}
		o = opts(at)
		o.ToDB, o.DB.Tenant = true, ""
		if _, err := Run(ctx, env(at), o); exitcode.Code(err) != exitcode.Usage || !strings.Contains(err.Error(), "db.tenant") {
			t.Errorf("--to-db without a tenant: %v (exit %d), want exit 2", err, exitcode.Code(err))
		}
		o = opts(at)
		o.DB.SensorTable = "no_such_table"
		if _, err := Run(ctx, env(at), o); exitcode.Code(err) != exitcode.Validation || !strings.Contains(err.Error(), "db migrate") {
			t.Errorf("missing sensor table: %v (exit %d), want exit 3 saying to migrate", err, exitcode.Code(err))
		}
	})
}
