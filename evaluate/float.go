package evaluate

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
)

// Float is a metric value. NaN (and ±Inf) mean "undefined" and are written to
// JSON as null; null reads back as NaN.
type Float float64

// NaN is the undefined metric value.
func NaN() Float { return Float(math.NaN()) }

// Valid reports whether f is defined (finite).
func (f Float) Valid() bool { return !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0) }

// MarshalJSON writes null for an undefined value and the shortest exact
// decimal otherwise.
func (f Float) MarshalJSON() ([]byte, error) {
	if !f.Valid() {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, float64(f), 'g', -1, 64), nil
}

// UnmarshalJSON reads a number or null.
func (f *Float) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*f = NaN()
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = Float(v)
	return nil
}

// String formats f for reports: "—" when undefined.
func (f Float) String() string {
	if !f.Valid() {
		return "—"
	}
	return strconv.FormatFloat(float64(f), 'g', 4, 64)
}
