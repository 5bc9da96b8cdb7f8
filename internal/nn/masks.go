package nn

import (
	"math/rand/v2"

	"github.com/modax/modax-ml/internal/model"
)

// Draw fills m with fresh dropout masks for a batch of b windows of length t
// (the layout of NewMasks), reusing m's buffers so that a training loop
// allocates nothing per batch. Each value takes 32 random bits (NewMasks
// takes a float64 draw each, so the two give different masks from the same
// stream). With arch.Dropout 0 it returns nil.
func (m *Masks) Draw(rng *rand.Rand, arch model.Arch, b, t int) *Masks {
	p := arch.Dropout
	if p <= 0 {
		return nil
	}
	keep := float32(1 / (1 - p))
	thr := uint64(p * (1 << 32)) // drop when the 32-bit uniform is below
	draw := func(s []float32, n int) []float32 {
		if cap(s) < n {
			s = make([]float32, n)
		}
		s = s[:n]
		for i := 0; i < n; i += 2 {
			u := rng.Uint64()
			s[i] = keep
			if u&0xffffffff < thr {
				s[i] = 0
			}
			if i+1 < n {
				s[i+1] = keep
				if u>>32 < thr {
					s[i+1] = 0
				}
			}
		}
		return s
	}
	m.FC = draw(m.FC, b*arch.FC)
	for len(m.Inter) < arch.Layers-1 {
		m.Inter = append(m.Inter, nil)
	}
	m.Inter = m.Inter[:arch.Layers-1]
	for k := range m.Inter {
		m.Inter[k] = draw(m.Inter[k], t*b*arch.Hidden)
	}
	return m
}
