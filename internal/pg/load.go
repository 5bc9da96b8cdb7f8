package pg

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/progress"
)

// LoadResult reports a load.
type LoadResult struct {
	Path  string `json:"path"`
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
}

// LoadReadings copies a readings Parquet file into the sensor table with
// COPY (binary), in one transaction: on any error nothing is loaded. The
// file's sensors must be columns of the table (db migrate creates the
// configured ones). Rows already in the table (same tenant, device and
// timestamp) are an error.
func LoadReadings(ctx context.Context, pool *pgxpool.Pool, c Config, loc string, bar progress.Bar) (*LoadResult, error) {
	if bar == nil {
		bar = progress.None("", "", 0)
	}
	t, err := Table(c.SensorTable)
	if err != nil {
		return nil, fmt.Errorf("db.sensor_table: %w", err)
	}
	r, err := dataset.Open(loc, dataset.KindReadings)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	sensors, err := r.Sensors()
	if err != nil {
		return nil, err
	}
	bar.SetTotal(r.NumRows())
	cols, err := TableColumns(ctx, pool, c.SensorTable)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", loc, err)
	}
	var missing []string
	for _, s := range sensors {
		if _, ok := cols[s]; !ok {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("load %s: table %s has no column for sensor(s) %s: list them in db.sensors and run `modax-ml db migrate`",
			loc, t.Sanitize(), strings.Join(missing, ", "))
	}
	columns := append([]string{ColTenant, ColDevice, ColTimestamp}, sensors...)
	src := &batchSource{ctx: ctx, bar: bar}
	src.next, src.stop = iter.Pull2(r.Batches(ctx, columns...))
	defer src.stop()
	src.fill = func(rec arrow.RecordBatch, i int, vals []any) error {
		vals[0] = rec.Column(0).(*array.String).Value(i)
		vals[1] = rec.Column(1).(*array.String).Value(i)
		vals[2] = dataset.TimeOf(int64(rec.Column(2).(*array.Timestamp).Value(i)))
		for s := range sensors {
			col := rec.Column(3 + s).(*array.Float64)
			if col.IsNull(i) {
				vals[3+s] = nil
				continue
			}
			v := col.Value(i)
			if math.IsNaN(v) {
				vals[3+s] = nil
			} else {
				vals[3+s] = v
			}
		}
		return nil
	}
	src.vals = make([]any, len(columns))
	n, err := copyIn(ctx, pool, t, columns, src)
	if err != nil {
		return nil, fmt.Errorf("load %s into %s: %w", loc, t.Sanitize(), err)
	}
	bar.Finish()
	return &LoadResult{Path: loc, Table: c.SensorTable, Rows: n}, nil
}

// LoadFailures copies a failures Parquet file into the failure table with
// COPY, in one transaction.
func LoadFailures(ctx context.Context, pool *pgxpool.Pool, c Config, loc string) (*LoadResult, error) {
	t, err := Table(c.FailureTable)
	if err != nil {
		return nil, fmt.Errorf("db.failure_table: %w", err)
	}
	fs, _, err := dataset.ReadFailures(ctx, loc)
	if err != nil {
		return nil, err
	}
	if _, err := TableColumns(ctx, pool, c.FailureTable); err != nil {
		return nil, fmt.Errorf("load %s: %w", loc, err)
	}
	columns := []string{ColTenant, ColDevice, "event_time", "event_type", "component_failed", "operating_hours_at_failure"}
	rows := make([][]any, len(fs))
	for i, f := range fs {
		var comp, hours any
		if f.Component != "" {
			comp = f.Component
		}
		if !math.IsNaN(f.OpHours) {
			hours = f.OpHours
		}
		rows[i] = []any{f.Tenant, f.Device, dataset.TimeOf(f.Time), f.EventType, comp, hours}
	}
	n, err := copyIn(ctx, pool, t, columns, pgx.CopyFromRows(rows))
	if err != nil {
		return nil, fmt.Errorf("load %s into %s: %w", loc, t.Sanitize(), err)
	}
	return &LoadResult{Path: loc, Table: c.FailureTable, Rows: n}, nil
}

// copyIn runs one COPY FROM in a transaction and explains the common errors.
func copyIn(ctx context.Context, pool *pgxpool.Pool, t pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit
	n, err := tx.CopyFrom(ctx, t, columns, src)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return 0, fmt.Errorf("rows already in the table (%s); nothing was loaded: %w", pgErr.Detail, err)
		}
		return 0, fmt.Errorf("nothing was loaded: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	return n, nil
}

// batchSource feeds Arrow batches to COPY row by row.
type batchSource struct {
	ctx  context.Context
	next func() (arrow.RecordBatch, error, bool)
	stop func()
	fill func(rec arrow.RecordBatch, i int, vals []any) error
	bar  progress.Bar

	rec  arrow.RecordBatch
	i, n int
	vals []any
	err  error
}

func (s *batchSource) Next() bool {
	s.i++
	for s.i >= s.n {
		if s.rec != nil {
			s.bar.Add(int64(s.n))
		}
		rec, err, ok := s.next()
		if err != nil {
			s.err = err
			return false
		}
		if !ok {
			s.rec = nil
			return false
		}
		// The batch stays valid until the next call to s.next.
		s.rec, s.i, s.n = rec, 0, int(rec.NumRows())
	}
	return true
}

func (s *batchSource) Values() ([]any, error) {
	if err := s.fill(s.rec, s.i, s.vals); err != nil {
		return nil, err
	}
	return s.vals, nil
}

func (s *batchSource) Err() error { return s.err }
