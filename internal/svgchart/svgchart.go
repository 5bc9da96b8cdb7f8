// Package svgchart renders small charts as SVG documents on the server: the
// pages that show them (modax-ml ui, evaluate's report.html) need no
// JavaScript and no charting library, they print and save as they are, and
// a test can read a chart's numbers in the DOM. The look comes from CSS
// classes (title, plot, grid, tick, axis, legend, band, mark, marklabel,
// dot, empty): CSS holds the rules for pages that do not bring their own.
package svgchart

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
	"time"
)

// CSS styles the charts (the ui's stylesheet has the same rules with its
// theme's colours).
const CSS = `svg.chart{max-width:100%;height:auto;background:#fff}
svg.chart .title{font-weight:600;font-size:13px;fill:#222}
svg.chart .plot{fill:#fbfcfe;stroke:#d0d7de}
svg.chart .grid{stroke:#e8ecf2}
svg.chart .tick,svg.chart .legend{font-size:11px;fill:#57606a}
svg.chart .axis{font-size:12px;fill:#222}
svg.chart .band{opacity:.15}
svg.chart .marklabel{font-size:11px;fill:#222}
svg.chart .empty{font-size:13px;fill:#57606a}
`

// palette holds the series colours (colour-blind safe, Okabe–Ito).
var palette = []string{"#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442"}

// Series is one line of a chart. Lo and Hi, when set, draw a band around
// it (an interval); Marks are indices of points drawn as labelled dots.
type Series struct {
	Name   string
	X, Y   []float64
	Lo, Hi []float64
	Marks  []Mark
	Dashed bool
	// Points draws the series as dots without a line (a scatter).
	Points bool
	// Gaps breaks the line at a non-finite y (one line per stretch of
	// finite points, e.g. one per device life); without it the line joins
	// across them.
	Gaps bool
	// Color is an index into the palette (series with one colour per run).
	Color int
}

// Mark labels one point of a series.
type Mark struct {
	Index int
	Label string
}

// LineChart is a chart of series over a shared x axis.
type LineChart struct {
	Title, XLabel, YLabel string
	Series                []Series
	// XTime formats x values as Unix seconds (dates on the axis).
	XTime bool
	// YZero starts the y axis at zero.
	YZero bool
	// XInt keeps only whole-number ticks on the x axis (epochs).
	XInt bool
	// ID is the element id of the svg (tests and links find it).
	ID string
}

const (
	chartW, chartH                 = 760, 320
	padL, padR, padT, padB         = 64, 16, 28, 44
	plotW, plotH                   = chartW - padL - padR, chartH - padT - padB
	legendRow                      = 16
	markRadius             float64 = 4.5
)

