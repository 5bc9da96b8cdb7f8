package evaluate_test

import (
	"fmt"

	"github.com/modax/modax-ml/evaluate"
)

func ExampleRegress() {
	truth := []float64{10, 20, 30, 40}
	pred := []float64{5, 25, 35, 45}
	r := evaluate.Regress(truth, pred) // score: exp(5/13)−1 + 3·(exp(5/10)−1)
	fmt.Printf("MAE %.1f RMSE %.1f early %.2f late %.2f score %.3f\n", r.MAE, r.RMSE, r.EarlyRate, r.LateRate, r.Score)
	// Output: MAE 5.0 RMSE 5.0 early 0.25 late 0.75 score 2.415
}
