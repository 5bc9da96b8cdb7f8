package collect

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/duration"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/pg"
)

// SyntheticOptions size and shape the simulated fleet.
type SyntheticOptions struct {
	// Tenant of every device; set from db.tenant by Run ("default" when empty).
	Tenant string `yaml:"-"`
	// Devices is the number of machines ("dev-001", "dev-002", ...).
	Devices int `yaml:"devices"`
	// Days of history per device, sampled every Interval from Start.
	Days     float64           `yaml:"days"`
	Interval duration.Duration `yaml:"interval"`
	// Start is the RFC 3339 time of the first sample.
	Start string `yaml:"start"`
	// Seed makes the fleet reproducible: the same options give the same rows.
	Seed int64 `yaml:"seed"`
	// MeanLifeHours is the mean operating time between repair and failure.
	MeanLifeHours float64 `yaml:"mean_life_hours"`
	// MissingRate is the probability that one sensor value is missing (null).
	MissingRate float64 `yaml:"missing_rate"`
	// DropoutsPerDay is the expected number of sensor dropouts per device and
	// day: one sensor then reports nothing for 30 minutes to 6 hours.
	DropoutsPerDay float64 `yaml:"dropouts_per_day"`
	// Drift changes the fleet from a point in time on (drift.go).
	Drift SyntheticDrift `yaml:"drift"`
}

// DefaultSyntheticOptions returns the built-in default fleet: 20 devices, 60
// days at 10-minute samples (172,800 readings, about 70 failures) — collected
// in about a second, and small enough for the whole pipeline to run in a
// couple of minutes on 2 cores.
func DefaultSyntheticOptions() SyntheticOptions {
	return SyntheticOptions{
		Devices:        20,
		Days:           60,
		Interval:       duration.Duration(10 * time.Minute),
		Start:          "2024-01-01T00:00:00Z",
		Seed:           42,
		MeanLifeHours:  360,
		MissingRate:    0.001,
		DropoutsPerDay: 0.02,
	}
}

// SyntheticSensors are the sensors of the simulated fleet: the design's five.
var SyntheticSensors = slices.Clone(pg.DefaultSensors)

// SyntheticComponents are the components that fail, each with its own
// signature on the sensors.
var SyntheticComponents = []string{"spindle_bearing", "motor_winding", "ball_screw"}

// componentEffect is how a worn component shows on the sensors at full wear.
type componentEffect struct {
	prob    float64    // share of the failures
	vib     [3]float64 // relative vibration amplitude increase per axis (x, y, z)
	temp    float64    // °C temperature rise
	current float64    // relative current drift
	impulse float64    // rate of impulsive vibration spikes
}

var componentEffects = []componentEffect{
	{prob: 0.45, vib: [3]float64{1.6, 1.3, 2.0}, temp: 9, current: 0.05, impulse: 0.15},  // spindle_bearing
	{prob: 0.30, vib: [3]float64{0.45, 0.45, 0.35}, temp: 16, current: 0.22, impulse: 0}, // motor_winding
	{prob: 0.25, vib: [3]float64{2.0, 0.5, 0.7}, temp: 5, current: 0.12, impulse: 0.05},  // ball_screw
}

// Operating regimes: load factor and how long the machine stays in one.
var regimeLoad = []float64{0.15, 0.55, 0.95} // idle, normal, heavy
var regimeProb = []float64{0.2, 0.5, 0.3}

const (
	meanDwellHours = 3.0
	thermalTauMin  = 45.0
)

func (o SyntheticOptions) check() error {
	switch {
	case o.Devices < 1 || o.Devices > 1_000_000:
		return fmt.Errorf("%w: collect.synthetic.devices (--devices) = %d: want 1 to 1000000", exitcode.ErrUsage, o.Devices)
	case !(o.Days > 0) || o.Days > 36500:
		return fmt.Errorf("%w: collect.synthetic.days (--days) = %v: want > 0 and at most 36500", exitcode.ErrUsage, o.Days)
	case o.Interval.D() < time.Second:
		return fmt.Errorf("%w: collect.synthetic.interval (--interval) = %s: want at least 1s", exitcode.ErrUsage, o.Interval)
	case !(o.MeanLifeHours >= 10):
		return fmt.Errorf("%w: collect.synthetic.mean_life_hours = %v: want at least 10", exitcode.ErrUsage, o.MeanLifeHours)
	case !(o.MissingRate >= 0 && o.MissingRate < 1):
		return fmt.Errorf("%w: collect.synthetic.missing_rate = %v: want 0 <= rate < 1", exitcode.ErrUsage, o.MissingRate)
	case !(o.DropoutsPerDay >= 0 && o.DropoutsPerDay <= 1000):
		return fmt.Errorf("%w: collect.synthetic.dropouts_per_day = %v: want 0 to 1000", exitcode.ErrUsage, o.DropoutsPerDay)
	}
	if _, err := o.start(); err != nil {
		return err
	}
	if err := o.Drift.check(); err != nil {
		return err
	}
	if n := o.steps(); n > 1<<31 {
		return fmt.Errorf("%w: collect.synthetic: %d samples per device is too many (fewer days or a longer interval)", exitcode.ErrUsage, n)
	}
	return nil
}

