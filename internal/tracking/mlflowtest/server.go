// Package mlflowtest is an in-memory MLflow tracking server for tests. MLflow
// itself cannot be installed where the tests run, so this server implements
// the part of MLflow's REST API 2.0 that modax-ml uses and ENFORCES what the
// documentation says about it:
//
//   - endpoints and methods as declared in mlflow/protos/service.proto,
//     model_registry.proto and mlflow_artifacts.proto (unknown path: 404
//     ENDPOINT_NOT_FOUND; wrong method: 405);
//   - request messages: only the fields each message declares (an unknown
//     field is refused: stricter than MLflow, which ignores them, so that a
//     misspelt field fails a test instead of being dropped), the protobuf JSON
//     types (int64 as number or numeric string, double as number or
//     "NaN"/"Infinity"/"-Infinity", enums by name or number), and the fields
//     marked validate_required or checked by MLflow's handlers;
//   - runs/log-batch limits (mlflow/utils/validation.py): at most 1000
//     metrics, 100 params, 100 tags, 1000 entities in total, a body of at most
//     1e6 bytes; keys of MLflow's character set, not path-like, at most 250
//     characters; param values at most 6000 characters, tag values at most
//     5000; no duplicate param keys in a request; a param never changes value;
//   - timestamps in milliseconds (values below 1e11 are refused as seconds:
//     stricter than MLflow, to catch unit mistakes);
//   - error answers as MLflow sends them: {"error_code": ..., "message": ...}
//     with the HTTP status of MLflow's ERROR_CODE_TO_HTTP_STATUS
//     (INVALID_PARAMETER_VALUE and RESOURCE_ALREADY_EXISTS 400,
//     RESOURCE_DOES_NOT_EXIST and ENDPOINT_NOT_FOUND 404,
//     REQUEST_LIMIT_EXCEEDED 429, TEMPORARILY_UNAVAILABLE 503);
//   - authentication when configured: HTTP basic (MLflow's basic-auth app,
//     401 with WWW-Authenticate otherwise) or a bearer token;
//   - POST bodies with Content-Type application/json;
//   - artifacts through the mlflow-artifacts proxy: PUT/GET
//     /api/2.0/mlflow-artifacts/artifacts/<path>, the path relative and
//     without "..". Runs get artifact_uri mlflow-artifacts:/<exp>/<run>/artifacts
//     as a server started with --serve-artifacts gives them;
//   - model versions: the registered model must exist, and (stricter than
//     MLflow) a source under mlflow-artifacts: must hold uploaded artifacts.
//
// Faults can be injected (FailNext, SetDown) to test retries and outages.
package mlflowtest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Documented limits (mlflow/utils/validation.py).
const (
	MaxMetricsPerBatch  = 1000
	MaxParamsTagsBatch  = 100
	MaxEntitiesPerBatch = 1000
	MaxBatchBytes       = 1_000_000
	MaxKeyLength        = 250
	MaxParamValueLength = 6000
	MaxTagValueLength   = 5000
	MaxAliasLength      = 255
)

// Server is the fake MLflow server. Use New; Close it when done.
type Server struct {
	*httptest.Server

	mu       sync.Mutex
	user     string
	password string
	token    string

	experiments map[string]*Experiment // by id
	nextExp     int
	runs        map[string]*Run
	models      map[string]*Model
	artifacts   map[string][]byte
	requests    []Request
	faults      []fault
	down        bool
	dropped     int
}

// Option configures New.
type Option func(*Server)

// WithBasicAuth requires HTTP basic authentication.
func WithBasicAuth(user, password string) Option {
	return func(s *Server) { s.user, s.password = user, password }
}

// WithBearerToken requires "Authorization: Bearer <token>".
func WithBearerToken(token string) Option {
	return func(s *Server) { s.token = token }
}

// Experiment is a stored experiment.
type Experiment struct {
	ID, Name, LifecycleStage string
}

// Run is a stored run.
type Run struct {
	ID, ExperimentID, Name, Status string
	StartTime, EndTime             int64
	ArtifactURI                    string
	Params, Tags                   map[string]string
	Metrics                        map[string][]Point
}

// Point is one logged metric value.
type Point struct {
	Value     float64
	Timestamp int64
	Step      int64
}

// Model is a registered model.
type Model struct {
	Name     string
	Versions []Version
	Aliases  map[string]string
}

// Version is a registered model version.
type Version struct {
	Version, Source, RunID string
	Tags                   map[string]string
}

// Request is a request the server received.
type Request struct {
	Method, Path string
	Status       int
	Bytes        int
	// Counts of a log-batch request.
	Metrics, Params, Tags int
	Auth                  string // the Authorization header's scheme ("Basic", "Bearer", "")
}

