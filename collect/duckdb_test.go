package collect

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os/exec"
	"strings"
	"testing"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/internal/testutil"
)

// duckdbDump reads a Parquet file with DuckDB (@duckdb/node-api, an
// independent reader) and returns its column names, types and rows, with
// timestamps as epoch microseconds.
const duckdbDump = `
import { DuckDBInstance } from '@duckdb/node-api';
const path = process.argv[1];
const inst = await DuckDBInstance.create(':memory:');
const conn = await inst.connect();
const esc = path.replaceAll("'", "''");
const desc = await conn.runAndReadAll("DESCRIBE SELECT * FROM read_parquet('" + esc + "')");
const schema = desc.getRowsJson().map(r => [r[0], r[1]]);
const cols = schema.map(([n, t]) => t.startsWith('TIMESTAMP') ? 'epoch_us("' + n + '")::DOUBLE' : '"' + n + '"');
const res = await conn.runAndReadAll('SELECT ' + cols.join(', ') + " FROM read_parquet('" + esc + "')");
const meta = await conn.runAndReadAll("SELECT key::VARCHAR, value::VARCHAR FROM parquet_kv_metadata('" + esc + "')");
console.log(JSON.stringify({schema, rows: res.getRowsJson(), meta: Object.fromEntries(meta.getRowsJson())}));
`

type duckResult struct {
	Schema [][2]string        `json:"schema"`
	Rows   [][]any            `json:"rows"`
	Meta   map[string]*string `json:"meta"`
}

func readDuckDB(t *testing.T, path string) duckResult {
	t.Helper()
	dir, node := testutil.InteropDir(t)
	cmd := exec.Command(node, "--input-type=module", "-e", duckdbDump, path)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("duckdb: %v\n%s", err, stderr)
	}
	var r duckResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func num(v any) float64 {
	switch x := v.(type) {
	case nil:
		return math.NaN()
	case float64:
		return x
	}
	panic("not a number")
}

// The files collect writes are read by DuckDB with the same schema and values.
func TestParquetReadableByDuckDB(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	opts.Synthetic.Devices, opts.Synthetic.Days = 3, 20
	opts.Synthetic.MissingRate = 0.02
	opts.DB.Tenant = "acme"
	if _, err := Run(context.Background(), runenv.Test(), opts); err != nil {
		t.Fatal(err)
	}
	frames, sensors := readFrames(t, opts.Out)
	got := readDuckDB(t, opts.Out)

	wantSchema := [][2]string{{"tenant_id", "VARCHAR"}, {"device_id", "VARCHAR"}, {"timestamp", "TIMESTAMP WITH TIME ZONE"}}
	for _, s := range sensors {
		wantSchema = append(wantSchema, [2]string{s, "DOUBLE"})
	}
	if len(got.Schema) != len(wantSchema) {
		t.Fatalf("duckdb schema %v, want %v", got.Schema, wantSchema)
	}
	for i := range wantSchema {
		if got.Schema[i] != wantSchema[i] {
			t.Fatalf("duckdb column %d = %v, want %v", i, got.Schema[i], wantSchema[i])
		}
	}
	if m := got.Meta[dataset.MetaSchema]; m == nil || *m != dataset.KindReadings {
		t.Fatalf("duckdb metadata %v", got.Meta)
	}
	i, nulls := 0, 0
	for _, f := range frames {
		for j := range f.Len() {
			row := got.Rows[i]
			i++
			if row[0] != f.Tenant || row[1] != f.Device || int64(num(row[2])) != f.Time[j] {
				t.Fatalf("row %d = %v, want %s %s %d", i, row[:3], f.Tenant, f.Device, f.Time[j])
			}
			for s := range sensors {
				if row[3+s] == nil {
					nulls++
				}
				if !sameFloat(num(row[3+s]), f.Sensors[s][j]) {
					t.Fatalf("row %d %s = %v, want %v", i, sensors[s], row[3+s], f.Sensors[s][j])
				}
			}
		}
	}
	if i != len(got.Rows) || nulls == 0 {
		t.Fatalf("compared %d of %d rows, %d nulls", i, len(got.Rows), nulls)
	}

	fails, _, err := dataset.ReadFailures(context.Background(), opts.FailuresOut)
	if err != nil {
		t.Fatal(err)
	}
	gf := readDuckDB(t, opts.FailuresOut)
	var names []string
	for _, c := range gf.Schema {
		names = append(names, c[0]+" "+c[1])
	}
	if want := "tenant_id VARCHAR,device_id VARCHAR,event_time TIMESTAMP WITH TIME ZONE,event_type VARCHAR,component_failed VARCHAR,operating_hours_at_failure DOUBLE"; strings.Join(names, ",") != want {
		t.Fatalf("failures schema %s", strings.Join(names, ","))
	}
	if len(gf.Rows) != len(fails) || len(fails) == 0 {
		t.Fatalf("%d failures in duckdb, %d in Go", len(gf.Rows), len(fails))
	}
	for k, f := range fails {
		r := gf.Rows[k]
		if r[0] != f.Tenant || r[1] != f.Device || int64(num(r[2])) != f.Time || r[3] != f.EventType || r[4] != f.Component || !sameFloat(num(r[5]), f.OpHours) {
			t.Fatalf("failure %d = %v, want %+v", k, r, f)
		}
	}
}
