package location_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"net/url"

	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/location"
	"github.com/modax/modax-ml/internal/testutil"
)

func TestIsRemoteAndLocal(t *testing.T) {
	for loc, want := range map[string]bool{
		"s3://b/k": true, "gs://b/k": true, "file:///tmp/x": false, "x.parquet": false,
		"/tmp/a://b": false, "./s3://x": false, "": false,
	} {
		if got := location.IsRemote(loc); got != want {
			t.Errorf("IsRemote(%q) = %v, want %v", loc, got, want)
		}
	}
	if p, err := location.Local("file:///tmp/x.parquet"); err != nil || p != "/tmp/x.parquet" {
		t.Errorf("Local(file://) = %q, %v", p, err)
	}
	if _, err := location.Local("s3://b/k"); !errors.Is(err, exitcode.ErrUsage) {
		t.Errorf("Local(s3://) = %v, want a usage error", err)
	}
}

func TestParse(t *testing.T) {
	t.Setenv("AWS_S3_FORCE_PATH_STYLE", "true")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	r, err := location.Parse("s3://fleet/runs/a/windows.parquet?endpoint=http://127.0.0.1:9000")
	if err != nil {
		t.Fatal(err)
	}
	if r.Key != "runs/a/windows.parquet" {
		t.Errorf("key %q", r.Key)
	}
	u, _ := url.Parse(r.Bucket)
	q := u.Query()
	if u.Host != "fleet" || q.Get("endpoint") != "http://127.0.0.1:9000" || q.Get("use_path_style") != "true" || q.Get("region") != "us-east-1" {
		t.Errorf("bucket URL %s", r.Bucket)
	}
	for _, bad := range []struct{ loc, want string }{
		{"s3://AKIA:secret@fleet/k", "credentials do not belong in the URL"},
		{"gs://b/k", "not built into this binary"},
		{"ftp://b/k", `scheme "ftp" is not supported`},
		{"s3:///k", "no bucket name"},
	} {
		_, err := location.Parse(bad.loc)
		if !errors.Is(err, exitcode.ErrUsage) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Parse(%q) = %v, want a usage error with %q", bad.loc, err, bad.want)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("Parse(%q): the error shows the secret: %v", bad.loc, err)
		}
	}
}

func TestJoinDirBase(t *testing.T) {
	loc := "s3://b/runs/x/model.safetensors?endpoint=http://h:1"
	if got := location.Dir(loc); got != "s3://b/runs/x?endpoint=http:%2F%2Fh:1" && got != "s3://b/runs/x?endpoint=http://h:1" {
		t.Errorf("Dir = %q", got)
	}
	if got := location.Base(loc); got != "model.safetensors" {
		t.Errorf("Base = %q", got)
	}
	if got := location.Join("s3://b/runs", "x", "plots"); got != "s3://b/runs/x/plots" {
		t.Errorf("Join = %q", got)
	}
	if got := location.Join("runs", "x"); got != filepath.Join("runs", "x") {
		t.Errorf("Join local = %q", got)
	}
	if !location.Same("s3://b/a/../k?region=x", "s3://b/k") || location.Same("s3://b/k", "s3://c/k") {
		t.Error("Same")
	}
}

// keys lists every object of bucket (hidden temporaries too).
func keys(t *testing.T, bucket string) []string {
	t.Helper()
	u, _ := url.Parse("s3://" + bucket)
	b, err := (&s3blob.URLOpener{}).OpenBucketURL(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var out []string
	it := b.List(&blob.ListOptions{})
	for {
		o, err := it.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o.Key)
	}
	return out
}

// servers runs f against the in-process gofakes3 server and the
// out-of-process npm s3rver.
func servers(t *testing.T, f func(t *testing.T, bucket string)) {
	t.Helper()
	t.Run("gofakes3", func(t *testing.T) {
		testutil.FakeS3(t, "fleet")
		f(t, "fleet")
	})
	t.Run("s3rver", func(t *testing.T) {
		testutil.S3rver(t, "fleet")
		f(t, "fleet")
	})
}

