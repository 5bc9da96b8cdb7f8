package dataset

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Frame holds the rows of one device of a readings or labeled file, decoded
// into Go slices. Missing sensor values are NaN. The label columns are nil for
// readings files. RULRaw is NaN where it is null (censored rows).
type Frame struct {
	Tenant, Device string
	Time           []int64     // microseconds since the Unix epoch, UTC
	Sensors        [][]float64 // [sensor][row]

	RUL      []float64
	RULRaw   []float64
	Health   []Health
	Censored []bool
	LifeID   []int32
}

// Len returns the number of rows.
func (f *Frame) Len() int { return len(f.Time) }

// Labeled reports whether the frame carries label columns.
func (f *Frame) Labeled() bool { return f.RUL != nil }

// NewFrame returns an empty frame for nSensors sensors, with label columns when
// labeled is set.
func NewFrame(tenant, device string, nSensors int, labeled bool) *Frame {
	f := &Frame{Tenant: tenant, Device: device, Sensors: make([][]float64, nSensors)}
	if labeled {
		f.RUL, f.RULRaw, f.Health, f.Censored, f.LifeID = []float64{}, []float64{}, []Health{}, []bool{}, []int32{}
	}
	return f
}

// Micros converts a time to microseconds since the epoch.
func Micros(t time.Time) int64 { return t.UnixMicro() }

// TimeOf converts microseconds since the epoch to a UTC time.
func TimeOf(us int64) time.Time { return time.UnixMicro(us).UTC() }

// FrameWriter writes frames to a readings or labeled file in batches.
type FrameWriter struct {
	*batchWriter
	labeled bool
}

// CreateFrames starts a readings (labeled=false) or labeled file at loc with
// the given sensors and metadata. Rows must be appended in (tenant, device,
// time) order; the file is marked sorted.
func CreateFrames(loc string, sensors []string, labeled bool, meta Meta, opts ...WriterOption) (*FrameWriter, error) {
	m := meta.Clone()
	m.MustSet(MetaSensors, sensors)
	m[MetaSortedBy] = SortedByDevice
	kind, cols := KindReadings, ReadingsColumns(sensors)
	if labeled {
		kind, cols = KindLabeled, LabeledColumns(sensors)
	}
	bw, err := newBatchWriter(loc, NewSchema(kind, cols, m), DefaultBatchRows, opts)
	if err != nil {
		return nil, err
	}
	return &FrameWriter{batchWriter: bw, labeled: labeled}, nil
}

// Append adds the rows of f.
func (w *FrameWriter) Append(f *Frame) error {
	return w.AppendRange(f, 0, f.Len())
}

// AppendRange adds rows [lo, hi) of f.
func (w *FrameWriter) AppendRange(f *Frame, lo, hi int) error {
	if w.labeled && !f.Labeled() {
		return fmt.Errorf("write %s: frame of %s has no label columns", w.loc, f.Device)
	}
	for lo < hi {
		n := min(hi-lo, w.batch-w.pending)
		w.appendRows(f, lo, lo+n)
		lo += n
		if err := w.added(n); err != nil {
			return err
		}
	}
	return nil
}

func (w *FrameWriter) appendRows(f *Frame, lo, hi int) {
	n := hi - lo
	b := w.bld
	tb := b.Field(0).(*array.StringBuilder)
	db := b.Field(1).(*array.StringBuilder)
	for range n {
		tb.Append(f.Tenant)
		db.Append(f.Device)
	}
	ts := b.Field(2).(*array.TimestampBuilder)
	ts.Reserve(n)
	for _, t := range f.Time[lo:hi] {
		ts.UnsafeAppend(arrow.Timestamp(t))
	}
	for s, col := range f.Sensors {
		appendNullableFloats(b.Field(3+s).(*array.Float64Builder), col[lo:hi])
	}
	if !w.labeled {
		return
	}
	k := 3 + len(f.Sensors)
	b.Field(k).(*array.Float64Builder).AppendValues(f.RUL[lo:hi], nil)
	appendNullableFloats(b.Field(k+1).(*array.Float64Builder), f.RULRaw[lo:hi])
	hb := b.Field(k + 2).(*array.StringBuilder)
	for _, h := range f.Health[lo:hi] {
		hb.Append(h.String())
	}
	b.Field(k+3).(*array.BooleanBuilder).AppendValues(f.Censored[lo:hi], nil)
	b.Field(k+4).(*array.Int32Builder).AppendValues(f.LifeID[lo:hi], nil)
}

