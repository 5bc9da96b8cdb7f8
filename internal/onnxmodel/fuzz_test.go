package onnxmodel

import (
	"encoding/json"
	"runtime/metrics"
	"testing"

	"github.com/modax/modax-ml/internal/model"
)

// FuzzParse feeds corrupted model.onnx files (LSTM and ridge exports, both
// opsets predict and deploy accept) to what reads them: Parse, the metadata,
// and the gonnx runner on one window of the size the metadata claims. No input
// may panic or allocate absurdly; errors are the expected outcome.
func FuzzParse(f *testing.F) {
	for _, tc := range []struct {
		arch  model.Arch
		opset int
	}{
		{model.Arch{Type: model.TypeLSTM, InputSize: 2, Hidden: 3, Layers: 2, FC: 4}, 13},
		{model.Arch{Type: model.TypeLSTM, InputSize: 2, Hidden: 2, Layers: 1, FC: 2}, 11},
		{model.Arch{Type: model.TypeRidge, InputSize: 3}, 13},
	} {
		ck := testCheckpoint(f, tc.arch, 3, 1)
		mp, err := Build(ck, BuildOptions{Opset: tc.opset})
		if err != nil {
			f.Fatal(err)
		}
		b, err := Marshal(mp)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		before := heapAllocs()
		defer func() {
			if n := heapAllocs() - before; n > 256<<20 {
				t.Fatalf("a %d-byte model allocated %d MiB", len(b), n>>20)
			}
		}()
		mp, err := Parse(b)
		if err != nil {
			return
		}
		props := Props(mp)
		_ = Opset(mp)
		var feats []string
		var window int
		_ = json.Unmarshal([]byte(props[MetaFeatures]), &feats)
		_ = json.Unmarshal([]byte(props[MetaWindow]), &window)
		r, err := NewRunner(mp)
		if err != nil {
			return
		}
		window, F := min(max(window, 1), 8), min(max(len(feats), 1), 8)
		shape := []int{1, window, F}
		if props[MetaModelType] == model.TypeRidge {
			shape = []int{1, F}
		}
		n := 1
		for _, d := range shape {
			n *= d
		}
		_, _ = r.Run(make([]float32, n), shape...)
	})
}

func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
