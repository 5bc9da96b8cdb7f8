package model

import (
	"fmt"
	"math"
)

// Forward is the reference forward pass: the output of the model (no dropout,
// as PyTorch's eval mode) for b inputs. It is written for clarity, not speed:
// every sum accumulates in float64, one scalar at a time, exactly as the
// equations of torch.nn.LSTM and torch.nn.Linear read. The fast engines and
// the ONNX export are checked against it.
//
// LSTM: x is [b][t][InputSize] (batch-first, time-major within a window, as
// windows.parquet stores x, already scaled). For each layer k and step s, with
// PyTorch's gate blocks i, f, g, o of W_ih, W_hh, b_ih, b_hh:
//
//	i = σ(W_ii x + b_ii + W_hi h + b_hi)   f = σ(W_if x + b_if + W_hf h + b_hf)
//	g = tanh(W_ig x + b_ig + W_hg h + b_hg) o = σ(W_io x + b_io + W_ho h + b_ho)
//	c = f ⊙ c + i ⊙ g                       h = o ⊙ tanh(c)
//
// starting from h = c = 0; the sequence of h of layer k is the input of layer
// k+1. The output is fc2(relu(fc1(h_T of the last layer))).
//
// Ridge: x is [b][InputSize] and t must be 1; the output is w·x + bias.
//
// The result has b values. A shape that does not match the architecture is an
// error.
func (p *Params) Forward(x []float32, b, t int) ([]float32, error) {
	a := p.Arch
	if b < 0 || t < 1 {
		return nil, fmt.Errorf("forward: batch %d, sequence %d", b, t)
	}
	if want := b * t * a.InputSize; len(x) != want {
		return nil, fmt.Errorf("forward: input has %d values, want batch %d × seq %d × features %d = %d", len(x), b, t, a.InputSize, want)
	}
	out := make([]float32, b)
	switch a.Type {
	case TypeRidge:
		if t != 1 {
			return nil, fmt.Errorf("forward: ridge takes one feature vector per row, got sequence %d", t)
		}
		w, bias := p.Get("ridge.weight").Data, p.Get("ridge.bias").Data[0]
		for n := range b {
			s := float64(bias)
			for j, v := range x[n*a.InputSize : (n+1)*a.InputSize] {
				s += float64(w[j]) * float64(v)
			}
			out[n] = float32(s)
		}
	case TypeLSTM:
		r := p.reference()
		for n := range b {
			out[n] = float32(r.window(x[n*t*a.InputSize:(n+1)*t*a.InputSize], t))
		}
	default:
		return nil, fmt.Errorf("forward: unknown model type %q", a.Type)
	}
	return out, nil
}

// ref holds the LSTM's parameters as float64 (converted once per Forward
// call; every product is then a float64 product of the float32 values).
type ref struct {
	arch     Arch
	wih, whh [][]float64 // per layer: [4H × in], [4H × H], row-major
	bias     [][]float64 // per layer: b_ih + b_hh, [4H]
	w1, b1   []float64   // fc1 [FC × H], [FC]
	w2       []float64   // fc2 [FC]
	b2       float64
}

func f64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func (p *Params) reference() *ref {
	r := &ref{arch: p.Arch}
	for k := range p.Arch.Layers {
		wih, whh, bih, bhh := p.Layer(k)
		b := f64(bih.Data)
		for i, v := range bhh.Data {
			b[i] += float64(v)
		}
		r.wih = append(r.wih, f64(wih.Data))
		r.whh = append(r.whh, f64(whh.Data))
		r.bias = append(r.bias, b)
	}
	r.w1, r.b1 = f64(p.Get("fc1.weight").Data), f64(p.Get("fc1.bias").Data)
	r.w2, r.b2 = f64(p.Get("fc2.weight").Data), float64(p.Get("fc2.bias").Data[0])
	return r
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

// window runs one window seq [t][InputSize] through the LSTM and the head.
func (r *ref) window(seq []float32, t int) float64 {
	a := r.arch
	H := a.Hidden
	// in holds the current layer's input sequence [t][width].
	width := a.InputSize
	in := f64(seq)
	pre := make([]float64, 4*H) // gate pre-activations, blocks i, f, g, o
	for k := range a.Layers {
		wih, whh, bias := r.wih[k], r.whh[k], r.bias[k]
		h := make([]float64, H)
		c := make([]float64, H)
		outSeq := make([]float64, t*H)
		for s := range t {
			xs := in[s*width : (s+1)*width]
			for row := range 4 * H {
				pre[row] = bias[row] + dot(wih[row*width:(row+1)*width], xs) + dot(whh[row*H:(row+1)*H], h)
			}
			for u := range H {
				i := sigmoid(pre[0*H+u])
				f := sigmoid(pre[1*H+u])
				g := tanh(pre[2*H+u])
				o := sigmoid(pre[3*H+u])
				c[u] = f*c[u] + i*g
				h[u] = o * tanh(c[u])
			}
			copy(outSeq[s*H:(s+1)*H], h)
		}
		in, width = outSeq, H
	}
	last := in[(t-1)*H : t*H] // h_T of the last layer (= h_n[-1])
	y := r.b2
	for row := range a.FC {
		v := r.b1[row] + dot(r.w1[row*H:(row+1)*H], last)
		y += r.w2[row] * max(v, 0) // relu
	}
	return y
}

func sigmoid(v float64) float64 { return 1 / (1 + math.Exp(-v)) }

func tanh(v float64) float64 { return math.Tanh(v) }
