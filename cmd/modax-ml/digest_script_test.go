package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/rogpeppe/go-internal/testscript"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/modax/modax-ml/internal/model"
)

// cmdFlipWeight flips one bit of one weight inside a model file, at the real
// offset of the tensor's data, and writes the result to OUT:
//
//	flip-weight IN TENSOR OUT
//
// IN is a safetensors checkpoint (TENSOR is a checkpoint tensor name, e.g.
// fc1.weight) or an ONNX model (TENSOR is an initializer name; its raw_data
// bytes are found in the file).
func cmdFlipWeight(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: flip-weight IN TENSOR OUT")
	}
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	off := -1
	if strings.HasSuffix(args[0], ".onnx") {
		mp := &onnx.ModelProto{}
		ts.Check(proto.Unmarshal(b, mp))
		for _, init := range mp.GetGraph().GetInitializer() {
			if init.GetName() == args[1] {
				raw := init.GetRawData()
				if len(raw) < 8 {
					ts.Fatalf("initializer %s has %d raw bytes", args[1], len(raw))
				}
				// The name field (8) is followed by the raw_data field (9) in a
				// deterministically marshalled TensorProto.
				pre := protowire.AppendVarint(protowire.AppendTag([]byte(args[1]), 9, protowire.BytesType), uint64(len(raw)))
				pat := append(pre, raw...)
				off = bytes.Index(b, pat)
				if off < 0 || bytes.Contains(b[off+1:], pat) {
					ts.Fatalf("raw_data of %s is not found exactly once in %s", args[1], args[0])
				}
				off += len(pre) + 5
			}
		}
	} else {
		n := binary.LittleEndian.Uint64(b[:8])
		var h map[string]json.RawMessage
		ts.Check(json.Unmarshal(b[8:8+n], &h))
		var e struct {
			DataOffsets [2]int `json:"data_offsets"`
		}
		if raw, ok := h[args[1]]; ok {
			ts.Check(json.Unmarshal(raw, &e))
			if e.DataOffsets[1]-e.DataOffsets[0] < 4 {
				ts.Fatalf("tensor %s holds no value", args[1])
			}
			off = 8 + int(n) + e.DataOffsets[0] + 1
		}
	}
	if off < 0 {
		ts.Fatalf("%s has no tensor %s", args[0], args[1])
	}
	b[off] ^= 0x01
	ts.Check(os.WriteFile(ts.MkAbs(args[2]), b, 0o644))
}

// cmdTruncateFile writes the first N bytes of IN to OUT:
//
//	truncate-file IN N OUT
func cmdTruncateFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: truncate-file IN N OUT")
	}
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	if n < 0 || n > len(b) {
		ts.Fatalf("truncate-file: %d bytes of a %d-byte file", n, len(b))
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[2]), b[:n], 0o644))
}

// cmdHugeShape writes a safetensors file whose header claims a tensor of
// shape [D0, D1, ...] for 4 data bytes:
//
//	huge-shape OUT D0 D1 ...
func cmdHugeShape(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: huge-shape OUT D0 [D1 ...]")
	}
	var shape []int64
	for _, a := range args[1:] {
		d, err := strconv.ParseInt(a, 10, 64)
		ts.Check(err)
		shape = append(shape, d)
	}
	h, err := json.Marshal(map[string]any{
		"__metadata__": map[string]string{"format": "pt"},
		"fc1.weight":   map[string]any{"dtype": "F32", "shape": shape, "data_offsets": []int{0, 4}},
	})
	ts.Check(err)
	var b bytes.Buffer
	ts.Check(binary.Write(&b, binary.LittleEndian, uint64(len(h))))
	b.Write(h)
	b.Write([]byte{0, 0, 0x80, 0x3f})
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), b.Bytes(), 0o644))
}

// cmdSameDigest checks that every file records the same, non-empty weights
// digest: a checkpoint (modax.weights_sha256 in its safetensors metadata), an
// ONNX model (the same key in its metadata_props) or a deployed
// model_metadata.json (weights_sha256):
//
//	same-digest FILE...
func cmdSameDigest(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: same-digest FILE FILE...")
	}
	var first string
	same := true
	for i, a := range args {
		b, err := os.ReadFile(ts.MkAbs(a))
		ts.Check(err)
		var d string
		switch {
		case strings.HasSuffix(a, ".onnx"):
			mp := &onnx.ModelProto{}
			ts.Check(proto.Unmarshal(b, mp))
			for _, e := range mp.GetMetadataProps() {
				if e.GetKey() == model.MetaWeightsSHA256 {
					d = e.GetValue()
				}
			}
		case strings.HasSuffix(a, ".json"):
			var m struct {
				WeightsSHA256 string `json:"weights_sha256"`
			}
			ts.Check(json.Unmarshal(b, &m))
			d = m.WeightsSHA256
		default:
			_, meta, err := model.DecodeSafetensors(b)
			ts.Check(err)
			d = meta[model.MetaWeightsSHA256]
		}
		if len(d) != 64 {
			ts.Fatalf("%s records weights digest %q, want a hex sha256", a, d)
		}
		ts.Logf("%s: %s", a, d)
		if i == 0 {
			first = d
		} else if d != first {
			same = false
		}
	}
	if same == neg {
		ts.Fatalf("weights digests equal: %v, want %v", same, !neg)
	}
}

// cmdStripDigest writes IN without its recorded weights digest to OUT, as
// files were written before digests were recorded:
//
//	strip-digest IN OUT
func cmdStripDigest(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: strip-digest IN OUT")
	}
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	var out []byte
	if strings.HasSuffix(args[0], ".onnx") {
		mp := &onnx.ModelProto{}
		ts.Check(proto.Unmarshal(b, mp))
		n := len(mp.MetadataProps)
		mp.MetadataProps = slices.DeleteFunc(mp.MetadataProps, func(e *onnx.StringStringEntryProto) bool { return e.GetKey() == model.MetaWeightsSHA256 })
		if len(mp.MetadataProps) == n {
			ts.Fatalf("%s records no weights digest", args[0])
		}
		out, err = proto.MarshalOptions{Deterministic: true}.Marshal(mp)
		ts.Check(err)
	} else {
		n := binary.LittleEndian.Uint64(b[:8])
		var h map[string]json.RawMessage
		ts.Check(json.Unmarshal(b[8:8+n], &h))
		var meta map[string]string
		ts.Check(json.Unmarshal(h["__metadata__"], &meta))
		if _, ok := meta[model.MetaWeightsSHA256]; !ok {
			ts.Fatalf("%s records no weights digest", args[0])
		}
		delete(meta, model.MetaWeightsSHA256)
		m, err := json.Marshal(meta)
		ts.Check(err)
		h["__metadata__"] = m
		hdr, err := json.Marshal(h)
		ts.Check(err)
		out = binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
		out = append(append(out, hdr...), b[8+n:]...)
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), out, 0o644))
}
