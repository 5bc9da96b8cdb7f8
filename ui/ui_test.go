package ui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modax/modax-ml/features"
	"github.com/modax/modax-ml/internal/dataset"
)

// writeFile writes content to dir/name, creating directories.
func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

const runA = `{"schema": "modax.run/v1", "run_id": "a", "status": "finished",
 "start_time": "2025-03-01T12:00:00Z", "end_time": "2025-03-01T12:02:05Z", "tool_version": "v1", "seed": 1,
 "params": {"train.epochs": "20", "train.lr": "0.001"},
 "stages": [{"name": "train", "status": "ran", "start_time": "2025-03-01T12:00:00Z", "duration_s": 100,
   "inputs": [{"path": "windows.parquet", "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "size": 1}],
   "outputs": [{"path": "model.safetensors", "sha256": "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", "size": 2}]}],
 "metrics": [{"name": "val_rmse", "step": 1, "value": 20, "timestamp": "2025-03-01T12:00:30Z"},
             {"name": "val_rmse", "step": 2, "value": 9.5, "timestamp": "2025-03-01T12:01:00Z"},
             {"name": "val_rmse", "step": 3, "value": 11, "timestamp": "2025-03-01T12:01:30Z"}],
 "final_metrics": {"test_rmse": 9.5, "test_mae": 7.25},
 "artifacts": [{"name": "report.html", "path": "report.html", "sha256": "00", "size": 10}]}`

const runB = `{"schema": "modax.run/v1", "run_id": "b", "status": "failed", "error": "train: loss is NaN",
 "start_time": "2025-03-02T12:00:00Z", "end_time": "2025-03-02T12:00:30Z", "tool_version": "v1", "seed": 2,
 "params": {"train.epochs": "3", "train.lr": "0.001"},
 "final_metrics": {"test_rmse": 14.5}}`

// metricsA has the permutation importance, its features out of order (the
// page sorts them), one std undefined.
const metricsA = `{"schema": "modax.metrics/v1", "model": {"path": "model.safetensors", "sha256": "2c26"}, "splits": {},
 "feature_importance": {"split": "test", "windows": 40, "windows_available": 90, "last_window_only": false, "repeats": 3, "seed": 1,
   "baseline_rmse": 8.5, "seconds": 0.2, "features": [
   {"feature": "noise_mean", "rmse_increase_mean": -0.04, "rmse_increase_std": null, "rmse_increase": [-0.04]},
   {"feature": "wear_mean", "rmse_increase_mean": 6.25, "rmse_increase_std": 0.5, "rmse_increase": [6, 6, 6.75]},
   {"feature": "temp_mean", "rmse_increase_mean": 1.5, "rmse_increase_std": 0.25, "rmse_increase": [1.25, 1.5, 1.75]}]}}`

