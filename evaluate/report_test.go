package evaluate

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/model"
)

// reportFixture evaluates a fleet whose predictions carry a 90 % interval
// (pred ± 8 h) with a checkpoint whose history has RMSE in hours.
func reportFixture(t *testing.T) (Options, *Result) {
	t.Helper()
	ps := fleet(7, 6, 40, dataset.SplitTest, dataset.SplitVal) // 3 worst and 3 best devices
	for i := range ps {
		ps[i].Lower, ps[i].Upper, ps[i].Level = max(0, ps[i].RULPred-8), ps[i].RULPred+8, 0.9
	}
	history := []model.Epoch{
		{Epoch: 1, TrainLoss: 0.09, ValLoss: 0.1, TrainRMSE: 30, ValRMSE: 31.6},
		{Epoch: 2, TrainLoss: 0.01, ValLoss: 0.02, TrainRMSE: 10, ValRMSE: 14.1},
		{Epoch: 3, TrainLoss: 0.008, ValLoss: 0.03, TrainRMSE: 8.9, ValRMSE: 17.3},
	}
	f := writeFixture(t, ps, history)
	o := f.opts()
	o.Model = f.model
	res, err := Run(context.Background(), testEnv(), o)
	if err != nil {
		t.Fatal(err)
	}
	return o, res
}

// inOrder fails unless every marker is in s, each after the one before.
func inOrder(t *testing.T, what, s string, markers ...string) {
	t.Helper()
	at := -1
	for _, m := range markers {
		i := strings.Index(s, m)
		if i < 0 {
			t.Errorf("%s lacks %q", what, m)
			continue
		}
		if i < at {
			t.Errorf("%s: %q comes before the marker preceding it", what, m)
		}
		at = i
	}
}

func TestReportStructure(t *testing.T) {
	o, res := reportFixture(t)
	b, err := os.ReadFile(o.HTML)
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	// Headline numbers, then figures, then tables, then the folded detail.
	inOrder(t, "report.html", html, `<section id="headline">`, `id="card-mae"`, `<table id="summary">`,
		`<section id="figures">`, `<section id="tables">`, `<h3 id="buckets">`, `<h3 id="alerts">`, `<h3 id="intervals">`,
		`<h3 id="devices">`, `<details id="health-classes">`, `<details id="raw-rul">`, `<details id="more-plots">`, `<h2 id="howto">`)
	// The figures in their order, as inline SVG charts.
	inOrder(t, "report.html figures", html, `class="chart" id="fig-pred-vs-true"`, `class="chart" id="fig-rul-buckets"`,
		`class="chart" id="fig-traj-worst-1"`, `class="chart" id="fig-traj-worst-3"`, `class="chart" id="fig-traj-best-1"`,
		`class="chart" id="fig-calibration"`, `class="chart" id="fig-training"`, `<section id="tables">`)
	if n := strings.Count(html, "<svg "); n != 10 {
		t.Errorf("%d inline SVGs, want 10 (pred vs true, buckets, 3 worst, 3 best, calibration, training)", n)
	}
	fig := func(id string) string {
		i := strings.Index(html, `id="`+id+`"`)
		j := strings.Index(html[i:], "</svg>")
		return html[i : i+j]
	}
	// One dot per test window; five bucket bars ([0,10) … =100); a band in
	// every trajectory; the best epoch (2, lowest validation loss) marked.
	if n := strings.Count(fig("fig-pred-vs-true"), `class="dot"`); n != 240 {
		t.Errorf("pred vs true has %d dots, want 240", n)
	}
	bk := fig("fig-rul-buckets")
	if n := strings.Count(bk, "<rect "); n != 5 || !strings.Contains(bk, "true RUL =100") || !strings.Contains(bk, "true RUL [0,10)") {
		t.Errorf("bucket chart: %d bars: %s", n, bk)
	}
	for _, id := range []string{"fig-traj-worst-1", "fig-traj-best-3"} {
		if !strings.Contains(fig(id), `class="band"`) || !strings.Contains(fig(id), "predicted (band: interval)") {
			t.Errorf("%s has no interval band", id)
		}
	}
	if tr := fig("fig-training"); !strings.Contains(tr, `class="mark"`) || !strings.Contains(tr, "best epoch 2: 14.1 h") || !strings.Contains(tr, "RMSE (h)") {
		t.Errorf("training figure: %s", tr)
	}
	// The detail is folded: the health classes and the raw-RUL table, with
	// the sentence why it is not comparable.
	det := html[strings.Index(html, `<details id="health-classes">`):]
	if !strings.Contains(det, "<h3>Health classes: test</h3>") || strings.Count(html, "<h3>Health classes:") != 2 {
		t.Error("the health classes are not inside <details>")
	}
	raw := html[strings.Index(html, `<details id="raw-rul">`):]
	raw = raw[:strings.Index(raw, "</details>")]
	if !strings.Contains(raw, "these numbers measure the cap, not the model") || !strings.Contains(raw, "<th>n_raw</th>") {
		t.Errorf("raw-RUL details: %s", raw)
	}
	// The replaced PNGs are not in the report; the others are, folded.
	if n := strings.Count(html, `src="data:image/png;base64,`); n != 3 {
		t.Errorf("%d inline PNGs, want 3 (error histogram, error vs true, confusion)", n)
	}

	// report.md: the same order, the figures linked as SVG files.
	md, _ := os.ReadFile(o.Report)
	inOrder(t, "report.md", string(md), "## Headline (test split)", "- **MAE ", "| split | n | devices |", "## Figures",
		"![Predicted vs true RUL](plots/fig-pred-vs-true.svg)", "![Error by true-RUL bucket](plots/fig-rul-buckets.svg)",
		"(plots/fig-traj-worst-1.svg)", "(plots/fig-traj-best-1.svg)", "(plots/fig-calibration.svg)", "(plots/fig-training.svg)",
		"\n## Error by true-RUL bucket", "\n## Critical alerts", "\n## Prediction intervals", "\n## Devices", `<details id="health-classes">`,
		"### Health classes: test", `<details id="raw-rul">`, `<details id="more-plots">`, "## How to read")

	// The figure files are well-formed standalone SVG with the chart CSS.
	if len(res.Figures) != 10 {
		t.Errorf("figures = %v", res.Figures)
	}
	for _, p := range res.Figures {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("<style>svg.chart")) {
			t.Errorf("%s lacks its CSS", p)
		}
		d := xml.NewDecoder(bytes.NewReader(b))
		for {
			if _, err := d.Token(); err != nil {
				if !errors.Is(err, io.EOF) {
					t.Errorf("%s is not well-formed XML: %v", filepath.Base(p), err)
				}
				break
			}
		}
	}
}

// TestReportNoPlots: --no-plots leaves the figures out of both reports, and
// an uncapped model's headline still renders.
func TestReportNoPlots(t *testing.T) {
	f := writeFixture(t, fleet(2, 3, 10, dataset.SplitTest), nil)
	o := f.opts()
	o.NoPlots = true
	res, err := Run(context.Background(), testEnv(), o)
	if err != nil {
		t.Fatal(err)
	}
	html, _ := os.ReadFile(o.HTML)
	if strings.Contains(string(html), "<svg ") || strings.Contains(string(html), `<section id="figures">`) || len(res.Figures) != 0 {
		t.Error("figures despite --no-plots")
	}
	if !strings.Contains(string(html), `<section id="headline">`) {
		t.Error("no headline")
	}
}
