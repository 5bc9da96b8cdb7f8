package testutil

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/modax/modax-ml/internal/dataset"
)

// WriteReadings writes frames and failure events as readings.parquet and
// failures.parquet in dir and returns their paths.
func WriteReadings(t testing.TB, dir string, sensors []string, frames []*dataset.Frame, events []dataset.Failure, meta dataset.Meta) (readings, failures string) {
	t.Helper()
	readings, failures = filepath.Join(dir, "readings.parquet"), filepath.Join(dir, "failures.parquet")
	w, err := dataset.CreateFrames(readings, sensors, false, meta)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, f := range frames {
		if err := w.Append(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := dataset.WriteFailures(failures, events, dataset.Meta{}); err != nil {
		t.Fatal(err)
	}
	return readings, failures
}

// ReadRULFile reads a C-MAPSS RUL_FD00x.txt file: the true RUL of each test
// unit, one number per line, in unit order.
func ReadRULFile(t testing.TB, path string) []float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			out = append(out, v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