// writeHealthWindows writes a windows file whose modax.health_indicators
// rates two features, the worse one first (the page sorts by score).
func writeHealthWindows(t *testing.T, loc string) {
	t.Helper()
	p := func(v float64) *float64 { return &v }
	h := features.HealthIndicators{Split: "train", Source: "window mean", Lives: 7, MaxPoints: 512, Features: []features.FeatureQuality{
		{Feature: "noise_mean", Monotonicity: p(0.05), Trendability: p(0.01), Prognosability: nil, Score: p(0.03)},
		{Feature: "wear_mean", Monotonicity: p(1), Trendability: p(0.9125), Prognosability: p(0.875), Score: p(0.929167)},
	}}
	m := dataset.Meta{}
	m.MustSet(dataset.MetaHealthIndicators, h)
	wm := dataset.WindowsMeta{Window: 2, Stride: 1, Features: []string{"wear_mean", "noise_mean"}, Horizon: 100, Thresholds: dataset.DefaultThresholds,
		Scaler: dataset.Scaler{Kind: "zscore", Features: []string{"wear_mean", "noise_mean"}, Offset: []float64{0, 0}, Scale: []float64{1, 1}}}
	w, err := dataset.CreateWindows(loc, wm, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(&dataset.Window{Tenant: "t", Device: "d", End: 1, RUL: 5, RULRaw: 5, Health: dataset.Critical, Split: dataset.SplitTrain, X: make([]float32, 4)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

func newTestServer(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "runs/a/run.json", runA)
	writeFile(t, dir, "runs/a/report.html", "<html><body><h1>report of a</h1></body></html>")
	writeFile(t, dir, "runs/a/plots/x.txt", "plot")
	writeFile(t, dir, "runs/a/metrics.json", metricsA)
	writeHealthWindows(t, filepath.Join(dir, "runs/a/windows.parquet"))
	writeFile(t, dir, "runs/b/run.json", runB)
	writeFile(t, dir, "secret.txt", "TOP SECRET")
	if err := os.Symlink(filepath.Join(dir, "secret.txt"), filepath.Join(dir, "runs/a/link.txt")); err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{RunsDir: filepath.Join(dir, "runs"), ModelsDir: filepath.Join(dir, "models"), Dir: dir,
		Now: func() time.Time { return time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts, dir
}

func get(t *testing.T, c *http.Client, method, url string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func TestPages(t *testing.T) {
	ts, _ := newTestServer(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		method, path string
		status       int
		want, not    []string
	}{
		{"GET", "/", http.StatusFound, nil, nil},
		{"GET", "/runs", 200, []string{`href="/runs/a">a</a>`, `href="/runs/b">b</a>`, "train.epochs", "9.5", "14.5"}, nil},
		{"GET", "/runs?filter=metric.test_rmse%3C12", 200, []string{`href="/runs/a">a</a>`}, []string{`href="/runs/b">b</a>`}},
		{"GET", "/runs?sort=-metric.test_rmse", 200, []string{"▼"}, nil},
		{"GET", "/runs?filter=metric.test_rmes%3C12", 400, []string{`did you mean &#34;metric.test_rmse&#34;`}, nil},
		{"GET", "/runs?filter=status%7E1", 400, []string{"want COLUMN OP VALUE"}, nil},
		{"GET", "/compare?run=a&run=b", 200, []string{`<tr class="differs"><th>train.epochs</th><td>20</td><td>3</td>`, "(&#43;5)", "best epoch 2", `id="curves"`},
			[]string{"<th>train.lr</th>"}},
		{"GET", "/compare?run=a&run=b&all=1", 200, []string{"<tr><th>train.lr</th>"}, nil},
		{"GET", "/compare?run=a", 400, []string{"select two or more runs"}, nil},
		{"GET", "/compare?run=a&run=zzz", 404, []string{`no run &#34;zzz&#34;`}, nil},
		{"GET", "/compare?run=a&run=..", 404, nil, nil},
		{"GET", "/runs/a", 200, []string{`id="report" href="/runs/a/files/report.html"`, `id="stage-timings"`, "windows.parquet", "2c26b46b68ff", "no validation.json"}, nil},
		// Which sensors matter: importance sorted with its chart, health
		// indicators sorted by score; a run without them says so.
		{"GET", "/runs/a", 200, []string{`id="sensors"`, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="importance-chart"`, "baseline 8.5 h", "40 of 90, evenly spread",
			`(?s)id="importance".*<td>wear_mean</td><td class="n">6.25</td><td class="n">0.50</td>.*<td>temp_mean</td>.*<td>noise_mean</td><td class="n">-0.04</td><td class="n">–</td>`,
			`(?s)id="health-indicators".*<td>wear_mean</td><td class="n">1.000</td><td class="n">0.912</td><td class="n">0.875</td><td class="n">0.929</td>.*<td>noise_mean</td><td class="n">0.050</td><td class="n">0.010</td><td class="n">–</td>`,
			"7 run-to-failure lives", "<code>windows.parquet</code>"},
			[]string{"No permutation importance", "No health-indicator quality"}},
		{"GET", "/runs/b", 200, []string{"train: loss is NaN", `id="no-importance"`, `id="no-health-indicators"`}, []string{`id="importance-chart"`}},
		{"GET", "/runs/zzz", 404, nil, nil},
		{"GET", "/runs/a/files/report.html", 200, []string{"report of a"}, nil},
		{"GET", "/runs/a/files/plots/x.txt", 200, []string{"plot"}, nil},
		{"GET", "/runs/a/files/run.json", 200, []string{`"run_id": "a"`}, nil},
		// Path traversal: encoded, through a symlink, absolute, a directory.
		{"GET", "/runs/a/files/..%2f..%2fsecret.txt", 404, nil, []string{"TOP SECRET"}},
		{"GET", "/runs/a/files/plots%2f..%2f..%2f..%2fsecret.txt", 404, nil, []string{"TOP SECRET"}},
		{"GET", "/runs/a/files/link.txt", 404, nil, []string{"TOP SECRET"}},
		{"GET", "/runs/a/files/%2fetc%2fpasswd", 404, nil, []string{"root:"}},
		{"GET", "/runs/a/files/plots", 404, nil, nil},
		{"GET", "/runs/..%2f..%2f/files/secret.txt", 404, nil, []string{"TOP SECRET"}},
		{"GET", "/runs/a/files/../../secret.txt", http.StatusTemporaryRedirect, nil, []string{"TOP SECRET"}}, // the mux cleans the path (to a page that is not there)
		{"GET", "/fleet", 200, []string{"No scores yet", "No monitor reports"}, nil},
		{"GET", "/fleet/default/dev-1", 404, []string{"no scores or predictions for device dev-1"}, nil},
		{"GET", "/models", 200, []string{"has no deployed models"}, nil},
		{"GET", "/static/style.css", 200, []string{"table.data"}, nil},
		{"GET", "/static/nope.css", 404, nil, nil},
		{"GET", "/nope", 404, []string{"no page /nope"}, nil},
		{"POST", "/runs", http.StatusMethodNotAllowed, []string{"read-only"}, nil},
		{"DELETE", "/runs/a/files/report.html", http.StatusMethodNotAllowed, nil, nil},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			code, body, h := get(t, noRedirect, tc.method, ts.URL+tc.path)
			if code != tc.status {
				t.Fatalf("status %d, want %d; body:\n%s", code, tc.status, body)
			}
			for _, w := range tc.want {
				if strings.HasPrefix(w, "(?s)") { // a regular expression (an order across rows)
					if !regexp.MustCompile(w).MatchString(body) {
						t.Errorf("body does not match %q:\n%s", w, body)
					}
				} else if !strings.Contains(body, w) {
					t.Errorf("body lacks %q:\n%s", w, body)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(body, n) {
					t.Errorf("body has %q", n)
				}
			}
			if h.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("no nosniff header")
			}
			if strings.HasPrefix(tc.path, "/runs/a/files/") && code == 200 && !strings.Contains(h.Get("Content-Security-Policy"), "sandbox") {
				t.Errorf("a run's file is served without a sandbox CSP: %q", h.Get("Content-Security-Policy"))
			}
		})
	}
}

func TestSVG(t *testing.T) {
	c := LineChart{ID: "x", Title: "t <b>", Series: []Series{{Name: "s&p", X: []float64{1, 2, 3}, Y: []float64{3, 1, 2}, Marks: []Mark{{Index: 1, Label: "best"}}}}}
	out := string(c.SVG())
	for _, w := range []string{`id="x"`, "t &lt;b&gt;", "s&amp;p", `class="mark"`, "best"} {
		if !strings.Contains(out, w) {
			t.Errorf("svg lacks %q: %s", w, out)
		}
	}
	if empty := string(LineChart{ID: "e"}.SVG()); !strings.Contains(empty, "no data") {
		t.Errorf("empty chart: %s", empty)
	}
	// NaN and Inf points are skipped, not drawn at NaN coordinates.
	nan := string(LineChart{Series: []Series{{X: []float64{1, 2}, Y: []float64{1, nan()}}}}.SVG())
	if strings.Contains(nan, "NaN") {
		t.Errorf("NaN in svg: %s", nan)
	}
}

func nan() float64 { var z float64; return z / z }
