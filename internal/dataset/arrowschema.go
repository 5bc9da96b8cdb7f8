package dataset

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
)

// The Arrow schema a Parquet file stores (the ARROW:schema key, written by
// pqarrow.WithStoreSchema) is an Arrow IPC schema message: a flatbuffer.
// arrow-go decodes it without verifying it, and allocates what its lengths
// claim: a corrupt footer of a few bytes can make it allocate gigabytes
// (make([]arrow.Field, childrenLength)) or reference one child table from
// every slot of every level, which it then expands exponentially.
// checkArrowSchema verifies the message before pqarrow reads it: every table,
// vector and string the decoder reaches lies inside the buffer, the message
// and body lengths inside the bytes given, and the fields number at most
// maxSchemaFields in all.

const maxSchemaFields = 1 << 16

// errArrowSchema is the error of a corrupt ARROW:schema value.
var errArrowSchema = errors.New("corrupt Arrow schema (ARROW:schema metadata)")

// Flatbuffer slots of the tables of Arrow's Message.fbs and Schema.fbs that
// the decoder reads.
const (
	msgHeaderType  = 1
	msgHeader      = 2
	msgBodyLength  = 3
	msgMetadata    = 4
	headerSchema   = 1 // MessageHeader.Schema
	schemaFields   = 1
	schemaMetadata = 2
	fieldName      = 0
	fieldTypeType  = 2
	fieldType      = 3
	fieldDict      = 4
	fieldChildren  = 5
	fieldMetadata  = 6
	dictIndexType  = 1
	kvKey          = 0
	kvValue        = 1
	typeUnion      = 14 // Type.Union
	unionTypeIDs   = 1
)

func checkArrowSchema(serialized string) error {
	// As pqarrow decodes it: padded base64 when the length allows, else raw.
	var b []byte
	var err error
	if len(serialized)%4 == 0 {
		b, err = base64.StdEncoding.DecodeString(serialized)
	}
	if len(b) == 0 || err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(serialized); err != nil {
			return nil // pqarrow refuses it with its own error
		}
	}
	// An encapsulated message: [0xFFFFFFFF] int32 length, the flatbuffer, the body.
	if len(b) < 4 {
		return nil
	}
	off := 4
	n := int64(int32(binary.LittleEndian.Uint32(b)))
	if n == -1 {
		if len(b) < 8 {
			return nil
		}
		off, n = 8, int64(int32(binary.LittleEndian.Uint32(b[4:])))
	}
	if n < 0 || n > int64(len(b)-off) {
		return fmt.Errorf("%w: message of %d bytes in %d", errArrowSchema, n, len(b)-off)
	}
	v := &fbVerifier{buf: b[off : off+int(n)]}
	if n < 4 {
		return nil // too short for the decoder to read anything
	}
	msg := v.root()
	if body := v.int64Field(msg, msgBodyLength); body < 0 || body > int64(len(b)-off)-n {
		v.fail("body of %d bytes", body)
	}
	v.metadata(msg, msgMetadata)
	if v.ubyteField(msg, msgHeaderType) == headerSchema {
		s := v.tableField(msg, msgHeader)
		if s >= 0 {
			v.tables(s, schemaFields, v.field)
			v.metadata(s, schemaMetadata)
		}
	}
	return v.err
}

// fbVerifier checks the parts of a flatbuffer it is asked about; the first
// problem is kept in err and makes every later call a no-op (-1).
type fbVerifier struct {
	buf    []byte
	err    error
	fields int
	depth  int
}

func (v *fbVerifier) fail(format string, args ...any) {
	if v.err == nil {
		v.err = fmt.Errorf("%w: %s", errArrowSchema, fmt.Sprintf(format, args...))
	}
}

// u32 is the little-endian uint32 at off, or -1 (and an error) outside.
func (v *fbVerifier) u32(off int) int {
	if v.err != nil {
		return -1
	}
	if off < 0 || off > len(v.buf)-4 {
		v.fail("offset %d outside %d bytes", off, len(v.buf))
		return -1
	}
	return int(binary.LittleEndian.Uint32(v.buf[off:]))
}

func (v *fbVerifier) u16(off int) int {
	if v.err != nil {
		return -1
	}
	if off < 0 || off > len(v.buf)-2 {
		v.fail("offset %d outside %d bytes", off, len(v.buf))
		return -1
	}
	return int(binary.LittleEndian.Uint16(v.buf[off:]))
}

