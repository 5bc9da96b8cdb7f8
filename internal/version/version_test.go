package version

import "testing"

// TestCommitFromLdflags: a binary without a VCS stamp (test binaries have
// none, nor have builds with -buildvcs=false) reports the commit the
// Makefile passes with -ldflags.
func TestCommitFromLdflags(t *testing.T) {
	old := Commit
	defer func() { Commit = old }()
	Commit = "0123456789abcdef0123"
	i := Get()
	if i.Commit != Commit {
		t.Fatalf("commit %q, want %q", i.Commit, Commit)
	}
	if s := i.String(); s != Version+" (0123456789ab)" {
		t.Fatalf("String() = %q", s)
	}
}
