package model

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/modax/modax-ml/internal/exitcode"
)

// tensorOffset returns the file offset of the first data byte of the named
// tensor in a safetensors file.
func tensorOffset(t *testing.T, b []byte, name string) int {
	t.Helper()
	n := binary.LittleEndian.Uint64(b[:8])
	var h map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &h); err != nil {
		t.Fatal(err)
	}
	var e struct {
		DataOffsets [2]int `json:"data_offsets"`
	}
	if err := json.Unmarshal(h[name], &e); err != nil {
		t.Fatal(err)
	}
	return 8 + int(n) + e.DataOffsets[0]
}

func TestWeightsDigestRoundTrip(t *testing.T) {
	ck := testCheckpoint(t)
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := Save(path, ck); err != nil {
		t.Fatal(err)
	}
	want := WeightsDigest(ck.Params.Tensors)
	if len(want) != 64 {
		t.Fatalf("digest %q is not a hex sha256", want)
	}
	_, meta, err := ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if meta[MetaWeightsSHA256] != want {
		t.Fatalf("file records %s=%q, the tensors give %q", MetaWeightsSHA256, meta[MetaWeightsSHA256], want)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Info.WeightsSHA256 != want || WeightsDigest(got.Params.Tensors) != want {
		t.Fatalf("loaded digest %q / recomputed %q, want %q", got.Info.WeightsSHA256, WeightsDigest(got.Params.Tensors), want)
	}
	// Canonical: independent of the tensors' order, but every name, shape
	// and value counts.
	rev := slices.Clone(ck.Params.Tensors)
	slices.Reverse(rev)
	if WeightsDigest(rev) != want {
		t.Fatal("digest depends on the order of the tensors")
	}
	for _, tc := range []struct {
		name   string
		change func(ts []*Tensor)
	}{
		{"value", func(ts []*Tensor) { ts[0].Data[3] = math.Nextafter32(ts[0].Data[3], 1) }},
		{"sign of zero", func(ts []*Tensor) { ts[0].Data[0] = float32(math.Copysign(0, -1)) }},
		{"name", func(ts []*Tensor) { ts[2].Name += "x" }},
		{"shape", func(ts []*Tensor) { s := ts[0].Shape; ts[0].Shape = []int{s[1], s[0]} }},
		{"rank", func(ts []*Tensor) { ts[0].Shape = []int{Size(ts[0].Shape)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := ck.Params.Clone().Tensors
			base[0].Data[0] = 0
			c := ck.Params.Clone().Tensors
			c[0].Data[0] = 0
			tc.change(c)
			if WeightsDigest(c) == WeightsDigest(base) {
				t.Fatalf("changing the %s keeps the digest", tc.name)
			}
		})
	}
	if err := CheckWeightsDigest(ck.Params.Tensors, ""); err != nil {
		t.Fatalf("an absent digest (an old file) must pass: %v", err)
	}
}

// A byte flipped inside a tensor's data is caught by the digest (exit 3,
// naming the file); a checkpoint without a digest (written before digests
// were recorded) still loads.
func TestWeightsDigestFlippedByte(t *testing.T) {
	_, dir, path, b := savedCheckpoint(t)
	for _, name := range []string{"fc2.bias", "lstm.weight_ih_l0", "lstm.bias_hh_l1"} {
		t.Run(name, func(t *testing.T) {
			c := slices.Clone(b)
			c[tensorOffset(t, c, name)+1] ^= 0x01
			p := filepath.Join(dir, "flipped-"+name+".safetensors")
			if err := os.WriteFile(p, c, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(p)
			if !errors.Is(err, ErrWeightsDigest) || !errors.Is(err, exitcode.ErrValidation) || exitcode.Code(err) != exitcode.Validation {
				t.Fatalf("err = %v (exit %d), want ErrWeightsDigest (exit 3)", err, exitcode.Code(err))
			}
			if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), MetaWeightsSHA256) {
				t.Fatalf("err = %v, want it to name the file and %s", err, MetaWeightsSHA256)
			}
		})
	}
	// The same bytes without the recorded digest: an old file, loads.
	ts, meta, err := ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	delete(meta, MetaWeightsSHA256)
	var buf bytes.Buffer
	if err := encodeWithoutDigest(&buf, ts, meta); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, "old.safetensors")
	if err := os.WriteFile(old, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Load(old)
	if err != nil {
		t.Fatalf("a checkpoint without a digest must load: %v", err)
	}
	if got.Info.WeightsSHA256 != "" {
		t.Fatalf("old file reports digest %q", got.Info.WeightsSHA256)
	}
}

// encodeWithoutDigest writes the safetensors encoding the way files were
// written before digests were recorded (no MetaWeightsSHA256).
func encodeWithoutDigest(w *bytes.Buffer, ts []*Tensor, meta map[string]string) error {
	header := map[string]any{"__metadata__": meta}
	var data bytes.Buffer
	for _, t := range ts {
		lo := data.Len()
		for _, v := range t.Data {
			if err := binary.Write(&data, binary.LittleEndian, v); err != nil {
				return err
			}
		}
		header[t.Name] = map[string]any{"dtype": "F32", "shape": t.Shape, "data_offsets": []int{lo, data.Len()}}
	}
	h, err := json.Marshal(header)
	if err != nil {
		return err
	}
	if err := binary.Write(w, binary.LittleEndian, uint64(len(h))); err != nil {
		return err
	}
	w.Write(h)
	w.Write(data.Bytes())
	return nil
}

// A truncated checkpoint is unreadable (exit 1), not corrupt weights (exit 3).
func TestTruncatedCheckpointIsUnreadable(t *testing.T) {
	_, dir, _, b := savedCheckpoint(t)
	for _, n := range []int{0, 7, 100, len(b) / 2, len(b) - 1} {
		p := filepath.Join(dir, fmt.Sprintf("trunc%d.safetensors", n))
		if err := os.WriteFile(p, b[:n], 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(p)
		if err == nil || exitcode.Code(err) != exitcode.Error || errors.Is(err, ErrWeightsDigest) || !strings.Contains(err.Error(), p) {
			t.Fatalf("%d bytes: err = %v (exit %d), want exit 1 naming the file", n, err, exitcode.Code(err))
		}
	}
}

// A header claiming a huge shape for a few bytes of data, or an architecture
// far beyond the bounds, is a clean error before anything is allocated.
func TestHugeShapeHeader(t *testing.T) {
	dir := t.TempDir()
	craft := func(name string, header map[string]any, data int) string {
		h, err := json.Marshal(header)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		_ = binary.Write(&b, binary.LittleEndian, uint64(len(h)))
		b.Write(h)
		b.Write(make([]byte, data))
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, tc := range []struct {
		name  string
		shape []int64
		want  string
	}{
		{"huge", []int64{100000000, 100000000}, "does not fit"},
		{"overflow", []int64{1 << 40, 1 << 40, 1 << 40}, "does not fit"},
		{"negative", []int64{-1, -4}, "does not fit"},
	} {
		p := craft(tc.name+".safetensors", map[string]any{"w": map[string]any{"dtype": "F32", "shape": tc.shape, "data_offsets": []int{0, 4}}}, 4)
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Fatalf("%s: err = %v, want %q naming the file", tc.name, err, tc.want)
		}
	}
	// Metadata claiming hidden size 1e8 over small tensors.
	ck := testCheckpoint(t)
	meta, err := ck.meta()
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range []Arch{
		{Type: TypeLSTM, InputSize: 3, Hidden: 100000000, Layers: 2, FC: 5},
		{Type: TypeLSTM, InputSize: 3, Hidden: 4, Layers: 100000, FC: 5},
		{Type: TypeLSTM, InputSize: 3, Hidden: MaxHidden, Layers: MaxLayers, FC: MaxFC}, // within bounds, but not what the tensors hold
	} {
		a, _ := json.Marshal(arch)
		meta[MetaArch] = string(a)
		p := filepath.Join(dir, fmt.Sprintf("arch-%d-%d.safetensors", arch.Hidden, arch.Layers))
		if err := WriteSafetensors(p, ck.Params.Tensors, meta); err != nil {
			t.Fatal(err)
		}
		_, err := Load(p)
		if err == nil || exitcode.Code(err) != exitcode.Validation || !strings.Contains(err.Error(), p) {
			t.Fatalf("arch %+v: err = %v (exit %d), want exit 3 naming the file", arch, err, exitcode.Code(err))
		}
	}
	// A window far beyond the bound (a score over readings would allocate
	// window × features per device).
	a, _ := json.Marshal(ck.Info.Arch)
	meta[MetaArch] = string(a)
	meta[MetaWindow] = "1000000000"
	p := filepath.Join(dir, "window.safetensors")
	if err := WriteSafetensors(p, ck.Params.Tensors, meta); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || exitcode.Code(err) != exitcode.Validation || !strings.Contains(err.Error(), "modax.window 1000000000") {
		t.Fatalf("window 1e9: err = %v (exit %d), want exit 3 naming modax.window", err, exitcode.Code(err))
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Fatalf("refusing the crafted files allocated %d MiB", grew>>20)
	}
}

// Every byte of a small checkpoint flipped in turn: decoding never panics,
// and a flip anywhere in the tensor data is always refused.
func TestDecodeEveryByteFlipped(t *testing.T) {
	p, err := NewParams(Arch{Type: TypeLSTM, InputSize: 2, Hidden: 2, Layers: 2, FC: 2})
	if err != nil {
		t.Fatal(err)
	}
	p.Init(3)
	var buf bytes.Buffer
	if err := EncodeSafetensors(&buf, p.Tensors, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	dataStart := 8 + int(binary.LittleEndian.Uint64(b[:8]))
	c := slices.Clone(b)
	refused := 0
	for i := range b {
		c[i] ^= 0xff
		_, _, err := DecodeSafetensors(c)
		c[i] = b[i]
		if err != nil {
			refused++
		} else if i >= dataStart {
			t.Fatalf("byte %d (tensor data) flipped: the checkpoint was accepted", i)
		}
	}
	t.Logf("%d of %d single-byte flips refused", refused, len(b))
}
