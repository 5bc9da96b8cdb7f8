package collect

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/pg"
	"github.com/modax/modax-ml/internal/progress"
	"github.com/modax/modax-ml/internal/runenv"
)

// Ways to read the sensor table.
const (
	// MethodQuery streams one SELECT with binary result rows (pgx extended
	// protocol, values as bind parameters).
	MethodQuery = "query"
	// MethodCopy runs COPY (SELECT ...) TO STDOUT (FORMAT binary) and parses
	// the binary COPY stream; COPY takes no bind parameters, so the values are
	// passed through set_config parameters and read with current_setting.
	MethodCopy = "copy"
)

// PostgresOptions tune the postgres source.
type PostgresOptions struct {
	// Method is query (default, measured faster) or copy; see the README.
	Method string `yaml:"method"`
	// BatchRows is the number of rows per Arrow batch and Parquet row group.
	BatchRows int `yaml:"batch_rows"`
}

// DefaultPostgresOptions returns the measured-best settings.
func DefaultPostgresOptions() PostgresOptions {
	return PostgresOptions{Method: MethodQuery, BatchRows: dataset.DefaultBatchRows}
}

// pgEpoch is PostgreSQL's timestamp epoch (2000-01-01) in Unix microseconds.
const pgEpoch = 946_684_800_000_000

// readingsQuery is the sensor-table query: one tenant, optionally a device
// list and an inclusive time range, ordered by device (byte order, as the
// files are) and time. With params the filter values are $n bind parameters
// (args returned); without, they are read from set_config settings (COPY).
func readingsQuery(c pg.Config, devices bool, from, to bool, params bool) (string, error) {
	t, err := pg.Table(c.SensorTable)
	if err != nil {
		return "", fmt.Errorf("db.sensor_table: %w", err)
	}
	var sb strings.Builder
	sb.WriteString(`SELECT device_id::text, "timestamp"::timestamptz`)
	for _, s := range c.Sensors {
		fmt.Fprintf(&sb, ", %s::float8", pg.Quote(s))
	}
	fmt.Fprintf(&sb, " FROM %s WHERE ", t.Sanitize())
	sb.WriteString(filterSQL("tenant_id", `"timestamp"`, devices, from, to, params))
	sb.WriteString(` ORDER BY device_id COLLATE "C", "timestamp"`)
	return sb.String(), nil
}

// filterSQL is the WHERE clause shared by the readings and failures queries.
func filterSQL(tenantCol, timeCol string, devices, from, to, params bool) string {
	var conds []string
	n := 1
	arg := func(setting, typ string) string {
		if params {
			n++
			return fmt.Sprintf("$%d", n-1)
		}
		if typ == "devices" {
			return "ARRAY(SELECT jsonb_array_elements_text(current_setting('modax.devices')::jsonb))"
		}
		return "current_setting('modax." + setting + "')" + typ
	}
	conds = append(conds, tenantCol+" = "+arg("tenant", ""))
	if devices {
		conds = append(conds, "device_id = ANY("+arg("devices", "devices")+")")
	}
	if from {
		conds = append(conds, timeCol+" >= "+arg("from", "::timestamptz"))
	}
	if to {
		conds = append(conds, timeCol+" <= "+arg("to", "::timestamptz"))
	}
	return strings.Join(conds, " AND ")
}

// queryArgs returns the bind values in filterSQL's order.
func queryArgs(tenant string, flt filter, devices []string) []any {
	args := []any{tenant}
	if len(devices) > 0 {
		args = append(args, devices)
	}
	if flt.from != nil {
		args = append(args, *flt.from)
	}
	if flt.to != nil {
		args = append(args, *flt.to)
	}
	return args
}

