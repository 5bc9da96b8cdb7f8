// Package cache is the content-addressed store of stage outputs (the
// design's feature store): `.modax/cache/<key>/` holds the files a pipeline
// stage wrote, where key is the sha256 of everything that determines them —
// the stage name, its resolved options, its inputs' sha256 and the tool
// version (pipeline.Key computes it). A later run with the same key links
// the files into its run directory instead of computing them again.
//
// Layout of an entry:
//
//	.modax/cache/
//	  .lock                  shared while entries are written or read, exclusive for gc
//	  <key>/manifest.json    what the entry is: stage, key, options, inputs, outputs with sha256
//	  <key>/files/<name>     the outputs, by their path relative to the run directory
//
// Files are hard-linked in and out when the cache and the run directory are
// on one file system (no copy, no extra space), copied otherwise. Stages
// replace files by rename and never write into an existing file, so a link
// shared by a run directory and the cache is never changed under either.
// An entry is built under a hidden temporary name and renamed into place: it
// is complete or absent. The manifest's modification time is the entry's
// last use (gc removes least recently used entries first).
package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/lock"
)

// ManifestSchema versions manifest.json.
const ManifestSchema = "modax.cache/v1"

const (
	manifestFile = "manifest.json"
	filesDir     = "files"
	lockName     = ".lock"
	tmpPrefix    = ".tmp-"
)

var keyRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// File is a cached output: its path relative to the run directory.
type File struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Input is an input of the stage that made an entry.
type Input struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// Entry is one cached stage result (manifest.json).
type Entry struct {
	Schema    string    `json:"schema"`
	Key       string    `json:"key"`
	Stage     string    `json:"stage"`
	CreatedAt time.Time `json:"created_at"`
	// RunID is the run that computed the outputs.
	RunID string `json:"run_id"`
	Tool  string `json:"tool_version"`
	// Options are the stage's resolved options as hashed into the key
	// (secrets redacted; run-directory paths as $RUN/…).
	Options json.RawMessage `json:"options"`
	Inputs  []Input         `json:"inputs"`
	Outputs []File          `json:"outputs"`

	// LastUsed is when the entry was last written or restored.
	LastUsed time.Time `json:"-"`
	// Dir is the entry's directory.
	Dir string `json:"-"`
}

// Size is the total size of the entry's outputs.
func (e *Entry) Size() int64 {
	var n int64
	for _, f := range e.Outputs {
		n += f.Size
	}
	return n
}

// Store is a cache directory.
type Store struct {
	dir string
}

// Open returns the store at dir (created on first Put).
func Open(dir string) *Store { return &Store{dir: dir} }

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) lock(ctx context.Context, shared bool, what string) (*lock.Lock, error) {
	// Shared holders hold the lock for one restore or store; gc waits for
	// them rather than fail.
	wait := 10 * time.Minute
	if !shared {
		wait = time.Minute
	}
	l, err := lock.Acquire(ctx, filepath.Join(s.dir, lockName), lock.Options{Shared: shared, Wait: wait, What: what})
	if err != nil {
		return nil, fmt.Errorf("cache %s: %w", s.dir, err)
	}
	return l, nil
}

