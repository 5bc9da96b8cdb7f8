package deploy

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/drift"
)

// writeValidation writes a validation report (the part monitor reads: its
// reference section) with a distribution for each of sensors.
func writeValidation(t testing.TB, dir string, sensors ...string) string {
	t.Helper()
	ref := drift.Reference{Sensors: map[string]drift.Distribution{}}
	for i, s := range sensors {
		xs := make([]float64, 200)
		for j := range xs {
			xs[j] = float64(10*i + j%50)
		}
		ref.Sensors[s] = drift.Summarize(xs)
	}
	b, err := json.MarshalIndent(map[string]any{"schema": "modax.validation/v1", "reference": ref}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "validation.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// The validation report is published with the version, named with its
// sha256 in model_metadata.json, and checked again on rollback.
func TestValidationPublished(t *testing.T) {
	ctx := context.Background()
	models := filepath.Join(t.TempDir(), "models")
	c1, c2 := candidateDir(t, 71, 7), candidateDir(t, 72, 6)
	val := writeValidation(t, t.TempDir(), "sensor_0", "sensor_1", "sensor_2")

	// Not a validation report: refused before anything changes.
	o := opts(models, c1)
	o.Validation = c1.Metrics
	if _, err := Run(ctx, env(), o); err == nil || !strings.Contains(err.Error(), `no "reference" section`) {
		t.Fatalf("a metrics file as --validation: %v", err)
	}
	if _, err := os.Stat(filepath.Join(models, versionsDir, "v71")); err == nil {
		t.Fatal("a version was published with a bad validation report")
	}

	o.Validation = val
	res, err := Run(ctx, env(), o)
	if err != nil {
		t.Fatal(err)
	}
	published := filepath.Join(models, versionsDir, "v71", fileValidation)
	if res.Validation != published {
		t.Errorf("result names %q, want %s", res.Validation, published)
	}
	a, _ := os.ReadFile(val)
	b, err := os.ReadFile(published)
	if err != nil || string(a) != string(b) {
		t.Fatalf("published validation.json differs from %s: %v", val, err)
	}
	md, err := readMetadata(filepath.Join(models, servedMeta))
	if err != nil {
		t.Fatal(err)
	}
	sum, _ := dataset.FileSHA256(val)
	if md.Validation == nil || md.Validation.File != fileValidation || md.Validation.SHA256 != sum || md.Validation.Bytes != int64(len(a)) {
		t.Fatalf("metadata validation %+v, want sha256 %s", md.Validation, sum)
	}
	// Served through the links, next to the served metadata.
	if got, err := os.ReadFile(filepath.Join(models, currentLink, fileValidation)); err != nil || string(got) != string(a) {
		t.Fatalf("current/%s: %v", fileValidation, err)
	}

	// A deploy without one publishes none and records none.
	res, err = Run(ctx, env(), opts(models, c2))
	if err != nil || res.Validation != "" {
		t.Fatalf("deploy without validation: %+v %v", res, err)
	}
	if _, err := os.Stat(filepath.Join(models, versionsDir, "v72", fileValidation)); err == nil {
		t.Error("v72 has a validation report it was not given")
	}
	if md, err := readMetadata(filepath.Join(models, servedMeta)); err != nil || md.Validation != nil {
		t.Fatalf("v72 metadata validation %+v %v", md.Validation, err)
	}

	// A changed report makes v71 unservable: rollback refuses it.
	if err := os.WriteFile(published, []byte(`{"reference":{"sensors":{}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Rollback(ctx, env(), opts(models, c2), "v71"); err == nil || !strings.Contains(err.Error(), "validation.json has sha256") {
		t.Fatalf("rollback to a version with a changed validation report: %v", err)
	}
	if served(t, models) != "v72" {
		t.Fatal("the served model changed")
	}
}
