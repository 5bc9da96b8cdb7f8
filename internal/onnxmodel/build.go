// Package onnxmodel writes a modax-ml checkpoint as an ONNX model and reads it
// back: the graph layout of DESIGN.md §3, its metadata, and an in-process
// check with gonnx. Both the export and the deploy stages use it.
//
// Graph of an LSTM checkpoint (L layers, hidden H, FC units; opset 11–13):
//
//	input  [batch, seq, F]  raw sensor values, float32
//	  Sub(scaler.offset) → Div(scaler.scale)        (omitted with NoScaler)
//	  Transpose(perm 1,0,2)                          [seq, batch, F]
//	  LSTM l0 (W, R, B; gates i,o,f,c) → Y           [seq, 1, batch, H]
//	  Reshape(0,-1,H)                                [seq, batch, H]
//	  …                                              (one LSTM per layer)
//	  LSTM l(L-1) → Y_h                              [1, batch, H]
//	  Reshape(-1,H)                                  [batch, H]
//	  Gemm(fc1, transB) → Relu → Gemm(fc2, transB)
//	output [batch, 1]  RUL in hours
//
// A ridge checkpoint becomes input [batch, F] → Sub → Div → Gemm → output.
//
// LSTM outputs are named Y and Y_h because gonnx's LSTM finds its outputs by
// those names; with three or more layers the inner layers need other names
// (tensor names are unique in a graph), and Runner maps them positionally.
package onnxmodel

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/model"
)

// Tensor names of the graph's interface.
const (
	InputName  = "input"
	OutputName = "output"
)

// Schema is the value of the MetaSchema property.
const Schema = "modax.onnx/v1"

// Metadata property keys (ModelProto.metadata_props). Structured values are JSON.
const (
	MetaSchema           = "modax.schema"
	MetaModelType        = "modax.model_type"
	MetaArch             = "modax.arch"
	MetaFeatures         = "modax.features" // JSON list, the order of the input's last axis
	MetaWindow           = "modax.window"
	MetaHorizon          = "modax.horizon_hours"
	MetaThresholds       = "modax.thresholds"
	MetaScaler           = "modax.scaler"
	MetaScalerEmbedded   = "modax.scaler_embedded" // "true": input is raw sensor values
	MetaModelVersion     = "modax.model_version"
	MetaTrainingRunID    = "modax.training_run_id"
	MetaCheckpointSHA256 = "modax.checkpoint_sha256"
	MetaMetrics          = "modax.metrics" // JSON: metrics.json's splits, when given
	MetaMetricsSHA256    = "modax.metrics_sha256"
	MetaDataRange        = "modax.data_range" // JSON: windows per split with time range
	MetaRunID            = "modax.run_id"     // the export run
	MetaCreatedAt        = "modax.created_at"
	MetaToolVersion      = "modax.tool_version"
	MetaInputLayout      = "modax.input_layout"
	MetaOutputUnit       = "modax.output_unit"
	MetaCalibration      = model.MetaCalibration // JSON: conformal.Calibration, when calibrated
)

// Opsets lists the supported opset versions with their IR versions: opset 11
// shipped with ONNX 1.6 (IR 6), opsets 12 and 13 with ONNX 1.7/1.8 (IR 7).
var Opsets = map[int]int64{11: 6, 12: 7, 13: 7}

// DefaultOpset is the opset written unless asked otherwise.
const DefaultOpset = 13

// BuildOptions configure Build.
type BuildOptions struct {
	Opset int // 11, 12 or 13 (0 means DefaultOpset)
	// DynamicSeq makes the sequence axis dynamic ("seq"); otherwise it is the
	// checkpoint's window.
	DynamicSeq bool
	// NoScaler exports the bare network: the input is already scaled.
	NoScaler bool
	// Props are extra metadata_props (e.g. MetaMetrics, MetaRunID).
	Props map[string]string
	// CheckpointSHA256 is recorded as MetaCheckpointSHA256.
	CheckpointSHA256 string

	// gatePerm overrides the PyTorch→ONNX gate reordering (tests only, to
	// prove that a wrong order is caught).
	gatePerm *[4]int
}

