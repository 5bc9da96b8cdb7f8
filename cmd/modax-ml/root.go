package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"golang.org/x/term"

	"github.com/modax/modax-ml/internal/config"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/location"
	"github.com/modax/modax-ml/internal/progress"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/internal/version"
)

// keyAnnotation marks a flag with the config key it sets.
const keyAnnotation = "modax.key"

// defaultConfigAnnotation on a command holds the YAML config used when no
// --config (or MODAX_CONFIG) is given: `pipeline run` with no config runs the
// built-in default (examples/default.yaml).
const defaultConfigAnnotation = "modax.default_config"

// app is the state of one CLI invocation: streams, the loaded config and the
// logger. Commands read plain Go values from it.
type app struct {
	in        io.Reader
	out       io.Writer
	errOut    io.Writer
	stderrTTY bool
	// term is stderr on a terminal: errOut writes through it, so a log line
	// clears the progress bar, prints, and the bar is redrawn below.
	term *progress.Term

	v   *viper.Viper
	cfg config.Config
	log *slog.Logger
}

// testPanicEnv is a hidden test hook: set to 1, run panics before doing
// anything, so a test can check the recover guard.
const testPanicEnv = "MODAX_ML_TEST_PANIC"

// run executes the CLI with args and streams and returns the exit code. It is
// the whole program; main only calls it.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	// Last line of defence: a panic is a bug, never an answer to any input.
	// It exits 1 with a bug-report message instead of a Go stack trace.
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(stderr, "modax-ml: internal error: %v\n"+
				"modax-ml: this is a bug in modax-ml %s; please report it with the command line and this message\n",
				p, version.Get().Version)
			code = exitcode.Error
		}
	}()
	if os.Getenv(testPanicEnv) == "1" {
		panic("test panic (" + testPanicEnv + "=1)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := &app{in: stdin, out: stdout, errOut: stderr, stderrTTY: isTerminal(stderr)}
	if a.stderrTTY {
		a.term = progress.NewTerm(stderr)
		a.errOut = a.term
	}
	root := newRootCmd(a)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(a.errOut)
	usageArgs(root)
	groupCommands(root)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitcode.OK
	}
	if strings.HasPrefix(err.Error(), "unknown command") {
		err = fmt.Errorf("%w: %w", exitcode.ErrUsage, err)
	}
	if ctx.Err() != nil && !errors.Is(err, context.Canceled) {
		err = fmt.Errorf("%w (%w)", err, context.Canceled)
	}
	code = exitcode.Code(err)
	if a.log != nil && code != exitcode.Usage {
		a.log.Error(err.Error(), "exit_code", code)
	} else {
		fmt.Fprintf(a.errOut, "modax-ml: %v\n", err)
	}
	return code
}

// usageArgs makes every positional-argument check a usage error (exit 2).
func usageArgs(c *cobra.Command) {
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return fmt.Errorf("%w: %w", exitcode.ErrUsage, err)
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		usageArgs(sub)
	}
}

// groupCommands makes a mistyped subcommand under a group command (`runs lst`)
// a usage error with a suggestion; cobra would print the group's help and
// exit 0, so a cron line with a typo would "succeed" every night. A group
// run alone still prints its help.
func groupCommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		groupCommands(sub)
	}
	if !c.HasParent() || !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		var names []string
		for _, sub := range cmd.Commands() {
			if sub.IsAvailableCommand() {
				names = append(names, sub.Name())
				names = append(names, sub.Aliases...)
			}
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := config.Closest(args[0], names); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		return fmt.Errorf("%w: %s; see %q", exitcode.ErrUsage, msg, cmd.CommandPath()+" --help")
	}
	c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
}

