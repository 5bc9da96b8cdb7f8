package dataset

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet"

	"github.com/modax/modax-ml/internal/exitcode"
)

// Split names.
const (
	SplitTrain = "train"
	SplitVal   = "val"
	SplitTest  = "test"
)

// Scaler maps raw sensor values to model inputs: (x - Offset) / Scale, per
// feature. For z-score Offset is the mean and Scale the standard deviation;
// for min-max they are the minimum and the range. Constant features have
// Scale 1.
//
// Per-operating-condition normalisation (C-MAPSS FD002/FD004): when
// Conditions is set, Offset and Scale are empty and every row is scaled with
// the parameters of its operating condition (ConditionScaler). A consumer that
// handles only one global scaler (Apply, Invert, an ONNX Sub/Div front) must
// check PerCondition and refuse such a scaler; Params serves both forms.
type Scaler struct {
	Kind     string    `json:"kind"` // "zscore", "minmax" or "none"
	Features []string  `json:"features"`
	Offset   []float64 `json:"offset"`
	Scale    []float64 `json:"scale"`
	// FitSplit names the split the parameters were fitted on.
	FitSplit string `json:"fit_split"`
	FitRows  int64  `json:"fit_rows"`
	// Conditions holds per-operating-condition parameters (nil: one global
	// scaler in Offset/Scale).
	Conditions *ConditionScaler `json:"conditions,omitempty"`
}

// ConditionScaler holds one scaler per operating condition. The condition of a
// row is the index k of the Center nearest (Euclidean distance) to the row's
// raw values of Columns; its features are scaled as (x - Offset[k][j]) /
// Scale[k][j]. Centers are the mean condition values of the training rows of
// each condition (conditions were found on the train split by rounding the
// condition columns to Decimals decimals).
type ConditionScaler struct {
	Columns  []string    `json:"columns"`
	Decimals int         `json:"decimals"`
	Centers  [][]float64 `json:"centers"` // [condition][column]
	Offset   [][]float64 `json:"offset"`  // [condition][feature]
	Scale    [][]float64 `json:"scale"`   // [condition][feature]
	FitRows  []int64     `json:"fit_rows"`
}

// PerCondition reports whether s scales per operating condition.
func (s *Scaler) PerCondition() bool { return s.Conditions != nil }

// Apply scales one value of feature j (global scaler only).
func (s *Scaler) Apply(j int, v float64) float64 { return (v - s.Offset[j]) / s.Scale[j] }

// Invert maps a scaled value of feature j back to its raw value (global
// scaler only).
func (s *Scaler) Invert(j int, v float64) float64 { return v*s.Scale[j] + s.Offset[j] }

// Params returns the offset and scale that apply to a row whose condition
// columns hold cond (cond is ignored by a global scaler).
func (s *Scaler) Params(cond []float64) (offset, scale []float64) {
	if s.Conditions == nil {
		return s.Offset, s.Scale
	}
	k := s.Conditions.Condition(cond)
	return s.Conditions.Offset[k], s.Conditions.Scale[k]
}

// Condition returns the index of the condition whose center is nearest to
// values (the row's raw values of Columns); ties go to the lower index.
func (c *ConditionScaler) Condition(values []float64) int { return NearestCenter(c.Centers, values) }

