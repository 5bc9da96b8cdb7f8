package onnxmodel

import (
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/modax/modax-ml/internal/model"
)

// Verify checks that mp computes what the checkpoint computes: it must name
// the checkpoint's sha256 in its metadata, and gonnx's output on b
// deterministic pseudo-random windows (drawn around the scaler's offsets)
// must match the reference forward pass at rtol 1e-3, atol 1e-5. It catches
// an ONNX file exported from another checkpoint and corrupted weights.
func Verify(mp *onnx.ModelProto, ck *model.Checkpoint, ckSHA string, b int) (Diff, error) {
	p := Props(mp)
	if got := p[MetaCheckpointSHA256]; got != ckSHA {
		return Diff{}, fmt.Errorf("ONNX model was exported from another checkpoint (its %s is %q, the checkpoint's sha256 is %s)", MetaCheckpointSHA256, got, ckSHA)
	}
	if got, want := p[MetaWeightsSHA256], model.WeightsDigest(ck.Params.Tensors); got != "" && got != want {
		return Diff{}, fmt.Errorf("ONNX model holds other weights than the checkpoint (its %s is %.12s…, the checkpoint's weights give %.12s…)", MetaWeightsSHA256, got, want)
	}
	a := ck.Params.Arch
	embedded, _ := strconv.ParseBool(p[MetaScalerEmbedded])
	T := ck.Info.Window
	if a.Type == model.TypeRidge || T < 1 {
		T = 1
	}
	F := a.InputSize
	rng := rand.New(rand.NewPCG(uint64(b), 17))
	raw := make([]float32, b*T*F)
	scaled := make([]float32, len(raw))
	sc := ck.Info.Scaler
	for i := range raw {
		j := i % F
		z := rng.NormFloat64()
		if sc.Kind == "none" || len(sc.Offset) != F {
			raw[i], scaled[i] = float32(z), float32(z)
			continue
		}
		raw[i] = float32(sc.Invert(j, z))
		scaled[i] = float32(sc.Apply(j, float64(raw[i])))
	}
	in := scaled
	if embedded {
		in = raw
	}
	r, err := NewRunner(mp)
	if err != nil {
		return Diff{}, err
	}
	shape := []int{b, T, F}
	if a.Type == model.TypeRidge {
		shape = []int{b, F}
	}
	got, err := r.Run(in, shape...)
	if err != nil {
		return Diff{}, err
	}
	want, err := ck.Params.Forward(scaled, b, T)
	if err != nil {
		return Diff{}, err
	}
	d, ok := Compare(got, want, 1e-3, 1e-5)
	if !ok {
		return d, fmt.Errorf("ONNX model does not compute what the checkpoint computes (corrupt?): window %d gives %.7g, the checkpoint %.7g", d.Index, d.Got, d.Want)
	}
	return d, nil
}
