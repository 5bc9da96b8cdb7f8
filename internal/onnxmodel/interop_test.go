package onnxmodel

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/testutil"
)

// testCheckpoint returns a checkpoint of arch with PyTorch-style random
// weights, a z-score scaler far from identity, and window T.
func testCheckpoint(t testing.TB, arch model.Arch, T int, seed uint64) *model.Checkpoint {
	t.Helper()
	p, err := model.NewParams(arch)
	if err != nil {
		t.Fatal(err)
	}
	p.Init(seed)
	rng := rand.New(rand.NewPCG(seed, 99))
	if arch.Type == model.TypeRidge {
		for _, tt := range p.Tensors {
			for i := range tt.Data {
				tt.Data[i] = float32(rng.NormFloat64())
			}
		}
	}
	// Output in hours, as a trainer that scales targets by the horizon saves
	// it (CONTRACTS.md: fc2 multiplied by the scale), around 50 h.
	if w, ok := p.Lookup("fc2.weight"); ok {
		for i := range w.Data {
			w.Data[i] *= 100
		}
		b := p.Get("fc2.bias")
		b.Data[0] = b.Data[0]*100 + 50
	}
	F := arch.InputSize
	feats := make([]string, F)
	sc := dataset.Scaler{Kind: "zscore", FitSplit: "train"}
	for j := range feats {
		feats[j] = fmt.Sprintf("sensor_%d", j)
		sc.Offset = append(sc.Offset, 100*rng.Float64()-20)
		sc.Scale = append(sc.Scale, 0.5+5*rng.Float64())
	}
	sc.Features = feats
	return &model.Checkpoint{Params: p, Info: model.Info{Arch: arch, Features: feats, Window: T, Scaler: sc,
		Horizon: 100, Thresholds: dataset.DefaultThresholds, ModelVersion: "v-test", RunID: "train-run", CreatedAt: "2026-01-02T03:04:05Z"}}
}

// testInputs returns b windows of length T: raw sensor values (the ONNX
// input) and the same values scaled in float64 from the float32 raw values
// (the native input).
func testInputs(ck *model.Checkpoint, b, T int, seed uint64) (raw, scaled []float32) {
	rng := rand.New(rand.NewPCG(seed, 7))
	F := ck.Params.Arch.InputSize
	raw = make([]float32, b*T*F)
	scaled = make([]float32, len(raw))
	for i := range raw {
		j := i % F
		raw[i] = float32(ck.Info.Scaler.Invert(j, rng.NormFloat64()))
		scaled[i] = float32(ck.Info.Scaler.Apply(j, float64(raw[i])))
	}
	return raw, scaled
}

func writeF32(t testing.TB, path string, x []float32) {
	t.Helper()
	b := make([]byte, 0, 4*len(x))
	for _, v := range x {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readF32(t testing.TB, path string, n int) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 4*n {
		t.Fatalf("%s: %d bytes, want %d", path, len(b), 4*n)
	}
	y := make([]float32, n)
	for i := range y {
		y[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return y
}

func command(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(context.Background(), name, args...)
	cmd.Env = append(os.Environ(), "OPENBLAS_NUM_THREADS=1")
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			msg = string(ee.Stderr)
		}
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, out, msg)
	}
	return out
}

type checkReport struct {
	IRVersion   int64            `json:"ir_version"`
	Opsets      map[string]int   `json:"opsets"`
	Inputs      map[string][]any `json:"inputs"`
	Outputs     map[string][]any `json:"outputs"`
	Nodes       []string         `json:"nodes"`
	LSTMOutputs [][]string       `json:"lstm_outputs"`
	Metadata    []string         `json:"metadata"`
}

// onnxCheck runs the ONNX checker's full check on path.
func onnxCheck(t testing.TB, py, path string) checkReport {
	t.Helper()
	out := command(t, py, filepath.Join(testutil.RepoRoot(t), "tools", "interop", "onnx_check.py"), path)
	var r checkReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("onnx_check output %q: %v", out, err)
	}
	return r
}

// ortRun runs path in ONNX Runtime on x of the given dims.
func ortRun(t testing.TB, dir, node, path string, x []float32, dims ...int) []float32 {
	t.Helper()
	tmp := t.TempDir()
	xp, yp := filepath.Join(tmp, "x.f32"), filepath.Join(tmp, "y.f32")
	writeF32(t, xp, x)
	ds := make([]string, len(dims))
	for i, d := range dims {
		ds[i] = strconv.Itoa(d)
	}
	command(t, node, filepath.Join(dir, "ort_run.js"), "run", path, xp, strings.Join(ds, ","), yp)
	return readF32(t, yp, dims[0])
}

