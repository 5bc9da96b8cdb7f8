// Package dataset is the only Parquet/Arrow I/O of modax-ml: the versioned
// schemas of the files the stages exchange (DESIGN.md §3), their key-value
// metadata, schema checks on open, streaming readers and atomic writers.
//
// Files are named by a location string. Today a location is a local path (or a
// file:// URL); object-storage schemes are refused with a clear error, so that
// they can be added here later without touching the stages.
//
// Ownership: a RecordBatch yielded by Reader.Batches is released by the reader
// when the loop body returns; call Retain to keep it longer. Batches passed to
// Writer.Write remain owned by the caller.
package dataset

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/modax/modax-ml/internal/atomicfile"
)

// Schema names (the value of the modax.schema metadata key).
const (
	KindReadings    = "modax.readings/v1"
	KindFailures    = "modax.failures/v1"
	KindLabeled     = "modax.labeled/v1"
	KindWindows     = "modax.windows/v1"
	KindStats       = "modax.stats/v1"
	KindPredictions = "modax.predictions/v1"
	KindScores      = "modax.scores/v1"
)

// Metadata keys every file carries, and the ones a next stage needs.
const (
	MetaSchema      = "modax.schema"
	MetaRunID       = "modax.run_id"
	MetaStage       = "modax.stage"
	MetaCreatedAt   = "modax.created_at"
	MetaInputs      = "modax.inputs"
	MetaToolVersion = "modax.tool_version"
	MetaSensors     = "modax.sensors"
	MetaSortedBy    = "modax.sorted_by"
	MetaSource      = "modax.source"
	MetaHorizon     = "modax.horizon_hours"
	MetaThresholds  = "modax.thresholds"
	MetaWindow      = "modax.window"
	MetaStride      = "modax.stride"
	MetaFeatures    = "modax.features"
	MetaScaler      = "modax.scaler"
	MetaSplit       = "modax.split"
	MetaModel       = "modax.model"
	// MetaHealthIndicators is features' health-indicator quality of every
	// input feature (features.HealthIndicators as JSON) in windows.parquet.
	MetaHealthIndicators = "modax.health_indicators"
	// MetaWriteSet is the ID of the write set a file was committed in
	// (InSet; internal/atomicfile): the files one run of a stage writes
	// together carry the same one. Checkpoints use the same key.
	MetaWriteSet = "modax.write_set"
)

// CheckSameSet refuses (exit 3, atomicfile.ErrMixedSet) two files that one
// run of a stage writes together but whose write-set IDs differ: a run was
// killed between their renames, or one was copied from another run. A file
// without an ID (written before write sets were recorded) is not checked.
func CheckSameSet(locA string, a Meta, locB string, b Meta) error {
	return atomicfile.CheckSameSet(locA, a[MetaWriteSet], locB, b[MetaWriteSet])
}

// SortedByDevice is the MetaSortedBy value of files whose rows are ordered by
// tenant, device and time.
const SortedByDevice = "tenant_id,device_id,timestamp"

// Input names a file a stage read, with its content hash (lineage).
type Input struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// Thresholds are the health-class boundaries on RUL in hours: critical when
// RUL < Critical, warning when RUL < Warning, otherwise normal.
type Thresholds struct {
	Critical float64 `json:"critical_hours"`
	Warning  float64 `json:"warning_hours"`
}

// Meta is a file's key-value metadata. Structured values are stored as JSON.
type Meta map[string]string

// Set stores v under key: strings as they are, anything else as JSON.
func (m Meta) Set(key string, v any) error {
	if s, ok := v.(string); ok {
		m[key] = s
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("metadata %s: %w", key, err)
	}
	m[key] = string(b)
	return nil
}

// MustSet is Set for values that always marshal (plain structs, slices, numbers).
// It panics on a marshal error, which is a programming error.
func (m Meta) MustSet(key string, v any) {
	if err := m.Set(key, v); err != nil {
		panic(err)
	}
}

// Get decodes the JSON value under key into v. It reports whether the key exists.
func (m Meta) Get(key string, v any) (bool, error) {
	s, ok := m[key]
	if !ok {
		return false, nil
	}
	if p, ok := v.(*string); ok {
		*p = s
		return true, nil
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return true, fmt.Errorf("metadata %s: %w", key, err)
	}
	return true, nil
}

// Clone returns a copy of m.
func (m Meta) Clone() Meta {
	out := make(Meta, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Carry copies the given keys from src into m where present.
func (m Meta) Carry(src Meta, keys ...string) {
	for _, k := range keys {
		if v, ok := src[k]; ok {
			m[k] = v
		}
	}
}

func (m Meta) arrow() arrow.Metadata {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vals := make([]string, len(keys))
	for i, k := range keys {
		vals[i] = m[k]
	}
	return arrow.NewMetadata(keys, vals)
}

func metaFromArrow(md arrow.Metadata) Meta {
	m := make(Meta, md.Len())
	for i, k := range md.Keys() {
		if strings.HasPrefix(k, "ARROW:") {
			continue
		}
		m[k] = md.Values()[i]
	}
	return m
}

// Sensors returns the sensor column names recorded in the metadata.
func (m Meta) Sensors() ([]string, error) {
	var s []string
	ok, err := m.Get(MetaSensors, &s)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, nil
	}
	return s, nil
}