// SVG renders the chart.
func (c LineChart) SVG() template.HTML {
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for i, x := range s.X {
			for _, y := range []float64{s.Y[i], at(s.Lo, i), at(s.Hi, i)} {
				if Finite(y) && Finite(x) {
					xmin, xmax = math.Min(xmin, x), math.Max(xmax, x)
					ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
				}
			}
		}
	}
	var b strings.Builder
	legendH := legendRow * ((len(c.Series) + 2) / 3)
	h := chartH + legendH
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="%s" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		esc(c.ID), chartW, h, chartW, h, esc(c.Title))
	fmt.Fprintf(&b, `<text x="%d" y="16" class="title">%s</text>`, padL, esc(c.Title))
	if math.IsInf(xmin, 1) {
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="empty">no data</text></svg>`, padL+plotW/2, padT+plotH/2)
		return template.HTML(b.String()) // every text is escaped above
	}
	if c.YZero && ymin > 0 {
		ymin = 0
	}
	if xmax == xmin {
		xmin, xmax = xmin-1, xmax+1
	}
	if ymax == ymin {
		ymin, ymax = ymin-1, ymax+1
	}
	yt := ticks(ymin, ymax, 5)
	ymin, ymax = math.Min(ymin, yt[0]), math.Max(ymax, yt[len(yt)-1])
	px := func(x float64) float64 { return padL + (x-xmin)/(xmax-xmin)*plotW }
	py := func(y float64) float64 { return padT + plotH - (y-ymin)/(ymax-ymin)*plotH }

	// Axes and grid.
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" class="plot"/>`, padL, padT, plotW, plotH)
	for _, t := range yt {
		y := py(t)
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/><text x="%d" y="%.1f" class="tick" text-anchor="end">%s</text>`,
			padL, padL+plotW, y, y, padL-6, y+4, esc(fmtTick(t)))
	}
	xt, xstep := ticks(xmin, xmax, 8), 0.0
	if c.XTime {
		xt, xstep = timeTicks(xmin, xmax, 6)
	}
	for _, t := range xt {
		if t < xmin-1e-9 || t > xmax+1e-9 || c.XInt && t != math.Trunc(t) {
			continue
		}
		x := px(t)
		label := fmtTick(t)
		if c.XTime {
			label = fmtTimeTick(t, xstep)
		}
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" class="grid"/><text x="%.1f" y="%d" class="tick" text-anchor="middle">%s</text>`,
			x, x, padT, padT+plotH, x, padT+plotH+16, esc(label))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="axis" text-anchor="middle">%s</text>`, padL+plotW/2, padT+plotH+36, esc(c.XLabel))
	fmt.Fprintf(&b, `<text x="14" y="%d" class="axis" text-anchor="middle" transform="rotate(-90 14 %d)">%s</text>`, padT+plotH/2, padT+plotH/2, esc(c.YLabel))

	for si, s := range c.Series {
		col := palette[s.Color%len(palette)]
		if len(s.Lo) == len(s.X) && len(s.Hi) == len(s.X) {
			var up, down []string
			for i := range s.X {
				if Finite(s.Lo[i]) && Finite(s.Hi[i]) {
					up = append(up, fmt.Sprintf("%.1f,%.1f", px(s.X[i]), py(s.Hi[i])))
					down = append([]string{fmt.Sprintf("%.1f,%.1f", px(s.X[i]), py(s.Lo[i]))}, down...)
				}
			}
			if len(up) > 0 {
				fmt.Fprintf(&b, `<polygon points="%s" fill="%s" class="band"/>`, strings.Join(append(up, down...), " "), col)
			}
		}
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		if s.Points {
			fmt.Fprintf(&b, `<g class="dots" fill="%s"><title>%s</title>`, col, esc(s.Name))
			for i := range s.X {
				if Finite(s.X[i]) && Finite(s.Y[i]) {
					fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" class="dot"/>`, px(s.X[i]), py(s.Y[i]))
				}
			}
			b.WriteString(`</g>`)
		} else {
			var runs [][]string
			var pts []string
			for i := range s.X {
				if Finite(s.X[i]) && Finite(s.Y[i]) {
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(s.X[i]), py(s.Y[i])))
				} else if s.Gaps && len(pts) > 0 {
					runs, pts = append(runs, pts), nil
				}
			}
			if len(pts) > 0 || len(runs) == 0 {
				runs = append(runs, pts)
			}
			for _, pts := range runs {
				if len(pts) == 1 {
					fmt.Fprintf(&b, `<circle cx="%s" r="3" fill="%s"/>`, strings.Replace(pts[0], ",", `" cy="`, 1), col)
				}
				fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s class="line"><title>%s</title></polyline>`,
					strings.Join(pts, " "), col, dash, esc(s.Name))
			}
		}
		for _, m := range s.Marks {
			if m.Index < 0 || m.Index >= len(s.X) || !Finite(s.Y[m.Index]) {
				continue
			}
			x, y := px(s.X[m.Index]), py(s.Y[m.Index])
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="%.1f" fill="white" stroke="%s" stroke-width="2" class="mark"><title>%s</title></circle>`, x, y, markRadius, col, esc(m.Label))
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="marklabel" text-anchor="middle">%s</text>`, x, y-8, esc(m.Label))
		}
		lx, ly := padL+(si%3)*(plotW/3), chartH+(si/3)*legendRow
		if s.Points {
			fmt.Fprintf(&b, `<circle cx="%d" cy="%d" r="3" fill="%s"/><text x="%d" y="%d" class="legend">%s</text>`,
				lx+11, ly, col, lx+28, ly+4, esc(s.Name))
		} else {
			fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"%s/><text x="%d" y="%d" class="legend">%s</text>`,
				lx, lx+22, ly, ly, col, dash, lx+28, ly+4, esc(s.Name))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every text is escaped above
}

// Bar is one bar of a bar chart.
type Bar struct {
	Label string
	Value float64
	Color int
	// Note follows the value and unit (e.g. more numbers of the row).
	Note string
}

