package examples

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/modax/modax-ml/internal/pg"
	"github.com/modax/modax-ml/internal/testutil"
)

// dashboard is the part of a Grafana dashboard JSON the test reads.
type dashboard struct {
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Query string `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			RawSQL string `json:"rawSql"`
			Format string `json:"format"`
		} `json:"targets"`
	} `json:"panels"`
}

var timeFilter = regexp.MustCompile(`\$__timeFilter\(([^()]+)\)`)

// grafanaSQL expands the Grafana macros and variables the dashboard uses, as
// the PostgreSQL data source does.
func grafanaSQL(q string, from, to time.Time) string {
	q = timeFilter.ReplaceAllString(q, "$1 BETWEEN '"+from.Format(time.RFC3339)+"' AND '"+to.Format(time.RFC3339)+"'")
	return strings.ReplaceAll(q, "$tenant", "default")
}

// TestGrafanaDashboard parses examples/grafana's dashboard and runs each of
// its queries on tables db migrate created, with a score and a monitor
// result in them: every query runs and returns the row.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana/modax-ml.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana/modax-ml.json: %v", err)
	}
	var queries []string
	for _, v := range d.Templating.List {
		queries = append(queries, v.Query)
	}
	tables := map[string]bool{}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.RawSQL == "" || (tg.Format != "time_series" && tg.Format != "table") {
				t.Errorf("panel %q: query %q format %q", p.Title, tg.RawSQL, tg.Format)
			}
			queries = append(queries, tg.RawSQL)
			for _, tbl := range []string{"monitor_results", "rul_predictions"} {
				tables[tbl] = tables[tbl] || strings.Contains(tg.RawSQL, tbl)
			}
		}
	}
	if d.Title == "" || len(d.Panels) < 4 || !tables["monitor_results"] || !tables["rul_predictions"] {
		t.Fatalf("dashboard %q: %d panels, tables %v", d.Title, len(d.Panels), tables)
	}
	testutil.EachDatabase(t, func(t *testing.T, tdb testutil.Database) { //nolint:thelper // a subtest body
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, tdb.DSN)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		c := pg.DefaultConfig()
		if _, err := pg.Migrate(ctx, conn, c, pg.TimescaleAuto, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
		at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
		if _, err := conn.Exec(ctx, `INSERT INTO rul_predictions (tenant_id, device_id, "timestamp", rul_hours, rul_lower, rul_upper, interval_level, health_status, model_version)
VALUES ('default', 'dev-1', $1, 50, 40, 60, 0.9, 'warning', 'v1')`, at); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO monitor_results (tenant_id, run_id, checked_at, model_version, predictions, outcomes, pending,
  realized_mae, max_psi, interval_level, coverage, interval_width, decision, reasons, report)
VALUES ('default', 'monitor-1', $1, 'v1', 10, 8, 2, 4.5, 0.05, 0.9, 0.875, 20, 'ok', '{}', '{}')`, at); err != nil {
			t.Fatal(err)
		}
		for _, q := range queries {
			sql := grafanaSQL(q, at.Add(-24*time.Hour), at.Add(24*time.Hour))
			rows, err := conn.Query(ctx, sql)
			if err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
			n := 0
			for rows.Next() {
				n++
			}
			if err := rows.Err(); err != nil || n == 0 {
				t.Errorf("%s: %d rows, %v", sql, n, err)
			}
			rows.Close()
		}
	})
}
