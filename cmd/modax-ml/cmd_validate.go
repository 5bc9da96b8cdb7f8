package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/modax/modax-ml/features"
	"github.com/modax/modax-ml/label"
	"github.com/modax/modax-ml/validate"
)

func newValidateCmd(a *app) *cobra.Command {
	def := validate.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check readings and failure events; write a validation report (exit 3 with --fail-on)",
		Long: `Checks the readings (and failure events) and writes a deterministic JSON report
(-o, default validation.json; also on stdout with --output json) and a readable summary on
stderr. Each finding has a severity (error, warning, info), counts and examples (device,
timestamp). Checks: schema and types; null keys; timestamp order; duplicate rows; missing,
NaN and ±Inf values per sensor; constant and near-constant sensors; physical bounds
(--bound); robust outliers (median/MAD per device); sampling gaps; devices shorter than
the window; failure events of unknown devices, outside the readings' range, duplicated
or in the future; the class balance of the labels to come; drift (PSI, KS) against a
reference report (--reference). Every report stores this data's per-sensor distributions,
so it can be the reference of a later run or of the monitor.

--fail-on error (default) exits with code 3 when there is an error, --fail-on warning
also on warnings, --fail-on none never.`,
		Example: `  modax-ml validate
  modax-ml validate --fail-on warning --bound temperature_mean=-40:150 --bound current_mean=0:
  modax-ml validate --reference runs/last/validation.json --output json | jq .drift
  modax-ml validate --readings test.parquet --failures '' -o test-validation.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := a.cfg.Resolve().Validate
			opts.Readings, opts.Failures, opts.Out = a.path(opts.Readings), a.path(opts.Failures), a.path(opts.Out)
			opts.Reference = a.path(opts.Reference)
			rep, err := validate.Run(cmd.Context(), a.env(), opts)
			if rep == nil {
				return err
			}
			switch {
			case !a.cfg.Quiet:
				if serr := rep.WriteSummary(a.errOut, opts.Out); serr != nil && err == nil {
					err = serr
				}
			default: // --quiet: only the warnings and errors, one line each
				for _, f := range rep.Findings {
					if f.Severity == validate.Warning || f.Severity == validate.Error {
						fmt.Fprintf(a.errOut, "validate: %s: %s: %s\n", f.Severity, f.Check, f.Message)
					}
				}
			}
			if eerr := a.emit(rep, func(io.Writer) error { return nil }); eerr != nil && err == nil {
				err = fmt.Errorf("validate: %w", eerr)
			}
			return err
		},
	}
	fs := cmd.Flags()
	bindString(fs, "readings", "validate.readings", def.Readings, "readings file (input)")
	bindString(fs, "failures", "validate.failures", def.Failures, "failure events file (input; '' skips the failure checks and the class balance)")
	bindStringP(fs, "out", "o", "validate.out", def.Out, "report file (output, JSON)")
	bindString(fs, "reference", "validate.reference", def.Reference, "earlier validation report to measure drift against")
	bindString(fs, "fail-on", "validate.fail_on", def.FailOn, "exit 3 on: error, warning or none")
	bindInt(fs, "window", "features.window", features.DefaultOptions().Window, "readings per window of the features stage (features.window; shorter devices are reported)")
	bindFloat(fs, "gap-factor", "validate.gap_factor", def.GapFactor, "report gaps longer than this × the device's median interval")
	bindFloat(fs, "outlier-z", "validate.outlier_z", def.OutlierZ, "robust z-score (median/MAD per device) above which a value is an outlier")
	bindFloat(fs, "max-missing", "validate.max_missing", def.MaxMissing, "share of missing values per device and sensor above which it is a warning")
	bindFloat(fs, "near-constant", "validate.near_constant", def.NearConstant, "share of the most frequent value from which a sensor is near-constant")
	bindFloat(fs, "max-psi", "validate.max_psi", def.MaxPSI, "population stability index above which a sensor drifted")
	bindFloat(fs, "max-ks", "validate.max_ks", def.MaxKS, "Kolmogorov–Smirnov statistic above which a sensor drifted")
	bindStrings(fs, "bound", "validate.bounds", nil, "physical range of a sensor, sensor=min:max (either side may be empty); repeatable")
	bindFloat(fs, "horizon", "label.horizon", label.DefaultOptions().Horizon, "RUL cap in hours for the class balance (label.horizon)")
	bindFloat(fs, "critical", "label.critical", label.DefaultOptions().Critical, "critical threshold in hours for the class balance (label.critical)")
	bindFloat(fs, "warning", "label.warning", label.DefaultOptions().Warning, "warning threshold in hours for the class balance (label.warning)")
	bindInt(fs, "examples", "validate.examples", def.Examples, "examples kept per finding")
	bindInt(fs, "sample-size", "validate.sample_size", def.SampleSize, "values per sensor kept for quantiles and drift (exact below it)")
	return cmd
}
