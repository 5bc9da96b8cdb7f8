package examples

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/modax/modax-ml/internal/testutil"
)

// buildTags are the tags the modax-ml binary of these tests is built with:
// the test's own (tags_openblas_test.go sets "openblas").
var buildTags string

var bin struct {
	once      sync.Once
	dir, path string
	err       error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bin.dir != "" {
		os.RemoveAll(bin.dir)
	}
	os.Exit(code)
}

// modaxML builds cmd/modax-ml once per test process (with the test's build
// tags) and returns the binary, which the examples run as users run theirs.
func modaxML(t *testing.T) string {
	t.Helper()
	bin.once.Do(func() {
		goTool, err := exec.LookPath("go") // go test puts GOROOT/bin first in PATH
		if err != nil {
			bin.err = err
			return
		}
		if bin.dir, bin.err = os.MkdirTemp("", "modax-examples-"); bin.err != nil {
			return
		}
		bin.path = filepath.Join(bin.dir, "modax-ml")
		cmd := exec.Command(goTool, "build", "-tags", buildTags, "-o", bin.path, "./cmd/modax-ml")
		cmd.Dir = testutil.RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			bin.err = fmt.Errorf("go build ./cmd/modax-ml: %w\n%s", err, out)
		}
	})
	if bin.err != nil {
		t.Fatal(bin.err)
	}
	return bin.path
}

// exampleEnv is the environment an example runs in: the test's, without
// the variables that would point it elsewhere (a user's DSN, config, MLflow
// server), with HOME in the test's directory and one BLAS thread.
func exampleEnv(home string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "MODAX_") && !strings.HasPrefix(k, "MODAX_TEST_") || strings.HasPrefix(k, "MLFLOW_") ||
			strings.HasPrefix(k, "PG") || k == "HOME" || k == "OPENBLAS_NUM_THREADS" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, append([]string{"HOME=" + home, "OPENBLAS_NUM_THREADS=1"}, extra...)...)
}

// monitorReport is the part of a modax.monitor/v1 report the test reads.
type monitorReport struct {
	Model struct {
		Version string `json:"version"`
	} `json:"model"`
	Predictions struct {
		Total       int `json:"total"`
		WithOutcome int `json:"with_outcome"`
		Pending     int `json:"pending"`
	} `json:"predictions"`
	Performance struct {
		N         int      `json:"n"`
		MAE       *float64 `json:"mae"`
		Intervals []struct {
			Level    float64 `json:"level"`
			N        int     `json:"n"`
			Coverage float64 `json:"coverage"`
		} `json:"intervals"`
	} `json:"performance"`
	Decision string   `json:"decision"`
	Reasons  []string `json:"reasons"`
	Retrain  *struct {
		Status   string `json:"status"`
		Decision string `json:"deploy_decision"`
		Version  string `json:"version"`
	} `json:"retrain"`
}

