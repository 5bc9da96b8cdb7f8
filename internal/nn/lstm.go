package nn

import (
	"fmt"
	"unsafe"

	"github.com/modax/modax-ml/internal/model"
)

// The fused LSTM: forward and backpropagation through time for the stacked
// LSTMRULPredictor on one shard of a batch, generic over the element type.
//
// Inside a worker everything is time-major: a layer's values for all time
// steps are one [T][b][·] matrix, so the input projection of a layer and its
// weight gradients are single large products, and only the recurrent
// product h_{t-1}·W_hhᵀ (forward) and dG_t·W_hh (backward) run per step.

// layout places the tensors of an architecture in one flat vector, in Spec
// order (state_dict order).
type layout struct {
	arch  model.Arch
	spec  []model.Tensor
	off   []int
	total int
}

func newLayout(arch model.Arch) layout {
	l := layout{arch: arch, spec: arch.Spec()}
	for _, s := range l.spec {
		l.off = append(l.off, l.total)
		l.total += model.Size(s.Shape)
	}
	return l
}

// Tensor indices in the flat vector.
func (l *layout) wih(k int) int { return 4 * k }
func (l *layout) whh(k int) int { return 4*k + 1 }
func (l *layout) bih(k int) int { return 4*k + 2 }
func (l *layout) bhh(k int) int { return 4*k + 3 }
func (l *layout) fc1w() int     { return 4 * l.arch.Layers }
func (l *layout) fc1b() int     { return 4*l.arch.Layers + 1 }
func (l *layout) fc2w() int     { return 4*l.arch.Layers + 2 }
func (l *layout) fc2b() int     { return 4*l.arch.Layers + 3 }

func viewT[T Float](l *layout, v []T, i int) []T {
	return v[l.off[i] : l.off[i]+model.Size(l.spec[i].Shape)]
}

// flatten copies p into a flat vector of l's layout.
func flatten[T Float](l *layout, p *model.Params, dst []T) error {
	if p.Arch != l.arch {
		return fmt.Errorf("nn: parameters of architecture %+v, engine has %+v", p.Arch, l.arch)
	}
	for i, s := range l.spec {
		t, ok := p.Lookup(s.Name)
		if !ok || len(t.Data) != model.Size(s.Shape) {
			return fmt.Errorf("nn: parameter %s missing or of the wrong size", s.Name)
		}
		d := viewT(l, dst, i)
		for j, v := range t.Data {
			d[j] = T(v)
		}
	}
	return nil
}

// unflatten copies a flat vector into p (which has l's architecture).
func unflatten[T Float](l *layout, src []T, p *model.Params) {
	for i, s := range l.spec {
		t := p.Get(s.Name)
		for j, v := range viewT(l, src, i) {
			t.Data[j] = float32(v)
		}
	}
}

// net holds the parameters and their prepared product operands. The
// operands are views of w, re-prepared (packed) after every change of w.
type net[T Float] struct {
	arch model.Arch
	lay  layout
	w    []T
	bias [][]T // per layer b_ih + b_hh

	wihT, whhT, wih, whh []operand[T]
	fc1T, fc1            operand[T]
	be                   blas[T] // for prepare, used by the owning goroutine
}

func newNet[T Float](arch model.Arch, be blas[T]) *net[T] {
	n := &net[T]{arch: arch, lay: newLayout(arch), be: be}
	n.w = make([]T, n.lay.total)
	L := arch.Layers
	n.bias = make([][]T, L)
	for k := range n.bias {
		n.bias[k] = make([]T, 4*arch.Hidden)
	}
	n.wihT, n.whhT = make([]operand[T], L), make([]operand[T], L)
	n.wih, n.whh = make([]operand[T], L), make([]operand[T], L)
	return n
}

func (n *net[T]) inSize(k int) int {
	if k == 0 {
		return n.arch.InputSize
	}
	return n.arch.Hidden
}

