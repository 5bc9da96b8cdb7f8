package features

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/runenv"
)

// Stage is the stage name recorded in the files' metadata.
const Stage = "features"

// chunkWindows is the number of windows a worker hands to the writer at once.
const chunkWindows = 4096

// Result is what the stage did (printed by --output json).
type Result struct {
	Windows     string `json:"windows"`
	Stats       string `json:"stats,omitempty"`
	BucketStats string `json:"bucket_stats,omitempty"`
	// Features are the model's inputs, in order.
	Features     []string           `json:"features"`
	Vibration    []string           `json:"vibration"`
	StatsColumns int                `json:"stats_columns"`
	Window       int                `json:"window"`
	Stride       int                `json:"stride"`
	Horizon      float64            `json:"horizon_hours"`
	Thresholds   dataset.Thresholds `json:"thresholds"`
	Split        SplitSpec          `json:"split"`
	Scaler       dataset.Scaler     `json:"scaler"`
	// Input counts the main input; TestInput the --test-source file.
	Input     Counts  `json:"input"`
	TestInput *Counts `json:"test_input,omitempty"`
	// HealthIndicators rates the input features as health indicators over
	// the training lives (monotonicity, trendability, prognosability).
	HealthIndicators *HealthIndicators `json:"health_indicators"`
	StatsRows        int64             `json:"stats_rows"`
	BucketRows       int64             `json:"bucket_rows"`
	Seconds          float64           `json:"seconds"`
}

// run is the state of one Run.
type run struct {
	s          settings
	env        *runenv.Env
	workers    int
	features   []string // model features (the first len(features) columns read)
	read       []string // columns read: features, then condition columns
	vib        []string
	condIdx    []int // index in read of each condition column
	horizon    float64
	thresholds dataset.Thresholds

	deviceCode map[dataset.DeviceKey]uint8 // split device
	winOffset  []int64                     // split random: first window index per device
	winCode    []uint8                     // split random: code per window
	centers    [][]float64                 // per-condition normalisation
	scaler     dataset.Scaler
	planners   []*planner
	scratch    []*scratch
}

// scratch is per-worker memory reused across devices.
type scratch struct {
	diff    []int32
	covered []bool
	cond    []float64
	calc    *statsCalc
	bucket  []float64
}