// torchRun runs the design's LSTMRULPredictor (or the ridge nn.Linear) loaded
// from the safetensors checkpoint at ckpt on scaled inputs.
func torchRun(t testing.TB, py, ckpt string, x []float32, b, T int) []float32 {
	t.Helper()
	tmp := t.TempDir()
	xp, yp := filepath.Join(tmp, "x.f32"), filepath.Join(tmp, "y.f32")
	writeF32(t, xp, x)
	command(t, py, filepath.Join(testutil.RepoRoot(t), "tools", "interop", "torch_forward.py"), ckpt, xp, strconv.Itoa(b), strconv.Itoa(T), yp)
	return readF32(t, yp, b)
}

const rtol, atol = 1e-3, 1e-5

// TestInterop writes checkpoints and their ONNX exports and checks that the
// ONNX checker accepts them and that ONNX Runtime, PyTorch (the checkpoint
// loaded into LSTMRULPredictor), gonnx and our reference forward pass agree.
func TestInterop(t *testing.T) {
	py := testutil.Python(t, "torch", "onnx", "numpy")
	idir, node := testutil.InteropDir(t)
	lstm := model.Arch{Type: model.TypeLSTM, InputSize: 5, Hidden: 16, Layers: 2, FC: 8, Dropout: 0.2}
	for _, tc := range []struct {
		name  string
		arch  model.Arch
		opts  BuildOptions
		T, rT int // window and the sequence length run (differs with DynamicSeq)
	}{
		{"lstm-opset13", lstm, BuildOptions{Opset: 13}, 12, 12},
		{"lstm-opset11", lstm, BuildOptions{Opset: 11}, 12, 12},
		{"lstm-dynamic-seq", lstm, BuildOptions{Opset: 13, DynamicSeq: true}, 12, 7},
		{"lstm-no-scaler-opset11", lstm, BuildOptions{Opset: 11, NoScaler: true}, 12, 12},
		{"lstm-1layer", model.Arch{Type: model.TypeLSTM, InputSize: 3, Hidden: 6, Layers: 1, FC: 4}, BuildOptions{}, 9, 9},
		{"lstm-3layer", model.Arch{Type: model.TypeLSTM, InputSize: 3, Hidden: 6, Layers: 3, FC: 4}, BuildOptions{Opset: 11}, 9, 9},
		{"ridge-opset13", model.Arch{Type: model.TypeRidge, InputSize: 7}, BuildOptions{}, 1, 1},
		{"ridge-opset11", model.Arch{Type: model.TypeRidge, InputSize: 7}, BuildOptions{Opset: 11}, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // mostly waiting for Python and Node
			dir := t.TempDir()
			ck := testCheckpoint(t, tc.arch, tc.T, 5)
			ckpt := filepath.Join(dir, "model.safetensors")
			if err := model.Save(ckpt, ck); err != nil {
				t.Fatal(err)
			}
			mp, err := Build(ck, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Marshal(mp)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "model.onnx")
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}

			rep := onnxCheck(t, py, path)
			opset := tc.opts.Opset
			if opset == 0 {
				opset = 13
			}
			if rep.Opsets["ai.onnx"] != opset || rep.IRVersion != Opsets[opset] {
				t.Errorf("opset %v IR %d, want %d and %d", rep.Opsets, rep.IRVersion, opset, Opsets[opset])
			}
			wantIn := fmt.Sprint([]any{"batch", float64(tc.T), float64(tc.arch.InputSize)})
			switch {
			case tc.arch.Type == model.TypeRidge:
				wantIn = fmt.Sprint([]any{"batch", float64(tc.arch.InputSize)})
			case tc.opts.DynamicSeq:
				wantIn = fmt.Sprint([]any{"batch", "seq", float64(tc.arch.InputSize)})
			}
			if got := fmt.Sprint(rep.Inputs[InputName]); got != wantIn {
				t.Errorf("input dims %s, want %s", got, wantIn)
			}
			if got := fmt.Sprint(rep.Outputs[OutputName]); got != "[batch 1]" {
				t.Errorf("inferred output dims %s, want [batch 1]", got)
			}
			for _, n := range rep.Nodes {
				if n == "Dropout" {
					t.Errorf("graph has a Dropout node: %v", rep.Nodes)
				}
			}
			if tc.arch.Type == model.TypeLSTM && strings.Count(strings.Join(rep.Nodes, " "), "LSTM") != tc.arch.Layers {
				t.Errorf("nodes %v: want one LSTM per layer", rep.Nodes)
			}

			for _, B := range []int{1, 33} {
				raw, scaled := testInputs(ck, B, tc.rT, uint64(B))
				onnxIn := raw
				if tc.opts.NoScaler {
					onnxIn = scaled
				}
				dims := []int{B, tc.rT, tc.arch.InputSize}
				if tc.arch.Type == model.TypeRidge {
					dims = []int{B, tc.arch.InputSize}
				}
				native, err := ck.Params.Forward(scaled, B, tc.rT)
				if err != nil {
					t.Fatal(err)
				}
				ort := ortRun(t, idir, node, path, onnxIn, dims...)
				pt := native
				if B > 1 { // one PyTorch run per case: it takes a second to start
					pt = torchRun(t, py, ckpt, scaled, B, tc.rT)
				}
				r, err := NewRunner(mp)
				if err != nil {
					t.Fatal(err)
				}
				gn, err := r.Run(onnxIn, dims...)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range []struct {
					name      string
					got, want []float32
					rtol      float64
				}{
					{"onnxruntime vs forward", ort, native, rtol},
					{"pytorch vs forward", pt, native, 1e-5},
					{"onnxruntime vs pytorch", ort, pt, rtol},
					{"gonnx vs forward", gn, native, rtol},
				} {
					if d, ok := Compare(c.got, c.want, c.rtol, atol); !ok {
						t.Errorf("batch %d: %s: worst element %d: %.7g vs %.7g (|diff| %.3g)", B, c.name, d.Index, d.Got, d.Want, d.Abs)
					}
				}
				// The outputs are hours near the bias, not all equal: the check compares something.
				if B > 1 && native[0] == native[1] {
					t.Errorf("degenerate test: equal outputs %v", native[:2])
				}
			}
		})
	}
}

