package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/modax/modax-ml/deploy"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/pg"
	"github.com/modax/modax-ml/internal/tracking"
	"github.com/modax/modax-ml/ui"
)

// uiDBScoresPerDevice is how many of each device's newest rows of the
// prediction table the ui reads (its RUL history and trend).
const uiDBScoresPerDevice = 200

// defaultUIAddr is where `modax-ml ui` listens: loopback only.
const defaultUIAddr = "127.0.0.1:8765"

func newUICmd(a *app) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "A local, read-only web app: runs and comparisons, run pages, the fleet, the models",
		Long: `Serve a read-only web app over the run records (--runs-dir), the model directory
(--models-dir) and the scores and monitor reports found there, until Ctrl-C. Pages: Runs (a
sortable, filterable table; tick runs to compare them: differing params, metric deltas, learning
curves with the best epoch), a page per run (report.html, stage timings, validation findings,
lineage, artifacts), Fleet (the latest score of every device from scores*.parquet in --dir and
the run directories and, when a database is configured (db.dsn or MODAX_DB_DSN), from its
prediction table (score --to-db); with a click-through to its RUL and sensor history; the monitor
history from runs/*/monitor.json) and Models (deploy list with gate decisions and test metrics).

It listens on loopback (` + defaultUIAddr + `) unless --addr says otherwise; every asset is
embedded, nothing is fetched from the network. The URL is printed on stderr.`,
		Example: `  modax-ml ui
  modax-ml ui --addr 127.0.0.1:9000 --dir /srv/modax
  modax-ml ui --runs-dir runs --models-dir models`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkAddr(cmd.Context(), addr); err != nil {
				return err
			}
			opts := ui.Options{
				RunsDir:   a.path(a.cfg.Tracking.RunsDir),
				ModelsDir: a.path(a.cfg.Deploy.ModelsDir),
				Dir:       a.path("."),
				Log:       a.log,
			}
			if a.cfg.DB.DSN != "" {
				// The database is read only when one is configured (db.dsn,
				// --dsn or MODAX_DB_DSN), through one pool for the server's life.
				if err := a.cfg.DB.Check(); err != nil {
					return err
				}
				pool, err := pg.Connect(cmd.Context(), a.cfg.DB)
				if err != nil {
					return fmt.Errorf("ui: %w", err)
				}
				defer pool.Close()
				dbc := a.cfg.DB
				opts.DBName = "PostgreSQL table " + dbc.PredictionTable
				opts.DBScores = func(ctx context.Context) ([]dataset.Score, error) {
					return pg.ReadScores(ctx, pool, dbc, uiDBScoresPerDevice)
				}
			}
			srv, err := ui.New(opts)
			if err != nil {
				return err
			}
			ln, err := new(net.ListenConfig).Listen(cmd.Context(), "tcp", addr)
			if err != nil {
				if errors.Is(err, syscall.EADDRINUSE) {
					return fmt.Errorf("ui: %s is already in use (another modax-ml ui?); choose another port with --addr", addr)
				}
				return fmt.Errorf("ui: listen on %s: %w", addr, err)
			}
			if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
				a.log.Warn("ui: listening beyond loopback: anyone who reaches this address can read the runs and models", "addr", ln.Addr().String())
			}
			fmt.Fprintf(a.errOut, "modax-ml ui: serving http://%s/ (Ctrl-C stops)\n", ln.Addr())
			err = ui.Serve(cmd.Context(), ln, srv)
			if err == nil {
				a.log.Info("ui stopped")
			}
			return err
		},
	}
	cmd.Flags().StringVar(&addr, "addr", defaultUIAddr, "host:port to listen on (port 0: any free port)")
	bindString(cmd.Flags(), "runs-dir", "tracking.runs_dir", tracking.DefaultConfig().RunsDir, "directory holding one directory per run")
	bindString(cmd.Flags(), "models-dir", "deploy.models_dir", deploy.DefaultOptions().ModelsDir, "model directory (deploy list)")
	return cmd
}

// checkAddr refuses a listen address that is not host:port with a numeric
// port (a usage error).
func checkAddr(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: ui --addr %q: want host:port, e.g. %s", exitcode.ErrUsage, addr, defaultUIAddr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%w: ui --addr %q: port %q is not a number from 0 to 65535", exitcode.ErrUsage, addr, port)
	}
	if host != "" && host != "localhost" && net.ParseIP(host) == nil {
		if _, err := net.DefaultResolver.LookupHost(ctx, host); err != nil {
			return fmt.Errorf("%w: ui --addr %q: unknown host %q", exitcode.ErrUsage, addr, host)
		}
	}
	return nil
}
