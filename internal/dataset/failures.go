package dataset

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Failure is one row of a failures file. Component is "" and OpHours NaN when
// null.
type Failure struct {
	Tenant    string
	Device    string
	Time      int64 // microseconds since the epoch, UTC
	EventType string
	Component string
	OpHours   float64
}

// SortFailures orders failures by tenant, device, time, event type, component.
func SortFailures(fs []Failure) {
	slices.SortStableFunc(fs, func(a, b Failure) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Device, b.Device),
			cmp.Compare(a.Time, b.Time), cmp.Compare(a.EventType, b.EventType), cmp.Compare(a.Component, b.Component))
	})
}

// WriteFailures writes failures (in the given order) to loc atomically.
func WriteFailures(loc string, fs []Failure, meta Meta, opts ...WriterOption) error {
	cfg := writerConfig{mem: memory.DefaultAllocator}
	for _, o := range opts {
		o(&cfg)
	}
	sch := NewSchema(KindFailures, FailuresColumns(), meta)
	w, err := Create(loc, sch, opts...)
	if err != nil {
		return err
	}
	defer w.Abort()
	b := array.NewRecordBuilder(cfg.mem, sch)
	defer b.Release()
	for _, f := range fs {
		b.Field(0).(*array.StringBuilder).Append(f.Tenant)
		b.Field(1).(*array.StringBuilder).Append(f.Device)
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(f.Time))
		b.Field(3).(*array.StringBuilder).Append(f.EventType)
		if f.Component == "" {
			b.Field(4).AppendNull()
		} else {
			b.Field(4).(*array.StringBuilder).Append(f.Component)
		}
		if math.IsNaN(f.OpHours) {
			b.Field(5).AppendNull()
		} else {
			b.Field(5).(*array.Float64Builder).Append(f.OpHours)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		return err
	}
	return w.Commit()
}

// ReadFailures reads a whole failures file (failures are few: one per
// run-to-failure cycle).
func ReadFailures(ctx context.Context, loc string) ([]Failure, Meta, error) {
	r, err := Open(loc, KindFailures)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	idx, err := locateColumns(loc, r.Schema(), failuresCols)
	if err != nil {
		return nil, nil, err
	}
	ti, di, ei, ty, ci, oi := idx[0], idx[1], idx[2], idx[3], idx[4], idx[5]
	out := make([]Failure, 0, sizeHint(r.NumRows()))
	for rec, err := range r.Batches(ctx) {
		if err != nil {
			return nil, nil, err
		}
		tn := rec.Column(ti).(*array.String)
		dv := rec.Column(di).(*array.String)
		et := rec.Column(ei).(*array.Timestamp)
		ty := rec.Column(ty).(*array.String)
		cp := rec.Column(ci).(*array.String)
		oh := rec.Column(oi).(*array.Float64)
		for i := 0; i < int(rec.NumRows()); i++ {
			if tn.IsNull(i) || dv.IsNull(i) || et.IsNull(i) {
				return nil, nil, fmt.Errorf("%s: row %d: null tenant_id, device_id or event_time", loc, len(out)+1)
			}
			// Value is a view into the batch's buffer: copy what outlives it.
			f := Failure{Tenant: strings.Clone(tn.Value(i)), Device: strings.Clone(dv.Value(i)), Time: int64(et.Value(i)),
				EventType: strings.Clone(ty.Value(i)), OpHours: math.NaN()}
			if cp.IsValid(i) {
				f.Component = strings.Clone(cp.Value(i))
			}
			if oh.IsValid(i) {
				f.OpHours = oh.Value(i)
			}
			out = append(out, f)
		}
	}
	return out, r.Meta(), nil
}