func runPostgres(ctx context.Context, env *runenv.Env, opts Options, tenant string, flt filter) (*Result, error) {
	c := opts.DB
	if err := c.Check(); err != nil {
		return nil, fmt.Errorf("%w: %w", exitcode.ErrUsage, err)
	}
	po := opts.Postgres
	if po.Method == "" {
		po.Method = MethodQuery
	}
	if po.Method != MethodQuery && po.Method != MethodCopy {
		return nil, fmt.Errorf("%w: collect.postgres.method %q: want query or copy", exitcode.ErrUsage, po.Method)
	}
	if po.BatchRows <= 0 {
		po.BatchRows = dataset.DefaultBatchRows
	}
	pool, err := pg.Connect(ctx, c)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	devices := dedupe(opts.Devices)

	failures, err := queryFailures(ctx, pool, c, tenant, flt, devices)
	if err != nil {
		return nil, err
	}
	meta, err := env.FileMeta(Stage)
	if err != nil {
		return nil, err
	}
	src := map[string]any{"source": SourcePostgres, "table": c.SensorTable, "failure_table": c.FailureTable,
		"tenant": tenant, "devices": devices, "method": po.Method}
	if flt.from != nil {
		src["from"] = *flt.from
	}
	if flt.to != nil {
		src["to"] = *flt.to
	}
	sourceMeta(meta, src)

	bar := env.Progress("collect", "rows", -1)
	defer bar.Finish()
	set := atomicfile.NewSet()
	defer set.Abort()
	rb, err := newReadingsBuilder(opts.Out, tenant, c.Sensors, meta, po.BatchRows, bar, memory.DefaultAllocator, dataset.InSet(set))
	if err != nil {
		return nil, err
	}
	if po.Method == MethodCopy {
		err = copyReadings(ctx, pool, c, tenant, flt, devices, rb)
	} else {
		err = queryReadings(ctx, pool, c, tenant, flt, devices, rb)
	}
	if err == nil {
		err = rb.flush()
	}
	if err != nil {
		rb.abort()
		return nil, err
	}
	st := rb.stats()
	if st.rows == 0 {
		rb.abort()
		return nil, noReadings(ctx, pool, c, tenant, flt, devices)
	}
	if len(devices) > 0 && st.devices < len(devices) {
		env.Log.Warn("some requested devices have no readings", "requested", len(devices), "found", st.devices)
	}
	return finish(set, opts, rb, st, c.Sensors, failures, meta)
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// noReadings explains an empty result: unknown tenant, or no rows for the
// devices and time range.
func noReadings(ctx context.Context, pool *pgxpool.Pool, c pg.Config, tenant string, flt filter, devices []string) error {
	t, _ := pg.Table(c.SensorTable)
	var known bool
	err := pool.QueryRow(ctx, fmt.Sprintf(`SELECT EXISTS (SELECT 1 FROM %s WHERE tenant_id = $1)`, t.Sanitize()), tenant).Scan(&known)
	if err != nil {
		return fmt.Errorf("%w in %s for tenant %q", ErrNoReadings, c.SensorTable, tenant)
	}
	if !known {
		return fmt.Errorf("%w: tenant %q has no readings in %s (unknown tenant? set db.tenant / --tenant)", ErrNoReadings, tenant, c.SensorTable)
	}
	var what []string
	if len(devices) > 0 {
		what = append(what, fmt.Sprintf("devices %s", strings.Join(devices, ",")))
	}
	if flt.from != nil {
		what = append(what, "from "+flt.from.Format(time.RFC3339Nano))
	}
	if flt.to != nil {
		what = append(what, "to "+flt.to.Format(time.RFC3339Nano))
	}
	return fmt.Errorf("%w in %s for tenant %q with %s", ErrNoReadings, c.SensorTable, tenant, strings.Join(what, ", "))
}

// queryFailures reads the failure events of the tenant (and devices) at or
// after From — separately from the readings, so that no reading is
// duplicated per failure.
func queryFailures(ctx context.Context, pool *pgxpool.Pool, c pg.Config, tenant string, flt filter, devices []string) ([]dataset.Failure, error) {
	t, err := pg.Table(c.FailureTable)
	if err != nil {
		return nil, fmt.Errorf("%w: db.failure_table: %w", exitcode.ErrUsage, err)
	}
	f := flt
	f.to = nil // later failures label the last readings
	sql := fmt.Sprintf(`SELECT tenant_id::text, device_id::text, event_time::timestamptz, event_type::text, component_failed::text, operating_hours_at_failure::float8
FROM %s WHERE %s ORDER BY device_id COLLATE "C", event_time`, t.Sanitize(), filterSQL("tenant_id", "event_time", len(devices) > 0, f.from != nil, false, true))
	rows, err := pool.Query(ctx, sql, queryArgs(tenant, f, devices)...)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", c.FailureTable, err)
	}
	var out []dataset.Failure
	for rows.Next() {
		var fl dataset.Failure
		var ts time.Time
		var comp *string
		var hours *float64
		if err := rows.Scan(&fl.Tenant, &fl.Device, &ts, &fl.EventType, &comp, &hours); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read %s: %w", c.FailureTable, err)
		}
		fl.Time = dataset.Micros(ts)
		fl.OpHours = math.NaN()
		if comp != nil {
			fl.Component = *comp
		}
		if hours != nil {
			fl.OpHours = *hours
		}
		out = append(out, fl)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", c.FailureTable, err)
	}
	return out, nil
}

