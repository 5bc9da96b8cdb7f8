// Package testutil finds the real components tests run against (PostgreSQL,
// Debian's Python with torch/onnx/scipy/sklearn, Node.js with onnxruntime-node
// and DuckDB). Outside `make test` a missing component skips the test; under
// `make test` (MODAX_TEST_STRICT=1) it fails it, so CI never silently skips.
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

// Strict reports whether missing components fail tests (set by make test).
func Strict() bool { return os.Getenv("MODAX_TEST_STRICT") == "1" }

// Require skips (or, under make test, fails) t when ok is false.
func Require(t testing.TB, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if Strict() {
		t.Fatalf("%s is required (run the suite with `make test`, which sets it up)", what)
	}
	t.Skipf("%s not available (run `make test` to set it up)", what)
}

// RepoRoot returns the repository root (the directory holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// CMAPSSDir returns the folder holding the NASA C-MAPSS files
// (MODAX_CMAPSS_DIR, default ../shared/datasets/cmapss next to the repository).
func CMAPSSDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("MODAX_CMAPSS_DIR")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "..", "shared", "datasets", "cmapss")
	}
	_, err := os.Stat(filepath.Join(dir, "train_FD001.txt"))
	Require(t, err == nil, "C-MAPSS FD001 in "+dir)
	return dir
}

// PostgresDSN returns the DSN of the test server (MODAX_TEST_PG_DSN).
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("MODAX_TEST_PG_DSN")
	Require(t, dsn != "", "PostgreSQL (MODAX_TEST_PG_DSN)")
	return dsn
}

// NewDatabase creates an empty database for this test on the test server,
// drops it when the test ends, and returns its DSN.
func NewDatabase(t testing.TB) string {
	t.Helper()
	dsn := PostgresDSN(t)
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
