package config

import "github.com/modax/modax-ml/internal/suggest"

// Closest returns the candidate nearest to word in edit distance (an
// adjacent transposition counts as one edit), or "" when none is within
// max(2, len(word)/3) edits (internal/suggest).
func Closest(word string, candidates []string) string { return suggest.Closest(word, candidates) }

// SuggestKey is Closest over the known config keys, formatted as the tail of
// an error message: ` (did you mean "train.epochs"?)`, or "".
func SuggestKey(key string) string {
	known, err := Flatten(Default())
	if err != nil {
		return ""
	}
	keys := make([]string, 0, len(known))
	for k := range known {
		keys = append(keys, k)
	}
	if s := Closest(key, keys); s != "" {
		return ` (did you mean "` + s + `"?)`
	}
	return ""
}
