package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/modax/modax-ml/score"
)

func newScoreCmd(a *app) *cobra.Command {
	d := score.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "score",
		Short: "Current RUL of every device (no labels needed), with its interval, from the newest readings",
		Long: `score answers "how many hours does each machine have left, right now?": per device
of the tenant (or --device), as of --at (default now), it takes the last window of
readings at or before --at since the device's last failure or repair, builds the
model's input exactly as features does (features in the model's order, forward fill,
max gap, the model's scaler), and predicts. No labels and no failure log are needed;
the failure log, when there is one, only says where the current life started.

The model is the deployed one (the version models/rul_predictor.onnx points at) or
--model, a checkpoint or an ONNX file. A model with an interval calibration gives
rul_lower/rul_upper at --interval-level; one without scores without intervals and
says so once.

Sources: --source file (--readings, a readings Parquet file, and --failures) or
--source postgres (db section: per batch of devices one bounded query of each
device's newest readings). Outputs: the fleet table sorted by RUL on stdout
(--output json for the full result), -o scores.parquet (modax.scores/v1), --to-db
(upsert into db.prediction_table, idempotent per device, timestamp and model
version). Devices that cannot be scored are listed with the reason: too few
readings since the last repair, a sampling gap, stale (last reading older than
--max-age, default 2 × the window's span), a feature missing, an unknown device or
tenant.

Exit status: 0 when at least one device was scored, 3 when none could be, 2 for bad
flags; no output file or row is written unless the run succeeds.`,
		Example: `  modax-ml score
  modax-ml score --readings readings.parquet --failures failures.parquet --at 2026-03-01T12:00:00Z
  modax-ml score --model runs/x/model.safetensors --device dev-0001 --output json
  modax-ml score --source postgres --config postgres.yaml --to-db -o scores.parquet`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := a.cfg.Score
			o.DB = a.cfg.DB
			o.MaxFill, o.MaxGap = a.cfg.Features.MaxFill, a.cfg.Features.MaxGap
			o.Readings, o.Failures, o.Out = a.path(o.Readings), a.path(o.Failures), a.path(o.Out)
			o.Model, o.ModelsDir = a.path(o.Model), a.path(o.ModelsDir)
			res, err := score.Run(cmd.Context(), a.env(), o)
			if res != nil {
				if perr := a.emit(res, func(w io.Writer) error { return printScores(w, res) }); perr != nil && err == nil {
					err = fmt.Errorf("score: %w", perr)
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	bindString(f, "source", "score.source", d.Source, "where the readings come from: file (--readings) or postgres (db section)")
	bindString(f, "readings", "score.readings", d.Readings, "readings file of --source file")
	bindString(f, "failures", "score.failures", d.Failures, "failure events file of --source file ('' : none; a missing default file means no failures known)")
	bindString(f, "model", "score.model", "", "model: a checkpoint (model.safetensors) or an ONNX file (default: the deployed one)")
	bindString(f, "models-dir", "score.models_dir", d.ModelsDir, "model directory of the deployed model")
	bindString(f, "at", "score.at", "", "score as of this time (RFC 3339; default now)")
	bindStrings(f, "device", "score.devices", nil, "score only this device (repeatable or comma list; default all of the tenant)")
	bindString(f, "tenant", "db.tenant", d.DB.Tenant, "tenant id")
	bindDuration(f, "max-age", "score.max_age", d.MaxAge, "a device whose last reading is older than this is stale (0: 2 × the window's span)")
	bindFloat(f, "interval-level", "score.interval_level", d.IntervalLevel, "coverage level of the interval (one the model is calibrated at)")
	bindStringP(f, "out", "o", "score.out", "", "scores file to write (modax.scores/v1; default none)")
	bindBool(f, "to-db", "score.to_db", false, "upsert the scores into db.prediction_table (rul_predictions)")
	bindInt(f, "batch-devices", "score.batch_devices", d.BatchDevices, "devices read and predicted at once")
	bindInt(f, "workers", "score.workers", d.Workers, "goroutines of the forward pass (0: one per core)")
	return cmd
}

// printScores writes the fleet table (most urgent first) and the devices that
// could not be scored.
func printScores(w io.Writer, r *score.Result) error {
	fmt.Fprintf(w, "scored %d of %d devices of tenant %s at %s with %s (%s)\n", len(r.Scored), r.Devices, r.Tenant,
		r.At.Format(time.RFC3339), r.Model.Path, r.Model.Version)
	if r.Note != "" {
		fmt.Fprintf(w, "note: %s\n", r.Note)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if len(r.Scored) > 0 {
		fmt.Fprintln(tw, "device\tlast reading\tRUL h\tinterval\thealth\tchange h\t")
		for _, s := range r.Scored {
			iv, ch := "-", "-"
			if s.Lower != nil && s.Upper != nil && s.Level != nil {
				iv = fmt.Sprintf("%.1f–%.1f (%g%%)", *s.Lower, *s.Upper, *s.Level*100)
			}
			if s.Change != nil {
				ch = fmt.Sprintf("%+.1f", *s.Change)
			}
			fmt.Fprintf(tw, "%s\t%s\t%.1f\t%s\t%s\t%s\t\n", s.Device, s.LastReading.Format(time.RFC3339), s.RUL, iv, s.Health, ch)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Unscored) > 0 {
		fmt.Fprintf(w, "not scored (%d):\n", len(r.Unscored))
		for _, u := range r.Unscored {
			dev := u.Device
			if dev == "" {
				dev = "(tenant " + r.Tenant + ")"
			}
			fmt.Fprintf(w, "  %s\t%s: %s\n", dev, u.Reason, strings.TrimSpace(u.Detail))
		}
	}
	if r.Out != "" {
		fmt.Fprintf(w, "wrote %s\n", r.Out)
	}
	if r.DBRows > 0 {
		fmt.Fprintf(w, "upserted %d rows into the database\n", r.DBRows)
	}
	return nil
}
