// Package version reports the tool's version and the commit it was built from.
package version

import (
	"runtime/debug"
)

// Version is set at build time with -ldflags "-X github.com/modax/modax-ml/internal/version.Version=v1.2.3".
var Version = "dev"

// Commit is the commit the binary was built from when the build has no VCS
// stamp (`go build -buildvcs=false`, or a GOFLAGS that says so): the
// Makefile sets it with -ldflags "-X ...version.Commit=$(git rev-parse HEAD)".
var Commit = ""

// Info describes the binary.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Dirty     bool   `json:"dirty,omitempty"`
	GoVersion string `json:"go_version"`
}

// Get returns the version info of the running binary.
func Get() Info {
	info := Info{Version: Version, Commit: Commit}
	if bi, ok := debug.ReadBuildInfo(); ok {
		info.GoVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Commit = s.Value
			case "vcs.modified":
				info.Dirty = s.Value == "true"
			}
		}
	}
	return info
}

// String is the one-line form: "dev (abc1234, dirty)".
func (i Info) String() string {
	s := i.Version
	if i.Commit != "" {
		c := i.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		s += " (" + c
		if i.Dirty {
			s += ", dirty"
		}
		s += ")"
	}
	return s
}
