package evaluate

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/modax/modax-ml/internal/conformal"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/location"
)

// MetricsSchema is the schema name of metrics.json.
const MetricsSchema = "modax.metrics/v1"

// FileRef names a file with its content hash.
type FileRef struct {
	Path         string `json:"path"`
	SHA256       string `json:"sha256"`
	ModelVersion string `json:"model_version,omitempty"`
}

// Metrics is the content of metrics.json (CONTRACTS.md): the keys
// splits.<split>.mae|rmse|score|n and model.sha256 are read by deploy and
// monitor. Undefined values are null.
type Metrics struct {
	Schema      string `json:"schema"`
	CreatedAt   string `json:"created_at"`
	RunID       string `json:"run_id,omitempty"`
	ToolVersion string `json:"tool_version,omitempty"`
	// Model is the checkpoint that made the predictions (null when unknown).
	Model       *FileRef `json:"model"`
	Predictions *FileRef `json:"predictions"`
	Windows     *FileRef `json:"windows"`

	Thresholds             dataset.Thresholds `json:"thresholds"`
	HorizonHours           Float              `json:"horizon_hours"`
	CriticalToleranceHours float64            `json:"critical_tolerance_hours"`

	// Calibration is the model's interval calibration the coverage was
	// measured with (null: none; intervals then come from the predictions
	// file's columns, if any).
	Calibration *conformal.Calibration `json:"interval_calibration"`

	Splits    map[string]*SplitMetrics `json:"splits"`
	PerDevice []DeviceMetrics          `json:"per_device"`
	// FeatureImportance is the permutation importance of the model's input
	// features (null: not computed).
	FeatureImportance *Importance `json:"feature_importance"`
	// Definitions says what each metric means, so the file reads on its own.
	Definitions map[string]string `json:"definitions"`
}

// Definitions of the metrics as written to metrics.json.
var Definitions = map[string]string{
	"n":                    "samples with a known true RUL",
	"mae":                  "mean |pred - true| in hours, true = RUL capped at the horizon (what the model was trained on)",
	"rmse":                 "sqrt(mean (pred - true)^2) in hours, capped truth",
	"r2":                   "1 - SS_res/SS_tot; null when the truth is constant (SS_tot = 0)",
	"bias":                 "mean(pred - true); > 0 means too much life predicted on average",
	"score":                "PHM08 asymmetric score: sum of exp(-d/13)-1 for d < 0 and exp(d/10)-1 for d >= 0, d = pred - true, true = RUL capped at the horizon (the score against the truth clipped at the cap, as FFVE computes it on C-MAPSS; the C-MAPSS line's score_clipped; score_raw is the unclipped one); a sum, so only comparable over the same samples",
	"score_mean":           "score / n",
	"early_rate":           "share of predictions with pred < true (failure expected before it happens; the safe side). The design's code called pred > true 'early': that is the late case",
	"late_rate":            "share of predictions with pred > true (the failure comes before the model expects it)",
	"exact_rate":           "share with pred == true",
	"*_raw":                "the same against the raw (uncapped) RUL, on the n_raw samples where it is known (not censored)",
	"critical_accuracy":    "of the critical_n samples with true RUL < thresholds.critical_hours, the share with |pred - true| < critical_tolerance_hours; null when critical_n = 0",
	"classification":       "health classes from the thresholds applied to true and predicted RUL (critical < critical_hours <= warning < warning_hours <= normal); confusion rows = true class, columns = predicted class, in the order of labels; precision/recall that divide by zero are 0 (scikit-learn's zero_division=0)",
	"rul_buckets":          "the error by bucket of true RUL (capped): [0,10), [10,25), [25,50), [50,cap) and =cap hours, cap = horizon_hours (uncapped: [50,inf) and no =cap bucket); per bucket n, mae, rmse and bias (mean pred - true) over the windows whose true RUL lies in [lo_hours, hi_hours) (at_cap: equals the cap); empty buckets have n = 0 and null metrics",
	"alerts":               "critical alerts (a window with predicted RUL < thresholds.critical_hours): failing_lives = lives whose windows reach true raw RUL < critical_hours; lead time = true raw RUL at the life's first alert raised while the true RUL was < warning_hours (per_life; null = never alerted), mean/median/min over the alerted lives; never_alerted_share = never_alerted / failing_lives; false_alarms = alert onsets (an alert window after a non-alert one, or first in its life) while the true class is normal, over all lives; device_days = the days the lives' windows span; false_alarms_per_device_day = false_alarms / device_days",
	"per_device":           "the same regression metrics per device and split, with the device's last labelled window",
	"intervals":            "per interval level: of the n windows with a known true RUL (capped), the covered ones have it inside [rul_lower, rul_upper]; coverage = covered / n (compare with level, the nominal coverage), mean_width = mean(rul_upper - rul_lower) in hours; buckets: the same per Mondrian bucket of predicted RUL [lo_hours, hi_hours) of interval_calibration",
	"feature_importance":   "permutation importance on feature_importance.split: per input feature, the increase in RMSE (hours, capped truth) over baseline_rmse when the feature's values are permuted across the windows (a window takes all its time steps of that feature from one other window), rmse_increase per repeat (seeded), its mean and sample std; about 0: the model does not use the feature; null when not computed (no model or windows, or --importance-repeats 0)",
	"interval_calibration": "the model's split-conformal calibration (levels, buckets of predicted RUL and their radii; a null radius is unbounded) the intervals were computed with; null when the model has none",
}

// ReadMetrics reads a metrics.json file and checks its schema.
func ReadMetrics(path string) (*Metrics, error) {
	b, err := location.ReadFile(context.Background(), path)
	if err != nil {
		return nil, fmt.Errorf("read metrics %s: %w", path, err)
	}
	var m Metrics
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read metrics %s: %w", path, err)
	}
	if m.Schema != MetricsSchema {
		return nil, fmt.Errorf("read metrics %s: schema %q, want %q", path, m.Schema, MetricsSchema)
	}
	return &m, nil
}

// Marshal renders m as indented JSON with a trailing newline.
func (m *Metrics) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode metrics: %w", err)
	}
	return append(b, '\n'), nil
}
