package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/modax/modax-ml/internal/fixture"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/testutil"
)

// TestMain lets testscript run the CLI in-process as the "modax-ml" command.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"modax-ml":    func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
		"evalfixture": func() { os.Exit(fixtureMain()) },
		// The C-MAPSS recipe's summary (tools/cmapss-summary) for the cmapss story.
		"cmapss-summary": func() { os.Exit(cmapssSummaryMain()) },
	})
}

// TestScript runs the end-to-end stories in testdata/script/*.txtar.
//
// Conditions: [pg] a test PostgreSQL is available (its DSN is $PGDSN),
// [tsdb] a test server that preloads TimescaleDB is available ($TSDBDSN; the
// [pg] server then has TimescaleDB's files without preloading them, as
// scripts/testenv.sh sets them up), [cmapss] the NASA C-MAPSS files are
// available ($CMAPSS), [python] Debian's
// python3 with torch and onnx, [node] the interop npm packages ($INTEROP),
// [chromium] Debian's headless chromium (the ui story), [s3rver] the npm
// s3rver of tools/interop (an S3 server in its own process).
// In CI (MODAX_TEST_STRICT=1) a script whose condition is missing fails
// instead of skipping.
func TestScript(t *testing.T) {
	root := testutil.RepoRoot(t)
	cmapss := testutil.CMAPSSPath()
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"same-outputs":   cmdSameOutputs,   // pipeline_script_test.go
			"beats-baseline": cmdBeatsBaseline, // pipeline_script_test.go
			"waitfor":        cmdWaitFor,       // pipeline_script_test.go
			"gen-windows":    cmdGenWindows,    // train_script_test.go
			"gen-stats":      cmdGenStats,      // train_script_test.go
			// modax-fixture DIR SEED MAE: a stand-in for train + evaluate: writes
			// DIR/{model.safetensors (version vSEED), windows.parquet,
			// metrics.json (test MAE), model.onnx}.
			"modax-fixture": modaxFixture,
			"gen-labeled":   cmdGenLabeled,   // features_script_test.go
			"freeport":      cmdFreePort,     // ui_script_test.go
			"http":          cmdHTTP,         // ui_script_test.go
			"chromium":      cmdChromium,     // ui_script_test.go
			"flip-weight":   cmdFlipWeight,   // digest_script_test.go
			"truncate-file": cmdTruncateFile, // digest_script_test.go
			"huge-shape":    cmdHugeShape,    // digest_script_test.go
			"same-digest":   cmdSameDigest,   // digest_script_test.go
			"strip-digest":  cmdStripDigest,  // digest_script_test.go
			"s3server":      cmdS3Server,     // s3_script_test.go
			"s3ls":          cmdS3Ls,         // s3_script_test.go
			"s3put":         cmdS3Put,        // s3_script_test.go
			// hardlink NEW OLD: a second name for the file OLD.
			"hardlink": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 2 {
					ts.Fatalf("usage: hardlink NEW OLD")
				}
				ts.Check(os.Link(ts.MkAbs(args[1]), ts.MkAbs(args[0])))
			},
			// exitcode N cmd args...: run cmd and check its exit status is N.
			"exitcode": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) < 2 {
					ts.Fatalf("usage: exitcode N command [args...]")
				}
				want, err := strconv.Atoi(args[0])
				if err != nil {
					ts.Fatalf("exitcode: %v", err)
				}
				err = ts.Exec(args[1], args[2:]...)
				got := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					got = ee.ExitCode()
				} else if err != nil {
					ts.Fatalf("exitcode: %v", err)
				}
				if (got == want) == neg {
					ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
				}
			},
		},
		Setup: func(env *testscript.Env) error {
			env.Setenv("PGDSN", os.Getenv("MODAX_TEST_PG_DSN"))
			env.Setenv("TSDBDSN", os.Getenv("MODAX_TEST_TSDB_DSN"))
			env.Setenv("CMAPSS", cmapss)
			env.Setenv("REPO", root)
			env.Setenv("INTEROP", filepath.Join(root, "tools", "interop"))
			env.Setenv("CI", "true")
			env.Setenv("OPENBLAS_NUM_THREADS", "1")
			return nil
		},
		Condition: func(cond string) (bool, error) {
			var ok bool
			switch cond {
			case "pg":
				ok = os.Getenv("MODAX_TEST_PG_DSN") != ""
			case "tsdb":
				ok = os.Getenv("MODAX_TEST_PG_DSN") != "" && os.Getenv("MODAX_TEST_TSDB_DSN") != ""
			case "cmapss":
				ok = testutil.HaveCMAPSS()
			case "python":
				_, err := os.Stat("/usr/bin/python3")
				ok = err == nil
			case "chromium":
				ok = chromiumPath() != ""
			case "s3rver":
				ok = testutil.S3rverBin(root) != ""
			case "node":
				_, err := os.Stat(filepath.Join(root, "tools", "interop", "node_modules"))
				ok = err == nil
			default:
				return false, nil
			}
			if !ok && testutil.Strict() {
				t.Errorf("script condition [%s] is not met (MODAX_TEST_STRICT=1)", cond)
			}
			return ok, nil
		},
	})
}

func modaxFixture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: modax-fixture DIR SEED MAE")
	}
	seed, err := strconv.ParseUint(args[1], 10, 64)
	ts.Check(err)
	mae, err := strconv.ParseFloat(args[2], 64)
	ts.Check(err)
	ck := fixture.Checkpoint(model.Arch{Type: model.TypeLSTM, InputSize: 3, Hidden: 8, Layers: 2, FC: 4, Dropout: 0.2}, 10, seed)
	ck.Info.ModelVersion = "v" + args[1]
	_, err = fixture.WriteAll(context.Background(), ts.MkAbs(args[0]), ck, 6, fixture.Metrics{N: 6, MAE: mae, RMSE: mae * 1.3, Score: 10 * mae})
	ts.Check(err)
}
