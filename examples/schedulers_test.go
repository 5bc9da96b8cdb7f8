package examples

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/modax/modax-ml/internal/testutil"
)

// schedJob is one command line of a scheduler example.
type schedJob struct {
	where string // file:line
	kind  string // "cron" (a shell line), "systemd" (ExecStart) or "doc" (postgres.yaml's header)
	line  string // as written
	// systemd: the unit's working directory, environment file and the exit
	// codes it counts as success besides 0.
	dir, envFile string
	okExit       []int
}

// sub is the first word after "modax-ml" in the job's line ("score").
func (j schedJob) sub() string {
	_, rest, _ := strings.Cut(j.line, "modax-ml ")
	f := strings.Fields(rest)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// cronEntry is a crontab line (or a commented-out one offered as an
// alternative): five time fields, then the command.
var cronEntry = regexp.MustCompile(`^#?\s*([0-9*/,-]+\s+){5}(\S.*)$`)

// schedulerJobs reads every command line of the scheduler examples: the
// crontab's entries (the commented-out alternatives too), each systemd
// service's ExecStart, and the command lines in postgres.yaml's header.
func schedulerJobs(t *testing.T) []schedJob {
	t.Helper()
	var jobs []schedJob
	scan := func(file string, each func(n int, line string)) {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			each(n, strings.TrimSpace(sc.Text()))
		}
	}
	scan("crontab", func(n int, line string) {
		if m := cronEntry.FindStringSubmatch(line); m != nil && strings.Contains(m[2], "modax-ml ") {
			jobs = append(jobs, schedJob{where: fmt.Sprintf("crontab:%d", n), kind: "cron", line: m[2]})
		}
	})
	services, _ := filepath.Glob("systemd/*.service")
	for _, svc := range services {
		j := schedJob{kind: "systemd"}
		scan(svc, func(n int, line string) {
			k, v, ok := strings.Cut(line, "=")
			if !ok || strings.HasPrefix(line, "#") {
				return
			}
			switch k {
			case "ExecStart":
				j.where, j.line = fmt.Sprintf("%s:%d", svc, n), v
			case "WorkingDirectory":
				j.dir = v
			case "EnvironmentFile":
				j.envFile = v
			case "SuccessExitStatus":
				for _, c := range strings.Fields(v) {
					code, err := strconv.Atoi(c)
					if err != nil {
						t.Fatalf("%s:%d: SuccessExitStatus %q", svc, n, c)
					}
					j.okExit = append(j.okExit, code)
				}
			}
		})
		if j.line == "" {
			t.Fatalf("%s: no ExecStart", svc)
		}
		timer := strings.TrimSuffix(svc, ".service") + ".timer"
		if b, err := os.ReadFile(timer); err != nil || !bytes.Contains(b, []byte("\nOnCalendar=")) {
			t.Errorf("%s: no timer with OnCalendar= beside it (%v)", svc, err)
		}
		jobs = append(jobs, j)
	}
	scan("postgres.yaml", func(n int, line string) {
		if cmd, ok := strings.CutPrefix(line, "#"); ok && strings.HasPrefix(strings.TrimSpace(cmd), "modax-ml ") {
			cmd, _, _ = strings.Cut(cmd, " #") // a trailing comment
			jobs = append(jobs, schedJob{where: fmt.Sprintf("postgres.yaml:%d", n), kind: "doc", line: strings.TrimSpace(cmd)})
		}
	})
	return jobs
}

// schedOrder runs the jobs in the order a new installation meets them: the
// tables, a deployed model (pipeline), the scores of it, then monitor.
var schedOrder = []string{"db", "pipeline", "score", "monitor"}

