package score

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/modax/modax-ml/features"
	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/infer"
	"github.com/modax/modax-ml/internal/location"
	"github.com/modax/modax-ml/internal/pg"
	"github.com/modax/modax-ml/internal/runenv"
)

// Reasons a device is not scored (besides features' too_few_readings,
// sampling_gap and feature_missing).
const (
	ReasonTooFew         = features.ReasonTooFew
	ReasonStale          = "stale"
	ReasonUnknownDevice  = "unknown_device"
	ReasonUnknownTenant  = "unknown_tenant"
	defaultMaxAgeWindows = 2
)

// ErrNoneScored is returned (wrapping exitcode.ErrValidation, exit 3) with
// the Result when no device could be scored.
var ErrNoneScored = errors.New("no device could be scored")

// Scored is one device's current RUL.
type Scored struct {
	Device      string    `json:"device"`
	LastReading time.Time `json:"last_reading"`
	RUL         float64   `json:"rul_hours"`
	// Lower, Upper and Level are the interval (null without calibration).
	Lower  *float64 `json:"rul_lower"`
	Upper  *float64 `json:"rul_upper"`
	Level  *float64 `json:"interval_level"`
	Health string   `json:"health_status"`
	// Change is RUL minus the device's previous score (null: none).
	Change          *float64   `json:"rul_change_hours"`
	PreviousReading *time.Time `json:"previous_reading"`
}

// Unscored is a device that could not be scored, and why.
type Unscored struct {
	Device      string     `json:"device"`
	Reason      string     `json:"reason"`
	Detail      string     `json:"detail"`
	LastReading *time.Time `json:"last_reading,omitempty"`
}

// Result is what `score --output json` prints.
type Result struct {
	Tenant   string         `json:"tenant"`
	At       time.Time      `json:"at"`
	Source   map[string]any `json:"source"`
	Model    ModelInfo      `json:"model"`
	Devices  int            `json:"devices"`
	Scored   []Scored       `json:"scored"`
	Unscored []Unscored     `json:"unscored"`
	// Note says what is missing (no interval calibration).
	Note             string  `json:"note,omitempty"`
	Out              string  `json:"out,omitempty"`
	DBRows           int64   `json:"db_rows"`
	Seconds          float64 `json:"seconds"`
	DevicesPerSecond float64 `json:"devices_per_second"`
}

// Run scores the devices and writes the outputs: everything or nothing (the
// scores file appears only after the database transaction committed).
func Run(ctx context.Context, env *runenv.Env, opts Options) (*Result, error) {
	start := time.Now()
	s, err := opts.check(env.Now())
	if err != nil {
		return nil, err
	}
	inputs := []atomicfile.Path{atomicfile.P("--model", s.Model)}
	if s.Source == SourceFile {
		inputs = append(inputs, atomicfile.P("--readings", s.Readings), atomicfile.P("--failures", s.Failures))
	}
	if err := atomicfile.CheckOutputs(inputs, []atomicfile.Path{atomicfile.P("--out", s.Out)}); err != nil {
		return nil, err
	}
	workers := s.Workers
	if workers == 0 {
		workers = env.Workers
	}
	m, info, err := loadModel(&s, workers)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	on, err := features.NewOnline(features.OnlineSpec{Features: m.Features, Window: m.Window, Scaler: m.Scaler, MaxFill: s.MaxFill, MaxGap: s.MaxGap.D()})
	if err != nil {
		return nil, fmt.Errorf("score: %s: %w", m.Path, err)
	}
	var pool *pgxpool.Pool
	if s.Source == SourcePostgres || s.ToDB {
		if err := s.DB.Check(); err != nil {
			return nil, fmt.Errorf("%w: score: %w", exitcode.ErrUsage, err)
		}
		if pool, err = pg.Connect(ctx, s.DB); err != nil {
			return nil, fmt.Errorf("score: %w", err)
		}
		defer pool.Close()
	}
	var src source
	if s.Source == SourcePostgres {
		src, err = openPostgres(ctx, &s, pool, on.Columns())
	} else {
		src, err = openFile(ctx, &s, on.Columns())
	}
	if err != nil {
		return nil, err
	}
	defer src.close()

	sc := newScorer(env, &s, m, on)
	env.Log.Info("score: start", "tenant", s.DB.Tenant, "at", s.at.Format(time.RFC3339), "source", s.Source, "model", m.Path,
		"model_version", m.Version, "window", m.Window, "features", len(m.Features), "batch_devices", s.BatchDevices)
	res := &Result{Tenant: s.DB.Tenant, At: s.at, Source: src.describe(), Model: info, Scored: []Scored{}, Unscored: []Unscored{}}
	res.Model.Interval = sc.interval.OK
	if !sc.interval.OK {
		res.Note = sc.interval.Note
	}
	err = src.scan(ctx, s.BatchDevices, on.Readings(), sc.batch)
	var ute *unknownTenantError
	if errors.As(err, &ute) {
		sc.unscored = append(sc.unscored, Unscored{Reason: ReasonUnknownTenant, Detail: ute.Error()})
		err = nil
	}
	if err != nil {
		return nil, err
	}
	if err := sc.previous(ctx, pool); err != nil {
		return nil, err
	}
	sortScores(sc.scores)
	slices.SortFunc(sc.unscored, func(a, b Unscored) int {
		return cmp.Or(cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.Device, b.Device))
	})
	res.Unscored = append(res.Unscored, sc.unscored...) // [] in JSON when every device was scored
	for i := range sc.scores {
		res.Scored = append(res.Scored, scoredOf(&sc.scores[i]))
	}
	res.Devices = len(res.Scored) + len(res.Unscored)
	if len(sc.scores) == 0 {
		res.Seconds = time.Since(start).Seconds()
		return res, fmt.Errorf("%w: score: %w (%d devices listed with the reason)", exitcode.ErrValidation, ErrNoneScored, len(res.Unscored))
	}
	if err := sc.write(ctx, pool, src, res); err != nil {
		return nil, err
	}
	res.Seconds = time.Since(start).Seconds()
	if res.Seconds > 0 {
		res.DevicesPerSecond = float64(len(res.Scored)) / res.Seconds
	}
	env.Log.Info("score: done", "scored", len(res.Scored), "unscored", len(res.Unscored), "seconds", res.Seconds, "out", s.Out, "db_rows", res.DBRows)
	return res, nil
}