// onnxGates maps ONNX's LSTM gate blocks i, o, f, c to PyTorch's blocks
// i, f, g, o: ONNX block j is PyTorch block onnxGates[j].
var onnxGates = [4]int{0, 3, 1, 2}

// CheckScaler reports whether s can be embedded as Sub/Div nodes for the
// given features: a global per-feature affine map, nothing else. raw is the
// scaler's JSON as stored in a file's metadata (may be empty); keys beyond
// those of dataset.Scaler mean a scaler this exporter does not know how to
// embed (e.g. per-operating-condition normalisation) and are refused.
func CheckScaler(s dataset.Scaler, features []string, raw string) error {
	switch s.Kind {
	case "zscore", "minmax", "none":
	default:
		return fmt.Errorf("scaler kind %q cannot be embedded as Sub/Div (only a global per-feature zscore/minmax scaler can); export with --no-scaler and scale the inputs before the model", s.Kind)
	}
	if raw != "" {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			return fmt.Errorf("scaler metadata: %w", err)
		}
		known := map[string]bool{"kind": true, "features": true, "offset": true, "scale": true, "fit_split": true, "fit_rows": true}
		for k, v := range m {
			if !known[k] && string(v) != "null" && string(v) != "[]" && string(v) != "{}" {
				return fmt.Errorf("scaler has %q, which a Sub/Div pair cannot express (a per-operating-condition scaler?); export with --no-scaler and scale the inputs before the model", k)
			}
		}
	}
	if s.Kind == "none" {
		return nil
	}
	if len(s.Offset) != len(features) || len(s.Scale) != len(features) {
		return fmt.Errorf("scaler has %d offsets and %d scales for %d features", len(s.Offset), len(s.Scale), len(features))
	}
	if len(s.Features) > 0 {
		if len(s.Features) != len(features) {
			return fmt.Errorf("scaler is for %d features, model has %d", len(s.Features), len(features))
		}
		for i := range features {
			if s.Features[i] != features[i] {
				return fmt.Errorf("scaler feature %d is %q, model feature %d is %q", i, s.Features[i], i, features[i])
			}
		}
	}
	for j := range features {
		o, sc := s.Offset[j], s.Scale[j]
		if math.IsNaN(o) || math.IsInf(o, 0) || math.IsNaN(sc) || math.IsInf(sc, 0) || sc == 0 {
			return fmt.Errorf("scaler of feature %s: offset %g, scale %g (need finite values and a non-zero scale)", features[j], o, sc)
		}
	}
	return nil
}

