package dataset

import (
	"context"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Columns of a scores file (modax.scores/v1) besides the shared ones.
const (
	ColScoredAt      = "scored_at"
	ColRULLower      = "rul_lower"
	ColRULUpper      = "rul_upper"
	ColIntervalLevel = "interval_level"
	ColRULChange     = "rul_change_hours"
	ColPreviousTime  = "previous_timestamp"
)

var scoreCols = []Column{
	{ColTenant, arrow.BinaryTypes.String, false},
	{ColDevice, arrow.BinaryTypes.String, false},
	{ColTimestamp, Timestamp, false},
	{ColScoredAt, Timestamp, false},
	{ColRUL, arrow.PrimitiveTypes.Float64, false},
	{ColRULLower, arrow.PrimitiveTypes.Float64, true},
	{ColRULUpper, arrow.PrimitiveTypes.Float64, true},
	{ColIntervalLevel, arrow.PrimitiveTypes.Float64, true},
	{ColHealth, arrow.BinaryTypes.String, false},
	{ColRULChange, arrow.PrimitiveTypes.Float64, true},
	{ColPreviousTime, Timestamp, true},
	{ColModelVersion, arrow.BinaryTypes.String, false},
}

// ScoresColumns lists the columns of a scores file.
func ScoresColumns() []Column { return append([]Column(nil), scoreCols...) }

// Score is one row of a scores file: a device's current RUL as of ScoredAt,
// predicted from the window ending at its last reading (Time). Lower, Upper
// and Level are NaN when the model has no interval calibration; Change and
// PreviousTime are NaN and 0 when the device had no previous score.
type Score struct {
	Tenant, Device string
	Time           int64 // last reading of the window, µs
	ScoredAt       int64 // --at, µs
	RUL            float64
	Lower, Upper   float64
	Level          float64
	Health         Health
	Change         float64 // RUL − the previous score's RUL, hours
	PreviousTime   int64   // the previous score's last reading, µs (0: none)
	ModelVersion   string
}

// WriteScores writes scores (in the given order) to loc atomically.
func WriteScores(loc string, ss []Score, meta Meta, opts ...WriterOption) error {
	w, err := CreateScores(loc, meta, opts...)
	if err != nil {
		return err
	}
	defer w.Abort()
	if err := w.Append(ss); err != nil {
		return err
	}
	return w.Commit()
}

// ScoresWriter writes a scores file; nothing is visible at loc before Commit.
type ScoresWriter struct {
	*Writer
	schema *arrow.Schema
	mem    memory.Allocator
}

// CreateScores starts a scores file at loc.
func CreateScores(loc string, meta Meta, opts ...WriterOption) (*ScoresWriter, error) {
	cfg := writerConfig{mem: memory.DefaultAllocator}
	for _, o := range opts {
		o(&cfg)
	}
	sch := NewSchema(KindScores, scoreCols, meta)
	w, err := Create(loc, sch, opts...)
	if err != nil {
		return nil, err
	}
	return &ScoresWriter{Writer: w, schema: sch, mem: cfg.mem}, nil
}

// Append writes one batch of scores.
func (w *ScoresWriter) Append(ss []Score) error {
	b := array.NewRecordBuilder(w.mem, w.schema)
	defer b.Release()
	nullable := func(fb array.Builder, v float64) {
		if math.IsNaN(v) {
			fb.AppendNull()
		} else {
			fb.(*array.Float64Builder).Append(v)
		}
	}
	for i := range ss {
		s := &ss[i]
		b.Field(0).(*array.StringBuilder).Append(s.Tenant)
		b.Field(1).(*array.StringBuilder).Append(s.Device)
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(s.Time))
		b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(s.ScoredAt))
		b.Field(4).(*array.Float64Builder).Append(s.RUL)
		nullable(b.Field(5), s.Lower)
		nullable(b.Field(6), s.Upper)
		nullable(b.Field(7), s.Level)
		b.Field(8).(*array.StringBuilder).Append(s.Health.String())
		nullable(b.Field(9), s.Change)
		if s.PreviousTime == 0 {
			b.Field(10).AppendNull()
		} else {
			b.Field(10).(*array.TimestampBuilder).Append(arrow.Timestamp(s.PreviousTime))
		}
		b.Field(11).(*array.StringBuilder).Append(s.ModelVersion)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return w.Write(rec)
}

// ReadScores reads a whole scores file.
func ReadScores(ctx context.Context, loc string) ([]Score, Meta, error) {
	r, err := Open(loc, KindScores)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	idx, err := locateColumns(loc, r.Schema(), scoreCols)
	if err != nil {
		return nil, nil, err
	}
	out := make([]Score, 0, sizeHint(r.NumRows()))
	for rec, err := range r.Batches(ctx) {
		if err != nil {
			return nil, nil, err
		}
		col := func(k int) arrow.Array { return rec.Column(idx[k]) }
		tn, dv := col(0).(*array.String), col(1).(*array.String)
		ts, at := col(2).(*array.Timestamp), col(3).(*array.Timestamp)
		rul, lo, hi, lv := col(4).(*array.Float64), col(5).(*array.Float64), col(6).(*array.Float64), col(7).(*array.Float64)
		hs, ch, pt, mv := col(8).(*array.String), col(9).(*array.Float64), col(10).(*array.Timestamp), col(11).(*array.String)
		opt := func(a *array.Float64, i int) float64 {
			if a.IsNull(i) {
				return math.NaN()
			}
			return a.Value(i)
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			s := Score{Tenant: tn.Value(i), Device: dv.Value(i), Time: int64(ts.Value(i)), ScoredAt: int64(at.Value(i)),
				RUL: rul.Value(i), Lower: opt(lo, i), Upper: opt(hi, i), Level: opt(lv, i), Change: opt(ch, i), ModelVersion: mv.Value(i)}
			if pt.IsValid(i) {
				s.PreviousTime = int64(pt.Value(i))
			}
			if s.Health, err = ParseHealth(hs.Value(i)); err != nil {
				return nil, nil, fmt.Errorf("%s: row %d: %w", loc, len(out)+1, err)
			}
			out = append(out, s)
		}
	}
	return out, r.Meta(), nil
}
