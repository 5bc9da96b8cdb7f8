package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/modax/modax-ml/internal/infer"
	"github.com/modax/modax-ml/predict"
)

func newPredictCmd(a *app) *cobra.Command {
	d := predict.DefaultOptions()
	var toDB bool
	cmd := &cobra.Command{
		Use:   "predict",
		Short: "Run a trained model over a windows file and write predictions",
		Long: `predict runs a checkpoint (model.safetensors, native Go forward pass, batched and
parallel) or an exported model.onnx (gonnx) over a windows file and writes
predictions.parquet: per window the true and predicted RUL, the true and
predicted health class, the model version and the prediction interval
(rul_lower/rul_upper at --interval-level, clipped to [0, horizon]) when the
model is calibrated; an uncalibrated model predicts without intervals and says
so once.

The windows must have the model's features, in the model's order, and its window
length; otherwise predict refuses with a message saying what differs. Windows
scaled with another scaler than the model's are re-scaled to the model's.`,
		Example: `  modax-ml predict
  modax-ml predict --split test --last-window-only
  modax-ml predict --model runs/x/model.safetensors --windows new-windows.parquet -o new-predictions.parquet
  modax-ml predict --model model.onnx -o onnx-predictions.parquet`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := a.cfg.Predict
			o.Model = a.path(o.Model)
			o.Windows = a.path(o.Windows)
			o.Out = a.path(o.Out)
			res, err := predict.Run(cmd.Context(), a.env(), o)
			if err != nil {
				return err
			}
			if toDB {
				if err := predictionsToDB(cmd.Context(), a, o.Out); err != nil {
					return err
				}
			}
			return a.emit(res, func(w io.Writer) error { return writePredictText(w, &res.Summary) })
		},
	}
	f := cmd.Flags()
	f.BoolVar(&toDB, "to-db", false, "also insert the predictions into db.prediction_table (rul_predictions), where monitor reads them")
	bindString(f, "model", "predict.model", d.Model, "model: a checkpoint (model.safetensors) or an exported model.onnx")
	bindString(f, "windows", "predict.windows", d.Windows, "windows file to predict")
	bindStringP(f, "out", "o", "predict.out", d.Out, "predictions file to write")
	bindString(f, "split", "predict.split", d.Split, "windows of this split: test, val, train (or a comma list), or all")
	bindBool(f, "last-window-only", "predict.last_window_only", d.LastWindowOnly, "one prediction per device life: its last window (the C-MAPSS protocol)")
	bindInt(f, "batch-size", "predict.batch_size", d.BatchSize, "windows per forward pass")
	bindInt(f, "workers", "predict.workers", d.Workers, "goroutines of the forward pass (0: one per core)")
	bindFloat(f, "interval-level", "predict.interval_level", d.IntervalLevel, "coverage level of the rul_lower/rul_upper interval (one the model is calibrated at)")
	return cmd
}

func writePredictText(w io.Writer, s *infer.Summary) error {
	var parts []string
	for _, k := range sortedSplitKeys(s.Splits) {
		parts = append(parts, fmt.Sprintf("%s %d", k, s.Splits[k]))
	}
	fmt.Fprintf(w, "predicted %d windows of %d devices (%s) with %s %s in %.2fs (%.0f windows/s)\n",
		s.Rows, s.Devices, strings.Join(parts, ", "), s.Model.Path, s.Model.ModelVersion, s.Seconds, s.WindowsPerSecond)
	if s.IntervalLevel != nil {
		fmt.Fprintf(w, "intervals: rul_lower/rul_upper at level %g\n", *s.IntervalLevel)
	} else if s.IntervalNote != "" {
		fmt.Fprintf(w, "note: %s: no intervals\n", s.IntervalNote)
	}
	if s.Rescaled {
		fmt.Fprintln(w, "note: the windows were scaled with another scaler than the model's and were re-scaled to the model's")
	}
	fmt.Fprintf(w, "wrote %s\n", s.Predictions)
	return nil
}

func sortedSplitKeys(m map[string]int) []string {
	rank := map[string]int{"test": 0, "val": 1, "train": 2}
	r := func(k string) int {
		if v, ok := rank[k]; ok {
			return v
		}
		return 3
	}
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(r(a), r(b)), cmp.Compare(a, b)) })
	return keys
}
