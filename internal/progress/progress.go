// Package progress reports the progress of long work. Library code receives a
// Factory and calls Add on the bars it starts; only the command layer decides
// whether anything is drawn (on a terminal, unless --quiet).
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Bar counts progress of one piece of work. All methods are safe for
// concurrent use.
type Bar interface {
	// Add counts n more units done.
	Add(n int64)
	// SetTotal sets the expected number of units (-1: unknown).
	SetTotal(n int64)
	// Describe replaces the bar's suffix text (e.g. "loss 0.123").
	Describe(s string)
	// Finish stops drawing the bar.
	Finish()
}

// Factory starts a bar with a label, a unit ("rows", "windows") and a total
// (-1 when unknown).
type Factory func(label, unit string, total int64) Bar

// None is a Factory whose bars draw nothing.
func None(string, string, int64) Bar { return nop{} }

type nop struct{}

func (nop) Add(int64)       {}
func (nop) SetTotal(int64)  {}
func (nop) Describe(string) {}
func (nop) Finish()         {}

// Term is a terminal shared by the progress bars and every other writer of
// it (the logger, error messages). A write clears the bar line, prints, and
// redraws the bar below, so no line ever starts after bar text; bars draw at
// most ten times a second. Use Term as the log's writer and Bars as the
// stage's Factory.
type Term struct {
	w        io.Writer
	interval time.Duration // least time between two draws of a bar

	mu     sync.Mutex
	line   string // the bar line on screen ("" when none)
	midRow bool   // the last write left the cursor after text on its row
}

// NewTerm returns a Term writing to w (a terminal).
func NewTerm(w io.Writer) *Term {
	return &Term{w: w, interval: 100 * time.Millisecond}
}

// Write writes p (log lines) above the bar: the bar line is cleared first and
// redrawn after p, once p ends its line.
func (t *Term) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.line != "" && !t.midRow {
		if _, err := io.WriteString(t.w, "\r\033[K"); err != nil {
			return 0, err
		}
	}
	n, err := t.w.Write(p)
	if err != nil || len(p) == 0 {
		return n, err
	}
	t.midRow = p[len(p)-1] != '\n'
	if t.line != "" && !t.midRow {
		_, err = io.WriteString(t.w, t.line)
	}
	return n, err
}

// draw puts a bar's line on screen; a final line ends its row and is not
// redrawn. Nothing is drawn while a write has not ended its row, nor for a
// finished bar but its final line.
func (t *Term) draw(b *termBar, line string, final bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case !final && b.finished.Load():
	case final && t.midRow:
		io.WriteString(t.w, "\n"+line+"\n")
		t.line, t.midRow = "", false
	case final:
		io.WriteString(t.w, "\r\033[K"+line+"\n")
		t.line = ""
	case t.midRow:
		t.line = line // drawn when the row ends
	default:
		io.WriteString(t.w, "\r\033[K"+line)
		t.line = line
	}
}

// Bars returns a Factory drawing one-line bars on the terminal.
func (t *Term) Bars() Factory {
	return func(label, unit string, total int64) Bar {
		b := &termBar{t: t, label: label, unit: unit, start: time.Now()}
		b.total.Store(total)
		return b
	}
}

// Terminal returns a Factory drawing one-line bars on w (a terminal). Other
// writes to w should go through a Term (NewTerm(w).Bars() is the same
// Factory).
func Terminal(w io.Writer) Factory { return NewTerm(w).Bars() }

type termBar struct {
	t           *Term
	label, unit string
	start       time.Time
	done, total atomic.Int64
	last        atomic.Int64 // unix nanos of the last draw
	desc        atomic.Value
	finished    atomic.Bool
}

func (b *termBar) Add(n int64) {
	b.done.Add(n)
	now := time.Now().UnixNano()
	if last := b.last.Load(); now-last >= int64(b.t.interval) && b.last.CompareAndSwap(last, now) {
		b.draw(false)
	}
}

func (b *termBar) SetTotal(n int64)  { b.total.Store(n) }
func (b *termBar) Describe(s string) { b.desc.Store(s) }

func (b *termBar) Finish() {
	if b.finished.Swap(true) {
		return
	}
	b.draw(true)
}

func (b *termBar) draw(final bool) {
	if b.finished.Load() && !final {
		return
	}
	done, total := b.done.Load(), b.total.Load()
	el := time.Since(b.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(done) / el
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s ", b.label)
	if total > 0 {
		frac := min(float64(done)/float64(total), 1)
		const width = 24
		n := int(frac * width)
		fmt.Fprintf(&sb, "[%s%s] %3.0f%% ", strings.Repeat("=", n), strings.Repeat(" ", width-n), 100*frac)
		fmt.Fprintf(&sb, "%s/%s %s", Human(float64(done)), Human(float64(total)), b.unit)
	} else {
		fmt.Fprintf(&sb, "%s %s", Human(float64(done)), b.unit)
	}
	fmt.Fprintf(&sb, " (%s %s/s)", Human(rate), b.unit)
	if total > 0 && rate > 0 && !final && done < total {
		eta := time.Duration(float64(total-done) / rate * float64(time.Second)).Round(time.Second)
		fmt.Fprintf(&sb, " ETA %s", eta)
	}
	if d, ok := b.desc.Load().(string); ok && d != "" {
		sb.WriteString(" " + d)
	}
	b.t.draw(b, sb.String(), final)
}

// Human formats a count with a k/M/G suffix.
func Human(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}