// TestInteropWrongGateOrder proves that the comparisons can fail: an export
// that keeps PyTorch's gate order (i,f,g,o) instead of ONNX's (i,o,f,c) is a
// valid ONNX model that ONNX Runtime runs, and its outputs differ from
// PyTorch's and our forward pass beyond the tolerance.
func TestInteropWrongGateOrder(t *testing.T) {
	py := testutil.Python(t, "torch", "onnx", "numpy")
	idir, node := testutil.InteropDir(t)
	arch := model.Arch{Type: model.TypeLSTM, InputSize: 5, Hidden: 16, Layers: 2, FC: 8}
	for _, perm := range [][4]int{{0, 1, 2, 3}, {0, 3, 2, 1}} {
		t.Run(fmt.Sprint(perm), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			ck := testCheckpoint(t, arch, 12, 5)
			ckpt := filepath.Join(dir, "model.safetensors")
			if err := model.Save(ckpt, ck); err != nil {
				t.Fatal(err)
			}
			mp, err := Build(ck, BuildOptions{gatePerm: &perm})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := Marshal(mp)
			path := filepath.Join(dir, "model.onnx")
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			onnxCheck(t, py, path) // structurally valid
			raw, scaled := testInputs(ck, 16, 12, 1)
			ort := ortRun(t, idir, node, path, raw, 16, 12, 5)
			pt := torchRun(t, py, ckpt, scaled, 16, 12)
			native, _ := ck.Params.Forward(scaled, 16, 12)
			if d, ok := Compare(pt, native, 1e-5, atol); !ok {
				t.Fatalf("pytorch vs forward disagree (%+v): the test's premise is broken", d)
			}
			d0, _ := Compare(ort, pt, rtol, atol)
			t.Logf("wrong gate order %v: ONNX Runtime vs PyTorch worst element %d: %.4g vs %.4g", perm, d0.Index, d0.Got, d0.Want)
			if d, ok := Compare(ort, pt, rtol, atol); ok {
				t.Fatalf("wrong gate order %v passed the ONNX Runtime vs PyTorch comparison (worst %+v)", perm, d)
			}
			r, err := NewRunner(mp)
			if err != nil {
				t.Fatal(err)
			}
			gn, err := r.Run(raw, 16, 12, 5)
			if err != nil {
				t.Fatal(err)
			}
			if d, ok := Compare(gn, native, rtol, atol); ok {
				t.Fatalf("wrong gate order %v passed the gonnx vs forward comparison (worst %+v)", perm, d)
			}
		})
	}
}
