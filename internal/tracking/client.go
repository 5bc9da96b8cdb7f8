package tracking

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/modax/modax-ml/internal/version"
)

// Client talks to an MLflow tracking server through its REST API 2.0
// (https://mlflow.org/docs/latest/rest-api.html). Every call honours ctx,
// bounds each attempt by the configured timeout, and retries 429, 500, 502,
// 503, 504 and network errors with exponential backoff and jitter, waiting
// as long as a Retry-After header asks (up to MaxRetryAfter).
type Client struct {
	base       *url.URL
	auth       auth
	hc         *http.Client
	log        *slog.Logger
	timeout    time.Duration
	maxRetries int
	userAgent  string

	// BaseDelay is the first backoff delay; it doubles per retry up to MaxDelay.
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// MaxRetryAfter is the longest Retry-After the client waits for; a server
	// asking for more is treated as down.
	MaxRetryAfter time.Duration
	// sleep waits d or until ctx is done (a seam for tests).
	sleep func(ctx context.Context, d time.Duration) error
}

// NewClient returns a client for the server of cfg (cfg.Enabled() must hold).
func NewClient(cfg *Resolved, log *slog.Logger) *Client {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		base:          cfg.Base,
		auth:          cfg.auth,
		hc:            &http.Client{Transport: http.DefaultTransport},
		log:           log,
		timeout:       cfg.Timeout.D(),
		maxRetries:    cfg.MaxRetries,
		userAgent:     "modax-ml/" + version.Get().Version,
		BaseDelay:     500 * time.Millisecond,
		MaxDelay:      30 * time.Second,
		MaxRetryAfter: 60 * time.Second,
		sleep:         sleepCtx,
	}
	if clientHook != nil {
		clientHook(c)
	}
	return c
}

// clientHook lets tests adjust every new client (backoff, sleep).
var clientHook func(*Client)

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// APIError is an error answer of the server. MLflow answers errors with a
// JSON body {"error_code": "...", "message": "..."}.
type APIError struct {
	Method, Path string
	StatusCode   int
	Code         string // MLflow error_code, e.g. RESOURCE_DOES_NOT_EXIST
	Message      string
	RetryAfter   time.Duration
}

func (e *APIError) Error() string {
	msg := e.Message
	if len(msg) > 500 {
		msg = msg[:500] + "…"
	}
	code := e.Code
	if code == "" {
		code = http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("mlflow %s %s: %d %s: %s", e.Method, e.Path, e.StatusCode, code, msg)
}

// MLflow error codes the client branches on.
const (
	CodeResourceDoesNotExist = "RESOURCE_DOES_NOT_EXIST"
	CodeResourceExists       = "RESOURCE_ALREADY_EXISTS"
	CodeInvalidParameter     = "INVALID_PARAMETER_VALUE"
)

// IsCode reports whether err is an APIError with the MLflow error code.
func IsCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// stopsSync reports whether err makes further requests pointless: the
// server could not be reached or is overloaded (network error, timeout, 429
// or 5xx after the retries), or refuses our credentials. A request the server
// refused for its content (400, 404) does not stop the other steps.
func stopsSync(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return retryableStatus(ae.StatusCode) || ae.StatusCode == http.StatusUnauthorized || ae.StatusCode == http.StatusForbidden
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return true
	}
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// request describes one API call; body is rebuilt for every attempt.
type request struct {
	method      string
	url         string
	path        string // for messages
	contentType string
	body        func() (io.ReadCloser, int64, error)
}

func jsonBody(v any) (func() (io.ReadCloser, int64, error), error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return bytesBody(b), nil
}

func bytesBody(b []byte) func() (io.ReadCloser, int64, error) {
	return func() (io.ReadCloser, int64, error) {
		return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
	}
}

func (c *Client) apiURL(p string, q url.Values) string {
	u := *c.base
	u.Path = c.base.Path + "/api/2.0/" + p
	u.RawQuery = q.Encode()
	return u.String()
}

// call sends a JSON request to /api/2.0/<p> and decodes the answer into out.
func (c *Client) call(ctx context.Context, method, p string, q url.Values, in, out any) error {
	req := request{method: method, url: c.apiURL(p, q), path: "/api/2.0/" + p}
	if in != nil {
		body, err := jsonBody(in)
		if err != nil {
			return fmt.Errorf("mlflow %s: encode request: %w", p, err)
		}
		req.body, req.contentType = body, "application/json"
	}
	return c.do(ctx, req, out)
}

// do runs req with retries.
func (c *Client) do(ctx context.Context, req request, out any) error {
	for attempt := 0; ; attempt++ {
		err := c.once(ctx, req, out)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("mlflow %s %s: %w", req.method, req.path, context.Cause(ctx))
		}
		var ae *APIError
		var ue *url.Error
		isAPI := errors.As(err, &ae)
		if (isAPI && !retryableStatus(ae.StatusCode)) || (!isAPI && !errors.As(err, &ue)) {
			return err // refused, or a local error (a file to upload is missing)
		}
		if attempt >= c.maxRetries {
			if attempt > 0 {
				return fmt.Errorf("%w (gave up after %d attempts)", err, attempt+1)
			}
			return err
		}
		delay := c.backoff(attempt)
		if isAPI && ae.RetryAfter > 0 {
			if ae.RetryAfter > c.MaxRetryAfter {
				return fmt.Errorf("%w (server asks to retry after %s; giving up)", err, ae.RetryAfter)
			}
			delay = ae.RetryAfter
		}
		c.log.Debug("mlflow: retrying", "method", req.method, "path", req.path, "attempt", attempt+1, "delay", delay, "error", err.Error())
		if err := c.sleep(ctx, delay); err != nil {
			return fmt.Errorf("mlflow %s %s: %w", req.method, req.path, err)
		}
	}
}

