package metricsfile

import (
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the metrics.json reader (deploy's gate,
// export's embedded metrics): an error naming the file or a decoded file
// whose accessors work, never a panic.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"schema":"modax.metrics/v1","created_at":"2026-01-01T00:00:00Z","model":{"path":"m","sha256":"abc","model_version":"v1"},` +
			`"windows":{"path":"w","sha256":"def"},"splits":{"test":{"n":3,"mae":1.5,"rmse":2,"score":null,"extra":{"x":1}},"val":{"n":2,"mae":1}}}`,
		`{"schema":"modax.metrics/v1","model":{"sha256":"a"},"splits":{"test":{"n":-1,"rmse":1e308}}}`,
		`{"schema":"modax.metrics/v1","model":{"sha256":"a"},"splits":{"test":null}}`,
		`{"schema":`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode("metrics.json", b)
		if err != nil {
			return
		}
		_ = m.CheckModel("abc")
		for split := range m.Splits {
			for _, metric := range Metrics {
				m.Value(split, metric)
			}
		}
		m.Value("test", "rmse")
		if _, err := m.SplitsJSON(); err != nil {
			t.Fatalf("splits of an accepted file: %v", err)
		}
	})
}
