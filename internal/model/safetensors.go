package model

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/location"
)

// maxHeader bounds the JSON header a reader accepts (100 MB, as the reference
// implementation does).
const maxHeader = 100 << 20

type stEntry struct {
	DType       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// WriteSafetensors writes float32 tensors and string metadata in the
// safetensors format (8-byte little-endian header length, JSON header padded
// with spaces to a multiple of 8, raw little-endian data), atomically.
func WriteSafetensors(path string, tensors []*Tensor, meta map[string]string) error {
	var buf bytes.Buffer
	if err := EncodeSafetensors(&buf, tensors, meta); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, buf.Bytes())
}

// WriteSafetensorsIn writes the file as one of a write set (committed with
// the set), recording the set's ID in the metadata (MetaWriteSet).
func WriteSafetensorsIn(set *atomicfile.Set, path string, tensors []*Tensor, meta map[string]string) error {
	m := make(map[string]string, len(meta)+1)
	for k, v := range meta {
		m[k] = v
	}
	m[MetaWriteSet] = set.ID()
	var buf bytes.Buffer
	if err := EncodeSafetensors(&buf, tensors, m); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return set.WriteFile(path, buf.Bytes())
}

// EncodeSafetensors writes the safetensors encoding of tensors to w. The
// metadata gets the tensors' digest (MetaWeightsSHA256), which
// DecodeSafetensors verifies.
func EncodeSafetensors(w io.Writer, tensors []*Tensor, meta map[string]string) error {
	sorted := slices.Clone(tensors)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, t := range sorted {
		if Size(t.Shape) != len(t.Data) {
			return fmt.Errorf("tensor %s: shape %v holds %d values, data has %d", t.Name, t.Shape, Size(t.Shape), len(t.Data))
		}
	}
	m := make(map[string]string, len(meta)+1)
	for k, v := range meta {
		m[k] = v
	}
	m[MetaWeightsSHA256] = WeightsDigest(sorted)
	header := map[string]any{"__metadata__": m}
	var off int64
	for _, t := range sorted {
		n := int64(4 * len(t.Data))
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[t.Name] = stEntry{DType: "F32", Shape: shape, DataOffsets: [2]int64{off, off + n}}
		off += n
	}
	hb, err := json.Marshal(header)
	if err != nil {
		return err
	}
	if pad := (8 - len(hb)%8) % 8; pad > 0 {
		hb = append(hb, bytes.Repeat([]byte(" "), pad)...)
	}
	var lenb [8]byte
	binary.LittleEndian.PutUint64(lenb[:], uint64(len(hb)))
	if _, err := w.Write(lenb[:]); err != nil {
		return err
	}
	if _, err := w.Write(hb); err != nil {
		return err
	}
	raw := make([]byte, 0, 1<<16)
	for _, t := range sorted {
		for _, v := range t.Data {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
			if len(raw) >= 1<<16 {
				if _, err := w.Write(raw); err != nil {
					return err
				}
				raw = raw[:0]
			}
		}
	}
	_, err = w.Write(raw)
	return err
}

// ReadSafetensors reads a safetensors file of F32 tensors. Every structural
// defect (truncation, bad header, overlapping or out-of-range offsets, other
// dtypes) and weights that do not match the recorded digest are an error
// naming the file.
func ReadSafetensors(path string) ([]*Tensor, map[string]string, error) {
	b, err := location.ReadFile(context.Background(), path)
	if err != nil {
		return nil, nil, fmt.Errorf("read checkpoint: %w", err)
	}
	ts, meta, err := DecodeSafetensors(b)
	if err != nil {
		if errors.Is(err, ErrWeightsDigest) {
			// Readable but altered: bad values inside an input (exit 3).
			return nil, nil, fmt.Errorf("%w: read checkpoint %s: %w", exitcode.ErrValidation, path, err)
		}
		// Truncated or not a safetensors file: unreadable (exit 1).
		return nil, nil, fmt.Errorf("read checkpoint %s: %w", path, err)
	}
	return ts, meta, nil
}

// DecodeSafetensors parses the safetensors encoding in b. Every tensor's
// shape must account for exactly its byte range (checked before anything is
// allocated for it), and when the metadata records the weights' digest
// (MetaWeightsSHA256) the tensors must match it (ErrWeightsDigest, exit 3);
// a file without one (written before digests were recorded) is accepted.
func DecodeSafetensors(b []byte) ([]*Tensor, map[string]string, error) {
	if len(b) < 8 {
		return nil, nil, fmt.Errorf("truncated: %d bytes, not a safetensors file", len(b))
	}
	hlen := binary.LittleEndian.Uint64(b[:8])
	if hlen > maxHeader || hlen > uint64(len(b)-8) {
		return nil, nil, fmt.Errorf("header length %d exceeds the file (%d bytes): truncated or not a safetensors file", hlen, len(b))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+hlen], &raw); err != nil {
		return nil, nil, fmt.Errorf("bad header: %w", err)
	}
	data := b[8+hlen:]
	var meta map[string]string
	type span struct {
		lo, hi int64
		name   string
	}
	var spans []span
	var out []*Tensor
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &meta); err != nil {
				return nil, nil, fmt.Errorf("bad __metadata__: %w", err)
			}
			continue
		}
		var e stEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, nil, fmt.Errorf("tensor %s: %w", name, err)
		}
		if e.DType != "F32" {
			return nil, nil, fmt.Errorf("tensor %s: dtype %s, want F32", name, e.DType)
		}
		lo, hi := e.DataOffsets[0], e.DataOffsets[1]
		if lo < 0 || hi < lo || hi > int64(len(data)) {
			return nil, nil, fmt.Errorf("tensor %s: data offsets [%d, %d) outside the %d data bytes (truncated?)", name, lo, hi, len(data))
		}
		n, ok := SizeWithin(e.Shape, (hi-lo)/4)
		if !ok || int64(4*n) != hi-lo {
			return nil, nil, fmt.Errorf("tensor %s: shape %v does not fit its %d data bytes (shape product × 4 bytes must equal the byte range)", name, e.Shape, hi-lo)
		}
		t := &Tensor{Name: name, Shape: e.Shape, Data: make([]float32, n)}
		for i := range t.Data {
			t.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[lo+int64(4*i):]))
		}
		out = append(out, t)
		spans = append(spans, span{lo, hi, name})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].lo < spans[j].lo })
	var end int64
	for _, s := range spans {
		if s.lo != end {
			return nil, nil, fmt.Errorf("tensor %s: data at offset %d, expected %d (overlapping or gapped buffers)", s.name, s.lo, end)
		}
		end = s.hi
	}
	if end != int64(len(data)) {
		return nil, nil, fmt.Errorf("%d trailing bytes after the last tensor", int64(len(data))-end)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if err := CheckWeightsDigest(out, meta[MetaWeightsSHA256]); err != nil {
		return nil, nil, err
	}
	return out, meta, nil
}

// SizeWithin returns the number of elements of shape when every dimension is
// ≥ 0 and the product is at most limit, computed without overflow; ok is
// false otherwise.
func SizeWithin(shape []int, limit int64) (n int, ok bool) {
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
	}
	if slices.Contains(shape, 0) {
		return 0, limit >= 0
	}
	p := int64(1)
	for _, d := range shape {
		if p > limit/int64(d) {
			return 0, false
		}
		p *= int64(d)
	}
	return int(p), p <= limit
}
