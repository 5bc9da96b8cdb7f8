package onnxmodel

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/model"
)

// MetaWeightsSHA256 is the weights digest (model.WeightsDigest) of the
// checkpoint the model was exported from. Parse recomputes it from the
// initializers (undoing Build's gate reordering) and refuses a model whose
// weights do not match it.
const MetaWeightsSHA256 = model.MetaWeightsSHA256

// CheckpointTensors recovers the checkpoint's tensors (names, shapes and
// values in PyTorch's layout, as model.Arch.Spec lists them) from the
// initializers of a model Build wrote: the inverse of Build's layout. The
// architecture comes from the MetaArch property; every initializer's shape
// and byte count is checked before its values are read, so a crafted file
// allocates nothing beyond what it holds.
func CheckpointTensors(mp *onnx.ModelProto) ([]*model.Tensor, model.Arch, error) {
	var a model.Arch
	if err := json.Unmarshal([]byte(Props(mp)[MetaArch]), &a); err != nil {
		return nil, a, fmt.Errorf("metadata %s: %w", MetaArch, err)
	}
	if err := a.Validate(); err != nil {
		return nil, a, fmt.Errorf("metadata %s: %w", MetaArch, err)
	}
	inits := map[string]*onnx.TensorProto{}
	for _, t := range mp.GetGraph().GetInitializer() {
		if _, dup := inits[t.GetName()]; dup {
			return nil, a, fmt.Errorf("initializer %s appears twice", t.GetName())
		}
		inits[t.GetName()] = t
	}
	get := func(name string, dims ...int) ([]float32, error) {
		t, ok := inits[name]
		if !ok {
			return nil, fmt.Errorf("initializer %s is missing", name)
		}
		want := make([]int64, len(dims))
		for i, d := range dims {
			want[i] = int64(d)
		}
		if !slices.Equal(t.GetDims(), want) {
			return nil, fmt.Errorf("initializer %s has dims %v, architecture %+v needs %v", name, t.GetDims(), a, want)
		}
		return floatData(t, model.Size(dims))
	}
	var out []*model.Tensor
	add := func(name string, shape []int, data []float32) {
		out = append(out, &model.Tensor{Name: name, Shape: shape, Data: data})
	}
	switch a.Type {
	case model.TypeLSTM:
		H := a.Hidden
		for k := range a.Layers {
			in := a.InputSize
			if k > 0 {
				in = H
			}
			w, err := get(fmt.Sprintf("lstm.W_l%d", k), 1, 4*H, in)
			if err != nil {
				return nil, a, err
			}
			r, err := get(fmt.Sprintf("lstm.R_l%d", k), 1, 4*H, H)
			if err != nil {
				return nil, a, err
			}
			b, err := get(fmt.Sprintf("lstm.B_l%d", k), 1, 8*H)
			if err != nil {
				return nil, a, err
			}
			add(fmt.Sprintf("lstm.weight_ih_l%d", k), []int{4 * H, in}, ungate(w, H*in))
			add(fmt.Sprintf("lstm.weight_hh_l%d", k), []int{4 * H, H}, ungate(r, H*H))
			add(fmt.Sprintf("lstm.bias_ih_l%d", k), []int{4 * H}, ungate(b[:4*H], H))
			add(fmt.Sprintf("lstm.bias_hh_l%d", k), []int{4 * H}, ungate(b[4*H:], H))
		}
	}
	for _, s := range a.Spec() {
		if a.Type == model.TypeLSTM && len(s.Name) > 5 && s.Name[:5] == "lstm." {
			continue
		}
		v, err := get(s.Name, s.Shape...)
		if err != nil {
			return nil, a, err
		}
		add(s.Name, s.Shape, v)
	}
	return out, a, nil
}

// ungate undoes Build's gate reordering of one LSTM tensor whose four gate
// blocks hold block values each: ONNX block j is PyTorch block onnxGates[j].
func ungate(v []float32, block int) []float32 {
	out := make([]float32, len(v))
	for j, pt := range onnxGates {
		copy(out[pt*block:(pt+1)*block], v[j*block:(j+1)*block])
	}
	return out
}

// floatData returns the n float32 values of a FLOAT initializer (raw_data,
// as Build writes it, or float_data).
func floatData(t *onnx.TensorProto, n int) ([]float32, error) {
	if t.GetDataType() != int32(onnx.TensorProto_FLOAT) {
		return nil, fmt.Errorf("initializer %s has data type %d, want FLOAT", t.GetName(), t.GetDataType())
	}
	if raw := t.GetRawData(); len(raw) > 0 || len(t.GetFloatData()) == 0 {
		if len(raw) != 4*n {
			return nil, fmt.Errorf("initializer %s holds %d bytes, its dims need %d", t.GetName(), len(raw), 4*n)
		}
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return out, nil
	}
	if len(t.GetFloatData()) != n {
		return nil, fmt.Errorf("initializer %s holds %d values, its dims need %d", t.GetName(), len(t.GetFloatData()), n)
	}
	return slices.Clone(t.GetFloatData()), nil
}

