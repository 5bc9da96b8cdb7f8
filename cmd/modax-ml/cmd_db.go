package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/modax/modax-ml/internal/pg"
)

func newDBCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Create the database tables and load Parquet files into them",
		Long: `db works on the PostgreSQL (or TimescaleDB) database named by db.dsn, MODAX_DB_DSN
or libpq's PG* variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE). Table
names and sensor columns come from db.sensor_table, db.failure_table,
db.prediction_table and db.sensors. The DSN never appears in logs or errors.`,
	}
	cmd.AddCommand(newDBMigrateCmd(a), newDBLoadCmd(a))
	return cmd
}

func newDBMigrateCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create sensor_data, failure_events and rul_predictions (hypertables with TimescaleDB)",
		Long: `migrate creates the sensor, failure and prediction tables if they do not exist and
adds sensor columns configured since (db.sensors). It is idempotent and runs in one
transaction. With --timescaledb auto (the default) the sensor and prediction tables
become TimescaleDB hypertables when the extension is available, plain tables otherwise.`,
		Example: `  MODAX_DB_DSN=postgres://modax@localhost/modax modax-ml db migrate
  modax-ml db migrate --timescaledb off --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.cfg.DB.Check(); err != nil {
				return usageErr("%v", err)
			}
			pool, err := pg.Connect(cmd.Context(), a.cfg.DB)
			if err != nil {
				return fmt.Errorf("db migrate: %w", err)
			}
			defer pool.Close()
			res, err := pg.Migrate(cmd.Context(), pool, a.cfg.DB, a.cfg.DB.TimescaleDB, a.log)
			if err != nil {
				return fmt.Errorf("db migrate: %w", err)
			}
			return a.emit(res, func(w io.Writer) error {
				kind := "plain tables"
				if len(res.Hypertables) > 0 {
					kind = "TimescaleDB " + res.TimescaleDB + " hypertables for " + fmt.Sprint(res.Hypertables)
				}
				fmt.Fprintf(w, "tables %v ready (%s)\n", res.Tables, kind)
				if len(res.AddedColumns) > 0 {
					fmt.Fprintf(w, "added sensor columns %v\n", res.AddedColumns)
				}
				return nil
			})
		},
	}
	bindString(cmd.Flags(), "timescaledb", "db.timescaledb", pg.DefaultConfig().TimescaleDB, "hypertables: auto (when the extension is available), on (required) or off")
	return cmd
}

// loadResult is what db load prints.
type loadResult struct {
	Loaded []*pg.LoadResult `json:"loaded"`
}

func newDBLoadCmd(a *app) *cobra.Command {
	var readings, failures string
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Load readings and failures Parquet files into the tables (COPY)",
		Long: `load copies a readings file into db.sensor_table and a failures file into
db.failure_table with binary COPY, each in one transaction (an error loads nothing).
The rows keep their tenant_id. Readings already in the table (same tenant, device and
timestamp) are refused. Give --failures "" to load readings only.`,
		Example: `  modax-ml collect --source synthetic && modax-ml db migrate && modax-ml db load
  modax-ml db load --readings fleet.parquet --failures fleet_failures.parquet`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if readings == "" && failures == "" {
				return usageErr("db load: nothing to load (--readings and --failures are empty)")
			}
			if err := a.cfg.DB.Check(); err != nil {
				return usageErr("%v", err)
			}
			ctx := cmd.Context()
			pool, err := pg.Connect(ctx, a.cfg.DB)
			if err != nil {
				return fmt.Errorf("db load: %w", err)
			}
			defer pool.Close()
			var res loadResult
			env := a.env()
			if readings != "" {
				bar := env.Progress("load", "rows", -1)
				r, err := pg.LoadReadings(ctx, pool, a.cfg.DB, a.path(readings), bar)
				bar.Finish()
				if err != nil {
					return fmt.Errorf("db load: %w", err)
				}
				res.Loaded = append(res.Loaded, r)
			}
			if failures != "" {
				r, err := pg.LoadFailures(ctx, pool, a.cfg.DB, a.path(failures))
				if err != nil {
					return fmt.Errorf("db load: %w", err)
				}
				res.Loaded = append(res.Loaded, r)
			}
			for _, r := range res.Loaded {
				a.log.Info("loaded", "path", r.Path, "table", r.Table, "rows", r.Rows)
			}
			return a.emit(res, func(w io.Writer) error {
				for _, r := range res.Loaded {
					fmt.Fprintf(w, "loaded %d rows of %s into %s\n", r.Rows, r.Path, r.Table)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&readings, "readings", "readings.parquet", "readings file to load (\"\" to skip)")
	cmd.Flags().StringVar(&failures, "failures", "failures.parquet", "failures file to load (\"\" to skip)")
	return cmd
}