// sortScores orders by RUL (most urgent first), then device.
func sortScores(ss []dataset.Score) {
	slices.SortFunc(ss, func(a, b dataset.Score) int {
		return cmp.Or(cmp.Compare(a.RUL, b.RUL), cmp.Compare(a.Device, b.Device))
	})
}

func optional(v float64) *float64 {
	if math.IsNaN(v) {
		return nil
	}
	return &v
}

func scoredOf(s *dataset.Score) Scored {
	out := Scored{Device: s.Device, LastReading: dataset.TimeOf(s.Time), RUL: s.RUL, Lower: optional(s.Lower), Upper: optional(s.Upper),
		Level: optional(s.Level), Health: s.Health.String(), Change: optional(s.Change)}
	if s.PreviousTime != 0 {
		t := dataset.TimeOf(s.PreviousTime)
		out.PreviousReading = &t
	}
	return out
}

// scorer turns batches of devices into scores.
type scorer struct {
	env      *runenv.Env
	s        *settings
	m        *infer.Model
	on       *features.Online
	interval infer.Interval
	th       dataset.Thresholds

	x        []float32
	out      []float32
	rows     []int // batch index of each window in x
	scores   []dataset.Score
	unscored []Unscored
}

func newScorer(env *runenv.Env, s *settings, m *infer.Model, on *features.Online) *scorer {
	th := m.Thresholds
	if th == (dataset.Thresholds{}) {
		th = dataset.DefaultThresholds
	}
	iv := m.IntervalAt(s.IntervalLevel)
	if !iv.OK && m.Calibration != nil {
		env.Log.Warn("the model is not calibrated at this interval level: scoring without intervals",
			"interval_level", s.IntervalLevel, "calibrated_levels", fmt.Sprint(m.Calibration.Levels))
	}
	return &scorer{env: env, s: s, m: m, on: on, th: th, interval: iv}
}

