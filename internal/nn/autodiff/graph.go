package autodiff

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/modax/modax-ml/internal/model"
)

// graphKey identifies a compiled graph: the unrolled LSTM depends on the
// batch size and the window length, and a training graph (loss, masks,
// symbolic gradients) differs from a forward-only one.
type graphKey struct {
	b, t  int
	train bool
}

// graph is one expression graph unrolled for a batch shape, compiled into a
// tape machine. Everything runs transposed (features × batch), so that the
// i, f, g, o gate blocks of PyTorch's [4H, in] weights are contiguous blocks
// of the pre-activation matrix z = W_ih·xᵀ + W_hh·hᵀ + b, [4H, B].
type graph struct {
	key graphKey
	g   *G.ExprGraph
	vm  G.VM

	params []*G.Node // Spec order, bound to the engine's parameter tensors
	grads  G.Nodes   // train only: dLoss/dparams[i]

	// Input tensors bound to the graph's input nodes once; runs overwrite
	// their data in place.
	x     []*tensor.Dense   // [T] of [F, B]
	inter [][]*tensor.Dense // train only: [layer][T] of [H, B]
	fc    *tensor.Dense     // train only: [FC, B]
	y     *tensor.Dense     // train only: [1, B]

	out  *G.Node // [1, B]
	loss *G.Node // train only: scalar

	used uint64 // engine clock at last use, for eviction
}

// build constructs and compiles the graph for key. params are the engine's
// parameter tensors in Spec order (shared by every graph: the solver updates
// them in place).
func build(arch model.Arch, loss lossFn, dt tensor.Dtype, params []*tensor.Dense, key graphKey) (gr *graph, err error) {
	// gorgonia reports shape and type errors in graph construction by
	// panicking in a few places (G.Must is not used here, but ApplyOp's
	// helpers do); turn them into errors.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("autodiff: build graph for batch %d, window %d: %v", key.b, key.t, r)
		}
	}()
	B, T, F, H := key.b, key.t, arch.InputSize, arch.Hidden
	g := G.NewGraph()
	gr = &graph{key: key, g: g}

	spec := arch.Spec()
	gr.params = make([]*G.Node, len(spec))
	for i, s := range spec {
		var n *G.Node
		if len(s.Shape) == 1 {
			n = G.NewVector(g, dt, G.WithShape(s.Shape...), G.WithName(s.Name))
		} else {
			n = G.NewMatrix(g, dt, G.WithShape(s.Shape...), G.WithName(s.Name))
		}
		if err := G.Let(n, params[i]); err != nil {
			return nil, fmt.Errorf("autodiff: bind %s: %w", s.Name, err)
		}
		gr.params[i] = n
	}
	param := func(name string) *G.Node {
		for i, s := range spec {
			if s.Name == name {
				return gr.params[i]
			}
		}
		panic("autodiff: no parameter " + name) // names come from Spec
	}
	input := func(name string, rows int) (*G.Node, *tensor.Dense, error) {
		v := tensor.New(tensor.WithShape(rows, B), tensor.Of(dt))
		n := G.NewMatrix(g, dt, G.WithShape(rows, B), G.WithName(name))
		if err := G.Let(n, v); err != nil {
			return nil, nil, fmt.Errorf("autodiff: bind %s: %w", name, err)
		}
		return n, v, nil
	}
	zeros := func(name string) (*G.Node, error) {
		n, _, err := input(name, H)
		return n, err
	}

	// Layer inputs: x_t for layer 0, the previous layer's (masked) h_t after.
	seq := make([]*G.Node, T)
	gr.x = make([]*tensor.Dense, T)
	for t := range T {
		if seq[t], gr.x[t], err = input(fmt.Sprintf("x_%d", t), F); err != nil {
			return nil, err
		}
	}
	var h *G.Node
	for k := range arch.Layers {
		wih, whh := param(fmt.Sprintf("lstm.weight_ih_l%d", k)), param(fmt.Sprintf("lstm.weight_hh_l%d", k))
		bih, bhh := param(fmt.Sprintf("lstm.bias_ih_l%d", k)), param(fmt.Sprintf("lstm.bias_hh_l%d", k))
		bsum, err := G.Add(bih, bhh)
		if err != nil {
			return nil, err
		}
		// h_0 = c_0 = 0, as inputs (always zero) so that every step has
		// the same form and W_hh is in the graph even when T = 1.
		h, err = zeros(fmt.Sprintf("h0_l%d", k))
		if err != nil {
			return nil, err
		}
		c, err := zeros(fmt.Sprintf("c0_l%d", k))
		if err != nil {
			return nil, err
		}
		var bias *G.Node // b_ih + b_hh repeated over the batch, [4H, B]
		var masks []*tensor.Dense
		for t := range T {
			zx, err := G.Mul(wih, seq[t])
			if err != nil {
				return nil, err
			}
			zh, err := G.Mul(whh, h)
			if err != nil {
				return nil, err
			}
			z, err := G.Add(zx, zh)
			if err != nil {
				return nil, err
			}
			if bias == nil {
				if _, bias, err = G.Broadcast(z, bsum, G.NewBroadcastPattern(nil, []byte{1})); err != nil {
					return nil, err
				}
			}
			if z, err = G.Add(z, bias); err != nil {
				return nil, err
			}
			// The gate blocks are taken as z viewed [4, H, B] sliced at
			// j, not as row ranges z[jH:(j+1)H]: gorgonia v0.9.18 hashes a
			// slice's bounds as bytes, so for H = 128 the ranges 0:128 and
			// 256:384 get the same hash and the graph merges them into one
			// node (see TestGorgoniaSliceHashCollision).
			z3, err := G.Reshape(z, tensor.Shape{4, H, B})
			if err != nil {
				return nil, err
			}
			gate := func(j int, act func(*G.Node) (*G.Node, error)) (*G.Node, error) {
				s, err := G.Slice(z3, G.S(j))
				if err != nil {
					return nil, err
				}
				return act(s)
			}
			ig, err := gate(0, G.Sigmoid)
			if err != nil {
				return nil, err
			}
			fg, err := gate(1, G.Sigmoid)
			if err != nil {
				return nil, err
			}
			gg, err := gate(2, G.Tanh)
			if err != nil {
				return nil, err
			}
			og, err := gate(3, G.Sigmoid)
			if err != nil {
				return nil, err
			}
			fc, err := G.HadamardProd(fg, c)
			if err != nil {
				return nil, err
			}
			igg, err := G.HadamardProd(ig, gg)
			if err != nil {
				return nil, err
			}
			if c, err = G.Add(fc, igg); err != nil {
				return nil, err
			}
			tc, err := G.Tanh(c)
			if err != nil {
				return nil, err
			}
			if h, err = G.HadamardProd(og, tc); err != nil {
				return nil, err
			}
			seq[t] = h
			// nn.LSTM's dropout acts on the output of every layer but the
			// last, i.e. on the next layer's input.
			if key.train && k < arch.Layers-1 {
				mn, mv, err := input(fmt.Sprintf("mask_l%d_%d", k, t), H)
				if err != nil {
					return nil, err
				}
				masks = append(masks, mv)
				if seq[t], err = G.HadamardProd(h, mn); err != nil {
					return nil, err
				}
			}
		}
		if masks != nil {
			gr.inter = append(gr.inter, masks)
		}
	}

	// Head: h_T of the last layer -> fc1 -> ReLU -> dropout -> fc2.
	a, err := G.Mul(param("fc1.weight"), h)
	if err != nil {
		return nil, err
	}
	if a, err = G.BroadcastAdd(a, param("fc1.bias"), nil, []byte{1}); err != nil {
		return nil, err
	}
	if a, err = G.Rectify(a); err != nil {
		return nil, err
	}
	if key.train {
		mn, mv, err := input("mask_fc", arch.FC)
		if err != nil {
			return nil, err
		}
		gr.fc = mv
		if a, err = G.HadamardProd(a, mn); err != nil {
			return nil, err
		}
	}
	out, err := G.Mul(param("fc2.weight"), a)
	if err != nil {
		return nil, err
	}
	if out, err = G.BroadcastAdd(out, param("fc2.bias"), nil, []byte{1}); err != nil {
		return nil, err
	}
	gr.out = out

	if !key.train {
		gr.vm = G.NewTapeMachine(g)
		return gr, nil
	}
	yn, yv, err := input("y", 1)
	if err != nil {
		return nil, err
	}
	gr.y = yv
	diff, err := G.Sub(out, yn)
	if err != nil {
		return nil, err
	}
	if gr.loss, err = loss(diff); err != nil {
		return nil, err
	}
	if gr.grads, err = G.Grad(gr.loss, gr.params...); err != nil {
		return nil, fmt.Errorf("autodiff: differentiate: %w", err)
	}
	gr.vm = G.NewTapeMachine(g)
	return gr, nil
}

