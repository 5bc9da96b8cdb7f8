package collect

import (
	"encoding/binary"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/progress"
)

// copyStream encodes rows in PostgreSQL's binary COPY format.
func copyStream(rows [][3]any) []byte {
	b := append([]byte(nil), copySignature...)
	b = binary.BigEndian.AppendUint32(b, 0) // flags
	b = binary.BigEndian.AppendUint32(b, 4) // header extension of 4 bytes
	b = append(b, 1, 2, 3, 4)
	for _, r := range rows {
		b = binary.BigEndian.AppendUint16(b, 3)
		dev := r[0].(string)
		b = binary.BigEndian.AppendUint32(b, uint32(len(dev)))
		b = append(b, dev...)
		b = binary.BigEndian.AppendUint32(b, 8)
		b = binary.BigEndian.AppendUint64(b, uint64(r[1].(int64)-pgEpoch))
		if r[2] == nil {
			b = binary.BigEndian.AppendUint32(b, 0xffffffff)
		} else {
			b = binary.BigEndian.AppendUint32(b, 8)
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(r[2].(float64)))
		}
	}
	return binary.BigEndian.AppendUint16(b, 0xffff)
}

func newTestBuilder(t *testing.T, mem memory.Allocator, batch int) (*readingsBuilder, string) {
	t.Helper()
	loc := filepath.Join(t.TempDir(), "r.parquet")
	rb, err := newReadingsBuilder(loc, "t", []string{"x"}, dataset.Meta{dataset.MetaStage: Stage}, batch, progress.None("", "", 0), mem)
	if err != nil {
		t.Fatal(err)
	}
	return rb, loc
}

// The COPY parser handles tuples split anywhere across writes, and the
// builder leaks nothing on commit or abort.
func TestCopyParserChunks(t *testing.T) {
	t0 := int64(1_704_067_200_000_000)
	rows := [][3]any{{"a", t0, 1.5}, {"a", t0 + 1, nil}, {"b", t0, math.NaN()}, {"b", t0 + 5, -2.0}, {"c", t0, 3.0}}
	stream := copyStream(rows)
	for _, chunk := range []int{1, 2, 3, 7, 19, 20, 64, len(stream)} {
		alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
		rb, loc := newTestBuilder(t, alloc, 2)
		p := &copyParser{rb: rb, fields: 3}
		for i := 0; i < len(stream); i += chunk {
			if _, err := p.Write(stream[i:min(i+chunk, len(stream))]); err != nil {
				t.Fatalf("chunk %d: %v", chunk, err)
			}
		}
		if err := p.end(); err != nil {
			t.Fatal(err)
		}
		if err := rb.flush(); err != nil {
			t.Fatal(err)
		}
		st := rb.stats()
		if err := rb.Commit(); err != nil {
			t.Fatal(err)
		}
		alloc.AssertSize(t, 0)
		if st.rows != 5 || st.devices != 3 {
			t.Fatalf("stats %+v", st)
		}
		got, _ := readFrames(t, loc)
		if len(got) != 3 || got[0].Len() != 2 || got[0].Sensors[0][0] != 1.5 || !math.IsNaN(got[0].Sensors[0][1]) ||
			!math.IsNaN(got[1].Sensors[0][0]) || got[1].Sensors[0][1] != -2 || got[1].Time[1] != t0+5 {
			t.Fatalf("chunk %d: frames %+v %+v", chunk, got[0], got[1])
		}
	}
	// A stream cut short, a foreign stream, bad data: errors, and Abort frees everything.
	for _, tc := range []struct {
		data []byte
		want string
	}{
		{stream[:len(stream)-5], "ended early"},
		{[]byte("COPY 1\n0123456789abcdefghij"), "not a binary COPY stream"},
		{copyStream([][3]any{{"a", t0, 1.0}, {"a", t0, 2.0}}), "duplicate reading: device a"},
		{copyStream([][3]any{{"b", t0, 1.0}, {"a", t0, 2.0}}), "not ordered by device"},
		{copyStream([][3]any{{"a", t0, 1.0}, {"a", t0 - 1, 2.0}}), "not in order"},
		{copyStream([][3]any{{"a", t0, math.Inf(1)}}), "column x is +Inf"},
	} {
		alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
		rb, loc := newTestBuilder(t, alloc, 1)
		p := &copyParser{rb: rb, fields: 3}
		_, err := p.Write(tc.data)
		if err == nil {
			err = p.end()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("err = %v, want %q", err, tc.want)
		}
		rb.abort()
		alloc.AssertSize(t, 0)
		assertEmptyDir(t, filepath.Dir(loc))
	}
}
