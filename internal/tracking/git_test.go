package tracking

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func gitRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestGitInfo(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	repo := t.TempDir()
	gitRun(t, repo, "init", "-q", "-b", "main")
	writeFile(t, filepath.Join(repo, "a.txt"), "a")
	gitRun(t, repo, "add", "a.txt")
	gitRun(t, repo, "commit", "-q", "-m", "one")
	head := gitRun(t, repo, "rev-parse", "HEAD")
	sub := filepath.Join(repo, "sub", "dir")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}

	g := GitInfo(context.Background(), sub)
	if g == nil || g.Commit != head || g.Branch != "main" || g.Dirty == nil || *g.Dirty {
		t.Fatalf("clean repo: %+v", g)
	}
	writeFile(t, filepath.Join(repo, "a.txt"), "changed")
	if g := GitInfo(context.Background(), repo); g.Dirty == nil || !*g.Dirty {
		t.Errorf("modified file not dirty: %+v", g)
	}
	writeFile(t, filepath.Join(repo, "a.txt"), "a")
	writeFile(t, filepath.Join(repo, "untracked.txt"), "x")
	if g := GitInfo(context.Background(), repo); *g.Dirty {
		t.Errorf("an untracked file made the repo dirty")
	}

	// Without the binary: the same commit from the files, loose and packed.
	if g := gitFiles(sub); g == nil || g.Commit != head || g.Branch != "main" || g.Dirty != nil {
		t.Errorf("gitFiles (loose ref): %+v", g)
	}
	gitRun(t, repo, "pack-refs", "--all")
	if _, err := os.Stat(filepath.Join(repo, ".git", "refs", "heads", "main")); err == nil {
		t.Fatal("pack-refs left the loose ref")
	}
	if g := gitFiles(repo); g == nil || g.Commit != head {
		t.Errorf("gitFiles (packed ref): %+v", g)
	}
	// A worktree: .git is a file pointing to the gitdir, refs in the common dir.
	wt := filepath.Join(t.TempDir(), "wt")
	gitRun(t, repo, "worktree", "add", "-q", "-b", "feature", wt)
	if g := gitFiles(wt); g == nil || g.Commit != head || g.Branch != "feature" {
		t.Errorf("gitFiles (worktree): %+v", g)
	}
	// Detached HEAD.
	gitRun(t, wt, "checkout", "-q", "--detach")
	if g := gitFiles(wt); g == nil || g.Commit != head || g.Branch != "" {
		t.Errorf("gitFiles (detached): %+v", g)
	}
}

func TestGitInfoOutsideRepo(t *testing.T) {
	dir := t.TempDir()
	if findGitDir(dir) != "" {
		t.Skip("the temp dir is inside a git repository")
	}
	if g := GitInfo(context.Background(), dir); g != nil {
		t.Errorf("outside a repo: %+v", g)
	}
	// An unborn branch has no commit.
	if _, err := exec.LookPath("git"); err == nil {
		gitRun(t, dir, "init", "-q")
		if g := GitInfo(context.Background(), dir); g != nil {
			t.Errorf("unborn branch: %+v", g)
		}
		if g := gitFiles(dir); g != nil {
			t.Errorf("unborn branch (files): %+v", g)
		}
	}
}
