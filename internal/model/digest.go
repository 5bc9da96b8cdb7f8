package model

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// MetaWeightsSHA256 is the metadata key of the weights digest
// (WeightsDigest): train writes it into the checkpoint's safetensors
// metadata, export into the ONNX model's metadata_props, deploy into
// model_metadata.json. Readers verify it on every load.
const MetaWeightsSHA256 = "modax.weights_sha256"

// weightsDigestSchema starts the digested stream, so that a change of the
// canonical form changes every digest.
const weightsDigestSchema = "modax.weights/v1\n"

// ErrWeightsDigest marks weights that do not match the digest recorded with
// them (a corrupt file). The readers wrap it with the file's name and
// exitcode.ErrValidation (exit 3).
var ErrWeightsDigest = errors.New("the weights do not match the recorded digest")

// WeightsDigest returns the canonical SHA-256 (hex) of a model's weights: the
// tensors in name order, each as its name, dtype (F32), rank, dimensions and
// little-endian float32 bytes, every length and dimension as a uint64. It
// depends on the weights only, not on the file carrying them: a checkpoint
// and the ONNX model exported from it (whose initializers hold the same
// numbers in ONNX's layout) give the same digest.
func WeightsDigest(ts []*Tensor) string {
	sorted := slices.Clone(ts)
	slices.SortFunc(sorted, func(a, b *Tensor) int { return strings.Compare(a.Name, b.Name) })
	h := sha256.New()
	var u [8]byte
	putU := func(v uint64) {
		binary.LittleEndian.PutUint64(u[:], v)
		h.Write(u[:])
	}
	h.Write([]byte(weightsDigestSchema))
	buf := make([]byte, 0, 1<<16)
	for _, t := range sorted {
		putU(uint64(len(t.Name)))
		h.Write([]byte(t.Name))
		h.Write([]byte("F32"))
		putU(uint64(len(t.Shape)))
		for _, d := range t.Shape {
			putU(uint64(d))
		}
		putU(uint64(4 * len(t.Data)))
		for _, v := range t.Data {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			if len(buf) == cap(buf) {
				h.Write(buf)
				buf = buf[:0]
			}
		}
		h.Write(buf)
		buf = buf[:0]
	}
	return hex.EncodeToString(h.Sum(nil))
}

// CheckWeightsDigest compares the digest of ts with the recorded one. An
// empty recorded digest (a file written before digests were recorded) passes.
// A mismatch is ErrWeightsDigest.
func CheckWeightsDigest(ts []*Tensor, recorded string) error {
	if recorded == "" {
		return nil
	}
	if got := WeightsDigest(ts); got != recorded {
		return fmt.Errorf("%w %s=%.12s… (the tensors give %.12s…): the file is corrupt or was edited", ErrWeightsDigest, MetaWeightsSHA256, recorded, got)
	}
	return nil
}
