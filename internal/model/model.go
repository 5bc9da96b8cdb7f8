// Package model is the RUL model's architecture and parameters in PyTorch's
// layout, and the checkpoint file (safetensors) both training engines, the
// predictor and the ONNX exporter share.
//
// The LSTM model is the design's LSTMRULPredictor:
//
//	lstm = nn.LSTM(input_size, hidden, layers, batch_first=True, dropout=dropout)
//	fc1  = nn.Linear(hidden, fc);  relu;  dropout;  fc2 = nn.Linear(fc, 1)
//	forward: h_n[-1] of the last layer -> fc1 -> relu -> dropout -> fc2
//
// Parameter names and shapes are exactly those of its state_dict, so a PyTorch
// user loads a checkpoint with load_state_dict(safetensors.torch.load_file(p)).
// LSTM gate order is PyTorch's: i, f, g, o (blocks of H rows).
package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Model types.
const (
	TypeLSTM  = "lstm"
	TypeRidge = "ridge"
)

// Arch is the architecture of a model.
type Arch struct {
	Type      string  `json:"type" yaml:"type"`             // "lstm" or "ridge"
	InputSize int     `json:"input_size" yaml:"input_size"` // features per time step (ridge: stats features)
	Hidden    int     `json:"hidden_size" yaml:"hidden_size"`
	Layers    int     `json:"num_layers" yaml:"num_layers"`
	FC        int     `json:"fc_size" yaml:"fc_size"`
	Dropout   float64 `json:"dropout" yaml:"dropout"`
}

// DefaultArch is the design's LSTMRULPredictor for the given input size.
func DefaultArch(input int) Arch {
	return Arch{Type: TypeLSTM, InputSize: input, Hidden: 128, Layers: 2, FC: 64, Dropout: 0.2}
}

// Validate checks the architecture.
func (a Arch) Validate() error {
	switch a.Type {
	case TypeLSTM:
		if a.InputSize < 1 || a.Hidden < 1 || a.Layers < 1 || a.FC < 1 {
			return fmt.Errorf("model: lstm needs input_size, hidden_size, num_layers, fc_size ≥ 1 (got %d, %d, %d, %d)", a.InputSize, a.Hidden, a.Layers, a.FC)
		}
		for _, b := range []struct {
			key    string
			v, max int
		}{{"input_size", a.InputSize, MaxInputSize}, {"hidden_size", a.Hidden, MaxHidden}, {"num_layers", a.Layers, MaxLayers}, {"fc_size", a.FC, MaxFC}} {
			if b.v > b.max {
				return fmt.Errorf("model: %s %d exceeds the limit of %d", b.key, b.v, b.max)
			}
		}
		if a.Dropout < 0 || a.Dropout >= 1 {
			return fmt.Errorf("model: dropout %g not in [0, 1)", a.Dropout)
		}
	case TypeRidge:
		if a.InputSize < 1 || a.InputSize > MaxInputSize {
			return fmt.Errorf("model: ridge needs input_size in [1, %d] (got %d)", MaxInputSize, a.InputSize)
		}
	default:
		return fmt.Errorf("model: unknown type %q (want lstm or ridge)", a.Type)
	}
	return nil
}