// int64Data returns the values of an INT64 initializer.
func int64Data(t *onnx.TensorProto) ([]int64, error) {
	if t.GetDataType() != int32(onnx.TensorProto_INT64) {
		return nil, fmt.Errorf("initializer %s has data type %d, want INT64", t.GetName(), t.GetDataType())
	}
	if raw := t.GetRawData(); len(raw) > 0 || len(t.GetInt64Data()) == 0 {
		if len(raw)%8 != 0 {
			return nil, fmt.Errorf("initializer %s holds %d bytes, not whole int64s", t.GetName(), len(raw))
		}
		out := make([]int64, len(raw)/8)
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
		}
		return out, nil
	}
	return slices.Clone(t.GetInt64Data()), nil
}

// VerifyWeights checks a model against the weights digest it records
// (MetaWeightsSHA256): the checkpoint tensors recovered from its
// initializers must give that digest, and the other initializers must be
// what Build derives from the metadata (the embedded scaler from MetaScaler,
// the Reshape shapes from the architecture), so that no byte of any
// initializer can change unnoticed. A model without the property (exported
// before digests were recorded) passes. Every failure wraps
// exitcode.ErrValidation; a weights mismatch also model.ErrWeightsDigest.
func VerifyWeights(mp *onnx.ModelProto) error {
	props := Props(mp)
	recorded := props[MetaWeightsSHA256]
	if recorded == "" {
		return nil
	}
	bad := func(err error) error { return fmt.Errorf("%w: %w", exitcode.ErrValidation, err) }
	ts, a, err := CheckpointTensors(mp)
	if err != nil {
		return bad(err)
	}
	if err := model.CheckWeightsDigest(ts, recorded); err != nil {
		return bad(fmt.Errorf("initializers: %w", err))
	}
	seen := map[string]bool{}
	for _, t := range ts {
		seen[t.Name] = true
	}
	if a.Type == model.TypeLSTM {
		for k := range a.Layers {
			for _, n := range []string{"W", "R", "B"} {
				seen[fmt.Sprintf("lstm.%s_l%d", n, k)] = true
			}
		}
	}
	embedded, _ := strconv.ParseBool(props[MetaScalerEmbedded])
	var sc dataset.Scaler
	if embedded {
		if err := json.Unmarshal([]byte(props[MetaScaler]), &sc); err != nil {
			return bad(fmt.Errorf("metadata %s: %w", MetaScaler, err))
		}
		if len(sc.Offset) != a.InputSize || len(sc.Scale) != a.InputSize {
			return bad(fmt.Errorf("metadata %s has %d offsets and %d scales for input size %d", MetaScaler, len(sc.Offset), len(sc.Scale), a.InputSize))
		}
	}
	wantShapes := map[string][]int64{}
	if a.Type == model.TypeLSTM {
		wantShapes["shape_batch_hidden"] = []int64{-1, int64(a.Hidden)}
		if a.Layers > 1 {
			wantShapes["shape_seq_batch_hidden"] = []int64{0, -1, int64(a.Hidden)}
		}
	}
	for _, t := range mp.GetGraph().GetInitializer() {
		name := t.GetName()
		switch {
		case seen[name]:
			continue
		case embedded && (name == "scaler.offset" || name == "scaler.scale"):
			want := sc.Offset
			if name == "scaler.scale" {
				want = sc.Scale
			}
			got, err := floatData(t, len(want))
			if err == nil && !slices.Equal(t.GetDims(), []int64{int64(len(want))}) {
				err = fmt.Errorf("initializer %s has dims %v, want [%d]", name, t.GetDims(), len(want))
			}
			if err != nil {
				return bad(err)
			}
			for j := range want {
				if math.Float32bits(got[j]) != math.Float32bits(float32(want[j])) {
					return bad(fmt.Errorf("initializer %s[%d] is %g, metadata %s says %g: the file is corrupt or was edited", name, j, got[j], MetaScaler, float32(want[j])))
				}
			}
		case wantShapes[name] != nil:
			got, err := int64Data(t)
			if err != nil {
				return bad(err)
			}
			if !slices.Equal(got, wantShapes[name]) {
				return bad(fmt.Errorf("initializer %s is %v, architecture %+v needs %v: the file is corrupt or was edited", name, got, a, wantShapes[name]))
			}
		default:
			return bad(fmt.Errorf("unexpected initializer %s for architecture %+v", name, a))
		}
		seen[name] = true
	}
	for name := range wantShapes {
		if !seen[name] {
			return bad(fmt.Errorf("initializer %s is missing", name))
		}
	}
	if embedded && (!seen["scaler.offset"] || !seen["scaler.scale"]) {
		return bad(fmt.Errorf("initializers scaler.offset and scaler.scale are missing (metadata %s=true)", MetaScalerEmbedded))
	}
	return nil
}