// Run builds the windows (and stats) files from a labeled file.
func Run(ctx context.Context, env *runenv.Env, opts Options) (*Result, error) {
	start := time.Now()
	s, err := opts.check()
	if err != nil {
		return nil, err
	}
	if err := atomicfile.CheckOutputs([]atomicfile.Path{atomicfile.P("--labeled", opts.Labeled), atomicfile.P("--test-source", opts.TestSource)},
		[]atomicfile.Path{atomicfile.P("--out", s.Out), atomicfile.P("--stats", s.Stats), atomicfile.P("--bucket-out", s.BucketOut)}); err != nil {
		return nil, err
	}
	r := &run{s: s, env: env, workers: opts.Workers}
	if r.workers == 0 {
		r.workers = env.Workers
	}
	if r.workers <= 0 {
		r.workers = runtime.GOMAXPROCS(0)
	}
	res, err := r.run(ctx)
	if err != nil {
		return nil, err
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

func (r *run) run(ctx context.Context) (*Result, error) {
	s := &r.s
	in, err := dataset.Open(s.Labeled, dataset.KindLabeled)
	if err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	sensors, err := in.Sensors()
	in.Close()
	if err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	if r.horizon, r.thresholds, err = labelMeta(in.Loc(), in.Meta()); err != nil {
		return nil, err
	}
	if r.features, r.read, r.vib, err = s.resolveFeatures(sensors); err != nil {
		return nil, err
	}
	for _, c := range s.ConditionColumns {
		r.condIdx = append(r.condIdx, slices.Index(r.read, c))
	}
	inputs := []string{s.Labeled}
	if s.TestSource != "" {
		if err := r.checkTestSource(); err != nil {
			return nil, err
		}
		inputs = append(inputs, s.TestSource)
	}
	r.planners = make([]*planner, r.workers)
	r.scratch = make([]*scratch, r.workers)
	for i := range r.workers {
		r.planners[i] = &planner{window: s.Window, stride: s.Stride, maxGap: s.maxGap, maxFill: s.MaxFill}
		r.scratch[i] = &scratch{calc: newStatsCalc(r.features, r.vib, s.Fs, s.PSDSegment)}
	}
	r.env.Log.Info("features: start", "labeled", s.Labeled, "test_source", s.TestSource, "features", len(r.features),
		"window", s.Window, "stride", s.Stride, "split", s.Split, "scaler", s.Scaler, "workers", r.workers)

	if err := r.planSplit(ctx); err != nil {
		return nil, err
	}
	if len(s.ConditionColumns) > 0 {
		if err := r.findConditions(ctx); err != nil {
			return nil, err
		}
	}
	if err := r.fit(ctx); err != nil {
		return nil, err
	}
	meta, err := r.env.FileMeta(Stage, inputs...)
	if err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	return r.write(ctx, meta)
}

// labelMeta reads the horizon and thresholds of a labeled file.
func labelMeta(loc string, m dataset.Meta) (float64, dataset.Thresholds, error) {
	var h float64
	th := dataset.DefaultThresholds
	ok, err := m.Get(dataset.MetaHorizon, &h)
	if err != nil {
		return 0, th, fmt.Errorf("features: %s: %w", loc, err)
	}
	if !ok || !(h > 0) {
		return 0, th, fmt.Errorf("features: %s: labeled file lacks a positive %s", loc, dataset.MetaHorizon)
	}
	if _, err := m.Get(dataset.MetaThresholds, &th); err != nil {
		return 0, th, fmt.Errorf("features: %s: %w", loc, err)
	}
	return h, th, nil
}

// checkTestSource checks that the test file has the columns read and the same
// label definition.
func (r *run) checkTestSource() error {
	t, err := dataset.Open(r.s.TestSource, dataset.KindLabeled)
	if err != nil {
		return fmt.Errorf("features: --test-source: %w", err)
	}
	defer t.Close()
	sensors, err := t.Sensors()
	if err != nil {
		return fmt.Errorf("features: --test-source: %w", err)
	}
	for _, c := range r.read {
		if !slices.Contains(sensors, c) {
			return usage("--test-source %s lacks sensor %q", r.s.TestSource, c)
		}
	}
	h, th, err := labelMeta(t.Loc(), t.Meta())
	if err != nil {
		return err
	}
	if h != r.horizon || th != r.thresholds {
		return usage("--test-source %s was labeled with horizon %g h and thresholds %g/%g h, %s with %g h and %g/%g h: label both alike",
			r.s.TestSource, h, th.Critical, th.Warning, r.s.Labeled, r.horizon, r.thresholds.Critical, r.thresholds.Warning)
	}
	return nil
}

// scan runs one pass over a labeled file through the ordered pipeline.
func scan[T any](ctx context.Context, r *run, loc, label string,
	work func(ctx context.Context, worker, seq int, f *dataset.Frame, emit func(T) error) error,
	consume func(seq int, item T) error,
) error {
	in, err := dataset.Open(loc, dataset.KindLabeled)
	if err != nil {
		return fmt.Errorf("features: %w", err)
	}
	defer in.Close()
	bar := r.env.Progress("features: "+label, "rows", in.NumRows())
	defer bar.Finish()
	err = ordered(ctx, in.DeviceFrames(ctx, r.read), r.workers,
		func(ctx context.Context, worker, seq int, f *dataset.Frame, emit func(T) error) error {
			n := f.Len()
			err := work(ctx, worker, seq, f, emit)
			bar.Add(int64(n))
			return err
		}, consume)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return fmt.Errorf("features: %s: %w", label, err)
	}
	return nil
}

// planSplit decides what it can before reading sensor values: the devices of
// each split (device), or the split of every window (random: one counting
// pass, then the design's two train_test_split calls on the window indices).
func (r *run) planSplit(ctx context.Context) error {
	s := &r.s
	testSize := s.TestSize
	if s.TestSource != "" {
		testSize = 0
	}
	switch s.Split {
	case SplitDevice:
		keys, err := deviceKeys(ctx, s.Labeled)
		if err != nil {
			return err
		}
		codes, err := assignSplits(len(keys), testSize, s.ValSize, s.Seed)
		if err != nil {
			return fmt.Errorf("%w: features: --split device: %w", exitcode.ErrValidation, err)
		}
		r.deviceCode = make(map[dataset.DeviceKey]uint8, len(keys))
		for i, k := range keys {
			r.deviceCode[k] = codes[i]
		}
	case SplitRandom:
		var counts []int64
		err := scan(ctx, r, s.Labeled, "count windows", func(_ context.Context, w, seq int, f *dataset.Frame, emit func(int64) error) error {
			return emit(int64(len(r.planners[w].prepare(seq, f).ends)))
		}, func(_ int, n int64) error {
			counts = append(counts, n)
			return nil
		})
		if err != nil {
			return err
		}
		r.winOffset = make([]int64, len(counts)+1)
		for i, n := range counts {
			r.winOffset[i+1] = r.winOffset[i] + n
		}
		total := r.winOffset[len(counts)]
		if total > math.MaxUint32 {
			return fmt.Errorf("features: --split random: %d windows exceed numpy's 32-bit permutation", total)
		}
		if r.winCode, err = assignSplits(int(total), testSize, s.ValSize, s.Seed); err != nil {
			return fmt.Errorf("%w: features: --split random: %w", exitcode.ErrValidation, err)
		}
	}
	return nil
}

// deviceKeys lists the devices of a file, sorted.
func deviceKeys(ctx context.Context, loc string) ([]dataset.DeviceKey, error) {
	in, err := dataset.Open(loc, dataset.KindLabeled)
	if err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	defer in.Close()
	keys, err := in.Devices(ctx)
	if err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	return keys, nil
}

// assign sets the split code of every window of d and drops the windows that
// belong to no split.
func (r *run) assign(d *device, test bool) {
	s := &r.s
	switch {
	case test:
		fillCodes(d.code, codeTest)
	case s.Split == SplitDevice:
		fillCodes(d.code, r.deviceCode[dataset.DeviceKey{Tenant: d.f.Tenant, Device: d.f.Device}])
	case s.Split == SplitRandom:
		copy(d.code, r.winCode[r.winOffset[d.seq]:])
	case s.Split == SplitTime:
		hUS := r.horizon * 3.6e9
		for i, e := range d.ends {
			end := d.f.Time[e]
			if end >= s.cutoff {
				d.code[i] = codeTest
				continue
			}
			// A retrain at the cutoff knows the label only if the failure
			// happened by then, or if no failure within the horizon was
			// possible (capped label).
			raw := d.f.RULRaw[e]
			known := float64(s.cutoff-end) >= hUS || (!math.IsNaN(raw) && float64(end)+raw*3.6e9 <= float64(s.cutoff))
			switch {
			case !known:
				d.code[i] = codeNone
				d.c.DroppedFuture++
			case end >= s.valCutoff:
				d.code[i] = codeVal
			default:
				d.code[i] = codeTrain
			}
		}
	}
	d.keep()
}

func fillCodes(dst []uint8, c uint8) {
	for i := range dst {
		dst[i] = c
	}
}

// trainRows calls fn for every row of d covered by a train window.
func (r *run) trainRows(d *device, sc *scratch, fn func(i int)) {
	n := d.f.Len()
	if cap(sc.diff) < n+1 {
		sc.diff = make([]int32, n+1)
		sc.covered = make([]bool, n)
	}
	if !d.cover(codeTrain, r.s.Window, sc.diff[:n+1], sc.covered[:n]) {
		return
	}
	for i, c := range sc.covered[:n] {
		if c {
			fn(i)
		}
	}
}

// condValues returns the condition values of row i in sc.cond.
func (r *run) condValues(d *device, sc *scratch, i int) []float64 {
	sc.cond = sc.cond[:0]
	for _, c := range r.condIdx {
		sc.cond = append(sc.cond, d.cols[c][i])
	}
	return sc.cond
}

// findConditions finds the operating conditions on the rows of train windows.
func (r *run) findConditions(ctx context.Context) error {
	s := &r.s
	acc := newCondAcc(s.ConditionDecimals)
	var rows int64
	err := scan(ctx, r, s.Labeled, "conditions", func(_ context.Context, w, seq int, f *dataset.Frame, emit func(*condAcc) error) error {
		d := r.planners[w].prepare(seq, f)
		r.assign(d, false)
		a := newCondAcc(s.ConditionDecimals)
		sc := r.scratch[w]
		r.trainRows(d, sc, func(i int) { a.add(r.condValues(d, sc, i)) })
		return emit(a)
	}, func(_ int, a *condAcc) error {
		for _, k := range a.keys {
			rows += k.n
		}
		acc.merge(a)
		return nil
	})
	if err != nil {
		return err
	}
	if rows == 0 {
		return fmt.Errorf("%w: features: no training windows to find operating conditions on", exitcode.ErrValidation)
	}
	minRows := max(2, int64(math.Ceil(0.005*float64(rows))))
	r.centers = acc.centers(minRows)
	r.env.Log.Info("features: operating conditions", "columns", s.ConditionColumns, "decimals", s.ConditionDecimals,
		"rounded_keys", len(acc.keys), "conditions", len(r.centers), "min_rows", minRows)
	return nil
}

// nearest returns the condition of a row (0 without conditions).
func (r *run) nearest(v []float64) int { return dataset.NearestCenter(r.centers, v) }

// fit fits the scaler on the rows of the train windows (each row once).
func (r *run) fit(ctx context.Context) error {
	s := &r.s
	nf := len(r.features)
	nc := max(1, len(r.centers))
	if s.Scaler == ScalerNone {
		r.scaler = dataset.Scaler{Kind: ScalerNone, Features: r.features, Offset: make([]float64, nf), Scale: ones(nf), FitSplit: dataset.SplitTrain}
		return nil
	}
	acc := newFitAcc(nc, nf)
	err := scan(ctx, r, s.Labeled, "fit scaler", func(_ context.Context, w, seq int, f *dataset.Frame, emit func(*fitAcc) error) error {
		d := r.planners[w].prepare(seq, f)
		r.assign(d, false)
		a := newFitAcc(nc, nf)
		sc := r.scratch[w]
		r.trainRows(d, sc, func(i int) {
			k := 0
			if r.centers != nil {
				k = r.nearest(r.condValues(d, sc, i))
			}
			m := a.m[k*nf : (k+1)*nf]
			for j := range nf {
				m[j].add(d.cols[j][i])
			}
		})
		return emit(a)
	}, func(_ int, a *fitAcc) error {
		acc.merge(a)
		return nil
	})
	if err != nil {
		return err
	}
	var conds *dataset.ConditionScaler
	if r.centers != nil {
		conds = &dataset.ConditionScaler{Columns: s.ConditionColumns, Decimals: s.ConditionDecimals, Centers: r.centers}
	}
	r.scaler = acc.scaler(s.Scaler, r.features, conds)
	if r.scaler.FitRows == 0 {
		return fmt.Errorf("%w: features: no training windows to fit the scaler on (lives shorter than --window %d, or every window dropped?)", exitcode.ErrValidation, s.Window)
	}
	if conds != nil {
		for k, n := range conds.FitRows {
			if n == 0 {
				r.env.Log.Warn("features: operating condition without training rows: identity scaling", "condition", k, "center", r.centers[k])
			}
		}
	}
	r.env.Log.Info("features: scaler fitted on the train split", "kind", s.Scaler, "rows", r.scaler.FitRows, "conditions", nc)
	return nil
}

func ones(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = 1
	}
	return out
}

