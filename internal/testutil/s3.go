package testutil

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// S3Env is the AWS environment that points the SDK at an S3-compatible
// server at endpoint: path-style addressing and the server's credentials,
// and nothing from the user's ~/.aws.
func S3Env(endpoint, key, secret string) map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL":            endpoint,
		"AWS_S3_FORCE_PATH_STYLE":     "true",
		"AWS_ACCESS_KEY_ID":           key,
		"AWS_SECRET_ACCESS_KEY":       secret,
		"AWS_REGION":                  "us-east-1",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	}
}

// S3Server is a running S3-compatible test server.
type S3Server struct {
	Endpoint string
	Env      map[string]string // S3Env for it
	stop     func()
}

// Stop stops the server.
func (s *S3Server) Stop() { s.stop() }

// StartFakeS3 starts an in-process S3 server (github.com/johannesboyne/gofakes3,
// in memory) with the given buckets.
func StartFakeS3(buckets ...string) (*S3Server, error) {
	backend := s3mem.New()
	for _, b := range buckets {
		if err := backend.CreateBucket(b); err != nil {
			return nil, err
		}
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	return &S3Server{Endpoint: srv.URL, Env: S3Env(srv.URL, "modax-test", "modax-test-secret"), stop: srv.Close}, nil
}

// S3rverBin is the npm s3rver of tools/interop ("" when it is not installed).
func S3rverBin(root string) string {
	bin := filepath.Join(root, "tools", "interop", "node_modules", ".bin", "s3rver")
	if _, err := os.Stat(bin); err != nil {
		return ""
	}
	if _, err := exec.LookPath("node"); err != nil {
		return ""
	}
	return bin
}

// StartS3rver starts the npm s3rver (an S3 server in its own process: real
// HTTP, multipart and range requests) on a free port over dir with the given
// buckets.
func StartS3rver(bin, dir string, buckets ...string) (*S3Server, error) {
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	args := []string{"--address", "127.0.0.1", "--port", fmt.Sprint(port), "--directory", dir, "--silent"}
	for _, b := range buckets {
		args = append(args, "--configure-bucket", b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("start s3rver: %w", err)
	}
	stop := func() { cancel(); _ = cmd.Wait() }
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(30 * time.Second); ; {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("s3rver did not come up on %s: %w\n%s", endpoint, err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// s3rver's fixed credentials.
	return &S3Server{Endpoint: endpoint, Env: S3Env(endpoint, "S3RVER", "S3RVER"), stop: stop}, nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func use(t testing.TB, s *S3Server, err error) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	for k, v := range s.Env {
		t.Setenv(k, v)
	}
	return s.Endpoint
}

// FakeS3 starts StartFakeS3 for t, points this process's AWS environment at
// it and returns its endpoint.
func FakeS3(t testing.TB, buckets ...string) string {
	t.Helper()
	s, err := StartFakeS3(buckets...)
	return use(t, s, err)
}

// S3rver starts StartS3rver for t over a fresh directory, points this
// process's AWS environment at it and returns its endpoint. It skips (fails
// in CI) when s3rver is not installed (scripts/testenv.sh installs
// tools/interop).
func S3rver(t testing.TB, buckets ...string) string {
	t.Helper()
	bin := S3rverBin(RepoRoot(t))
	Require(t, bin != "", "npm s3rver and node are needed (scripts/testenv.sh installs tools/interop: `cd tools/interop && npm ci`)")
	s, err := StartS3rver(bin, t.TempDir(), buckets...)
	return use(t, s, err)
}
