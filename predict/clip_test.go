package predict

import (
	"path/filepath"
	"testing"

	"github.com/modax/modax-ml/internal/conformal"
	"github.com/modax/modax-ml/internal/model"
)

// TestClip: a model whose raw outputs fall below 0 or above the horizon
// predicts RULs clipped to [0, horizon], with intervals around the clipped
// point: 0 ≤ rul_lower ≤ rul_pred ≤ rul_upper ≤ horizon on every row.
func TestClip(t *testing.T) {
	dir, p := files(t)
	path := filepath.Join(dir, "model.safetensors")
	c := &conformal.Calibration{Method: conformal.Method, Horizon: 100, Levels: []float64{0.9}, N: 100,
		Buckets: []conformal.Bucket{{Lo: 0, Hi: 100, N: 100, Radius: []conformal.Radius{12}}}}
	for _, tc := range []struct {
		bias, want, lo, hi float64
	}{{-1000, 0, 0, 12}, {1000, 100, 88, 100}} {
		p.Get("fc2.bias").Data[0] = float32(tc.bias)
		ck, err := model.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		ck.Params, ck.Info.Calibration = p, c
		if err := model.Save(path, ck); err != nil {
			t.Fatal(err)
		}
		_, ps, _ := predictAt(t, dir, 0.9)
		if len(ps) != 120 {
			t.Fatalf("bias %g: %d predictions, want 120", tc.bias, len(ps))
		}
		for i, pr := range ps {
			if pr.RULPred != tc.want || pr.Lower != tc.lo || pr.Upper != tc.hi {
				t.Fatalf("bias %g row %d: rul_pred %g [%g, %g], want %g [%g, %g]", tc.bias, i, pr.RULPred, pr.Lower, pr.Upper, tc.want, tc.lo, tc.hi)
			}
		}
	}
}
