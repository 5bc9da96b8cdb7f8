package model

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modax/modax-ml/internal/dataset"
)

// savedCheckpoint saves testCheckpoint as dir/model.safetensors and returns
// it with its directory, path and bytes.
func savedCheckpoint(t *testing.T) (ck *Checkpoint, dir, path string, b []byte) {
	t.Helper()
	ck = testCheckpoint(t)
	dir = t.TempDir()
	path = filepath.Join(dir, "model.safetensors")
	if err := Save(path, ck); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return ck, dir, path, b
}

func testCheckpoint(t *testing.T) *Checkpoint {
	t.Helper()
	arch := Arch{Type: TypeLSTM, InputSize: 3, Hidden: 4, Layers: 2, FC: 5, Dropout: 0.2}
	p, err := NewParams(arch)
	if err != nil {
		t.Fatal(err)
	}
	p.Init(7)
	feats := []string{"a", "b", "c"}
	return &Checkpoint{Params: p, Info: Info{Arch: arch, Features: feats, Window: 10, Horizon: 100,
		Thresholds: dataset.DefaultThresholds, Scaler: dataset.Scaler{Kind: "zscore", Features: feats, Offset: []float64{0, 1, 2}, Scale: []float64{1, 1, 1}},
		History: []Epoch{{Epoch: 1, TrainLoss: 0.5}}}}
}

func TestCheckpointRoundTrip(t *testing.T) {
	ck := testCheckpoint(t)
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := Save(path, ck); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Info.Window != 10 || got.Info.History[0].TrainLoss != 0.5 || got.Info.Scaler.Offset[2] != 2 {
		t.Fatalf("info not round-tripped: %+v", got.Info)
	}
	for i, tt := range ck.Params.Tensors {
		g := got.Params.Tensors[i]
		if g.Name != tt.Name || len(g.Data) != len(tt.Data) {
			t.Fatalf("tensor %d: %s/%d, want %s/%d", i, g.Name, len(g.Data), tt.Name, len(tt.Data))
		}
		for j := range tt.Data {
			if g.Data[j] != tt.Data[j] {
				t.Fatalf("%s[%d] = %v, want %v", tt.Name, j, g.Data[j], tt.Data[j])
			}
		}
	}
	// Init follows PyTorch's bounds.
	for _, v := range ck.Params.Get("lstm.weight_hh_l1").Data {
		if v < -0.5 || v > 0.5 {
			t.Fatalf("lstm weight %v outside ±1/√H", v)
		}
	}
}

func TestCheckpointCorrupt(t *testing.T) {
	ck, dir, _, b := savedCheckpoint(t)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"truncated", b[:len(b)-10], "outside"},
		{"tiny", b[:5], "truncated"},
		{"header", append([]byte{255, 255, 255, 255, 0, 0, 0, 0}, b[8:]...), "header length"},
		{"trailing", append(append([]byte{}, b...), 1, 2, 3, 4), "trailing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name+".safetensors")
			if err := os.WriteFile(p, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("err = %v, want %q naming the file", err, tc.want)
			}
		})
	}
	// A checkpoint of another architecture than its metadata says.
	other := testCheckpoint(t)
	other.Info.Arch.Hidden = 8
	other.Params, _ = NewParams(other.Info.Arch)
	ts := other.Params.Tensors
	meta, _ := ck.meta()
	p := filepath.Join(dir, "arch.safetensors")
	if err := WriteSafetensors(p, ts, meta); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Fatalf("err = %v, want shape mismatch", err)
	}
}
