package ui

import (
	"html/template"

	"github.com/modax/modax-ml/internal/svgchart"
)

// The charts are internal/svgchart's (shared with evaluate's report.html);
// these names keep the ui's code as it was.

// LineChart is svgchart.LineChart.
type LineChart = svgchart.LineChart

// Series is svgchart.Series.
type Series = svgchart.Series

// Mark is svgchart.Mark.
type Mark = svgchart.Mark

// Bar is svgchart.Bar.
type Bar = svgchart.Bar

// BarChart is svgchart.BarChart.
func BarChart(id, title, unit string, bars []Bar, format func(float64) string) template.HTML {
	return svgchart.BarChart(id, title, unit, bars, format)
}

// RangeBar is svgchart.RangeBar.
func RangeBar(v, lo, hi, top float64, class string) template.HTML {
	return svgchart.RangeBar(v, lo, hi, top, class)
}

// Sparkline is svgchart.Sparkline.
func Sparkline(ys []float64) template.HTML { return svgchart.Sparkline(ys) }

func finite(f float64) bool { return svgchart.Finite(f) }
