package collect

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/modax/modax-ml/internal/runenv"
)

// childEnv makes the test binary run one collect and exit: benchmarks measure
// the peak RSS of a collect in a fresh process this way.
const childEnv = "MODAX_COLLECT_CHILD"

// benchDBs are databases created by benchmarks (kept across -count runs),
// dropped when the tests end.
var benchDBs []string

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(runChild(spec))
	}
	code := m.Run()
	dropBenchDBs()
	os.Exit(code)
}

func runChild(spec string) int {
	var opts Options
	if err := json.Unmarshal([]byte(spec), &opts); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if _, err := Run(context.Background(), runenv.Test(), opts); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func dropBenchDBs() {
	if len(benchDBs) == 0 {
		return
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, os.Getenv("MODAX_TEST_PG_DSN"))
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	for _, name := range benchDBs {
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	}
}
