package evaluate

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/modax/modax-ml/internal/dataset"
)

// FuzzCompareMetrics feeds corrupted metrics.json files to the reader
// `evaluate --compare` uses and to the comparison with a real evaluation,
// both ways round, its text and its JSON: an error naming the file or a
// comparison, never a panic.
func FuzzCompareMetrics(f *testing.F) {
	dir := f.TempDir()
	preds := filepath.Join(dir, "predictions.parquet")
	meta := dataset.Meta{}
	meta.MustSet(dataset.MetaThresholds, dataset.DefaultThresholds)
	meta.MustSet(dataset.MetaHorizon, 100.0)
	if err := dataset.WritePredictions(preds, fleet(5, 4, 20, dataset.SplitTest, dataset.SplitVal), meta); err != nil {
		f.Fatal(err)
	}
	o := DefaultOptions()
	o.Predictions, o.Metrics, o.Report, o.HTML, o.NoPlots = preds, filepath.Join(dir, "metrics.json"), "", "", true
	if _, err := Run(context.Background(), testEnv(), o); err != nil {
		f.Fatal(err)
	}
	base, err := ReadMetrics(o.Metrics)
	if err != nil {
		f.Fatal(err)
	}
	b, err := os.ReadFile(o.Metrics)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"schema":"` + MetricsSchema + `","splits":{"test":null,"val":{"n":-1,"rmse":"NaN"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "other.json")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		other, err := ReadMetrics(p)
		if err != nil {
			return
		}
		for _, c := range []*Comparison{Compare(base, other, "this", p), Compare(other, base, p, "this")} {
			if err := c.WriteText(io.Discard); err != nil {
				t.Fatalf("text of a comparison: %v", err)
			}
			if _, err := json.Marshal(c); err != nil {
				t.Fatalf("JSON of a comparison: %v", err)
			}
		}
	})
}
