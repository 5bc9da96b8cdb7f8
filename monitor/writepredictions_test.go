package monitor

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/modax/modax-ml/internal/dataset"
)

// TestWritePredictionsIntervals: predict --to-db stores a prediction's
// interval in rul_lower/rul_upper/interval_level, and nulls without one.
func TestWritePredictionsIntervals(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	at := dataset.Micros(f.now)
	ps := []dataset.Prediction{
		{Tenant: "default", Device: "iv", End: at, RULPred: 40, ModelVersion: "v1", Lower: 31, Upper: 52, Level: 0.9},
		{Tenant: "default", Device: "none", End: at, RULPred: 40, ModelVersion: "v1", Lower: math.NaN(), Upper: math.NaN(), Level: math.NaN()},
	}
	if n, err := WritePredictions(ctx, f.db, f.cfg, ps); err != nil || n != 2 {
		t.Fatalf("write: %d, %v", n, err)
	}
	rows, err := f.db.Query(ctx, `SELECT device_id, "timestamp", rul_lower, rul_upper, interval_level FROM `+
		pgx.Identifier{f.cfg.PredictionTable}.Sanitize()+` ORDER BY device_id`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		dev           string
		ts            time.Time
		lo, hi, level *float64
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		return x, r.Scan(&x.dev, &x.ts, &x.lo, &x.hi, &x.level)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].dev != "iv" || got[0].lo == nil || *got[0].lo != 31 || *got[0].hi != 52 || *got[0].level != 0.9 ||
		got[1].lo != nil || got[1].hi != nil || got[1].level != nil || !got[0].ts.Equal(f.now) {
		t.Errorf("rows %+v", got)
	}
}