// batch builds the windows of a batch of devices and predicts them in one
// forward pass.
func (sc *scorer) batch(ds []device) error {
	size := sc.on.Size()
	if cap(sc.x) < len(ds)*size {
		sc.x = make([]float32, len(ds)*size)
		sc.out = make([]float32, len(ds))
	}
	sc.rows = sc.rows[:0]
	at := dataset.Micros(sc.s.at)
	for i := range ds {
		d := &ds[i]
		if d.frame == nil {
			sc.unscored = append(sc.unscored, Unscored{Device: d.name, Reason: d.reason, Detail: d.detail})
			continue
		}
		f := d.frame
		last := dataset.TimeOf(f.Time[f.Len()-1])
		maxAge := sc.s.maxAge
		if maxAge == 0 {
			maxAge = defaultMaxAgeWindows * int64(sc.on.Window()) * medianInterval(f.Time)
		}
		if age := at - f.Time[f.Len()-1]; f.Len() >= 2 && age > maxAge {
			sc.unscored = append(sc.unscored, Unscored{Device: d.name, Reason: ReasonStale, LastReading: &last,
				Detail: fmt.Sprintf("last reading %s is %s old at --at, more than --max-age %s", last.Format(time.RFC3339),
					time.Duration(age)*time.Microsecond, time.Duration(maxAge)*time.Microsecond)})
			continue
		}
		k := len(sc.rows)
		u, err := sc.on.Last(f, sc.x[k*size:(k+1)*size])
		if err != nil {
			return fmt.Errorf("score: %w", err)
		}
		if u != nil {
			sc.unscored = append(sc.unscored, Unscored{Device: d.name, Reason: u.Reason, Detail: u.Detail, LastReading: &last})
			continue
		}
		sc.rows = append(sc.rows, i)
	}
	b := len(sc.rows)
	if b == 0 {
		return nil
	}
	if err := sc.m.Forward.Predict(sc.x[:b*size], b, sc.out[:b]); err != nil {
		return fmt.Errorf("score: predict with %s: %w", sc.m.Path, err)
	}
	for k, i := range sc.rows {
		f := ds[i].frame
		v := float64(sc.out[k])
		end := f.Time[f.Len()-1]
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("score: the model %s output %v for device %s (window ending %s)", sc.m.Path, v, ds[i].name, dataset.TimeOf(end).Format(time.RFC3339))
		}
		v = sc.m.Clip(v)
		s := dataset.Score{Tenant: sc.s.DB.Tenant, Device: ds[i].name, Time: end, ScoredAt: at, RUL: v, Lower: math.NaN(), Upper: math.NaN(),
			Level: math.NaN(), Health: sc.th.Classify(v), Change: math.NaN(), ModelVersion: sc.m.Version}
		if sc.interval.OK {
			s.Lower, s.Upper = sc.interval.Of(v)
			s.Level = sc.interval.Level
		}
		sc.scores = append(sc.scores, s)
	}
	return nil
}

// medianInterval is the median positive interval between readings (µs).
func medianInterval(ts []int64) int64 {
	var d []int64
	for i := 1; i < len(ts); i++ {
		if v := ts[i] - ts[i-1]; v > 0 {
			d = append(d, v)
		}
	}
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[len(d)/2]
}

// previous fills each score's change since the device's previous score:
// from the prediction table when a database is at hand, else from the
// scores file being replaced.
func (sc *scorer) previous(ctx context.Context, pool *pgxpool.Pool) error {
	if len(sc.scores) == 0 {
		return nil
	}
	if pool != nil {
		return previousFromDB(ctx, pool, sc.s, sc.scores)
	}
	if sc.s.Out == "" {
		return nil
	}
	if ok, err := location.Exists(ctx, sc.s.Out); err == nil && !ok {
		return nil
	}
	old, _, err := dataset.ReadScores(ctx, sc.s.Out)
	if err != nil {
		sc.env.Log.Warn("score: the existing output is not a readable scores file: no change since the previous score", "out", sc.s.Out, "error", err.Error())
		return nil
	}
	type key struct{ tenant, device string }
	byDevice := map[key][]dataset.Score{}
	for _, o := range old {
		k := key{o.Tenant, o.Device}
		byDevice[k] = append(byDevice[k], o)
	}
	for i := range sc.scores {
		s := &sc.scores[i]
		var best *dataset.Score
		for j, o := range byDevice[key{s.Tenant, s.Device}] {
			if o.Time < s.Time && (best == nil || o.Time > best.Time) {
				best = &byDevice[key{s.Tenant, s.Device}][j]
			}
		}
		if best != nil {
			s.Change, s.PreviousTime = s.RUL-best.RUL, best.Time
		}
	}
	return nil
}

// write commits the outputs: the database rows in one transaction, then the
// scores file (renamed into place only after the transaction committed).
func (sc *scorer) write(ctx context.Context, pool *pgxpool.Pool, src source, res *Result) error {
	var w *dataset.ScoresWriter
	if sc.s.Out != "" {
		meta, err := sc.env.FileMeta(Stage, src.inputs()...)
		if err != nil {
			return fmt.Errorf("score: %w", err)
		}
		meta.MustSet(dataset.MetaSource, res.Source)
		meta.MustSet(dataset.MetaModel, infer.ModelRef{Path: sc.m.Path, SHA256: sc.m.SHA256, ModelVersion: sc.m.Version})
		meta.MustSet(dataset.MetaThresholds, sc.th)
		meta.MustSet(dataset.MetaHorizon, sc.m.Horizon)
		meta.MustSet(dataset.MetaWindow, sc.m.Window)
		meta.MustSet(dataset.MetaFeatures, sc.m.Features)
		if w, err = dataset.CreateScores(sc.s.Out, meta); err != nil {
			return fmt.Errorf("score: %w", err)
		}
		defer w.Abort()
		if err := w.Append(sc.scores); err != nil {
			return fmt.Errorf("score: %w", err)
		}
	}
	if sc.s.ToDB {
		n, err := upsertScores(ctx, pool, sc.s.DB, sc.scores)
		if err != nil {
			return err
		}
		res.DBRows = n
	}
	if w != nil {
		if err := w.Commit(); err != nil {
			return fmt.Errorf("score: %w", err)
		}
		res.Out = sc.s.Out
	}
	return nil
}
