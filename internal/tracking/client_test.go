package tracking

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/duration"
	"github.com/modax/modax-ml/internal/tracking/mlflowtest"
)

// testClient returns a client of srv whose backoff sleeps are recorded, not slept.
func testClient(t *testing.T, srv *mlflowtest.Server, env map[string]string, retries int) (*Client, *[]time.Duration) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.URI = srv.URL
	cfg.MaxRetries = retries
	cfg.Timeout = duration.Duration(5 * time.Second)
	res, err := cfg.Resolve(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(res, nil)
	var mu sync.Mutex
	var slept []time.Duration
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		slept = append(slept, d)
		mu.Unlock()
		return ctx.Err()
	}
	return c, &slept
}

// newRun creates an experiment and a run on srv through the client.
func newRun(t *testing.T, c *Client) *RunInfo {
	t.Helper()
	ctx := context.Background()
	exp, err := c.EnsureExperiment(ctx, "exp")
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.CreateRun(ctx, exp, "r", time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC), nil)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func batchRequests(srv *mlflowtest.Server) []mlflowtest.Request {
	var out []mlflowtest.Request
	for _, r := range srv.Requests() {
		if r.Path == "/api/2.0/mlflow/runs/log-batch" {
			out = append(out, r)
		}
	}
	return out
}

func metricsN(n int) []WireMetric {
	ms := make([]WireMetric, n)
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	for i := range ms {
		ms[i] = WireMetric{Key: "loss", Value: Float(1 / float64(i+1)), Timestamp: t0 + int64(i), Step: int64(i)}
	}
	return ms
}

func TestLogBatchSplitsAt1000Metrics(t *testing.T) {
	srv := mlflowtest.New()
	defer srv.Close()
	c, _ := testClient(t, srv, nil, 0)
	run := newRun(t, c)
	srv.ResetRequests()

	var counts []BatchCounts
	if err := c.LogBatch(context.Background(), run.RunID, metricsN(2500), nil, nil, func(b BatchCounts) { counts = append(counts, b) }); err != nil {
		t.Fatal(err)
	}
	reqs := batchRequests(srv)
	if len(reqs) != 3 {
		t.Fatalf("2500 metrics went in %d requests, want 3", len(reqs))
	}
	for i, want := range []int{1000, 1000, 500} {
		if reqs[i].Status != 200 || reqs[i].Metrics != want || counts[i].Metrics != want {
			t.Errorf("request %d: status %d, %d metrics (callback %d), want %d", i, reqs[i].Status, reqs[i].Metrics, counts[i].Metrics, want)
		}
	}
	pts := srv.Run(run.RunID).Metrics["loss"]
	if len(pts) != 2500 {
		t.Fatalf("server holds %d points, want 2500", len(pts))
	}
	for i, p := range pts {
		if p.Step != int64(i) || p.Value != 1/float64(i+1) {
			t.Fatalf("point %d = %+v: order or value lost", i, p)
		}
	}
}

func TestLogBatchParamsAndTagsChunks(t *testing.T) {
	srv := mlflowtest.New()
	defer srv.Close()
	c, _ := testClient(t, srv, nil, 0)
	run := newRun(t, c)
	srv.ResetRequests()

	var params, tags []KV
	for i := range 250 {
		params = append(params, KV{Key: fmt.Sprintf("p.%03d", i), Value: fmt.Sprint(i)})
	}
	for i := range 150 {
		tags = append(tags, KV{Key: fmt.Sprintf("t.%03d", i), Value: "v"})
	}
	if err := c.LogBatch(context.Background(), run.RunID, metricsN(1200), params, tags, nil); err != nil {
		t.Fatal(err)
	}
	reqs := batchRequests(srv)
	var np, nt, nm int
	for i, r := range reqs {
		if r.Status != 200 {
			t.Fatalf("request %d refused: %d", i, r.Status)
		}
		if r.Params > 100 || r.Tags > 100 || r.Metrics > 1000 || r.Params+r.Tags+r.Metrics > 1000 {
			t.Errorf("request %d over the limits: %+v", i, r)
		}
		np, nt, nm = np+r.Params, nt+r.Tags, nm+r.Metrics
	}
	if np != 250 || nt != 150 || nm != 1200 {
		t.Errorf("sent %d params, %d tags, %d metrics; want 250, 150, 1200", np, nt, nm)
	}
	// 250 params need 3 requests, 150 tags 2, 1200 metrics 2; sharing makes 5.
	if len(reqs) != 5 {
		t.Errorf("%d requests, want 5", len(reqs))
	}
	got := srv.Run(run.RunID)
	if len(got.Params) != 250 || got.Params["p.249"] != "249" || len(got.Tags) < 150 {
		t.Errorf("server has %d params, %d tags", len(got.Params), len(got.Tags))
	}
}