// TestContinuousTraining runs examples/continuous-training.sh on a new
// database of the PostgreSQL and of the TimescaleDB test server and checks
// the loop it claims: every new day was scored into rul_predictions, with an
// interval, before any failure of the new days was in failure_events; the
// failures then landed; monitor judged the outcomes now known (and left the
// rest pending), measured the interval's coverage, retrained and deployed.
func TestContinuousTraining(t *testing.T) {
	ml := modaxML(t)
	script := filepath.Join(testutil.RepoRoot(t), "examples", "continuous-training.sh")
	testutil.EachDatabase(t, func(t *testing.T, db testutil.Database) { //nolint:thelper // a subtest body run by testutil.EachDatabase
		dir := t.TempDir()
		ct := filepath.Join(dir, "ct")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "sh", script, ct)
		cmd.Dir = dir
		cmd.Env = exampleEnv(dir, "MODAX_DB_DSN="+db.DSN, "MODAX_ML="+ml, "CI=true")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			t.Fatalf("continuous-training.sh: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), tail(stderr.String(), 60))
		}
		t.Logf("continuous-training.sh took %.1fs", time.Since(start).Seconds())
		out := stdout.String()

		// Step 3: one score per new day, as of the end of the day.
		scored := regexp.MustCompile(`(?m)^scored (\d+) of 20 devices of tenant default at (2024-02-\d\dT00:00:00Z) with \S+ \((lstm-\S+)\)$`).FindAllStringSubmatch(out, -1)
		if len(scored) != 14 {
			t.Fatalf("%d score lines of the fleet, want 14:\n%s", len(scored), out)
		}
		first := scored[0][3]
		for i, m := range scored {
			if want := time.Date(2024, 2, 11+i, 0, 0, 0, 0, time.UTC).Format(time.RFC3339); m[2] != want || m[3] != first {
				t.Errorf("score %d: at %s with %s, want %s with %s", i, m[2], m[3], want, first)
			}
		}

		conn, err := pgx.Connect(ctx, db.DSN)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		// Every day has the deployed model's predictions, with a 90 % interval.
		rows, err := conn.Query(ctx, `SELECT date_trunc('day', "timestamp" AT TIME ZONE 'UTC')::date::text, count(*),
  count(*) FILTER (WHERE rul_lower IS NOT NULL AND rul_upper IS NOT NULL AND interval_level = 0.9 AND rul_lower <= rul_hours AND rul_hours <= rul_upper)
FROM rul_predictions WHERE tenant_id = 'default' AND model_version = $1 GROUP BY 1 ORDER BY 1`, first)
		if err != nil {
			t.Fatal(err)
		}
		perDay := map[string][2]int{}
		for rows.Next() {
			var day string
			var n, withInterval int
			if err := rows.Scan(&day, &n, &withInterval); err != nil {
				t.Fatal(err)
			}
			perDay[day] = [2]int{n, withInterval}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		for d := 10; d <= 23; d++ {
			day := fmt.Sprintf("2024-02-%d", d)
			if c := perDay[day]; c[0] < 15 || c[1] != c[0] {
				t.Errorf("rul_predictions of %s: %d rows, %d with a 90 %% interval; want ≥ 15, all with one (%v)", day, c[0], c[1], perDay)
			}
		}
		// ... all written before the first failure of the new days was: the
		// transactions that inserted them came first (xmin is the inserting
		// transaction's id, increasing on this fresh server).
		var lastPred, firstFailure int64
		var newFailures, distinct int
		if err := conn.QueryRow(ctx, `SELECT max(xmin::text::bigint) FROM rul_predictions`).Scan(&lastPred); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, `SELECT coalesce(min(xmin::text::bigint), 0), count(*), count(DISTINCT (device_id, event_time))
FROM failure_events WHERE event_time >= '2024-02-10T00:00:00Z'`).Scan(&firstFailure, &newFailures, &distinct); err != nil {
			t.Fatal(err)
		}
		if newFailures == 0 || distinct != newFailures {
			t.Fatalf("%d failures of the new days in failure_events (%d distinct), want some, each once", newFailures, distinct)
		}
		if lastPred >= firstFailure {
			t.Errorf("a prediction was written in transaction %d, after the first failure of the new days (%d)", lastPred, firstFailure)
		}

		// Step 5: monitor judged the outcomes known once the failures landed.
		var rep monitorReport
		b, err := os.ReadFile(filepath.Join(ct, "monitor.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		p := rep.Predictions
		if rep.Model.Version != first || p.WithOutcome == 0 || p.Pending == 0 || p.WithOutcome+p.Pending != p.Total || rep.Performance.N != p.WithOutcome || rep.Performance.MAE == nil {
			t.Errorf("monitor judged %s: %+v, performance n %d", rep.Model.Version, p, rep.Performance.N)
		}
		if iv := rep.Performance.Intervals; len(iv) != 1 || iv[0].Level != 0.9 || iv[0].N != p.WithOutcome || iv[0].Coverage < 0 || iv[0].Coverage > 1 {
			t.Errorf("monitor intervals %+v, want the 90 %% level over %d outcomes", iv, p.WithOutcome)
		}
		if rep.Decision != "retrain" || !hasPrefix(rep.Reasons, "drift: temperature_mean PSI") || rep.Retrain == nil ||
			rep.Retrain.Status != "finished" || rep.Retrain.Decision != "deployed" || rep.Retrain.Version == "" || rep.Retrain.Version == first {
			t.Errorf("monitor decision %s, reasons %q, retrain %+v", rep.Decision, rep.Reasons, rep.Retrain)
		}
		for _, want := range []string{
			"scored 3 of 3 devices of tenant default at 2024-02-24T00:00:00Z",
			fmt.Sprintf("predictions: %d (%d with a known outcome, %d pending)", p.Total, p.WithOutcome, p.Pending),
			"intervals: 90 % level covered ",
			"retrain: run ", "deploy deployed " + rep.Retrain.Version,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("stdout lacks %q:\n%s", want, out)
			}
		}
		if !regexp.MustCompile(`(?m)^\* +` + regexp.QuoteMeta(rep.Retrain.Version) + ` .*\n^prev +` + regexp.QuoteMeta(first) + ` `).MatchString(out) {
			t.Errorf("deploy list does not serve %s with %s previous:\n%s", rep.Retrain.Version, first, out)
		}
		// ... and wrote the check to monitor_results.
		var outcomes int
		var coverage *float64
		var decision string
		if err := conn.QueryRow(ctx, `SELECT outcomes, coverage, decision FROM monitor_results WHERE tenant_id = 'default'`).Scan(&outcomes, &coverage, &decision); err != nil {
			t.Fatal(err)
		}
		if outcomes != p.WithOutcome || coverage == nil || *coverage != rep.Performance.Intervals[0].Coverage || decision != "retrain" {
			t.Errorf("monitor_results: outcomes %d, coverage %v, decision %s", outcomes, coverage, decision)
		}

		// A second check judges the new model: it has no predictions yet.
		again := exec.CommandContext(ctx, ml, "-C", ct, "monitor", "--config", filepath.Join(ct, "ct.yaml"), "--at", "2024-02-24T00:00:00Z", "--output", "json")
		again.Env = cmd.Env
		b, err = again.Output()
		if err != nil {
			t.Fatalf("second monitor: %v", err)
		}
		var rep2 monitorReport
		if err := json.Unmarshal(b, &rep2); err != nil {
			t.Fatal(err)
		}
		if rep2.Model.Version != rep.Retrain.Version || rep2.Predictions.Total != 0 {
			t.Errorf("second monitor judged %s with %d predictions, want %s with none", rep2.Model.Version, rep2.Predictions.Total, rep.Retrain.Version)
		}
	})
}

func hasPrefix(ss []string, prefix string) bool {
	for _, s := range ss {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
