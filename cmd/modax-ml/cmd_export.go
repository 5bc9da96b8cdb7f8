package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/modax/modax-ml/export"
)

func newExportCmd(a *app) *cobra.Command {
	d := export.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export a checkpoint to ONNX and validate the file against the native forward pass",
		Long: `Export writes the checkpoint as an ONNX model: input "input" [batch, seq, features] of raw
sensor values (the scaler is embedded as Sub/Div; --no-scaler for the bare network), output
"output" [batch, 1] in hours, opset 13 (or --opset 11/12), dynamic batch axis (--dynamic-seq
for a dynamic sequence axis too), features/window/horizon/thresholds/scaler/version/metrics
in metadata_props. A ridge checkpoint exports as input [batch, features] → Sub/Div → Gemm.

Every export is validated before the file appears: gonnx runs the written file in-process on
real windows of the test split (batch 1 and a full batch) and the outputs must match the
native forward pass within --rtol/--atol; otherwise the export fails (exit 1), names the
worst element, and writes no file.`,
		Example: `  modax-ml export
  modax-ml export --model model.safetensors --windows windows.parquet -o model.onnx --opset 11
  modax-ml export --dynamic-seq --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := a.cfg.Export
			o.Model, o.Windows, o.Stats, o.Out = a.path(o.Model), a.path(o.Windows), a.path(o.Stats), a.path(o.Out)
			if o.Metrics != "" {
				o.Metrics = a.path(o.Metrics)
			}
			res, err := export.Run(cmd.Context(), a.env(), o)
			if err != nil {
				return err
			}
			return a.emit(res, func(w io.Writer) error { return printExport(w, res) })
		},
	}
	f := cmd.Flags()
	bindString(f, "model", "export.model", d.Model, "checkpoint to export")
	bindString(f, "windows", "export.windows", d.Windows, "windows file: validation inputs and the data range in the metadata")
	bindString(f, "stats", "export.stats", d.Stats, "stats file: validation inputs of a ridge model")
	bindString(f, "metrics", "export.metrics", d.Metrics, "metrics.json of this checkpoint to embed when it exists ('' for none)")
	bindStringP(f, "out", "o", "export.out", d.Out, "ONNX file to write")
	bindInt(f, "opset", "export.opset", d.Opset, "ONNX opset: 13, 12 or 11")
	bindBool(f, "dynamic-seq", "export.dynamic_seq", d.DynamicSeq, "dynamic sequence axis (the batch axis is always dynamic)")
	bindBool(f, "no-scaler", "export.no_scaler", d.NoScaler, "export the bare network (input already scaled)")
	bindString(f, "validate-split", "export.validate_split", d.ValidateSplit, "split whose windows validate the export")
	bindInt(f, "validate-batch", "export.validate_batch", d.ValidateBatch, "windows in the full validation batch")
	bindFloat(f, "rtol", "export.rtol", d.RTol, "relative tolerance of the validation")
	bindFloat(f, "atol", "export.atol", d.ATol, "absolute tolerance of the validation")
	return cmd
}

func printExport(w io.Writer, r *export.Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "wrote %s: %s model %s, %.1f KiB, opset %d (IR %d), sha256 %s\n", r.Out, r.ModelType, r.ModelVersion,
		float64(r.Bytes)/1024, r.Opset, r.IRVersion, r.SHA256[:12])
	in := fmt.Sprintf("[batch, %d, %d]", r.Window, r.Features)
	if r.DynamicSeq {
		in = fmt.Sprintf("[batch, seq, %d]", r.Features)
	}
	if r.ModelType == "ridge" {
		in = fmt.Sprintf("[batch, %d]", r.Features)
	}
	scaler := "raw sensor values (scaler embedded)"
	if !r.ScalerEmbedded {
		scaler = "scaled values (no scaler in the graph)"
	}
	fmt.Fprintf(&b, "input %s %s → output [batch, 1] hours\n", in, scaler)
	fmt.Fprintf(&b, "weights sha256 %s (modax.weights_sha256, as in %s)\n", r.WeightsSHA256[:min(12, len(r.WeightsSHA256))], r.Checkpoint)
	if r.Metrics != "" {
		fmt.Fprintf(&b, "metrics embedded from %s\n", r.Metrics)
	}
	v := r.Validation
	fmt.Fprintf(&b, "validated with gonnx against %s on %s (%s split), rtol %g atol %g:\n", v.Native, v.Source, v.Split, v.RTol, v.ATol)
	for _, c := range v.Checks {
		seq := ""
		if c.Seq > 0 {
			seq = fmt.Sprintf(" seq %d", c.Seq)
		}
		fmt.Fprintf(&b, "  batch %d%s: max |diff| %.3g (worst element at %.2g%% of the tolerance) in %.2fs\n", c.Batch, seq, c.MaxAbs, 100*c.Worst, c.Seconds)
	}
	fmt.Fprintf(&b, "done in %.2fs\n", r.Seconds)
	_, err := io.WriteString(w, b.String())
	return err
}