func (v *fbVerifier) root() int { return v.table(v.u32(0)) }

// table checks the table at pos and its vtable; it returns pos or -1.
func (v *fbVerifier) table(pos int) int {
	soff := v.u32(pos)
	if soff < 0 {
		return -1
	}
	vt := pos - int(int32(uint32(soff)))
	vsize, tsize := v.u16(vt), v.u16(vt+2)
	if vsize < 4 || vsize%2 != 0 || vt+vsize > len(v.buf) || tsize < 4 || pos+tsize > len(v.buf) {
		v.fail("table at %d", pos)
		return -1
	}
	return pos
}

// slot returns the position of a field of the table at t, 0 when absent.
func (v *fbVerifier) slot(t, i int) int {
	if t < 0 || v.err != nil {
		return 0
	}
	vt := t - int(int32(uint32(v.u32(t))))
	if 4+2*i >= v.u16(vt) {
		return 0
	}
	o := v.u16(vt + 4 + 2*i)
	if o <= 0 {
		return 0
	}
	if o >= v.u16(vt+2) {
		v.fail("field %d of the table at %d outside it", i, t)
		return 0
	}
	return t + o
}

// ref follows the uoffset of the field at p (0: absent) and returns its target.
func (v *fbVerifier) ref(p int) int {
	if p == 0 {
		return -1
	}
	u := v.u32(p)
	if u < 0 {
		return -1
	}
	if p+u >= len(v.buf) {
		v.fail("reference at %d outside %d bytes", p, len(v.buf))
		return -1
	}
	return p + u
}

func (v *fbVerifier) tableField(t, i int) int {
	p := v.ref(v.slot(t, i))
	if p < 0 {
		return -1
	}
	return v.table(p)
}

// vector checks the vector (or string: elem 1) of field i of t and returns
// the position of its first element and its length (-1, 0 when absent).
func (v *fbVerifier) vector(t, i, elem int) (int, int) {
	p := v.ref(v.slot(t, i))
	if p < 0 {
		return -1, 0
	}
	n := v.u32(p)
	if n < 0 || int64(n)*int64(elem) > int64(len(v.buf)-p-4) {
		v.fail("vector of %d at %d outside %d bytes", n, p, len(v.buf))
		return -1, 0
	}
	return p + 4, n
}

// tables checks the vector of tables in field i of t, and each with check.
func (v *fbVerifier) tables(t, i int, check func(int)) {
	start, n := v.vector(t, i, 4)
	for k := 0; k < n && v.err == nil; k++ {
		if e := v.table(v.ref(start + 4*k)); e >= 0 {
			check(e)
		}
	}
}

func (v *fbVerifier) metadata(t, i int) {
	v.tables(t, i, func(kv int) {
		v.vector(kv, kvKey, 1)
		v.vector(kv, kvValue, 1)
	})
}

func (v *fbVerifier) field(f int) {
	if v.fields++; v.fields > maxSchemaFields {
		v.fail("more than %d fields", maxSchemaFields)
		return
	}
	if v.depth++; v.depth > 64 {
		v.fail("fields nested more than 64 deep")
		return
	}
	defer func() { v.depth-- }()
	v.vector(f, fieldName, 1)
	typ := v.tableField(f, fieldType)
	if v.ubyteField(f, fieldTypeType) == typeUnion && typ >= 0 {
		v.vector(typ, unionTypeIDs, 4)
	}
	if d := v.tableField(f, fieldDict); d >= 0 {
		v.tableField(d, dictIndexType)
	}
	v.tables(f, fieldChildren, v.field)
	v.metadata(f, fieldMetadata)
}

func (v *fbVerifier) ubyteField(t, i int) int {
	p := v.slot(t, i)
	if p == 0 || p >= len(v.buf) {
		return 0
	}
	return int(v.buf[p])
}

func (v *fbVerifier) int64Field(t, i int) int64 {
	p := v.slot(t, i)
	if p == 0 {
		return 0
	}
	if p > len(v.buf)-8 {
		v.fail("field at %d outside %d bytes", p, len(v.buf))
		return 0
	}
	return int64(binary.LittleEndian.Uint64(v.buf[p:]))
}
