package config

import "testing"

func TestClosest(t *testing.T) {
	cands := []string{"list", "show", "run", "migrate", "load", "ls", "gc"}
	for word, want := range map[string]string{
		"lst":    "list",
		"rn":     "run",
		"migrte": "migrate",
		"sl":     "ls", // a transposition is one edit
		"shwo":   "show",
		"deploy": "",
		"zzzzzz": "",
	} {
		if got := Closest(word, cands); got != want {
			t.Errorf("Closest(%q) = %q, want %q", word, got, want)
		}
	}
}

func TestSuggestKey(t *testing.T) {
	if got := SuggestKey("train.epoch"); got != ` (did you mean "train.epochs"?)` {
		t.Errorf("SuggestKey(train.epoch) = %q", got)
	}
	if got := SuggestKey("nothing.like.this.at.all"); got != "" {
		t.Errorf("SuggestKey of a far key = %q, want none", got)
	}
}