// Build returns the ONNX model of a checkpoint.
func Build(ck *model.Checkpoint, o BuildOptions) (*onnx.ModelProto, error) {
	if o.Opset == 0 {
		o.Opset = DefaultOpset
	}
	ir, ok := Opsets[o.Opset]
	if !ok {
		return nil, fmt.Errorf("opset %d is not supported (want 11, 12 or 13)", o.Opset)
	}
	in := ck.Info
	p := ck.Params
	a := p.Arch
	if err := a.Validate(); err != nil {
		return nil, err
	}
	if len(in.Features) != a.InputSize {
		return nil, fmt.Errorf("checkpoint has %d features for input size %d", len(in.Features), a.InputSize)
	}
	embed := !o.NoScaler && in.Scaler.Kind != "none"
	if !o.NoScaler {
		if err := CheckScaler(in.Scaler, in.Features, ""); err != nil {
			return nil, err
		}
	}
	g := &graphBuilder{g: &onnx.GraphProto{Name: "LSTMRULPredictor"}}
	if a.Type == model.TypeRidge {
		g.g.Name = "RidgeRULPredictor"
	}
	F := a.InputSize
	var x string
	switch a.Type {
	case model.TypeLSTM:
		seq := dim(int64(in.Window))
		if o.DynamicSeq || in.Window < 1 {
			seq = dimParam("seq")
		}
		g.g.Input = []*onnx.ValueInfoProto{valueInfo(InputName, dimParam("batch"), seq, dim(int64(F)))}
		x = g.scaler(InputName, in.Scaler, embed)
		x = g.node("Transpose", []string{x}, "input_seq_major", attrInts("perm", 1, 0, 2))
		x = g.lstm(p, x, o.gatePerm)
		x = g.gemm(x, p.Get("fc1.weight"), p.Get("fc1.bias"), "fc1_out")
		x = g.node("Relu", []string{x}, "fc1_relu")
		g.gemm(x, p.Get("fc2.weight"), p.Get("fc2.bias"), OutputName)
	case model.TypeRidge:
		g.g.Input = []*onnx.ValueInfoProto{valueInfo(InputName, dimParam("batch"), dim(int64(F)))}
		x = g.scaler(InputName, in.Scaler, embed)
		g.gemm(x, p.Get("ridge.weight"), p.Get("ridge.bias"), OutputName)
	default:
		return nil, fmt.Errorf("model type %q cannot be exported", a.Type)
	}
	g.g.Output = []*onnx.ValueInfoProto{valueInfo(OutputName, dimParam("batch"), dim(1))}

	props, err := metadata(ck, o, embed)
	if err != nil {
		return nil, err
	}
	mp := &onnx.ModelProto{
		IrVersion:       ir,
		OpsetImport:     []*onnx.OperatorSetIdProto{{Domain: "", Version: int64(o.Opset)}},
		ProducerName:    "modax-ml",
		ProducerVersion: in.ToolVersion,
		DocString:       docString(a, embed),
		Graph:           g.g,
		MetadataProps:   props,
	}
	if v, ok := o.Props[MetaToolVersion]; ok && v != "" {
		mp.ProducerVersion = v
	}
	return mp, nil
}

func docString(a model.Arch, embed bool) string {
	in := "scaled inputs"
	if embed {
		in = "raw sensor values (the scaler is embedded)"
	}
	if a.Type == model.TypeRidge {
		return fmt.Sprintf("modax-ml ridge RUL model: input [batch, %d] %s, output [batch, 1] RUL in hours", a.InputSize, in)
	}
	return fmt.Sprintf("modax-ml LSTMRULPredictor (hidden %d, %d layers, fc %d): input [batch, seq, %d] %s, output [batch, 1] RUL in hours",
		a.Hidden, a.Layers, a.FC, a.InputSize, in)
}

func metadata(ck *model.Checkpoint, o BuildOptions, embed bool) ([]*onnx.StringStringEntryProto, error) {
	in := ck.Info
	js := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err) // plain structs and slices always marshal
		}
		return string(b)
	}
	layout := "batch,seq,features"
	if ck.Params.Arch.Type == model.TypeRidge {
		layout = "batch,features"
	}
	if embed {
		layout += " raw sensor values"
	} else {
		layout += " scaled values"
	}
	m := map[string]string{
		MetaSchema:         Schema,
		MetaModelType:      ck.Params.Arch.Type,
		MetaArch:           js(ck.Params.Arch),
		MetaFeatures:       js(in.Features),
		MetaWindow:         strconv.Itoa(in.Window),
		MetaHorizon:        strconv.FormatFloat(in.Horizon, 'g', -1, 64),
		MetaThresholds:     js(in.Thresholds),
		MetaScaler:         js(in.Scaler),
		MetaScalerEmbedded: strconv.FormatBool(embed),
		MetaModelVersion:   in.ModelVersion,
		MetaInputLayout:    layout,
		MetaOutputUnit:     "hours",
		MetaWeightsSHA256:  model.WeightsDigest(ck.Params.Tensors),
	}
	if in.RunID != "" {
		m[MetaTrainingRunID] = in.RunID
	}
	if o.CheckpointSHA256 != "" {
		m[MetaCheckpointSHA256] = o.CheckpointSHA256
	}
	if in.Calibration != nil {
		m[MetaCalibration] = js(in.Calibration)
	}
	for k, v := range o.Props {
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("metadata %s is set by the exporter", k)
		}
		m[k] = v
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]*onnx.StringStringEntryProto, 0, len(m))
	for _, k := range keys {
		if m[k] == "" {
			continue
		}
		out = append(out, &onnx.StringStringEntryProto{Key: k, Value: m[k]})
	}
	return out, nil
}

