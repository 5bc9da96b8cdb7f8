package drift

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/modax/modax-ml/internal/testutil"
)

var update = flag.Bool("update", false, "regenerate testdata/golden.json with testdata/golden.py (needs Debian python3-scipy)")

type goldenCase struct {
	Name           string    `json:"name"`
	Ref            []float64 `json:"ref"`
	Cur            []float64 `json:"cur"`
	Mean           float64   `json:"mean"`
	Std            float64   `json:"std"`
	TopShare       float64   `json:"top_share"`
	Quantiles      []float64 `json:"quantiles"`
	Edges          []float64 `json:"edges"`
	Proportions    []float64 `json:"proportions"`
	CurProportions []float64 `json:"cur_proportions"`
	PSI            float64   `json:"psi"`
	KS             float64   `json:"ks"`
	KSFull         float64   `json:"ks_full"`
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-12*max(1, math.Abs(b)) }

func nearAll(a, b []float64) bool { return slices.EqualFunc(a, b, near) }

// TestGolden compares quantiles, PSI bins, PSI and KS with numpy/scipy.
func TestGolden(t *testing.T) {
	path := filepath.Join("testdata", "golden.json")
	if *update {
		py := testutil.Python(t, "numpy", "scipy")
		cmd := exec.CommandContext(context.Background(), py, filepath.Join("testdata", "golden.py"))
		cmd.Env = append(os.Environ(), "OPENBLAS_NUM_THREADS=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("golden.py: %v\n%s", err, stderr.String())
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var g struct{ Cases []goldenCase }
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) < 5 {
		t.Fatalf("only %d golden cases", len(g.Cases))
	}
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			ref := slices.Clone(c.Ref)
			cur := slices.Clone(c.Cur)
			slices.Sort(ref)
			slices.Sort(cur)
			d := Summarize(ref)
			if !near(d.Mean, c.Mean) || !near(d.Std, c.Std) || !near(d.TopShare, c.TopShare) {
				t.Errorf("mean %g std %g top %g, want %g %g %g", d.Mean, d.Std, d.TopShare, c.Mean, c.Std, c.TopShare)
			}
			if !nearAll(d.Quantiles, c.Quantiles) {
				t.Errorf("quantiles\n got %v\nwant %v", d.Quantiles, c.Quantiles)
			}
			if !nearAll(d.Bins.Edges, c.Edges) || !nearAll(d.Bins.Proportions, c.Proportions) {
				t.Errorf("bins %v %v, want %v %v", d.Bins.Edges, d.Bins.Proportions, c.Edges, c.Proportions)
			}
			if got := binShares(d.Bins.Edges, cur); !nearAll(got, c.CurProportions) {
				t.Errorf("current shares %v, want %v", got, c.CurProportions)
			}
			cmp, ok := Compare(d, cur)
			if !ok || !near(cmp.PSI, c.PSI) || !near(cmp.KS, c.KS) || cmp.Count != len(cur) {
				t.Errorf("compare %+v (ok %v), want psi %g ks %g", cmp, ok, c.PSI, c.KS)
			}
			if got := KS2(ref, cur); !near(got, c.KSFull) {
				t.Errorf("KS2 full %g, want %g", got, c.KSFull)
			}
			// The quantile summary's KS stays within ~0.01 of the full one.
			if math.Abs(cmp.KS-c.KSFull) > 0.0125 {
				t.Errorf("summary KS %g vs full %g: more than 0.0125 apart", cmp.KS, c.KSFull)
			}
		})
	}
}

func TestSketch(t *testing.T) {
	// Below the sample size the sketch is exact.
	rng := rand.New(rand.NewPCG(1, 1))
	xs := make([]float64, 5000)
	s := NewSketch(10_000)
	for i := range xs {
		xs[i] = 1000 + rng.NormFloat64()*3
		s.Add(xs[i])
	}
	s.Add(math.NaN())
	s.Add(math.Inf(1))
	got := s.Distribution()
	slices.Sort(xs)
	want := Summarize(xs)
	if got.Count != 5000 || got.Sampled != 5000 || !nearAll(got.Quantiles, want.Quantiles) ||
		math.Abs(got.Mean-want.Mean) > 1e-9 || math.Abs(got.Std-want.Std) > 1e-9 || got.Min != xs[0] || got.Max != xs[4999] {
		t.Fatalf("exact sketch differs: %+v vs %+v", got, want)
	}
	// Above it: exact moments, sampled quantiles close to the truth, and the
	// same input gives the same distribution.
	big := func() *Sketch {
		s := NewSketch(2000)
		r := rand.New(rand.NewPCG(2, 2))
		for range 200_000 {
			s.Add(r.Float64())
		}
		return s
	}
	a, b := big().Distribution(), big().Distribution()
	if a.Count != 200_000 || a.Sampled != 2000 || !slices.Equal(a.Quantiles, b.Quantiles) {
		t.Fatalf("sampled sketch: count %d sampled %d, deterministic %v", a.Count, a.Sampled, slices.Equal(a.Quantiles, b.Quantiles))
	}
	if math.Abs(a.Quantiles[50]-0.5) > 0.05 || math.Abs(a.Mean-0.5) > 0.01 || math.Abs(a.Std-math.Sqrt(1.0/12)) > 0.01 {
		t.Fatalf("sampled sketch off: median %g mean %g std %g", a.Quantiles[50], a.Mean, a.Std)
	}
	if d := NewSketch(0).Distribution(); !d.Empty() {
		t.Fatalf("empty sketch: %+v", d)
	}
	// A constant has std exactly 0 and top share 1.
	c := NewSketch(10)
	for range 100 {
		c.Add(14.62)
	}
	if d := c.Distribution(); d.Std != 0 || d.TopShare != 1 || d.Min != d.Max {
		t.Fatalf("constant: %+v", d)
	}
}

func TestReadReference(t *testing.T) {
	dir := t.TempDir()
	d := Summarize([]float64{1, 2, 3, 4})
	report := map[string]any{"schema": "modax.validation/v1", "reference": Reference{Sensors: map[string]Distribution{"s1": d}}}
	b, _ := json.Marshal(report)
	loc := filepath.Join(dir, "validation.json")
	if err := os.WriteFile(loc, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ref, err := ReadReference(loc)
	if err != nil || !nearAll(ref.Sensors["s1"].Quantiles, d.Quantiles) {
		t.Fatalf("round trip: %v %v", ref, err)
	}
	if err := os.WriteFile(loc, []byte(`{"schema":"x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadReference(loc); err == nil {
		t.Fatal("a report without a reference section was accepted")
	}
	if _, err := ReadReference(filepath.Join(dir, "missing.json")); err == nil {
		t.Fatal("missing file accepted")
	}
}

func BenchmarkSketchAdd(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	xs := make([]float64, 1<<20)
	for i := range xs {
		xs[i] = rng.NormFloat64()
	}
	b.ReportAllocs()
	for b.Loop() {
		s := NewSketch(DefaultSampleSize)
		for _, x := range xs {
			s.Add(x)
		}
	}
	b.ReportMetric(float64(len(xs))*float64(b.N)/b.Elapsed().Seconds(), "values/s")
}
