package autodiff

import (
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestGorgoniaSliceHashCollision documents why the graph takes the LSTM gate
// blocks as z viewed [4, H, B] sliced at j instead of row ranges of z [4H, B]:
// gorgonia v0.9.18's sliceOp.WriteHash writes the slice bounds as single
// bytes, and an ExprGraph merges nodes with equal hashes and children, so
// z[256:384] becomes the node z[0:128] (and z[384:512] becomes z[128:256]).
// For the design's H = 128 that silently computed the g and o gates from the
// i and f blocks. If this test fails after a gorgonia upgrade, the bug is
// fixed upstream.
func TestGorgoniaSliceHashCollision(t *testing.T) {
	const H, B = 128, 2
	g := G.NewGraph()
	z := G.NewMatrix(g, tensor.Float32, G.WithShape(4*H, B), G.WithName("z"))
	i := G.Must(G.Slice(z, G.S(0, H)))
	gate := G.Must(G.Slice(z, G.S(2*H, 3*H)))
	if i != gate {
		t.Fatalf("z[0:%d] and z[%d:%d] are distinct nodes: has gorgonia's slice hash been fixed?", H, 2*H, 3*H)
	}
	t.Logf("gorgonia merged z[%d:%d] into z[0:%d] (%v)", 2*H, 3*H, H, gate)

	// The workaround: slices of a [4, H, B] view at 0..3 stay distinct.
	z3 := G.Must(G.Reshape(z, tensor.Shape{4, H, B}))
	seen := map[*G.Node]int{}
	for j := range 4 {
		s := G.Must(G.Slice(z3, G.S(j)))
		if k, ok := seen[s]; ok {
			t.Fatalf("gate %d merged with gate %d", j, k)
		}
		seen[s] = j
	}
}