// lossFn maps the residual (output − target, [1, B]) to the scalar mean loss.
type lossFn func(diff *G.Node) (*G.Node, error)

// mse is torch.nn.MSELoss(): mean of d².
func mse(diff *G.Node) (*G.Node, error) {
	sq, err := G.Square(diff)
	if err != nil {
		return nil, err
	}
	return G.Mean(sq)
}

// huber is torch.nn.HuberLoss(delta=δ): mean of ½d² where |d| < δ and
// δ(|d| − ½δ) elsewhere, written as ½q² + δ(|d| − q) with q = min(|d|, δ) =
// |d| − relu(|d| − δ), so that it needs only differentiable elementwise ops.
func huber(dt tensor.Dtype, delta float64) lossFn {
	return func(diff *G.Node) (*G.Node, error) {
		var dn, half *G.Node
		if dt == tensor.Float64 {
			dn, half = G.NewConstant(delta), G.NewConstant(0.5)
		} else {
			dn, half = G.NewConstant(float32(delta)), G.NewConstant(float32(0.5))
		}
		a, err := G.Abs(diff)
		if err != nil {
			return nil, err
		}
		over, err := G.Sub(a, dn)
		if err != nil {
			return nil, err
		}
		if over, err = G.Rectify(over); err != nil {
			return nil, err
		}
		q, err := G.Sub(a, over)
		if err != nil {
			return nil, err
		}
		q2, err := G.Square(q)
		if err != nil {
			return nil, err
		}
		if q2, err = G.HadamardProd(q2, half); err != nil {
			return nil, err
		}
		lin, err := G.HadamardProd(over, dn) // δ(|d| − q) = δ·relu(|d| − δ)
		if err != nil {
			return nil, err
		}
		l, err := G.Add(q2, lin)
		if err != nil {
			return nil, err
		}
		return G.Mean(l)
	}
}
