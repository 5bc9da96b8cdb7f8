package main

import (
	"github.com/spf13/pflag"

	"github.com/modax/modax-ml/internal/duration"
)

// Flags are registered with the config key they set (annotate), so that the
// one viper of the process applies flag > env > file > default to every key.
// Defaults shown in --help come from the stage's DefaultOptions.

func bindInt(fs *pflag.FlagSet, name, key string, def int, usage string) {
	fs.Int(name, def, usage)
	annotate(fs, name, key)
}

func bindInt64(fs *pflag.FlagSet, name, key string, def int64, usage string) {
	fs.Int64(name, def, usage)
	annotate(fs, name, key)
}

func bindFloat(fs *pflag.FlagSet, name, key string, def float64, usage string) {
	fs.Float64(name, def, usage)
	annotate(fs, name, key)
}

func bindStrings(fs *pflag.FlagSet, name, key string, def []string, usage string) {
	fs.StringSlice(name, def, usage)
	annotate(fs, name, key)
}

func bindDuration(fs *pflag.FlagSet, name, key string, def duration.Duration, usage string) {
	d := def
	fs.Var(&d, name, usage)
	annotate(fs, name, key)
}

// bindStringP is bindString with a one-letter shorthand.
func bindStringP(fs *pflag.FlagSet, name, short, key, def, usage string) {
	fs.StringP(name, short, def, usage)
	annotate(fs, name, key)
}
