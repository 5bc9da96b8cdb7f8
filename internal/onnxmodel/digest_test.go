package onnxmodel

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/model"
)

var digestCases = []struct {
	name string
	arch model.Arch
	opts BuildOptions
}{
	{"lstm-2layer", model.Arch{Type: model.TypeLSTM, InputSize: 3, Hidden: 5, Layers: 2, FC: 4}, BuildOptions{}},
	{"lstm-1layer-opset11", model.Arch{Type: model.TypeLSTM, InputSize: 2, Hidden: 3, Layers: 1, FC: 2}, BuildOptions{Opset: 11}},
	{"lstm-3layer-no-scaler", model.Arch{Type: model.TypeLSTM, InputSize: 3, Hidden: 4, Layers: 3, FC: 3}, BuildOptions{NoScaler: true, DynamicSeq: true}},
	{"ridge", model.Arch{Type: model.TypeRidge, InputSize: 6}, BuildOptions{}},
}

// The ONNX model records the checkpoint's weights digest, and the tensors
// recovered from its initializers (Build's gate reordering undone) are the
// checkpoint's, bit for bit.
func TestONNXWeightsDigestIsTheCheckpoints(t *testing.T) {
	for _, tc := range digestCases {
		t.Run(tc.name, func(t *testing.T) {
			ck := testCheckpoint(t, tc.arch, 6, 3)
			want := model.WeightsDigest(ck.Params.Tensors)
			var buf bytes.Buffer
			if err := model.EncodeSafetensors(&buf, ck.Params.Tensors, nil); err != nil {
				t.Fatal(err)
			}
			_, meta, err := model.DecodeSafetensors(buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if meta[model.MetaWeightsSHA256] != want {
				t.Fatalf("checkpoint digest %q, want %q", meta[model.MetaWeightsSHA256], want)
			}
			mp, err := Build(ck, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := Props(mp)[MetaWeightsSHA256]; got != want {
				t.Fatalf("ONNX %s = %q, the checkpoint's is %q", MetaWeightsSHA256, got, want)
			}
			b, err := Marshal(mp)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := Parse(b)
			if err != nil {
				t.Fatalf("parse of a fresh export: %v", err)
			}
			ts, a, err := CheckpointTensors(parsed)
			if err != nil {
				t.Fatal(err)
			}
			if a != tc.arch || len(ts) != len(ck.Params.Tensors) {
				t.Fatalf("arch %+v with %d tensors, want %+v with %d", a, len(ts), tc.arch, len(ck.Params.Tensors))
			}
			for _, w := range ck.Params.Tensors {
				i := slices.IndexFunc(ts, func(g *model.Tensor) bool { return g.Name == w.Name })
				if i < 0 || !slices.Equal(ts[i].Shape, w.Shape) {
					t.Fatalf("tensor %s missing or of another shape", w.Name)
				}
				for j := range w.Data {
					if math.Float32bits(ts[i].Data[j]) != math.Float32bits(w.Data[j]) {
						t.Fatalf("%s[%d] = %v, the checkpoint has %v", w.Name, j, ts[i].Data[j], w.Data[j])
					}
				}
			}
		})
	}
}

// initializerOffset returns the offset in b of the raw data of the named
// initializer: its name field (8) followed by its raw_data field (9), as a
// deterministic marshal orders a TensorProto's fields.
func initializerOffset(t *testing.T, b []byte, mp *onnx.ModelProto, name string) int {
	t.Helper()
	for _, in := range mp.GetGraph().GetInitializer() {
		if in.GetName() == name {
			pre := protowire.AppendVarint(protowire.AppendTag([]byte(name), 9, protowire.BytesType), uint64(len(in.GetRawData())))
			pat := append(pre, in.GetRawData()...)
			off := bytes.Index(b, pat)
			if off < 0 || bytes.Contains(b[off+1:], pat) {
				t.Fatalf("raw data of %s not found exactly once", name)
			}
			return off + len(pre)
		}
	}
	t.Fatalf("no initializer %s", name)
	return -1
}

// A bit flipped in any initializer — a weight, the embedded scaler or a
// Reshape shape — makes Parse refuse the model (exit 3); a weight's also
// names the digest. A model exported before digests were recorded still
// parses.
func TestParseFlippedInitializer(t *testing.T) {
	for _, tc := range digestCases {
		t.Run(tc.name, func(t *testing.T) {
			ck := testCheckpoint(t, tc.arch, 6, 4)
			mp, err := Build(ck, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Marshal(mp)
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range mp.GetGraph().GetInitializer() {
				name := in.GetName()
				for _, at := range []int{0, len(in.GetRawData()) - 1} {
					c := slices.Clone(b)
					c[initializerOffset(t, b, mp, name)+at] ^= 0x10
					_, err := Parse(c)
					if !errors.Is(err, exitcode.ErrValidation) {
						t.Fatalf("%s byte %d flipped: err = %v, want a validation error", name, at, err)
					}
					weight := !strings.HasPrefix(name, "scaler.") && !strings.HasPrefix(name, "shape_")
					if weight != errors.Is(err, model.ErrWeightsDigest) {
						t.Fatalf("%s byte %d flipped: err = %v (digest error: %v, want %v)", name, at, err, errors.Is(err, model.ErrWeightsDigest), weight)
					}
					if !weight && !strings.Contains(err.Error(), name) {
						t.Fatalf("%s flipped: err = %v, want it named", name, err)
					}
				}
			}
			// The same model without the digest: an old file, parses even
			// with a flipped weight (nothing to check against).
			old := proto.Clone(mp).(*onnx.ModelProto)
			old.MetadataProps = slices.DeleteFunc(old.MetadataProps, func(e *onnx.StringStringEntryProto) bool { return e.GetKey() == MetaWeightsSHA256 })
			ob, err := Marshal(old)
			if err != nil {
				t.Fatal(err)
			}
			ob[initializerOffset(t, ob, old, old.GetGraph().GetInitializer()[0].GetName())] ^= 0x10
			if _, err := Parse(ob); err != nil {
				t.Fatalf("a model without %s must parse: %v", MetaWeightsSHA256, err)
			}
		})
	}
}

// Initializers laid out in the wrong gate order are not the checkpoint's
// weights: the digest catches it without running the model.
func TestParseWrongGateOrder(t *testing.T) {
	ck := testCheckpoint(t, model.Arch{Type: model.TypeLSTM, InputSize: 3, Hidden: 4, Layers: 2, FC: 3}, 6, 5)
	perm := [4]int{0, 1, 2, 3}
	mp, err := Build(ck, BuildOptions{gatePerm: &perm})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(b); !errors.Is(err, model.ErrWeightsDigest) {
		t.Fatalf("err = %v, want ErrWeightsDigest", err)
	}
}

// Structural damage that leaves the protobuf readable: a missing, duplicated
// or extra initializer, other dims, an architecture beyond the bounds.
func TestParseDamagedInitializers(t *testing.T) {
	ck := testCheckpoint(t, model.Arch{Type: model.TypeLSTM, InputSize: 3, Hidden: 4, Layers: 2, FC: 3}, 6, 6)
	for _, tc := range []struct {
		name   string
		damage func(mp *onnx.ModelProto)
		want   string
	}{
		{"missing", func(mp *onnx.ModelProto) {
			g := mp.GetGraph()
			g.Initializer = slices.DeleteFunc(g.Initializer, func(t *onnx.TensorProto) bool { return t.GetName() == "fc1.bias" })
		}, "initializer fc1.bias is missing"},
		{"duplicate", func(mp *onnx.ModelProto) {
			g := mp.GetGraph()
			g.Initializer = append(g.Initializer, proto.Clone(g.Initializer[0]).(*onnx.TensorProto))
		}, "appears twice"},
		{"extra", func(mp *onnx.ModelProto) {
			g := mp.GetGraph()
			g.Initializer = append(g.Initializer, &onnx.TensorProto{Name: "bonus", Dims: []int64{1}, DataType: int32(onnx.TensorProto_FLOAT), RawData: []byte{0, 0, 0, 0}})
		}, "unexpected initializer bonus"},
		{"dims", func(mp *onnx.ModelProto) {
			for _, t := range mp.GetGraph().GetInitializer() {
				if t.GetName() == "fc1.weight" {
					t.Dims = []int64{4, 3}
				}
			}
		}, "fc1.weight has dims [4 3]"},
		{"huge arch", func(mp *onnx.ModelProto) {
			for _, e := range mp.GetMetadataProps() {
				if e.GetKey() == MetaArch {
					e.Value = `{"type":"lstm","input_size":3,"hidden_size":100000000,"num_layers":2,"fc_size":3}`
				}
			}
		}, "hidden_size 100000000 exceeds the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mp, err := Build(ck, BuildOptions{})
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(mp)
			b, err := Marshal(mp)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(b)
			if !errors.Is(err, exitcode.ErrValidation) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a validation error saying %q", err, tc.want)
			}
		})
	}
}

// Every byte of a small model flipped in turn: Parse never panics, and a
// flip anywhere inside any initializer's data is always refused.
func TestParseEveryByteFlipped(t *testing.T) {
	ck := testCheckpoint(t, model.Arch{Type: model.TypeLSTM, InputSize: 2, Hidden: 2, Layers: 2, FC: 2}, 4, 7)
	mp, err := Build(ck, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	inData := make([]bool, len(b))
	for _, in := range mp.GetGraph().GetInitializer() {
		off := initializerOffset(t, b, mp, in.GetName())
		for i := range in.GetRawData() {
			inData[off+i] = true
		}
	}
	c := slices.Clone(b)
	refused := 0
	for i := range b {
		c[i] ^= 0xff
		_, err := Parse(c)
		c[i] = b[i]
		if err != nil {
			refused++
		} else if inData[i] {
			t.Fatalf("byte %d (initializer data) flipped: Parse accepted the model", i)
		}
	}
	t.Logf("%d of %d single-byte flips refused", refused, len(b))
}
