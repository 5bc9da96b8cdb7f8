package tracking

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// GitInfo describes the git repository holding dir: the commit checked out,
// the branch, and whether tracked files are modified. It asks the git binary
// when there is one; otherwise it reads .git (HEAD, refs, packed-refs, and
// the gitdir/commondir links of worktrees) and leaves Dirty unknown. It
// returns nil outside a repository.
func GitInfo(ctx context.Context, dir string) *Git {
	if dir == "" {
		dir = "."
	}
	if _, err := exec.LookPath("git"); err == nil {
		if g := gitCommand(ctx, dir); g != nil {
			return g
		}
	}
	return gitFiles(dir)
}

func gitCommand(ctx context.Context, dir string) *Git {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	run := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_OPTIONAL_LOCKS=0", "LC_ALL=C")
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	commit, err := run("rev-parse", "--verify", "HEAD")
	if err != nil || commit == "" {
		return nil
	}
	g := &Git{Commit: commit}
	if b, err := run("symbolic-ref", "--short", "-q", "HEAD"); err == nil {
		g.Branch = b
	}
	if st, err := run("status", "--porcelain", "--untracked-files=no"); err == nil {
		dirty := st != ""
		g.Dirty = &dirty
	}
	return g
}

// gitFiles reads the commit from the .git files without the git binary.
func gitFiles(dir string) *Git {
	gitDir := findGitDir(dir)
	if gitDir == "" {
		return nil
	}
	common := gitDir
	if b, err := os.ReadFile(filepath.Join(gitDir, "commondir")); err == nil {
		c := strings.TrimSpace(string(b))
		if !filepath.IsAbs(c) {
			c = filepath.Join(gitDir, c)
		}
		common = c
	}
	head, err := os.ReadFile(filepath.Join(gitDir, "HEAD"))
	if err != nil {
		return nil
	}
	h := strings.TrimSpace(string(head))
	ref, ok := strings.CutPrefix(h, "ref: ")
	if !ok {
		if isObjectID(h) {
			return &Git{Commit: h}
		}
		return nil
	}
	commit := resolveRef(gitDir, common, ref)
	if commit == "" {
		return nil // unborn branch: no commit yet
	}
	return &Git{Commit: commit, Branch: strings.TrimPrefix(ref, "refs/heads/")}
}

// findGitDir walks up from dir to the .git directory (or the directory a
// .git file points to, as in worktrees and submodules).
func findGitDir(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	for d := abs; ; {
		p := filepath.Join(d, ".git")
		if fi, err := os.Stat(p); err == nil {
			if fi.IsDir() {
				return p
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return ""
			}
			g, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "gitdir: ")
			if !ok {
				return ""
			}
			if !filepath.IsAbs(g) {
				g = filepath.Join(d, g)
			}
			return g
		}
		parent := filepath.Dir(d)
		if parent == d {
			return ""
		}
		d = parent
	}
}

func resolveRef(gitDir, common, ref string) string {
	for _, base := range []string{gitDir, common} {
		if b, err := os.ReadFile(filepath.Join(base, filepath.FromSlash(ref))); err == nil {
			if c := strings.TrimSpace(string(b)); isObjectID(c) {
				return c
			}
		}
	}
	f, err := os.Open(filepath.Join(common, "packed-refs"))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.HasPrefix(line, "^") {
			continue
		}
		if sha, name, ok := strings.Cut(line, " "); ok && name == ref && isObjectID(sha) {
			return sha
		}
	}
	return ""
}

func isObjectID(s string) bool {
	if len(s) != 40 && len(s) != 64 { // sha1 or sha256 repositories
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}
