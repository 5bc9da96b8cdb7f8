package nn

// The pure-Go float32 backend: a packed GEMM in the BLIS style. B is packed
// into panels of nr columns (k-major), A into panels of mr rows, and a
// micro-kernel computes one mr×nr tile of C from a pair of panels. On amd64
// with AVX2 and FMA the micro-kernels are assembly (gemm_amd64.s); elsewhere
// they are the Go loops of gemmKernelGo. The LSTM's products are small
// (m = the batch shard, k and n a few hundred), so the weights are packed
// once per batch (prepare) and reused by every time step.

const (
	mr      = 4   // rows of a micro-tile
	nr      = 16  // columns of a micro-tile (two AVX registers)
	kcBlock = 384 // depth of one packed block (the panels stay in L1/L2)
)

func init() {
	registerBackend(backend32{
		name: "go",
		desc: func() string {
			if useAsm {
				return "pure Go, " + asmName + " assembly micro-kernels"
			}
			return "pure Go, portable kernels"
		},
		new: func() blas[float32] { return &goBLAS{} },
	})
}

// goBLAS is the pure-Go backend; its scratch makes it single-goroutine.
type goBLAS struct {
	apack []float32 // one A panel: kcBlock × mr
	bpack []float32 // one packed B block for gemm
	tile  [mr * nr]float32
}

func grow32(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

func panels(n int) int { return (n + nr - 1) / nr }

// checkGemm panics when the slices cannot hold the matrices (a programming
// error: the assembly kernels do not check bounds).
func checkGemm(tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	need := func(rows, cols, ld int) int {
		if rows == 0 || cols == 0 {
			return 0
		}
		return (rows-1)*ld + cols
	}
	ar, ac := m, k
	if tA {
		ar, ac = k, m
	}
	br, bc := k, n
	if tB {
		br, bc = n, k
	}
	if len(a) < need(ar, ac, lda) || len(b) < need(br, bc, ldb) || len(c) < need(m, n, ldc) ||
		lda < ac || ldb < bc || ldc < n {
		panic("nn: gemm operands too small for their shapes")
	}
}

func (g *goBLAS) gemm(tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm(tA, tB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		scaleRows(m, n, beta, c, ldc)
		return
	}
	np := panels(n)
	for k0 := 0; k0 < k; k0 += kcBlock {
		kb := min(kcBlock, k-k0)
		g.bpack = grow32(g.bpack, kb*np*nr)
		packB(g.bpack, tB, b, ldb, k0, kb, n)
		bt := beta
		if k0 > 0 {
			bt = 1
		}
		g.macro(tA, m, n, kb, a, lda, k0, g.bpack, bt, c, ldc)
	}
}

func (g *goBLAS) prepare(o *operand[float32]) {
	np := panels(o.n)
	o.packed = grow32(o.packed, o.k*np*nr)
	off := 0
	for k0 := 0; k0 < o.k; k0 += kcBlock {
		kb := min(kcBlock, o.k-k0)
		packB(o.packed[off:off+kb*np*nr], o.trans, o.b, o.ldb, k0, kb, o.n)
		off += kb * np * nr
	}
}

func (g *goBLAS) gemmOp(tA bool, m int, a []float32, lda int, o *operand[float32], beta float32, c []float32, ldc int) {
	n, k := o.n, o.k
	checkGemm(tA, o.trans, m, n, k, a, lda, o.b, o.ldb, c, ldc)
	if len(o.packed) < k*panels(n)*nr {
		panic("nn: gemmOp with an unprepared operand")
	}
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		scaleRows(m, n, beta, c, ldc)
		return
	}
	np := panels(n)
	off := 0
	for k0 := 0; k0 < k; k0 += kcBlock {
		kb := min(kcBlock, k-k0)
		bt := beta
		if k0 > 0 {
			bt = 1
		}
		g.macro(tA, m, n, kb, a, lda, k0, o.packed[off:off+kb*np*nr], bt, c, ldc)
		off += kb * np * nr
	}
}