// Get returns the entry of key, or nil when there is none (or it is
// incomplete: an entry whose file is missing or has another size is
// treated as absent).
func (s *Store) Get(key string) (*Entry, error) {
	if !keyRE.MatchString(key) {
		return nil, fmt.Errorf("cache: bad key %q", key)
	}
	e, err := s.read(filepath.Join(s.dir, key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for _, f := range e.Outputs {
		fi, err := os.Stat(filepath.Join(e.Dir, filesDir, filepath.FromSlash(f.Path)))
		if err != nil || fi.Size() != f.Size {
			return nil, nil
		}
	}
	return e, nil
}

func (s *Store) read(dir string) (*Entry, error) {
	path := filepath.Join(dir, manifestFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("cache: %s: %w", path, err)
	}
	if e.Schema != ManifestSchema || e.Key != filepath.Base(dir) {
		return nil, fmt.Errorf("cache: %s: not a %s manifest of key %s", path, ManifestSchema, filepath.Base(dir))
	}
	e.Dir, e.LastUsed = dir, fi.ModTime()
	return &e, nil
}

// Put stores the files e.Outputs (paths relative to srcDir; their SHA256
// and Size must be filled) as the entry e.Key. When the entry exists already
// (another run stored it first) the existing one is kept and returned.
func (s *Store) Put(ctx context.Context, e Entry, srcDir string) (*Entry, error) {
	if !keyRE.MatchString(e.Key) {
		return nil, fmt.Errorf("cache: bad key %q", e.Key)
	}
	for _, f := range e.Outputs {
		if err := checkRel(f.Path); err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	l, err := s.lock(ctx, true, "")
	if err != nil {
		return nil, err
	}
	defer func() { _ = l.Unlock() }()
	if old, err := s.Get(e.Key); err == nil && old != nil {
		return old, nil
	}
	tmp, err := os.MkdirTemp(s.dir, tmpPrefix)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	defer os.RemoveAll(tmp) // no-op after the rename
	for _, f := range e.Outputs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		dst := filepath.Join(tmp, filesDir, filepath.FromSlash(f.Path))
		if err := linkOrCopy(filepath.Join(srcDir, filepath.FromSlash(f.Path)), dst); err != nil {
			return nil, fmt.Errorf("cache: store %s: %w", f.Path, err)
		}
	}
	e.Schema = ManifestSchema
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(tmp, manifestFile), append(b, '\n')); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	final := filepath.Join(s.dir, e.Key)
	if err := os.Rename(tmp, final); err != nil {
		// Another run stored the key meanwhile, or a broken entry is in the way.
		if old, gerr := s.Get(e.Key); gerr == nil && old != nil {
			return old, nil
		}
		if rerr := os.RemoveAll(final); rerr != nil {
			return nil, fmt.Errorf("cache: replace broken entry %s: %w", final, rerr)
		}
		if err := os.Rename(tmp, final); err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
	}
	_ = atomicfile.SyncDir(s.dir)
	return s.read(final)
}

// ErrCorrupt is returned by Restore when a cached file's content no longer
// matches its manifest (it was written to in place through a hard link).
var ErrCorrupt = errors.New("cache entry is corrupt")

// Restore checks the entry's files against their sha256, then links (or
// copies) them into dstDir, each replacing the destination atomically, and
// marks the entry used. A corrupt entry is removed and ErrCorrupt returned.
func (s *Store) Restore(ctx context.Context, e *Entry, dstDir string) error {
	l, err := s.lock(ctx, true, "")
	if err != nil {
		return err
	}
	defer func() { _ = l.Unlock() }()
	for _, f := range e.Outputs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := checkRel(f.Path); err != nil {
			return fmt.Errorf("cache: %w", err)
		}
		src := filepath.Join(e.Dir, filesDir, filepath.FromSlash(f.Path))
		if sum, err := dataset.FileSHA256(src); err != nil || sum != f.SHA256 {
			os.RemoveAll(e.Dir)
			return fmt.Errorf("cache: %s: %s: %w", e.Key, f.Path, ErrCorrupt)
		}
	}
	for _, f := range e.Outputs {
		src := filepath.Join(e.Dir, filesDir, filepath.FromSlash(f.Path))
		dst := filepath.Join(dstDir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("cache: restore %s: %w", f.Path, err)
		}
		tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-cache")
		os.Remove(tmp)
		if err := linkOrCopy(src, tmp); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("cache: restore %s: %w", f.Path, err)
		}
		if err := os.Rename(tmp, dst); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("cache: restore %s: %w", f.Path, err)
		}
	}
	now := time.Now()
	_ = os.Chtimes(filepath.Join(e.Dir, manifestFile), now, now)
	e.LastUsed = now
	return nil
}

