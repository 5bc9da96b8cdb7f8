package dataset

import (
	"context"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
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
func (c *ConditionScaler) Condition(values []float64) int {
	best, bestD := 0, math.Inf(1)
	for k, ctr := range c.Centers {
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
	*Writer
	bld     *array.RecordBuilder
	x       *array.Float32Builder
	size    int
	pending int
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
	w, err := Create(loc, sch, opts...)
	if err != nil {
		return nil, err
	}
	cfg := writerConfig{mem: memory.DefaultAllocator}
	for _, o := range opts {
		o(&cfg)
	}
	bld := array.NewRecordBuilder(cfg.mem, sch)
	x := bld.Field(len(windowsKey)).(*array.FixedSizeListBuilder).ValueBuilder().(*array.Float32Builder)
	ww := &WindowsWriter{Writer: w, bld: bld, x: x, size: wm.Window * len(wm.Features)}
	ww.reserve()
	return ww, nil
}

// windowsBatch is the number of windows per batch (and row group).
const windowsBatch = 16 * 1024

// reserve sizes the builders for one batch, so that x does not grow by
// doubling (and copying) window after window.
func (w *WindowsWriter) reserve() {
	w.bld.Reserve(windowsBatch)
	w.x.Reserve(windowsBatch * w.size)
}

// Append adds one window.
func (w *WindowsWriter) Append(win *Window) error {
	if len(win.X) != w.size {
		return fmt.Errorf("write %s: window of %s has %d values, want %d", w.loc, win.Device, len(win.X), w.size)
	}
	b := w.bld
	b.Field(0).(*array.StringBuilder).Append(win.Tenant)
	b.Field(1).(*array.StringBuilder).Append(win.Device)
	b.Field(2).(*array.Int32Builder).Append(win.LifeID)
	b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(win.End))
	b.Field(4).(*array.Float64Builder).Append(win.RUL)
	if math.IsNaN(win.RULRaw) {
		b.Field(5).AppendNull()
	} else {
		b.Field(5).(*array.Float64Builder).Append(win.RULRaw)
	}
	b.Field(6).(*array.StringBuilder).Append(win.Health.String())
	b.Field(7).(*array.StringBuilder).Append(win.Split)
	b.Field(8).(*array.FixedSizeListBuilder).Append(true)
	w.x.AppendValues(win.X, nil)
	w.pending++
	if w.pending >= windowsBatch {
		if err := w.flush(); err != nil {
			return err
		}
		w.reserve()
	}
	return nil
}

func (w *WindowsWriter) flush() error {
	if w.pending == 0 {
		return nil
	}
	rec := w.bld.NewRecordBatch()
	defer rec.Release()
	w.pending = 0
	return w.Write(rec)
}

// Commit writes the last batch and moves the file into place.
func (w *WindowsWriter) Commit() error {
	defer w.bld.Release()
	if err := w.flush(); err != nil {
		w.Abort()
		return err
	}
	return w.Writer.Commit()
}

// Windows is a set of windows held in memory, column by column.
type Windows struct {
	Meta     WindowsMeta
	T, F     int // window length and feature count
	Tenant   []string
	Device   []string
	LifeID   []int32
	End      []int64
	RUL      []float64
	RULRaw   []float64 // NaN when unknown
	Health   []Health
	Split    []string
	X        []float32 // Len() × T × F, time-major per window
	FileMeta Meta
}

// Len returns the number of windows.
func (w *Windows) Len() int { return len(w.End) }

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
	want := map[string]bool{}
	for _, s := range splits {
		want[s] = true
	}
	out := &Windows{Meta: wm, T: wm.Window, F: len(wm.Features), FileMeta: r.Meta()}
	size := out.T * out.F
	sch := r.Schema()
	col := func(name string) int { return sch.FieldIndices(name)[0] }
	idx := []int{col(ColTenant), col(ColDevice), col(ColLifeID), col(ColWindowEnd), col(ColRUL), col(ColRULRaw), col(ColHealth), col(ColSplit), col(ColX)}
	row := 0
	for rec, err := range r.Batches(ctx) {
		if err != nil {
			return nil, err
		}
		tn := rec.Column(idx[0]).(*array.String)
		dv := rec.Column(idx[1]).(*array.String)
		li := rec.Column(idx[2]).(*array.Int32)
		we := rec.Column(idx[3]).(*array.Timestamp)
		rul := rec.Column(idx[4]).(*array.Float64)
		raw := rec.Column(idx[5]).(*array.Float64)
		hs := rec.Column(idx[6]).(*array.String)
		sp := rec.Column(idx[7]).(*array.String)
		xl := rec.Column(idx[8]).(*array.FixedSizeList)
		xv := xl.ListValues().(*array.Float32).Float32Values()
		off := xl.Offset()
		for i := 0; i < int(rec.NumRows()); i++ {
			row++
			if len(want) > 0 && !want[sp.Value(i)] {
				continue
			}
			h, err := ParseHealth(hs.Value(i))
			if err != nil {
				return nil, fmt.Errorf("%s: row %d: %w", loc, row, err)
			}
			out.Tenant = append(out.Tenant, tn.Value(i))
			out.Device = append(out.Device, dv.Value(i))
			out.LifeID = append(out.LifeID, li.Value(i))
			out.End = append(out.End, int64(we.Value(i)))
			out.RUL = append(out.RUL, rul.Value(i))
			if raw.IsNull(i) {
				out.RULRaw = append(out.RULRaw, math.NaN())
			} else {
				out.RULRaw = append(out.RULRaw, raw.Value(i))
			}
			out.Health = append(out.Health, h)
			out.Split = append(out.Split, sp.Value(i))
			out.X = append(out.X, xv[(off+i)*size:(off+i+1)*size]...)
			if n > 0 && out.Len() >= n {
				return out, nil
			}
		}
	}
	return out, nil
}
