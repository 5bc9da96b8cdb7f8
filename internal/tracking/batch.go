package tracking

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// BatchLimits are the limits of one runs/log-batch request.
type BatchLimits struct {
	Metrics, Params, Tags, Total int
	// Bytes bounds the JSON request body.
	Bytes int
}

// Limits are MLflow's documented runs/log-batch limits: at most 1000 metrics,
// 100 params, 100 tags and 1000 entities in total, in a JSON body of at most
// 1 MB (the server checks len(body) <= 1e6: MAX_BATCH_LOG_REQUEST_SIZE).
var Limits = BatchLimits{Metrics: 1000, Params: 100, Tags: 100, Total: 1000, Bytes: 1_000_000}

// Key and value limits of MLflow's validation: keys up to 250 characters,
// param values up to 6000, tag values up to 5000.
const (
	MaxKeyLength        = 250
	MaxParamValueLength = 6000
	MaxTagValueLength   = 5000
)

// BatchCounts is what one log-batch request carried.
type BatchCounts struct {
	Metrics, Params, Tags int
}

// Chunk is one log-batch request body.
type Chunk struct {
	Body []byte
	BatchCounts
}

// SplitBatch encodes metrics, params and tags into log-batch request bodies
// within lim, in order: params, then tags, then metrics (whose order MLflow
// keeps within a request and which the chunks keep across requests).
func SplitBatch(runID string, metrics []WireMetric, params, tags []KV, lim BatchLimits) ([]Chunk, error) {
	type item struct {
		kind int // 0 param, 1 tag, 2 metric
		b    []byte
	}
	items := make([]item, 0, len(params)+len(tags)+len(metrics))
	for _, p := range params {
		b, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		items = append(items, item{0, b})
	}
	for _, t := range tags {
		b, err := json.Marshal(t)
		if err != nil {
			return nil, err
		}
		items = append(items, item{1, b})
	}
	keys := map[string][]byte{} // a series repeats its key: encode it once
	for _, m := range metrics {
		k, ok := keys[m.Key]
		if !ok {
			var err error
			if k, err = json.Marshal(m.Key); err != nil {
				return nil, err
			}
			keys[m.Key] = k
		}
		items = append(items, item{2, appendMetric(make([]byte, 0, 64+len(k)), k, m)})
	}
	idJSON, err := json.Marshal(runID)
	if err != nil {
		return nil, err
	}
	// {"run_id":ID,"params":[],"tags":[],"metrics":[]}
	overhead := len(`{"run_id":,"params":[],"tags":[],"metrics":[]}`) + len(idJSON)
	var chunks []Chunk
	var cur [3][][]byte
	size := overhead
	flush := func() {
		if len(cur[0])+len(cur[1])+len(cur[2]) == 0 {
			return
		}
		var sb strings.Builder
		sb.Grow(size)
		sb.WriteString(`{"run_id":`)
		sb.Write(idJSON)
		for k, name := range []string{"params", "tags", "metrics"} {
			sb.WriteString(`,"` + name + `":[`)
			for i, b := range cur[k] {
				if i > 0 {
					sb.WriteByte(',')
				}
				sb.Write(b)
			}
			sb.WriteByte(']')
		}
		sb.WriteByte('}')
		chunks = append(chunks, Chunk{Body: []byte(sb.String()), BatchCounts: BatchCounts{Params: len(cur[0]), Tags: len(cur[1]), Metrics: len(cur[2])}})
		cur = [3][][]byte{}
		size = overhead
	}
	for _, it := range items {
		if overhead+len(it.b)+1 > lim.Bytes {
			return nil, fmt.Errorf("log-batch: one entry is %d bytes, more than a request may hold (%d)", len(it.b), lim.Bytes)
		}
		kindMax := [3]int{lim.Params, lim.Tags, lim.Metrics}[it.kind]
		total := len(cur[0]) + len(cur[1]) + len(cur[2])
		if len(cur[it.kind])+1 > kindMax || total+1 > lim.Total || size+len(it.b)+1 > lim.Bytes {
			flush()
		}
		cur[it.kind] = append(cur[it.kind], it.b)
		size += len(it.b) + 1
	}
	flush()
	return chunks, nil
}

// appendMetric encodes m as json.Marshal would, with its key pre-encoded.
func appendMetric(b, key []byte, m WireMetric) []byte {
	b = append(b, `{"key":`...)
	b = append(b, key...)
	b = append(b, `,"value":`...)
	b = appendFloat(b, float64(m.Value))
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, m.Timestamp, 10)
	b = append(b, `,"step":`...)
	b = strconv.AppendInt(b, m.Step, 10)
	return append(b, '}')
}

// validKey is MLflow's rule for metric, param and tag names: alphanumerics,
// underscores, periods, dashes, spaces and slashes.
var validKey = regexp.MustCompile(`^[/\w.\- ]*$`)

// CleanKey makes name acceptable to MLflow: characters outside MLflow's set
// become "_", path tricks ("a//b", "./a", "/a", "..") are neutralised, and the
// length is cut to MaxKeyLength. Valid names are returned unchanged.
func CleanKey(name string) string {
	if !validKey.MatchString(name) {
		var sb strings.Builder
		for _, r := range name {
			if r < utf8.RuneSelf && validKey.MatchString(string(r)) {
				sb.WriteRune(r)
			} else {
				sb.WriteByte('_')
			}
		}
		name = sb.String()
	}
	if name == "" {
		name = "_"
	}
	name = truncate(name, MaxKeyLength)
	if pathNotUnique(name) {
		// One component, and no leading "." or "..": same length, unique.
		name = strings.ReplaceAll(name, "/", "_")
		if name == "." || strings.HasPrefix(name, "..") {
			name = "_" + name[1:]
		}
	}
	return name
}

// pathNotUnique mirrors MLflow's check that a name used as a file path does
// not resolve to another name.
func pathNotUnique(name string) bool {
	norm := normPath(name)
	return norm != name || norm == "." || strings.HasPrefix(norm, "..") || strings.HasPrefix(norm, "/")
}

// normPath is Python's posixpath.normpath.
func normPath(p string) string {
	if p == "" {
		return "."
	}
	initial := 0
	if strings.HasPrefix(p, "/") {
		initial = 1
		if strings.HasPrefix(p, "//") && !strings.HasPrefix(p, "///") {
			initial = 2
		}
	}
	var comps []string
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." {
			continue
		}
		if c != ".." || (initial == 0 && len(comps) == 0) || (len(comps) > 0 && comps[len(comps)-1] == "..") {
			comps = append(comps, c)
		} else if len(comps) > 0 {
			comps = comps[:len(comps)-1]
		}
	}
	out := strings.Repeat("/", initial) + strings.Join(comps, "/")
	if out == "" {
		return "."
	}
	return out
}

// truncate cuts s to at most n characters (MLflow counts characters).
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}