// queryReadings streams the readings query: rows arrive in binary format and
// go straight into the Arrow builders.
func queryReadings(ctx context.Context, pool *pgxpool.Pool, c pg.Config, tenant string, flt filter, devices []string, rb *readingsBuilder) error {
	sql, err := readingsQuery(c, len(devices) > 0, flt.from != nil, flt.to != nil, true)
	if err != nil {
		return err
	}
	formats := make(pgx.QueryResultFormats, 2+len(c.Sensors))
	for i := range formats {
		formats[i] = pgx.BinaryFormatCode
	}
	args := append([]any{formats}, queryArgs(tenant, flt, devices)...)
	rows, err := pool.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("read %s: %w", c.SensorTable, err)
	}
	defer rows.Close()
	for rows.Next() {
		v := rows.RawValues()
		if err := rb.row(v[0], v[1], v[2:]); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", c.SensorTable, err)
	}
	return nil
}

// copyReadings runs the readings query through COPY ... TO STDOUT (FORMAT
// binary) in a transaction whose settings carry the filter values.
func copyReadings(ctx context.Context, pool *pgxpool.Pool, c pg.Config, tenant string, flt filter, devices []string, rb *readingsBuilder) error {
	sql, err := readingsQuery(c, len(devices) > 0, flt.from != nil, flt.to != nil, false)
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only
	devJSON, _ := json.Marshal(devices)
	var from, to string
	if flt.from != nil {
		from = flt.from.Format(time.RFC3339Nano)
	}
	if flt.to != nil {
		to = flt.to.Format(time.RFC3339Nano)
	}
	if _, err := tx.Exec(ctx, `SELECT set_config('modax.tenant', $1, true), set_config('modax.devices', $2, true),
  set_config('modax.from', $3, true), set_config('modax.to', $4, true)`, tenant, string(devJSON), from, to); err != nil {
		return fmt.Errorf("read %s: %w", c.SensorTable, err)
	}
	p := &copyParser{rb: rb, fields: 2 + len(c.Sensors)}
	if _, err := conn.Conn().PgConn().CopyTo(ctx, p, "COPY ("+sql+") TO STDOUT (FORMAT binary)"); err != nil {
		if p.err != nil {
			return p.err
		}
		return fmt.Errorf("read %s: %w", c.SensorTable, err)
	}
	return p.end()
}

// copyParser parses a binary COPY stream (PostgreSQL docs, "Binary Format"):
// an 11-byte signature, flags, a header extension, tuples of int16 field
// count + (int32 length, bytes) per field (length -1: NULL), and an int16 -1
// trailer. It is an io.Writer fed by CopyTo; tuples may span writes.
type copyParser struct {
	rb     *readingsBuilder
	fields int
	buf    []byte
	header bool
	done   bool
	vals   [][]byte
	err    error
}

var copySignature = []byte("PGCOPY\n\xff\r\n\x00")

func (p *copyParser) Write(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	data := b
	if len(p.buf) > 0 {
		p.buf = append(p.buf, b...)
		data = p.buf
	}
	n, err := p.parse(data)
	if err != nil {
		p.err = err
		return 0, err
	}
	// Keep the unparsed tail (a partial tuple) for the next write.
	rest := data[n:]
	p.buf = append(p.buf[:0], rest...)
	return len(b), nil
}

