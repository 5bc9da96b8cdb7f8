package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/modax/modax-ml/internal/location"
)

// DefaultBatchRows is the number of rows per batch a Reader yields.
const DefaultBatchRows = 64 * 1024

// Reader reads one Parquet file batch by batch.
type Reader struct {
	loc    string
	kind   string
	f      io.Closer
	pf     *file.Reader
	fr     *pqarrow.FileReader
	schema *arrow.Schema
	meta   Meta
	mem    memory.Allocator
}

// ReaderOption configures Open.
type ReaderOption func(*readerConfig)

type readerConfig struct {
	mem       memory.Allocator
	batchRows int64
}

// WithReadAllocator sets the allocator of the batches.
func WithReadAllocator(mem memory.Allocator) ReaderOption {
	return func(c *readerConfig) { c.mem = mem }
}

// WithBatchRows sets the number of rows per batch.
func WithBatchRows(n int64) ReaderOption {
	return func(c *readerConfig) { c.batchRows = n }
}

// Open opens the Parquet file at loc and checks that it is a file of the given
// kind (one of the Kind constants) with every required column; kind "" skips
// the check. Errors name the file and the column.
func Open(loc, kind string, opts ...ReaderOption) (*Reader, error) {
	cfg := readerConfig{mem: memory.DefaultAllocator, batchRows: DefaultBatchRows}
	for _, o := range opts {
		o(&cfg)
	}
	f, size, err := openFile(loc)
	if err != nil {
		return nil, err
	}
	if size == 0 {
		f.Close()
		return nil, fmt.Errorf("open %s: empty file (not Parquet)", location.Redact(loc))
	}
	props := parquet.NewReaderProperties(cfg.mem)
	props.BufferedStreamEnabled = true
	props.BufferSize = 1 << 20
	// A page cannot hold more compressed bytes than the file; the pages our
	// writers make are about 1 MiB. A corrupt header claiming more is an
	// error, not an allocation of what it claims.
	props.MaxCompressedPageSize = min(size, maxPageSize)
	props.MaxUncompressedPageSize = maxPageSize
	pf, err := openParquet(f, props)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: not a readable Parquet file: %w", loc, err)
	}
	if err := checkLayout(pf, size); err != nil {
		pf.Close()
		f.Close()
		return nil, fmt.Errorf("open %s: not a readable Parquet file (corrupt?): %w", loc, err)
	}
	if v := pf.MetaData().KeyValueMetadata().FindValue("ARROW:schema"); v != nil {
		if err := checkArrowSchema(*v); err != nil {
			pf.Close()
			f.Close()
			return nil, fmt.Errorf("open %s: not a readable Parquet file (corrupt?): %w", loc, err)
		}
	}
	fr, err := guard(func() (*pqarrow.FileReader, error) {
		return pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: cfg.batchRows}, cfg.mem)
	})
	if err != nil {
		pf.Close()
		f.Close()
		return nil, fmt.Errorf("open %s: %w", loc, err)
	}
	sch, err := guard(fr.Schema)
	if err != nil {
		pf.Close()
		f.Close()
		return nil, fmt.Errorf("open %s: %w", loc, err)
	}
	meta := metaFromArrow(sch.Metadata())
	for _, kv := range pf.MetaData().KeyValueMetadata() {
		if _, ok := meta[kv.Key]; !ok && kv.Key != "ARROW:schema" && kv.Value != nil {
			meta[kv.Key] = *kv.Value
		}
	}
	r := &Reader{loc: loc, kind: kind, f: f, pf: pf, fr: fr, schema: sch, meta: meta, mem: cfg.mem}
	if kind != "" {
		if got := meta[MetaSchema]; got != "" && got != kind {
			r.Close()
			return nil, fmt.Errorf("%s: is a %s file, want %s", loc, got, kind)
		}
		if err := CheckSchema(loc, kind, sch, meta); err != nil {
			r.Close()
			return nil, err
		}
	}
	return r, nil
}

// openParquet guards against the panics the parquet reader raises on some
// corrupt footers, turning them into errors.
// file is what a Parquet reader reads: a local file or an object in a bucket.
type fileReader interface {
	parquet.ReaderAtSeeker
	io.ReadCloser
}

// openFile opens the file or object at loc for reading, with its size.
func openFile(loc string) (fileReader, int64, error) {
	if location.IsRemote(loc) {
		o, err := location.Open(context.Background(), loc)
		if err != nil {
			return nil, 0, err
		}
		return o, o.Size(), nil
	}
	path, err := location.Local(loc)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(path)
	if err != nil {
		// *PathError already names the path: "open readings.parquet: no such file or directory".
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("open %s: %w", loc, err)
	}
	if st.IsDir() {
		f.Close()
		return nil, 0, fmt.Errorf("open %s: is a directory", loc)
	}
	return f, st.Size(), nil
}

func openParquet(f parquet.ReaderAtSeeker, props *parquet.ReaderProperties) (pf *file.Reader, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("corrupt file: %v", p)
		}
	}()
	return file.NewParquetReader(f, file.WithReadProps(props))
}

// maxPageSize bounds the size a page header may declare.
const maxPageSize = 64 << 20

