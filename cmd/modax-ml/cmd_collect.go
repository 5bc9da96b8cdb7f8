package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/modax/modax-ml/collect"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/pg"
)

func newCollectCmd(a *app) *cobra.Command {
	def := collect.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "collect",
		Short: "Collect readings and failures (postgres, csv, cmapss, synthetic) into Parquet",
		Long: `collect reads sensor history from a source and writes readings.parquet (tenant_id,
device_id, timestamp, one column per sensor; sorted by tenant, device, time) and
failures.parquet (failure events), atomically.

Sources:
  synthetic      a deterministic simulated fleet (the default; no database, no download)
  postgres       the sensor and failure tables of db.tenant (DSN from db.dsn,
                 MODAX_DB_DSN or libpq's PG* variables; tables and sensors from db.*)
  csv:PATH       a CSV export: header row; device_id, timestamp, optional tenant_id,
                 one column per sensor; failures from --failures csv:PATH
  cmapss:PATH    NASA C-MAPSS (train_FD00x.txt; test_FD00x.txt with --rul RUL_FD00x.txt)

--device and --from/--to restrict every source (times inclusive, RFC 3339 or
YYYY-MM-DD); failures after --to are kept, as they label the last readings.`,
		Example: `  modax-ml collect                                    # synthetic fleet, 20 devices × 60 days
  modax-ml collect --source synthetic --devices 100 --days 365 --interval 1h --seed 7
  MODAX_DB_DSN=postgres://modax@db/modax modax-ml collect --source postgres --tenant acme \
      --device press-01 --device press-02 --from 2024-01-01 --to 2024-03-31
  modax-ml collect --source csv:export.csv --failures csv:failures.csv
  modax-ml collect --source cmapss:train_FD001.txt
  modax-ml collect --source cmapss:test_FD001.txt --rul RUL_FD001.txt -o test_readings.parquet --failures-out test_failures.parquet`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := a.cfg.Collect
			opts.DB = a.cfg.DB
			opts.Out = a.path(opts.Out)
			opts.FailuresOut = a.path(opts.FailuresOut)
			if kind, p, ok := strings.Cut(opts.Source, ":"); ok && p != "" {
				opts.Source = kind + ":" + a.path(p)
			}
			if opts.Failures != "" {
				p, _ := strings.CutPrefix(opts.Failures, collect.SourceCSV+":")
				opts.Failures = a.path(p)
			}
			opts.RUL = a.path(opts.RUL)
			res, err := collect.Run(cmd.Context(), a.env(), opts)
			if err != nil {
				return err
			}
			return a.emit(res, func(w io.Writer) error { return printCollect(w, res) })
		},
	}
	f := cmd.Flags()
	bindString(f, "source", "collect.source", def.Source, "synthetic, postgres, csv:PATH or cmapss:PATH")
	bindString(f, "failures", "collect.failures", "", "failures CSV of a csv source (csv:PATH)")
	bindString(f, "rul", "collect.rul", "", "true RUL file of a C-MAPSS test file (RUL_FD00x.txt)")
	bindStringP(f, "out", "o", "collect.out", def.Out, "readings file to write")
	bindString(f, "failures-out", "collect.failures_out", def.FailuresOut, "failures file to write")
	bindStrings(f, "device", "collect.devices", nil, "only these device ids (repeat or comma-separate; default all)")
	bindString(f, "from", "collect.from", "", "first timestamp to collect, inclusive (RFC 3339 or YYYY-MM-DD)")
	bindString(f, "to", "collect.to", "", "last timestamp to collect, inclusive (RFC 3339 or YYYY-MM-DD)")
	bindString(f, "tenant", "db.tenant", pg.DefaultConfig().Tenant, "tenant id (every source)")
	s := def.Synthetic
	bindInt(f, "devices", "collect.synthetic.devices", s.Devices, "synthetic: number of devices")
	bindFloat(f, "days", "collect.synthetic.days", s.Days, "synthetic: days of history per device")
	bindDuration(f, "interval", "collect.synthetic.interval", s.Interval, "synthetic: sampling interval")
	bindInt64(f, "seed", "collect.synthetic.seed", s.Seed, "synthetic: random seed (same seed, same fleet)")
	bindString(f, "start", "collect.synthetic.start", s.Start, "synthetic: time of the first sample (RFC 3339)")
	bindFloat(f, "mean-life-hours", "collect.synthetic.mean_life_hours", s.MeanLifeHours, "synthetic: mean operating hours from repair to failure")
	bindFloat(f, "missing-rate", "collect.synthetic.missing_rate", s.MissingRate, "synthetic: probability of a missing sensor value")
	bindFloat(f, "dropouts-per-day", "collect.synthetic.dropouts_per_day", s.DropoutsPerDay, "synthetic: sensor dropouts (30 min to 6 h) per device and day")
	bindString(f, "pg-method", "collect.postgres.method", def.Postgres.Method, "postgres: query (streamed binary SELECT) or copy (binary COPY)")
	return cmd
}

func printCollect(w io.Writer, r *collect.Result) error {
	fmt.Fprintf(w, "collected %d readings of %d devices (%s .. %s) and %d failures from %s in %.2fs\n",
		r.Rows, r.Devices, r.TimeRange.From.Format(time.RFC3339), r.TimeRange.To.Format(time.RFC3339), r.Failures, r.Source, r.Seconds)
	for _, f := range r.Files {
		fmt.Fprintf(w, "  %-24s %-20s %9d rows  sha256 %s\n", f.Path, f.Schema, f.Rows, f.SHA256)
	}
	return nil
}

// usageErr marks an error as a usage error (exit code 2).
func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{exitcode.ErrUsage}, args...)...)
}