func appendNullableFloats(b *array.Float64Builder, vals []float64) {
	b.Reserve(len(vals))
	for _, v := range vals {
		if math.IsNaN(v) {
			b.UnsafeAppendBoolToBitmap(false)
		} else {
			b.UnsafeAppend(v)
		}
	}
}

// frameColumns locates the columns of a readings/labeled file in a batch.
type frameColumns struct {
	tenant, device, ts int
	sensors            []int
	rul, raw, health   int
	censored, life     int
}

func (r *Reader) frameColumns(sensors []string, labeled bool) (frameColumns, error) {
	want := ReadingsColumns(sensors)
	if labeled {
		want = LabeledColumns(sensors)
	}
	idx, err := locateColumns(r.loc, r.schema, want)
	if err != nil {
		return frameColumns{}, err
	}
	k := len(readingsKey) + len(sensors)
	c := frameColumns{tenant: idx[0], device: idx[1], ts: idx[2], sensors: idx[len(readingsKey):k]}
	if labeled {
		c.rul, c.raw, c.health, c.censored, c.life = idx[k], idx[k+1], idx[k+2], idx[k+3], idx[k+4]
	}
	return c, nil
}

// DeviceFrames yields the rows of a readings or labeled file one device at a
// time, in (tenant, device) order with rows in time order, reading only the
// named sensors (all sensors of the file when sensors is nil).
//
// A file marked sorted (every file modax-ml writes) is streamed: memory holds
// one device's rows plus one batch. Other files are read whole and sorted.
// The yielded frame is owned by the caller.
func (r *Reader) DeviceFrames(ctx context.Context, sensors []string) iter.Seq2[*Frame, error] {
	return func(yield func(*Frame, error) bool) {
		if sensors == nil {
			s, err := r.Sensors()
			if err != nil {
				yield(nil, err)
				return
			}
			sensors = s
		}
		labeled := r.meta[MetaSchema] == KindLabeled || (r.kind == KindLabeled)
		cols, err := r.frameColumns(sensors, labeled)
		if err != nil {
			yield(nil, err)
			return
		}
		sorted := r.meta[MetaSortedBy] == SortedByDevice
		seen := map[[2]string]bool{}
		var cur *Frame
		var all []*Frame
		byKey := map[[2]string]*Frame{}
		emit := func(f *Frame) bool {
			if f == nil || f.Len() == 0 {
				return true
			}
			return yield(f, nil)
		}
		for rec, err := range r.Batches(ctx) {
			if err != nil {
				yield(nil, err)
				return
			}
			tenant := rec.Column(cols.tenant).(*array.String)
			device := rec.Column(cols.device).(*array.String)
			n := int(rec.NumRows())
			for lo := 0; lo < n; {
				t, d := tenant.Value(lo), device.Value(lo)
				hi := lo + 1
				for hi < n && device.Value(hi) == d && tenant.Value(hi) == t {
					hi++
				}
				// Value returns a view into the batch's buffer: copy the
				// names that outlive the batch (frames, seen keys), or every
				// batch's strings stay pinned in memory.
				if cur == nil || cur.Tenant != t || cur.Device != d {
					t, d = strings.Clone(t), strings.Clone(d)
				}
				key := [2]string{t, d}
				var f *Frame
				switch {
				case !sorted:
					f = byKey[key]
					if f == nil {
						f = NewFrame(t, d, len(sensors), labeled)
						byKey[key] = f
						all = append(all, f)
					}
				case cur != nil && cur.Tenant == t && cur.Device == d:
					f = cur
				default:
					if seen[key] {
						yield(nil, fmt.Errorf("%s: rows of device %s/%s are not contiguous although the file is marked sorted by %s", r.loc, t, d, SortedByDevice))
						return
					}
					if cur != nil && (cur.Tenant > t || (cur.Tenant == t && cur.Device > d)) {
						yield(nil, fmt.Errorf("%s: device %s/%s comes after %s/%s although the file is marked sorted by %s", r.loc, t, d, cur.Tenant, cur.Device, SortedByDevice))
						return
					}
					seen[key] = true
					if !emit(cur) {
						return
					}
					cur = NewFrame(t, d, len(sensors), labeled)
					f = cur
				}
				if err := appendBatchRows(f, rec, cols, lo, hi, sorted); err != nil {
					yield(nil, fmt.Errorf("%s: %w", r.loc, err))
					return
				}
				lo = hi
			}
		}
		if sorted {
			emit(cur)
			return
		}
		slices.SortFunc(all, func(a, b *Frame) int {
			return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Device, b.Device))
		})
		for _, f := range all {
			sortFrameByTime(f)
			if !emit(f) {
				return
			}
		}
	}
}

