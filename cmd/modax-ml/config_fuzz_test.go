package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/modax/modax-ml/internal/exitcode"
)

// FuzzConfig feeds arbitrary YAML to --config: the CLI must either accept it
// (exit 0) or refuse it as a usage error naming the problem (exit 2), never
// panic or fail in another way.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		"seed: 3\n",
		"db:\n  tenant: acme\n  sensors: [a, b]\n",
		"train:\n  epochs: 5\n  lr: 0.01\n",
		"features:\n  window: 30\n  features: [s_2, s_3]\n",
		"monitor:\n  watch: 24h\n",
		"db: 7\n",
		"train: {epochs: many}\n",
		"- a\n- b\n",
		"seed: [1, 2]\n",
		"\t\x00",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, yaml string) {
		path := filepath.Join(dir, "fuzz.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		code := run([]string{"--config", path, "config", "show", "--output", "json"}, nil, &out, &errOut)
		if code != exitcode.OK && code != exitcode.Usage {
			t.Fatalf("exit %d for config %q: %s", code, yaml, errOut.String())
		}
		if code == exitcode.Usage && errOut.Len() == 0 {
			t.Fatalf("usage error without a message for config %q", yaml)
		}
	})
}
