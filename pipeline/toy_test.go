package pipeline

import (
	"context"
	"os"

	"github.com/modax/modax-ml/internal/config"
	"github.com/modax/modax-ml/internal/runenv"
)

// The benchmark of the pipeline's own cost (bench_test.go) runs a chain of
// eight tiny file-copying stages, so that it measures the middleware (keys,
// stamps, cache, run.json) and nothing else. The tests run the real stages
// (pipeline_test.go).

// toyOptions are the options of a toy stage.
type toyOptions struct {
	In  string `yaml:"in"`
	Out string `yaml:"out"`
}

// toyStages builds the toy chain: stage i copies stage i-1's file and
// appends its name.
func toyStages(_ config.Config, d Dirs) ([]*Stage, error) {
	var out []*Stage
	prev := ""
	for _, name := range Order {
		o := toyOptions{In: prev, Out: d.Out(name + ".txt")}
		s := &Stage{Name: name, Options: o, Outputs: []string{o.Out}}
		if prev != "" {
			s.Inputs = []string{prev}
		}
		if name == Deploy {
			s.NoCache = "deploy publishes outside the run directory"
		}
		s.Run = func(context.Context, *runenv.Env) (any, error) {
			var b []byte
			if o.In != "" {
				var err error
				if b, err = os.ReadFile(o.In); err != nil {
					return nil, err
				}
			}
			return nil, os.WriteFile(o.Out, append(b, name+"\n"...), 0o644)
		}
		out = append(out, s)
		prev = o.Out
	}
	return out, nil
}