func TestLogBatchByteLimit(t *testing.T) {
	srv := mlflowtest.New()
	defer srv.Close()
	c, _ := testClient(t, srv, nil, 0)
	run := newRun(t, c)
	srv.ResetRequests()

	// 100 params of 6000 '<' and 100 tags of 5000 '&': few entities, but
	// JSON-escaped (\u003c, 6 bytes) they are ~6.6 MB: only bytes split them.
	var params, tags []KV
	for i := range 100 {
		params = append(params, KV{Key: fmt.Sprintf("p%d", i), Value: strings.Repeat("<", MaxParamValueLength)})
		tags = append(tags, KV{Key: fmt.Sprintf("t%d", i), Value: strings.Repeat("&", MaxTagValueLength)})
	}
	if err := c.LogBatch(context.Background(), run.RunID, nil, params, tags, nil); err != nil {
		t.Fatal(err)
	}
	reqs := batchRequests(srv)
	total := 0
	for i, r := range reqs {
		if r.Status != 200 || r.Bytes > 1_000_000 {
			t.Errorf("request %d: status %d, %d bytes", i, r.Status, r.Bytes)
		}
		total += r.Bytes
	}
	if len(reqs) < 7 || total < 6_500_000 {
		t.Errorf("%d requests, %d bytes: the byte limit did not split", len(reqs), total)
	}
	if got := srv.Run(run.RunID).Params["p99"]; got != strings.Repeat("<", MaxParamValueLength) {
		t.Errorf("param value mangled: %d chars", len(got))
	}
}

