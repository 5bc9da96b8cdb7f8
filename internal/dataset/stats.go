package dataset

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet"
)

// Columns and metadata of the time-bucketed stats variant.
const (
	ColBucketStart = "bucket_start"
	ColReadings    = "n_readings"
	// MetaBucket is the bucket length of a time-bucketed stats file ("1h0m0s").
	MetaBucket = "modax.bucket"
)

// bucketKey are the leading columns of a time-bucketed stats file.
var bucketKey = []Column{
	{ColTenant, arrow.BinaryTypes.String, false},
	{ColDevice, arrow.BinaryTypes.String, false},
	{ColBucketStart, Timestamp, false},
	{ColReadings, arrow.PrimitiveTypes.Int64, false},
}

// StatsColumns lists the columns of a stats file (one row per window) with
// these feature columns: the key columns of a windows file, then one nullable
// float64 per feature.
func StatsColumns(features []string) []Column {
	return append(slices.Clone(windowsKey), sensorCols(features)...)
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
	*batchWriter
	feats    []*array.Float64Builder
	bucketed bool
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
	bw, err := newBatchWriter(loc, sch, DefaultBatchRows, opts)
	if err != nil {
		return nil, err
	}
	bw.reserve = func() { bw.bld.Reserve(DefaultBatchRows) }
	key := len(cols) - len(features)
	sw := &StatsWriter{batchWriter: bw, bucketed: bucketed}
	for i := range features {
		sw.feats = append(sw.feats, bw.bld.Field(key+i).(*array.Float64Builder))
	}
	bw.reserve()
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
	appendWindowKey(w.bld, k.Tenant, k.Device, k.LifeID, k.End, k.RUL, k.RULRaw, k.Health, k.Split)
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
	return w.added(1)
}

// Stats is a windowed stats file held in memory.
type Stats struct {
	Features []string
	WindowKeys
	// Values holds Len() × len(Features) values, row-major; NaN for null.
	Values []float64
	Meta   Meta
}

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
	idx, err := locateColumns(loc, sch, StatsColumns(out.Features))
	if err != nil {
		return nil, err
	}
	feats := make([]*array.Float64, len(out.Features))
	err = newWindowKeyReader(loc, idx, splits).read(ctx, r, &out.WindowKeys,
		func(rec arrow.RecordBatch) {
			for j := range feats {
				feats[j] = rec.Column(idx[len(windowsKey)+j]).(*array.Float64)
			}
		},
		func(i int) bool {
			for _, f := range feats {
				if f.IsNull(i) {
					out.Values = append(out.Values, math.NaN())
				} else {
					out.Values = append(out.Values, f.Value(i))
				}
			}
			return true
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}