// scale fills d.x with the scaled features of the rows the windows cover.
func (r *run) scale(d *device, sc *scratch) {
	nf := len(r.features)
	n := d.f.Len()
	if len(d.ends) == 0 {
		return
	}
	d.x = make([]float32, n*nf)
	lo := int(d.ends[0]) - r.s.Window + 1
	hi := int(d.ends[len(d.ends)-1]) + 1
	sc.cond = scaleRows(&r.scaler, d.cols, nf, r.condIdx, sc.cond, lo, hi, d.x[lo*nf:hi*nf])
}

// scaleRows writes the scaled features of rows [lo, hi) of cols (features
// first, then the condition columns at condIdx) into dst, row-major
// ((hi−lo) × nf float32): (x − offset)/scale with the global parameters, or
// with those of each row's nearest operating condition. cond is scratch for
// a row's condition values (returned for reuse). It is the one scaling of the
// windows file and of `score`.
func scaleRows(s *dataset.Scaler, cols [][]float64, nf int, condIdx []int, cond []float64, lo, hi int, dst []float32) []float64 {
	off, scl := s.Offset, s.Scale
	c := s.Conditions
	for i := lo; i < hi; i++ {
		if c != nil {
			cond = cond[:0]
			for _, k := range condIdx {
				cond = append(cond, cols[k][i])
			}
			k := c.Condition(cond)
			off, scl = c.Offset[k], c.Scale[k]
		}
		row := dst[(i-lo)*nf : (i-lo+1)*nf]
		for j := range row {
			row[j] = float32((cols[j][i] - off[j]) / scl[j])
		}
	}
	return cond
}