type fault struct {
	status     int
	retryAfter string
}

// New starts a server with the Default experiment (id "0"), as MLflow has.
func New(opts ...Option) *Server {
	s := &Server{
		experiments: map[string]*Experiment{"0": {ID: "0", Name: "Default", LifecycleStage: "active"}},
		nextExp:     1,
		runs:        map[string]*Run{},
		models:      map[string]*Model{},
		artifacts:   map[string][]byte{},
	}
	for _, o := range opts {
		o(s)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// FailNext answers the next n requests with status (an MLflow error body;
// a Retry-After header when retryAfter is not empty).
func (s *Server) FailNext(n, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{status, retryAfter})
	}
}

// SetDown makes the server drop every connection without an answer (as an
// unreachable server looks to a client) until SetDown(false).
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Requests returns the requests received so far (dropped ones excluded).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Dropped counts the connections dropped while the server was down.
func (s *Server) Dropped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// ResetRequests forgets the requests received so far.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// ExperimentByName returns the experiment, or nil.
func (s *Server) ExperimentByName(name string) *Experiment {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.experiments {
		if e.Name == name {
			c := *e
			return &c
		}
	}
	return nil
}

// Runs returns copies of all runs.
func (s *Server) Runs() []*Run {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Run
	for _, r := range s.runs {
		out = append(out, r.clone())
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].StartTime < out[j].StartTime || (out[i].StartTime == out[j].StartTime && out[i].ID < out[j].ID)
	})
	return out
}

// Run returns a copy of the run, or nil.
func (s *Server) Run(id string) *Run {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.runs[id]; r != nil {
		return r.clone()
	}
	return nil
}

// DeleteRun removes a run (as if the server's store lost it).
func (s *Server) DeleteRun(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.runs, id)
}

// Artifact returns the content stored at an artifact path (relative to the
// artifact root: "<exp>/<run>/artifacts/report.md").
func (s *Server) Artifact(p string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.artifacts[p]
	return b, ok
}

// ArtifactPaths lists the stored artifact paths.
func (s *Server) ArtifactPaths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for p := range s.artifacts {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Model returns a copy of the registered model, or nil.
func (s *Server) Model(name string) *Model {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.models[name]
	if m == nil {
		return nil
	}
	c := &Model{Name: m.Name, Versions: append([]Version(nil), m.Versions...), Aliases: map[string]string{}}
	for k, v := range m.Aliases {
		c.Aliases[k] = v
	}
	return c
}

func (r *Run) clone() *Run {
	c := *r
	c.Params, c.Tags, c.Metrics = map[string]string{}, map[string]string{}, map[string][]Point{}
	for k, v := range r.Params {
		c.Params[k] = v
	}
	for k, v := range r.Tags {
		c.Tags[k] = v
	}
	for k, v := range r.Metrics {
		c.Metrics[k] = append([]Point(nil), v...)
	}
	return &c
}

// apiError is an MLflow error answer.
type apiError struct {
	status int
	code   string
	msg    string
}

func errf(code, format string, args ...any) *apiError {
	status := map[string]int{
		"INVALID_PARAMETER_VALUE": 400, "RESOURCE_ALREADY_EXISTS": 400, "BAD_REQUEST": 400,
		"RESOURCE_DOES_NOT_EXIST": 404, "ENDPOINT_NOT_FOUND": 404, "INVALID_STATE": 500,
		"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "REQUEST_LIMIT_EXCEEDED": 429,
		"TEMPORARILY_UNAVAILABLE": 503, "INTERNAL_ERROR": 500,
	}[code]
	if status == 0 {
		status = 500
	}
	return &apiError{status, code, fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		s.dropped++
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		writeJSON(w, 400, map[string]string{"error_code": "BAD_REQUEST", "message": err.Error()})
		return
	}
	req := Request{Method: r.Method, Path: r.URL.Path, Bytes: len(body)}
	if a := r.Header.Get("Authorization"); a != "" {
		req.Auth, _, _ = strings.Cut(a, " ")
	}
	status := s.handle(w, r, body, &req)
	req.Status = status
	s.requests = append(s.requests, req)
}

// handle answers one request and returns the status sent.
func (s *Server) handle(w http.ResponseWriter, r *http.Request, body []byte, req *Request) int {
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="mlflow"`)
		if s.token != "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mlflow"`)
		}
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, "You are not authenticated. Please see https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow on how to authenticate.")
		return http.StatusUnauthorized
	}
	if len(s.faults) > 0 {
		f := s.faults[0]
		s.faults = s.faults[1:]
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		code := "TEMPORARILY_UNAVAILABLE"
		if f.status == http.StatusTooManyRequests {
			code = "REQUEST_LIMIT_EXCEEDED"
		}
		writeJSON(w, f.status, map[string]string{"error_code": code, "message": "injected fault"})
		return f.status
	}
	var out any
	var aerr *apiError
	const art = "/api/2.0/mlflow-artifacts/artifacts/"
	if strings.HasPrefix(r.URL.Path, art) {
		out, aerr = s.artifact(w, r, strings.TrimPrefix(r.URL.Path, art), body)
		if aerr == nil && out == nil {
			return http.StatusOK // content already written
		}
	} else {
		type route struct {
			method string
			h      func(*http.Request, []byte, *Request) (any, *apiError)
		}
		routes := map[string]route{
			"/api/2.0/mlflow/experiments/get-by-name":  {http.MethodGet, s.getExperimentByName},
			"/api/2.0/mlflow/experiments/create":       {http.MethodPost, s.createExperiment},
			"/api/2.0/mlflow/runs/create":              {http.MethodPost, s.createRun},
			"/api/2.0/mlflow/runs/update":              {http.MethodPost, s.updateRun},
			"/api/2.0/mlflow/runs/get":                 {http.MethodGet, s.getRun},
			"/api/2.0/mlflow/runs/log-batch":           {http.MethodPost, s.logBatch},
			"/api/2.0/mlflow/registered-models/create": {http.MethodPost, s.createRegisteredModel},
			"/api/2.0/mlflow/model-versions/create":    {http.MethodPost, s.createModelVersion},
			"/api/2.0/mlflow/registered-models/alias":  {http.MethodPost, s.setAlias},
		}
		rt, ok := routes[r.URL.Path]
		switch {
		case !ok:
			aerr = errf("ENDPOINT_NOT_FOUND", "no endpoint %s %s", r.Method, r.URL.Path)
		case r.Method != rt.method:
			w.WriteHeader(http.StatusMethodNotAllowed)
			return http.StatusMethodNotAllowed
		case r.Method == http.MethodPost && !isJSON(r.Header.Get("Content-Type")):
			aerr = errf("INVALID_PARAMETER_VALUE", "Bad Request. Content-Type must be one of ['application/json'], got %q", r.Header.Get("Content-Type"))
		default:
			out, aerr = rt.h(r, body, req)
		}
	}
	if aerr != nil {
		writeJSON(w, aerr.status, map[string]string{"error_code": aerr.code, "message": aerr.msg})
		return aerr.status
	}
	writeJSON(w, http.StatusOK, out)
	return http.StatusOK
}

