package collect

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/testutil"
)

// exportRows is the number of readings each export below writes: reading i
// of device dev-(i%2) is at 2024-01-01T00:00:00Z + i × (10 min + 123 ms),
// temp = 1.5 i, and each device failed once, at 2024-01-02T00:00:00Z + i h.
const exportRows = 6

func exportTime(i int) int64 {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	return dataset.Micros(t0.Add(time.Duration(i) * (10*time.Minute + 123*time.Millisecond)))
}

// checkExported reads the exported CSV files and checks every timestamp
// arrived as written, whatever zone the exporter printed it in.
func checkExported(t *testing.T, readings, failures string) {
	t.Helper()
	frames, fails, sensors, err := ReadCSV(readings, failures, "acme")
	if err != nil {
		r, _ := os.ReadFile(readings)
		t.Fatalf("%v\n%s", err, r)
	}
	if len(sensors) != 1 || sensors[0] != "temp" || len(frames) != 2 {
		t.Fatalf("sensors %v, %d frames", sensors, len(frames))
	}
	n := 0
	for d, fr := range frames {
		for j, ts := range fr.Time {
			i := d + 2*j
			if want := exportTime(i); ts != want {
				t.Errorf("%s reading %d at %s, want %s", fr.Device, j, dataset.TimeOf(ts), dataset.TimeOf(want))
			}
			if fr.Sensors[0][j] != 1.5*float64(i) {
				t.Errorf("%s reading %d temp %v", fr.Device, j, fr.Sensors[0][j])
			}
			n++
		}
	}
	if n != exportRows {
		t.Errorf("%d readings, want %d", n, exportRows)
	}
	if len(fails) != 2 {
		t.Fatalf("failures %+v", fails)
	}
	for i, f := range fails {
		if want := time.Date(2024, 1, 2, i, 0, 0, 0, time.UTC); f.Time != dataset.Micros(want) {
			t.Errorf("failure of %s at %s, want %s", f.Device, dataset.TimeOf(f.Time), want)
		}
	}
}

// TestReadCSVExportedByPostgres: CSV files as PostgreSQL's COPY ... TO
// STDOUT (CSV, HEADER) — what psql's \copy writes — exports a timestamptz,
// in the session's time zone: "2024-01-01 00:00:00+00", fractional seconds,
// "+05:30", "-03:30".
func TestReadCSVExportedByPostgres(t *testing.T) {
	dsn := testutil.NewDatabase(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, zone := range []string{"UTC", "Asia/Kolkata", "America/St_Johns", "Europe/Amsterdam"} {
		t.Run(zone, func(t *testing.T) {
			if _, err := conn.Exec(ctx, "SET TimeZone = '"+zone+"'"); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			export := func(name, query string) string {
				var b bytes.Buffer
				if _, err := conn.PgConn().CopyTo(ctx, &b, "COPY ("+query+") TO STDOUT WITH (FORMAT csv, HEADER)"); err != nil {
					t.Fatal(err)
				}
				return writeFile(t, dir, name, b.String())
			}
			readings := export("readings.csv", `SELECT 'dev-' || (i % 2) AS device_id,
  timestamptz '2024-01-01 00:00:00+00' + i * interval '10 minutes 0.123 seconds' AS "timestamp", i * 1.5 AS temp
FROM generate_series(0, 5) i`)
			failures := export("failures.csv", `SELECT 'dev-' || i AS device_id, timestamptz '2024-01-02 00:00:00+00' + i * interval '1 hour' AS event_time
FROM generate_series(0, 1) i`)
			checkExported(t, readings, failures)
		})
	}
}

// duckdbExport writes the same data as TestReadCSVExportedByPostgres with
// DuckDB's COPY ... TO (HEADER), in the time zone argv[2].
const duckdbExport = `
import { DuckDBInstance } from '@duckdb/node-api';
const [dir, zone] = process.argv.slice(1);
const inst = await DuckDBInstance.create(':memory:');
const conn = await inst.connect();
await conn.run("SET TimeZone = '" + zone + "'");
await conn.run("COPY (SELECT 'dev-' || (i % 2) AS device_id, TIMESTAMPTZ '2024-01-01 00:00:00+00' + i * INTERVAL '10 minutes' + i * INTERVAL '123 milliseconds' AS timestamp, i * 1.5 AS temp FROM range(6) t(i)) TO '" + dir + "/readings.csv' (HEADER)");
await conn.run("COPY (SELECT 'dev-' || i AS device_id, TIMESTAMPTZ '2024-01-02 00:00:00+00' + i * INTERVAL '1 hour' AS event_time FROM range(2) t(i)) TO '" + dir + "/failures.csv' (HEADER)");
`

// TestReadCSVExportedByDuckDB: CSV files as DuckDB (@duckdb/node-api)
// exports a TIMESTAMPTZ: "2024-01-01 05:40:00.123+05:30".
func TestReadCSVExportedByDuckDB(t *testing.T) {
	interop, node := testutil.InteropDir(t)
	for _, zone := range []string{"UTC", "Asia/Kolkata", "America/St_Johns"} {
		t.Run(zone, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(node, "--input-type=module", "-e", duckdbExport, dir, zone)
			cmd.Dir = interop
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("duckdb: %v\n%s", err, out)
			}
			checkExported(t, filepath.Join(dir, "readings.csv"), filepath.Join(dir, "failures.csv"))
		})
	}
}
