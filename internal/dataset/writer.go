package dataset

import (
	"bufio"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/modax/modax-ml/internal/atomicfile"
)

// Writer writes one Parquet file (zstd, one row group per batch) atomically.
type Writer struct {
	loc  string
	file *atomicfile.File
	buf  *bufio.Writer
	fw   *pqarrow.FileWriter
	rows int64
}

// WriterOption configures Create.
type WriterOption func(*writerConfig)

type writerConfig struct {
	mem   memory.Allocator
	level int
	props []parquet.WriterProperty // per-schema tuning (e.g. CreateWindows)
	set   *atomicfile.Set
	// nonFiniteX lets a windows writer write NaN/±Inf into x.
	nonFiniteX bool
}

// InSet writes the file as one of a stage's write set: Commit only finishes
// it, the set's Commit renames it into place with the set's other files, and
// the file records the set's ID (MetaWriteSet), which readers of a pair
// compare (CheckSameSet).
func InSet(set *atomicfile.Set) WriterOption {
	return func(c *writerConfig) { c.set = set }
}

// withParquetProps adds Parquet writer properties (used by the typed writers
// of this package for column-specific encodings).
func withParquetProps(props ...parquet.WriterProperty) WriterOption {
	return func(c *writerConfig) { c.props = append(c.props, props...) }
}

// WithAllocator sets the allocator used while encoding.
func WithAllocator(mem memory.Allocator) WriterOption {
	return func(c *writerConfig) { c.mem = mem }
}

// WithNonFiniteX lets CreateWindows write NaN and ±Inf into x, which every
// windows reader refuses: only for tests that make such a file on purpose.
func WithNonFiniteX() WriterOption {
	return func(c *writerConfig) { c.nonFiniteX = true }
}

// WithZstdLevel sets the zstd compression level (default 3).
func WithZstdLevel(level int) WriterOption {
	return func(c *writerConfig) { c.level = level }
}

// Create starts writing a Parquet file at loc with the given schema, whose
// metadata must hold modax.schema (NewSchema sets it). Created-at is stamped
// unless the metadata has it; the write-set ID is the InSet set's, or none (a
// value carried over from an input is dropped). Always defer Abort; call
// Commit at the end.
func Create(loc string, schema *arrow.Schema, opts ...WriterOption) (*Writer, error) {
	cfg := writerConfig{mem: memory.DefaultAllocator, level: 3}
	for _, o := range opts {
		o(&cfg)
	}
	meta := metaFromArrow(schema.Metadata())
	if meta[MetaSchema] == "" {
		return nil, fmt.Errorf("create %s: schema metadata lacks %s", loc, MetaSchema)
	}
	_, carried := meta[MetaWriteSet]
	if meta[MetaCreatedAt] == "" || carried || cfg.set != nil {
		if meta[MetaCreatedAt] == "" {
			meta[MetaCreatedAt] = time.Now().UTC().Format(time.RFC3339Nano)
		}
		delete(meta, MetaWriteSet)
		if cfg.set != nil {
			meta[MetaWriteSet] = cfg.set.ID()
		}
		md := meta.arrow()
		schema = arrow.NewSchema(schema.Fields(), &md)
	}
	create := atomicfile.Create
	if cfg.set != nil {
		create = cfg.set.Create
	}
	f, err := create(loc) // a local path, file:// URL or bucket location
	if err != nil {
		return nil, err
	}
	props := parquet.NewWriterProperties(append([]parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(cfg.level),
		parquet.WithAllocator(cfg.mem),
		parquet.WithMaxRowGroupLength(1 << 20),
	}, append(dictionaryProps(schema), cfg.props...)...)...)
	buf := bufio.NewWriterSize(f, 1<<20)
	fw, err := pqarrow.NewFileWriter(schema, buf, props,
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema(), pqarrow.WithAllocator(cfg.mem)))
	if err != nil {
		f.Abort()
		return nil, fmt.Errorf("create %s: %w", loc, err)
	}
	return &Writer{loc: loc, file: f, buf: buf, fw: fw}, nil
}

