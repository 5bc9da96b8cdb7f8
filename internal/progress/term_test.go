package progress

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// screen is a fake terminal: it keeps the rows as a terminal shows them,
// interpreting \r (cursor to column 0), ESC[K (erase to the end of the row)
// and \n (next row).
type screen struct {
	mu   sync.Mutex
	rows []string
	cur  []rune
	col  int
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := []rune(string(p))
	for i := 0; i < len(r); i++ {
		switch {
		case r[i] == '\r':
			s.col = 0
		case r[i] == '\n':
			s.rows = append(s.rows, string(s.cur))
			s.cur, s.col = nil, 0
		case r[i] == '\033' && i+2 < len(r) && r[i+1] == '[' && r[i+2] == 'K':
			s.cur = s.cur[:s.col]
			i += 2
		default:
			if s.col < len(s.cur) {
				s.cur[s.col] = r[i]
			} else {
				s.cur = append(s.cur, r[i])
			}
			s.col++
		}
	}
	return len(p), nil
}

// all returns the rows on screen, the cursor's row last (when not empty).
func (s *screen) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	rows := append([]string(nil), s.rows...)
	if len(s.cur) > 0 {
		rows = append(rows, string(s.cur))
	}
	return rows
}

// glued returns the rows where a log line and bar text share a row.
func glued(rows []string, label string) []string {
	var bad []string
	for _, r := range rows {
		if i := strings.Index(r, "level="); i >= 0 && (i > 0 || strings.Contains(r, label+" [")) {
			bad = append(bad, r)
		}
	}
	return bad
}

// TestTermLogLinesAboveTheBar: log lines written while a bar is drawn each
// get a row of their own, the bar redrawn below them; a log line written to
// the terminal past the Term is glued onto the bar (the bug), so the check
// can fail.
func TestTermLogLinesAboveTheBar(t *testing.T) {
	var scr screen
	term := NewTerm(&scr)
	term.interval = 0
	log := slog.New(slog.NewTextHandler(term, &slog.HandlerOptions{ReplaceAttr: noTime}))
	bar := term.Bars()("train", "batches", 100)
	bar.Add(10)
	log.Info("epoch", "n", 1)
	rows := scr.all()
	if len(rows) != 2 || rows[0] != "level=INFO msg=epoch n=1" || !strings.HasPrefix(rows[1], "train [") {
		t.Fatalf("screen after a log line under a bar:\n%s", strings.Join(rows, "\n"))
	}
	bar.Add(90)
	bar.Finish()
	log.Info("done")
	rows = scr.all()
	if len(rows) != 3 || !strings.HasPrefix(rows[1], "train [========================] 100% 100/100 batches") || rows[2] != "level=INFO msg=done" {
		t.Fatalf("screen after the bar finished:\n%s", strings.Join(rows, "\n"))
	}

	// The control: the same log line past the Term is glued onto the bar.
	var raw screen
	direct := NewTerm(&raw)
	direct.interval = 0
	b := direct.Bars()("train", "batches", 100)
	b.Add(10)
	slog.New(slog.NewTextHandler(&raw, &slog.HandlerOptions{ReplaceAttr: noTime})).Info("epoch")
	if len(glued(raw.all(), "train")) != 1 {
		t.Fatalf("the check sees no glued line on %q", raw.all())
	}
}

// TestTermConcurrent: a bar drawn as fast as it counts while other
// goroutines log never shares a row with a log line, and every log line is
// on screen whole.
func TestTermConcurrent(t *testing.T) {
	var scr screen
	term := NewTerm(&scr)
	term.interval = 0
	log := slog.New(slog.NewTextHandler(term, &slog.HandlerOptions{ReplaceAttr: noTime}))
	bar := term.Bars()("train", "batches", 4000)
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			for i := range 2000 {
				bar.Add(1)
				if i%20 == 0 {
					bar.Describe(fmt.Sprintf("loss %d", i))
				}
			}
		})
		wg.Go(func() {
			for i := range 100 {
				log.Info("epoch", "g", g, "n", i)
			}
		})
	}
	wg.Wait()
	bar.Finish()
	rows := scr.all()
	if bad := glued(rows, "train"); len(bad) > 0 {
		t.Fatalf("%d rows with a log line and bar text, e.g. %q", len(bad), bad[0])
	}
	logs := 0
	for _, r := range rows {
		if strings.HasPrefix(r, "level=INFO msg=epoch g=") {
			logs++
		}
	}
	if logs != 200 {
		t.Errorf("%d log rows on screen, want 200", logs)
	}
	if last := rows[len(rows)-1]; !strings.HasPrefix(last, "train [========================] 100% 4000/4000") {
		t.Errorf("last row %q, want the finished bar", last)
	}
}

// TestTermPartialWrite: while a write has not ended its row, the bar waits
// (it would be drawn over the text); the row's end brings it back.
func TestTermPartialWrite(t *testing.T) {
	var scr screen
	term := NewTerm(&scr)
	term.interval = 0
	bar := term.Bars()("collect", "rows", -1)
	bar.Add(1)
	fmt.Fprint(term, "level=WARN msg=")
	bar.Add(1)
	fmt.Fprint(term, "slow\n")
	rows := scr.all()
	if len(rows) != 2 || rows[0] != "level=WARN msg=slow" || !strings.HasPrefix(rows[1], "collect 2 rows") {
		t.Fatalf("screen:\n%s", strings.Join(rows, "\n"))
	}
	fmt.Fprint(term, "level=WARN msg=half")
	bar.Finish()
	rows = scr.all()
	if len(rows) != 3 || rows[1] != "level=WARN msg=half" || !strings.HasPrefix(rows[2], "collect 2 rows") {
		t.Fatalf("screen after a finish mid-row:\n%s", strings.Join(rows, "\n"))
	}
}

func noTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