// Marshal encodes mp deterministically (the same model gives the same bytes).
func Marshal(mp *onnx.ModelProto) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(mp)
	if err != nil {
		return nil, fmt.Errorf("encode onnx: %w", err)
	}
	return b, nil
}

// Parse decodes an ONNX file's bytes and checks that it is a modax-ml model
// this package can read, and that its initializers match the weights digest
// it records (VerifyWeights: a mismatch wraps exitcode.ErrValidation and
// model.ErrWeightsDigest; a model without a digest still parses).
func Parse(b []byte) (*onnx.ModelProto, error) {
	mp := &onnx.ModelProto{}
	if err := proto.Unmarshal(b, mp); err != nil {
		return nil, fmt.Errorf("not an ONNX model (truncated or corrupt?): %w", err)
	}
	if mp.GetGraph() == nil || len(mp.GetGraph().GetNode()) == 0 {
		return nil, fmt.Errorf("ONNX model has no graph (truncated or corrupt?)")
	}
	if Props(mp)[MetaSchema] != Schema {
		return nil, fmt.Errorf("ONNX model lacks %s=%s metadata (not written by modax-ml export?)", MetaSchema, Schema)
	}
	if err := VerifyWeights(mp); err != nil {
		return nil, err
	}
	return mp, nil
}

// Props returns the model's metadata_props as a map.
func Props(mp *onnx.ModelProto) map[string]string {
	m := map[string]string{}
	for _, e := range mp.GetMetadataProps() {
		m[e.GetKey()] = e.GetValue()
	}
	return m
}

// Opset returns the model's default-domain opset version.
func Opset(mp *onnx.ModelProto) int {
	for _, o := range mp.GetOpsetImport() {
		if o.GetDomain() == "" || o.GetDomain() == "ai.onnx" {
			return int(o.GetVersion())
		}
	}
	return 0
}

// SHA256 returns the hex sha256 of b.
func SHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// graphBuilder appends nodes and initializers to a graph.
type graphBuilder struct {
	g *onnx.GraphProto
	n int
}

func (g *graphBuilder) node(op string, inputs []string, output string, attrs ...*onnx.AttributeProto) string {
	return g.nodeOut(op, inputs, []string{output}, attrs...)[0]
}

func (g *graphBuilder) nodeOut(op string, inputs, outputs []string, attrs ...*onnx.AttributeProto) []string {
	g.n++
	g.g.Node = append(g.g.Node, &onnx.NodeProto{
		Name: fmt.Sprintf("%s_%d", op, g.n), OpType: op, Input: inputs, Output: outputs, Attribute: attrs,
	})
	return outputs
}

func (g *graphBuilder) floats(name string, shape []int64, data []float32) string {
	raw := make([]byte, 0, 4*len(data))
	for _, v := range data {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
	}
	g.g.Initializer = append(g.g.Initializer, &onnx.TensorProto{
		Name: name, Dims: shape, DataType: int32(onnx.TensorProto_FLOAT), RawData: raw,
	})
	return name
}

func (g *graphBuilder) int64s(name string, data ...int64) string {
	raw := make([]byte, 0, 8*len(data))
	for _, v := range data {
		raw = binary.LittleEndian.AppendUint64(raw, uint64(v))
	}
	g.g.Initializer = append(g.g.Initializer, &onnx.TensorProto{
		Name: name, Dims: []int64{int64(len(data))}, DataType: int32(onnx.TensorProto_INT64), RawData: raw,
	})
	return name
}

