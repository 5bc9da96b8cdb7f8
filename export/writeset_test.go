package export

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/fixture"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/runenv"
)

// TestExportRefusesStatsAndWindowsOfDifferentWrites: a ridge model is
// validated on the stats and described by the windows (data range); export
// takes the pair of one features run and refuses windows of another run,
// naming both files (exit 3).
func TestExportRefusesStatsAndWindowsOfDifferentWrites(t *testing.T) {
	ck := fixture.Checkpoint(model.Arch{Type: model.TypeRidge, InputSize: 6}, 10, 2)
	o, _ := setup(t, ck, 25)
	o.Windows = filepath.Join(filepath.Dir(o.Stats), "windows.parquet")
	write := func(stats bool, seed uint64) {
		t.Helper()
		set := atomicfile.NewSet()
		defer set.Abort()
		if stats {
			if err := fixture.WriteStats(o.Stats, ck, 25, seed, dataset.InSet(set)); err != nil {
				t.Fatal(err)
			}
		}
		if err := fixture.WriteWindows(o.Windows, ck, 25, seed, dataset.InSet(set)); err != nil {
			t.Fatal(err)
		}
		if err := set.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	write(true, 1)
	if _, err := Run(context.Background(), runenv.Test(), o); err != nil {
		t.Fatalf("the pair of one write: %v", err)
	}
	write(false, 2) // windows of another run
	_, err := Run(context.Background(), runenv.Test(), o)
	if !errors.Is(err, atomicfile.ErrMixedSet) || exitcode.Code(err) != exitcode.Validation ||
		!strings.Contains(err.Error(), o.Stats) || !strings.Contains(err.Error(), o.Windows) {
		t.Fatalf("windows of another run: %v", err)
	}
}
