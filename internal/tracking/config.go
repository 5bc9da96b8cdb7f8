// Package tracking records a pipeline run and mirrors it to MLflow.
//
// The run record (run.json in the run directory) is always written and is the
// source of truth: a Recorder updates it atomically as stages progress. When
// tracking.uri (or MLFLOW_TRACKING_URI) names an MLflow server, the Recorder
// also mirrors the run there through MLflow's REST API 2.0. A tracking outage
// never fails the run: the Recorder keeps the local record, warns once, and
// notes in run.json what was not mirrored; Sync replays it later.
package tracking

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/modax/modax-ml/internal/duration"
	"github.com/modax/modax-ml/internal/exitcode"
)

// MLflow's environment variables, read when the config leaves the setting empty.
const (
	EnvTrackingURI      = "MLFLOW_TRACKING_URI"
	EnvExperimentName   = "MLFLOW_EXPERIMENT_NAME"
	EnvTrackingUsername = "MLFLOW_TRACKING_USERNAME"
	EnvTrackingPassword = "MLFLOW_TRACKING_PASSWORD"
	EnvTrackingToken    = "MLFLOW_TRACKING_TOKEN"
)

// Config is the `tracking` section of the configuration.
type Config struct {
	// URI of an MLflow tracking server (http or https). Empty: MLFLOW_TRACKING_URI;
	// both empty: the run is recorded locally only.
	URI string `yaml:"uri"`
	// Experiment the runs are filed under (created when missing). Empty:
	// MLFLOW_EXPERIMENT_NAME, else "modax-ml".
	Experiment string `yaml:"experiment"`
	// RegisteredModel is the model registry name a deployed model is registered under.
	RegisteredModel string `yaml:"registered_model"`
	// Alias is set on the registered model version of each deployed model.
	Alias string `yaml:"alias"`
	// Timeout bounds each HTTP request (one attempt).
	Timeout duration.Duration `yaml:"timeout"`
	// MaxRetries is how often a request is retried on 429, 5xx and network
	// errors, with exponential backoff and jitter (Retry-After is honoured).
	MaxRetries int `yaml:"max_retries"`
	// RunsDir holds one directory per run (runs/<run-id>/run.json).
	RunsDir string `yaml:"runs_dir"`
}

// DefaultExperiment is the experiment name used when none is configured.
const DefaultExperiment = "modax-ml"

// DefaultConfig returns the defaults: no server, experiment "modax-ml",
// registered model "rul_predictor" with alias "champion", 30 s per request,
// 5 retries, runs under "runs".
func DefaultConfig() Config {
	return Config{
		RegisteredModel: "rul_predictor",
		Alias:           "champion",
		Timeout:         duration.Duration(30 * time.Second),
		MaxRetries:      5,
		RunsDir:         "runs",
	}
}

// Resolved is a Config with the MLflow environment applied and checked.
type Resolved struct {
	Config
	// Base is the server URL without credentials; nil when tracking is off.
	Base *url.URL
	// Source says where the URI came from ("tracking.uri" or "MLFLOW_TRACKING_URI").
	Source string
	auth   auth
}

// Enabled reports whether runs are mirrored to a server.
func (r *Resolved) Enabled() bool { return r != nil && r.Base != nil }

// AuthKind is "basic", "bearer" or "" (none); for messages and tests.
func (r *Resolved) AuthKind() string { return r.auth.kind() }

// Resolve applies the MLflow environment variables (getenv, os.Getenv when nil)
// to c: the URI and experiment name when the config leaves them empty, and the
// credentials (MLFLOW_TRACKING_USERNAME/PASSWORD for basic auth, else
// MLFLOW_TRACKING_TOKEN for a bearer token, as MLflow's own client does).
// A URI that is not http(s) is a usage error when it comes from the config;
// from MLFLOW_TRACKING_URI (often set for Python's file store) it disables the
// mirror with ok=false so the caller can warn.
func (c Config) Resolve(getenv func(string) string) (res *Resolved, err error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	res = &Resolved{Config: c}
	if res.Experiment == "" {
		res.Experiment = getenv(EnvExperimentName)
	}
	if res.Experiment == "" {
		res.Experiment = DefaultExperiment
	}
	if res.Timeout == 0 {
		res.Timeout = DefaultConfig().Timeout
	}
	if res.Timeout < 0 {
		return nil, fmt.Errorf("%w: tracking.timeout %s: must be positive", exitcode.ErrUsage, res.Timeout)
	}
	if res.MaxRetries < 0 {
		return nil, fmt.Errorf("%w: tracking.max_retries %d: must be >= 0", exitcode.ErrUsage, res.MaxRetries)
	}
	uri, source := strings.TrimSpace(c.URI), "tracking.uri"
	if uri == "" {
		uri, source = strings.TrimSpace(getenv(EnvTrackingURI)), EnvTrackingURI
	}
	if uri == "" {
		return res, nil
	}
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &SchemeError{URI: RedactURI(uri), Source: source}
	}
	var a auth
	if u.User != nil {
		pw, _ := u.User.Password()
		a = auth{user: u.User.Username(), password: pw}
		u.User = nil
	}
	if user, pw := getenv(EnvTrackingUsername), getenv(EnvTrackingPassword); user != "" && pw != "" {
		a = auth{user: user, password: pw}
	} else if tok := getenv(EnvTrackingToken); tok != "" && a.user == "" {
		a = auth{token: tok}
	}
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimRight(u.Path, "/")
	res.Base, res.Source, res.auth = u, source, a
	return res, nil
}

// SchemeError is a tracking URI that does not name an http(s) MLflow server.
type SchemeError struct {
	URI, Source string
}

func (e *SchemeError) Error() string {
	return fmt.Sprintf("%s %q: want the http(s) URL of an MLflow tracking server (file stores and databricks URIs are not supported)", e.Source, e.URI)
}

// Unwrap makes a URI named in the config a usage error; one from
// MLFLOW_TRACKING_URI is not (the caller warns and records locally).
func (e *SchemeError) Unwrap() error {
	if e.Source == EnvTrackingURI {
		return nil
	}
	return exitcode.ErrUsage
}

// RedactURI hides the password in a URI's user info, for logs and run.json.
func RedactURI(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "<unparseable URI redacted>"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	return u.String()
}

type auth struct {
	user, password, token string
}

func (a auth) kind() string {
	switch {
	case a.user != "":
		return "basic"
	case a.token != "":
		return "bearer"
	}
	return ""
}