func TestObjects(t *testing.T) {
	servers(t, func(t *testing.T, bucket string) { //nolint:thelper // a subtest body run by servers
		ctx := context.Background()
		loc := "s3://" + bucket + "/runs/a/data.bin"
		// 12 MiB: more than the S3 upload manager's 8 MiB part, so the write
		// is a real multipart upload.
		data := make([]byte, 12<<20+123)
		for i := range data {
			data[i] = byte(i*7 + i>>11)
		}
		f, err := atomicfile.Create(loc)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(data); off += 1 << 20 {
			end := min(off+1<<20, len(data))
			if _, err := f.Write(data[off:end]); err != nil {
				t.Fatal(err)
			}
		}
		if ok, _ := location.Exists(ctx, loc); ok {
			t.Fatal("the object is visible before Commit")
		}
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		got, err := location.ReadFile(ctx, loc)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("ReadFile: %d bytes, %v", len(got), err)
		}
		o, err := location.Open(ctx, loc)
		if err != nil {
			t.Fatal(err)
		}
		if o.Size() != int64(len(data)) {
			t.Fatalf("size %d", o.Size())
		}
		// Concurrent ranged reads, as a Parquet reader does for its columns.
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				off := int64(g) * int64(len(data)) / 17
				p := make([]byte, 100_000)
				n, err := o.ReadAt(p, off)
				if err != nil || !bytes.Equal(p[:n], data[off:off+int64(n)]) || n != len(p) {
					errs <- errors.New("ReadAt mismatch")
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		// io.Copy streams it (Object.WriteTo) from the offset Seek set.
		if _, err := o.Seek(5, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if n, err := io.Copy(&buf, o); err != nil || n != int64(len(data)-5) || !bytes.Equal(buf.Bytes(), data[5:]) {
			t.Fatalf("io.Copy: %d bytes, %v", n, err)
		}
		tail := make([]byte, 1000)
		n, err := o.ReadAt(tail, int64(len(data)-10))
		if n != 10 || !errors.Is(err, io.EOF) || !bytes.Equal(tail[:10], data[len(data)-10:]) {
			t.Fatalf("ReadAt past the end: %d, %v", n, err)
		}

		// Abort: nothing under the key, no temporary object.
		f, err = atomicfile.Create("s3://" + bucket + "/runs/a/aborted.bin")
		if err != nil {
			t.Fatal(err)
		}
		f.Write(data[:1<<20])
		f.Abort()
		if ok, _ := location.Exists(ctx, "s3://"+bucket+"/runs/a/aborted.bin"); ok {
			t.Fatal("an aborted upload is visible")
		}

		// A missing object reads like a missing file.
		if _, err := location.Open(ctx, "s3://"+bucket+"/nope"); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "s3://"+bucket+"/nope") {
			t.Fatalf("missing object: %v", err)
		}
		if got := keys(t, bucket); strings.Join(got, ",") != "runs/a/data.bin" {
			t.Fatalf("objects left: %v", got)
		}
	})
}

func TestSetCommit(t *testing.T) {
	servers(t, func(t *testing.T, bucket string) { //nolint:thelper // a subtest body run by servers
		ctx := context.Background()
		a, b := "s3://"+bucket+"/out/a.json", "s3://"+bucket+"/out/b.json"
		write := func(va, vb string) error {
			s := atomicfile.NewSet()
			defer s.Abort()
			if err := s.WriteFile(a, []byte(va)); err != nil {
				return err
			}
			if err := s.WriteFile(b, []byte(vb)); err != nil {
				return err
			}
			if got, _ := location.ReadFile(ctx, a); va == "2" && string(got) != "1" {
				t.Errorf("before the set's Commit %s = %q, want the previous 1", a, got)
			}
			return s.Commit()
		}
		if err := write("1", "1"); err != nil {
			t.Fatal(err)
		}
		// An aborted set leaves the previous pair and no temporaries.
		s := atomicfile.NewSet()
		if err := s.WriteFile(a, []byte("x")); err != nil {
			t.Fatal(err)
		}
		s.Abort()
		if err := write("2", "2"); err != nil {
			t.Fatal(err)
		}
		for _, loc := range []string{a, b} {
			got, err := location.ReadFile(ctx, loc)
			if err != nil || string(got) != "2" {
				t.Fatalf("%s = %q, %v", loc, got, err)
			}
		}
		if got := keys(t, bucket); strings.Join(got, ",") != "out/a.json,out/b.json" {
			t.Fatalf("objects left: %v", got)
		}
		// Two files of a set with the same key are refused.
		s = atomicfile.NewSet()
		defer s.Abort()
		if _, err := s.Create(a); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Create("s3://" + bucket + "/out/./a.json"); err == nil || !strings.Contains(err.Error(), "written twice") {
			t.Fatalf("same key twice: %v", err)
		}
	})
}

func TestCheckOutputsRemote(t *testing.T) {
	in := []atomicfile.Path{atomicfile.P("--windows", "s3://b/w.parquet")}
	err := atomicfile.CheckOutputs(in, []atomicfile.Path{atomicfile.P("--out", "s3://b/./w.parquet?region=eu-west-1")})
	if !errors.Is(err, exitcode.ErrUsage) {
		t.Fatalf("output over input in a bucket: %v", err)
	}
	if err := atomicfile.CheckOutputs(in, []atomicfile.Path{atomicfile.P("--out", "w.parquet")}); err != nil {
		t.Fatal(err)
	}
}