// prepare recomputes the summed biases and re-packs every operand after w
// changed.
func (n *net[T]) prepare() {
	l := &n.lay
	H, G := n.arch.Hidden, 4*n.arch.Hidden
	for k := range n.arch.Layers {
		in := n.inSize(k)
		wih, whh := viewT(l, n.w, l.wih(k)), viewT(l, n.w, l.whh(k))
		bi, bh := viewT(l, n.w, l.bih(k)), viewT(l, n.w, l.bhh(k))
		for j := range n.bias[k] {
			n.bias[k][j] = bi[j] + bh[j]
		}
		n.wihT[k].set(wih, in, true, in, G) // x·W_ihᵀ
		n.whhT[k].set(whh, H, true, H, G)   // h·W_hhᵀ
		n.wih[k].set(wih, in, false, G, in) // dG·W_ih
		n.whh[k].set(whh, H, false, G, H)   // dG·W_hh
		for _, o := range []*operand[T]{&n.wihT[k], &n.whhT[k], &n.wih[k], &n.whh[k]} {
			n.be.prepare(o)
		}
	}
	fc1 := viewT(l, n.w, l.fc1w())
	n.fc1T.set(fc1, H, true, H, n.arch.FC)
	n.fc1.set(fc1, H, false, n.arch.FC, H)
	n.be.prepare(&n.fc1T)
	n.be.prepare(&n.fc1)
}

// worker computes the forward and backward pass of one shard of a batch.
// Its buffers grow on first use and are reused afterwards (no allocation per
// step once warm).
type worker[T Float] struct {
	net *net[T]
	be  blas[T]

	x               []T   // [T][b][I] the shard's input, time-major
	in              [][]T // per layer k ≥ 1 with dropout: masked input [T][b][H]
	g               [][]T // per layer [T][b][4H] activated gates i, f, g, o
	c, tc, h        [][]T // per layer [T][b][H] cell, tanh(cell), hidden
	z1, a1          []T   // [b][FC] fc1 output before ReLU, after ReLU and dropout
	out, dout       []T   // [b]
	dG, dHo         []T   // [T][b][4H], [T][b][H]
	dh, dc, dz      []T   // [b][H], [b][H], [b][FC]
	grad            []T   // flat gradient of the shard's share of the loss
	inferG          []T   // inference: gates of one layer [T][b][4H]
	inferH          [2][]T
	inferC, inferTC []T
}

func newWorker[T Float](n *net[T], be blas[T]) *worker[T] {
	L := n.arch.Layers
	return &worker[T]{net: n, be: be, in: make([][]T, L), g: make([][]T, L), c: make([][]T, L),
		tc: make([][]T, L), h: make([][]T, L), grad: make([]T, n.lay.total)}
}

