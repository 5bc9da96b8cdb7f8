package sweep

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/suggest"
	"github.com/modax/modax-ml/train"
)

// Methods of a space.
const (
	MethodGrid   = "grid"
	MethodRandom = "random"
)

// Metrics a sweep may choose on: validation metrics only.
const (
	MetricValRMSE = "val_rmse"
	MetricValLoss = "val_loss"
)

// Space is a parsed SPACE.yaml: how trials are drawn and what they vary.
type Space struct {
	Method string `json:"method"`
	// Trials is the number of random trials (grid: the grid's size).
	Trials int    `json:"trials"`
	Seed   int64  `json:"seed"`
	Metric string `json:"metric"`
	// Prune is nil without pruning.
	Prune *Prune `json:"prune,omitempty"`
	// Params are sorted by key.
	Params []Param `json:"params"`
}

// Prune configures ASHA (asynchronous successive halving) on the metric.
type Prune struct {
	Method          string `json:"method"`
	MinEpochs       int    `json:"min_epochs"`
	ReductionFactor int    `json:"reduction_factor"`
	MaxEpochs       int    `json:"max_epochs"`
}

// Rungs are the epochs a trial's metric is compared at: min_epochs ×
// reduction_factor^k below max_epochs.
func (p *Prune) Rungs() []int {
	if p == nil {
		return nil
	}
	var out []int
	for r := p.MinEpochs; r < p.MaxEpochs; r *= p.ReductionFactor {
		out = append(out, r)
	}
	return out
}

// Param is one swept config key: a choice among Values, or a uniform range
// [Min, Max] (integers when Int, log-uniform when Log).
type Param struct {
	Key    string  `json:"key"`
	Values []any   `json:"values,omitempty"`
	Min    float64 `json:"min,omitempty"`
	Max    float64 `json:"max,omitempty"`
	Int    bool    `json:"int,omitempty"`
	Log    bool    `json:"log,omitempty"`
}

// IsRange reports whether p is a range (not a choice).
func (p Param) IsRange() bool { return p.Values == nil }

// Type is the Parquet type of the parameter's column (dataset.SweepParam).
func (p Param) Type() string {
	if p.IsRange() {
		if p.Int {
			return "int64"
		}
		return "float64"
	}
	allInt, allNum, allBool := true, true, true
	for _, v := range p.Values {
		switch v.(type) {
		case int64:
			allBool = false
		case float64:
			allInt, allBool = false, false
		case bool:
			allInt, allNum = false, false
		default:
			allInt, allNum, allBool = false, false, false
		}
	}
	switch {
	case allInt:
		return "int64"
	case allNum:
		return "float64"
	case allBool:
		return "bool"
	}
	return "string"
}

