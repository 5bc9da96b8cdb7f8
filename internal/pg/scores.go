package pg

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/modax/modax-ml/internal/dataset"
)

// ReadScores reads the newest perDevice rows of every device of the
// prediction table (score --to-db's and predict --to-db's rows), oldest first
// per device, as scores: ScoredAt is the row's created_at. A table that does
// not exist yet gives no scores.
func ReadScores(ctx context.Context, pool *pgxpool.Pool, c Config, perDevice int) ([]dataset.Score, error) {
	t, err := Table(c.PredictionTable)
	if err != nil {
		return nil, fmt.Errorf("db.prediction_table: %w", err)
	}
	if exists, err := TableExists(ctx, pool, t); err != nil || !exists {
		return nil, err
	}
	rows, err := pool.Query(ctx, fmt.Sprintf(`SELECT tenant_id, device_id, "timestamp", rul_hours, rul_lower, rul_upper, interval_level, health_status, model_version, created_at
FROM (SELECT p.*, row_number() OVER (PARTITION BY tenant_id, device_id ORDER BY "timestamp" DESC, created_at DESC) AS rn FROM %s p) s
WHERE rn <= $1
ORDER BY tenant_id, device_id, "timestamp", created_at`, t.Sanitize()), perDevice)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", c.PredictionTable, err)
	}
	defer rows.Close()
	var out []dataset.Score
	for rows.Next() {
		var s dataset.Score
		var ts, created time.Time
		var lo, hi, level *float64
		var health string
		if err := rows.Scan(&s.Tenant, &s.Device, &ts, &s.RUL, &lo, &hi, &level, &health, &s.ModelVersion, &created); err != nil {
			return nil, fmt.Errorf("read %s: %w", c.PredictionTable, err)
		}
		s.Time, s.ScoredAt = ts.UnixMicro(), created.UnixMicro()
		s.Lower, s.Upper, s.Level, s.Change = orNaN(lo), orNaN(hi), orNaN(level), math.NaN()
		if s.Health, err = dataset.ParseHealth(health); err != nil {
			return nil, fmt.Errorf("read %s: device %s at %s: health_status: %w", c.PredictionTable, s.Device, ts.UTC().Format(time.RFC3339), err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", c.PredictionTable, err)
	}
	return out, nil
}

func orNaN(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}
