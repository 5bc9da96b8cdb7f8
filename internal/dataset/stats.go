package dataset

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
)

// Columns and metadata of the time-bucketed stats variant.
const (
	ColBucketStart = "bucket_start"
	ColReadings    = "n_readings"
	// MetaBucket is the bucket length of a time-bucketed stats file ("1h0m0s").
	MetaBucket = "modax.bucket"
)

// statsKey are the leading columns of a (windowed) stats file; feature
// columns follow, one nullable float64 per feature.
var statsKey = []Column{
	{ColTenant, arrow.BinaryTypes.String, false},
	{ColDevice, arrow.BinaryTypes.String, false},
	{ColLifeID, arrow.PrimitiveTypes.Int32, false},
	{ColWindowEnd, Timestamp, false},
	{ColRUL, arrow.PrimitiveTypes.Float64, false},
	{ColRULRaw, arrow.PrimitiveTypes.Float64, true},
	{ColHealth, arrow.BinaryTypes.String, false},
	{ColSplit, arrow.BinaryTypes.String, false},
}

// bucketKey are the leading columns of a time-bucketed stats file.
var bucketKey = []Column{
	{ColTenant, arrow.BinaryTypes.String, false},
	{ColDevice, arrow.BinaryTypes.String, false},
	{ColBucketStart, Timestamp, false},
	{ColReadings, arrow.PrimitiveTypes.Int64, false},
}

// StatsColumns lists the columns of a stats file (one row per window) with
// these feature columns.
func StatsColumns(features []string) []Column {
	return append(slices.Clone(statsKey), sensorCols(features)...)
}

// BucketStatsColumns lists the columns of a time-bucketed stats file (one row
// per device and bucket) with these feature columns.
func BucketStatsColumns(features []string) []Column {
	return append(slices.Clone(bucketKey), sensorCols(features)...)
}

// StatsRow identifies the window a stats row describes. RULRaw is NaN when
// unknown.
type StatsRow struct {
	Tenant, Device string
	LifeID         int32
	End            int64 // time of the window's last reading, µs
	RUL, RULRaw    float64
	Health         Health
	Split          string
}

// StatsWriter writes a stats file (windowed or time-bucketed) in batches.
type StatsWriter struct {
	*Writer
	bld      *array.RecordBuilder
	key      int // number of key columns
	feats    []*array.Float64Builder
	bucketed bool
	pending  int
}

// CreateStats starts a stats file with one row per window; the feature names
// are recorded in metadata (modax.features) in column order.
func CreateStats(loc string, features []string, meta Meta, opts ...WriterOption) (*StatsWriter, error) {
	return createStats(loc, features, StatsColumns(features), false, meta, opts)
}

// CreateBucketStats starts a time-bucketed stats file (one row per device and
// bucket of the given length); modax.features and modax.bucket are recorded.
func CreateBucketStats(loc string, features []string, bucket time.Duration, meta Meta, opts ...WriterOption) (*StatsWriter, error) {
	m := meta.Clone()
	m[MetaBucket] = bucket.String()
	return createStats(loc, features, BucketStatsColumns(features), true, m, opts)
}

func createStats(loc string, features []string, cols []Column, bucketed bool, meta Meta, opts []WriterOption) (*StatsWriter, error) {
	if dup := firstDuplicate(features); dup != "" {
		return nil, fmt.Errorf("create %s: feature column %q appears twice", loc, dup)
	}
	m := meta.Clone()
	m.MustSet(MetaFeatures, features)
	sch := NewSchema(KindStats, cols, m)
	// Feature columns are floats: no dictionary (hashing every value for a
	// dictionary they overflow anyway), byte-stream split for zstd.
	var props []parquet.WriterProperty
	for _, f := range features {
		props = append(props, parquet.WithDictionaryFor(f, false), parquet.WithEncodingFor(f, parquet.Encodings.ByteStreamSplit))
	}
	opts = append([]WriterOption{withParquetProps(props...)}, opts...)
	w, err := Create(loc, sch, opts...)
	if err != nil {
		return nil, err
	}
	cfg := writerConfig{mem: memory.DefaultAllocator}
	for _, o := range opts {
		o(&cfg)
	}
	bld := array.NewRecordBuilder(cfg.mem, sch)
	key := len(cols) - len(features)
	sw := &StatsWriter{Writer: w, bld: bld, key: key, bucketed: bucketed}
	for i := range features {
		sw.feats = append(sw.feats, bld.Field(key+i).(*array.Float64Builder))
	}
	bld.Reserve(DefaultBatchRows)
	return sw, nil
}

func firstDuplicate(names []string) string {
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if seen[n] {
			return n
		}
		seen[n] = true
	}
	return ""
}

