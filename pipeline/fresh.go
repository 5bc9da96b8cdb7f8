package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/cache"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/internal/tracking"
)

// Actions a stage can take.
const (
	// ActionRun: the stage runs.
	ActionRun = "run"
	// ActionFresh: its outputs in the run directory are up to date.
	ActionFresh = "fresh"
	// ActionCached: its outputs are linked in from the cache.
	ActionCached = "cached"
	// ActionNotRun: outside --from/--until.
	ActionNotRun = "not run"
)

// The reason of a cached stage, in a plan and once its outputs were restored.
const (
	reasonCached   = "cached: "
	reasonRestored = "restored from cache: "
)

// stampDir holds, in the run directory, one stamp per completed stage: its
// cache key and outputs. A stage whose stamp matches is fresh there.
const stampDir = ".pipeline"

// stamp is the record of a completed stage in its run directory.
type stamp struct {
	Key     string       `json:"key"`
	Outputs []cache.File `json:"outputs"`
}

// decision is what skip-if-fresh decided for a stage.
type decision struct {
	action string
	reason string
	key    string // "" when it cannot be known yet (dry run)
	opts   json.RawMessage
	inputs []cache.Input
	entry  *cache.Entry // ActionCached
	// cont: ActionRun continues an interrupted run from its checkpoint
	// (Stage.Continue).
	cont bool
	// outputs are the stage's outputs, relative to the run directory, with
	// their hashes (ActionFresh, ActionCached; filled after ActionRun).
	outputs []cache.File
}

// errUnknown marks an input whose content is not known yet (a dry run of a
// stage after one that runs).
var errUnknown = errors.New("made by an earlier stage that runs")

// hashInput returns the sha256 of an input: from the files made or restored
// in this run, else from disk.
func (r *runner) hashInput(path string) (string, error) {
	if sum, ok := r.hashes[filepath.Clean(path)]; ok {
		if sum == "" {
			return "", errUnknown
		}
		return sum, nil
	}
	sum, err := dataset.FileSHA256(path)
	if err != nil {
		return "", err
	}
	return sum, nil
}

// decide is the skip-if-fresh decision: run the stage, or take its outputs
// as they are in the run directory, or link them in from the cache.
func (r *runner) decide(s *Stage, idx int) (decision, error) {
	d := decision{}
	opts, err := KeyOptions(s.Options, r.dir)
	if err != nil {
		return d, err
	}
	d.opts = opts
	before := idx < r.from
	unknown := ""
	for _, in := range s.Inputs {
		sum, err := r.hashInput(in)
		switch {
		case errors.Is(err, errUnknown):
			unknown = relName(r.dir, in)
			continue
		case errors.Is(err, fs.ErrNotExist):
			if before {
				return d, fmt.Errorf("--from %s: input %s of %s is missing", Order[r.from], in, s.Name)
			}
			// The stage reports its missing input itself, in its words.
			d.action, d.reason = ActionRun, fmt.Sprintf("input %s is missing", relName(r.dir, in))
			return d, nil
		case err != nil:
			return d, fmt.Errorf("hash input: %w", err)
		}
		d.inputs = append(d.inputs, cache.Input{Path: relName(r.dir, in), SHA256: sum})
	}
	if unknown != "" {
		d.action, d.reason = ActionRun, fmt.Sprintf("input %s is %s", unknown, errUnknown)
		return d, nil
	}
	d.key = Key(s.Name, opts, d.inputs, r.tool)
	if !before && r.forced(s.Name) {
		d.action, d.reason = ActionRun, "forced (--force)"
		return d, nil
	}
	if outs, ok := r.freshInRunDir(s, d.key); ok {
		d.action, d.outputs = ActionFresh, outs
		d.reason = "outputs in the run directory are up to date"
		if before {
			d.reason = "before --from " + Order[r.from] + "; " + d.reason
		}
		return d, nil
	}
	switch {
	case s.NoCache != "":
	case r.store == nil:
	default:
		e, err := r.store.Get(d.key)
		if err != nil {
			return d, err
		}
		if e != nil {
			d.action, d.entry, d.outputs = ActionCached, e, e.Outputs
			d.reason = fmt.Sprintf("%sinputs, options and tool version unchanged (key %s, computed by run %s)", reasonCached, d.key[:12], e.RunID)
			if before {
				d.reason = "before --from " + Order[r.from] + "; " + d.reason
			}
			return d, nil
		}
	}
	if before {
		return d, fmt.Errorf("--from %s: %s is before it, and its outputs are neither in the run directory nor in the cache (run without --from, or --resume a run that has them)", Order[r.from], s.Name)
	}
	d.action = ActionRun
	switch {
	case s.NoCache != "":
		d.reason = s.NoCache
	case r.store == nil:
		d.reason = "cache disabled"
	default:
		d.reason = r.explainMiss(s.Name, d)
	}
	if why, ok := r.continuable(s, d.key); ok {
		d.cont, d.reason = true, why
	} else if why != "" {
		d.reason += "; " + why
	}
	return d, nil
}

