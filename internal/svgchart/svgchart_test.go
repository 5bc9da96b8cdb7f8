package svgchart

import (
	"math"
	"strings"
	"testing"
)

func TestPointsGapsNote(t *testing.T) {
	nan := math.NaN()
	c := LineChart{ID: "p", Series: []Series{
		{Name: "dots", X: []float64{1, 2, 3}, Y: []float64{1, 2, nan}, Points: true},
		{Name: "lives", X: []float64{1, 2, 3, 4, 5}, Y: []float64{5, 4, nan, 3, 2}, Gaps: true},
		{Name: "joined", X: []float64{1, 2, 3}, Y: []float64{1, nan, 3}},
	}}
	out := string(c.SVG())
	if n := strings.Count(out, `class="dot"`); n != 2 {
		t.Errorf("%d dots, want 2 (the NaN one skipped)", n)
	}
	if n := strings.Count(out, `<title>lives</title></polyline>`); n != 2 {
		t.Errorf("gapped series drew %d polylines, want 2", n)
	}
	if n := strings.Count(out, `<title>joined</title></polyline>`); n != 1 {
		t.Errorf("joined series drew %d polylines, want 1", n)
	}
	if strings.Contains(out, "NaN") {
		t.Error("NaN in svg")
	}
	bar := string(BarChart("b", "t", "h", []Bar{{Label: "[0,10)", Value: 3, Note: ", n 5 & more"}}, func(v float64) string { return "3.0" }))
	if !strings.Contains(bar, "3.0 h, n 5 &amp; more") {
		t.Errorf("bar note: %s", bar)
	}
}
