// Command benchmodel writes the model the predict and score benchmarks run:
// the design's LSTMRULPredictor (2×128 LSTM, FC 64) on 14 features and
// windows of 30 steps (the C-MAPSS setup) by default, PyTorch-initialised, as
// model.safetensors and the exported model.onnx (opset 13, scaler embedded);
// with -windows N a windows.parquet of N windows per split for it, and with
// -devices N a readings.parquet of N devices of tenant default with
// -readings hourly readings each, the last one an hour before -at (what
// `modax-ml score --readings` scores).
//
//	go run ./tools/benchmodel -o DIR [-features F -window T] [-windows N] [-devices N -readings R -at TIME]
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/modax/modax-ml/internal/fixture"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/onnxmodel"
)

func main() {
	dir := flag.String("o", ".", "output directory")
	features := flag.Int("features", 14, "input features")
	window := flag.Int("window", 30, "time steps per window")
	windows := flag.Int("windows", 0, "also write windows.parquet with this many windows per split")
	devices := flag.Int("devices", 0, "also write readings.parquet with this many devices")
	readings := flag.Int("readings", 60, "hourly readings per device of readings.parquet")
	at := flag.String("at", "2026-03-01T00:00:00Z", "readings.parquet's readings end an hour before this time (RFC 3339)")
	flag.Parse()
	end, err := time.Parse(time.RFC3339, *at)
	if err == nil {
		err = run(*dir, *features, *window, *windows, *devices, *readings, end.Add(-time.Hour))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchmodel:", err)
		os.Exit(1)
	}
}

func run(dir string, features, window, windows, devices, readings int, end time.Time) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ck := fixture.Checkpoint(model.DefaultArch(features), window, 1)
	ckpt := filepath.Join(dir, "model.safetensors")
	if err := model.Save(ckpt, ck); err != nil {
		return err
	}
	if windows > 0 {
		if err := fixture.WriteWindows(filepath.Join(dir, "windows.parquet"), ck, windows, 2); err != nil {
			return err
		}
	}
	if devices > 0 {
		if err := fixture.WriteReadings(filepath.Join(dir, "readings.parquet"), ck, "default", devices, readings, end, 1); err != nil {
			return err
		}
	}
	return fixture.WriteONNX(filepath.Join(dir, "model.onnx"), ckpt, onnxmodel.BuildOptions{})
}
