package dataset

import (
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
)

// Column names shared by several schemas.
const (
	ColTenant       = "tenant_id"
	ColDevice       = "device_id"
	ColTimestamp    = "timestamp"
	ColEventTime    = "event_time"
	ColEventType    = "event_type"
	ColComponent    = "component_failed"
	ColOpHours      = "operating_hours_at_failure"
	ColRUL          = "rul_hours"
	ColRULRaw       = "rul_hours_raw"
	ColHealth       = "health_status"
	ColCensored     = "censored"
	ColLifeID       = "life_id"
	ColWindowEnd    = "window_end"
	ColSplit        = "split"
	ColX            = "x"
	ColRULTrue      = "rul_true"
	ColRULPred      = "rul_pred"
	ColHealthTrue   = "health_true"
	ColHealthPred   = "health_pred"
	ColModelVersion = "model_version"
)

// Timestamp is the one time type of modax files: microseconds, UTC.
var Timestamp = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

// Column is one required column of a schema.
type Column struct {
	Name     string
	Type     arrow.DataType
	Nullable bool
}

func (c Column) field() arrow.Field {
	return arrow.Field{Name: c.Name, Type: c.Type, Nullable: c.Nullable}
}

var (
	readingsKey = []Column{
		{ColTenant, arrow.BinaryTypes.String, false},
		{ColDevice, arrow.BinaryTypes.String, false},
		{ColTimestamp, Timestamp, false},
	}
	failuresCols = []Column{
		{ColTenant, arrow.BinaryTypes.String, false},
		{ColDevice, arrow.BinaryTypes.String, false},
		{ColEventTime, Timestamp, false},
		{ColEventType, arrow.BinaryTypes.String, false},
		{ColComponent, arrow.BinaryTypes.String, true},
		{ColOpHours, arrow.PrimitiveTypes.Float64, true},
	}
	labelCols = []Column{
		{ColRUL, arrow.PrimitiveTypes.Float64, false},
		{ColRULRaw, arrow.PrimitiveTypes.Float64, true},
		{ColHealth, arrow.BinaryTypes.String, false},
		{ColCensored, arrow.FixedWidthTypes.Boolean, false},
		{ColLifeID, arrow.PrimitiveTypes.Int32, false},
	}
	windowsKey = []Column{
		{ColTenant, arrow.BinaryTypes.String, false},
		{ColDevice, arrow.BinaryTypes.String, false},
		{ColLifeID, arrow.PrimitiveTypes.Int32, false},
		{ColWindowEnd, Timestamp, false},
		{ColRUL, arrow.PrimitiveTypes.Float64, false},
		{ColRULRaw, arrow.PrimitiveTypes.Float64, true},
		{ColHealth, arrow.BinaryTypes.String, false},
		{ColSplit, arrow.BinaryTypes.String, false},
	}
	predictionCols = []Column{
		{ColTenant, arrow.BinaryTypes.String, false},
		{ColDevice, arrow.BinaryTypes.String, false},
		{ColLifeID, arrow.PrimitiveTypes.Int32, false},
		{ColWindowEnd, Timestamp, false},
		{ColSplit, arrow.BinaryTypes.String, false},
		{ColRULTrue, arrow.PrimitiveTypes.Float64, true},
		{ColRULRaw, arrow.PrimitiveTypes.Float64, true},
		{ColRULPred, arrow.PrimitiveTypes.Float64, false},
		{ColHealthTrue, arrow.BinaryTypes.String, true},
		{ColHealthPred, arrow.BinaryTypes.String, false},
		{ColModelVersion, arrow.BinaryTypes.String, false},
	}
	// predictionIntervalCols are written by predict since the intervals
	// came; files without them (older ones, other tools) stay readable.
	predictionIntervalCols = []Column{
		{ColRULLower, arrow.PrimitiveTypes.Float64, true},
		{ColRULUpper, arrow.PrimitiveTypes.Float64, true},
		{ColIntervalLevel, arrow.PrimitiveTypes.Float64, true},
	}
)

// sensorCols returns nullable float64 columns for the named sensors.
func sensorCols(sensors []string) []Column {
	cols := make([]Column, len(sensors))
	for i, s := range sensors {
		cols[i] = Column{s, arrow.PrimitiveTypes.Float64, true}
	}
	return cols
}

// ReadingsColumns lists the columns of a readings file with these sensors.
func ReadingsColumns(sensors []string) []Column {
	return append(slices.Clone(readingsKey), sensorCols(sensors)...)
}

// FailuresColumns lists the columns of a failures file.
func FailuresColumns() []Column { return slices.Clone(failuresCols) }

// LabeledColumns lists the columns of a labeled file with these sensors.
func LabeledColumns(sensors []string) []Column {
	return append(ReadingsColumns(sensors), labelCols...)
}

// WindowsColumns lists the columns of a windows file whose x holds
// window × features float32 values per row (time-major).
func WindowsColumns(window, features int) []Column {
	x := arrow.FixedSizeListOfNonNullable(int32(window*features), arrow.PrimitiveTypes.Float32)
	return append(slices.Clone(windowsKey), Column{ColX, x, false})
}

// PredictionsColumns lists the columns of a predictions file as written:
// the required ones, then the interval columns (optional when read).
func PredictionsColumns() []Column {
	return append(slices.Clone(predictionCols), predictionIntervalCols...)
}

// NewSchema builds an Arrow schema from columns, with kind and meta recorded in
// its metadata (meta is not modified).
func NewSchema(kind string, cols []Column, meta Meta) *arrow.Schema {
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = c.field()
	}
	m := meta.Clone()
	m[MetaSchema] = kind
	md := m.arrow()
	return arrow.NewSchema(fields, &md)
}

