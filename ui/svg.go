package ui

import "github.com/modax/modax-ml/internal/svgchart"

// The charts are internal/svgchart's (shared with evaluate's report.html).
type (
	LineChart = svgchart.LineChart
	Series    = svgchart.Series
	Mark      = svgchart.Mark
	Bar       = svgchart.Bar
)

var (
	BarChart  = svgchart.BarChart
	RangeBar  = svgchart.RangeBar
	Sparkline = svgchart.Sparkline
)

func finite(f float64) bool { return svgchart.Finite(f) }