// chunk is a run of windows of one device handed to the writer, with their
// stats rows, and (first chunk of a device) the device's time buckets.
type chunk struct {
	d      *device
	lo, hi int
	stats  *[]float64 // (hi−lo) × stats width; pooled
	bucket *buckets
	last   bool
}

type buckets struct {
	start, n []int64
	vals     []float64 // len(start) × stats width
}

// write is the final pass: windows, stats and time buckets.
func (r *run) write(ctx context.Context, meta dataset.Meta) (*Result, error) {
	s := &r.s
	res := &Result{Windows: s.Out, Stats: s.Stats, Features: r.features, Vibration: r.vib, Window: s.Window, Stride: s.Stride,
		Horizon: r.horizon, Thresholds: r.thresholds, Scaler: r.scaler}
	if res.Vibration == nil {
		res.Vibration = []string{}
	}
	statCols := statColumns(r.features, r.vib)
	res.StatsColumns = len(statCols)
	width := len(statCols)
	wm := dataset.WindowsMeta{Window: s.Window, Stride: s.Stride, Features: r.features, Scaler: r.scaler, Horizon: r.horizon, Thresholds: r.thresholds}
	// The windows, stats and bucket files are one write set: each records
	// its ID (readers of a pair refuse a mix) and they are renamed into place
	// together, or not at all.
	set := atomicfile.NewSet()
	defer set.Abort()
	inSet := dataset.InSet(set)
	ww, err := dataset.CreateWindows(s.Out, wm, meta, inSet)
	if err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	defer ww.Abort()
	var sw, bw *dataset.StatsWriter
	if s.Stats != "" {
		m := meta.Clone()
		m.MustSet(dataset.MetaSensors, r.features)
		m.MustSet(dataset.MetaWindow, s.Window)
		m.MustSet(dataset.MetaStride, s.Stride)
		m.MustSet(dataset.MetaHorizon, r.horizon)
		m.MustSet(dataset.MetaThresholds, r.thresholds)
		if sw, err = dataset.CreateStats(s.Stats, statCols, m, inSet); err != nil {
			return nil, fmt.Errorf("features: %w", err)
		}
		defer sw.Abort()
	}
	if s.StatsBucket > 0 {
		m := meta.Clone()
		m.MustSet(dataset.MetaSensors, r.features)
		if bw, err = dataset.CreateBucketStats(s.BucketOut, statCols, s.StatsBucket.D(), m, inSet); err != nil {
			return nil, fmt.Errorf("features: %w", err)
		}
		defer bw.Abort()
		res.BucketStats = s.BucketOut
	}
	pool := sync.Pool{New: func() any { b := make([]float64, chunkWindows*width); return &b }}
	spec := SplitSpec{Method: s.Split, Seed: s.Seed, TestSize: s.TestSize, ValSize: s.ValSize, Cutoff: s.Cutoff, ValCutoff: s.ValCutoff,
		TestSource: s.TestSource, Windows: map[string]int64{}, Devices: map[string]int{}}
	if s.TestSource != "" {
		spec.TestSize = 0
	}
	switch s.Split {
	case SplitRandom:
		spec.Leaky = true
		spec.Note = "windows split at random (the design's train_test_split twice): overlapping windows of one device are in train and test, so test metrics are optimistic"
	case SplitTime:
		spec.Note = "train/val windows whose label was not yet known at the cutoff are dropped"
	}

	bucketUS := int64(s.StatsBucket.D() / time.Microsecond)
	work := func(test bool) func(ctx context.Context, w, seq int, f *dataset.Frame, emit func(*chunk) error) error {
		return func(ctx context.Context, w, seq int, f *dataset.Frame, emit func(*chunk) error) error {
			sc := r.scratch[w]
			var bk *buckets
			if bw != nil && !test {
				bk = r.buckets(f, bucketUS, width, sc)
			}
			d := r.planners[w].prepare(seq, f)
			r.assign(d, test)
			r.scale(d, sc)
			n := len(d.ends)
			for lo := 0; lo < n || lo == 0; lo += chunkWindows {
				hi := min(n, lo+chunkWindows)
				c := &chunk{d: d, lo: lo, hi: hi, last: hi == n}
				if lo == 0 {
					c.bucket = bk
				}
				if sw != nil && hi > lo {
					c.stats = pool.Get().(*[]float64)
					buf := *c.stats
					for k := lo; k < hi; k++ {
						e := int(d.ends[k])
						sc.calc.row(buf[(k-lo)*width:(k-lo+1)*width], d.cols, e-s.Window+1, e+1)
					}
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := emit(c); err != nil {
					return err
				}
			}
			return nil
		}
	}
	var counts *Counts
	hi := newHIAcc(r.features)
	win := &dataset.Window{}
	row := &dataset.StatsRow{}
	consume := func(_ int, c *chunk) error {
		d := c.d
		nf := len(r.features)
		win.Tenant, win.Device = d.f.Tenant, d.f.Device
		row.Tenant, row.Device = d.f.Tenant, d.f.Device
		for k := c.lo; k < c.hi; k++ {
			e := int(d.ends[k])
			win.LifeID, win.End = d.f.LifeID[e], d.f.Time[e]
			win.RUL, win.RULRaw, win.Health = d.f.RUL[e], d.f.RULRaw[e], d.f.Health[e]
			win.Split = splitNames[d.code[k]]
			win.X = d.x[(e-s.Window+1)*nf : (e+1)*nf]
			if err := ww.Append(win); err != nil {
				return err
			}
			hi.add(win, win.X, s.Window)
			spec.Windows[win.Split]++
			if sw != nil {
				row.LifeID, row.End, row.RUL, row.RULRaw, row.Health, row.Split = win.LifeID, win.End, win.RUL, win.RULRaw, win.Health, win.Split
				if err := sw.Append(row, (*c.stats)[(k-c.lo)*width:(k-c.lo+1)*width]); err != nil {
					return err
				}
				res.StatsRows++
			}
		}
		if c.stats != nil {
			pool.Put(c.stats)
		}
		if b := c.bucket; b != nil {
			for i := range b.start {
				if err := bw.AppendBucket(d.f.Tenant, d.f.Device, b.start[i], b.n[i], b.vals[i*width:(i+1)*width]); err != nil {
					return err
				}
			}
			res.BucketRows += int64(len(b.start))
		}
		if c.last {
			counts.add(&d.c)
			var seen [4]bool
			for _, code := range d.code {
				seen[code] = true
			}
			for code, ok := range seen {
				if ok {
					spec.Devices[splitNames[code]]++
				}
			}
		}
		return nil
	}
	counts = &res.Input
	if err := scan(ctx, r, s.Labeled, "windows", work(false), consume); err != nil {
		return nil, err
	}
	if s.TestSource != "" {
		res.TestInput = &Counts{}
		counts = res.TestInput
		if err := scan(ctx, r, s.TestSource, "test windows", work(true), consume); err != nil {
			return nil, err
		}
	}
	res.Split = spec
	res.HealthIndicators = hi.result()
	if spec.Windows[dataset.SplitTrain] == 0 {
		return nil, fmt.Errorf("%w: features: no training windows (%d rows, %d devices; lives shorter than --window %d?)", exitcode.ErrValidation, res.Input.Rows, res.Input.Devices, s.Window)
	}
	m := dataset.Meta{}
	m.MustSet(dataset.MetaSplit, spec)
	for _, w := range []*dataset.Writer{ww.Writer, writerOf(sw), writerOf(bw)} {
		if w != nil {
			if err := w.SetMeta(dataset.MetaSplit, m[dataset.MetaSplit]); err != nil {
				return nil, fmt.Errorf("features: %w", err)
			}
		}
	}
	m.MustSet(dataset.MetaHealthIndicators, res.HealthIndicators)
	if err := ww.SetMeta(dataset.MetaHealthIndicators, m[dataset.MetaHealthIndicators]); err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	if err := ww.Commit(); err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	if sw != nil {
		if err := sw.Commit(); err != nil {
			return nil, fmt.Errorf("features: %w", err)
		}
	}
	if bw != nil {
		if err := bw.Commit(); err != nil {
			return nil, fmt.Errorf("features: %w", err)
		}
	}
	if err := set.Commit(); err != nil {
		return nil, fmt.Errorf("features: %w (the previous %s are left as they were)", err, strings.Join(outputs(s.Out, s.Stats, res.BucketStats), ", "))
	}
	r.log(res)
	return res, nil
}

// outputs are the paths that are not empty.
func outputs(paths ...string) []string {
	return slices.DeleteFunc(paths, func(p string) bool { return p == "" })
}

func writerOf(w *dataset.StatsWriter) *dataset.Writer {
	if w == nil {
		return nil
	}
	return w.Writer
}

// buckets computes the time-bucketed stats of a device's raw rows (before
// the forward fill): per bucket [k·b, (k+1)·b) of the Unix epoch, each
// sensor's statistics over its present values.
func (r *run) buckets(f *dataset.Frame, bucketUS int64, width int, sc *scratch) *buckets {
	b := &buckets{}
	n := f.Len()
	for lo := 0; lo < n; {
		k := floorDiv(f.Time[lo], bucketUS)
		hi := lo + 1
		for hi < n && floorDiv(f.Time[hi], bucketUS) == k {
			hi++
		}
		b.start = append(b.start, k*bucketUS)
		b.n = append(b.n, int64(hi-lo))
		b.vals = slices.Grow(b.vals, width)[:len(b.vals)+width]
		sc.bucket = sc.calc.rowSkipNaN(b.vals[len(b.vals)-width:], f.Sensors, lo, hi, sc.bucket)
		lo = hi
	}
	return b
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func (r *run) log(res *Result) {
	c := &res.Input
	r.env.Log.Info("features: done", "windows", c.Windows, "train", res.Split.Windows[dataset.SplitTrain], "val", res.Split.Windows[dataset.SplitVal],
		"test", res.Split.Windows[dataset.SplitTest], "devices", c.Devices, "lives", c.Lives, "rows", c.Rows,
		"gap_splits", c.GapSplits, "short_segments", c.ShortSegments, "censored_rows", c.CensoredRows,
		"filled_values", c.FilledValues, "missing_values", c.MissingValues, "dropped_missing", c.DroppedMissing,
		"dropped_censored", c.DroppedCensored, "dropped_future_label", c.DroppedFuture, "stats_rows", res.StatsRows, "bucket_rows", res.BucketRows)
	if c.DroppedMissing > 0 {
		r.env.Log.Warn("features: windows dropped for missing values after the forward fill", "windows", c.DroppedMissing, "max_fill", r.s.MaxFill)
	}
	if t := res.TestInput; t != nil {
		r.env.Log.Info("features: test source", "windows", t.Windows, "devices", t.Devices, "short_segments", t.ShortSegments, "dropped_missing", t.DroppedMissing)
	}
	if res.Split.Leaky {
		r.env.Log.Warn("features: --split random is leaky: overlapping windows of one device are in train and test")
	}
}