// interrupted is the record, in the run directory, of a stage that was
// interrupted and left a checkpoint to continue from.
type interrupted struct {
	Key   string       `json:"key"`
	Terms string       `json:"terms,omitempty"`
	Files []cache.File `json:"files"`
	Error string       `json:"error"`
}

func (r *runner) interruptedPath(stage string) string {
	return filepath.Join(r.dir, stampDir, stage+".interrupted.json")
}

// continuable reports whether the stage can continue from the checkpoint an
// interrupted run of it left, and why (or why not, "" when there is none).
func (r *runner) continuable(s *Stage, key string) (string, bool) {
	if s.Continue == nil {
		return "", false
	}
	b, err := os.ReadFile(r.interruptedPath(s.Name))
	if err != nil {
		return "", false
	}
	var st interrupted
	if json.Unmarshal(b, &st) != nil {
		return "", false
	}
	const notUsed = "the checkpoint of the interrupted run is not used: "
	if st.Key != key {
		return notUsed + "its options or inputs differ", false
	}
	if terms := continueTerms(s, r.env); terms != st.Terms {
		return fmt.Sprintf("%sit ran with %s, this run has %s", notUsed, st.Terms, terms), false
	}
	var names []string
	for _, f := range st.Files {
		p := filepath.Join(r.dir, filepath.FromSlash(f.Path))
		sum, err := dataset.FileSHA256(p)
		if err != nil || sum != f.SHA256 {
			return notUsed + f.Path + " changed since", false
		}
		names = append(names, f.Path)
	}
	return fmt.Sprintf("continues the interrupted run from its checkpoint (%s): options, inputs and tool version unchanged", strings.Join(names, ", ")), true
}

func continueTerms(s *Stage, env *runenv.Env) string {
	if s.ContinueTerms == nil {
		return ""
	}
	return s.ContinueTerms(env)
}