// Column is v as the Go value of the parameter's column type.
func (p Param) Column(v any) any {
	switch p.Type() {
	case "int64":
		if f, ok := v.(float64); ok {
			return int64(f)
		}
		return v
	case "float64":
		if i, ok := v.(int64); ok {
			return float64(i)
		}
		return v
	case "bool":
		return v
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// notSwept are the train keys a space may not vary, and why.
var notSwept = map[string]string{
	"windows":         "it names a file: every trial trains on the same windows",
	"stats":           "it names a file of --model ridge",
	"out":             "it names a file: trials write no checkpoint",
	"resume":          "it names a file: trials start from scratch",
	"model":           "the sweep trains the lstm",
	"ridge_alpha":     "it applies to --model ridge",
	"val_split":       "the sweep chooses on the val split, always",
	"refit":           "a refit trains on the val windows the sweep chooses on; refit the chosen config afterwards",
	"interval_levels": "intervals are calibrated after training and do not change the metric",
	"model_version":   "it names the model and does not change the metric",
	"workers":         "results depend on it: set train.workers outside the space (one value for every trial)",
}

// SweptKeys are the train keys a space may vary, as "train.<key>".
func SweptKeys() []string {
	var out []string
	for k := range trainKeys() {
		if _, no := notSwept[k]; !no {
			out = append(out, "train."+k)
		}
	}
	slices.Sort(out)
	return out
}

func trainKeys() map[string]any {
	b, _ := yaml.Marshal(train.DefaultOptions())
	m := map[string]any{}
	_ = yaml.Unmarshal(b, &m)
	return m
}

func didYouMean(word string, candidates []string) string {
	if s := suggest.Closest(word, candidates); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

// ParseSpace reads a space file's YAML (named path in errors) for sweeps
// over base (the train config the trials start from). Errors are usage
// errors (exit 2) naming the key.
func ParseSpace(path string, data []byte, base train.Options) (*Space, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: sweep: %s: %s", exitcode.ErrUsage, path, fmt.Sprintf(format, args...))
	}
	var raw map[string]yaml.Node
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, bad("%v", err)
	}
	if raw == nil {
		return nil, bad("empty space: want method and params")
	}
	top := []string{"method", "trials", "seed", "metric", "prune", "params"}
	for k := range raw {
		if !slices.Contains(top, k) {
			return nil, bad("unknown key %q%s; a space has %s", k, didYouMean(k, top), strings.Join(top, ", "))
		}
	}
	s := &Space{Method: MethodGrid, Metric: MetricValRMSE}
	decode := func(key string, into any) error {
		n, ok := raw[key]
		if !ok {
			return nil
		}
		if err := n.Decode(into); err != nil {
			return bad("%s: %v", key, err)
		}
		return nil
	}
	for _, f := range []struct {
		key  string
		into any
	}{{"method", &s.Method}, {"trials", &s.Trials}, {"seed", &s.Seed}, {"metric", &s.Metric}} {
		if err := decode(f.key, f.into); err != nil {
			return nil, err
		}
	}
	switch s.Method {
	case MethodGrid:
		if _, ok := raw["trials"]; ok {
			return nil, bad("trials: applies to method random (a grid runs every combination)")
		}
	case MethodRandom:
		if s.Trials < 1 {
			return nil, bad("trials: method random needs trials ≥ 1, got %d", s.Trials)
		}
	default:
		return nil, bad("method %q: want grid or random%s", s.Method, didYouMean(s.Method, []string{MethodGrid, MethodRandom}))
	}
	switch {
	case s.Metric == MetricValRMSE || s.Metric == MetricValLoss:
	case strings.HasPrefix(s.Metric, "test"):
		return nil, bad("metric %q: refused: a sweep chooses on validation only (val_rmse or val_loss); the test split is for the final evaluation", s.Metric)
	default:
		return nil, bad("metric %q: want val_rmse or val_loss%s", s.Metric, didYouMean(s.Metric, []string{MetricValRMSE, MetricValLoss}))
	}
	if n, ok := raw["prune"]; ok {
		p, err := parsePrune(&n, base, bad)
		if err != nil {
			return nil, err
		}
		s.Prune = p
	}
	pn, ok := raw["params"]
	if !ok {
		return nil, bad("params: missing (the config keys to vary, e.g. train.lr: {min: 1e-4, max: 1e-2, log: true})")
	}
	var params map[string]yaml.Node
	if err := pn.Decode(&params); err != nil {
		return nil, bad("params: %v", err)
	}
	if len(params) == 0 {
		return nil, bad("params: empty")
	}
	swept := SweptKeys()
	known := trainKeys()
	seen := map[string]string{}
	for key, node := range params {
		k := strings.ToLower(strings.TrimSpace(key))
		name := strings.TrimPrefix(k, "train.")
		if _, ok := known[name]; !ok {
			return nil, bad("params: unknown key %q%s", key, didYouMean("train."+name, swept))
		}
		if why, no := notSwept[name]; no {
			return nil, bad("params: %s cannot be swept: %s", key, why)
		}
		if name == "epochs" && s.Prune != nil {
			return nil, bad("params: train.epochs cannot be swept with pruning: prune.max_epochs sets every trial's epochs")
		}
		full := "train." + name
		if prev, dup := seen[full]; dup {
			return nil, bad("params: %s and %s are the same key", prev, key)
		}
		seen[full] = key
		p, err := parseParam(full, &node, bad)
		if err != nil {
			return nil, err
		}
		if s.Method == MethodGrid && p.IsRange() {
			return nil, bad("params: %s: a grid needs values: [...] (a range has no grid points; use method: random)", full)
		}
		s.Params = append(s.Params, p)
	}
	slices.SortFunc(s.Params, func(a, b Param) int { return strings.Compare(a.Key, b.Key) })
	// Every value of every parameter must make valid train options.
	for _, p := range s.Params {
		var vals []any
		if p.IsRange() {
			vals = []any{p.Min, p.Max}
			if p.Int {
				vals = []any{int64(p.Min), int64(p.Max)}
			}
		} else {
			vals = p.Values
		}
		for _, v := range vals {
			o, err := Apply(base, s, []any{v}, p.Key)
			if err == nil {
				err = o.Validate()
			}
			if err != nil {
				return nil, bad("params: %s: value %v: %v", p.Key, v, strings.TrimPrefix(err.Error(), exitcode.ErrUsage.Error()+": "))
			}
		}
	}
	if s.Method == MethodGrid {
		n := 1
		for _, p := range s.Params {
			n *= len(p.Values)
			if n > maxTrials {
				return nil, bad("params: the grid has more than %d combinations", maxTrials)
			}
		}
		s.Trials = n
	} else if s.Trials > maxTrials {
		return nil, bad("trials %d > %d", s.Trials, maxTrials)
	}
	return s, nil
}

// maxTrials bounds a sweep's size.
const maxTrials = 100000

func parsePrune(n *yaml.Node, base train.Options, bad func(string, ...any) error) (*Prune, error) {
	if n.Kind == yaml.ScalarNode && (n.Value == "none" || n.Value == "") {
		return nil, nil
	}
	var m map[string]yaml.Node
	if err := n.Decode(&m); err != nil {
		return nil, bad("prune: want none or {method: asha, min_epochs, reduction_factor, max_epochs}: %v", err)
	}
	keys := []string{"method", "min_epochs", "reduction_factor", "max_epochs"}
	p := &Prune{Method: "asha", MinEpochs: 1, ReductionFactor: 3, MaxEpochs: base.Epochs}
	into := map[string]any{"method": &p.Method, "min_epochs": &p.MinEpochs, "reduction_factor": &p.ReductionFactor, "max_epochs": &p.MaxEpochs}
	for k, v := range m {
		dst, ok := into[k]
		if !ok {
			return nil, bad("prune: unknown key %q%s", k, didYouMean(k, keys))
		}
		if err := v.Decode(dst); err != nil {
			return nil, bad("prune.%s: %v", k, err)
		}
	}
	switch {
	case p.Method == "none":
		return nil, nil
	case p.Method != "asha":
		return nil, bad("prune.method %q: want asha or none", p.Method)
	case p.MinEpochs < 1:
		return nil, bad("prune.min_epochs %d < 1", p.MinEpochs)
	case p.ReductionFactor < 2:
		return nil, bad("prune.reduction_factor %d < 2", p.ReductionFactor)
	case p.MaxEpochs <= p.MinEpochs:
		return nil, bad("prune.max_epochs %d must be above prune.min_epochs %d", p.MaxEpochs, p.MinEpochs)
	}
	return p, nil
}

func parseParam(key string, n *yaml.Node, bad func(string, ...any) error) (Param, error) {
	var m map[string]yaml.Node
	if err := n.Decode(&m); err != nil {
		return Param{}, bad("params: %s: want {values: [...]} or {min, max} (log: true for a log range)", key)
	}
	keys := []string{"values", "min", "max", "log"}
	for k := range m {
		if !slices.Contains(keys, k) {
			return Param{}, bad("params: %s: unknown key %q%s", key, k, didYouMean(k, keys))
		}
	}
	p := Param{Key: key}
	if vn, ok := m["values"]; ok {
		if len(m) > 1 {
			return Param{}, bad("params: %s: values cannot be combined with min, max or log", key)
		}
		var vals []any
		if err := vn.Decode(&vals); err != nil {
			return Param{}, bad("params: %s: values: want a list: %v", key, err)
		}
		if len(vals) == 0 {
			return Param{}, bad("params: %s: values is empty", key)
		}
		for i, v := range vals {
			switch x := v.(type) {
			case int:
				vals[i] = int64(x)
			case int64, float64, bool, string:
			default:
				return Param{}, bad("params: %s: values[%d] %v: want a number, a bool or a string", key, i, v)
			}
		}
		p.Values = vals
		return p, nil
	}
	mn, okMin := m["min"]
	mx, okMax := m["max"]
	if !okMin || !okMax {
		return Param{}, bad("params: %s: a range needs min and max (or give values: [...])", key)
	}
	if ln, ok := m["log"]; ok {
		if err := ln.Decode(&p.Log); err != nil {
			return Param{}, bad("params: %s: log: %v", key, err)
		}
	}
	for _, f := range []struct {
		name string
		n    yaml.Node
		dst  *float64
	}{{"min", mn, &p.Min}, {"max", mx, &p.Max}} {
		if err := f.n.Decode(f.dst); err != nil || math.IsNaN(*f.dst) || math.IsInf(*f.dst, 0) {
			return Param{}, bad("params: %s: %s %q: want a finite number", key, f.name, f.n.Value)
		}
	}
	p.Int = isInt(&mn) && isInt(&mx)
	switch {
	case p.Min > p.Max:
		return Param{}, bad("params: %s: min %v > max %v", key, p.Min, p.Max)
	case p.Log && p.Min <= 0:
		return Param{}, bad("params: %s: a log range needs min > 0, got %v", key, p.Min)
	}
	return p, nil
}

func isInt(n *yaml.Node) bool {
	var i int64
	return n.Tag == "!!int" && n.Decode(&i) == nil
}

// Trial is one point of the space.
type Trial struct {
	ID int `json:"trial"`
	// Values are the parameters' values, in the order of Space.Params.
	Values []any `json:"values"`
}

// Enumerate lists the trials of the space: the grid's combinations (the last
// parameter varying fastest), or the random draws, trial i drawn from its
// own stream seeded by (seed, i) so that a trial's values depend on nothing
// else.
func (s *Space) Enumerate() []Trial {
	out := make([]Trial, s.Trials)
	for i := range out {
		out[i] = Trial{ID: i, Values: s.trial(i)}
	}
	return out
}

func (s *Space) trial(i int) []any {
	vals := make([]any, len(s.Params))
	if s.Method == MethodGrid {
		rest := i
		for j := len(s.Params) - 1; j >= 0; j-- {
			n := len(s.Params[j].Values)
			vals[j] = s.Params[j].Values[rest%n]
			rest /= n
		}
		return vals
	}
	rng := rand.New(rand.NewPCG(uint64(s.Seed), uint64(i)))
	for j, p := range s.Params {
		switch {
		case !p.IsRange():
			vals[j] = p.Values[rng.IntN(len(p.Values))]
		case p.Int && p.Log:
			lo, hi := math.Log(p.Min), math.Log(p.Max+1)
			v := int64(math.Floor(math.Exp(lo + rng.Float64()*(hi-lo))))
			vals[j] = min(max(v, int64(p.Min)), int64(p.Max))
		case p.Int:
			vals[j] = int64(p.Min) + rng.Int64N(int64(p.Max)-int64(p.Min)+1)
		case p.Log:
			lo, hi := math.Log(p.Min), math.Log(p.Max)
			vals[j] = math.Exp(lo + rng.Float64()*(hi-lo))
		default:
			vals[j] = p.Min + rng.Float64()*(p.Max-p.Min)
		}
	}
	return vals
}

// Apply returns base with the parameters keys (all of s's when keys is
// empty) set to vals, through the options' YAML form as --set does; with
// pruning, epochs is prune.max_epochs.
func Apply(base train.Options, s *Space, vals []any, keys ...string) (train.Options, error) {
	if len(keys) == 0 {
		for _, p := range s.Params {
			keys = append(keys, p.Key)
		}
	}
	if len(keys) != len(vals) {
		return base, fmt.Errorf("sweep: %d values for %d parameters", len(vals), len(keys))
	}
	if s.Prune != nil {
		base.Epochs = s.Prune.MaxEpochs
	}
	b, err := yaml.Marshal(base)
	if err != nil {
		return base, err
	}
	m := map[string]any{}
	if err := yaml.Unmarshal(b, &m); err != nil {
		return base, err
	}
	kinds := fieldKinds()
	for i, k := range keys {
		name := strings.TrimPrefix(k, "train.")
		if f, ok := vals[i].(float64); ok && kinds[name] == reflect.Int && f != math.Trunc(f) {
			return base, fmt.Errorf("%w: %s takes a whole number, not %v", exitcode.ErrUsage, k, f)
		}
		m[name] = vals[i]
	}
	if b, err = yaml.Marshal(m); err != nil {
		return base, err
	}
	var o train.Options
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&o); err != nil {
		return base, fmt.Errorf("%w: %w", exitcode.ErrUsage, err)
	}
	return o, nil
}

// fieldKinds maps the train options' YAML keys to their kinds (ints:
// reflect.Int), since YAML would truncate 8.5 into an int field silently.
func fieldKinds() map[string]reflect.Kind {
	out := map[string]reflect.Kind{}
	t := reflect.TypeFor[train.Options]()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		k := f.Type.Kind()
		if k >= reflect.Int && k <= reflect.Int64 {
			k = reflect.Int
		}
		out[name] = k
	}
	return out
}

// canonical is s as JSON (the part of a sweep's identity that is its space).
func (s *Space) canonical() []byte {
	b, _ := json.Marshal(s)
	return b
}
