package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/modax/modax-ml/label"
)

func newLabelCmd(a *app) *cobra.Command {
	def := label.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "label",
		Short: "Label readings with the Remaining Useful Life to the next failure",
		Long: `Reads readings and failure events and writes the labeled file: each reading gets
rul_hours (hours to the next failure of its device, capped at --horizon), rul_hours_raw
(uncapped; null where the time to failure is unknown), censored (readings after the last
failure whose RUL is only known to be at least the time to the end of observation, and
that bound is below the horizon), life_id (run-to-failure segment 0, 1, …) and
health_status (critical below --critical hours, warning below --warning, else normal).
The events may come in any order. Horizon and thresholds are stored in the file's metadata.`,
		Example: `  modax-ml label
  modax-ml label --readings readings.parquet --failures failures.parquet -o labeled.parquet
  modax-ml label --horizon 125 --critical 15 --warning 30    # the C-MAPSS convention
  modax-ml label --failures ''                                # no failure log: all right-censored`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := a.cfg.Label
			opts.Readings, opts.Failures, opts.Out = a.path(opts.Readings), a.path(opts.Failures), a.path(opts.Out)
			res, err := label.Run(cmd.Context(), a.env(), opts)
			if err != nil {
				return err
			}
			return a.emit(res, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s: %d rows, %d devices, %d lives, %d failures; critical %d, warning %d, normal %d; censored %d rows\n",
					res.Out, res.Rows, res.Devices, res.Lives, res.Failures,
					res.Health["critical"], res.Health["warning"], res.Health["normal"], res.CensoredRows)
				return err
			})
		},
	}
	fs := cmd.Flags()
	bindString(fs, "readings", "label.readings", def.Readings, "readings file (input)")
	bindString(fs, "failures", "label.failures", def.Failures, "failure events file (input; '' = none, every reading right-censored)")
	bindStringP(fs, "out", "o", "label.out", def.Out, "labeled file (output)")
	bindFloat(fs, "horizon", "label.horizon", def.Horizon, "cap of rul_hours in hours (C-MAPSS: 125)")
	bindFloat(fs, "critical", "label.critical", def.Critical, "health is critical when RUL < this many hours")
	bindFloat(fs, "warning", "label.warning", def.Warning, "health is warning when RUL < this many hours")
	return cmd
}