func growT[T Float](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// forward runs rows j0..j0+b of a batch of B windows of Tn steps (x is the
// whole batch, [B][Tn][I]) and leaves the model outputs in w.out[:b]. With
// train it keeps every intermediate for backward and applies masks (nil: no
// dropout); without, it keeps only what the next step needs.
func (w *worker[T]) forward(x []float32, B, j0, b, Tn int, masks *Masks, train bool) {
	n := w.net
	arch := n.arch
	I, H, FC, L := arch.InputSize, arch.Hidden, arch.FC, arch.Layers
	G := 4 * H
	be := w.be
	// The shard's input, time-major.
	w.x = growT(w.x, Tn*b*I)
	for j := range b {
		src := x[(j0+j)*Tn*I : (j0+j+1)*Tn*I]
		for t := range Tn {
			d := w.x[(t*b+j)*I : (t*b+j+1)*I]
			for f, v := range src[t*I : (t+1)*I] {
				d[f] = T(v)
			}
		}
	}
	in, inW := w.x, I
	var hLast []T
	for k := range L {
		var g, c, tc, h []T
		if train {
			w.g[k] = growT(w.g[k], Tn*b*G)
			w.c[k] = growT(w.c[k], Tn*b*H)
			w.tc[k] = growT(w.tc[k], Tn*b*H)
			w.h[k] = growT(w.h[k], Tn*b*H)
			g, c, tc, h = w.g[k], w.c[k], w.tc[k], w.h[k]
		} else {
			w.inferG = growT(w.inferG, Tn*b*G)
			w.inferH[k%2] = growT(w.inferH[k%2], Tn*b*H)
			w.inferC = growT(w.inferC, 2*b*H)
			w.inferTC = growT(w.inferTC, b*H)
			g, h = w.inferG, w.inferH[k%2]
		}
		// Input projection of all steps at once, bias included.
		bias := n.bias[k]
		for r := range Tn * b {
			copy(g[r*G:(r+1)*G], bias)
		}
		be.gemmOp(false, Tn*b, in, inW, &n.wihT[k], 1, g, G)
		for t := range Tn {
			gt := g[t*b*G : (t+1)*b*G]
			var hPrev, cPrev, ct, tct []T
			if t > 0 {
				hPrev = h[(t-1)*b*H : t*b*H]
				be.gemmOp(false, b, hPrev, H, &n.whhT[k], 1, gt, G)
			}
			if train {
				if t > 0 {
					cPrev = c[(t-1)*b*H : t*b*H]
				}
				ct, tct = c[t*b*H:(t+1)*b*H], tc[t*b*H:(t+1)*b*H]
			} else {
				cur := w.inferC[(t%2)*b*H : (t%2+1)*b*H]
				if t > 0 {
					cPrev = w.inferC[((t-1)%2)*b*H : ((t-1)%2+1)*b*H]
				}
				ct, tct = cur, w.inferTC
			}
			if train {
				cellForward(gt, cPrev, ct, tct, h[t*b*H:(t+1)*b*H], b, H)
			} else {
				cellInfer(gt, cPrev, ct, tct, h[t*b*H:(t+1)*b*H], b, H)
			}
		}
		hLast = h[(Tn-1)*b*H : Tn*b*H]
		if k == L-1 {
			break
		}
		in, inW = h, H
		if train && masks != nil && len(masks.Inter) > k && masks.Inter[k] != nil {
			w.in[k+1] = growT(w.in[k+1], Tn*b*H)
			m := masks.Inter[k]
			for t := range Tn {
				for j := range b {
					mr := m[(t*B+j0+j)*H : (t*B+j0+j+1)*H]
					hr := h[(t*b+j)*H : (t*b+j+1)*H]
					dr := w.in[k+1][(t*b+j)*H : (t*b+j+1)*H]
					for u, hv := range hr {
						dr[u] = hv * T(mr[u])
					}
				}
			}
			in = w.in[k+1]
		}
	}
	// Head: fc1 -> ReLU -> dropout -> fc2.
	l := &n.lay
	w.z1 = growT(w.z1, b*FC)
	w.a1 = growT(w.a1, b*FC)
	w.out = growT(w.out, b)
	b1 := viewT(l, n.w, l.fc1b())
	for j := range b {
		copy(w.z1[j*FC:(j+1)*FC], b1)
	}
	be.gemmOp(false, b, hLast, H, &n.fc1T, 1, w.z1, FC)
	var fm []float32
	if train && masks != nil {
		fm = masks.FC
	}
	w2 := viewT(l, n.w, l.fc2w())
	b2 := viewT(l, n.w, l.fc2b())[0]
	for j := range b {
		z := w.z1[j*FC : (j+1)*FC]
		a := w.a1[j*FC : (j+1)*FC]
		var s T
		for u, zv := range z {
			av := max(zv, 0)
			if fm != nil {
				av *= T(fm[(j0+j)*FC+u])
			}
			a[u] = av
			s += av * w2[u]
		}
		w.out[j] = s + b2
	}
}

// cellForward applies the LSTM cell to b rows: gates g [b][4H] hold the
// pre-activations on entry and the activations i, f, g, o on return;
// cPrev nil means a zero initial state.
func cellForward[T Float](g, cPrev, c, tc, h []T, b, H int) {
	if is32[T]() {
		cellForward32(f32(g), f32(cPrev), f32(c), f32(tc), f32(h), b, H)
		return
	}
	G := 4 * H
	for j := range b {
		gr := g[j*G : (j+1)*G]
		gi, gf, gg, gov := gr[:H], gr[H:2*H], gr[2*H:3*H], gr[3*H:G]
		cr, tcr, hr := c[j*H:(j+1)*H], tc[j*H:(j+1)*H], h[j*H:(j+1)*H]
		var cp []T
		if cPrev != nil {
			cp = cPrev[j*H : (j+1)*H]
		}
		for u := range H {
			i := sigmoid(gi[u])
			f := sigmoid(gf[u])
			gv := tanh(gg[u])
			o := sigmoid(gov[u])
			cv := i * gv
			if cp != nil {
				cv += f * cp[u]
			}
			tcv := tanh(cv)
			gi[u], gf[u], gg[u], gov[u] = i, f, gv, o
			cr[u], tcr[u], hr[u] = cv, tcv, o*tcv
		}
	}
}

// cellInfer is cellForward for inference, where only c and h are used
// afterwards: with float32 on AVX-512 each row is one fused pass (same bits,
// nothing else stored); otherwise it is cellForward.
func cellInfer[T Float](g, cPrev, c, tc, h []T, b, H int) {
	if !is32[T]() {
		cellForward(g, cPrev, c, tc, h, b, H)
		return
	}
	G := 4 * H
	for j := range b {
		var cp []float32
		if cPrev != nil {
			cp = f32(cPrev[j*H : (j+1)*H])
		}
		gr, cr, hr := f32(g[j*G:(j+1)*G]), f32(c[j*H:(j+1)*H]), f32(h[j*H:(j+1)*H])
		if !cellInferRow32(gr, cp, cr, hr, H) {
			cellForward32(gr, cp, cr, f32(tc[j*H:(j+1)*H]), hr, 1, H)
		}
	}
}

// f32 reinterprets a []T known to be []float32.
func f32[T Float](s []T) []float32 { return *(*[]float32)(unsafe.Pointer(&s)) }

// cellForward32 is cellForward with the activations vectorised.
func cellForward32(g, cPrev, c, tc, h []float32, b, H int) {
	G := 4 * H
	for j := range b {
		gr := g[j*G : (j+1)*G]
		sigmoidVec(gr[:2*H], gr[:2*H])
		tanhVec(gr[2*H:3*H], gr[2*H:3*H])
		sigmoidVec(gr[3*H:], gr[3*H:])
		gi, gf, gg, gov := gr[:H], gr[H:2*H], gr[2*H:3*H], gr[3*H:G]
		cr, tcr, hr := c[j*H:(j+1)*H], tc[j*H:(j+1)*H], h[j*H:(j+1)*H]
		if cPrev != nil {
			cp := cPrev[j*H : (j+1)*H]
			for u := range cr {
				cr[u] = gi[u]*gg[u] + gf[u]*cp[u]
			}
		} else {
			for u := range cr {
				cr[u] = gi[u] * gg[u]
			}
		}
		tanhVec(tcr, cr)
		for u := range hr {
			hr[u] = gov[u] * tcr[u]
		}
	}
}

// backward accumulates the gradient of Σ_j dout[j]·out[j] over the shard
// into w.grad (which the caller zeroed), after a train-mode forward of the
// same rows.
func (w *worker[T]) backward(B, j0, b, Tn int, masks *Masks) {
	n := w.net
	arch := n.arch
	H, FC, L := arch.Hidden, arch.FC, arch.Layers
	G := 4 * H
	be := w.be
	l := &n.lay
	gr := w.grad
	// Head.
	w.dz = growT(w.dz, b*FC)
	w2 := viewT(l, n.w, l.fc2w())
	gw2, gb2 := viewT(l, gr, l.fc2w()), viewT(l, gr, l.fc2b())
	gb1 := viewT(l, gr, l.fc1b())
	var fm []float32
	if masks != nil {
		fm = masks.FC
	}
	for j := range b {
		d := w.dout[j]
		gb2[0] += d
		a := w.a1[j*FC : (j+1)*FC]
		z := w.z1[j*FC : (j+1)*FC]
		dz := w.dz[j*FC : (j+1)*FC]
		for u := range FC {
			gw2[u] += d * a[u]
			var dv T
			if z[u] > 0 {
				dv = d * w2[u]
				if fm != nil {
					dv *= T(fm[(j0+j)*FC+u])
				}
			}
			dz[u] = dv
			gb1[u] += dv
		}
	}
	hTop := w.h[L-1]
	hLast := hTop[(Tn-1)*b*H : Tn*b*H]
	be.gemm(true, false, FC, H, b, w.dz, FC, hLast, H, 1, viewT(l, gr, l.fc1w()), H)
	w.dHo = growT(w.dHo, Tn*b*H)
	clear(w.dHo[:(Tn-1)*b*H])
	be.gemmOp(false, b, w.dz, FC, &n.fc1, 0, w.dHo[(Tn-1)*b*H:], H)

	w.dG = growT(w.dG, Tn*b*G)
	w.dh = growT(w.dh, b*H)
	w.dc = growT(w.dc, b*H)
	for k := L - 1; k >= 0; k-- {
		g, c, tc, h := w.g[k], w.c[k], w.tc[k], w.h[k]
		clear(w.dh)
		clear(w.dc)
		for t := Tn - 1; t >= 0; t-- {
			var cPrev []T
			if t > 0 {
				cPrev = c[(t-1)*b*H : t*b*H]
			}
			dGt := w.dG[t*b*G : (t+1)*b*G]
			cellBackward(g[t*b*G:(t+1)*b*G], cPrev, tc[t*b*H:(t+1)*b*H], w.dHo[t*b*H:(t+1)*b*H], w.dh, w.dc, dGt, b, H)
			if t > 0 {
				be.gemmOp(false, b, dGt, G, &n.whh[k], 0, w.dh, H)
			}
		}
		// Weight gradients over all steps at once.
		in, inW := w.x, arch.InputSize
		if k > 0 {
			in, inW = w.h[k-1], H
			if masks != nil && len(masks.Inter) > k-1 && masks.Inter[k-1] != nil {
				in = w.in[k]
			}
		}
		be.gemm(true, false, G, inW, Tn*b, w.dG, G, in, inW, 1, viewT(l, gr, l.wih(k)), inW)
		if Tn > 1 {
			be.gemm(true, false, G, H, (Tn-1)*b, w.dG[b*G:], G, h, H, 1, viewT(l, gr, l.whh(k)), H)
		}
		gbi, gbh := viewT(l, gr, l.bih(k)), viewT(l, gr, l.bhh(k))
		for r := range Tn * b {
			row := w.dG[r*G : (r+1)*G]
			for u, v := range row {
				gbi[u] += v
			}
		}
		copy(gbh, gbi) // b_ih and b_hh receive the same gradient
		if k == 0 {
			break
		}
		// Gradient into the layer below's outputs (through its dropout).
		be.gemmOp(false, Tn*b, w.dG, G, &n.wih[k], 0, w.dHo, H)
		if masks != nil && len(masks.Inter) > k-1 && masks.Inter[k-1] != nil {
			m := masks.Inter[k-1]
			for t := range Tn {
				for j := range b {
					mr := m[(t*B+j0+j)*H : (t*B+j0+j+1)*H]
					dr := w.dHo[(t*b+j)*H : (t*b+j+1)*H]
					for u := range dr {
						dr[u] *= T(mr[u])
					}
				}
			}
		}
	}
}

// cellBackward is one step of BPTT for b rows: dHo is the gradient into h_t
// from above, dh and dc carry dL/dh_t and dL/dc_t from step t+1 on entry and
// dc carries dL/dc_{t-1} on return (dh is recomputed by the caller); dG
// receives the gradient of the gate pre-activations.
func cellBackward[T Float](g, cPrev, tc, dHo, dh, dc, dG []T, b, H int) {
	G := 4 * H
	for j := range b {
		if is32[T]() {
			var cp []float32
			if cPrev != nil {
				cp = f32(cPrev[j*H : (j+1)*H])
			}
			if cellBackwardRow32(f32(g[j*G:(j+1)*G]), cp, f32(tc[j*H:(j+1)*H]), f32(dHo[j*H:(j+1)*H]),
				f32(dh[j*H:(j+1)*H]), f32(dc[j*H:(j+1)*H]), f32(dG[j*G:(j+1)*G]), H) {
				continue
			}
		}
		gr := g[j*G : (j+1)*G]
		gi, gf, gg, gov := gr[:H], gr[H:2*H], gr[2*H:3*H], gr[3*H:G]
		dgr := dG[j*G : (j+1)*G]
		di, df, dg, do := dgr[:H], dgr[H:2*H], dgr[2*H:3*H], dgr[3*H:G]
		tcr, dho := tc[j*H:(j+1)*H], dHo[j*H:(j+1)*H]
		dhr, dcr := dh[j*H:(j+1)*H], dc[j*H:(j+1)*H]
		var cp []T
		if cPrev != nil {
			cp = cPrev[j*H : (j+1)*H]
		}
		for u := range H {
			i, f, gv, o, tcv := gi[u], gf[u], gg[u], gov[u], tcr[u]
			dhv := dho[u] + dhr[u]
			dcv := dcr[u] + dhv*o*(1-tcv*tcv)
			var cpv T
			if cp != nil {
				cpv = cp[u]
			}
			di[u] = dcv * gv * i * (1 - i)
			df[u] = dcv * cpv * f * (1 - f)
			dg[u] = dcv * i * (1 - gv*gv)
			do[u] = dhv * tcv * o * (1 - o)
			dcr[u] = dcv * f
		}
	}
}
