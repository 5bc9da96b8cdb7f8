// Package testutil finds the real components tests run against (PostgreSQL,
// TimescaleDB, Debian's Python with torch/onnx/scipy/sklearn, Node.js with
// onnxruntime-node and DuckDB, the NASA C-MAPSS files). A missing component
// skips the test with one line saying what is missing; in CI
// (MODAX_TEST_STRICT=1, which scripts/testenv.sh sets when CI is set) it fails
// it, so CI never silently skips.
package testutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Strict reports whether missing components fail tests (CI: MODAX_TEST_STRICT=1).
func Strict() bool { return os.Getenv("MODAX_TEST_STRICT") == "1" }

// Require skips (or, in CI, fails) t when ok is false.
func Require(t testing.TB, ok bool, what string) {
	t.Helper()
	RequireHint(t, ok, what, "run `make test` to set it up")
}

// RequireHint is Require with hint saying how to provide what.
func RequireHint(t testing.TB, ok bool, what, hint string) {
	t.Helper()
	if ok {
		return
	}
	if Strict() {
		t.Fatalf("%s is required (MODAX_TEST_STRICT=1; %s)", what, hint)
	}
	t.Skipf("%s not available (%s)", what, hint)
}

// RepoRoot returns the repository root (the directory holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// CMAPSSPath returns the folder that should hold the NASA C-MAPSS files:
// MODAX_CMAPSS_DIR, default ../shared/datasets/cmapss next to the repository.
// It does not check that the folder exists (CMAPSSDir does).
func CMAPSSPath() string {
	if dir := os.Getenv("MODAX_CMAPSS_DIR"); dir != "" {
		return dir
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "datasets", "cmapss"))
}

// HaveCMAPSS reports whether CMAPSSPath holds C-MAPSS FD001.
func HaveCMAPSS() bool {
	_, err := os.Stat(filepath.Join(CMAPSSPath(), "train_FD001.txt"))
	return err == nil
}

// CMAPSSDir returns the folder holding the NASA C-MAPSS files (CMAPSSPath),
// skipping t (failing it in CI) when it lacks them.
func CMAPSSDir(t testing.TB) string {
	t.Helper()
	dir := CMAPSSPath()
	RequireHint(t, HaveCMAPSS(), "C-MAPSS FD001 in "+dir,
		"set MODAX_CMAPSS_DIR to a folder holding train_FD001.txt, test_FD001.txt and RUL_FD001.txt")
	return dir
}

// PostgresDSN returns the DSN of the test server (MODAX_TEST_PG_DSN).
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("MODAX_TEST_PG_DSN")
	Require(t, dsn != "", "PostgreSQL (MODAX_TEST_PG_DSN)")
	return dsn
}

// NewDatabase creates an empty database for this test on the plain
// PostgreSQL test server, drops it when the test ends, and returns its DSN.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, PostgresDSN(t))
}

// TimescaleDSN returns the DSN of the test server that preloads TimescaleDB
// (MODAX_TEST_TSDB_DSN, set by make test when TimescaleDB is installed).
func TimescaleDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("MODAX_TEST_TSDB_DSN")
	RequireHint(t, dsn != "", "TimescaleDB (MODAX_TEST_TSDB_DSN)",
		"`make test` builds it from ../shared/vendor/timescaledb when that is beside the repository")
	return dsn
}

// Database is one new, empty database of EachDatabase.
type Database struct {
	DSN string
	// TimescaleDB: the server preloads TimescaleDB, so db migrate (mode
	// auto) creates the extension and makes hypertables. Otherwise the
	// server is plain PostgreSQL (it may have the extension's files but
	// does not preload them, so migrate makes plain tables).
	TimescaleDB bool
}

// EachDatabase runs test twice, as the subtests "postgres" and
// "timescaledb", each with a new empty database (dropped afterwards): on the
// plain PostgreSQL test server and on the one that preloads TimescaleDB. The
// timescaledb subtest skips with one line when there is none (fails in CI).
func EachDatabase(t *testing.T, test func(t *testing.T, db Database)) {
	t.Helper()
	t.Run("postgres", func(t *testing.T) {
		test(t, Database{DSN: NewDatabase(t)})
	})
	t.Run("timescaledb", func(t *testing.T) {
		test(t, Database{DSN: newDatabase(t, TimescaleDSN(t)), TimescaleDB: true})
	})
}

// NewTimescaleDatabase is NewDatabase on the TimescaleDB test server (for
// benchmarks, which EachDatabase does not serve).
func NewTimescaleDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, TimescaleDSN(t))
}

func newDatabase(t testing.TB, dsn string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to test PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "modax_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Replace(dsn, "/"+cfg.Database+"?", "/"+name+"?", 1)
}

// Python returns Debian's /usr/bin/python3 after checking that it imports the
// given modules (e.g. "torch", "onnx", "scipy", "sklearn").
func Python(t testing.TB, modules ...string) string {
	t.Helper()
	const py = "/usr/bin/python3"
	_, err := os.Stat(py)
	Require(t, err == nil, py)
	if len(modules) > 0 {
		cmd := exec.CommandContext(context.Background(), py, "-c", "import "+strings.Join(modules, ", "))
		cmd.Env = append(os.Environ(), "OPENBLAS_NUM_THREADS=1")
		out, err := cmd.CombinedOutput()
		Require(t, err == nil, py+" with "+strings.Join(modules, ", ")+" ("+strings.TrimSpace(string(out))+")")
	}
	return py
}

// InteropDir returns tools/interop with its npm packages installed
// (onnxruntime-node, @duckdb/node-api), and the node binary.
func InteropDir(t testing.TB) (dir, node string) {
	t.Helper()
	dir = filepath.Join(RepoRoot(t), "tools", "interop")
	_, err := os.Stat(filepath.Join(dir, "node_modules"))
	Require(t, err == nil, "npm packages in tools/interop (ONNXRUNTIME_NODE_INSTALL=skip npm ci)")
	node, err = exec.LookPath("node")
	Require(t, err == nil, "node")
	return dir, node
}