// suggestFlag names the closest flag of cmd when err is pflag's "unknown
// flag: --name", formatted as the tail of the message, or "".
func suggestFlag(cmd *cobra.Command, err error) string {
	name, ok := strings.CutPrefix(err.Error(), "unknown flag: --")
	if !ok {
		return ""
	}
	var names []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if !f.Hidden {
			names = append(names, f.Name)
		}
	})
	if s := config.Closest(name, names); s != "" {
		return fmt.Sprintf(" (did you mean --%s?)", s)
	}
	return ""
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "modax-ml",
		Short: "Train, evaluate, export and deploy Remaining-Useful-Life models",
		Long: `modax-ml turns machine sensor history into a deployed Remaining-Useful-Life
(RUL) model: collect → validate → label → features → train → evaluate → export → deploy.
Every stage reads and writes Parquet files, so stages chain in shell scripts.

Configuration precedence: flags > MODAX_* environment (MODAX_TRAIN_EPOCHS) >
YAML file (--config) > defaults. "modax-ml config show" prints the result.`,
		Version:       version.Get().String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.load(cmd)
		},
	}
	root.SetVersionTemplate("modax-ml {{.Version}}\n")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w: %w%s", exitcode.ErrUsage, err, suggestFlag(cmd, err))
	})
	pf := root.PersistentFlags()
	pf.String("config", "", "YAML config file")
	bindString(pf, "log-format", "log.format", "auto", "log format: auto (text on a terminal, else json), text, json")
	bindString(pf, "log-level", "log.level", "info", "log level: debug, info, warn, error")
	bindBool(pf, "quiet", "quiet", false, "no progress bars, only warnings and errors")
	bindString(pf, "output", "output", "text", "result format on stdout: text or json")
	pf.StringP("dir", "C", ".", "working directory for default file names")
	annotate(pf, "dir", "dir")
	root.SetUsageTemplate(root.UsageTemplate() + "\n" + exitcode.Help + "\n")

	// Commands in pipeline order, grouped in --help.
	cobra.EnableCommandSorting = false
	groups := []struct {
		id, title string
		cmds      []*cobra.Command
	}{
		{"stages", "Pipeline stages (each reads and writes files; run them in this order):", []*cobra.Command{
			newCollectCmd(a), newValidateCmd(a), newLabelCmd(a), newFeaturesCmd(a), newTrainCmd(a),
			newPredictCmd(a), newEvaluateCmd(a), newExportCmd(a), newDeployCmd(a), newScoreCmd(a),
		}},
		{"ops", "Pipeline, monitoring and tracking:", []*cobra.Command{
			newPipelineCmd(a), newMonitorCmd(a), newRunsCmd(a), newUICmd(a), newTrackingCmd(a), newCacheCmd(a),
		}},
		{"setup", "Setup and inspection:", []*cobra.Command{
			newDBCmd(a), newConfigCmd(a), newVersionCmd(a),
		}},
	}
	for _, g := range groups {
		root.AddGroup(&cobra.Group{ID: g.id, Title: g.title})
		for _, c := range g.cmds {
			c.GroupID = g.id
			root.AddCommand(c)
		}
	}
	root.SetHelpCommandGroupID("setup")
	root.SetCompletionCommandGroupID("setup")
	return root
}

// annotate records the config key a flag sets.
func annotate(fs *pflag.FlagSet, name, key string) {
	if err := fs.SetAnnotation(name, keyAnnotation, []string{key}); err != nil {
		panic(err) // programming error: the flag does not exist
	}
}

func bindString(fs *pflag.FlagSet, name, key, def, usage string) {
	fs.String(name, def, usage)
	annotate(fs, name, key)
}

func bindBool(fs *pflag.FlagSet, name, key string, def bool, usage string) {
	fs.Bool(name, def, usage)
	annotate(fs, name, key)
}

// load builds the config (flags > env > file > defaults) into a.cfg and sets
// up logging. It runs once, before any command.
func (a *app) load(cmd *cobra.Command) error {
	v := viper.New()
	defaults, err := config.Flatten(config.Default())
	if err != nil {
		return err
	}
	for k, val := range defaults {
		v.SetDefault(k, val)
	}
	v.SetEnvPrefix("MODAX")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_", "-", "_"))
	v.AutomaticEnv()
	path, _ := cmd.Flags().GetString("config")
	if path == "" {
		path = os.Getenv("MODAX_CONFIG")
	}
	if path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return fmt.Errorf("%w: config %s: %w", exitcode.ErrUsage, path, err)
		}
	} else if def, ok := cmd.Annotations[defaultConfigAnnotation]; ok {
		v.SetConfigType("yaml")
		if err := v.ReadConfig(strings.NewReader(def)); err != nil {
			return fmt.Errorf("built-in default config: %w", err)
		}
	}
	var bindErr error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if keys := f.Annotations[keyAnnotation]; len(keys) == 1 && bindErr == nil {
			bindErr = v.BindPFlag(keys[0], f)
		}
	})
	if bindErr != nil {
		return bindErr
	}
	for _, k := range config.SeedKeys { // below the stage's own key, above its default
		v.SetDefault(k, v.Get("seed"))
	}
	cfg := config.Default()
	if err := v.Unmarshal(&cfg, func(dc *mapstructure.DecoderConfig) {
		dc.TagName = "yaml"
		dc.ErrorUnused = false
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			mapstructure.TextUnmarshallerHookFunc(),
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
			noFractionToInt,
		)
	}); err != nil {
		return fmt.Errorf("%w: config: %w", exitcode.ErrUsage, err)
	}
	if err := checkKeys(v); err != nil {
		return err
	}
	a.v, a.cfg = v, cfg
	if err := refuseRemoteDirs(&cfg); err != nil {
		return err
	}
	switch cfg.Output {
	case "text", "json":
	default:
		return fmt.Errorf("%w: --output %q: want text or json", exitcode.ErrUsage, cfg.Output)
	}
	a.log, err = newLogger(a.errOut, a.stderrTTY, cfg.Log, cfg.Quiet)
	if err != nil {
		return fmt.Errorf("%w: %w", exitcode.ErrUsage, err)
	}
	slog.SetDefault(a.log)
	notes, err := config.CopiedConflicts(cfg, v.InConfig)
	if err != nil {
		return err
	}
	for _, n := range notes {
		a.log.Warn(n)
	}
	return nil
}

