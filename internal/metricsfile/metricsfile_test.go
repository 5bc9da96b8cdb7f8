package metricsfile

import (
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	good := `{"schema":"modax.metrics/v1","model":{"path":"m","sha256":"abc"},
	  "windows":{"path":"w","sha256":"def"},
	  "splits":{"test":{"n":3,"mae":1.5,"rmse":2,"score":null,"extra":{"x":1}},"val":{"n":2,"mae":1}}}`
	f, err := Decode("metrics.json", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := f.Value("test", "mae"); !ok || v != 1.5 {
		t.Errorf("test mae %v %v", v, ok)
	}
	if _, ok := f.Value("test", "score"); ok {
		t.Error("null score reported as defined")
	}
	if _, ok := f.Value("train", "mae"); ok {
		t.Error("missing split reported as defined")
	}
	if f.Windows.SHA256 != "def" || f.Splits["test"].N != 3 || len(f.SHA256) != 64 {
		t.Errorf("decoded %+v", f)
	}
	if err := f.CheckModel("abc"); err != nil {
		t.Error(err)
	}
	if err := f.CheckModel("xyz"); err == nil || !strings.Contains(err.Error(), "another model") {
		t.Errorf("CheckModel: %v", err)
	}
	s, err := f.SplitsJSON()
	if err != nil || strings.ContainsAny(string(s), "\n ") || !strings.Contains(string(s), `"extra":{"x":1}`) {
		t.Errorf("SplitsJSON %s %v", s, err)
	}
	for name, tc := range map[string]struct{ doc, want string }{
		"schema":  {`{"schema":"other","model":{"sha256":"a"},"splits":{"test":{}}}`, "schema"},
		"sha":     {`{"schema":"modax.metrics/v1","model":{},"splits":{"test":{}}}`, "model.sha256"},
		"splits":  {`{"schema":"modax.metrics/v1","model":{"sha256":"a"}}`, "no splits"},
		"garbage": {`{"schema":`, "metrics.json"},
	} {
		if _, err := Decode("metrics.json", []byte(tc.doc)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}
