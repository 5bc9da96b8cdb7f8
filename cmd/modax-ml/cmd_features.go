package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/modax/modax-ml/features"
)

func newFeaturesCmd(a *app) *cobra.Command {
	d := features.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "features",
		Short: "Build leakage-free sliding windows, a train-only scaler, splits and statistical features",
		Long: `Reads labeled.parquet and writes windows.parquet (the LSTM's input: one row per
window of --window readings, labelled with the RUL at its last reading, x scaled
with a scaler fitted on the train split only) and stats.parquet (per window and
sensor: mean, std, min, max, range, skew, kurtosis, rate of change; Welch PSD peak
frequency and energy for vibration axes).

Windows never cross a failure (life_id), never end at a censored reading, never
span a sampling gap longer than --max-gap, and the window ending at a life's last
reading always exists when the life is long enough.

Splits: device (default; whole devices 64/16/20, seeded), random (the design's
train_test_split of windows — leaky: overlapping windows of one device land in
train and test), time (--cutoff), or --test-source for a separate test file.`,
		Example: `  modax-ml features
  modax-ml features --window 30 --features s_2,s_3,s_4 --scaler minmax
  modax-ml features --split time --cutoff 2024-05-01 --val-cutoff 2024-04-15
  modax-ml features -C cmapss --window 30 --test-source labeled_test.parquet --val-size 0
  modax-ml features --condition-columns setting_1,setting_2,setting_3   # C-MAPSS FD002/FD004
  modax-ml features --stats-bucket 1h --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := a.cfg.Features
			o.Labeled = a.path(o.Labeled)
			o.TestSource = a.path(o.TestSource)
			o.Out = a.path(o.Out)
			o.Stats = a.path(o.Stats)
			o.BucketOut = a.path(o.BucketOut)
			res, err := features.Run(cmd.Context(), a.env(), o)
			if err != nil {
				return err
			}
			return a.emit(res, func(w io.Writer) error { return printFeatures(w, res) })
		},
	}
	f := cmd.Flags()
	bindString(f, "labeled", "features.labeled", d.Labeled, "labeled input (modax.labeled/v1)")
	bindString(f, "test-source", "features.test_source", d.TestSource, "separate labeled file whose windows are the test split (e.g. C-MAPSS test_FD001 + RUL_FD001)")
	bindStringP(f, "out", "o", "features.out", d.Out, "windows output")
	bindString(f, "stats", "features.stats", d.Stats, `per-window statistics output ("" for none)`)
	bindDuration(f, "stats-bucket", "features.stats_bucket", d.StatsBucket, "also write statistics per device and time bucket of this length (e.g. 1h; 0: off)")
	bindString(f, "bucket-out", "features.bucket_out", d.BucketOut, "time-bucketed statistics output")
	bindStrings(f, "features", "features.features", d.Features, "sensor columns in model input order (default: all sensors but the condition columns)")
	bindInt(f, "window", "features.window", d.Window, "readings per window")
	bindInt(f, "stride", "features.stride", d.Stride, "readings between window ends")
	bindDuration(f, "max-gap", "features.max_gap", d.MaxGap, "split a life at sampling gaps longer than this (0: 5 × the device's median interval)")
	bindInt(f, "max-fill", "features.max_fill", d.MaxFill, "forward fill at most this many consecutive missing values; windows still missing one are dropped")
	bindString(f, "split", "features.split", d.Split, "device, random (leaky, the design's) or time")
	bindFloat(f, "test-size", "features.test_size", d.TestSize, "test fraction (of devices or windows)")
	bindFloat(f, "val-size", "features.val_size", d.ValSize, "val fraction of what remains after the test split")
	bindInt64(f, "seed", "features.seed", d.Seed, "split seed (numpy RandomState semantics)")
	bindString(f, "cutoff", "features.cutoff", d.Cutoff, "split time: windows ending at or after this time are the test split (RFC 3339 or YYYY-MM-DD)")
	bindString(f, "val-cutoff", "features.val_cutoff", d.ValCutoff, "split time: windows ending in [val-cutoff, cutoff) are the val split")
	bindString(f, "scaler", "features.scaler", d.Scaler, "zscore, minmax or none (fitted on the train split only)")
	bindStrings(f, "condition-columns", "features.condition_columns", d.ConditionColumns, "normalise per operating condition found on these columns (C-MAPSS FD002/FD004: setting_1,setting_2,setting_3)")
	bindInt(f, "condition-decimals", "features.condition_decimals", d.ConditionDecimals, "round the condition columns to this many decimals to find the conditions")
	bindFloat(f, "fs", "features.fs", d.Fs, "sampling frequency in Hz for Welch's PSD")
	bindStrings(f, "vibration", "features.vibration", d.Vibration, `sensors that get PSD features (default: names containing "vibration"; "none")`)
	bindInt(f, "psd-nperseg", "features.psd_nperseg", d.PSDSegment, "Welch segment length (shorter windows use their length)")
	bindInt(f, "workers", "features.workers", d.Workers, "devices processed in parallel (0: GOMAXPROCS)")
	return cmd
}

func printFeatures(w io.Writer, r *features.Result) error {
	sw := r.Split.Windows
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d windows of %d × %d features (train %d, val %d, test %d) from %d devices, split %s\n",
		r.Windows, sw["train"]+sw["val"]+sw["test"], r.Window, len(r.Features), sw["train"], sw["val"], sw["test"], r.Input.Devices, r.Split.Method)
	if r.Split.Leaky {
		fmt.Fprintf(&b, "  warning: %s\n", r.Split.Note)
	}
	fmt.Fprintf(&b, "  features: %s\n", strings.Join(r.Features, ", "))
	kind := r.Scaler.Kind
	if r.Scaler.PerCondition() {
		kind = fmt.Sprintf("%s per operating condition (%d conditions of %s)", kind, len(r.Scaler.Conditions.Centers), strings.Join(r.Scaler.Conditions.Columns, ", "))
	}
	fmt.Fprintf(&b, "  scaler: %s, fitted on %d train rows\n", kind, r.Scaler.FitRows)
	c := r.Input
	fmt.Fprintf(&b, "  input: %d rows, %d lives, %d gap splits, %d segments shorter than the window, %d censored rows\n",
		c.Rows, c.Lives, c.GapSplits, c.ShortSegments, c.CensoredRows)
	fmt.Fprintf(&b, "  missing values: %d forward filled, %d left; windows dropped: %d missing value, %d censored label, %d future label\n",
		c.FilledValues, c.MissingValues, c.DroppedMissing, c.DroppedCensored, c.DroppedFuture)
	if t := r.TestInput; t != nil {
		fmt.Fprintf(&b, "  test source: %d windows from %d devices (%d segments shorter than the window)\n", t.Windows, t.Devices, t.ShortSegments)
	}
	if r.Stats != "" {
		fmt.Fprintf(&b, "%s: %d rows × %d feature columns\n", r.Stats, r.StatsRows, r.StatsColumns)
	}
	if r.BucketStats != "" {
		fmt.Fprintf(&b, "%s: %d device buckets\n", r.BucketStats, r.BucketRows)
	}
	writeHealthIndicators(&b, r.HealthIndicators)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeHealthIndicators prints the features' health-indicator ratings, best
// first.
func writeHealthIndicators(b *strings.Builder, h *features.HealthIndicators) {
	if h == nil || len(h.Features) == 0 {
		return
	}
	if h.Lives < 2 {
		fmt.Fprintf(b, "health indicators: %d run-to-failure %s lives (2 or more needed)\n", h.Lives, h.Split)
		return
	}
	fmt.Fprintf(b, "health indicators over %d run-to-failure %s lives (1 best):\n", h.Lives, h.Split)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  feature\tmonotonicity\ttrendability\tprognosability\tscore")
	num := func(p *float64) string {
		if p == nil {
			return "—"
		}
		return fmt.Sprintf("%.3f", *p)
	}
	for _, q := range h.Features {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", q.Feature, num(q.Monotonicity), num(q.Trendability), num(q.Prognosability), num(q.Score))
	}
	tw.Flush()
}