// Append adds the stats row of one window; values holds one value per feature
// (NaN is written as null).
func (w *StatsWriter) Append(k *StatsRow, values []float64) error {
	if w.bucketed {
		return fmt.Errorf("write %s: Append on a time-bucketed stats file", w.loc)
	}
	if len(values) != len(w.feats) {
		return fmt.Errorf("write %s: stats row of %s has %d values, want %d", w.loc, k.Device, len(values), len(w.feats))
	}
	b := w.bld
	b.Field(0).(*array.StringBuilder).Append(k.Tenant)
	b.Field(1).(*array.StringBuilder).Append(k.Device)
	b.Field(2).(*array.Int32Builder).Append(k.LifeID)
	b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(k.End))
	b.Field(4).(*array.Float64Builder).Append(k.RUL)
	if math.IsNaN(k.RULRaw) {
		b.Field(5).AppendNull()
	} else {
		b.Field(5).(*array.Float64Builder).Append(k.RULRaw)
	}
	b.Field(6).(*array.StringBuilder).Append(k.Health.String())
	b.Field(7).(*array.StringBuilder).Append(k.Split)
	return w.appendValues(values)
}

// AppendBucket adds the stats row of one device and time bucket that holds n
// readings.
func (w *StatsWriter) AppendBucket(tenant, device string, start, n int64, values []float64) error {
	if !w.bucketed {
		return fmt.Errorf("write %s: AppendBucket on a windowed stats file", w.loc)
	}
	if len(values) != len(w.feats) {
		return fmt.Errorf("write %s: stats row of %s has %d values, want %d", w.loc, device, len(values), len(w.feats))
	}
	b := w.bld
	b.Field(0).(*array.StringBuilder).Append(tenant)
	b.Field(1).(*array.StringBuilder).Append(device)
	b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(start))
	b.Field(3).(*array.Int64Builder).Append(n)
	return w.appendValues(values)
}

func (w *StatsWriter) appendValues(values []float64) error {
	for i, v := range values {
		if math.IsNaN(v) {
			w.feats[i].AppendNull()
		} else {
			w.feats[i].Append(v)
		}
	}
	w.pending++
	if w.pending >= DefaultBatchRows {
		if err := w.flush(); err != nil {
			return err
		}
		w.bld.Reserve(DefaultBatchRows)
	}
	return nil
}

func (w *StatsWriter) flush() error {
	if w.pending == 0 {
		return nil
	}
	rec := w.bld.NewRecordBatch()
	defer rec.Release()
	w.pending = 0
	return w.Write(rec)
}

// Commit writes the last batch and moves the file into place.
func (w *StatsWriter) Commit() error {
	defer w.bld.Release()
	if err := w.flush(); err != nil {
		w.Writer.Abort()
		return err
	}
	return w.Writer.Commit()
}

// Abort discards the file. It is a no-op after Commit.
func (w *StatsWriter) Abort() {
	w.Writer.Abort()
}

// Stats is a windowed stats file held in memory.
type Stats struct {
	Features []string
	Tenant   []string
	Device   []string
	LifeID   []int32
	End      []int64
	RUL      []float64
	RULRaw   []float64 // NaN when unknown
	Health   []Health
	Split    []string
	// Values holds Len() × len(Features) values, row-major; NaN for null.
	Values []float64
	Meta   Meta
}

// Len returns the number of rows.
func (s *Stats) Len() int { return len(s.End) }

// Row returns the feature values of row i.
func (s *Stats) Row(i int) []float64 {
	n := len(s.Features)
	return s.Values[i*n : (i+1)*n]
}

// ReadStats reads the rows of the given splits (all when none are given) of a
// windowed stats file into memory. The feature columns are the ones named in
// modax.features, in that order.
func ReadStats(ctx context.Context, loc string, splits ...string) (*Stats, error) {
	r, err := Open(loc, KindStats)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out := &Stats{Meta: r.Meta()}
	ok, err := out.Meta.Get(MetaFeatures, &out.Features)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	if !ok || len(out.Features) == 0 {
		return nil, fmt.Errorf("%s: stats file lacks %s metadata", loc, MetaFeatures)
	}
	sch := r.Schema()
	if len(sch.FieldIndices(ColBucketStart)) > 0 {
		return nil, fmt.Errorf("%s: is a time-bucketed stats file (no windows, splits or labels)", loc)
	}
	cols := StatsColumns(out.Features)
	idx := make([]int, len(cols))
	for i, c := range cols {
		fi := sch.FieldIndices(c.Name)
		if len(fi) != 1 {
			return nil, &SchemaError{Loc: loc, Column: c.Name, Want: c.Type}
		}
		if got := sch.Field(fi[0]).Type; !typeMatches(c.Type, got) {
			return nil, &SchemaError{Loc: loc, Column: c.Name, Want: c.Type, Got: got}
		}
		idx[i] = fi[0]
	}
	want := map[string]bool{}
	for _, s := range splits {
		want[s] = true
	}
	nf := len(out.Features)
	feats := make([]*array.Float64, nf)
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
		for j := range feats {
			feats[j] = rec.Column(idx[len(statsKey)+j]).(*array.Float64)
		}
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
			for _, f := range feats {
				if f.IsNull(i) {
					out.Values = append(out.Values, math.NaN())
				} else {
					out.Values = append(out.Values, f.Value(i))
				}
			}
		}
	}
	return out, nil
}
