package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/modax/modax-ml/internal/cache"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/version"
)

// RunPrefix stands for the run directory in hashed options and input names,
// so that a key does not depend on the run id.
const RunPrefix = "$RUN/"

// keyDoc is what a cache key is the sha256 of.
type keyDoc struct {
	Schema  string          `json:"schema"`
	Stage   string          `json:"stage"`
	Options json.RawMessage `json:"options"`
	Inputs  []cache.Input   `json:"inputs"`
	Tool    string          `json:"tool"`
}

// Key returns the cache key of a stage: the sha256 of its name, its options
// (with run-directory paths relative), its inputs' sha256 and the tool
// version. options must come from KeyOptions.
func Key(stage string, options json.RawMessage, inputs []cache.Input, tool string) string {
	in := slices.Clone(inputs)
	sort.Slice(in, func(i, j int) bool { return in[i].Path < in[j].Path })
	b, err := json.Marshal(keyDoc{Schema: "modax.pipeline.key/v1", Stage: stage, Options: options, Inputs: in, Tool: tool})
	if err != nil {
		panic(err) // programming error: the document always marshals
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// KeyOptions renders a stage's options as the JSON that is hashed: keyed as
// in the YAML config (so a changed option is named as the user knows it),
// with paths in runDir written as $RUN/<name>. Fields the YAML form omits
// (yaml:"-") are not hashed.
func KeyOptions(opts any, runDir string) (json.RawMessage, error) {
	y, err := yaml.Marshal(opts)
	if err != nil {
		return nil, fmt.Errorf("options: %w", err)
	}
	var v any
	if err := yaml.Unmarshal(y, &v); err != nil {
		return nil, fmt.Errorf("options: %w", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("options: %w", err)
	}
	if runDir == "" {
		return b, nil
	}
	// Replace the run directory inside JSON strings. JSON escapes neither
	// '/' nor ordinary path characters, so the literal form matches.
	q, _ := json.Marshal(filepath.Clean(runDir) + "/")
	s := strings.ReplaceAll(string(b), string(q[1:len(q)-1]), RunPrefix)
	return json.RawMessage(s), nil
}

// relName returns path relative to runDir as $RUN/<rel> when it is inside,
// else path unchanged.
func relName(runDir, path string) string {
	if rel, ok := inside(runDir, path); ok {
		return RunPrefix + rel
	}
	return path
}

// inside reports whether path is inside dir and returns it relative (with
// forward slashes).
func inside(dir, path string) (string, bool) {
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(path))
	if err != nil || !filepath.IsLocal(rel) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

var toolOnce = sync.OnceValue(func() string {
	v := version.Get()
	s := v.String()
	if v.Commit != "" && !v.Dirty {
		return s
	}
	// A dirty or unversioned build (go run, go test, a local change) cannot
	// be told apart from another by its version: add the executable's hash,
	// so changing the code invalidates the cache.
	if exe, err := os.Executable(); err == nil {
		if sum, err := dataset.FileSHA256(exe); err == nil {
			return s + " exe:" + sum[:16]
		}
	}
	return s
})

// ToolVersion is the tool version hashed into cache keys: the version and
// commit, plus the executable's sha256 for dirty or unversioned builds.
func ToolVersion() string { return toolOnce() }