// The server must refuse what MLflow refuses; otherwise the tests above prove nothing.
func TestServerEnforcesDocumentedAPI(t *testing.T) {
	srv := mlflowtest.New()
	defer srv.Close()
	c, _ := testClient(t, srv, nil, 0)
	run := newRun(t, c)

	post := func(path, ct string, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct {
			Code string `json:"error_code"`
		}
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &e)
		return resp.StatusCode, e.Code
	}
	batch := func(n int) string {
		var sb strings.Builder
		fmt.Fprintf(&sb, `{"run_id":%q,"metrics":[`, run.RunID)
		for i := range n {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"key":"m","value":1,"timestamp":1740830400000,"step":%d}`, i)
		}
		sb.WriteString("]}")
		return sb.String()
	}
	bigParams := func() string {
		var sb strings.Builder
		fmt.Fprintf(&sb, `{"run_id":%q,"params":[`, run.RunID)
		for i := range 100 {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"key":"k%d","value":%q}`, i, strings.Repeat("x", 6000))
		}
		fmt.Fprintf(&sb, `],"tags":[`)
		for i := range 100 {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"key":"t%d","value":%q}`, i, strings.Repeat("y", 5000))
		}
		sb.WriteString("]}")
		return sb.String()
	}
	const json = "application/json"
	for _, tc := range []struct {
		name, path, ct, body string
		status               int
		code                 string
	}{
		{"1000 metrics ok", "/api/2.0/mlflow/runs/log-batch", json, batch(1000), 200, ""},
		{"1001 metrics", "/api/2.0/mlflow/runs/log-batch", json, batch(1001), 400, "INVALID_PARAMETER_VALUE"},
		{"over 1 MB", "/api/2.0/mlflow/runs/log-batch", json, bigParams(), 400, "INVALID_PARAMETER_VALUE"},
		{"101 params", "/api/2.0/mlflow/runs/log-batch", json, fmt.Sprintf(`{"run_id":%q,"params":[%s]}`, run.RunID, strings.TrimSuffix(strings.Repeat(`{"key":"a","value":"1"},`, 101), ",")), 400, "INVALID_PARAMETER_VALUE"},
		{"duplicate param", "/api/2.0/mlflow/runs/log-batch", json, fmt.Sprintf(`{"run_id":%q,"params":[{"key":"a","value":"1"},{"key":"a","value":"1"}]}`, run.RunID), 400, "INVALID_PARAMETER_VALUE"},
		{"bad key", "/api/2.0/mlflow/runs/log-batch", json, fmt.Sprintf(`{"run_id":%q,"metrics":[{"key":"a:b","value":1,"timestamp":1740830400000}]}`, run.RunID), 400, "INVALID_PARAMETER_VALUE"},
		{"seconds not ms", "/api/2.0/mlflow/runs/log-batch", json, fmt.Sprintf(`{"run_id":%q,"metrics":[{"key":"a","value":1,"timestamp":1740830400}]}`, run.RunID), 400, "INVALID_PARAMETER_VALUE"},
		{"no timestamp", "/api/2.0/mlflow/runs/log-batch", json, fmt.Sprintf(`{"run_id":%q,"metrics":[{"key":"a","value":1}]}`, run.RunID), 400, "INVALID_PARAMETER_VALUE"},
		{"unknown field", "/api/2.0/mlflow/runs/log-batch", json, fmt.Sprintf(`{"runId":%q}`, run.RunID), 400, "INVALID_PARAMETER_VALUE"},
		{"no such run", "/api/2.0/mlflow/runs/log-batch", json, `{"run_id":"nope","metrics":[]}`, 404, "RESOURCE_DOES_NOT_EXIST"},
		{"text content type", "/api/2.0/mlflow/runs/log-batch", "text/plain", batch(1), 400, "INVALID_PARAMETER_VALUE"},
		{"experiment exists", "/api/2.0/mlflow/experiments/create", json, `{"name":"exp"}`, 400, "RESOURCE_ALREADY_EXISTS"},
		{"experiment name required", "/api/2.0/mlflow/experiments/create", json, `{}`, 400, "INVALID_PARAMETER_VALUE"},
		{"bad status", "/api/2.0/mlflow/runs/update", json, fmt.Sprintf(`{"run_id":%q,"status":"DONE"}`, run.RunID), 400, "INVALID_PARAMETER_VALUE"},
		{"model missing", "/api/2.0/mlflow/model-versions/create", json, `{"name":"m","source":"s3://x"}`, 404, "RESOURCE_DOES_NOT_EXIST"},
		{"unknown endpoint", "/api/2.0/mlflow/runs/log-everything", json, `{}`, 404, "ENDPOINT_NOT_FOUND"},
	} {
		status, code := post(tc.path, tc.ct, tc.body)
		if status != tc.status || code != tc.code {
			t.Errorf("%s: got %d %s, want %d %s", tc.name, status, code, tc.status, tc.code)
		}
	}
	if _, err := c.GetExperimentByName(context.Background(), "nope"); !IsCode(err, CodeResourceDoesNotExist) {
		t.Errorf("get-by-name of a missing experiment: %v, want RESOURCE_DOES_NOT_EXIST", err)
	}
}

func TestAuth(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opt    mlflowtest.Option
		env    map[string]string
		scheme string
		ok     bool
	}{
		{"basic", mlflowtest.WithBasicAuth("ann", "s3cret"), map[string]string{EnvTrackingUsername: "ann", EnvTrackingPassword: "s3cret"}, "Basic", true},
		{"basic wrong password", mlflowtest.WithBasicAuth("ann", "s3cret"), map[string]string{EnvTrackingUsername: "ann", EnvTrackingPassword: "guess"}, "Basic", false},
		{"basic missing", mlflowtest.WithBasicAuth("ann", "s3cret"), nil, "", false},
		{"bearer", mlflowtest.WithBearerToken("tok-123"), map[string]string{EnvTrackingToken: "tok-123"}, "Bearer", true},
		{"bearer wrong", mlflowtest.WithBearerToken("tok-123"), map[string]string{EnvTrackingToken: "tok-999"}, "Bearer", false},
		// MLflow's client prefers username/password over a token.
		{"basic before token", mlflowtest.WithBasicAuth("ann", "s3cret"), map[string]string{EnvTrackingUsername: "ann", EnvTrackingPassword: "s3cret", EnvTrackingToken: "tok"}, "Basic", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := mlflowtest.New(tc.opt)
			defer srv.Close()
			c, slept := testClient(t, srv, tc.env, 3)
			_, err := c.EnsureExperiment(context.Background(), "e")
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			var ae *APIError
			if !tc.ok && (!errors.As(err, &ae) || ae.StatusCode != 401) {
				t.Errorf("err = %v, want a 401 APIError", err)
			}
			if len(*slept) != 0 {
				t.Errorf("a 401 was retried %d times", len(*slept))
			}
			for _, r := range srv.Requests() {
				if r.Auth != tc.scheme {
					t.Errorf("request %s sent auth %q, want %q", r.Path, r.Auth, tc.scheme)
				}
			}
		})
	}
}

func TestRetryThenSuccess(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		retryAfter string
		wantDelay  time.Duration // 0: backoff with jitter
	}{
		{"503", http.StatusServiceUnavailable, "", 0},
		{"429 retry-after", http.StatusTooManyRequests, "2", 2 * time.Second},
		{"502", http.StatusBadGateway, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := mlflowtest.New()
			defer srv.Close()
			c, slept := testClient(t, srv, nil, 5)
			srv.FailNext(2, tc.status, tc.retryAfter)
			id, err := c.EnsureExperiment(context.Background(), "e")
			if err != nil || id == "" {
				t.Fatalf("EnsureExperiment = %q, %v", id, err)
			}
			if len(*slept) != 2 {
				t.Fatalf("slept %d times, want 2", len(*slept))
			}
			for i, d := range *slept {
				if tc.wantDelay != 0 {
					if d != tc.wantDelay {
						t.Errorf("delay %d = %s, want Retry-After %s", i, d, tc.wantDelay)
					}
					continue
				}
				base := c.BaseDelay << i
				if d < base/2 || d >= base {
					t.Errorf("delay %d = %s, want in [%s, %s)", i, d, base/2, base)
				}
			}
		})
	}
}

func TestRetryGivesUp(t *testing.T) {
	srv := mlflowtest.New()
	defer srv.Close()
	c, slept := testClient(t, srv, nil, 2)
	srv.FailNext(10, http.StatusServiceUnavailable, "")
	_, err := c.EnsureExperiment(context.Background(), "e")
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 503 || !strings.Contains(err.Error(), "3 attempts") {
		t.Fatalf("err = %v, want a 503 after 3 attempts", err)
	}
	if len(*slept) != 2 {
		t.Errorf("slept %d times, want 2", len(*slept))
	}

	// A Retry-After beyond MaxRetryAfter is not waited for.
	srv2 := mlflowtest.New()
	defer srv2.Close()
	c2, slept2 := testClient(t, srv2, nil, 5)
	srv2.FailNext(1, http.StatusTooManyRequests, "3600")
	if _, err := c2.EnsureExperiment(context.Background(), "e"); err == nil || len(*slept2) != 0 {
		t.Errorf("Retry-After 3600: err %v, slept %v", err, *slept2)
	}
}

func TestRetryNetworkError(t *testing.T) {
	srv := mlflowtest.New()
	defer srv.Close()
	c, _ := testClient(t, srv, nil, 3)
	srv.SetDown(true)
	sleeps := 0
	c.sleep = func(ctx context.Context, _ time.Duration) error {
		sleeps++
		if sleeps == 2 {
			srv.SetDown(false) // the server comes back during the backoff
		}
		return nil
	}
	if _, err := c.EnsureExperiment(context.Background(), "e"); err != nil {
		t.Fatalf("EnsureExperiment after the server came back: %v", err)
	}
	if srv.Dropped() != 2 || sleeps != 2 {
		t.Errorf("dropped %d connections, slept %d times; want 2, 2", srv.Dropped(), sleeps)
	}
}

func TestLocalErrorIsNotRetried(t *testing.T) {
	srv := mlflowtest.New()
	defer srv.Close()
	c, slept := testClient(t, srv, nil, 5)
	run := newRun(t, c)
	err := c.UploadArtifact(context.Background(), run.ArtifactURI, "missing.bin", filepath.Join(t.TempDir(), "missing.bin"))
	if err == nil || len(*slept) != 0 {
		t.Errorf("upload of a missing file: %v, %d retries", err, len(*slept))
	}
}

func TestContextCancelStopsRetries(t *testing.T) {
	srv := mlflowtest.New()
	defer srv.Close()
	c, _ := testClient(t, srv, nil, 5)
	c.sleep = sleepCtx
	c.BaseDelay = time.Hour
	srv.FailNext(10, http.StatusServiceUnavailable, "")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.EnsureExperiment(ctx, "e")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("err = %v after %s, want the context's deadline promptly", err, time.Since(start))
	}
}

func TestFullPrecisionFloats(t *testing.T) {
	srv := mlflowtest.New()
	defer srv.Close()
	c, _ := testClient(t, srv, nil, 0)
	run := newRun(t, c)
	a, b := 0.1, 0.2 // variables: a constant 0.1+0.2 is exactly 0.3
	vals := []float64{a + b, math.Pi, 1.0 / 3, 1e-300, 123456789.12345678, -2.5e21, math.SmallestNonzeroFloat64, math.MaxFloat64, math.NaN(), math.Inf(1), math.Inf(-1)}
	var ms []WireMetric
	for i, v := range vals {
		ms = append(ms, WireMetric{Key: fmt.Sprintf("m%d", i), Value: Float(v), Timestamp: 1740830400000, Step: 0})
	}
	if err := c.LogBatch(context.Background(), run.RunID, ms, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	got := srv.Run(run.RunID)
	for i, v := range vals {
		p := got.Metrics[fmt.Sprintf("m%d", i)][0].Value
		if math.Float64bits(p) != math.Float64bits(v) && !(math.IsNaN(p) && math.IsNaN(v)) {
			t.Errorf("m%d: server got %v, sent %v", i, p, v)
		}
	}
	chunks, err := SplitBatch("r", ms[:1], nil, nil, Limits)
	if err != nil || !bytes.Contains(chunks[0].Body, []byte(`"value":0.30000000000000004`)) {
		t.Errorf("body %s does not carry 0.1+0.2 in full", chunks[0].Body)
	}
}

func TestArtifactURL(t *testing.T) {
	res, err := Config{URI: "https://mlflow.example.com/prefix/", Timeout: duration.Duration(time.Second)}.Resolve(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(res, nil)
	for _, tc := range []struct{ uri, name, want string }{
		{"mlflow-artifacts:/3/abc/artifacts", "model/rul predictor.onnx", "https://mlflow.example.com/prefix/api/2.0/mlflow-artifacts/artifacts/3/abc/artifacts/model/rul%20predictor.onnx"},
		{"mlflow-artifacts://other:5000/3/abc/artifacts", "report.md", "https://other:5000/prefix/api/2.0/mlflow-artifacts/artifacts/3/abc/artifacts/report.md"},
		{"https://store.example.com/root/3/abc/artifacts/", "report.md", "https://store.example.com/root/3/abc/artifacts/report.md"},
	} {
		got, err := c.ArtifactURL(tc.uri, tc.name)
		if err != nil || got != tc.want {
			t.Errorf("ArtifactURL(%q, %q) = %q, %v; want %q", tc.uri, tc.name, got, err, tc.want)
		}
	}
	if _, err := c.ArtifactURL("s3://bucket/3/abc/artifacts", "a"); !errors.Is(err, ErrArtifactStore) {
		t.Errorf("s3 artifact uri: %v, want ErrArtifactStore", err)
	}
	if _, err := c.ArtifactURL("mlflow-artifacts:/3/abc/artifacts", "../escape"); err == nil {
		t.Error("an artifact name with .. was accepted")
	}
}

func TestResolve(t *testing.T) {
	env := map[string]string{EnvTrackingURI: "http://env:5000", EnvExperimentName: "from-env"}
	get := func(k string) string { return env[k] }
	res, err := DefaultConfig().Resolve(get)
	if err != nil || res.Base.String() != "http://env:5000" || res.Experiment != "from-env" || res.Source != EnvTrackingURI {
		t.Errorf("env: %+v, %v", res, err)
	}
	cfg := DefaultConfig()
	cfg.URI, cfg.Experiment = "https://u:pw@cfg.example/", "x"
	res, err = cfg.Resolve(get)
	if err != nil || res.Base.String() != "https://cfg.example" || res.AuthKind() != "basic" || res.Experiment != "x" {
		t.Errorf("config: %+v, %v", res, err)
	}
	cfg.URI = "file:///tmp/mlruns"
	if _, err := cfg.Resolve(get); err == nil || !strings.Contains(err.Error(), "tracking.uri") {
		t.Errorf("file URI in config: %v", err)
	}
	env[EnvTrackingURI] = "databricks"
	_, err = DefaultConfig().Resolve(get)
	var se *SchemeError
	if !errors.As(err, &se) || errors.Unwrap(se) != nil {
		t.Errorf("databricks in env: %v, want a SchemeError that is not a usage error", err)
	}
	if off, err := DefaultConfig().Resolve(func(string) string { return "" }); err != nil || off.Enabled() || off.Experiment != DefaultExperiment {
		t.Errorf("no URI: %+v, %v", off, err)
	}
	if got := RedactURI("https://u:pw@h/x"); got != "https://u:xxxxx@h/x" {
		t.Errorf("RedactURI = %q", got)
	}
}
