package main

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/modax/modax-ml/internal/cache"
	"github.com/modax/modax-ml/internal/duration"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/pipeline"
)

type cacheEntry = cache.Entry

// cacheStore opens the configured cache directory.
func cacheStore(a *app) *cache.Store {
	dir := a.cfg.Pipeline.CacheDir
	if dir == "" {
		dir = pipeline.DefaultCacheDir
	}
	return cache.Open(a.path(filepath.Clean(dir)))
}

type cacheGCOptions struct {
	olderThan, maxSize string
	all, dryRun        bool
}

func (o cacheGCOptions) resolve() (cache.GCOptions, error) {
	age, err := duration.Parse(o.olderThan)
	if err != nil || age < 0 {
		return cache.GCOptions{}, fmt.Errorf("%w: --older-than %q: want a duration such as 30d or 12h", exitcode.ErrUsage, o.olderThan)
	}
	size, err := parseSize(o.maxSize)
	if err != nil {
		return cache.GCOptions{}, fmt.Errorf("%w: --max-size: %w", exitcode.ErrUsage, err)
	}
	return cache.GCOptions{OlderThan: age.D(), MaxBytes: size, All: o.all, DryRun: o.dryRun}, nil
}

// parseSize parses "0", "500MB", "20GiB", "1.5G" (K/M/G/T: powers of 1000,
// Ki/Mi/Gi/Ti: powers of 1024; a trailing B is optional).
func parseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSpace(s), "B")
	mult := 1.0
	for _, u := range []struct {
		suffix string
		m      float64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.m
			break
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("size %q: want a number with an optional unit (500MB, 20GiB)", s)
	}
	return int64(v * mult), nil
}

func newCacheCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Inspect and prune the cache of stage outputs (.modax/cache)",
		Long: `The cache holds the outputs of pipeline stages by content key: the sha256 of the
stage name, its resolved options, its inputs' sha256 and the tool version.
pipeline run links cached outputs into a new run instead of recomputing them.`,
	}
	def := pipeline.DefaultCacheDir
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List cache entries, most recently used first",
		Example: `  modax-ml cache ls
  modax-ml cache ls --stage features --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stage, _ := cmd.Flags().GetString("stage")
			store := cacheStore(a)
			es, errs := store.List()
			for _, err := range errs {
				a.log.Warn("skipping an unreadable cache entry", "error", err.Error())
			}
			es = slices.DeleteFunc(es, func(e *cacheEntry) bool { return stage != "" && e.Stage != stage })
			return a.emit(es, func(w io.Writer) error {
				if len(es) == 0 {
					_, err := fmt.Fprintf(w, "no cache entries in %s\n", store.Dir())
					return err
				}
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "KEY\tSTAGE\tSIZE\tFILES\tCREATED\tLAST USED\tRUN")
				var total int64
				for _, e := range es {
					total += e.Size()
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", e.Key[:12], e.Stage, fmtSize(e.Size()), len(e.Outputs),
						e.CreatedAt.UTC().Format(time.RFC3339), e.LastUsed.UTC().Format(time.RFC3339), e.RunID)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				_, err := fmt.Fprintf(w, "%d entries, %s in %s\n", len(es), fmtSize(total), store.Dir())
				return err
			})
		},
	}
	ls.Flags().String("stage", "", "only this stage's entries")
	bindString(ls.Flags(), "cache-dir", "pipeline.cache_dir", def, "cache directory")

	var gcOpts cacheGCOptions
	gc := &cobra.Command{
		Use:   "gc",
		Short: "Remove cache entries by age or total size (least recently used first)",
		Long: `gc removes entries unused for longer than --older-than (default 30 days), then the
least recently used ones until the rest fit in --max-size (0: no limit), and the
leftovers of interrupted writes. Run directories keep their files: a removed
entry only costs a later run its recomputation.`,
		Example: `  modax-ml cache gc
  modax-ml cache gc --older-than 7d --max-size 20GiB
  modax-ml cache gc --all --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := gcOpts.resolve()
			if err != nil {
				return err
			}
			store := cacheStore(a)
			res, err := store.GC(cmd.Context(), opts)
			if err != nil {
				return err
			}
			return a.emit(res, func(w io.Writer) error {
				verb := "removed"
				if res.DryRun {
					verb = "would remove"
				}
				for _, e := range res.Removed {
					fmt.Fprintf(w, "%s %s %s %s (last used %s)\n", verb, e.Key[:12], e.Stage, fmtSize(e.Size()), e.LastUsed.UTC().Format(time.RFC3339))
				}
				_, err := fmt.Fprintf(w, "%s %d entries (%s); kept %d (%s) in %s\n", verb, len(res.Removed), fmtSize(res.FreedBytes),
					res.Kept, fmtSize(res.KeptBytes), store.Dir())
				return err
			})
		},
	}
	gf := gc.Flags()
	gf.StringVar(&gcOpts.olderThan, "older-than", "30d", "remove entries unused for longer (0: no age limit)")
	gf.StringVar(&gcOpts.maxSize, "max-size", "0", "keep at most this much, e.g. 20GiB, 500MB (0: no limit)")
	gf.BoolVar(&gcOpts.all, "all", false, "remove every entry")
	gf.BoolVar(&gcOpts.dryRun, "dry-run", false, "print what would be removed")
	bindString(gf, "cache-dir", "pipeline.cache_dir", def, "cache directory")
	cmd.AddCommand(ls, gc)
	return cmd
}
