package config

import (
	"strings"
	"testing"
)

func TestResolveCopiesFromTheSource(t *testing.T) {
	c := Default()
	c.Features.Window, c.Validate.Window = 7, 50
	c.Label.Horizon, c.Label.Critical, c.Label.Warning = 125, 15, 30
	r := c.Resolve()
	if r.Validate.Window != 7 || r.Validate.Horizon != 125 || r.Validate.Critical != 15 || r.Validate.Warning != 30 {
		t.Fatalf("resolved validate: %+v", r.Validate)
	}
	if c.Validate.Window != 50 {
		t.Error("Resolve changed its receiver")
	}
}

func TestCopiedConflictsOnlyForSetKeysThatDiffer(t *testing.T) {
	c := Default()
	c.Features.Window, c.Validate.Window = 7, 50
	c.Validate.Horizon = c.Label.Horizon
	set := map[string]bool{"validate.window": true, "validate.horizon": true}
	notes, err := CopiedConflicts(c, func(k string) bool { return set[k] })
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "validate.window (50) is ignored: it is copied from features.window (7)") {
		t.Fatalf("notes: %q", notes)
	}
	// Not set in the file: the default differing from the source is no news.
	if notes, _ := CopiedConflicts(c, func(string) bool { return false }); len(notes) != 0 {
		t.Fatalf("notes for unset keys: %q", notes)
	}
}

func TestSetSeedMovesTheStageSeedsThatFollowedIt(t *testing.T) {
	c := Default()
	c.Train.Seed = 3 // set on its own: stays
	c, err := Set(c, "seed=7")
	if err != nil {
		t.Fatal(err)
	}
	flat, err := Flatten(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range SeedKeys {
		want := 7
		if k == "train.seed" {
			want = 3
		}
		if flat[k] != want {
			t.Errorf("%s = %v after --set seed=7, want %d", k, flat[k], want)
		}
	}
}