// Tensor is one named parameter, row-major float32.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// Size returns the number of elements of a shape.
func Size(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Spec lists the parameter names and shapes of an architecture, in
// state_dict order.
func (a Arch) Spec() []Tensor {
	var out []Tensor
	add := func(name string, shape ...int) { out = append(out, Tensor{Name: name, Shape: shape}) }
	switch a.Type {
	case TypeLSTM:
		H := a.Hidden
		for k := range a.Layers {
			in := a.InputSize
			if k > 0 {
				in = H
			}
			add(fmt.Sprintf("lstm.weight_ih_l%d", k), 4*H, in)
			add(fmt.Sprintf("lstm.weight_hh_l%d", k), 4*H, H)
			add(fmt.Sprintf("lstm.bias_ih_l%d", k), 4*H)
			add(fmt.Sprintf("lstm.bias_hh_l%d", k), 4*H)
		}
		add("fc1.weight", a.FC, H)
		add("fc1.bias", a.FC)
		add("fc2.weight", 1, a.FC)
		add("fc2.bias", 1)
	case TypeRidge:
		add("ridge.weight", 1, a.InputSize)
		add("ridge.bias", 1)
	}
	return out
}

// Params are a model's parameters.
type Params struct {
	Arch    Arch
	Tensors []*Tensor // in Spec order
	index   map[string]*Tensor
}

// NewParams allocates zero parameters for arch.
func NewParams(arch Arch) (*Params, error) {
	if err := arch.Validate(); err != nil {
		return nil, err
	}
	p := &Params{Arch: arch, index: map[string]*Tensor{}}
	for _, s := range arch.Spec() {
		t := &Tensor{Name: s.Name, Shape: s.Shape, Data: make([]float32, Size(s.Shape))}
		p.Tensors = append(p.Tensors, t)
		p.index[t.Name] = t
	}
	return p, nil
}

// ParamsFrom makes the parameters of arch from tensors read from a file,
// without copying their data: the tensors must be exactly those of arch's
// Spec (names and shapes). The architecture is checked against the tensors
// before anything is allocated, so a header claiming a huge model allocates
// nothing.
func ParamsFrom(arch Arch, tensors []*Tensor) (*Params, error) {
	if err := arch.Validate(); err != nil {
		return nil, err
	}
	byName := make(map[string]*Tensor, len(tensors))
	for _, t := range tensors {
		byName[t.Name] = t
	}
	spec := arch.Spec()
	p := &Params{Arch: arch, index: make(map[string]*Tensor, len(spec))}
	for _, want := range spec {
		got, ok := byName[want.Name]
		if !ok {
			return nil, fmt.Errorf("missing tensor %s for architecture %+v", want.Name, arch)
		}
		if !slices.Equal(got.Shape, want.Shape) {
			return nil, fmt.Errorf("tensor %s has shape %v, architecture %+v needs %v", want.Name, got.Shape, arch, want.Shape)
		}
		if len(got.Data) != Size(want.Shape) {
			return nil, fmt.Errorf("tensor %s holds %d values, shape %v needs %d", want.Name, len(got.Data), want.Shape, Size(want.Shape))
		}
		p.Tensors = append(p.Tensors, got)
		p.index[got.Name] = got
		delete(byName, want.Name)
	}
	for _, t := range tensors {
		if _, extra := byName[t.Name]; extra {
			return nil, fmt.Errorf("unexpected tensor %s for architecture %+v", t.Name, arch)
		}
	}
	return p, nil
}

// Get returns the named tensor; it panics on an unknown name (a programming
// error: names come from Spec).
func (p *Params) Get(name string) *Tensor {
	t, ok := p.index[name]
	if !ok {
		panic("model: no parameter " + name)
	}
	return t
}

// Lookup returns the named tensor, if present.
func (p *Params) Lookup(name string) (*Tensor, bool) {
	t, ok := p.index[name]
	return t, ok
}

// Layer returns the four LSTM tensors of layer k: W_ih [4H,in], W_hh [4H,H],
// b_ih [4H], b_hh [4H].
func (p *Params) Layer(k int) (wih, whh, bih, bhh *Tensor) {
	return p.Get(fmt.Sprintf("lstm.weight_ih_l%d", k)), p.Get(fmt.Sprintf("lstm.weight_hh_l%d", k)),
		p.Get(fmt.Sprintf("lstm.bias_ih_l%d", k)), p.Get(fmt.Sprintf("lstm.bias_hh_l%d", k))
}

// Count returns the number of scalar parameters.
func (p *Params) Count() int {
	n := 0
	for _, t := range p.Tensors {
		n += len(t.Data)
	}
	return n
}

// Clone returns a deep copy.
func (p *Params) Clone() *Params {
	q := &Params{Arch: p.Arch, index: map[string]*Tensor{}}
	for _, t := range p.Tensors {
		c := &Tensor{Name: t.Name, Shape: slices.Clone(t.Shape), Data: slices.Clone(t.Data)}
		q.Tensors = append(q.Tensors, c)
		q.index[c.Name] = c
	}
	return q
}

// Init fills p as PyTorch initialises a fresh module: every LSTM weight and
// bias uniform(±1/√H); nn.Linear weight and bias uniform(±1/√fan_in). The
// random stream is seeded, so the same seed gives the same weights.
func (p *Params) Init(seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x6d6f646178))
	fill := func(t *Tensor, bound float64) {
		for i := range t.Data {
			t.Data[i] = float32((rng.Float64()*2 - 1) * bound)
		}
	}
	for _, t := range p.Tensors {
		switch {
		case len(t.Name) > 5 && t.Name[:5] == "lstm.":
			fill(t, 1/math.Sqrt(float64(p.Arch.Hidden)))
		case t.Name == "fc1.weight" || t.Name == "fc1.bias":
			fill(t, 1/math.Sqrt(float64(p.Arch.Hidden)))
		case t.Name == "fc2.weight" || t.Name == "fc2.bias":
			fill(t, 1/math.Sqrt(float64(p.Arch.FC)))
		default: // ridge starts at zero
		}
	}
}
