// Package pipeline runs the stages of modax-ml in one process: collect →
// validate → label → features → train → evaluate → export → deploy, each a
// stage package's Run adapted from its config section (Stages), in a run
// directory runs/<run-id>/ with the frozen config, the run record (run.json
// through internal/tracking) and the log.
//
// The pipeline is an ordered list of Stage values and one loop that wraps
// every stage in the same middleware, outermost first:
//
//	decorate errors   "pipeline: <stage>: ..."
//	skip if fresh     cache key = sha256(stage, options, inputs' sha256, tool version):
//	                  up to date in the run directory, or linked from the
//	                  content-addressed cache (internal/cache), or run and stored
//	log and time      why the stage runs or is skipped, how long it took
//	track             run.json: started, ran / skipped / failed / killed, outputs
//
// Run runs it (with --from/--until/--force/--resume semantics in Options),
// Plan says what Run would do without doing it.
package pipeline