// checkLayout checks the footer's row counts and column chunk ranges against
// the file's size before any page is read: the parquet reader trusts them
// (a negative or out-of-file range panics in it or allocates what it claims).
func checkLayout(pf *file.Reader, size int64) error {
	md := pf.MetaData()
	var rows int64
	for i := range md.NumRowGroups() {
		rg := md.RowGroup(i)
		if rg.NumRows() < 0 {
			return fmt.Errorf("row group %d: %d rows", i, rg.NumRows())
		}
		rows += rg.NumRows()
		if rg.NumColumns() != md.Schema.NumColumns() {
			return fmt.Errorf("row group %d: %d columns, the schema has %d", i, rg.NumColumns(), md.Schema.NumColumns())
		}
		for j := range rg.NumColumns() {
			cc, err := rg.ColumnChunk(j)
			if err != nil {
				return fmt.Errorf("row group %d column %d: %w", i, j, err)
			}
			start := cc.DataPageOffset()
			if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 && start > cc.DictionaryPageOffset() {
				start = cc.DictionaryPageOffset()
			}
			n := cc.TotalCompressedSize()
			if start < 4 || n < 0 || start > size || n > size-start || cc.NumValues() < 0 {
				return fmt.Errorf("row group %d column %s: chunk of %d bytes at %d (%d values) outside a file of %d bytes",
					i, cc.PathInSchema(), n, start, cc.NumValues(), size)
			}
		}
	}
	if rows != md.NumRows {
		return fmt.Errorf("%d rows, the row groups hold %d", md.NumRows, rows)
	}
	return nil
}

// sizeHint is n bounded for preallocating rows: a footer's count is not
// trusted with memory before the rows are read.
func sizeHint(n int64) int { return int(min(max(n, 0), 1<<16)) }

// Loc returns the file's location.
func (r *Reader) Loc() string { return r.loc }

// Schema returns the file's Arrow schema (with its metadata).
func (r *Reader) Schema() *arrow.Schema { return r.schema }

// Meta returns the file's key-value metadata.
func (r *Reader) Meta() Meta { return r.meta }

// NumRows returns the number of rows in the file.
func (r *Reader) NumRows() int64 { return r.pf.NumRows() }

// Sensors returns the sensor columns of a readings or labeled file: the
// modax.sensors metadata, or every other float64 column when it is absent.
func (r *Reader) Sensors() ([]string, error) {
	s, err := r.meta.Sensors()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.loc, err)
	}
	if s == nil {
		s = inferSensors(r.kind, r.schema)
	}
	return s, nil
}

// Close releases the file.
func (r *Reader) Close() error {
	err := r.pf.Close()
	if cerr := r.f.Close(); err == nil && !errors.Is(cerr, os.ErrClosed) {
		err = cerr
	}
	return err
}

// leafIndices returns the Parquet leaf column indices of the named top-level
// fields (all fields when names is empty).
func (r *Reader) leafIndices(names []string) ([]int, error) {
	if len(names) == 0 {
		return nil, nil
	}
	var out []int
	for _, n := range names {
		idx := r.schema.FieldIndices(n)
		if len(idx) == 0 {
			return nil, fmt.Errorf("%s: missing column %q", r.loc, n)
		}
		out = appendLeaves(out, r.fr.Manifest.Fields[idx[0]])
	}
	return out, nil
}

func appendLeaves(out []int, f pqarrow.SchemaField) []int {
	if len(f.Children) == 0 {
		return append(out, f.ColIndex)
	}
	for _, c := range f.Children {
		out = appendLeaves(out, c)
	}
	return out
}

// Batches yields the file's rows batch by batch, restricted to the named
// columns (all when none are given), in file order. A batch is released when
// the loop body returns; Retain it to keep it. Iteration stops at the first
// error, which is yielded with a nil batch, or when ctx is cancelled.
func (r *Reader) Batches(ctx context.Context, columns ...string) iter.Seq2[arrow.RecordBatch, error] {
	return func(yield func(arrow.RecordBatch, error) bool) {
		if r.NumRows() == 0 {
			return
		}
		leaves, err := r.leafIndices(columns)
		if err != nil {
			yield(nil, err)
			return
		}
		rr, err := guard(func() (pqarrow.RecordReader, error) { return r.fr.GetRecordReader(ctx, leaves, nil) })
		if err != nil {
			yield(nil, fmt.Errorf("read %s: %w", r.loc, err))
			return
		}
		defer rr.Release()
		for {
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
			rec, err := guard(rr.Read)
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(nil, fmt.Errorf("read %s: %w", r.loc, err))
				return
			}
			if !yield(rec, nil) {
				return
			}
		}
	}
}

// guard runs a call into the parquet reader, turning the panics it raises on
// some corrupt pages (a nil page header, a negative length) into errors.
func guard[T any](f func() (T, error)) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("corrupt file: %v", p)
		}
	}()
	return f()
}

// FileSHA256 returns the hex sha256 of the file at loc.
func FileSHA256(loc string) (string, error) {
	f, _, err := openFile(loc)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", loc, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Inputs hashes the given locations for the modax.inputs lineage metadata.
func Inputs(locs ...string) ([]Input, error) {
	out := make([]Input, 0, len(locs))
	for _, l := range locs {
		sum, err := FileSHA256(l)
		if err != nil {
			return nil, err
		}
		out = append(out, Input{Path: l, SHA256: sum})
	}
	return out, nil
}

// CheckSameSetFiles opens two files of the given kinds that one run of a
// stage writes together and refuses them when they are of different writes
// (CheckSameSet).
func CheckSameSetFiles(locA, kindA, locB, kindB string) error {
	var metas [2]Meta
	for i, f := range [2][2]string{{locA, kindA}, {locB, kindB}} {
		r, err := Open(f[0], f[1])
		if err != nil {
			return err
		}
		metas[i] = r.Meta()
		r.Close()
	}
	return CheckSameSet(locA, metas[0], locB, metas[1])
}
