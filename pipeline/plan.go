package pipeline

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/modax/modax-ml/internal/runenv"
)

// PlanResult is what `pipeline run --dry-run` prints: what each stage would
// do and why, without running anything or writing any file.
type PlanResult struct {
	RunID  string        `json:"run_id"`
	Dir    string        `json:"dir"`
	Resume bool          `json:"resume"`
	Cache  string        `json:"cache,omitempty"`
	Tool   string        `json:"tool_version"`
	Stages []PlannedStep `json:"stages"`
}

// PlannedStep is one stage of a plan.
type PlannedStep struct {
	Name string `json:"name"`
	// Action is run, fresh (outputs in the run directory are up to date),
	// cached (linked from the cache) or "not run" (outside --from/--until).
	Action string `json:"action"`
	Reason string `json:"reason"`
	// Key is the cache key, when the inputs are known.
	Key     string   `json:"key,omitempty"`
	Inputs  []string `json:"inputs,omitempty"`
	Outputs []string `json:"outputs,omitempty"`
}

// Plan computes what Run would do with opts. Stages whose inputs an earlier
// running stage makes are planned to run (their key is unknown until then).
func Plan(_ context.Context, env *runenv.Env, opts Options) (*PlanResult, error) {
	r, err := prepare(env, opts)
	if err != nil {
		return nil, err
	}
	p := &PlanResult{RunID: r.runID, Dir: r.dir, Resume: r.resume, Tool: r.tool}
	if r.store != nil {
		p.Cache = r.store.Dir()
	}
	for i, s := range r.stages {
		step := PlannedStep{Name: s.Name}
		for _, in := range s.Inputs {
			step.Inputs = append(step.Inputs, relName(r.dir, in))
		}
		for _, o := range s.Outputs {
			step.Outputs = append(step.Outputs, relName(r.dir, o))
		}
		if i > r.until {
			step.Action, step.Reason = ActionNotRun, "after --until "+Order[r.until]
			p.Stages = append(p.Stages, step)
			continue
		}
		d, err := r.decide(s, i)
		if err != nil {
			return nil, fmt.Errorf("pipeline: %s: %w", s.Name, err)
		}
		step.Action, step.Reason, step.Key = d.action, d.reason, d.key
		if d.action == ActionRun {
			// Its outputs will change: later stages cannot be known yet.
			for _, o := range s.Outputs {
				r.hashes[filepath.Clean(o)] = ""
			}
		} else {
			for _, f := range d.outputs {
				r.hashes[filepath.Join(r.dir, filepath.FromSlash(f.Path))] = f.SHA256
			}
		}
		p.Stages = append(p.Stages, step)
	}
	return p, nil
}

// WriteText prints the plan as a table.
func (p *PlanResult) WriteText(w io.Writer) error {
	what := "new run"
	if p.Resume {
		what = "resume"
	}
	fmt.Fprintf(w, "plan for %s %s in %s (nothing was run)\n", what, p.RunID, p.Dir)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STAGE\tACTION\tKEY\tWHY")
	for _, s := range p.Stages {
		key := "-"
		if s.Key != "" {
			key = s.Key[:12]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.Action, key, s.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if p.Cache == "" {
		_, err := fmt.Fprintln(w, "cache: off")
		return err
	}
	_, err := fmt.Fprintf(w, "cache: %s\n", strings.TrimSuffix(p.Cache, "/"))
	return err
}