func appendBatchRows(f *Frame, rec arrow.RecordBatch, c frameColumns, lo, hi int, checkOrder bool) error {
	ts := rec.Column(c.ts).(*array.Timestamp).Values()[lo:hi]
	if checkOrder {
		prev := int64(math.MinInt64)
		if len(f.Time) > 0 {
			prev = f.Time[len(f.Time)-1]
		}
		for _, t := range ts {
			if int64(t) < prev {
				return fmt.Errorf("device %s/%s: timestamps not in order although the file is marked sorted by %s", f.Tenant, f.Device, SortedByDevice)
			}
			prev = int64(t)
		}
	}
	for _, t := range ts {
		f.Time = append(f.Time, int64(t))
	}
	for s, ci := range c.sensors {
		f.Sensors[s] = appendFloats(f.Sensors[s], rec.Column(ci).(*array.Float64), lo, hi)
	}
	if !f.Labeled() {
		return nil
	}
	f.RUL = appendFloats(f.RUL, rec.Column(c.rul).(*array.Float64), lo, hi)
	f.RULRaw = appendFloats(f.RULRaw, rec.Column(c.raw).(*array.Float64), lo, hi)
	hs := rec.Column(c.health).(*array.String)
	for i := lo; i < hi; i++ {
		h, err := ParseHealth(hs.Value(i))
		if err != nil {
			return fmt.Errorf("column %s: %w", ColHealth, err)
		}
		f.Health = append(f.Health, h)
	}
	cb := rec.Column(c.censored).(*array.Boolean)
	for i := lo; i < hi; i++ {
		f.Censored = append(f.Censored, cb.Value(i))
	}
	f.LifeID = append(f.LifeID, rec.Column(c.life).(*array.Int32).Int32Values()[lo:hi]...)
	return nil
}

// appendFloats appends values [lo, hi) of a, with NaN for nulls.
func appendFloats(dst []float64, a *array.Float64, lo, hi int) []float64 {
	vals := a.Float64Values()[lo:hi]
	start := len(dst)
	dst = append(dst, vals...)
	if a.NullN() > 0 {
		for i := lo; i < hi; i++ {
			if a.IsNull(i) {
				dst[start+i-lo] = math.NaN()
			}
		}
	}
	return dst
}

// sortFrameByTime orders the rows of f by time (stable).
func sortFrameByTime(f *Frame) {
	if slices.IsSorted(f.Time) {
		return
	}
	perm := make([]int, f.Len())
	for i := range perm {
		perm[i] = i
	}
	slices.SortStableFunc(perm, func(a, b int) int { return cmp.Compare(f.Time[a], f.Time[b]) })
	f.Time = permute(f.Time, perm)
	for s := range f.Sensors {
		f.Sensors[s] = permute(f.Sensors[s], perm)
	}
	if f.Labeled() {
		f.RUL = permute(f.RUL, perm)
		f.RULRaw = permute(f.RULRaw, perm)
		f.Health = permute(f.Health, perm)
		f.Censored = permute(f.Censored, perm)
		f.LifeID = permute(f.LifeID, perm)
	}
}

func permute[T any](s []T, perm []int) []T {
	out := make([]T, len(s))
	for i, p := range perm {
		out[i] = s[p]
	}
	return out
}