// markInterrupted records the checkpoint an interrupted stage left: its
// Checkpoint files, when all of them were written since started.
func (r *runner) markInterrupted(j *job, started time.Time, stageErr error) {
	s := j.stage
	if s.Continue == nil || !errors.Is(stageErr, context.Canceled) || j.dec.key == "" {
		return
	}
	st := interrupted{Key: j.dec.key, Terms: continueTerms(s, r.env), Error: stageErr.Error()}
	for _, p := range s.Checkpoint {
		fi, err := os.Stat(p)
		if err != nil || fi.ModTime().Before(started.Truncate(time.Second)) {
			return // not written by this attempt
		}
		rel, ok := inside(r.dir, p)
		if !ok {
			return
		}
		sum, err := dataset.FileSHA256(p)
		if err != nil {
			return
		}
		st.Files = append(st.Files, cache.File{Path: rel, SHA256: sum, Size: fi.Size()})
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err == nil {
		err = atomicfile.WriteFile(r.interruptedPath(s.Name), append(b, '\n'))
	}
	if err != nil {
		r.log.Warn("cannot record the interrupted stage's checkpoint; a resume runs it from scratch", "stage", s.Name, "error", err.Error())
		return
	}
	r.log.Info("stage "+s.Name+" left a checkpoint; --resume "+r.runID+" continues from it", "stage", s.Name)
}

// forced reports whether --force names the stage.
func (r *runner) forced(stage string) bool {
	return slices.Contains(r.force, "all") || slices.Contains(r.force, stage)
}

// freshInRunDir reports whether the stage's stamp in the run directory has
// key and its outputs are there with the recorded content.
func (r *runner) freshInRunDir(s *Stage, key string) ([]cache.File, bool) {
	b, err := os.ReadFile(r.stampPath(s.Name))
	if err != nil {
		return nil, false
	}
	var st stamp
	if json.Unmarshal(b, &st) != nil || st.Key != key {
		return nil, false
	}
	for _, f := range st.Outputs {
		p := filepath.Join(r.dir, filepath.FromSlash(f.Path))
		fi, err := os.Stat(p)
		if err != nil || fi.Size() != f.Size {
			return nil, false
		}
		if sum, err := dataset.FileSHA256(p); err != nil || sum != f.SHA256 {
			return nil, false
		}
	}
	return st.Outputs, true
}

func (r *runner) stampPath(stage string) string {
	return filepath.Join(r.dir, stampDir, stage+".json")
}

// explainMiss says why a stage runs although caching is on: what differs
// from the stage's most recent cache entry.
func (r *runner) explainMiss(stage string, d decision) string {
	last := r.store.Latest(stage)
	if last == nil {
		return "not in the cache (first run of these options)"
	}
	var why []string
	if last.Tool != r.tool {
		why = append(why, "tool version changed")
	}
	prev := map[string]string{}
	for _, in := range last.Inputs {
		prev[in.Path] = in.SHA256
	}
	var changed []string
	for _, in := range d.inputs {
		if sum, ok := prev[in.Path]; !ok || sum != in.SHA256 {
			changed = append(changed, strings.TrimPrefix(in.Path, RunPrefix))
		}
	}
	if len(changed) > 0 {
		why = append(why, "inputs changed ("+strings.Join(changed, ", ")+")")
	}
	if keys := diffJSON(last.Options, d.opts); len(keys) > 0 {
		if len(keys) > 4 {
			keys = append(keys[:4], fmt.Sprintf("+%d more", len(keys)-4))
		}
		why = append(why, "options changed ("+strings.Join(keys, ", ")+")")
	}
	if len(why) == 0 {
		return "not in the cache"
	}
	return strings.Join(why, "; ")
}

// diffJSON lists the dotted keys whose values differ between two JSON objects.
func diffJSON(a, b json.RawMessage) []string {
	fa, fb := map[string]string{}, map[string]string{}
	flattenJSON(a, "", fa)
	flattenJSON(b, "", fb)
	var out []string
	for k, v := range fa {
		if w, ok := fb[k]; !ok || w != v {
			out = append(out, k)
		}
	}
	for k := range fb {
		if _, ok := fa[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func flattenJSON(raw json.RawMessage, prefix string, out map[string]string) {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || m == nil {
		out[prefix] = string(raw)
		return
	}
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		flattenJSON(v, key, out)
	}
}

// expandOutputs lists the files of a stage's outputs (directories walked),
// hashed, relative to the run directory.
func (r *runner) expandOutputs(s *Stage) ([]cache.File, error) {
	var out []cache.File
	add := func(p string) error {
		rel, ok := inside(r.dir, p)
		if !ok {
			return fmt.Errorf("output %s is outside the run directory %s", p, r.dir)
		}
		sum, err := dataset.FileSHA256(p)
		if err != nil {
			return fmt.Errorf("hash output: %w", err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		out = append(out, cache.File{Path: rel, SHA256: sum, Size: fi.Size()})
		return nil
	}
	for _, o := range s.Outputs {
		fi, err := os.Stat(o)
		if err != nil {
			return nil, fmt.Errorf("output %s was not written: %w", o, err)
		}
		if !fi.IsDir() {
			if err := add(o); err != nil {
				return nil, err
			}
			continue
		}
		err = filepath.WalkDir(o, func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if de.Type().IsRegular() && !strings.HasPrefix(de.Name(), ".") {
				return add(p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// trackingFiles converts cache files (relative to the run directory) to
// tracking files.
func (r *runner) trackingFiles(fs []cache.File) []tracking.File {
	out := make([]tracking.File, len(fs))
	for i, f := range fs {
		out[i] = tracking.File{Path: filepath.Join(r.dir, filepath.FromSlash(f.Path)), SHA256: f.SHA256, Size: f.Size}
	}
	return out
}

// inputFiles converts the decision's inputs to tracking files.
func (r *runner) inputFiles(ins []cache.Input) []tracking.File {
	out := make([]tracking.File, len(ins))
	for i, in := range ins {
		p := in.Path
		if rel, ok := strings.CutPrefix(p, RunPrefix); ok {
			p = filepath.Join(r.dir, filepath.FromSlash(rel))
		}
		out[i] = tracking.File{Path: p, SHA256: in.SHA256}
	}
	return out
}
