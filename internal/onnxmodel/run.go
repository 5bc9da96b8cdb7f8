package onnxmodel

import (
	"fmt"
	"math"

	"github.com/advancedclimatesystems/gonnx"
	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/advancedclimatesystems/gonnx/ops"
	"google.golang.org/protobuf/proto"
	"gorgonia.org/tensor"
)

// Runner runs a model in-process with gonnx, an ONNX interpreter independent
// of our forward pass.
//
// gonnx implements opset 13 only. The nodes Build writes (Sub, Div,
// Transpose, LSTM, Reshape, Gemm, Relu) have the same definition for float
// tensors in opsets 11, 12 and 13 (the later versions only add bfloat16 or
// other types), so a model written for opset 11 or 12 is run as opset 13 —
// ONNX Runtime runs the real opset-11 file in the interop tests.
type Runner struct {
	m *gonnx.Model
}

// NewRunner prepares mp for running. mp is not modified.
func NewRunner(mp *onnx.ModelProto) (r *Runner, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("gonnx: %v", p)
		}
	}()
	mp = proto.Clone(mp).(*onnx.ModelProto)
	if v := Opset(mp); v != 13 {
		if _, ok := Opsets[v]; !ok {
			return nil, fmt.Errorf("gonnx: opset %d is not supported", v)
		}
		mp.OpsetImport = []*onnx.OperatorSetIdProto{{Domain: "", Version: 13}}
	}
	m, err := gonnx.NewModel(mp)
	if err != nil {
		return nil, fmt.Errorf("gonnx: %w", err)
	}
	get := m.GetOperator
	m.GetOperator = func(op string) (ops.Operator, error) {
		o, err := get(op)
		if err != nil || op != "LSTM" {
			return o, err
		}
		return &namedLSTM{Operator: o}, nil
	}
	return &Runner{m: m}, nil
}

// namedLSTM lets gonnx's LSTM, which looks its outputs up by the names Y,
// Y_h and Y_c, run a node whose outputs have other names (tensor names are
// unique in a graph, so a model with three or more LSTM layers cannot call
// every inner output Y): the outputs are mapped by position, as ONNX defines
// them.
type namedLSTM struct{ ops.Operator }

func (l *namedLSTM) Init(n *onnx.NodeProto) error {
	c := proto.Clone(n).(*onnx.NodeProto)
	std := []string{"Y", "Y_h", "Y_c"}
	for i := range c.Output {
		if i < len(std) {
			c.Output[i] = std[i]
		}
	}
	return l.Operator.Init(c)
}

// Run evaluates the model on x with the given shape ([b, t, F] for an LSTM,
// [b, F] for ridge) and returns the b outputs.
func (r *Runner) Run(x []float32, shape ...int) (out []float32, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("gonnx: %v", p)
		}
	}()
	n := 1
	for _, d := range shape {
		n *= d
	}
	if n != len(x) || len(shape) < 2 {
		return nil, fmt.Errorf("gonnx: input of %d values for shape %v", len(x), shape)
	}
	in := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float32(nil), x...)))
	res, err := r.m.Run(gonnx.Tensors{InputName: in})
	if err != nil {
		return nil, fmt.Errorf("gonnx: %w", err)
	}
	t, ok := res[OutputName]
	if !ok || t == nil {
		return nil, fmt.Errorf("gonnx: no %q output", OutputName)
	}
	if s := t.Shape(); len(s) != 2 || s[0] != shape[0] || s[1] != 1 {
		return nil, fmt.Errorf("gonnx: output shape %v, want [%d 1]", s, shape[0])
	}
	data, ok := t.Data().([]float32)
	if !ok {
		return nil, fmt.Errorf("gonnx: output of type %s, want float32", t.Dtype())
	}
	return append([]float32(nil), data...), nil
}

// Diff is the comparison of two outputs at their worst element.
type Diff struct {
	Index int     `json:"index"`
	Got   float64 `json:"got"`
	Want  float64 `json:"want"`
	Abs   float64 `json:"abs_diff"`
	// Ratio is |got - want| / (atol + rtol·|want|): ≤ 1 passes.
	Ratio  float64 `json:"ratio"`
	MaxAbs float64 `json:"max_abs_diff"`
}

// Compare checks got against want element by element as numpy.allclose does
// (|got - want| ≤ atol + rtol·|want|) and returns the worst element. NaN or
// ±Inf on either side fails.
func Compare(got, want []float32, rtol, atol float64) (Diff, bool) {
	worst := Diff{Index: -1}
	if len(got) != len(want) {
		return worst, false
	}
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		d := math.Abs(g - w)
		r := d / (atol + rtol*math.Abs(w))
		if math.IsNaN(d) || math.IsInf(d, 0) {
			r = math.Inf(1)
		}
		if d > worst.MaxAbs || math.IsNaN(d) {
			worst.MaxAbs = d
		}
		if worst.Index < 0 || r > worst.Ratio {
			worst.Index, worst.Got, worst.Want, worst.Abs, worst.Ratio = i, g, w, d, r
		}
	}
	return worst, worst.Ratio <= 1
}