// requiredColumns returns the columns a file of this kind must have, given its
// metadata (sensor names, window size).
func requiredColumns(kind string, meta Meta, sch *arrow.Schema) ([]Column, error) {
	switch kind {
	case KindReadings, KindLabeled:
		sensors, err := meta.Sensors()
		if err != nil {
			return nil, err
		}
		if sensors == nil {
			sensors = inferSensors(kind, sch)
		}
		if kind == KindLabeled {
			return LabeledColumns(sensors), nil
		}
		return ReadingsColumns(sensors), nil
	case KindFailures:
		return failuresCols, nil
	case KindWindows:
		cols := slices.Clone(windowsKey)
		if i := sch.FieldIndices(ColX); len(i) == 1 {
			// x is checked separately (its size depends on the metadata).
			return cols, nil
		}
		return append(cols, Column{ColX, arrow.FixedSizeListOfNonNullable(0, arrow.PrimitiveTypes.Float32), false}), nil
	case KindPredictions:
		return predictionCols, nil
	case KindScores:
		return scoreCols, nil
	case KindSweep:
		return sweepCols, nil
	case KindStats:
		return []Column{
			{ColTenant, arrow.BinaryTypes.String, false},
			{ColDevice, arrow.BinaryTypes.String, false},
		}, nil
	}
	return nil, fmt.Errorf("unknown schema %q", kind)
}

// inferSensors treats every float64 column that is not a key or label column
// as a sensor (for files written by other tools without modax.sensors).
func inferSensors(kind string, sch *arrow.Schema) []string {
	skip := map[string]bool{}
	for _, c := range labelCols {
		skip[c.Name] = true
	}
	var out []string
	for _, f := range sch.Fields() {
		if f.Type.ID() == arrow.FLOAT64 && !skip[f.Name] {
			out = append(out, f.Name)
		}
	}
	return out
}

// SchemaError reports a missing or mistyped column.
type SchemaError struct {
	Loc    string
	Column string
	Want   arrow.DataType
	Got    arrow.DataType // nil when the column is missing
	Detail string
}

func (e *SchemaError) Error() string {
	switch {
	case e.Detail != "":
		return fmt.Sprintf("%s: column %q: %s", e.Loc, e.Column, e.Detail)
	case e.Got == nil:
		return fmt.Sprintf("%s: missing column %q (%s)", e.Loc, e.Column, e.Want)
	default:
		return fmt.Sprintf("%s: column %q has type %s, want %s", e.Loc, e.Column, e.Got, e.Want)
	}
}

// CheckSchema verifies that sch holds every required column of kind with the
// right type. Extra columns are allowed.
func CheckSchema(loc, kind string, sch *arrow.Schema, meta Meta) error {
	cols, err := requiredColumns(kind, meta, sch)
	if err != nil {
		return fmt.Errorf("%s: %w", loc, err)
	}
	if _, err := locateColumns(loc, sch, cols); err != nil {
		return err
	}
	if kind == KindWindows {
		var window int
		feats := []string{}
		if _, err := meta.Get(MetaWindow, &window); err != nil {
			return fmt.Errorf("%s: %w", loc, err)
		}
		if _, err := meta.Get(MetaFeatures, &feats); err != nil {
			return fmt.Errorf("%s: %w", loc, err)
		}
		if window <= 0 || len(feats) == 0 {
			return fmt.Errorf("%s: windows file lacks %s or %s metadata", loc, MetaWindow, MetaFeatures)
		}
		x := sch.Field(sch.FieldIndices(ColX)[0]).Type
		fl, ok := x.(*arrow.FixedSizeListType)
		if !ok || fl.Elem().ID() != arrow.FLOAT32 {
			return &SchemaError{Loc: loc, Column: ColX, Detail: fmt.Sprintf("has type %s, want fixed_size_list<float32>", x)}
		}
		if window > int(fl.Len())/len(feats) || int(fl.Len()) != window*len(feats) { // the first test keeps the product from overflowing
			return &SchemaError{Loc: loc, Column: ColX, Detail: fmt.Sprintf("holds %d values per row, want window %d × %d features = %d", fl.Len(), window, len(feats), window*len(feats))}
		}
	}
	return nil
}

// locateColumns returns the position in sch of each of cols, checking that
// each appears exactly once and with the right type (a *SchemaError naming
// loc and the column otherwise).
func locateColumns(loc string, sch *arrow.Schema, cols []Column) ([]int, error) {
	idx := make([]int, len(cols))
	for i, c := range cols {
		fi := sch.FieldIndices(c.Name)
		if len(fi) == 0 {
			return nil, &SchemaError{Loc: loc, Column: c.Name, Want: c.Type}
		}
		if len(fi) > 1 {
			return nil, &SchemaError{Loc: loc, Column: c.Name, Detail: "appears more than once"}
		}
		if got := sch.Field(fi[0]).Type; !typeMatches(c.Type, got) {
			return nil, &SchemaError{Loc: loc, Column: c.Name, Want: c.Type, Got: got}
		}
		idx[i] = fi[0]
	}
	return idx, nil
}

func typeMatches(want, got arrow.DataType) bool {
	switch w := want.(type) {
	case *arrow.TimestampType:
		g, ok := got.(*arrow.TimestampType)
		return ok && g.Unit == w.Unit && (g.TimeZone == "UTC" || g.TimeZone == "+00:00" || g.TimeZone == "Etc/UTC")
	case *arrow.FixedSizeListType:
		_, ok := got.(*arrow.FixedSizeListType)
		return ok
	}
	return arrow.TypeEqual(want, got)
}
