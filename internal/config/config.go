// Package config is the typed configuration of modax-ml: every key, its
// default, and the YAML form. Loading it (flags > MODAX_* environment > YAML
// file > defaults) is the command layer's job; this package has no viper.
package config

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/modax/modax-ml/collect"
	"github.com/modax/modax-ml/deploy"
	"github.com/modax/modax-ml/evaluate"
	"github.com/modax/modax-ml/export"
	"github.com/modax/modax-ml/features"
	"github.com/modax/modax-ml/internal/pg"
	"github.com/modax/modax-ml/internal/tracking"
	"github.com/modax/modax-ml/label"
	"github.com/modax/modax-ml/monitor"
	"github.com/modax/modax-ml/predict"
	"github.com/modax/modax-ml/score"
	"github.com/modax/modax-ml/train"
	"github.com/modax/modax-ml/validate"
)

// Config is the whole configuration. Each stage's section is that stage's
// Options, so the YAML keys and the flags name the same things.
type Config struct {
	// Dir is the working directory that default file names are relative to.
	Dir string `yaml:"dir"`
	// Seed is the default seed of every stage that takes one (SeedKeys); a
	// stage's own seed key, when set, wins.
	Seed   int64     `yaml:"seed"`
	RunID  string    `yaml:"run_id"`
	Log    Log       `yaml:"log"`
	Output string    `yaml:"output"`
	Quiet  bool      `yaml:"quiet"`
	DB     pg.Config `yaml:"db"`

	Collect  collect.Options  `yaml:"collect"`
	Validate validate.Options `yaml:"validate"`
	Label    label.Options    `yaml:"label"`
	Features features.Options `yaml:"features"`
	Predict  predict.Options  `yaml:"predict"`
	Evaluate evaluate.Options `yaml:"evaluate"`
	Tracking tracking.Config  `yaml:"tracking"`
	Train    train.Options    `yaml:"train"`
	Export   export.Options   `yaml:"export"`
	Deploy   deploy.Options   `yaml:"deploy"`
	Pipeline Pipeline         `yaml:"pipeline"`
	Monitor  monitor.Options  `yaml:"monitor"`
	Score    score.Options    `yaml:"score"`
}

// Pipeline configures `pipeline run` (the stages have their own sections).
type Pipeline struct {
	// Name is the run's name (MLflow's run name); default the run id.
	Name string `yaml:"name"`
	// Cache reuses the outputs of a stage whose options, inputs and tool
	// version are unchanged (false: every stage runs).
	Cache bool `yaml:"cache"`
	// CacheDir is the content-addressed store of stage outputs, relative to
	// the working directory.
	CacheDir string `yaml:"cache_dir"`
}

// Log configures logging.
type Log struct {
	Format string `yaml:"format"` // auto, text or json
	Level  string `yaml:"level"`  // debug, info, warn, error
}

// Default returns the configuration with every key at its default.
func Default() Config {
	return Config{
		Dir:    ".",
		Seed:   42,
		Log:    Log{Format: "auto", Level: "info"},
		Output: "text",
		DB:     pg.DefaultConfig(),

		Predict:  predict.DefaultOptions(),
		Evaluate: evaluate.DefaultOptions(),
		Collect:  collect.DefaultOptions(),
		Tracking: tracking.DefaultConfig(),
		Validate: validate.DefaultOptions(),
		Label:    label.DefaultOptions(),
		Train:    train.DefaultOptions(),
		Export:   export.DefaultOptions(),
		Deploy:   deploy.DefaultOptions(),
		Features: features.DefaultOptions(),
		Pipeline: Pipeline{Cache: true, CacheDir: ".modax/cache"},
		Monitor:  monitor.DefaultOptions(),
		Score:    score.DefaultOptions(),
	}
}

// Copied are the keys whose value is copied from another stage's key, so
// that a stage run on its own and the same stage inside `pipeline run` read
// the same value: validate checks the windows features makes and the class
// balance of label's rules. A config that sets a copied key to another value
// than its source is warned about (WarnCopied) and the source wins.
var Copied = []struct{ Key, From string }{
	{"validate.window", "features.window"},
	{"validate.horizon", "label.horizon"},
	{"validate.critical", "label.critical"},
	{"validate.warning", "label.warning"},
}

// SeedKeys are the stages' seeds, which default to the top-level seed.
var SeedKeys = []string{"collect.synthetic.seed", "features.seed", "train.seed"}

// Resolve returns c with the Copied keys set from their sources: the
// configuration as the stages see it. The CLI and the pipeline both build
// stage options from it.
func (c Config) Resolve() Config {
	c.Validate.Window = c.Features.Window
	c.Validate.Horizon, c.Validate.Critical, c.Validate.Warning = c.Label.Horizon, c.Label.Critical, c.Label.Warning
	return c
}

// CopiedConflicts names each Copied key among set (the keys a config file
// sets) whose value in c differs from its source's, as a message for a
// warning: the value is ignored.
func CopiedConflicts(c Config, set func(key string) bool) ([]string, error) {
	flat, err := Flatten(c)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, k := range Copied {
		if set(k.Key) && fmt.Sprint(flat[k.Key]) != fmt.Sprint(flat[k.From]) {
			out = append(out, fmt.Sprintf("config: %s (%v) is ignored: it is copied from %s (%v); set that instead, or remove %s",
				k.Key, flat[k.Key], k.From, flat[k.From], k.Key))
		}
	}
	return out, nil
}

// Redacted returns a copy safe to print: secrets hidden.
func (c Config) Redacted() Config {
	c.DB.DSN = pg.Redact(c.DB.DSN)
	if c.Tracking.URI != "" {
		c.Tracking.URI = tracking.RedactURI(c.Tracking.URI)
	}
	return c
}

// YAML renders c.
func (c Config) YAML() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return buf.Bytes(), nil
}

// Map returns c as nested maps keyed like the YAML (for JSON output).
func (c Config) Map() (map[string]any, error) {
	b, err := yaml.Marshal(c)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// Flatten returns every key of c as a dotted path ("train.epochs") with its
// value, as YAML would read it back.
func Flatten(c Config) (map[string]any, error) {
	m, err := c.Map()
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if mm, ok := v.(map[string]any); ok && len(mm) > 0 {
			for k, vv := range mm {
				key := k
				if prefix != "" {
					key = prefix + "." + k
				}
				walk(key, vv)
			}
			return
		}
		out[prefix] = v
	}
	walk("", m)
	return out, nil
}