func isJSON(ct string) bool {
	ct, _, _ = strings.Cut(ct, ";")
	return strings.TrimSpace(strings.ToLower(ct)) == "application/json"
}

func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	switch {
	case s.user != "":
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte(s.user+":"+s.password))
		return h == want
	case s.token != "":
		return h == "Bearer "+s.token
	}
	return true
}

// --- request decoding: protobuf JSON with the message's declared fields ---

type message struct {
	name   string
	fields map[string]json.RawMessage
}

// decode parses body as the named message with the declared fields.
func decode(name string, body []byte, declared ...string) (*message, *apiError) {
	m := &message{name: name, fields: map[string]json.RawMessage{}}
	if len(strings.TrimSpace(string(body))) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(body, &m.fields); err != nil {
		return nil, errf("BAD_REQUEST", "%s: malformed JSON: %v", name, err)
	}
	for k := range m.fields {
		found := false
		for _, d := range declared {
			if d == k {
				found = true
			}
		}
		if !found {
			return nil, errf("INVALID_PARAMETER_VALUE", "%s: unknown field %q (declared: %s)", name, k, strings.Join(declared, ", "))
		}
	}
	return m, nil
}

func (m *message) has(f string) bool {
	v, ok := m.fields[f]
	return ok && string(v) != "null"
}

func (m *message) str(f string, required bool) (string, *apiError) {
	if !m.has(f) {
		if required {
			return "", errf("INVALID_PARAMETER_VALUE", "Missing value for required parameter '%s'.", f)
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(m.fields[f], &s); err != nil {
		return "", errf("INVALID_PARAMETER_VALUE", "%s.%s: want a string, got %s", m.name, f, m.fields[f])
	}
	if required && s == "" {
		return "", errf("INVALID_PARAMETER_VALUE", "Missing value for required parameter '%s'.", f)
	}
	return s, nil
}

// int64Value reads a protobuf int64: a JSON integer or a decimal string.
func int64Value(name string, raw json.RawMessage) (int64, *apiError) {
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		if v, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
			return v, nil
		}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if v, err := strconv.ParseInt(s, 10, 64); err == nil {
			return v, nil
		}
	}
	return 0, errf("INVALID_PARAMETER_VALUE", "%s: want an int64, got %s", name, raw)
}

