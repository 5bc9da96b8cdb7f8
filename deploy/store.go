package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/lock"
)

// The model directory:
//
//	models/
//	  .lock                      serialises deploys (flock; never removed)
//	  history.json               deploy and rollback events, oldest first
//	  versions/<version>/        model.onnx, model.safetensors, metrics.json, model_metadata.json
//	                             [, validation.json: the training data's reference statistics]
//	  current -> versions/<v>    the one atomic switch (a symlink replaced by rename)
//	  rul_predictor.onnx -> current/model.onnx
//	  model_metadata.json -> current/model_metadata.json
//
// A version directory is written completely under a hidden staging name,
// every file fsynced, then renamed into versions/ (and the directory
// fsynced): it is either absent or complete. Switching the served model is
// one rename of the `current` symlink, so rul_predictor.onnx and
// model_metadata.json always resolve into the same version: a crash at any
// point leaves the old model or the new one, never a mix.
const (
	versionsDir  = "versions"
	currentLink  = "current"
	servedONNX   = "rul_predictor.onnx"
	servedMeta   = "model_metadata.json"
	historyFile  = "history.json"
	lockFile     = ".lock"
	stagingPref  = ".staging-"
	trashPref    = ".trash-"
	linkTempPref = ".link-"

	fileONNX       = "model.onnx"
	fileCheckpoint = "model.safetensors"
	fileMetrics    = "metrics.json"
	fileMetadata   = "model_metadata.json"
	fileValidation = "validation.json"
)

// versionFiles are the files of a complete version directory; optionalFiles
// those it has when the deploy was given them (model_metadata.json names
// them with their sha256).
var (
	versionFiles  = []string{fileONNX, fileCheckpoint, fileMetrics, fileMetadata}
	optionalFiles = append([]string{fileValidation}, mlflowFiles...)
)

var versionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)

// checkVersion refuses version names that are not a safe path component.
func checkVersion(v string) error {
	if !versionRE.MatchString(v) {
		return fmt.Errorf("version %q: want letters, digits, '.', '_', '+', '-' (at most 128, starting with a letter or digit)", v)
	}
	return nil
}

// testHooks let tests kill the process at a named step of a publish or
// rollback and inject write errors at the file layer. Production code never
// sets them.
var testHooks struct {
	step  func(name string)
	write func(path string) error
}

func step(name string) {
	if testHooks.step != nil {
		testHooks.step(name)
	}
}

// store is an opened model directory.
type store struct {
	dir  string
	lock *lock.Lock
}

