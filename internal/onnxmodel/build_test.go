package onnxmodel

import (
	"math"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx"
	"github.com/advancedclimatesystems/gonnx/onnx"
	"gorgonia.org/tensor"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/model"
)

func initializer(t *testing.T, mp *onnx.ModelProto, name string) []float32 {
	t.Helper()
	for _, in := range mp.Graph.Initializer {
		if in.Name == name {
			v, err := onnx.ReadFloat32ArrayFromBytes(in.RawData)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no initializer %s", name)
	return nil
}

// TestBuildGateOrder checks the W/R/B layout element by element: ONNX block
// j (i, o, f, c) is PyTorch block [0,3,1,2][j] (of i, f, g, o), and B is the
// reordered b_ih followed by the reordered b_hh.
func TestBuildGateOrder(t *testing.T) {
	arch := model.Arch{Type: model.TypeLSTM, InputSize: 2, Hidden: 3, Layers: 2, FC: 4}
	ck := testCheckpoint(t, arch, 5, 1)
	// Tag every value with its PyTorch gate block: block*1000 + index in block.
	H := arch.Hidden
	for k := range arch.Layers {
		for _, tt := range ck.Params.Tensors[4*k : 4*k+4] {
			per := len(tt.Data) / 4
			for i := range tt.Data {
				tt.Data[i] = float32((i/per)*1000 + i%per)
			}
		}
	}
	mp, err := Build(ck, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k := range arch.Layers {
		in := 2
		if k > 0 {
			in = H
		}
		for name, cols := range map[string]int{"W": in, "R": H} {
			v := initializer(t, mp, "lstm."+name+"_l"+string(rune('0'+k)))
			for j, pt := range []int{0, 3, 1, 2} {
				for i := range H * cols {
					if got, want := v[j*H*cols+i], float32(pt*1000+i); got != want {
						t.Fatalf("layer %d %s block %d[%d] = %v, want %v", k, name, j, i, got, want)
					}
				}
			}
		}
		b := initializer(t, mp, "lstm.B_l"+string(rune('0'+k)))
		for half := range 2 { // b_ih then b_hh, both tagged the same way
			for j, pt := range []int{0, 3, 1, 2} {
				for i := range H {
					if got, want := b[half*4*H+j*H+i], float32(pt*1000+i); got != want {
						t.Fatalf("layer %d B[%d] = %v, want %v", k, half*4*H+j*H+i, got, want)
					}
				}
			}
		}
	}
}

func TestBuildMetadataAndLayout(t *testing.T) {
	arch := model.DefaultArch(4)
	ck := testCheckpoint(t, arch, 30, 2)
	mp, err := Build(ck, BuildOptions{Opset: 11, CheckpointSHA256: "abc", Props: map[string]string{MetaMetrics: `{"test":{"mae":3}}`}})
	if err != nil {
		t.Fatal(err)
	}
	if mp.IrVersion != 6 || Opset(mp) != 11 {
		t.Errorf("IR %d opset %d, want 6 and 11", mp.IrVersion, Opset(mp))
	}
	p := Props(mp)
	for k, want := range map[string]string{
		MetaSchema: Schema, MetaFeatures: `["sensor_0","sensor_1","sensor_2","sensor_3"]`, MetaWindow: "30",
		MetaHorizon: "100", MetaThresholds: `{"critical_hours":10,"warning_hours":50}`, MetaModelVersion: "v-test",
		MetaTrainingRunID: "train-run", MetaCheckpointSHA256: "abc", MetaScalerEmbedded: "true", MetaMetrics: `{"test":{"mae":3}}`,
		MetaModelType: "lstm",
	} {
		if p[k] != want {
			t.Errorf("metadata %s = %q, want %q", k, p[k], want)
		}
	}
	if !strings.Contains(p[MetaScaler], `"kind":"zscore"`) {
		t.Errorf("scaler metadata %q", p[MetaScaler])
	}
	var types []string
	for _, n := range mp.Graph.Node {
		types = append(types, n.OpType)
	}
	if got := strings.Join(types, " "); got != "Sub Div Transpose LSTM Reshape LSTM Reshape Gemm Relu Gemm" {
		t.Errorf("nodes %s", got)
	}
	// gonnx's LSTM finds its outputs by name: the default model's are Y and Y_h.
	lstm := []*onnx.NodeProto{mp.Graph.Node[3], mp.Graph.Node[5]}
	if strings.Join(lstm[0].Output, ",") != "Y" || strings.Join(lstm[1].Output, ",") != ",Y_h" {
		t.Errorf("LSTM outputs %q and %q, want Y and ,Y_h", lstm[0].Output, lstm[1].Output)
	}
	// Setting an exporter-owned key is refused.
	if _, err := Build(ck, BuildOptions{Props: map[string]string{MetaWindow: "3"}}); err == nil {
		t.Error("Build accepted a prop overriding modax.window")
	}
	if _, err := Build(ck, BuildOptions{Opset: 9}); err == nil || !strings.Contains(err.Error(), "opset 9") {
		t.Errorf("opset 9: %v", err)
	}
	// --no-scaler: no Sub/Div, the metadata says so.
	mp, _ = Build(ck, BuildOptions{NoScaler: true})
	if mp.Graph.Node[0].OpType != "Transpose" || Props(mp)[MetaScalerEmbedded] != "false" {
		t.Errorf("no-scaler: first node %s, embedded %s", mp.Graph.Node[0].OpType, Props(mp)[MetaScalerEmbedded])
	}
}

// TestPlainGonnx runs the default two-layer export with gonnx as a Go user
// would (gonnx.NewModel, no output renaming), at batch 1 and 64.
func TestPlainGonnx(t *testing.T) {
	ck := testCheckpoint(t, model.DefaultArch(5), 20, 3)
	mp, err := Build(ck, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Marshal(mp)
	m, err := gonnx.NewModelFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, B := range []int{1, 64} {
		raw, scaled := testInputs(ck, B, 20, 9)
		out, err := m.Run(gonnx.Tensors{"input": tensor.New(tensor.WithShape(B, 20, 5), tensor.WithBacking(raw))})
		if err != nil {
			t.Fatal(err)
		}
		got := out["output"].Data().([]float32)
		want, _ := ck.Params.Forward(scaled, B, 20)
		if d, ok := Compare(got, want, rtol, atol); !ok {
			t.Fatalf("batch %d: worst %+v", B, d)
		}
	}
}

func TestParseRejects(t *testing.T) {
	ck := testCheckpoint(t, model.DefaultArch(3), 10, 4)
	mp, _ := Build(ck, BuildOptions{})
	b, _ := Marshal(mp)
	if _, err := Parse(b); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"truncated": b[:len(b)/2],
		"garbage":   []byte("not an onnx file at all"),
		"empty":     nil,
	} {
		if _, err := Parse(data); err == nil {
			t.Errorf("%s: Parse accepted it", name)
		}
	}
	mp.MetadataProps = nil
	foreign, _ := Marshal(mp)
	if _, err := Parse(foreign); err == nil || !strings.Contains(err.Error(), "modax.schema") {
		t.Errorf("foreign model: %v", err)
	}
}

func TestCheckScaler(t *testing.T) {
	f := []string{"a", "b"}
	ok := dataset.Scaler{Kind: "zscore", Features: f, Offset: []float64{1, 2}, Scale: []float64{1, 3}}
	for _, tc := range []struct {
		name string
		s    dataset.Scaler
		raw  string
		want string
	}{
		{"ok", ok, `{"kind":"zscore","features":["a","b"],"offset":[1,2],"scale":[1,3],"fit_split":"train","fit_rows":9}`, ""},
		{"per-condition kind", dataset.Scaler{Kind: "zscore_by_condition"}, "", "cannot be embedded"},
		{"per-condition field", ok, `{"kind":"zscore","offset":[1,2],"scale":[1,3],"conditions":[{"offset":[1]}]}`, `"conditions"`},
		{"zero scale", dataset.Scaler{Kind: "minmax", Offset: []float64{1, 2}, Scale: []float64{0, 1}}, "", "non-zero"},
		{"nan", dataset.Scaler{Kind: "minmax", Offset: []float64{math.NaN(), 2}, Scale: []float64{1, 1}}, "", "finite"},
		{"length", dataset.Scaler{Kind: "zscore", Offset: []float64{1}, Scale: []float64{1}}, "", "2 features"},
		{"order", dataset.Scaler{Kind: "zscore", Features: []string{"b", "a"}, Offset: []float64{1, 2}, Scale: []float64{1, 1}}, "", "feature 0"},
		{"none", dataset.Scaler{Kind: "none"}, "", ""},
	} {
		err := CheckScaler(tc.s, f, tc.raw)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		got, want []float32
		ok        bool
		idx       int
	}{
		{[]float32{1, 100}, []float32{1, 100.05}, true, 1},
		{[]float32{1, 100}, []float32{1, 100.2}, false, 1},
		{[]float32{0, 0}, []float32{2e-5, 5e-6}, false, 0},
		{[]float32{float32(math.NaN()), 1}, []float32{1, 1}, false, 0},
		{[]float32{1}, []float32{1, 2}, false, -1},
	} {
		d, ok := Compare(tc.got, tc.want, 1e-3, 1e-5)
		if ok != tc.ok || d.Index != tc.idx {
			t.Errorf("Compare(%v, %v) = %+v %v, want ok %v at %d", tc.got, tc.want, d, ok, tc.ok, tc.idx)
		}
	}
}