func scaleRows(m, n int, beta float32, c []float32, ldc int) {
	if beta == 1 {
		return
	}
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// packB copies rows k0..k0+kb of op(B) (k×n) into panels of nr columns:
// dst[p*kb*nr + kk*nr + c] = op(B)[k0+kk][p*nr+c], zero-padded past n.
func packB(dst []float32, trans bool, b []float32, ldb, k0, kb, n int) {
	np := panels(n)
	for p := range np {
		j0 := p * nr
		cn := min(nr, n-j0)
		pd := dst[p*kb*nr : (p+1)*kb*nr]
		if !trans {
			if cn == nr {
				for kk := range kb {
					*(*[nr]float32)(pd[kk*nr:]) = *(*[nr]float32)(b[(k0+kk)*ldb+j0:])
				}
				continue
			}
			for kk := range kb {
				row := b[(k0+kk)*ldb+j0 : (k0+kk)*ldb+j0+cn]
				d := pd[kk*nr : kk*nr+nr]
				copy(d, row)
				clear(d[cn:])
			}
			continue
		}
		if cn < nr {
			clear(pd)
		}
		for c := range cn {
			col := b[(j0+c)*ldb+k0 : (j0+c)*ldb+k0+kb]
			for kk, v := range col {
				pd[kk*nr+c] = v
			}
		}
	}
}

// packA copies rows i0..i0+mb of op(A), columns k0..k0+kb, into panels of
// mr rows: dst[q*kb*mr + kk*mr + rr] = op(A)[i0+q*mr+rr][k0+kk], zero-padded
// past mb.
func packA(dst []float32, trans bool, a []float32, lda, i0, mb, k0, kb int) {
	npa := (mb + mr - 1) / mr
	if rem := mb % mr; rem != 0 {
		clear(dst[(npa-1)*kb*mr : npa*kb*mr])
	}
	if trans {
		// Four panels (one 64-byte line of a row of A) at a time: reads and
		// writes both stay sequential enough for the caches.
		full := mb / mr
		for q0 := 0; q0 < full; q0 += 4 {
			q1 := min(q0+4, full)
			for kk := range kb {
				row := a[(k0+kk)*lda+i0:]
				for q := q0; q < q1; q++ {
					*(*[mr]float32)(dst[q*kb*mr+kk*mr:]) = *(*[mr]float32)(row[q*mr:])
				}
			}
		}
		if full*mr < mb {
			for kk := range kb {
				row := a[(k0+kk)*lda+i0 : (k0+kk)*lda+i0+mb]
				for i := full * mr; i < mb; i++ {
					dst[full*kb*mr+kk*mr+i-full*mr] = row[i]
				}
			}
		}
		return
	}
	full := mb / mr
	for q := range full {
		base := (i0 + q*mr) * lda
		r0 := a[base+k0 : base+k0+kb]
		r1 := a[base+lda+k0 : base+lda+k0+kb]
		r2 := a[base+2*lda+k0 : base+2*lda+k0+kb]
		r3 := a[base+3*lda+k0 : base+3*lda+k0+kb]
		d := dst[q*kb*mr : (q+1)*kb*mr]
		for kk := range r0 {
			e := d[kk*mr : kk*mr+mr : kk*mr+mr]
			e[0], e[1], e[2], e[3] = r0[kk], r1[kk], r2[kk], r3[kk]
		}
	}
	for i := full * mr; i < mb; i++ {
		rr := i - full*mr
		d := dst[full*kb*mr : (full+1)*kb*mr]
		src := a[(i0+i)*lda+k0 : (i0+i)*lda+k0+kb]
		for kk, v := range src {
			d[kk*mr+rr] = v
		}
	}
}

// mcBlock is the number of rows of A packed at a time (the packed block stays
// in L2 while each B panel, in L1, sweeps it).
const mcBlock = 128

// macro multiplies op(A)[:, k0:k0+kb] by one packed block of B into C.
func (g *goBLAS) macro(tA bool, m, n, kb int, a []float32, lda, k0 int, bp []float32, beta float32, c []float32, ldc int) {
	acc := beta != 0
	for i0 := 0; i0 < m; i0 += mcBlock {
		mb := min(mcBlock, m-i0)
		if use512 && n%(2*nr) == 0 && (mb >= 2*mr || mb >= mr && n%(4*nr) == 0) {
			// AVX-512 with whole pairs of column panels: 8×32 tiles (and a
			// 4×64 one for four leftover rows) read A in place, no packing;
			// the last rows take the general path.
			done := mb &^ (2*mr - 1)
			if done > 0 {
				g.macro8(tA, n, kb, a, lda, k0, bp, c, ldc, i0, done, acc)
			}
			if mb-done >= mr && n%(4*nr) == 0 {
				g.macro4(tA, n, kb, a, lda, k0, bp, c, ldc, i0+done, acc)
				done += mr
			}
			if done < mb {
				g.block(tA, n, kb, a, lda, k0, bp, c, ldc, i0+done, mb-done, acc)
			}
			continue
		}
		g.block(tA, n, kb, a, lda, k0, bp, c, ldc, i0, mb, acc)
	}
}

// macro8 computes rows i0..i0+m8 (m8 a multiple of 8, n of 32) of the
// product of macro with 8×32 tiles, A read in place: each B panel pair stays
// in L1 while it sweeps the rows. The bits equal those of block's 4×32 tiles.
func (g *goBLAS) macro8(tA bool, n, kb int, a []float32, lda, k0 int, bp []float32, c []float32, ldc, i0, m8 int, acc bool) {
	ks, rs := 1, lda // A: row r at a[r*lda], step k at +k
	if tA {
		ks, rs = lda, 1 // Aᵀ: step k at a[k*lda], row r at +r
	}
	for p := 0; p < panels(n); p += 2 {
		j0 := p * nr
		pb0, pb1 := bp[p*kb*nr:(p+1)*kb*nr], bp[(p+1)*kb*nr:(p+2)*kb*nr]
		for ri := i0; ri < i0+m8; ri += 2 * mr {
			var a0, a1 []float32
			if tA {
				a0, a1 = a[k0*lda+ri:], a[k0*lda+ri+mr:]
			} else {
				a0, a1 = a[ri*lda+k0:], a[(ri+mr)*lda+k0:]
			}
			kernel8x32(kb, a0, a1, ks, rs, pb0, pb1, c[ri*ldc+j0:], ldc, acc)
		}
	}
}

// macro4 computes rows ri..ri+4 (n a multiple of 64) of the product of macro
// with 4×64 tiles, A read in place; the bits equal those of block's 4×32
// tiles.
func (g *goBLAS) macro4(tA bool, n, kb int, a []float32, lda, k0 int, bp []float32, c []float32, ldc, ri int, acc bool) {
	var ks, rs int
	var ai []float32
	if tA {
		ks, rs, ai = lda, 1, a[k0*lda+ri:]
	} else {
		ks, rs, ai = 1, lda, a[ri*lda+k0:]
	}
	for p := 0; p < panels(n); p += 4 {
		kernel4x64(kb, ai, ks, rs, bp[p*kb*nr:(p+4)*kb*nr], c[ri*ldc+p*nr:], ldc, acc)
	}
}

// block computes rows i0..i0+mb (mb ≤ mcBlock) of the product of macro.
func (g *goBLAS) block(tA bool, n, kb int, a []float32, lda, k0 int, bp []float32, c []float32, ldc, i0, mb int, acc bool) {
	np := panels(n)
	npa := (mb + mr - 1) / mr
	// op(A) = Aᵀ: step k's four values of a row panel are contiguous in
	// A's row k, so full panels are read in place (packing Aᵀ costs as
	// much as the product here); only a partial last panel is packed.
	direct := tA && useAsm
	g.apack = grow32(g.apack, npa*kb*mr)
	if mb == 1 {
		// One row (single-window inference): the row kernel reads A
		// in place.
		var as int
		var ai []float32
		if tA {
			as, ai = lda, a[k0*lda+i0:]
		} else {
			as, ai = 1, a[i0*lda+k0:]
		}
		for p := 0; p < np; p++ {
			j0 := p * nr
			cn := min(nr, n-j0)
			pb := bp[p*kb*nr : (p+1)*kb*nr]
			if use512 && n-j0 >= 2*nr {
				// Two panels per pass over the row (AVX-512).
				kernel1x32(kb, ai, as, pb, bp[(p+1)*kb*nr:(p+2)*kb*nr], c[i0*ldc+j0:], acc)
				p++
				continue
			}
			if cn == nr {
				kernel1x16(kb, ai, as, pb, c[i0*ldc+j0:], acc)
				continue
			}
			packA(g.apack, tA, a, lda, i0, 1, k0, kb)
			g.edge(kb, g.apack, mr, pb, c, i0, 1, j0, cn, ldc, acc)
		}
		return
	}
	if direct {
		if mb%mr != 0 {
			q := npa - 1
			packA(g.apack[q*kb*mr:], tA, a, lda, i0+q*mr, mb-q*mr, k0, kb)
		}
	} else {
		packA(g.apack, tA, a, lda, i0, mb, k0, kb)
	}
	for p := 0; p < np; p++ {
		j0 := p * nr
		cn := min(nr, n-j0)
		pb := bp[p*kb*nr : (p+1)*kb*nr]
		// AVX-512: two full panels at a time for the full row panels.
		pair := use512 && p+1 < np && n-j0 >= 2*nr
		for q := range npa {
			pa, as := g.apack[q*kb*mr:(q+1)*kb*mr], mr
			ri := i0 + q*mr
			r := min(mr, i0+mb-ri)
			if direct && r == mr {
				pa, as = a[k0*lda+ri:], lda
			}
			switch {
			case pair && r == mr:
				kernel4x32(kb, pa, as, pb, bp[(p+1)*kb*nr:(p+2)*kb*nr], c[ri*ldc+j0:], ldc, acc)
			case pair:
				g.edge(kb, pa, as, pb, c, ri, r, j0, nr, ldc, acc)
				g.edge(kb, pa, as, bp[(p+1)*kb*nr:(p+2)*kb*nr], c, ri, r, j0+nr, nr, ldc, acc)
			case r == mr && cn == nr:
				kernel4x16(kb, pa, as, pb, c[ri*ldc+j0:], ldc, acc)
			default:
				g.edge(kb, pa, as, pb, c, ri, r, j0, cn, ldc, acc)
			}
		}
		if pair {
			p++
		}
	}
}

// edge computes a partial tile (r < mr rows or cn < nr columns) at C[ri][j0].
func (g *goBLAS) edge(kb int, pa []float32, as int, pb, c []float32, ri, r, j0, cn, ldc int, acc bool) {
	if r == 1 && cn == nr {
		kernel1x16(kb, pa, as, pb, c[ri*ldc+j0:], acc)
		return
	}
	kernel4x16(kb, pa, as, pb, g.tile[:], nr, false)
	for rr := range r {
		ci := c[(ri+rr)*ldc+j0 : (ri+rr)*ldc+j0+cn]
		ti := g.tile[rr*nr : rr*nr+cn]
		if acc {
			for j := range ci {
				ci[j] += ti[j]
			}
		} else {
			copy(ci, ti)
		}
	}
}

// gemmKernelGo is the portable 4×16 micro-kernel: C[0:4][0:16] (+)= A·B for
// one A panel (step k's four values at a[k*astride]; astride mr when packed)
// and one packed B panel (kb×nr).
func gemmKernelGo(kb int, a []float32, astride int, b, c []float32, ldc int, acc bool) {
	var t [mr * nr]float32
	for kk := range kb {
		bk := b[kk*nr : kk*nr+nr]
		ak := a[kk*astride : kk*astride+mr]
		for r, av := range ak {
			tr := t[r*nr : r*nr+nr]
			for j, bv := range bk {
				tr[j] += av * bv
			}
		}
	}
	for r := range mr {
		ci := c[r*ldc : r*ldc+nr]
		tr := t[r*nr : r*nr+nr]
		if acc {
			for j := range ci {
				ci[j] += tr[j]
			}
		} else {
			copy(ci, tr)
		}
	}
}

// gemvKernelGo is the portable 1×16 micro-kernel: one row of A (stride
// astride in the packed panel) times one packed B panel.
func gemvKernelGo(kb int, a []float32, astride int, b, c []float32, acc bool) {
	var t [nr]float32
	for kk := range kb {
		av := a[kk*astride]
		bk := b[kk*nr : kk*nr+nr]
		for j, bv := range bk {
			t[j] += av * bv
		}
	}
	ci := c[:nr]
	if acc {
		for j := range ci {
			ci[j] += t[j]
		}
	} else {
		copy(ci, t[:])
	}
}