func (p *copyParser) parse(d []byte) (int, error) {
	off := 0
	if !p.header {
		if len(d) < 19 {
			return 0, nil
		}
		if !bytes.Equal(d[:11], copySignature) {
			return 0, errors.New("copy: not a binary COPY stream")
		}
		ext := int(binary.BigEndian.Uint32(d[15:19]))
		if len(d) < 19+ext {
			return 0, nil
		}
		off = 19 + ext
		p.header = true
	}
	if cap(p.vals) < p.fields {
		p.vals = make([][]byte, p.fields)
	}
	vals := p.vals[:p.fields]
	for off+2 <= len(d) && !p.done {
		n := int(int16(binary.BigEndian.Uint16(d[off:])))
		if n == -1 {
			p.done = true
			return off + 2, nil
		}
		if n != p.fields {
			return 0, fmt.Errorf("copy: tuple with %d fields, want %d", n, p.fields)
		}
		pos := off + 2
		complete := true
		for i := range n {
			if pos+4 > len(d) {
				complete = false
				break
			}
			l := int(int32(binary.BigEndian.Uint32(d[pos:])))
			pos += 4
			if l < 0 {
				vals[i] = nil
				continue
			}
			if pos+l > len(d) {
				complete = false
				break
			}
			vals[i] = d[pos : pos+l : pos+l]
			pos += l
		}
		if !complete {
			break
		}
		if err := p.rb.row(vals[0], vals[1], vals[2:]); err != nil {
			return 0, err
		}
		off = pos
	}
	return off, nil
}

func (p *copyParser) end() error {
	if !p.done || len(p.buf) > 0 {
		return errors.New("copy: stream ended early")
	}
	return nil
}

// readingsBuilder turns binary rows (device, timestamptz, float8...) into
// Arrow batches of the readings schema and writes them as they fill.
type readingsBuilder struct {
	w       *dataset.Writer
	pipe    *batchPipe
	bld     *array.RecordBuilder
	tenant  string
	sensors []string
	batch   int
	pending int
	bar     progress.Bar

	tb, db *array.StringBuilder
	ts     *array.TimestampBuilder
	fb     []*array.Float64Builder

	st       stats
	dev      []byte // current device
	devFirst int64
	devRows  int
	lastTS   int64
}

func newReadingsBuilder(loc, tenant string, sensors []string, meta dataset.Meta, batch int, bar progress.Bar, mem memory.Allocator, opts ...dataset.WriterOption) (*readingsBuilder, error) {
	m := meta.Clone()
	m.MustSet(dataset.MetaSensors, sensors)
	m[dataset.MetaSortedBy] = dataset.SortedByDevice
	sch := dataset.NewSchema(dataset.KindReadings, dataset.ReadingsColumns(sensors), m)
	w, err := dataset.Create(loc, sch, append([]dataset.WriterOption{dataset.WithAllocator(mem)}, opts...)...)
	if err != nil {
		return nil, err
	}
	b := &readingsBuilder{w: w, pipe: newBatchPipe(w), bld: array.NewRecordBuilder(mem, sch), tenant: tenant, sensors: sensors, batch: batch, bar: bar}
	b.tb = b.bld.Field(0).(*array.StringBuilder)
	b.db = b.bld.Field(1).(*array.StringBuilder)
	b.ts = b.bld.Field(2).(*array.TimestampBuilder)
	for i := range sensors {
		b.fb = append(b.fb, b.bld.Field(3+i).(*array.Float64Builder))
	}
	b.reserve()
	return b, nil
}

func (b *readingsBuilder) reserve() {
	b.tb.Reserve(b.batch)
	b.tb.ReserveData(b.batch * len(b.tenant))
	b.db.Reserve(b.batch)
	b.ts.Reserve(b.batch)
	for _, f := range b.fb {
		f.Reserve(b.batch)
	}
}

