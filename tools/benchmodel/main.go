// Command benchmodel writes the model the predict benchmarks run: the
// design's LSTMRULPredictor (2×128 LSTM, FC 64) on 14 features and windows of
// 30 steps (the C-MAPSS setup), PyTorch-initialised, as model.safetensors and
// the exported model.onnx (opset 13, scaler embedded), and with -windows N a
// windows.parquet of N windows per split for it.
//
//	go run ./tools/benchmodel -o DIR [-windows N]
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/modax/modax-ml/internal/fixture"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/onnxmodel"
)

func main() {
	dir := flag.String("o", ".", "output directory")
	features := flag.Int("features", 14, "input features")
	window := flag.Int("window", 30, "time steps per window")
	windows := flag.Int("windows", 0, "also write windows.parquet with this many windows per split")
	flag.Parse()
	if err := run(*dir, *features, *window, *windows); err != nil {
		fmt.Fprintln(os.Stderr, "benchmodel:", err)
		os.Exit(1)
	}
}

func run(dir string, features, window, windows int) error {
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
	return fixture.WriteONNX(filepath.Join(dir, "model.onnx"), ckpt, onnxmodel.BuildOptions{})
}
