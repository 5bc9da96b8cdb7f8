package train

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/model"
)

// The optimizer sidecar: Adam's moments, the current (not the best) weights,
// the best weights, and the loop state (epoch, batch, learning rate, early
// stopping counters, random streams), so that --resume continues exactly
// where a run stopped. It is a separate safetensors file because PyTorch's
// strict load_state_dict must accept model.safetensors as it is.

// metaState is the sidecar's metadata key holding the JSON loop state.
const metaState = "modax.train_state"

// SidecarPath returns the optimizer-state file that goes with a checkpoint:
// model.safetensors -> model.optim.safetensors.
func SidecarPath(ckpt string) string {
	return strings.TrimSuffix(ckpt, ".safetensors") + ".optim.safetensors"
}

// trainState is the loop state of a run, saved with every checkpoint.
type trainState struct {
	// Step counts optimizer steps; Epoch the completed epochs; NextBatch the
	// batches of epoch Epoch+1 already done (a run interrupted mid-epoch).
	Step      int     `json:"step"`
	Epoch     int     `json:"epoch"`
	NextBatch int     `json:"next_batch"`
	LR        float64 `json:"lr"`
	// Early stopping: the best val loss so far (HasBest) and its epoch, and
	// the epochs since.
	HasBest     bool    `json:"has_best"`
	BestValLoss float64 `json:"best_val_loss"`
	BestEpoch   int     `json:"best_epoch"`
	BadEpochs   int     `json:"bad_epochs"`
	// ReduceLROnPlateau's own best and bad-epoch count.
	PlateauBest float64 `json:"plateau_best"`
	PlateauBad  int     `json:"plateau_bad"`
	Stopped     bool    `json:"stopped_early"`
	// ShuffleRNG is the shuffling stream at the start of epoch Epoch+1,
	// MaskRNG the dropout stream now (encoding of math/rand/v2.PCG).
	ShuffleRNG []byte `json:"shuffle_rng"`
	MaskRNG    []byte `json:"mask_rng"`
	// TargetScale is what targets were divided by (and fc2 multiplied by in
	// the checkpoint).
	TargetScale  float64 `json:"target_scale"`
	TrainWindows int     `json:"train_windows"`
	// Partial are the running sums of the interrupted epoch.
	PartialLoss    float64 `json:"partial_loss"`
	PartialSamples int     `json:"partial_samples"`
	PartialSeconds float64 `json:"partial_seconds"`
}

// sidecar is the content of an optimizer-state file.
type sidecar struct {
	state trainState
	// m and v are nil for engines that cannot export Adam's moments
	// (gorgonia's AdamSolver keeps them private); best is nil before the
	// first validated epoch; ema is the weight average of --ema-decay (nil:
	// none).
	m, v, w, best, ema *model.Params
	// writeSet is the ID of the write set the file was committed in.
	writeSet string
}

func prefixed(prefix string, p *model.Params) []*model.Tensor {
	out := make([]*model.Tensor, 0, len(p.Tensors))
	for _, t := range p.Tensors {
		out = append(out, &model.Tensor{Name: prefix + t.Name, Shape: t.Shape, Data: t.Data})
	}
	return out
}

func writeSidecar(set *atomicfile.Set, path string, arch model.Arch, sc *sidecar) error {
	st, err := json.Marshal(sc.state)
	if err != nil {
		return err
	}
	ab, err := json.Marshal(arch)
	if err != nil {
		return err
	}
	var ts []*model.Tensor
	if sc.m != nil && sc.v != nil {
		ts = append(ts, prefixed("m.", sc.m)...)
		ts = append(ts, prefixed("v.", sc.v)...)
	}
	ts = append(ts, prefixed("w.", sc.w)...)
	if sc.best != nil {
		ts = append(ts, prefixed("best.", sc.best)...)
	}
	if sc.ema != nil {
		ts = append(ts, prefixed("ema.", sc.ema)...)
	}
	return model.WriteSafetensorsIn(set, path, ts, map[string]string{metaState: string(st), model.MetaArch: string(ab)})
}

// readSidecar reads the optimizer state of a checkpoint of architecture
// arch; a missing file is reported with fs.ErrNotExist.
func readSidecar(path string, arch model.Arch) (*sidecar, error) {
	ts, meta, err := model.ReadSafetensors(path) // a missing file: its error wraps fs.ErrNotExist
	if err != nil {
		return nil, err
	}
	var got model.Arch
	if err := json.Unmarshal([]byte(meta[model.MetaArch]), &got); err != nil || got != arch {
		return nil, fmt.Errorf("optimizer state %s: architecture %s does not match the checkpoint's %+v", path, meta[model.MetaArch], arch)
	}
	sc := &sidecar{writeSet: meta[model.MetaWriteSet]}
	if err := json.Unmarshal([]byte(meta[metaState]), &sc.state); err != nil {
		return nil, fmt.Errorf("optimizer state %s: %s: %w", path, metaState, err)
	}
	byName := map[string]*model.Tensor{}
	for _, t := range ts {
		byName[t.Name] = t
	}
	get := func(prefix string, required bool) (*model.Params, error) {
		p, err := model.NewParams(arch)
		if err != nil {
			return nil, err
		}
		for _, t := range p.Tensors {
			src, ok := byName[prefix+t.Name]
			if !ok {
				if !required && t == p.Tensors[0] {
					return nil, nil
				}
				return nil, fmt.Errorf("optimizer state %s: missing tensor %s%s", path, prefix, t.Name)
			}
			if len(src.Data) != len(t.Data) {
				return nil, fmt.Errorf("optimizer state %s: tensor %s%s has %d values, want %d", path, prefix, t.Name, len(src.Data), len(t.Data))
			}
			copy(t.Data, src.Data)
		}
		return p, nil
	}
	if sc.m, err = get("m.", false); err != nil {
		return nil, err
	}
	if sc.v, err = get("v.", sc.m != nil); err != nil {
		return nil, err
	}
	if sc.w, err = get("w.", true); err != nil {
		return nil, err
	}
	if sc.best, err = get("best.", false); err != nil {
		return nil, err
	}
	if sc.ema, err = get("ema.", false); err != nil {
		return nil, err
	}
	return sc, nil
}

// scaleFC2 multiplies fc2's weight and bias by s (fold: s = target scale;
// unfold: 1/s) in a copy of p.
func scaleFC2(p *model.Params, s float64) *model.Params {
	q := p.Clone()
	if s == 1 {
		return q
	}
	for _, name := range []string{"fc2.weight", "fc2.bias"} {
		t := q.Get(name)
		for i, v := range t.Data {
			t.Data[i] = float32(float64(v) * s)
		}
	}
	return q
}
