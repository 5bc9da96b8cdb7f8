// Package ui is `modax-ml ui`: a local, read-only web app over the run
// records (runs/<run-id>/run.json and the files beside them), the model
// directory (deploy's versions and history) and the scores and monitor
// reports found there. It is net/http and html/template with every asset
// embedded; the charts are SVG drawn on the server (svg.go), so the pages
// run no JavaScript at all.
package ui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Options configure the server.
type Options struct {
	// RunsDir holds one directory per run (tracking.runs_dir).
	RunsDir string
	// ModelsDir is deploy's model directory.
	ModelsDir string
	// Dir is the working directory: scores*.parquet files there are read
	// by the fleet page besides those in the run directories.
	Dir string
	// DBScores, when set, reads the latest scores of the database's
	// prediction table (DBName names it on the fleet page); the ui calls it
	// on every fleet and device page.
	DBScores func(ctx context.Context) ([]dataset.Score, error)
	DBName   string
	Log      *slog.Logger
	// Now dates running runs (default time.Now).
	Now func() time.Time
}

// Server serves the pages. It only reads.
type Server struct {
	opts  Options
	pages map[string]*template.Template
	mux   *http.ServeMux
}

// New builds the server.
func New(o Options) (*Server, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Dir == "" {
		o.Dir = "."
	}
	s := &Server{opts: o, pages: map[string]*template.Template{}, mux: http.NewServeMux()}
	for _, p := range []string{"runs", "compare", "run", "fleet", "device", "models", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("ui: template %s: %w", p, err)
		}
		s.pages[p] = t
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/runs", http.StatusFound)
	})
	s.mux.HandleFunc("GET /runs", s.runs)
	s.mux.HandleFunc("GET /compare", s.compare)
	s.mux.HandleFunc("GET /runs/{id}", s.run)
	s.mux.HandleFunc("GET /runs/{id}/files/{path...}", s.runFile)
	s.mux.HandleFunc("GET /fleet", s.fleet)
	s.mux.HandleFunc("GET /fleet/{tenant}/{device}", s.device)
	s.mux.HandleFunc("GET /models", s.models)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			s.fail(w, r, http.StatusMethodNotAllowed, errors.New("the ui is read-only"))
			return
		}
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("no page %s", r.URL.Path))
	})
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "SAMEORIGIN")
	s.mux.ServeHTTP(w, r)
}

// Serve serves h on ln until ctx is done, then shuts down gracefully
// (in-flight requests get a few seconds).
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("ui: shut down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// page is what every template gets.
type page struct {
	Title string
	Nav   string
	Data  any
}

func (s *Server) render(w http.ResponseWriter, status int, name, title string, data any) {
	t := s.pages[name]
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'self'")
	nav := name
	switch name {
	case "compare", "run":
		nav = "runs"
	case "device":
		nav = "fleet"
	}
	w.WriteHeader(status)
	if err := t.Execute(w, page{Title: title, Nav: nav, Data: data}); err != nil {
		s.opts.Log.Warn("ui: render", "page", name, "error", err.Error())
	}
}

type errorPage struct {
	Status  int
	Message string
}

func (s *Server) fail(w http.ResponseWriter, _ *http.Request, status int, err error) {
	s.render(w, status, "error", http.StatusText(status), errorPage{Status: status, Message: err.Error()})
}
