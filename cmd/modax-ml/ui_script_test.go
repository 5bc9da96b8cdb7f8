package main

import (
	"bytes"
	"context"
	"image/png"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// chromiumPath is the Debian chromium binary the ui story drives.
func chromiumPath() string {
	p, err := exec.LookPath("chromium")
	if err != nil {
		return ""
	}
	return p
}

// cmdFreePort is the testscript command
//
//	freeport VAR
//
// which sets VAR to a TCP port that was free on 127.0.0.1 a moment ago.
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: freeport VAR")
	}
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	ts.Check(err)
	port := ln.Addr().(*net.TCPAddr).Port
	ts.Check(ln.Close())
	ts.Setenv(args[0], strconv.Itoa(port))
}

// cmdHTTP is the testscript command
//
//	http URL STATUS [TIMEOUT]
//
// which GETs URL until the server answers (up to TIMEOUT, default 30s),
// checks the status code and writes the body to stdout.
func cmdHTTP(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: http URL STATUS [TIMEOUT]")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	timeout := 30 * time.Second
	if len(args) == 3 {
		timeout, err = time.ParseDuration(args[2])
		ts.Check(err)
	}
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	deadline := time.Now().Add(timeout)
	for {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, args[0], nil)
		ts.Check(err)
		resp, err := client.Do(req)
		if err != nil {
			if time.Now().After(deadline) {
				ts.Fatalf("http %s: %v", args[0], err)
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		var body bytes.Buffer
		_, err = body.ReadFrom(resp.Body)
		resp.Body.Close()
		ts.Check(err)
		if resp.StatusCode != want {
			ts.Fatalf("http %s: status %d, want %d; body:\n%s", args[0], resp.StatusCode, want, body.String())
		}
		_, err = ts.Stdout().Write(body.Bytes())
		ts.Check(err)
		return
	}
}

// consoleLine finds what headless Chromium logs for console messages and
// uncaught exceptions with --enable-logging=stderr.
var consoleLine = regexp.MustCompile(`(?m)^.*(:CONSOLE[:(]|Uncaught).*$`)

var pageTitle = regexp.MustCompile(`<title>[^<]*modax-ml[^<]*</title>`)

// cmdChromium is the testscript command
//
//	chromium URL SCREENSHOT.png
//
// which loads URL in headless Chromium (Debian's chromium), writes the DOM
// it rendered (--dump-dom) to stdout for the stdout assertions that follow,
// saves a 1280×900 screenshot and fails when the PNG is not one of sane
// size or when the page logged anything to the JavaScript console (errors,
// uncaught exceptions, failed resource loads).
func cmdChromium(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: chromium URL SCREENSHOT.png")
	}
	bin := chromiumPath()
	if bin == "" {
		ts.Fatalf("chromium is not installed")
	}
	shot := ts.MkAbs(args[1])
	work := ts.Getenv("WORK")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-extensions", "--disable-background-networking", "--user-data-dir="+filepath.Join(work, ".chromium"),
		"--enable-logging=stderr", "--v=0", "--window-size=1280,900", "--screenshot="+shot, "--dump-dom", args[0])
	cmd.Env = append(os.Environ(), "HOME="+work)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		ts.Fatalf("chromium %s: %v\n%s", args[0], err, stderr.String())
	}
	if m := consoleLine.FindAllString(stderr.String(), -1); len(m) > 0 {
		ts.Fatalf("chromium %s: the page logged to the console:\n%s", args[0], strings.Join(m, "\n"))
	}
	f, err := os.Open(shot)
	ts.Check(err)
	defer f.Close()
	st, err := f.Stat()
	ts.Check(err)
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		ts.Fatalf("chromium %s: screenshot %s: %v", args[0], args[1], err)
	}
	if st.Size() < 10<<10 || cfg.Width != 1280 || cfg.Height != 900 {
		ts.Fatalf("chromium %s: screenshot %s is %d bytes, %d×%d; want > 10 kB, 1280×900", args[0], args[1], st.Size(), cfg.Width, cfg.Height)
	}
	// Every page of the ui (and report.html) has modax-ml in its title; an
	// unreachable or malformed URL shows Chromium's own page instead.
	if !pageTitle.Match(stdout.Bytes()) {
		ts.Fatalf("chromium %s: not a modax-ml page; DOM:\n%.2000s", args[0], stdout.String())
	}
	_, err = ts.Stdout().Write(stdout.Bytes())
	ts.Check(err)
}
