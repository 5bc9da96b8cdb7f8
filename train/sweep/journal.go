package sweep

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/exitcode"
)

// The journal (journal.jsonl in the sweep directory) is the sweep's memory
// across runs: a header line naming the sweep (its space, the train config
// its trials start from, the windows file's hash), then one line per
// finished trial, appended and fsync'd as each trial ends. A rerun reads
// it, skips the trials it holds and runs the others; a torn last line (a
// crash mid-write) is dropped.

const journalName = "journal.jsonl"

// header is the journal's first line.
type header struct {
	Type string `json:"type"` // "sweep"
	ID   string `json:"id"`
	// Space is the parsed space (Space.canonical).
	Space json.RawMessage `json:"space"`
	// Base is the train config the trials start from, without file names.
	Base map[string]any `json:"base"`
	// Windows is the sha256 of the windows file.
	Windows string `json:"windows_sha256"`
}

// record is a trial line.
type record struct {
	Type string `json:"type"` // "trial"
	TrialResult
}

// journal appends trial records to an open journal file.
type journal struct {
	path string
	f    *os.File
}

// openJournal opens dir's journal for h: a new one (written atomically
// with its header) when there is none or forceNew, else the existing one,
// whose header must be h's (a usage error saying what differs otherwise).
// It returns the trials the journal holds.
func openJournal(dir string, h header, forceNew bool) (*journal, map[int]TrialResult, error) {
	path := dir + "/" + journalName
	done := map[int]TrialResult{}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) || (err == nil && forceNew):
		line, err := json.Marshal(h)
		if err != nil {
			return nil, nil, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, fmt.Errorf("sweep: %w", err)
		}
		if err := atomicfile.WriteFile(path, append(line, '\n')); err != nil {
			return nil, nil, fmt.Errorf("sweep: %w", err)
		}
	case err != nil:
		return nil, nil, fmt.Errorf("sweep: %w", err)
	default:
		lines := bytes.SplitAfter(b, []byte("\n"))
		var old header
		if err := json.Unmarshal(lines[0], &old); err != nil || old.Type != "sweep" {
			return nil, nil, fmt.Errorf("%w: sweep: %s is not a sweep journal (line 1); remove it or pass --force-new", exitcode.ErrValidation, path)
		}
		if why := differs(old, h); why != "" {
			return nil, nil, fmt.Errorf("%w: sweep: %s is the journal of sweep %s, and this sweep (%s) differs: %s; rerun with --force-new to start over (the journal is replaced), or use another --sweep-dir",
				exitcode.ErrUsage, path, old.ID, h.ID, why)
		}
		good := len(lines[0])
		for i, l := range lines[1:] {
			if len(bytes.TrimSpace(l)) == 0 {
				good += len(l)
				continue
			}
			var r record
			if err := json.Unmarshal(l, &r); err != nil || r.Type != "trial" || !bytes.HasSuffix(l, []byte("\n")) {
				if i == len(lines)-2 {
					break // torn last line: dropped (truncated below)
				}
				return nil, nil, fmt.Errorf("%w: sweep: %s: line %d is not a trial record", exitcode.ErrValidation, path, i+2)
			}
			done[r.Trial] = r.TrialResult
			good += len(l)
		}
		if good < len(b) {
			if err := os.Truncate(path, int64(good)); err != nil {
				return nil, nil, fmt.Errorf("sweep: %w", err)
			}
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("sweep: %w", err)
	}
	return &journal{path: path, f: f}, done, nil
}

// differs says how two headers differ ("" when they are the same sweep).
func differs(old, cur header) string {
	var why []string
	if !bytes.Equal(compactJSON(old.Space), compactJSON(cur.Space)) {
		why = append(why, "the space is not the same"+spaceDiff(old.Space, cur.Space))
	}
	var keys []string
	for k := range cur.Base {
		if !reflect.DeepEqual(old.Base[k], cur.Base[k]) {
			keys = append(keys, fmt.Sprintf("train.%s %v → %v", k, old.Base[k], cur.Base[k]))
		}
	}
	slices.Sort(keys)
	if len(keys) > 0 {
		why = append(why, "the train config is not the same ("+strings.Join(keys, ", ")+")")
	}
	if old.Windows != cur.Windows {
		why = append(why, "the windows file changed")
	}
	return strings.Join(why, "; ")
}

// spaceDiff names the space's top-level keys that differ: " (trials 6 → 7)".
func spaceDiff(a, b json.RawMessage) string {
	var ma, mb map[string]any
	if json.Unmarshal(a, &ma) != nil || json.Unmarshal(b, &mb) != nil {
		return ""
	}
	var out []string
	for _, k := range []string{"method", "trials", "seed", "metric", "prune", "params"} {
		if reflect.DeepEqual(ma[k], mb[k]) {
			continue
		}
		if k == "prune" || k == "params" {
			out = append(out, k)
		} else {
			out = append(out, fmt.Sprintf("%s %v → %v", k, ma[k], mb[k]))
		}
	}
	if len(out) == 0 {
		return ""
	}
	return " (" + strings.Join(out, ", ") + ")"
}

func compactJSON(b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}

// append writes one trial record and syncs it to disk.
func (j *journal) append(t TrialResult) error {
	line, err := json.Marshal(record{Type: "trial", TrialResult: t})
	if err != nil {
		return fmt.Errorf("sweep: journal: %w", err)
	}
	if _, err := j.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("sweep: journal %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("sweep: journal %s: %w", j.path, err)
	}
	return nil
}

func (j *journal) close() error { return j.f.Close() }