// openStore creates the model directory if needed and takes its lock,
// waiting up to timeout (or until ctx ends) for another deploy to finish.
// The lock is an flock (internal/lock): it dies with the process.
func openStore(ctx context.Context, dir string, timeout time.Duration) (*store, error) {
	if err := os.MkdirAll(filepath.Join(dir, versionsDir), 0o755); err != nil {
		return nil, fmt.Errorf("models dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, lockFile)
	l, err := lock.Acquire(ctx, path, lock.Options{Wait: timeout, What: "modax-ml deploy"})
	if err != nil {
		var held *lock.HeldError
		if errors.As(err, &held) {
			return nil, fmt.Errorf("lock %s: another deploy holds it (%s) after waiting %s: %w", path, held.Holder, timeout, lock.ErrHeld)
		}
		return nil, err
	}
	return &store{dir: dir, lock: l}, nil
}

// close releases the lock.
func (s *store) close() { _ = s.lock.Unlock() }

func (s *store) path(parts ...string) string {
	return filepath.Join(append([]string{s.dir}, parts...)...)
}

func (s *store) versionDir(v string) string { return s.path(versionsDir, v) }

// current returns the served version ("" when none).
func (s *store) current() (string, error) {
	p := s.path(currentLink)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		return "", fmt.Errorf("%s is not a symlink: not a model directory managed by modax-ml deploy", p)
	}
	target, err := os.Readlink(p)
	if err != nil {
		return "", err
	}
	v, ok := strings.CutPrefix(target, versionsDir+"/")
	if !ok || checkVersion(v) != nil {
		return "", fmt.Errorf("%s points to %q, not to %s/<version>", p, target, versionsDir)
	}
	return v, nil
}

// recover brings the directory back to a consistent state after a crash:
// it removes staging, trash and temporary link leftovers, checks the served
// links, and records in the history a switch that a crash kept out of it.
// It runs under the lock before every change.
func (s *store) recover(env logger) error {
	for _, d := range []string{s.dir, s.path(versionsDir)} {
		ents, err := os.ReadDir(d)
		if err != nil {
			return fmt.Errorf("models dir: %w", err)
		}
		for _, e := range ents {
			n := e.Name()
			if strings.HasPrefix(n, stagingPref) || strings.HasPrefix(n, trashPref) || strings.HasPrefix(n, linkTempPref) ||
				(strings.HasPrefix(n, ".") && strings.Contains(n, ".tmp-")) {
				env.Info("removing a leftover of an interrupted deploy", "path", filepath.Join(d, n))
				if err := os.RemoveAll(filepath.Join(d, n)); err != nil {
					return fmt.Errorf("models dir: remove leftover: %w", err)
				}
			}
		}
	}
	for name, target := range map[string]string{servedONNX: currentLink + "/" + fileONNX, servedMeta: currentLink + "/" + fileMetadata} {
		p := s.path(name)
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Symlink(target, p); err != nil {
				return fmt.Errorf("models dir: link %s: %w", p, err)
			}
		case err != nil:
			return fmt.Errorf("models dir: %w", err)
		case fi.Mode()&fs.ModeSymlink == 0:
			return fmt.Errorf("%s is a regular file, not managed by modax-ml deploy (which keeps it a link to %s): move it away or deploy to another --models-dir", p, target)
		default:
			if got, _ := os.Readlink(p); got != target {
				if err := s.link(name, target); err != nil {
					return err
				}
			}
		}
	}
	cur, err := s.current()
	if err != nil {
		return err
	}
	h, err := s.history()
	if err != nil {
		return err
	}
	if last := h.last(); cur != "" && cur != last.Version {
		env.Warn("the last deploy or rollback was interrupted after switching; recording it", "current", cur, "history_last", last.Version)
		h.Events = append(h.Events, Event{Time: time.Now().UTC(), Action: "recovered", Version: cur, Previous: last.Version,
			Note: "a deploy or rollback was interrupted after the switch; recorded by the next run"})
		return s.writeHistory(h)
	}
	return nil
}

// link points name at target atomically: a new symlink under a temporary
// name, renamed over the old one, and the directory fsynced.
func (s *store) link(name, target string) error {
	tmp := s.path(fmt.Sprintf("%s%s-%d", linkTempPref, name, time.Now().UnixNano()))
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("models dir: link %s: %w", name, err)
	}
	step("link-created")
	if err := os.Rename(tmp, s.path(name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("models dir: switch %s: %w", name, err)
	}
	return atomicfile.SyncDir(s.dir)
}

// switchTo makes v the served version.
func (s *store) switchTo(v string) error {
	if err := s.complete(v); err != nil {
		return err
	}
	return s.link(currentLink, versionsDir+"/"+v)
}

// complete checks that version v has all its files.
func (s *store) complete(v string) error {
	for _, f := range versionFiles {
		if _, err := os.Stat(filepath.Join(s.versionDir(v), f)); err != nil {
			return fmt.Errorf("version %s is incomplete: %w", v, err)
		}
	}
	return nil
}

// publish writes version v from files (name → content) under a staging
// name, fsyncs everything and renames it into versions/.
func (s *store) publish(v string, files map[string][]byte) error {
	stage := s.path(versionsDir, fmt.Sprintf("%s%s-%d", stagingPref, v, time.Now().UnixNano()))
	if err := os.Mkdir(stage, 0o755); err != nil {
		return fmt.Errorf("publish %s: %w", v, err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(stage)
		}
	}()
	for _, name := range append(slices.Clone(versionFiles), optionalFiles...) {
		data, ok := files[name]
		if !ok && slices.Contains(optionalFiles, name) {
			continue
		}
		if err := writeFileSync(filepath.Join(stage, name), data); err != nil {
			return fmt.Errorf("publish %s: %w", v, err)
		}
		step("staging")
	}
	if err := atomicfile.SyncDir(stage); err != nil {
		return fmt.Errorf("publish %s: %w", v, err)
	}
	step("staged")
	if err := os.Rename(stage, s.versionDir(v)); err != nil {
		return fmt.Errorf("publish %s: %w", v, err)
	}
	ok = true
	if err := atomicfile.SyncDir(s.path(versionsDir)); err != nil {
		return fmt.Errorf("publish %s: %w", v, err)
	}
	step("published")
	return nil
}