func (o SyntheticOptions) start() (time.Time, error) {
	if o.Start == "" {
		return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), nil
	}
	t, err := time.Parse(time.RFC3339Nano, o.Start)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: collect.synthetic.start %q: want an RFC 3339 time such as 2024-01-01T00:00:00Z", exitcode.ErrUsage, o.Start)
	}
	return t.UTC(), nil
}

// steps is the number of sample times per device.
func (o SyntheticOptions) steps() int64 {
	return int64(o.Days * 24 * float64(time.Hour) / float64(o.Interval.D()))
}

// Rows returns an upper bound of the readings the fleet holds (repair
// downtime removes some), for progress bars.
func (o SyntheticOptions) Rows() int64 { return int64(o.Devices) * o.steps() }

// DeviceID returns the id of device i (0-based) of a fleet of n devices:
// "dev-001" style, zero-padded so that byte order is numeric order.
func DeviceID(i, n int) string {
	w := max(3, len(fmt.Sprint(n)))
	return fmt.Sprintf("dev-%0*d", w, i+1)
}

// Synthetic generates the whole fleet in memory: one frame per device in
// device order, and the failures sorted by device and time. Use
// SyntheticFleet for fleets that should not be held in memory at once.
func Synthetic(ctx context.Context, opts SyntheticOptions) ([]*dataset.Frame, []dataset.Failure, error) {
	var frames []*dataset.Frame
	var failures []dataset.Failure
	err := SyntheticFleet(ctx, opts, func(f *dataset.Frame, fs []dataset.Failure) error {
		frames = append(frames, f)
		failures = append(failures, fs...)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return frames, failures, nil
}

// SyntheticFleet generates the fleet device by device and calls fn with each
// device's frame (sensors SyntheticSensors, missing values NaN) and its
// failures, in device order. The frame is fn's to keep. Generation is
// deterministic: device i draws from its own random stream seeded by
// (opts.Seed, i), so the same options always give the same fleet.
//
// The simulator (documented in the README): each device runs through
// operating regimes (idle, normal, heavy load) with hours-long dwell times;
// current, vibration (x, y, z) and temperature (with thermal lag and a daily
// ambient cycle) follow the load. A component (spindle bearing, motor winding
// or ball screw) wears out after a random onset with an accelerating power law
// and fails when the wear reaches 1; wear raises the vibration amplitude and
// temperature and drifts the current, with a signature per component, plus
// impulsive vibration spikes near the end. The device is repaired (a few hours
// to a day without readings) and starts a new life. Noise, missing values and
// sensor dropouts are added on top. The last life of each device is censored
// (no failure before the data ends).
func SyntheticFleet(ctx context.Context, opts SyntheticOptions, fn func(*dataset.Frame, []dataset.Failure) error) error {
	if err := opts.check(); err != nil {
		return err
	}
	tenant := opts.Tenant
	if tenant == "" {
		tenant = "default"
	}
	start, _ := opts.start()
	for i := range opts.Devices {
		if err := ctx.Err(); err != nil {
			return err
		}
		f, fs := simulateDevice(tenant, DeviceID(i, opts.Devices), opts, dataset.Micros(start), uint64(i))
		opts.Drift.apply(f)
		if err := fn(f, fs); err != nil {
			return err
		}
	}
	return nil
}

// life is one run of a component from repair to failure.
type life struct {
	start     int64   // µs
	hours     float64 // operating hours from start to failure
	onset     float64 // hours: wear starts
	power     float64 // wear exponent
	severity  float64 // scales the component's effect
	component int
}

func newLife(rng *rand.Rand, start int64, meanHours float64) life {
	const sigma = 0.25
	h := meanHours * math.Exp(sigma*rng.NormFloat64()-sigma*sigma/2)
	h = min(max(h, 0.35*meanHours), 3*meanHours)
	u := rng.Float64()
	c := 0
	for acc := 0.0; c < len(componentEffects)-1; c++ {
		acc += componentEffects[c].prob
		if u < acc {
			break
		}
	}
	return life{
		start:     start,
		hours:     h,
		onset:     h * (0.3 + 0.2*rng.Float64()),
		power:     2 + 0.8*rng.Float64(),
		severity:  0.85 + 0.3*rng.Float64(),
		component: c,
	}
}

// wear returns the component wear in [0, 1] after age operating hours.
func (l *life) wear(age float64) float64 {
	if age <= l.onset {
		return 0
	}
	return math.Pow(min((age-l.onset)/(l.hours-l.onset), 1), l.power)
}

func pickRegime(rng *rand.Rand, not int) int {
	for {
		u := rng.Float64()
		r := 0
		for acc := 0.0; r < len(regimeProb)-1; r++ {
			acc += regimeProb[r]
			if u < acc {
				break
			}
		}
		if r != not {
			return r
		}
	}
}

func simulateDevice(tenant, device string, o SyntheticOptions, start int64, idx uint64) (*dataset.Frame, []dataset.Failure) {
	rng := rand.New(rand.NewPCG(uint64(o.Seed), idx))
	const hourUS = float64(time.Hour / time.Microsecond)
	step := o.Interval.D().Microseconds()
	dtH := float64(step) / hourUS
	n := o.steps()

	// Device constants: manufacturing and installation variation.
	currentGain := 1 + 0.06*rng.NormFloat64()
	vibGain := [3]float64{1.2 * (1 + 0.08*rng.NormFloat64()), 1.0 * (1 + 0.08*rng.NormFloat64()), 0.8 * (1 + 0.08*rng.NormFloat64())}
	tempOffset := 1.5 * rng.NormFloat64()
	ambientPhase := 2 * math.Pi * rng.Float64()
	meter := 1000 + 19000*rng.Float64() // hour meter at the first sample

	f := dataset.NewFrame(tenant, device, len(SyntheticSensors), false)
	f.Time = make([]int64, 0, n)
	for s := range f.Sensors {
		f.Sensors[s] = make([]float64, 0, n)
	}
	var failures []dataset.Failure

	// The first life began before the data: its virtual start is in the past.
	cur := newLife(rng, start, o.MeanLifeHours)
	initialAge := cur.hours * 0.7 * rng.Float64()
	cur.start = start - int64(initialAge*hourUS)
	meterAtStart := meter - initialAge // hour meter when the current life began
	regime := pickRegime(rng, -1)
	dwell := rng.ExpFloat64() * meanDwellHours
	ambient := func(t int64) float64 {
		return 22 + 3*math.Sin(2*math.Pi*float64(t)/(24*hourUS)+ambientPhase)
	}
	temp := ambient(start) + 10 + 25*regimeLoad[regime] + tempOffset
	alpha := 1 - math.Exp(-dtH*60/thermalTauMin)
	dropSensor, dropUntil := -1, int64(math.MinInt64)
	pDrop := o.DropoutsPerDay * dtH / 24
	var row [5]float64

	for k := range n {
		t := start + k*step
		if t < cur.start {
			continue // under repair
		}
		age := float64(t-cur.start) / hourUS
		for age >= cur.hours {
			// The component failed between the previous sample and this one;
			// the repair takes 4 to 36 hours, then a new life begins.
			failAt := cur.start + int64(cur.hours*hourUS)
			failures = append(failures, dataset.Failure{
				Tenant: tenant, Device: device, Time: failAt, EventType: "failure",
				Component: SyntheticComponents[cur.component], OpHours: math.Round((meterAtStart+cur.hours)*100) / 100,
			})
			meterAtStart += cur.hours
			cur = newLife(rng, failAt+int64((4+32*rng.Float64())*hourUS), o.MeanLifeHours)
			temp = ambient(cur.start) // cooled down during the repair
			age = float64(t-cur.start) / hourUS
		}
		if age < 0 {
			continue // under repair
		}

		// Operating regime: a Markov chain with exponential dwell times.
		dwell -= dtH
		if dwell <= 0 {
			regime = pickRegime(rng, regime)
			dwell = rng.ExpFloat64() * meanDwellHours
		}
		load := regimeLoad[regime]
		w := cur.wear(age)
		eff := componentEffects[cur.component]
		sev := cur.severity * w

		// Current: follows the load, drifts with wear.
		current := (4 + 16*load) * currentGain * (1 + eff.current*sev)
		row[0] = current + 0.25*rng.NormFloat64()
		// Vibration amplitude per axis: load-dependent base, amplified by wear,
		// multiplicative noise and impulsive spikes near the end of life.
		spike := 0.0
		if eff.impulse > 0 && rng.Float64() < eff.impulse*sev*sev {
			spike = 0.8 * rng.ExpFloat64()
		}
		for a := range 3 {
			base := vibGain[a] * (0.4 + 0.8*load)
			v := base * (1 + eff.vib[a]*sev) * (1 + 0.05*rng.NormFloat64())
			row[1+a] = max(v+spike*base+0.02*rng.NormFloat64(), 0)
		}
		// Temperature: first-order lag towards a load- and wear-dependent target.
		target := ambient(t) + 10 + 25*load + tempOffset + eff.temp*sev*(0.6+0.4*load)
		temp += alpha * (target - temp)
		row[4] = temp + 0.3*rng.NormFloat64()

		// Dropouts and missing values.
		if dropSensor >= 0 && t >= dropUntil {
			dropSensor = -1
		}
		if dropSensor < 0 && pDrop > 0 && rng.Float64() < pDrop {
			dropSensor = rng.IntN(len(row))
			dropUntil = t + int64((0.5+5.5*rng.Float64())*hourUS)
		}
		if dropSensor >= 0 {
			row[dropSensor] = math.NaN()
		}
		if o.MissingRate > 0 {
			for s := range row {
				if rng.Float64() < o.MissingRate {
					row[s] = math.NaN()
				}
			}
		}
		f.Time = append(f.Time, t)
		for s, v := range row {
			f.Sensors[s] = append(f.Sensors[s], v)
		}
	}
	return f, failures
}