func (m *message) int64(f string) (int64, bool, *apiError) {
	if !m.has(f) {
		return 0, false, nil
	}
	v, err := int64Value(m.name+"."+f, m.fields[f])
	return v, true, err
}

// doubleValue reads a protobuf double: a JSON number or "NaN", "Infinity",
// "-Infinity" (or a numeric string).
func doubleValue(name string, raw json.RawMessage) (float64, *apiError) {
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		if v, err := strconv.ParseFloat(n.String(), 64); err == nil {
			return v, nil
		}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		switch s {
		case "NaN":
			return math.NaN(), nil
		case "Infinity":
			return math.Inf(1), nil
		case "-Infinity":
			return math.Inf(-1), nil
		}
		if v, err := strconv.ParseFloat(s, 64); err == nil {
			return v, nil
		}
	}
	return 0, errf("INVALID_PARAMETER_VALUE", "%s: want a double, got %s", name, raw)
}

// kvs reads a repeated {key, value} message (RunTag, Param, ...).
func (m *message) kvs(f string) ([][2]string, *apiError) {
	if !m.has(f) {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(m.fields[f], &items); err != nil {
		return nil, errf("INVALID_PARAMETER_VALUE", "%s.%s: want a list, got %s", m.name, f, m.fields[f])
	}
	out := make([][2]string, 0, len(items))
	for i, it := range items {
		sub, err := decode(fmt.Sprintf("%s.%s[%d]", m.name, f, i), it, "key", "value")
		if err != nil {
			return nil, err
		}
		k, err := sub.str("key", false)
		if err != nil {
			return nil, err
		}
		v, err := sub.str("value", false)
		if err != nil {
			return nil, err
		}
		if !sub.has("key") {
			return nil, errf("INVALID_PARAMETER_VALUE", "%s: key is required", sub.name)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

func checkMillis(name string, v int64) *apiError {
	if v < 1e11 {
		return errf("INVALID_PARAMETER_VALUE", "%s %d is not a Unix timestamp in milliseconds", name, v)
	}
	return nil
}

// --- validation rules of mlflow/utils/validation.py ---

var validName = regexp.MustCompile(`^[/\w.\- ]*$`)

func pathNotUnique(name string) bool {
	norm := path.Clean(name)
	if name == "" {
		norm = "."
	}
	return norm != name || norm == "." || strings.HasPrefix(norm, "..") || strings.HasPrefix(norm, "/")
}

func validateKey(kind, key string) *apiError {
	if !validName.MatchString(key) {
		return errf("INVALID_PARAMETER_VALUE", "Invalid %s name: '%s'. Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), and slashes (/).", kind, key)
	}
	if pathNotUnique(key) {
		return errf("INVALID_PARAMETER_VALUE", "Invalid %s name: '%s'. Names may be treated as files in certain cases, and must not resolve to other names when treated as such.", kind, key)
	}
	if n := utf8.RuneCountInString(key); n > MaxKeyLength {
		return errf("INVALID_PARAMETER_VALUE", "%s key '%s' had length %d, which exceeded length limit of %d", kind, key[:50], n, MaxKeyLength)
	}
	return nil
}

func validateValue(kind, v string, limit int) *apiError {
	if n := utf8.RuneCountInString(v); n > limit {
		return errf("INVALID_PARAMETER_VALUE", "%s value had length %d, which exceeded length limit of %d", kind, n, limit)
	}
	return nil
}

func validateTags(tags [][2]string) *apiError {
	for _, t := range tags {
		if err := validateKey("tag", t[0]); err != nil {
			return err
		}
		if err := validateValue("Tag", t[1], MaxTagValueLength); err != nil {
			return err
		}
	}
	return nil
}

func batchLimit(entity string, limit, n int) *apiError {
	if n > limit {
		return errf("INVALID_PARAMETER_VALUE", "A batch logging request can contain at most %d %s. Got %d %s. Please split up %s across multiple requests and try again.", limit, entity, n, entity, entity)
	}
	return nil
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func nowMillis() int64 { return time.Now().UnixMilli() }

// --- handlers ---

func (s *Server) experimentJSON(e *Experiment) map[string]any {
	return map[string]any{"experiment_id": e.ID, "name": e.Name, "artifact_location": "mlflow-artifacts:/" + e.ID,
		"lifecycle_stage": e.LifecycleStage, "creation_time": nowMillis(), "last_update_time": nowMillis()}
}

func (s *Server) getExperimentByName(r *http.Request, _ []byte, _ *Request) (any, *apiError) {
	q := r.URL.Query()
	for k := range q {
		if k != "experiment_name" {
			return nil, errf("INVALID_PARAMETER_VALUE", "GetExperimentByName: unknown parameter %q", k)
		}
	}
	name := q.Get("experiment_name")
	if name == "" {
		return nil, errf("INVALID_PARAMETER_VALUE", "Missing value for required parameter 'experiment_name'.")
	}
	for _, e := range s.experiments {
		if e.Name == name {
			return map[string]any{"experiment": s.experimentJSON(e)}, nil
		}
	}
	return nil, errf("RESOURCE_DOES_NOT_EXIST", "Could not find experiment with name '%s'", name)
}

func (s *Server) createExperiment(_ *http.Request, body []byte, _ *Request) (any, *apiError) {
	m, err := decode("CreateExperiment", body, "name", "artifact_location", "tags")
	if err != nil {
		return nil, err
	}
	name, err := m.str("name", true)
	if err != nil {
		return nil, err
	}
	if _, err := m.str("artifact_location", false); err != nil {
		return nil, err
	}
	if _, err := m.kvs("tags"); err != nil {
		return nil, err
	}
	for _, e := range s.experiments {
		if e.Name == name {
			return nil, errf("RESOURCE_ALREADY_EXISTS", "Experiment(name=%s) already exists.", name)
		}
	}
	id := strconv.Itoa(s.nextExp)
	s.nextExp++
	s.experiments[id] = &Experiment{ID: id, Name: name, LifecycleStage: "active"}
	return map[string]any{"experiment_id": id}, nil
}

// AddDeletedExperiment stores a deleted experiment (as MLflow keeps them).
func (s *Server) AddDeletedExperiment(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := strconv.Itoa(s.nextExp)
	s.nextExp++
	s.experiments[id] = &Experiment{ID: id, Name: name, LifecycleStage: "deleted"}
	return id
}

func (s *Server) runInfo(run *Run) map[string]any {
	info := map[string]any{"run_id": run.ID, "run_uuid": run.ID, "run_name": run.Name, "experiment_id": run.ExperimentID,
		"status": run.Status, "start_time": run.StartTime, "artifact_uri": run.ArtifactURI, "lifecycle_stage": "active", "user_id": ""}
	if run.EndTime != 0 {
		info["end_time"] = run.EndTime
	}
	return info
}

func (s *Server) runJSON(run *Run) map[string]any {
	var tags, params []map[string]string
	for _, k := range sortedKeys(run.Tags) {
		tags = append(tags, map[string]string{"key": k, "value": run.Tags[k]})
	}
	for _, k := range sortedKeys(run.Params) {
		params = append(params, map[string]string{"key": k, "value": run.Params[k]})
	}
	var metrics []map[string]any
	for _, k := range sortedKeys(run.Metrics) {
		pts := run.Metrics[k]
		last := pts[len(pts)-1]
		metrics = append(metrics, map[string]any{"key": k, "value": last.Value, "timestamp": last.Timestamp, "step": last.Step})
	}
	return map[string]any{"info": s.runInfo(run), "data": map[string]any{"tags": tags, "params": params, "metrics": metrics}, "inputs": map[string]any{}}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var runStatuses = map[string]string{"1": "RUNNING", "2": "SCHEDULED", "3": "FINISHED", "4": "FAILED", "5": "KILLED",
	"RUNNING": "RUNNING", "SCHEDULED": "SCHEDULED", "FINISHED": "FINISHED", "FAILED": "FAILED", "KILLED": "KILLED"}

func (s *Server) createRun(_ *http.Request, body []byte, _ *Request) (any, *apiError) {
	m, err := decode("CreateRun", body, "experiment_id", "user_id", "run_name", "start_time", "tags")
	if err != nil {
		return nil, err
	}
	expID, err := m.str("experiment_id", false)
	if err != nil {
		return nil, err
	}
	if expID == "" {
		expID = "0"
	}
	exp := s.experiments[expID]
	if exp == nil {
		return nil, errf("RESOURCE_DOES_NOT_EXIST", "No Experiment with id=%s exists", expID)
	}
	if exp.LifecycleStage != "active" {
		return nil, errf("INVALID_PARAMETER_VALUE", "The experiment %s must be in the 'active' state. Current state is %s.", expID, exp.LifecycleStage)
	}
	if _, err := m.str("user_id", false); err != nil {
		return nil, err
	}
	name, err := m.str("run_name", false)
	if err != nil {
		return nil, err
	}
	start, ok, err := m.int64("start_time")
	if err != nil {
		return nil, err
	}
	if !ok {
		start = nowMillis()
	} else if err := checkMillis("start_time", start); err != nil {
		return nil, err
	}
	tags, err := m.kvs("tags")
	if err != nil {
		return nil, err
	}
	if err := validateTags(tags); err != nil {
		return nil, err
	}
	id := newID()
	run := &Run{ID: id, ExperimentID: expID, Name: name, Status: "RUNNING", StartTime: start,
		ArtifactURI: "mlflow-artifacts:/" + expID + "/" + id + "/artifacts",
		Params:      map[string]string{}, Tags: map[string]string{}, Metrics: map[string][]Point{}}
	for _, t := range tags {
		run.Tags[t[0]] = t[1]
	}
	if run.Name == "" {
		run.Name = run.Tags["mlflow.runName"]
	}
	s.runs[id] = run
	return map[string]any{"run": s.runJSON(run)}, nil
}

func (s *Server) updateRun(_ *http.Request, body []byte, _ *Request) (any, *apiError) {
	m, err := decode("UpdateRun", body, "run_id", "run_uuid", "status", "end_time", "run_name")
	if err != nil {
		return nil, err
	}
	id, err := m.str("run_id", false)
	if err != nil {
		return nil, err
	}
	if id == "" {
		if id, err = m.str("run_uuid", false); err != nil {
			return nil, err
		}
	}
	if id == "" {
		return nil, errf("INVALID_PARAMETER_VALUE", "Missing value for required parameter 'run_id'.")
	}
	run := s.runs[id]
	if run == nil {
		return nil, errf("RESOURCE_DOES_NOT_EXIST", "Run with id=%s not found", id)
	}
	if m.has("status") {
		raw := strings.Trim(string(m.fields["status"]), `"`)
		st, ok := runStatuses[raw]
		if !ok {
			return nil, errf("INVALID_PARAMETER_VALUE", "UpdateRun.status: invalid RunStatus %s", m.fields["status"])
		}
		run.Status = st
	}
	if end, ok, err := m.int64("end_time"); err != nil {
		return nil, err
	} else if ok {
		if err := checkMillis("end_time", end); err != nil {
			return nil, err
		}
		run.EndTime = end
	}
	name, err := m.str("run_name", false)
	if err != nil {
		return nil, err
	}
	if name != "" {
		run.Name = name
		run.Tags["mlflow.runName"] = name
	}
	return map[string]any{"run_info": s.runInfo(run)}, nil
}

func (s *Server) getRun(r *http.Request, _ []byte, _ *Request) (any, *apiError) {
	id := r.URL.Query().Get("run_id")
	if id == "" {
		id = r.URL.Query().Get("run_uuid")
	}
	if id == "" {
		return nil, errf("INVALID_PARAMETER_VALUE", "Missing value for required parameter 'run_id'.")
	}
	run := s.runs[id]
	if run == nil {
		return nil, errf("RESOURCE_DOES_NOT_EXIST", "Run with id=%s not found", id)
	}
	return map[string]any{"run": s.runJSON(run)}, nil
}

type metricIn struct {
	key              string
	value            float64
	timestamp, step  int64
	hasKey, hasValue bool
	hasTimestamp     bool
}

func (s *Server) logBatch(_ *http.Request, body []byte, req *Request) (any, *apiError) {
	if len(body) > MaxBatchBytes {
		return nil, errf("INVALID_PARAMETER_VALUE", "Batched logging API requests must be at most %d bytes, got a request of size %d.", MaxBatchBytes, len(body))
	}
	m, err := decode("LogBatch", body, "run_id", "metrics", "params", "tags")
	if err != nil {
		return nil, err
	}
	id, err := m.str("run_id", true)
	if err != nil {
		return nil, err
	}
	var metrics []metricIn
	if m.has("metrics") {
		var items []json.RawMessage
		if e := json.Unmarshal(m.fields["metrics"], &items); e != nil {
			return nil, errf("INVALID_PARAMETER_VALUE", "LogBatch.metrics: want a list")
		}
		for i, it := range items {
			sub, err := decode(fmt.Sprintf("LogBatch.metrics[%d]", i), it, "key", "value", "timestamp", "step", "dataset_name", "dataset_digest", "model_id", "run_id")
			if err != nil {
				return nil, err
			}
			var mi metricIn
			if mi.key, err = sub.str("key", false); err != nil {
				return nil, err
			}
			mi.hasKey = sub.has("key")
			if sub.has("value") {
				if mi.value, err = doubleValue(sub.name+".value", sub.fields["value"]); err != nil {
					return nil, err
				}
				mi.hasValue = true
			}
			if mi.timestamp, mi.hasTimestamp, err = sub.int64("timestamp"); err != nil {
				return nil, err
			}
			if mi.step, _, err = sub.int64("step"); err != nil {
				return nil, err
			}
			metrics = append(metrics, mi)
		}
	}
	params, err := m.kvs("params")
	if err != nil {
		return nil, err
	}
	tags, err := m.kvs("tags")
	if err != nil {
		return nil, err
	}
	req.Metrics, req.Params, req.Tags = len(metrics), len(params), len(tags)
	for _, e := range []*apiError{
		batchLimit("metrics", MaxMetricsPerBatch, len(metrics)),
		batchLimit("params", MaxParamsTagsBatch, len(params)),
		batchLimit("tags", MaxParamsTagsBatch, len(tags)),
		batchLimit("metrics, params, and tags", MaxEntitiesPerBatch, len(metrics)+len(params)+len(tags)),
	} {
		if e != nil {
			return nil, e
		}
	}
	run := s.runs[id]
	if run == nil {
		return nil, errf("RESOURCE_DOES_NOT_EXIST", "Run with id=%s not found", id)
	}
	for _, mi := range metrics {
		if !mi.hasKey {
			return nil, errf("INVALID_PARAMETER_VALUE", "Metric name cannot be None. A key name must be provided.")
		}
		if err := validateKey("metric", mi.key); err != nil {
			return nil, err
		}
		if !mi.hasValue {
			return nil, errf("INVALID_PARAMETER_VALUE", "Got invalid value None for metric '%s'. Please specify value as a valid double (64-bit floating point)", mi.key)
		}
		if !mi.hasTimestamp || mi.timestamp < 0 {
			return nil, errf("INVALID_PARAMETER_VALUE", "Got invalid timestamp for metric '%s'. Timestamp must be a nonnegative long (64-bit integer)", mi.key)
		}
		if err := checkMillis("metric timestamp", mi.timestamp); err != nil {
			return nil, err
		}
	}
	seen := map[string]bool{}
	for _, p := range params {
		if err := validateKey("parameter", p[0]); err != nil {
			return nil, err
		}
		if err := validateValue("Param", p[1], MaxParamValueLength); err != nil {
			return nil, err
		}
		if seen[p[0]] {
			return nil, errf("INVALID_PARAMETER_VALUE", "Duplicate parameter keys have been submitted: ['%s']. Please ensure the request contains only one param value per param key.", p[0])
		}
		seen[p[0]] = true
		if old, ok := run.Params[p[0]]; ok && old != p[1] {
			return nil, errf("INVALID_PARAMETER_VALUE", "Changing param values is not allowed. Param with key='%s' was already logged with value='%s' for run ID='%s'. Attempted logging new value '%s'.", p[0], old, id, p[1])
		}
	}
	if err := validateTags(tags); err != nil {
		return nil, err
	}
	for _, mi := range metrics {
		run.Metrics[mi.key] = append(run.Metrics[mi.key], Point{Value: mi.value, Timestamp: mi.timestamp, Step: mi.step})
	}
	for _, p := range params {
		run.Params[p[0]] = p[1]
	}
	for _, t := range tags {
		run.Tags[t[0]] = t[1]
	}
	return map[string]any{}, nil
}

func (s *Server) artifact(w http.ResponseWriter, r *http.Request, p string, body []byte) (any, *apiError) {
	if p == "" || strings.HasPrefix(p, "/") || path.Clean(p) != p || strings.Contains(p, "..") {
		return nil, errf("INVALID_PARAMETER_VALUE", "Invalid path: %q", p)
	}
	switch r.Method {
	case http.MethodPut:
		s.artifacts[p] = append([]byte(nil), body...)
		return map[string]any{}, nil
	case http.MethodGet:
		b, ok := s.artifacts[p]
		if !ok {
			return nil, errf("RESOURCE_DOES_NOT_EXIST", "artifact %s not found", p)
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(b)
		return nil, nil
	}
	return nil, errf("ENDPOINT_NOT_FOUND", "no endpoint %s %s", r.Method, r.URL.Path)
}

func (s *Server) createRegisteredModel(_ *http.Request, body []byte, _ *Request) (any, *apiError) {
	m, err := decode("CreateRegisteredModel", body, "name", "tags", "description")
	if err != nil {
		return nil, err
	}
	name, err := m.str("name", true)
	if err != nil {
		return nil, err
	}
	if _, err := m.kvs("tags"); err != nil {
		return nil, err
	}
	if _, err := m.str("description", false); err != nil {
		return nil, err
	}
	if s.models[name] != nil {
		return nil, errf("RESOURCE_ALREADY_EXISTS", "Registered Model (name=%s) already exists.", name)
	}
	s.models[name] = &Model{Name: name, Aliases: map[string]string{}}
	return map[string]any{"registered_model": map[string]any{"name": name, "creation_timestamp": nowMillis(), "last_updated_timestamp": nowMillis()}}, nil
}

func (s *Server) createModelVersion(_ *http.Request, body []byte, _ *Request) (any, *apiError) {
	m, err := decode("CreateModelVersion", body, "name", "source", "run_id", "tags", "run_link", "description")
	if err != nil {
		return nil, err
	}
	name, err := m.str("name", true)
	if err != nil {
		return nil, err
	}
	source, err := m.str("source", true)
	if err != nil {
		return nil, err
	}
	runID, err := m.str("run_id", false)
	if err != nil {
		return nil, err
	}
	tags, err := m.kvs("tags")
	if err != nil {
		return nil, err
	}
	for _, f := range []string{"run_link", "description"} {
		if _, err := m.str(f, false); err != nil {
			return nil, err
		}
	}
	model := s.models[name]
	if model == nil {
		return nil, errf("RESOURCE_DOES_NOT_EXIST", "Registered Model with name=%s not found", name)
	}
	if runID != "" {
		run := s.runs[runID]
		if run == nil {
			return nil, errf("RESOURCE_DOES_NOT_EXIST", "Run with id=%s not found", runID)
		}
		if !strings.HasPrefix(source, run.ArtifactURI+"/") && !strings.HasPrefix(source, "runs:/"+runID+"/") {
			return nil, errf("INVALID_PARAMETER_VALUE", "Invalid model version source: '%s'. To use a local path as a model version source, the run_id request parameter has to be specified and the local path has to be contained within the artifact directory of the run specified by the run_id.", source)
		}
	}
	if rest, ok := strings.CutPrefix(source, "mlflow-artifacts:/"); ok {
		found := false
		for p := range s.artifacts {
			if strings.HasPrefix(p, strings.TrimPrefix(rest, "/")+"/") {
				found = true
			}
		}
		if !found {
			return nil, errf("INVALID_PARAMETER_VALUE", "model version source %s holds no artifacts", source)
		}
	}
	v := Version{Version: strconv.Itoa(len(model.Versions) + 1), Source: source, RunID: runID, Tags: map[string]string{}}
	for _, t := range tags {
		v.Tags[t[0]] = t[1]
	}
	model.Versions = append(model.Versions, v)
	return map[string]any{"model_version": map[string]any{"name": name, "version": v.Version, "source": source, "run_id": runID,
		"status": "READY", "current_stage": "None", "creation_timestamp": nowMillis(), "last_updated_timestamp": nowMillis()}}, nil
}

var aliasRE = regexp.MustCompile(`^[\w\-]*$`)
var versionAliasRE = regexp.MustCompile(`^[vV]\d+$`)

func (s *Server) setAlias(_ *http.Request, body []byte, _ *Request) (any, *apiError) {
	m, err := decode("SetRegisteredModelAlias", body, "name", "alias", "version")
	if err != nil {
		return nil, err
	}
	name, err := m.str("name", true)
	if err != nil {
		return nil, err
	}
	alias, err := m.str("alias", true)
	if err != nil {
		return nil, err
	}
	version, err := m.str("version", true)
	if err != nil {
		return nil, err
	}
	switch {
	case !aliasRE.MatchString(alias):
		return nil, errf("INVALID_PARAMETER_VALUE", "Invalid alias name: '%s'. Names may only contain alphanumerics, underscores (_), and dashes (-).", alias)
	case len(alias) > MaxAliasLength:
		return nil, errf("INVALID_PARAMETER_VALUE", "Registered model alias name had length %d, which exceeded length limit of %d", len(alias), MaxAliasLength)
	case strings.EqualFold(alias, "latest"):
		return nil, errf("INVALID_PARAMETER_VALUE", "'latest' alias name (case insensitive) is reserved.")
	case versionAliasRE.MatchString(alias):
		return nil, errf("INVALID_PARAMETER_VALUE", "Version alias name '%s' is reserved.", alias)
	}
	if _, err := strconv.Atoi(version); err != nil {
		return nil, errf("INVALID_PARAMETER_VALUE", "Model version must be an integer, got '%s'", version)
	}
	model := s.models[name]
	if model == nil {
		return nil, errf("RESOURCE_DOES_NOT_EXIST", "Registered Model with name=%s not found", name)
	}
	found := false
	for _, v := range model.Versions {
		if v.Version == version {
			found = true
		}
	}
	if !found {
		return nil, errf("RESOURCE_DOES_NOT_EXIST", "Model Version (name=%s, version=%s) not found", name, version)
	}
	model.Aliases[alias] = version
	return map[string]any{}, nil
}
