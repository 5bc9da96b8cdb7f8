package config

import (
	"bytes"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Set applies "key=value" assignments to c (`--set train.epochs=5`): the
// key is a dotted config key, the value a YAML scalar or flow sequence
// ("5", "true", "30m", "[a, b]"); a value that does not fit the key's type
// as YAML is taken as a string. Unknown keys and values the key's type
// refuses are errors naming the assignment. Setting "seed" moves the stage
// seeds (SeedKeys) that were equal to it along.
func Set(c Config, assignments ...string) (Config, error) {
	if len(assignments) == 0 {
		return c, nil
	}
	known, err := Flatten(Default())
	if err != nil {
		return c, err
	}
	for _, a := range assignments {
		key, raw, ok := strings.Cut(a, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		if !ok || key == "" {
			return c, fmt.Errorf("--set %q: want key=value", a)
		}
		if !isKnown(known, key) {
			return c, fmt.Errorf("--set %q: unknown key %q%s", a, key, SuggestKey(key))
		}
		var typed any
		if err := yaml.Unmarshal([]byte(raw), &typed); err != nil {
			typed = raw
		}
		next, err := setOne(c, key, typed)
		if err != nil && typed != raw {
			next, err = setOne(c, key, raw)
		}
		if err != nil {
			return c, fmt.Errorf("--set %q: %w", a, err)
		}
		c = follow(c, next, key)
	}
	return c, nil
}

// follow makes the stages' seeds that followed the top-level seed in prev
// (equal to it) follow a new top-level seed in next.
func follow(prev, next Config, key string) Config {
	if key != "seed" || next.Seed == prev.Seed {
		return next
	}
	for _, s := range []*int64{&next.Collect.Synthetic.Seed, &next.Features.Seed, &next.Train.Seed} {
		if *s == prev.Seed {
			*s = next.Seed
		}
	}
	return next
}

// isKnown reports whether key is a config key or lies below one (an entry
// of a map or list valued key).
func isKnown(known map[string]any, key string) bool {
	if _, ok := known[key]; ok {
		return true
	}
	for p := key; strings.Contains(p, "."); {
		p = p[:strings.LastIndex(p, ".")]
		if _, ok := known[p]; ok {
			return true
		}
	}
	return false
}

// setOne sets one dotted key of c to v through c's YAML form.
func setOne(c Config, key string, v any) (Config, error) {
	m, err := c.Map()
	if err != nil {
		return c, err
	}
	parts := strings.Split(key, ".")
	cur := m
	for _, p := range parts[:len(parts)-1] {
		next, ok := cur[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[p] = next
		}
		cur = next
	}
	cur[parts[len(parts)-1]] = v
	b, err := yaml.Marshal(m)
	if err != nil {
		return c, err
	}
	out := Default()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&out); err != nil {
		return c, err
	}
	return out, nil
}