// writeFileSync writes data to a new file and fsyncs it.
func writeFileSync(path string, data []byte) error {
	if testHooks.write != nil {
		if err := testHooks.write(path); err != nil {
			return &fs.PathError{Op: "write", Path: path, Err: err}
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// prune removes versions beyond the keep most recently served ones, never
// current or previous. A version is moved to a hidden trash name first, so
// that a crash mid-removal leaves nothing that looks like a version.
func (s *store) prune(keep int, h *History, cur string) ([]string, error) {
	if keep <= 0 {
		return nil, nil
	}
	vs, err := s.versions()
	if err != nil {
		return nil, err
	}
	lastServed := h.lastServed()
	sort.SliceStable(vs, func(i, j int) bool { // most recently served first; never-served last
		return lastServed[vs[i]].After(lastServed[vs[j]])
	})
	prev := h.previous()
	var pruned []string
	kept := 0
	for _, v := range vs {
		if v == cur || v == prev || kept < keep {
			kept++
			continue
		}
		trash := s.path(versionsDir, fmt.Sprintf("%s%s-%d", trashPref, v, time.Now().UnixNano()))
		if err := os.Rename(s.versionDir(v), trash); err != nil {
			return pruned, fmt.Errorf("prune %s: %w", v, err)
		}
		step("pruning")
		if err := os.RemoveAll(trash); err != nil {
			return pruned, fmt.Errorf("prune %s: %w", v, err)
		}
		pruned = append(pruned, v)
	}
	if len(pruned) > 0 {
		if err := atomicfile.SyncDir(s.path(versionsDir)); err != nil {
			return pruned, err
		}
	}
	return pruned, nil
}

// versions lists the version directories.
func (s *store) versions() ([]string, error) {
	ents, err := os.ReadDir(s.path(versionsDir))
	if err != nil {
		return nil, fmt.Errorf("models dir: %w", err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && checkVersion(e.Name()) == nil {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Event is one entry of the deploy history.
type Event struct {
	Time        time.Time `json:"time"`
	Action      string    `json:"action"` // deploy, rollback, recovered
	Version     string    `json:"version"`
	Previous    string    `json:"previous,omitempty"`
	RunID       string    `json:"run_id,omitempty"`
	ToolVersion string    `json:"tool_version,omitempty"`
	Note        string    `json:"note,omitempty"`
}

// History is history.json.
type History struct {
	Schema string  `json:"schema"`
	Events []Event `json:"events"`
}

const historySchema = "modax.deploy_history/v1"

func (h *History) last() Event {
	if len(h.Events) == 0 {
		return Event{}
	}
	return h.Events[len(h.Events)-1]
}

// previous is the version served before the current one.
func (h *History) previous() string { return h.last().Previous }

// lastServed maps each version to the last time it became current.
func (h *History) lastServed() map[string]time.Time {
	m := map[string]time.Time{}
	for _, e := range h.Events {
		m[e.Version] = e.Time
	}
	return m
}

func (s *store) history() (*History, error) {
	b, err := os.ReadFile(s.path(historyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return &History{Schema: historySchema}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("models dir: %w", err)
	}
	var h History
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("models dir: %s is corrupt: fix or remove it (the versions and the current link are intact): %w", s.path(historyFile), err)
	}
	if h.Schema != historySchema {
		return nil, fmt.Errorf("models dir: %s has schema %q, want %q", s.path(historyFile), h.Schema, historySchema)
	}
	return &h, nil
}

func (s *store) writeHistory(h *History) error {
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	if testHooks.write != nil {
		if err := testHooks.write(s.path(historyFile)); err != nil {
			return fmt.Errorf("models dir: write %s: %w", s.path(historyFile), err)
		}
	}
	if err := atomicfile.WriteFile(s.path(historyFile), append(b, '\n')); err != nil {
		return fmt.Errorf("models dir: %w", err)
	}
	return nil
}

// logger is the part of slog.Logger the store uses.
type logger interface {
	Info(msg string, args ...any)
	Warn(msg string, args ...any)
}
