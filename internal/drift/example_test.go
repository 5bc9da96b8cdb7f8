package drift_test

import (
	"fmt"
	"math"

	"github.com/modax/modax-ml/internal/drift"
)

// The monitor's use: summarize the training data once (validate stores this
// in its report), then compare production values against it.
func ExampleCompare() {
	sk := drift.NewSketch(0)
	for i := range 1000 {
		sk.Add(60 + float64(i%100)/10) // 60.0 … 69.9, uniform
	}
	ref := sk.Distribution()

	same := make([]float64, 0, 500)
	warmer := make([]float64, 0, 500)
	for i := range 500 {
		same = append(same, 60+float64(i%100)/10)
		warmer = append(warmer, 63+float64(i%100)/10)
	}
	warmer = append(warmer, math.NaN()) // missing values are ignored

	a, _ := drift.Compare(ref, same)
	b, _ := drift.Compare(ref, warmer)
	fmt.Printf("same:   PSI %.3f KS %.3f\n", a.PSI, a.KS)
	fmt.Printf("warmer: PSI %.3f KS %.3f (%d values)\n", b.PSI, b.KS, b.Count)
	// Output:
	// same:   PSI 0.000 KS 0.010
	// warmer: PSI 2.486 KS 0.307 (500 values)
}