// backoff is BaseDelay·2^attempt capped at MaxDelay, with "equal jitter":
// a uniform draw from [d/2, d).
func (c *Client) backoff(attempt int) time.Duration {
	d := float64(c.BaseDelay) * math.Pow(2, float64(attempt))
	if d > float64(c.MaxDelay) {
		d = float64(c.MaxDelay)
	}
	return time.Duration(d/2 + rand.Float64()*d/2)
}

func (c *Client) once(ctx context.Context, r request, out any) error {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var body io.ReadCloser
	var n int64
	if r.body != nil {
		var err error
		if body, n, err = r.body(); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(actx, r.method, r.url, body)
	if err != nil {
		if body != nil {
			body.Close()
		}
		return fmt.Errorf("mlflow %s %s: %w", r.method, r.path, err)
	}
	if body != nil {
		req.ContentLength = n
		req.Header.Set("Content-Type", r.contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	switch {
	case c.auth.user != "":
		req.SetBasicAuth(c.auth.user, c.auth.password)
	case c.auth.token != "":
		req.Header.Set("Authorization", "Bearer "+c.auth.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("mlflow %s %s: %w", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("mlflow %s %s: read response: %w", r.method, r.path, err)
	}
	if resp.StatusCode/100 != 2 {
		ae := &APIError{Method: r.method, Path: r.path, StatusCode: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
		var e struct {
			Code    string `json:"error_code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &e) == nil && e.Code != "" {
			ae.Code, ae.Message = e.Code, e.Message
		} else {
			ae.Message = strings.TrimSpace(string(b))
		}
		return ae
	}
	if out != nil && len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("mlflow %s %s: decode response: %w", r.method, r.path, err)
		}
	}
	return nil
}

// retryAfter parses a Retry-After header: delay seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// Experiment is an MLflow experiment.
type Experiment struct {
	ID             string `json:"experiment_id"`
	Name           string `json:"name"`
	LifecycleStage string `json:"lifecycle_stage"`
}

// RunInfo is the metadata of an MLflow run.
type RunInfo struct {
	RunID        string `json:"run_id"`
	ExperimentID string `json:"experiment_id"`
	RunName      string `json:"run_name"`
	Status       string `json:"status"`
	ArtifactURI  string `json:"artifact_uri"`
}

// KV is a param or tag on the wire.
type KV struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// WireMetric is a metric on the wire: timestamp in Unix milliseconds.
type WireMetric struct {
	Key       string `json:"key"`
	Value     Float  `json:"value"`
	Timestamp int64  `json:"timestamp"`
	Step      int64  `json:"step"`
}

// GetExperimentByName returns the experiment, or an APIError with code
// RESOURCE_DOES_NOT_EXIST.
func (c *Client) GetExperimentByName(ctx context.Context, name string) (*Experiment, error) {
	var out struct {
		Experiment *Experiment `json:"experiment"`
	}
	if err := c.call(ctx, http.MethodGet, "mlflow/experiments/get-by-name", url.Values{"experiment_name": {name}}, nil, &out); err != nil {
		return nil, err
	}
	if out.Experiment == nil || out.Experiment.ID == "" {
		return nil, fmt.Errorf("mlflow experiments/get-by-name %q: no experiment in the answer", name)
	}
	return out.Experiment, nil
}

// CreateExperiment creates an experiment and returns its id.
func (c *Client) CreateExperiment(ctx context.Context, name string) (string, error) {
	var out struct {
		ID string `json:"experiment_id"`
	}
	if err := c.call(ctx, http.MethodPost, "mlflow/experiments/create", nil, map[string]any{"name": name}, &out); err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", fmt.Errorf("mlflow experiments/create %q: no experiment_id in the answer", name)
	}
	return out.ID, nil
}

// EnsureExperiment returns the id of the named experiment, creating it when
// missing (and coping with another client creating it at the same time).
func (c *Client) EnsureExperiment(ctx context.Context, name string) (string, error) {
	for range 2 {
		exp, err := c.GetExperimentByName(ctx, name)
		if err == nil {
			if exp.LifecycleStage == "deleted" {
				return "", fmt.Errorf("mlflow experiment %q (id %s) is deleted: restore it on the server or set tracking.experiment to another name", name, exp.ID)
			}
			return exp.ID, nil
		}
		if !IsCode(err, CodeResourceDoesNotExist) {
			return "", err
		}
		id, err := c.CreateExperiment(ctx, name)
		if err == nil {
			return id, nil
		}
		if !IsCode(err, CodeResourceExists) {
			return "", err
		}
	}
	return "", fmt.Errorf("mlflow experiment %q: created concurrently but not found", name)
}

// CreateRun creates a run in the experiment.
func (c *Client) CreateRun(ctx context.Context, experimentID, runName string, start time.Time, tags []KV) (*RunInfo, error) {
	in := struct {
		ExperimentID string `json:"experiment_id"`
		RunName      string `json:"run_name,omitempty"`
		StartTime    int64  `json:"start_time"`
		Tags         []KV   `json:"tags,omitempty"`
	}{experimentID, runName, start.UnixMilli(), tags}
	var out struct {
		Run struct {
			Info RunInfo `json:"info"`
		} `json:"run"`
	}
	if err := c.call(ctx, http.MethodPost, "mlflow/runs/create", nil, in, &out); err != nil {
		return nil, err
	}
	if out.Run.Info.RunID == "" {
		return nil, errors.New("mlflow runs/create: no run_id in the answer")
	}
	return &out.Run.Info, nil
}

// UpdateRun sets the status, end time (when not zero) and name of a run.
func (c *Client) UpdateRun(ctx context.Context, runID string, status Status, end time.Time, runName string) error {
	in := struct {
		RunID   string `json:"run_id"`
		Status  string `json:"status"`
		EndTime int64  `json:"end_time,omitempty"`
		RunName string `json:"run_name,omitempty"`
	}{RunID: runID, Status: strings.ToUpper(string(status)), RunName: runName}
	if !end.IsZero() {
		in.EndTime = end.UnixMilli()
	}
	return c.call(ctx, http.MethodPost, "mlflow/runs/update", nil, in, nil)
}

// LogBatch logs metrics, params and tags, split into as many runs/log-batch
// requests as MLflow's limits need (see Limits). Params and tags go first,
// then metrics in order. done is called after each accepted request with the
// numbers it carried, so a caller can remember progress.
func (c *Client) LogBatch(ctx context.Context, runID string, metrics []WireMetric, params, tags []KV, done func(BatchCounts)) error {
	chunks, err := SplitBatch(runID, metrics, params, tags, Limits)
	if err != nil {
		return err
	}
	for _, ch := range chunks {
		req := request{method: http.MethodPost, url: c.apiURL("mlflow/runs/log-batch", nil), path: "/api/2.0/mlflow/runs/log-batch",
			contentType: "application/json", body: bytesBody(ch.Body)}
		if err := c.do(ctx, req, nil); err != nil {
			return err
		}
		if done != nil {
			done(ch.BatchCounts)
		}
	}
	return nil
}

// ErrArtifactStore marks a run whose artifact store the client cannot write:
// only the tracking server's proxy (mlflow-artifacts:, MLflow's default
// since 2.0 with --serve-artifacts) and http(s) stores are supported.
var ErrArtifactStore = errors.New("artifact store not reachable through the tracking server")

// ArtifactURL returns the URL an artifact named name (a relative path) of a
// run with the given artifact URI is uploaded to. For mlflow-artifacts:/P it
// is <server>/api/2.0/mlflow-artifacts/artifacts/P/<name>, as MLflow's own
// MlflowArtifactsRepository resolves it (P is usually
// <experiment_id>/<run_id>/artifacts).
func (c *Client) ArtifactURL(artifactURI, name string) (string, error) {
	if err := checkArtifactName(name); err != nil {
		return "", err
	}
	au, err := url.Parse(artifactURI)
	if err != nil {
		return "", fmt.Errorf("artifact uri %q: %w", artifactURI, err)
	}
	var u url.URL
	switch au.Scheme {
	case "mlflow-artifacts":
		u = *c.base
		if au.Host != "" {
			u.Host = au.Host
		}
		p := au.Path
		if au.Opaque != "" {
			p = au.Opaque
		}
		u.Path = path.Clean("/" + c.base.Path + "/api/2.0/mlflow-artifacts/artifacts/" + p + "/" + name)
	case "http", "https":
		u = *au
		u.Path = strings.TrimRight(au.Path, "/") + "/" + name
	default:
		return "", fmt.Errorf("%w: run artifact uri %q (start the server with --serve-artifacts, the default since MLflow 2.0)", ErrArtifactStore, artifactURI)
	}
	u.RawQuery, u.Fragment = "", ""
	return u.String(), nil
}

func checkArtifactName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || path.Clean(name) != name || name == "." || strings.HasPrefix(name, "../") || name == ".." {
		return fmt.Errorf("artifact name %q: want a clean relative path", name)
	}
	return nil
}

// UploadArtifact uploads the local file to the run's artifact store under name.
func (c *Client) UploadArtifact(ctx context.Context, artifactURI, name, file string) error {
	u, err := c.ArtifactURL(artifactURI, name)
	if err != nil {
		return err
	}
	ct := mime.TypeByExtension(filepath.Ext(file))
	if ct == "" {
		ct = "application/octet-stream"
	}
	pu, _ := url.Parse(u)
	req := request{method: http.MethodPut, url: u, path: pu.Path, contentType: ct,
		body: func() (io.ReadCloser, int64, error) {
			f, err := os.Open(file)
			if err != nil {
				return nil, 0, fmt.Errorf("upload artifact %s: %w", name, err)
			}
			fi, err := f.Stat()
			if err != nil {
				f.Close()
				return nil, 0, fmt.Errorf("upload artifact %s: %w", name, err)
			}
			return f, fi.Size(), nil
		}}
	return c.do(ctx, req, nil)
}

// CreateRegisteredModel creates a registered model; one that exists already is fine.
func (c *Client) CreateRegisteredModel(ctx context.Context, name, description string) error {
	in := struct {
		Name        string `json:"name"`
		Description string `json:"description,omitempty"`
	}{name, description}
	err := c.call(ctx, http.MethodPost, "mlflow/registered-models/create", nil, in, nil)
	if IsCode(err, CodeResourceExists) {
		return nil
	}
	return err
}

// CreateModelVersion registers the model at source (an artifact URI of the
// run) as a new version and returns the version number.
func (c *Client) CreateModelVersion(ctx context.Context, name, source, runID string, tags []KV) (string, error) {
	in := struct {
		Name   string `json:"name"`
		Source string `json:"source"`
		RunID  string `json:"run_id,omitempty"`
		Tags   []KV   `json:"tags,omitempty"`
	}{name, source, runID, tags}
	var out struct {
		ModelVersion struct {
			Version string `json:"version"`
		} `json:"model_version"`
	}
	if err := c.call(ctx, http.MethodPost, "mlflow/model-versions/create", nil, in, &out); err != nil {
		return "", err
	}
	if out.ModelVersion.Version == "" {
		return "", errors.New("mlflow model-versions/create: no version in the answer")
	}
	return out.ModelVersion.Version, nil
}

// SetRegisteredModelAlias points alias at a version of the registered model.
func (c *Client) SetRegisteredModelAlias(ctx context.Context, name, alias, version string) error {
	in := struct {
		Name    string `json:"name"`
		Alias   string `json:"alias"`
		Version string `json:"version"`
	}{name, alias, version}
	return c.call(ctx, http.MethodPost, "mlflow/registered-models/alias", nil, in, nil)
}