// scaler adds (x - offset) / scale when embed is set.
func (g *graphBuilder) scaler(x string, s dataset.Scaler, embed bool) string {
	if !embed {
		return x
	}
	n := int64(len(s.Offset))
	off := make([]float32, n)
	sc := make([]float32, n)
	for j := range off {
		off[j], sc[j] = float32(s.Offset[j]), float32(s.Scale[j])
	}
	g.floats("scaler.offset", []int64{n}, off)
	g.floats("scaler.scale", []int64{n}, sc)
	x = g.node("Sub", []string{x, "scaler.offset"}, "input_centered")
	return g.node("Div", []string{x, "scaler.scale"}, "input_scaled")
}

// lstm adds one LSTM node per layer; x is [seq, batch, in]. It returns the
// last layer's final hidden state as [batch, H].
func (g *graphBuilder) lstm(p *model.Params, x string, perm *[4]int) string {
	a := p.Arch
	H := a.Hidden
	gates := onnxGates
	if perm != nil {
		gates = *perm
	}
	for k := range a.Layers {
		wih, whh, bih, bhh := p.Layer(k)
		in := a.InputSize
		if k > 0 {
			in = H
		}
		reorder := func(t *model.Tensor, cols int) []float32 {
			out := make([]float32, 0, len(t.Data))
			for _, blk := range gates {
				out = append(out, t.Data[blk*H*cols:(blk+1)*H*cols]...)
			}
			return out
		}
		w := g.floats(fmt.Sprintf("lstm.W_l%d", k), []int64{1, int64(4 * H), int64(in)}, reorder(wih, in))
		r := g.floats(fmt.Sprintf("lstm.R_l%d", k), []int64{1, int64(4 * H), int64(H)}, reorder(whh, H))
		b := g.floats(fmt.Sprintf("lstm.B_l%d", k), []int64{1, int64(8 * H)}, append(reorder(bih, 1), reorder(bhh, 1)...))
		hs := attrInt("hidden_size", int64(H))
		if k < a.Layers-1 {
			y := "Y"
			if k > 0 {
				y = fmt.Sprintf("Y_l%d", k)
			}
			g.nodeOut("LSTM", []string{x, w, r, b}, []string{y}, hs)
			if k == 0 {
				g.int64s("shape_seq_batch_hidden", 0, -1, int64(H))
			}
			x = g.node("Reshape", []string{y, "shape_seq_batch_hidden"}, fmt.Sprintf("lstm_l%d_out", k))
			continue
		}
		g.nodeOut("LSTM", []string{x, w, r, b}, []string{"", "Y_h"}, hs)
		g.int64s("shape_batch_hidden", -1, int64(H))
		x = g.node("Reshape", []string{"Y_h", "shape_batch_hidden"}, "h_last")
	}
	return x
}

// gemm adds out = x Wᵀ + b for a PyTorch nn.Linear (W [out, in], b [out]).
func (g *graphBuilder) gemm(x string, w, b *model.Tensor, out string) string {
	wn := g.floats(w.Name, []int64{int64(w.Shape[0]), int64(w.Shape[1])}, w.Data)
	bn := g.floats(b.Name, []int64{int64(b.Shape[0])}, b.Data)
	return g.node("Gemm", []string{x, wn, bn}, out, attrInt("transB", 1))
}

func attrInt(name string, v int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INT, I: v}
}

func attrInts(name string, v ...int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INTS, Ints: v}
}

func dim(v int64) *onnx.TensorShapeProto_Dimension {
	return &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: v}}
}

func dimParam(name string) *onnx.TensorShapeProto_Dimension {
	return &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimParam{DimParam: name}}
}

func valueInfo(name string, dims ...*onnx.TensorShapeProto_Dimension) *onnx.ValueInfoProto {
	return &onnx.ValueInfoProto{Name: name, Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{TensorType: &onnx.TypeProto_Tensor{
		ElemType: int32(onnx.TensorProto_FLOAT), Shape: &onnx.TensorShapeProto{Dim: dims},
	}}}}
}
