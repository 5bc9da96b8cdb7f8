package dataset

import "fmt"

// Health is the health class derived from RUL thresholds.
type Health uint8

// Health classes. The numeric order is the severity order used for confusion
// matrices: critical, warning, normal.
const (
	Critical Health = iota
	Warning
	Normal
)

// HealthClasses lists the classes in report order.
var HealthClasses = []Health{Critical, Warning, Normal}

func (h Health) String() string {
	switch h {
	case Critical:
		return "critical"
	case Warning:
		return "warning"
	case Normal:
		return "normal"
	}
	return fmt.Sprintf("Health(%d)", uint8(h))
}

// ParseHealth parses a class name.
func ParseHealth(s string) (Health, error) {
	switch s {
	case "critical":
		return Critical, nil
	case "warning":
		return Warning, nil
	case "normal":
		return Normal, nil
	}
	return 0, fmt.Errorf("unknown health status %q (want critical, warning or normal)", s)
}

// Classify returns the class of a RUL in hours: critical below t.Critical,
// warning below t.Warning, normal otherwise.
func (t Thresholds) Classify(rul float64) Health {
	switch {
	case rul < t.Critical:
		return Critical
	case rul < t.Warning:
		return Warning
	default:
		return Normal
	}
}

// DefaultThresholds are the design's 10 h / 50 h boundaries.
var DefaultThresholds = Thresholds{Critical: 10, Warning: 50}

// Validate checks 0 < critical < warning.
func (t Thresholds) Validate() error {
	if !(t.Critical > 0 && t.Warning > t.Critical) {
		return fmt.Errorf("thresholds: want 0 < critical (%g) < warning (%g)", t.Critical, t.Warning)
	}
	return nil
}