// TestSchedulers runs every command line of the scheduler examples —
// examples/crontab (its alternative, commented-out line too), the systemd
// services and the commands in postgres.yaml's header — as cron and systemd
// run them, against a new database of the test PostgreSQL server holding a
// recent fleet of tenant acme. The example's paths are mapped into the test's
// directory (/srv/modax, /etc/modax/{postgres.yaml,dsn,env}, /var/log/modax,
// /usr/local/bin/modax-ml); any other absolute path in a line fails the test.
// A cron line passes when it prints nothing (cron mails any output: the
// lines' `|| echo` prints the exit code of a failure), a systemd service when
// it exits 0 or a SuccessExitStatus code. The model is made tiny and the gate
// wide through MODAX_TRAIN_*/MODAX_DEPLOY_MAX_MAE (the test runs the
// schedules, not the model's quality). Score is run hourly by both cron and
// systemd: the second run must upsert (as many rows in rul_predictions, each
// rewritten: created_at later).
func TestSchedulers(t *testing.T) {
	jobs := schedulerJobs(t)
	var kinds []string
	for _, j := range jobs {
		kinds = append(kinds, j.kind+" "+j.sub())
	}
	for _, want := range []string{"cron score", "cron monitor", "cron pipeline", "systemd score", "systemd monitor", "doc db", "doc pipeline", "doc score", "doc monitor"} {
		if !slices.Contains(kinds, want) {
			t.Errorf("no %s line in the scheduler examples (found %q)", want, kinds)
		}
	}
	slices.SortStableFunc(jobs, func(a, b schedJob) int {
		return slices.Index(schedOrder, a.sub()) - slices.Index(schedOrder, b.sub())
	})

	dsn := testutil.NewDatabase(t)
	ml := modaxML(t)
	tmp := t.TempDir()
	srv, etc, logDir, home := filepath.Join(tmp, "srv"), filepath.Join(tmp, "etc"), filepath.Join(tmp, "log"), filepath.Join(tmp, "home")
	for _, d := range []string{srv, etc, logDir, home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	paths := strings.NewReplacer(
		"/usr/local/bin/modax-ml", ml,
		"/srv/modax", srv,
		"/etc/modax/", etc+"/",
		"examples/postgres.yaml", filepath.Join(etc, "postgres.yaml"),
		"/var/log/modax", logDir)
	conf := paths.Replace(string(must(os.ReadFile("postgres.yaml"))))
	for name, body := range map[string]string{"postgres.yaml": conf, "dsn": dsn + "\n", "env": "MODAX_DB_DSN=" + dsn + "\n"} {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := exampleEnv(home, "MODAX_TRAIN_EPOCHS=2", "MODAX_TRAIN_HIDDEN_SIZE=16", "MODAX_TRAIN_FC_SIZE=8", "MODAX_DEPLOY_MAX_MAE=1000")

	// The fleet: 21 days of readings up to a day ago (fresh enough to score
	// now), in the tables `db migrate` makes.
	start := time.Now().UTC().Truncate(time.Hour).Add(-22 * 24 * time.Hour).Format(time.RFC3339)
	seed := filepath.Join(tmp, "seed")
	for _, args := range [][]string{
		{"db", "migrate", "--config", filepath.Join(etc, "postgres.yaml")},
		{"collect", "--tenant", "acme", "--devices", "6", "--days", "21", "--interval", "30m", "--start", start,
			"-o", seed + "/readings.parquet", "--failures-out", seed + "/failures.parquet"},
		{"db", "load", "--config", filepath.Join(etc, "postgres.yaml"), "--readings", seed + "/readings.parquet", "--failures", seed + "/failures.parquet"},
	} {
		cmd := exec.Command(ml, args...)
		cmd.Dir, cmd.Env = tmp, append(env, "MODAX_DB_DSN="+dsn)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("modax-ml %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	type predState struct {
		rows           int
		oldest, newest time.Time
		monitorChecks  int
	}
	state := func() predState {
		var s predState
		var oldest, newest *time.Time
		if err := conn.QueryRow(ctx, `SELECT count(*), min(created_at), max(created_at) FROM rul_predictions WHERE tenant_id = 'acme'`).Scan(&s.rows, &oldest, &newest); err != nil {
			t.Fatal(err)
		}
		if oldest != nil {
			s.oldest, s.newest = *oldest, *newest
		}
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM monitor_results WHERE tenant_id = 'acme'`).Scan(&s.monitorChecks); err != nil {
			t.Fatal(err)
		}
		return s
	}

	scores := 0
	var last predState
	for _, j := range jobs {
		line := paths.Replace(j.line)
		if m := regexp.MustCompile(`(^|[\s"'=])/(srv|etc|var|usr|opt|home)/\S*`).FindString(line); m != "" {
			t.Fatalf("%s: path %s is not mapped into the test", j.where, strings.TrimSpace(m))
		}
		var cmd *exec.Cmd
		switch j.kind {
		case "cron", "doc":
			cmd = exec.CommandContext(ctx, "sh", "-c", line)
			cmd.Dir, cmd.Env = home, env // cron starts in HOME
			if j.kind == "doc" {
				// as a user types it: modax-ml on PATH, the DSN exported
				cmd.Dir, cmd.Env = srv, append(env, "MODAX_DB_DSN="+dsn, "PATH="+filepath.Dir(ml)+string(os.PathListSeparator)+os.Getenv("PATH"))
			}
		case "systemd":
			argv := strings.Fields(line)
			cmd = exec.CommandContext(ctx, argv[0], argv[1:]...)
			cmd.Dir, cmd.Env = paths.Replace(j.dir), env
			b := must(os.ReadFile(paths.Replace(j.envFile)))
			for _, l := range strings.Split(string(b), "\n") {
				if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
					cmd.Env = append(cmd.Env, l)
				}
			}
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		t0 := time.Now()
		err := cmd.Run()
		t.Logf("%s (%s %s): %.1fs", j.where, j.kind, j.sub(), time.Since(t0).Seconds())
		var ee *exec.ExitError
		switch {
		case j.kind == "systemd" && errors.As(err, &ee) && slices.Contains(j.okExit, ee.ExitCode()):
		case err != nil:
			t.Fatalf("%s: %s: %v\nstdout:\n%s\nstderr:\n%s", j.where, line, err, tail(stdout.String(), 30), tail(stderr.String(), 30))
		case j.kind == "cron" && stdout.Len()+stderr.Len() > 0:
			logs, _ := filepath.Glob(filepath.Join(logDir, "*.log"))
			var lb []byte
			for _, l := range logs {
				lb = append(lb, must(os.ReadFile(l))...)
			}
			t.Fatalf("%s: cron would mail:\n%s%s\nlogs:\n%s", j.where, stdout.String(), stderr.String(), tail(string(lb), 30))
		}

		s := state()
		switch j.sub() {
		case "score":
			scores++
			t.Logf("%s: %d rows in rul_predictions, created %s…%s", j.where, s.rows, s.oldest.Format(time.RFC3339Nano), s.newest.Format(time.RFC3339Nano))
			if s.rows == 0 {
				t.Fatalf("%s: no rows in rul_predictions", j.where)
			}
			if scores > 1 && (s.rows != last.rows || !s.oldest.After(last.newest)) {
				t.Errorf("%s: score again: %d rows created %s…%s, after %d rows created %s…%s; want the same rows, each rewritten",
					j.where, s.rows, s.oldest, s.newest, last.rows, last.oldest, last.newest)
			}
		case "monitor":
			if s.monitorChecks <= last.monitorChecks {
				t.Errorf("%s: no check in monitor_results (monitor.to_db)", j.where)
			}
		}
		last = s
	}
	if scores < 2 {
		t.Errorf("score ran %d times, want the cron line, the systemd unit and postgres.yaml's line", scores)
	}
	for _, l := range []string{"score.log", "monitor.log", "pipeline.log"} {
		if _, err := os.Stat(filepath.Join(logDir, l)); err != nil {
			t.Errorf("cron log: %v", err)
		}
	}
}