// NearestCenter returns the index of the center nearest to values in
// Euclidean distance; ties go to the lower index (0 without centers).
func NearestCenter(centers [][]float64, values []float64) int {
	best, bestD := 0, math.Inf(1)
	for k, ctr := range centers {
		var d float64
		for j, v := range values {
			e := v - ctr[j]
			d += e * e
		}
		if d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// check verifies that s is consistent with nFeatures features.
func (s *Scaler) check(nFeatures int) error {
	c := s.Conditions
	if c == nil {
		if len(s.Offset) != nFeatures || len(s.Scale) != nFeatures {
			return fmt.Errorf("scaler has %d/%d parameters for %d features", len(s.Offset), len(s.Scale), nFeatures)
		}
		return nil
	}
	if len(c.Centers) == 0 || len(c.Offset) != len(c.Centers) || len(c.Scale) != len(c.Centers) {
		return fmt.Errorf("per-condition scaler has %d centers, %d offsets, %d scales", len(c.Centers), len(c.Offset), len(c.Scale))
	}
	for k := range c.Centers {
		if len(c.Centers[k]) != len(c.Columns) || len(c.Offset[k]) != nFeatures || len(c.Scale[k]) != nFeatures {
			return fmt.Errorf("per-condition scaler: condition %d has %d/%d/%d values for %d columns and %d features", k, len(c.Centers[k]), len(c.Offset[k]), len(c.Scale[k]), len(c.Columns), nFeatures)
		}
	}
	return nil
}

// MaxWindow bounds a window's length in time steps (features --window, a
// checkpoint's or an ONNX model's window): far above any RUL model's input
// (C-MAPSS uses 30), and it keeps a mistyped flag or a crafted file from
// asking for a window buffer of gigabytes.
const MaxWindow = 1 << 16

// WindowsMeta is what a windows file's metadata tells the trainer, the
// predictor and the exporter.
type WindowsMeta struct {
	Window     int
	Stride     int
	Features   []string
	Scaler     Scaler
	Horizon    float64
	Thresholds Thresholds
}

// Set records wm in meta.
func (wm WindowsMeta) Set(meta Meta) {
	meta.MustSet(MetaWindow, wm.Window)
	meta.MustSet(MetaStride, wm.Stride)
	meta.MustSet(MetaFeatures, wm.Features)
	meta.MustSet(MetaScaler, wm.Scaler)
	meta.MustSet(MetaHorizon, wm.Horizon)
	meta.MustSet(MetaThresholds, wm.Thresholds)
}

// ReadWindowsMeta decodes the windows metadata of a file.
func ReadWindowsMeta(loc string, meta Meta) (WindowsMeta, error) {
	var wm WindowsMeta
	for _, kv := range []struct {
		key string
		v   any
	}{
		{MetaWindow, &wm.Window}, {MetaStride, &wm.Stride}, {MetaFeatures, &wm.Features},
		{MetaScaler, &wm.Scaler}, {MetaHorizon, &wm.Horizon}, {MetaThresholds, &wm.Thresholds},
	} {
		ok, err := meta.Get(kv.key, kv.v)
		if err != nil {
			return wm, fmt.Errorf("%s: %w", loc, err)
		}
		if !ok {
			return wm, fmt.Errorf("%s: windows file lacks %s metadata", loc, kv.key)
		}
	}
	if err := wm.Scaler.check(len(wm.Features)); err != nil {
		return wm, fmt.Errorf("%s: %w", loc, err)
	}
	return wm, nil
}

// Window is one row of a windows file. X holds Window × Features scaled
// values, time-major (X[t*F+f]). RULRaw is NaN when unknown.
type Window struct {
	Tenant, Device string
	LifeID         int32
	End            int64 // time of the window's last reading, µs
	RUL, RULRaw    float64
	Health         Health
	Split          string
	X              []float32
}

// WindowsWriter writes a windows file in batches.
type WindowsWriter struct {
	*batchWriter
	x        *array.Float32Builder
	size     int
	features []string
}

// xColumnPath is the Parquet leaf path of the x column (a LIST of elements).
const xColumnPath = ColX + ".list.element"

// CreateWindows starts a windows file; wm is recorded in the metadata.
//
// x is written without dictionary encoding or column statistics, as
// BYTE_STREAM_SPLIT floats: hashing every value for a dictionary that float
// data overflows anyway cost a third of the writing time, and byte-stream
// split lets zstd compress floats better.
func CreateWindows(loc string, wm WindowsMeta, meta Meta, opts ...WriterOption) (*WindowsWriter, error) {
	m := meta.Clone()
	wm.Set(m)
	sch := NewSchema(KindWindows, WindowsColumns(wm.Window, len(wm.Features)), m)
	opts = append([]WriterOption{withParquetProps(
		parquet.WithDictionaryFor(xColumnPath, false),
		parquet.WithStatsFor(xColumnPath, false),
		parquet.WithEncodingFor(xColumnPath, parquet.Encodings.ByteStreamSplit),
	)}, opts...)
	bw, err := newBatchWriter(loc, sch, windowsBatch, opts)
	if err != nil {
		return nil, err
	}
	x := bw.bld.Field(len(windowsKey)).(*array.FixedSizeListBuilder).ValueBuilder().(*array.Float32Builder)
	ww := &WindowsWriter{batchWriter: bw, x: x, size: wm.Window * len(wm.Features), features: wm.Features}
	// Size the builders for one batch, so that x does not grow by doubling
	// (and copying) window after window.
	bw.reserve = func() {
		bw.bld.Reserve(windowsBatch)
		x.Reserve(windowsBatch * ww.size)
	}
	bw.reserve()
	return ww, nil
}

// windowsBatch is the number of windows per batch (and row group).
const windowsBatch = 16 * 1024

// Append adds one window.
func (w *WindowsWriter) Append(win *Window) error {
	if len(win.X) != w.size {
		return fmt.Errorf("write %s: window of %s has %d values, want %d", w.loc, win.Device, len(win.X), w.size)
	}
	if j := FirstNonFinite(win.X); j >= 0 && !w.nonFiniteX {
		nf := len(w.features)
		return fmt.Errorf("%w: write %s: window of device %s ending %s: x is %v at position %d (time step %d, feature %s); windows must hold finite values",
			exitcode.ErrValidation, w.loc, win.Device, TimeOf(win.End).Format(time.RFC3339), win.X[j], j, j/nf, w.features[j%nf])
	}
	appendWindowKey(w.bld, win.Tenant, win.Device, win.LifeID, win.End, win.RUL, win.RULRaw, win.Health, win.Split)
	w.bld.Field(len(windowsKey)).(*array.FixedSizeListBuilder).Append(true)
	w.x.AppendValues(win.X, nil)
	return w.added(1)
}

// WindowKeys are the key columns of a windows or stats file (one row per
// window) held in memory, one element per row.
type WindowKeys struct {
	Tenant []string
	Device []string
	LifeID []int32
	End    []int64
	RUL    []float64
	RULRaw []float64 // NaN when unknown
	Health []Health
	Split  []string
}

// Len returns the number of rows.
func (k *WindowKeys) Len() int { return len(k.End) }

// appendWindowKey appends the key columns (windowsKey, the leading columns of
// windows and stats files) of one row to b. A NaN rulRaw is written as null.
func appendWindowKey(b *array.RecordBuilder, tenant, device string, life int32, end int64, rul, rulRaw float64, h Health, split string) {
	b.Field(0).(*array.StringBuilder).Append(tenant)
	b.Field(1).(*array.StringBuilder).Append(device)
	b.Field(2).(*array.Int32Builder).Append(life)
	b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(end))
	b.Field(4).(*array.Float64Builder).Append(rul)
	if math.IsNaN(rulRaw) {
		b.Field(5).AppendNull()
	} else {
		b.Field(5).(*array.Float64Builder).Append(rulRaw)
	}
	b.Field(6).(*array.StringBuilder).Append(h.String())
	b.Field(7).(*array.StringBuilder).Append(split)
}

// windowKeyReader reads the key columns of the batches of a windows or stats
// file and keeps the rows of the wanted splits.
type windowKeyReader struct {
	loc  string
	idx  []int // positions of windowsKey's columns in the file
	want map[string]bool
	row  int // rows seen so far, for error messages

	tenant, device, health, split *array.String
	life                          *array.Int32
	end                           *array.Timestamp
	rul, raw                      *array.Float64
}

// newWindowKeyReader reads the key columns at idx (in windowsKey order),
// keeping the rows of splits (all rows when none are given).
func newWindowKeyReader(loc string, idx []int, splits []string) *windowKeyReader {
	k := &windowKeyReader{loc: loc, idx: idx, want: map[string]bool{}}
	for _, s := range splits {
		k.want[s] = true
	}
	return k
}

// read appends the keys of the wanted rows of r to out. For each batch it
// first calls batch, then row for each kept row i of the batch (after its keys
// were appended); row returns false to stop reading.
func (k *windowKeyReader) read(ctx context.Context, r *Reader, out *WindowKeys, batch func(arrow.RecordBatch), row func(i int) bool) error {
	for rec, err := range r.Batches(ctx) {
		if err != nil {
			return err
		}
		k.bind(rec)
		batch(rec)
		for i := 0; i < int(rec.NumRows()); i++ {
			ok, err := k.appendRow(out, i)
			if err != nil {
				return err
			}
			if ok && !row(i) {
				return nil
			}
		}
	}
	return nil
}

// bind points the reader at the next batch.
func (k *windowKeyReader) bind(rec arrow.RecordBatch) {
	k.tenant = rec.Column(k.idx[0]).(*array.String)
	k.device = rec.Column(k.idx[1]).(*array.String)
	k.life = rec.Column(k.idx[2]).(*array.Int32)
	k.end = rec.Column(k.idx[3]).(*array.Timestamp)
	k.rul = rec.Column(k.idx[4]).(*array.Float64)
	k.raw = rec.Column(k.idx[5]).(*array.Float64)
	k.health = rec.Column(k.idx[6]).(*array.String)
	k.split = rec.Column(k.idx[7]).(*array.String)
}

// appendRow appends the keys of row i of the bound batch to out when its split
// is wanted, and reports whether it did.
func (k *windowKeyReader) appendRow(out *WindowKeys, i int) (bool, error) {
	k.row++
	if len(k.want) > 0 && !k.want[k.split.Value(i)] {
		return false, nil
	}
	h, err := ParseHealth(k.health.Value(i))
	if err != nil {
		return false, fmt.Errorf("%s: row %d: %w", k.loc, k.row, err)
	}
	out.Tenant = append(out.Tenant, k.tenant.Value(i))
	out.Device = append(out.Device, k.device.Value(i))
	out.LifeID = append(out.LifeID, k.life.Value(i))
	out.End = append(out.End, int64(k.end.Value(i)))
	out.RUL = append(out.RUL, k.rul.Value(i))
	if k.raw.IsNull(i) {
		out.RULRaw = append(out.RULRaw, math.NaN())
	} else {
		out.RULRaw = append(out.RULRaw, k.raw.Value(i))
	}
	out.Health = append(out.Health, h)
	out.Split = append(out.Split, k.split.Value(i))
	return true, nil
}

// Windows is a set of windows held in memory, column by column.
type Windows struct {
	Meta WindowsMeta
	T, F int // window length and feature count
	WindowKeys
	X        []float32 // Len() × T × F, time-major per window
	FileMeta Meta
}

// XAt returns the values of window i.
func (w *Windows) XAt(i int) []float32 { n := w.T * w.F; return w.X[i*n : (i+1)*n] }

// ReadWindows reads the windows of the given splits (all when none are given)
// from a windows file into memory.
func ReadWindows(ctx context.Context, loc string, splits ...string) (*Windows, error) {
	return ReadWindowsN(ctx, loc, 0, splits...)
}

// ReadWindowsN is ReadWindows that stops after the first n matching windows
// (all when n ≤ 0): a sample without holding the whole split in memory.
func ReadWindowsN(ctx context.Context, loc string, n int, splits ...string) (*Windows, error) {
	r, err := Open(loc, KindWindows)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	wm, err := ReadWindowsMeta(loc, r.Meta())
	if err != nil {
		return nil, err
	}
	out := &Windows{Meta: wm, T: wm.Window, F: len(wm.Features), FileMeta: r.Meta()}
	size := out.T * out.F
	idx, err := locateColumns(loc, r.Schema(), WindowsColumns(wm.Window, len(wm.Features)))
	if err != nil {
		return nil, err
	}
	var xv []float32
	var off int
	var bad error
	kr := newWindowKeyReader(loc, idx, splits)
	err = kr.read(ctx, r, &out.WindowKeys,
		func(rec arrow.RecordBatch) {
			xl := rec.Column(idx[len(windowsKey)]).(*array.FixedSizeList)
			xv, off = xl.ListValues().(*array.Float32).Float32Values(), xl.Offset()
		},
		func(i int) bool {
			xs := xv[(off+i)*size : (off+i+1)*size]
			if bad = wm.CheckX(loc, kr.row, xs); bad != nil {
				return false
			}
			out.X = append(out.X, xs...)
			return n <= 0 || out.Len() < n
		})
	if err == nil {
		err = bad
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CheckX verifies that the x values of one window (row is its 1-based row in
// the file at loc) are finite: NaN or ±Inf is an exitcode.ErrValidation error
// naming the file, the column, the row and the position (time step and
// feature). It is the one check every reader of windows runs.
func (wm *WindowsMeta) CheckX(loc string, row int, xs []float32) error {
	j := FirstNonFinite(xs)
	if j < 0 {
		return nil
	}
	f := len(wm.Features)
	feat := ""
	if f > 0 {
		feat = wm.Features[j%f]
	} else {
		f = 1
	}
	return fmt.Errorf("%w: %s: column %s, row %d (window %d): value %v at position %d (time step %d, feature %s); windows must hold finite values",
		exitcode.ErrValidation, loc, ColX, row, row-1, xs[j], j, j/f, feat)
}

// FirstNonFinite returns the index of the first NaN or ±Inf in xs, or -1. It
// tests the exponent bits (all ones for NaN and ±Inf only): one integer AND
// and compare per value.
func FirstNonFinite(xs []float32) int {
	for j, v := range xs {
		if math.Float32bits(v)&0x7f800000 == 0x7f800000 {
			return j
		}
	}
	return -1
}
