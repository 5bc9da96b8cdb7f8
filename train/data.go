package train

import (
	"context"
	"fmt"
	"math"
	"runtime/debug"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
)

// split holds the windows of one split in memory: x [n][T][F] scaled inputs
// (as stored), rul the targets in hours.
type split struct {
	n   int
	x   []float32
	rul []float32
}

// data is what training reads from a windows file. The train windows and
// then the val windows are stored back to back in one array, so that --refit
// trains on both without a copy (trainAndVal).
type data struct {
	loc   string
	meta  dataset.WindowsMeta
	t, f  int
	train split
	val   split
	// xAll and rulAll hold train then val.
	xAll, rulAll []float32
}

// trainAndVal is the train and val windows together, as one split.
func (d *data) trainAndVal() split {
	n := d.train.n + d.val.n
	return split{n: n, x: d.xAll[:n*d.t*d.f], rul: d.rulAll[:n]}
}

// loadWindows reads the train and val splits of a windows file. It makes two
// passes: the first reads only the split column to size the arrays exactly
// (so the peak memory is the windows kept plus one record batch), the second
// reads x and the targets. NaN or infinite values are errors naming the row.
func loadWindows(ctx context.Context, loc, valSplit string) (*data, error) {
	r, err := dataset.Open(loc, dataset.KindWindows)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	wm, err := dataset.ReadWindowsMeta(loc, r.Meta())
	if err != nil {
		return nil, err
	}
	d := &data{loc: loc, meta: wm, t: wm.Window, f: len(wm.Features)}
	if d.t < 1 || d.f < 1 {
		return nil, fmt.Errorf("%w: %s: window %d × %d features", exitcode.ErrValidation, loc, d.t, d.f)
	}
	for rec, err := range r.Batches(ctx, dataset.ColSplit) {
		if err != nil {
			return nil, err
		}
		sp := rec.Column(0).(*array.String)
		for i := range sp.Len() {
			switch sp.Value(i) {
			case dataset.SplitTrain:
				d.train.n++
			case valSplit:
				d.val.n++
			}
		}
	}
	size := d.t * d.f
	// The windows are one large pointer-free allocation that stays live; with
	// the default GOGC the collector would let the reader's garbage grow to
	// as much again before collecting. A low GOGC while reading keeps the
	// peak near the data size (marking pointer-free memory costs little).
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	nt, nv := d.train.n, d.val.n
	d.xAll, d.rulAll = make([]float32, (nt+nv)*size), make([]float32, nt+nv)
	d.train.x, d.train.rul = d.xAll[:0:nt*size], d.rulAll[:0:nt]
	d.val.x, d.val.rul = d.xAll[nt*size:nt*size], d.rulAll[nt:nt]
	row := 0
	for rec, err := range r.Batches(ctx, dataset.ColDevice, dataset.ColRUL, dataset.ColSplit, dataset.ColX) {
		if err != nil {
			return nil, err
		}
		dv := rec.Column(0).(*array.String)
		rul := rec.Column(1).(*array.Float64)
		sp := rec.Column(2).(*array.String)
		xl := rec.Column(3).(*array.FixedSizeList)
		xv := xl.ListValues().(*array.Float32).Float32Values()
		off := xl.Offset()
		for i := range int(rec.NumRows()) {
			row++
			var s *split
			switch sp.Value(i) {
			case dataset.SplitTrain:
				s = &d.train
			case valSplit:
				s = &d.val
			default:
				continue
			}
			bad := func(what string) error {
				return fmt.Errorf("%w: %s: row %d (device %s, split %s): %s", exitcode.ErrValidation, loc, row, dv.Value(i), sp.Value(i), what)
			}
			y := rul.Value(i)
			if rul.IsNull(i) || math.IsNaN(y) || math.IsInf(y, 0) {
				return nil, bad(fmt.Sprintf("%s is %v", dataset.ColRUL, y))
			}
			if xl.IsNull(i) {
				return nil, bad("x is null")
			}
			xs := xv[(off+i)*size : (off+i+1)*size]
			if err := wm.CheckX(loc, row, xs); err != nil {
				return nil, fmt.Errorf("%w (device %s, split %s)", err, dv.Value(i), sp.Value(i))
			}
			if len(s.rul) == s.n {
				return nil, fmt.Errorf("%s: the file changed while it was read (more %s windows than counted)", loc, sp.Value(i))
			}
			s.x = append(s.x, xs...)
			s.rul = append(s.rul, float32(y))
		}
	}
	if len(d.train.rul) != d.train.n || len(d.val.rul) != d.val.n {
		return nil, fmt.Errorf("%s: the file changed while it was read (fewer windows than counted)", loc)
	}
	return d, nil
}

// xAt returns the values of window i of s.
func (d *data) xAt(s *split, i int) []float32 {
	n := d.t * d.f
	return s.x[i*n : (i+1)*n]
}
