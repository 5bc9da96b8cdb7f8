// Package examples holds the example configurations. The built-in default of
// `modax-ml pipeline run` (no config given) is default.yaml, embedded here,
// so the file a user reads is exactly what runs.
package examples

import _ "embed"

// DefaultYAML is default.yaml: the configuration `pipeline run` uses when no
// config is given.
//
//go:embed default.yaml
var DefaultYAML []byte
