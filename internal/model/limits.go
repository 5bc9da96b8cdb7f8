package model

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// Size bounds of an architecture (Arch.Validate). They are far above any RUL
// model worth training (the design's is 128×2, FC 64) and keep a mistyped
// flag or a crafted file from asking for terabytes.
const (
	MaxInputSize = 1 << 16
	MaxHidden    = 4096
	MaxLayers    = 16
	MaxFC        = 4096
)

// ParamCount returns the number of scalar parameters of a, computed from the
// shapes alone (nothing is allocated). a must be valid.
func (a Arch) ParamCount() int64 {
	var n int64
	for _, s := range a.Spec() {
		p := int64(1)
		for _, d := range s.Shape {
			p *= int64(d)
		}
		n += p
	}
	return n
}

// MemoryLimit returns the bytes a process may use: the Go memory limit when
// one is set (GOMEMLIMIT), else the machine's physical memory (Linux
// /proc/meminfo), else 0 (unknown).
func MemoryLimit() int64 {
	if l := debug.SetMemoryLimit(-1); l > 0 && l < math.MaxInt64 {
		return l
	}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// CheckMemory returns an error when an estimated need of bytes exceeds
// MemoryLimit (an unknown limit passes). what says what the bytes are for.
func CheckMemory(what string, need int64) error {
	limit := MemoryLimit()
	if limit > 0 && need > limit {
		return fmt.Errorf("%s needs about %s, more than the %s this process may use (physical memory or GOMEMLIMIT)", what, formatBytes(need), formatBytes(limit))
	}
	return nil
}

func formatBytes(n int64) string {
	const unit = 1 << 10
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"} {
		f /= unit
		if f < unit {
			return fmt.Sprintf("%.1f %s", f, u)
		}
	}
	return fmt.Sprintf("%.1f EiB", f)
}