// refuseRemoteDirs refuses (exit 2) a bucket location for the directories
// that do not take one yet: the run directory, the stage cache, the models
// directory and the run records. Without it, a path such as s3://b/x given to
// code that joins file paths would become a local directory named "s3:".
func refuseRemoteDirs(cfg *config.Config) error {
	for _, d := range []struct{ flag, key, loc string }{
		{"--dir", "dir", cfg.Dir},
		{"--cache-dir", "pipeline.cache_dir", cfg.Pipeline.CacheDir},
		{"--models-dir", "deploy.models_dir", cfg.Deploy.ModelsDir},
		{"--models-dir", "monitor.models_dir", cfg.Monitor.ModelsDir},
		{"--runs-dir", "tracking.runs_dir", cfg.Tracking.RunsDir},
	} {
		if location.IsRemote(d.loc) {
			return fmt.Errorf("%w: %s (config key %s) %s: a bucket location is not supported for this directory yet; the stage files of collect, validate, label, features, train, predict, evaluate, export and score take s3:// locations (see the README's Locations)",
				exitcode.ErrUsage, d.flag, d.key, location.Redact(d.loc))
		}
	}
	return nil
}

// noFractionToInt refuses a fractional number for an integer setting
// (`window: 12.7`), which the weakly typed decoding would truncate.
func noFractionToInt(from, to reflect.Type, data any) (any, error) {
	switch to.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
	default:
		return data, nil
	}
	if from.Kind() == reflect.Float32 || from.Kind() == reflect.Float64 {
		if x := reflect.ValueOf(data).Float(); x != math.Trunc(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%v is not a whole number", x)
		}
	}
	return data, nil
}

// checkKeys refuses unknown keys in the config file, which are almost always
// typos ("train.epoch").
func checkKeys(v *viper.Viper) error {
	known, err := config.Flatten(config.Default())
	if err != nil {
		return err
	}
	for _, k := range v.AllKeys() {
		if _, ok := known[k]; ok {
			continue
		}
		// Keys of maps and lists below a known key are fine.
		ok := false
		for p := k; strings.Contains(p, "."); {
			p = p[:strings.LastIndex(p, ".")]
			if _, ok = known[p]; ok {
				break
			}
		}
		if !ok {
			return fmt.Errorf("%w: config: unknown key %q%s", exitcode.ErrUsage, k, config.SuggestKey(k))
		}
	}
	return nil
}

func newLogger(w io.Writer, tty bool, c config.Log, quiet bool) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.Level)
	}
	if quiet && level < slog.LevelWarn {
		level = slog.LevelWarn
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.Format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "auto", "":
		if tty {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want auto, text or json", c.Format)
}

// env returns the stage environment: progress bars only on a terminal and
// without --quiet; NO_COLOR is honoured by drawing no colour at all.
func (a *app) env() *runenv.Env {
	prog := progress.None
	if a.term != nil && !a.cfg.Quiet && os.Getenv("CI") == "" {
		prog = a.term.Bars()
	}
	return runenv.New(a.log, prog, a.cfg.RunID)
}

// emit prints a command's result: JSON with --output json, else text.
func (a *app) emit(v any, text func(w io.Writer) error) error {
	if a.cfg.Output == "json" {
		// An empty list is [] for a script, never null.
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.IsNil() {
			v = reflect.MakeSlice(rv.Type(), 0, 0).Interface()
		}
		enc := json.NewEncoder(a.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return text(a.out)
}

// path resolves a file name against the working directory (--dir).
func (a *app) path(name string) string {
	if name == "" || a.cfg.Dir == "" || a.cfg.Dir == "." || strings.HasPrefix(name, "/") || strings.Contains(name, "://") {
		return name
	}
	return a.cfg.Dir + "/" + name
}
