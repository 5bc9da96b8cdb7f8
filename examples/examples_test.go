package examples

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/modax/modax-ml/internal/config"
)

// TestConfigs decodes every example config strictly (an unknown key fails,
// as `modax-ml --config` refuses it) and checks that none sets a key copied
// from another stage's (validate's window is features').
func TestConfigs(t *testing.T) {
	files, _ := filepath.Glob("*.yaml")
	if len(files) < 2 {
		t.Fatalf("example configs: %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c := config.Default()
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range config.Copied {
			stage, key, _ := strings.Cut(k.Key, ".")
			if sec, ok := m[stage].(map[string]any); ok && sec[key] != nil {
				t.Errorf("%s sets %s, which is copied from %s (the value is ignored)", f, k.Key, k.From)
			}
		}
	}
	if !bytes.Equal(DefaultYAML, must(os.ReadFile("default.yaml"))) {
		t.Error("the embedded default differs from default.yaml")
	}
}

// TestWorkflow parses the GitHub Actions workflow and checks that it chains
// every stage in order.
func TestWorkflow(t *testing.T) {
	var wf struct {
		Jobs map[string]struct {
			Steps []struct {
				Name string `yaml:"name"`
				Run  string `yaml:"run"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(must(os.ReadFile("github/nightly-retrain.yml")), &wf); err != nil {
		t.Fatal(err)
	}
	var stages []string
	for _, s := range wf.Jobs["retrain"].Steps {
		if strings.Contains(s.Run, "$ML ") {
			stages = append(stages, s.Name)
		}
	}
	want := "collect validate label features train evaluate export deploy"
	if got := strings.Join(stages, " "); got != want {
		t.Errorf("workflow stages %q, want %q", got, want)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
