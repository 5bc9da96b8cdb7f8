package main

import (
	"context"
	"fmt"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/pg"
	"github.com/modax/modax-ml/monitor"
)

// predictionsToDB inserts a predictions file into db.prediction_table
// (`predict --to-db`), where monitor reads them.
func predictionsToDB(ctx context.Context, a *app, path string) error {
	ps, _, err := dataset.ReadPredictions(ctx, path)
	if err != nil {
		return fmt.Errorf("predict --to-db: %w", err)
	}
	db, err := pg.Connect(ctx, a.cfg.DB)
	if err != nil {
		return fmt.Errorf("predict --to-db: %w", err)
	}
	defer db.Close()
	n, err := monitor.WritePredictions(ctx, db, a.cfg.DB, ps)
	if err != nil {
		return fmt.Errorf("predict --to-db: %w", err)
	}
	a.log.Info("predictions written to the database", "table", a.cfg.DB.PredictionTable, "rows", n)
	return nil
}