// row appends one row in PostgreSQL binary format: device text, timestamptz
// (int64 µs since 2000-01-01), float8 sensors (nil: NULL).
func (b *readingsBuilder) row(dev, ts []byte, vals [][]byte) error {
	if dev == nil || len(ts) != 8 {
		return errors.New("reading with a NULL device_id or timestamp")
	}
	raw := int64(binary.BigEndian.Uint64(ts))
	if raw == math.MaxInt64 || raw == math.MinInt64 {
		return fmt.Errorf("device %s: infinite timestamp", dev)
	}
	t := raw + pgEpoch
	switch c := bytes.Compare(dev, b.dev); {
	case b.devRows == 0 && b.st.rows == 0:
		b.newDevice(dev, t)
	case c > 0:
		b.endDevice()
		b.newDevice(dev, t)
	case c < 0:
		return fmt.Errorf("device %q arrived after %q: the query result is not ordered by device", dev, b.dev)
	case t == b.lastTS:
		return dataError("duplicate reading: device %s at %s appears twice in the sensor table", dev, dataset.TimeOf(t).Format(time.RFC3339Nano))
	case t < b.lastTS:
		return fmt.Errorf("device %s: timestamps not in order", dev)
	}
	b.lastTS = t
	b.devRows++
	b.tb.Append(b.tenant)
	b.db.BinaryBuilder.Append(dev)
	b.ts.UnsafeAppend(arrow.Timestamp(t))
	for i, v := range vals {
		f := b.fb[i]
		if v == nil {
			f.UnsafeAppendBoolToBitmap(false)
			continue
		}
		if len(v) != 8 {
			return fmt.Errorf("column %s: value of %d bytes, want float8", b.sensors[i], len(v))
		}
		x := math.Float64frombits(binary.BigEndian.Uint64(v))
		switch {
		case math.IsNaN(x):
			f.UnsafeAppendBoolToBitmap(false) // NaN is a missing value
		case math.IsInf(x, 0):
			return dataError("device %s at %s: column %s is %v", dev, dataset.TimeOf(t).Format(time.RFC3339Nano), b.sensors[i], x)
		default:
			f.UnsafeAppend(x)
		}
	}
	b.pending++
	if b.pending >= b.batch {
		return b.flush()
	}
	return nil
}

func (b *readingsBuilder) newDevice(dev []byte, t int64) {
	b.dev = append(b.dev[:0], dev...)
	b.devFirst, b.devRows = t, 0
}

func (b *readingsBuilder) endDevice() {
	b.st.device(b.tenant, b.devRows, b.devFirst, b.lastTS)
	b.devRows = 0
}

// flush hands the pending rows as one batch to the writer goroutine.
func (b *readingsBuilder) flush() error {
	if b.pending == 0 {
		return nil
	}
	rec := b.bld.NewRecordBatch()
	n := b.pending
	b.pending = 0
	b.bar.Add(int64(n))
	b.reserve()
	if b.pipe == nil { // discard (benchmarks of the fetch alone)
		rec.Release()
		return nil
	}
	return b.pipe.send(rec)
}

// stats returns the summary; call after the last row.
func (b *readingsBuilder) stats() stats {
	if b.devRows > 0 {
		b.endDevice()
	}
	return b.st
}

// Commit waits for the writer goroutine and moves the file into place.
func (b *readingsBuilder) Commit() error {
	b.bld.Release()
	b.bld = nil
	if err := b.pipe.close(); err != nil {
		b.w.Abort()
		return err
	}
	return b.w.Commit()
}

// Abort stops the writer goroutine and removes the partial file.
func (b *readingsBuilder) Abort() { b.abort() }

func (b *readingsBuilder) abort() {
	if b.bld != nil {
		b.bld.Release()
		b.bld = nil
	}
	if b.pipe != nil {
		_ = b.pipe.close()
	}
	b.w.Abort()
}

// batchPipe writes batches in a goroutine, so that fetching rows from the
// database and encoding Parquet run on two cores. At most two batches wait.
type batchPipe struct {
	ch     chan arrow.RecordBatch
	done   chan struct{}
	failed atomic.Bool
	err    error // set by the goroutine before done is closed
	closed bool
}

func newBatchPipe(w *dataset.Writer) *batchPipe {
	p := &batchPipe{ch: make(chan arrow.RecordBatch, 1), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for rec := range p.ch {
			if p.err == nil {
				if err := w.Write(rec); err != nil {
					p.err = err
					p.failed.Store(true)
				}
			}
			rec.Release()
		}
	}()
	return p
}

// send passes rec (ownership included) to the writer.
func (p *batchPipe) send(rec arrow.RecordBatch) error {
	if p.failed.Load() {
		rec.Release()
		_ = p.close()
		return p.err
	}
	p.ch <- rec
	return nil
}

// close waits until every batch sent is written and returns the first error.
func (p *batchPipe) close() error {
	if !p.closed {
		p.closed = true
		close(p.ch)
	}
	<-p.done
	return p.err
}