// Loc returns the location being written.
func (w *Writer) Loc() string { return w.loc }

// Rows returns the number of rows written so far.
func (w *Writer) Rows() int64 { return w.rows }

// Write appends a batch as a row group. The caller keeps ownership of rec.
func (w *Writer) Write(rec arrow.RecordBatch) error {
	if rec.NumRows() == 0 {
		return nil
	}
	if err := w.fw.Write(rec); err != nil {
		return fmt.Errorf("write %s: %w", w.loc, err)
	}
	w.rows += rec.NumRows()
	return nil
}

// SetMeta adds a key-value pair to the file's footer metadata (for values known
// only at the end, such as row counts or time ranges).
func (w *Writer) SetMeta(key, value string) error {
	return w.fw.AppendKeyValueMetadata(key, value)
}

// Commit finishes the file and moves it into place.
func (w *Writer) Commit() error {
	if w.fw == nil {
		return fmt.Errorf("commit %s: writer already finished", w.loc)
	}
	fw := w.fw
	w.fw = nil
	if err := fw.Close(); err != nil {
		w.file.Abort()
		return fmt.Errorf("write %s: %w", w.loc, err)
	}
	if err := w.buf.Flush(); err != nil {
		w.file.Abort()
		return fmt.Errorf("write %s: %w", w.loc, err)
	}
	return w.file.Commit()
}

// Abort discards everything written; the destination is left untouched. It is
// a no-op after Commit.
func (w *Writer) Abort() {
	if w.fw != nil {
		// Close releases the encoder's buffers; what it writes is discarded.
		_ = w.fw.Close()
		w.fw = nil
	}
	w.file.Abort()
}

// dictionaryProps enables dictionary encoding for string columns only (ids,
// classes: few distinct values). Sensor values and times are nearly all
// distinct, and dictionary-encoding them costs a hash table per column for
// nothing: measured 3× slower writes (collect benchmark).
func dictionaryProps(schema *arrow.Schema) []parquet.WriterProperty {
	props := []parquet.WriterProperty{parquet.WithDictionaryDefault(false)}
	for _, f := range schema.Fields() {
		if f.Type.ID() == arrow.STRING {
			props = append(props, parquet.WithDictionaryFor(f.Name, true))
		}
	}
	return props
}

// batchWriter is the common part of the typed writers (frames, windows,
// stats): rows are appended to a record builder and written as one row group
// per batch of batch rows.
type batchWriter struct {
	*Writer
	bld     *array.RecordBuilder
	batch   int
	pending int
	// reserve sizes the builders for the next batch (nil: no reservation).
	reserve func()
	// nonFiniteX: WithNonFiniteX was given.
	nonFiniteX bool
}

// newBatchWriter starts a Parquet file at loc (Create) with a builder for its
// schema, allocated from the WithAllocator option.
func newBatchWriter(loc string, sch *arrow.Schema, batch int, opts []WriterOption) (*batchWriter, error) {
	w, err := Create(loc, sch, opts...)
	if err != nil {
		return nil, err
	}
	cfg := writerConfig{mem: memory.DefaultAllocator}
	for _, o := range opts {
		o(&cfg)
	}
	return &batchWriter{Writer: w, bld: array.NewRecordBuilder(cfg.mem, sch), batch: batch, nonFiniteX: cfg.nonFiniteX}, nil
}

// added records that n rows were appended to the builder and writes the batch
// when it is full.
func (w *batchWriter) added(n int) error {
	w.pending += n
	if w.pending < w.batch {
		return nil
	}
	if err := w.flush(); err != nil {
		return err
	}
	if w.reserve != nil {
		w.reserve()
	}
	return nil
}

func (w *batchWriter) flush() error {
	if w.pending == 0 {
		return nil
	}
	rec := w.bld.NewRecordBatch()
	defer rec.Release()
	w.pending = 0
	return w.Write(rec)
}

// Commit writes the last batch and moves the file into place.
func (w *batchWriter) Commit() error {
	defer w.bld.Release()
	if err := w.flush(); err != nil {
		w.Abort()
		return err
	}
	return w.Writer.Commit()
}