// List returns the complete entries, most recently used first, and the
// errors of unreadable ones.
func (s *Store) List() ([]*Entry, []error) {
	des, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []error{fmt.Errorf("cache: %w", err)}
	}
	var out []*Entry
	var errs []error
	for _, d := range des {
		if !d.IsDir() || !keyRE.MatchString(d.Name()) {
			continue
		}
		e, err := s.read(filepath.Join(s.dir, d.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b *Entry) int {
		if c := b.LastUsed.Compare(a.LastUsed); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out, errs
}

// Latest returns the most recently created entry of stage, or nil.
func (s *Store) Latest(stage string) *Entry {
	es, _ := s.List()
	var best *Entry
	for _, e := range es {
		if e.Stage == stage && (best == nil || e.CreatedAt.After(best.CreatedAt)) {
			best = e
		}
	}
	return best
}

// GCOptions choose what gc removes.
type GCOptions struct {
	// OlderThan removes entries not used for this long (0: no age limit).
	OlderThan time.Duration
	// MaxBytes removes least recently used entries until the rest fit (0: no
	// size limit).
	MaxBytes int64
	// All removes every entry.
	All bool
	// DryRun reports what would be removed without removing it.
	DryRun bool
	// Now is the current time (time.Now when zero).
	Now time.Time
}

// GCResult reports a gc.
type GCResult struct {
	Removed      []*Entry `json:"removed"`
	Kept         int      `json:"kept"`
	FreedBytes   int64    `json:"freed_bytes"`
	KeptBytes    int64    `json:"kept_bytes"`
	RemovedTemps int      `json:"removed_temps"`
	DryRun       bool     `json:"dry_run"`
}

// GC removes entries by age and size, and the temporary directories of
// interrupted writes. It takes the store's lock exclusively (waiting up to a
// minute for a pipeline that is storing or restoring an entry).
// Run directories keep their files: a removed entry only costs a later run
// the recomputation.
func (s *Store) GC(ctx context.Context, opts GCOptions) (*GCResult, error) {
	if _, err := os.Stat(s.dir); errors.Is(err, fs.ErrNotExist) {
		return &GCResult{DryRun: opts.DryRun}, nil
	}
	l, err := s.lock(ctx, false, "cache gc")
	if err != nil {
		return nil, err
	}
	defer func() { _ = l.Unlock() }()
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	res := &GCResult{DryRun: opts.DryRun}
	es, errs := s.List()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// Most recently used first: keep entries while they fit.
	var kept int64
	for _, e := range es {
		remove := opts.All ||
			(opts.OlderThan > 0 && now.Sub(e.LastUsed) > opts.OlderThan) ||
			(opts.MaxBytes > 0 && kept+e.Size() > opts.MaxBytes)
		if !remove {
			kept += e.Size()
			res.Kept++
			continue
		}
		res.Removed = append(res.Removed, e)
		res.FreedBytes += e.Size()
		if !opts.DryRun {
			if err := os.RemoveAll(e.Dir); err != nil {
				return res, fmt.Errorf("cache gc: %w", err)
			}
		}
	}
	res.KeptBytes = kept
	des, _ := os.ReadDir(s.dir)
	for _, d := range des {
		if strings.HasPrefix(d.Name(), tmpPrefix) {
			res.RemovedTemps++
			if !opts.DryRun {
				os.RemoveAll(filepath.Join(s.dir, d.Name()))
			}
		}
	}
	return res, nil
}

// checkRel refuses paths that leave their directory.
func checkRel(p string) error {
	if p == "" || filepath.IsAbs(p) || !filepath.IsLocal(filepath.FromSlash(p)) {
		return fmt.Errorf("output path %q is not inside the run directory", p)
	}
	return nil
}

// linkOrCopy hard-links src to dst, or copies it when linking is impossible
// (another file system, no link support).
func linkOrCopy(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	return out.Close()
}