// BarChart renders horizontal bars labelled with their value and unit.
func BarChart(id, title, unit string, bars []Bar, format func(float64) string) template.HTML {
	const rowH, labelW = 22, 150
	// Room right of the longest bar for the value, unit and note (about
	// 6.5 px per character of the 11 px tick font).
	valueW := 90
	for _, br := range bars {
		valueW = max(valueW, min(chartW/2, 20+int(6.5*float64(len([]rune(format(br.Value)+" "+unit+br.Note))))))
	}
	var b strings.Builder
	h := padT + rowH*len(bars) + 8
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="%s" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		esc(id), chartW, h, chartW, h, esc(title))
	fmt.Fprintf(&b, `<text x="4" y="16" class="title">%s</text>`, esc(title))
	top := 0.0
	for _, br := range bars {
		if Finite(br.Value) {
			top = math.Max(top, br.Value)
		}
	}
	for i, br := range bars {
		y := padT + i*rowH
		w := 0.0
		if top > 0 && Finite(br.Value) && br.Value > 0 {
			w = math.Max(1, br.Value/top*float64(chartW-labelW-valueW-8))
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="tick" text-anchor="end">%s</text>`, labelW-6, y+14, esc(br.Label))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s</title></rect>`, labelW, y+3, w, rowH-6, palette[br.Color%len(palette)], esc(br.Label))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="tick">%s %s%s</text>`, float64(labelW)+w+6, y+14, esc(format(br.Value)), esc(unit), esc(br.Note))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every text is escaped above
}

// RangeBar is a small inline chart of one value with its interval on a
// 0..top scale: the fleet table's RUL column.
func RangeBar(v, lo, hi, top float64, class string) template.HTML {
	const w, h = 160, 14
	if !(top > 0) || !Finite(v) {
		return ""
	}
	x := func(f float64) float64 { return math.Max(0, math.Min(w, f/top*w)) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="rangebar" width="%d" height="%d" viewBox="0 0 %d %d">`, w, h, w, h)
	fmt.Fprintf(&b, `<rect x="0" y="5" width="%d" height="4" class="track"/>`, w)
	if Finite(lo) && Finite(hi) {
		fmt.Fprintf(&b, `<rect x="%.1f" y="3" width="%.1f" height="8" class="interval"/>`, x(lo), math.Max(1, x(hi)-x(lo)))
	}
	fmt.Fprintf(&b, `<circle cx="%.1f" cy="7" r="4" class="point %s"/></svg>`, x(v), esc(class))
	return template.HTML(b.String()) // only numbers and an escaped class
}

// Sparkline is a tiny line of the values (a trend).
func Sparkline(ys []float64) template.HTML {
	const w, h = 90, 20
	if len(ys) < 2 {
		return ""
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, y := range ys {
		if Finite(y) {
			lo, hi = math.Min(lo, y), math.Max(hi, y)
		}
	}
	if hi == lo {
		lo, hi = lo-1, hi+1
	}
	var pts []string
	for i, y := range ys {
		if Finite(y) {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", float64(i)/float64(len(ys)-1)*(w-4)+2, h-2-(y-lo)/(hi-lo)*(h-4)))
		}
	}
	return template.HTML(fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" class="spark" width="%d" height="%d" viewBox="0 0 %d %d"><polyline points="%s" fill="none" stroke="%s" stroke-width="1.5"/></svg>`, // numbers only
		w, h, w, h, strings.Join(pts, " "), palette[0]))
}

func at(s []float64, i int) float64 {
	if i < len(s) {
		return s[i]
	}
	return math.NaN()
}

// Finite reports whether f is neither NaN nor ±Inf.
func Finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func esc(s string) string { return html.EscapeString(s) }

// ticks returns about n round tick values covering [lo, hi].
func ticks(lo, hi float64, n int) []float64 {
	step := niceStep((hi - lo) / float64(n))
	start := math.Floor(lo/step) * step
	var out []float64
	for t := start; t <= hi+step*0.999; t += step {
		out = append(out, math.Round(t/step)*step)
		if len(out) > 4*n {
			break
		}
	}
	return out
}

func niceStep(raw float64) float64 {
	if raw <= 0 || !Finite(raw) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func fmtTick(t float64) string {
	if t == math.Trunc(t) && math.Abs(t) < 1e7 {
		return fmt.Sprintf("%.0f", t)
	}
	return fmt.Sprintf("%.3g", t)
}

// timeTicks places ticks at round hours or days between Unix seconds and
// returns them with their step.
func timeTicks(lo, hi float64, n int) ([]float64, float64) {
	span := hi - lo
	steps := []float64{60, 300, 900, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400, 14 * 86400, 30 * 86400, 91 * 86400, 365 * 86400}
	step := steps[len(steps)-1]
	for _, s := range steps {
		if span/s <= float64(n) {
			step = s
			break
		}
	}
	var out []float64
	for t := math.Ceil(lo/step) * step; t <= hi; t += step {
		out = append(out, t)
	}
	return out, step
}

func fmtTimeTick(t, step float64) string {
	tm := time.Unix(int64(t), 0).UTC()
	switch {
	case step < 86400:
		return tm.Format("01-02 15:04")
	case step < 30*86400:
		return tm.Format("2006-01-02")
	}
	return tm.Format("2006-01")
}
