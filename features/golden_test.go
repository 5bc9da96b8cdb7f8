package features

import (
	"encoding/json"
	"flag"
	"math"
	"os"
	"os/exec"
	"testing"

	"gonum.org/v1/gonum/floats/scalar"
	"gonum.org/v1/gonum/stat"

	"github.com/modax/modax-ml/internal/testutil"
)

var update = flag.Bool("update", false, "regenerate testdata/golden.json with /usr/bin/python3 (scipy, sklearn)")

type goldenStats struct {
	Name      string    `json:"name"`
	Fs        float64   `json:"fs"`
	Nperseg   int       `json:"nperseg"`
	X         []float64 `json:"x"`
	Mean      float64   `json:"mean"`
	Std       float64   `json:"std"`
	Min       float64   `json:"min"`
	Max       float64   `json:"max"`
	Range     float64   `json:"range"`
	Skew      float64   `json:"skew"`
	Kurtosis  float64   `json:"kurtosis"`
	ROC       float64   `json:"roc"`
	PeakHz    float64   `json:"psd_peak_hz"`
	Energy    float64   `json:"psd_energy"`
	PSD       []float64 `json:"psd"`
	RelTol    float64   `json:"-"`
	AbsTolPSD float64   `json:"-"`
}

type goldenSplit struct {
	N        int     `json:"n"`
	TestSize float64 `json:"test_size"`
	ValSize  float64 `json:"val_size"`
	Seed     int64   `json:"seed"`
	Codes    string  `json:"codes"`
}

type golden struct {
	Versions map[string]string `json:"versions"`
	Stats    []goldenStats     `json:"stats"`
	Splits   []goldenSplit     `json:"splits"`
}

func loadGolden(t *testing.T) *golden {
	t.Helper()
	if *update {
		py := testutil.Python(t, "scipy", "sklearn")
		cmd := exec.Command(py, "testdata/gen_golden.py")
		cmd.Env = append(os.Environ(), "OPENBLAS_NUM_THREADS=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gen_golden.py: %v\n%s", err, out)
		}
	}
	b, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Stats) == 0 || len(g.Splits) == 0 {
		t.Fatal("golden.json holds no cases")
	}
	return &g
}

// TestStatsGolden compares the per-window statistics and Welch features with
// scipy.stats and scipy.signal.welch on fixed inputs.
func TestStatsGolden(t *testing.T) {
	g := loadGolden(t)
	t.Logf("golden values from %v", g.Versions)
	for _, c := range g.Stats {
		t.Run(c.Name, func(t *testing.T) {
			got := make([]float64, len(statNames))
			describe(got, c.X)
			want := []float64{c.Mean, c.Std, c.Min, c.Max, c.Range, c.Skew, c.Kurtosis, c.ROC}
			for i, name := range statNames {
				if !scalar.EqualWithinAbsOrRel(got[i], want[i], 1e-12, 1e-9) {
					t.Errorf("%s = %.17g, scipy/numpy %.17g", name, got[i], want[i])
				}
			}
			w := newWelch(c.Fs, c.Nperseg)
			peak, energy := w.peakEnergy(c.X)
			if len(w.psd) != len(c.PSD) {
				t.Fatalf("%d PSD bins, scipy %d", len(w.psd), len(c.PSD))
			}
			// The whole spectrum, not only its two summaries.
			nper := min(c.Nperseg, len(c.X))
			nseg := float64((len(c.X) - nper/2) / (nper - nper/2))
			maxP := 0.0
			for _, p := range c.PSD {
				maxP = math.Max(maxP, p)
			}
			for i, p := range c.PSD {
				v := w.psd[i] * w.scale / nseg
				if i > 0 && (nper%2 == 1 || i < len(c.PSD)-1) {
					v *= 2
				}
				if !scalar.EqualWithinAbsOrRel(v, p, 1e-12*math.Max(1, maxP), 1e-9) {
					t.Errorf("Pxx[%d] = %.17g, scipy %.17g", i, v, p)
				}
			}
			if c.Name != "constant-20" && peak != c.PeakHz {
				t.Errorf("psd_peak_hz = %g, scipy %g", peak, c.PeakHz)
			}
			if !scalar.EqualWithinAbsOrRel(energy, c.Energy, 1e-12, 1e-9) {
				t.Errorf("psd_energy = %.17g, scipy %.17g", energy, c.Energy)
			}
		})
	}
}

// TestMomentsAgreeWithGonum cross-checks the fused moment loop with gonum's
// stat.Moment on the golden inputs.
func TestMomentsAgreeWithGonum(t *testing.T) {
	for _, c := range loadGolden(t).Stats {
		if c.Name == "constant-20" {
			continue
		}
		got := make([]float64, len(statNames))
		describe(got, c.X)
		m2, m3, m4 := stat.Moment(2, c.X, nil), stat.Moment(3, c.X, nil), stat.Moment(4, c.X, nil)
		if s := m3 / math.Pow(m2, 1.5); !scalar.EqualWithinAbsOrRel(got[5], s, 1e-12, 1e-9) {
			t.Errorf("%s: skew %g, gonum moments %g", c.Name, got[5], s)
		}
		if k := m4/(m2*m2) - 3; !scalar.EqualWithinAbsOrRel(got[6], k, 1e-12, 1e-9) {
			t.Errorf("%s: kurtosis %g, gonum moments %g", c.Name, got[6], k)
		}
	}
}

// TestRandomSplitGolden checks the random split against scikit-learn's
// train_test_split(test_size, random_state=seed) applied twice.
func TestRandomSplitGolden(t *testing.T) {
	for _, c := range loadGolden(t).Splits {
		codes, err := assignSplits(c.N, c.TestSize, c.ValSize, c.Seed)
		if err != nil {
			t.Fatal(err)
		}
		for i, code := range codes {
			if want := c.Codes[i] - '0'; code != want {
				t.Fatalf("n=%d seed=%d: item %d in split %d, scikit-learn %d", c.N, c.Seed, i, code, want)
			}
		}
	}
}
