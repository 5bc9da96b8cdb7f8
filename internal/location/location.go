// Package location is the one place that resolves a stage's file argument:
// a local path (or file:// URL), or an object in a bucket (s3://bucket/key).
// Objects are read with ranged GETs (Object is an io.ReaderAt safe for the
// concurrent column reads of a Parquet reader) and written as streamed
// multipart uploads that appear under their key only when complete.
//
// It goes through gocloud.dev/blob rather than one vendor's SDK: one URL form
// for every store (s3://bucket/key?endpoint=…&use_path_style=true for an
// S3-compatible server), credentials from the standard AWS chain, and the
// same Bucket API for the other clouds when their drivers are linked in.
package location

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"

	"github.com/modax/modax-ml/internal/exitcode"
)

// IsRemote reports whether loc names an object in a bucket (a URL whose
// scheme is not file://).
func IsRemote(loc string) bool {
	i := strings.Index(loc, "://")
	if i <= 0 {
		return false
	}
	return !strings.EqualFold(loc[:i], "file") && !strings.ContainsAny(loc[:i], `/\.`)
}

// Local resolves loc to a local path: loc itself, or a file:// URL's path.
// A remote location is an error.
func Local(loc string) (string, error) {
	if loc == "" {
		return "", errors.New("empty location")
	}
	if IsRemote(loc) {
		return "", fmt.Errorf("%w: %s: a bucket location is not supported here (only local paths)", exitcode.ErrUsage, Redact(loc))
	}
	if i := strings.Index(loc, "://"); i > 0 {
		u, err := url.Parse(loc)
		if err != nil {
			return "", fmt.Errorf("%w: location %q: %w", exitcode.ErrUsage, loc, err)
		}
		return u.Path, nil
	}
	return loc, nil
}

// Ref is a parsed remote location: the bucket's URL (scheme, bucket and
// query) and the object key.
type Ref struct {
	Bucket string // e.g. s3://fleet?endpoint=http://127.0.0.1:9000&use_path_style=true
	Key    string // e.g. runs/nightly/windows.parquet
	loc    string
}

// String is the location as given, with any credentials removed.
func (r Ref) String() string { return Redact(r.loc) }

// Parse splits a remote location into bucket URL and key.
func Parse(loc string) (Ref, error) {
	u, err := url.Parse(loc)
	if err != nil {
		return Ref{}, fmt.Errorf("%w: location %q: %w", exitcode.ErrUsage, Redact(loc), err)
	}
	if u.User != nil {
		return Ref{}, fmt.Errorf("%w: location %s: credentials do not belong in the URL; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or an AWS profile", exitcode.ErrUsage, Redact(loc))
	}
	switch u.Scheme {
	case "s3":
	case "gs", "azblob":
		return Ref{}, fmt.Errorf("%w: location %s: %s:// is not built into this binary (s3:// and S3-compatible stores are; gocloud.dev has drivers for the others)", exitcode.ErrUsage, Redact(loc), u.Scheme)
	default:
		return Ref{}, fmt.Errorf("%w: location %s: scheme %q is not supported (local paths, file:// and s3://)", exitcode.ErrUsage, Redact(loc), u.Scheme)
	}
	if u.Host == "" {
		return Ref{}, fmt.Errorf("%w: location %s: no bucket name (want s3://bucket/key)", exitcode.ErrUsage, Redact(loc))
	}
	key := strings.TrimPrefix(u.Path, "/")
	q := u.Query()
	if q.Get("use_path_style") == "" && q.Get("s3ForcePathStyle") == "" && envTrue("AWS_S3_FORCE_PATH_STYLE") {
		q.Set("use_path_style", "true")
	}
	if q.Get("region") == "" && os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" &&
		(q.Get("endpoint") != "" || os.Getenv("AWS_ENDPOINT_URL") != "" || os.Getenv("AWS_ENDPOINT_URL_S3") != "") {
		// An S3-compatible server on a private address ignores the region,
		// but the SDK refuses to sign without one.
		q.Set("region", "us-east-1")
	}
	for _, k := range []string{"request_checksum_calculation", "response_checksum_validation"} {
		if q.Get(k) == "" {
			// S3-compatible servers (MinIO before 2025, s3rver, Ceph) do not
			// all send the SDK's newer CRC checksums; compute and check them
			// only where the operation requires it, as SDKs did before 2025.
			q.Set(k, "when_required")
		}
	}
	b := url.URL{Scheme: u.Scheme, Host: u.Host, RawQuery: q.Encode()}
	return Ref{Bucket: b.String(), Key: key, loc: loc}, nil
}

func envTrue(name string) bool {
	v := strings.ToLower(os.Getenv(name))
	return v == "1" || v == "true" || v == "yes"
}

// Redact returns loc without user info (a URL's user:password@), for logs,
// errors and records.
func Redact(loc string) string {
	u, err := url.Parse(loc)
	if err != nil || u.User == nil {
		return loc
	}
	u.User = nil
	return u.String()
}

var (
	bucketsMu sync.Mutex
	buckets   = map[string]*blob.Bucket{}
)

// bucket opens (once per process and AWS environment) the bucket of ref.
func bucket(ctx context.Context, ref Ref) (*blob.Bucket, error) {
	bucketsMu.Lock()
	defer bucketsMu.Unlock()
	id := ref.Bucket
	for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_REGION"} {
		id += "\x00" + os.Getenv(k)
	}
	if b, ok := buckets[id]; ok {
		return b, nil
	}
	u, err := url.Parse(ref.Bucket)
	if err != nil {
		return nil, err
	}
	b, err := (&s3blob.URLOpener{}).OpenBucketURL(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("%w: location %s: %w", exitcode.ErrUsage, ref, err)
	}
	buckets[id] = b
	return b, nil
}

// wrap names the location in a store error; a missing object reads like a
// missing file (fs.ErrNotExist).
func wrap(op string, ref Ref, err error) error {
	if err == nil {
		return nil
	}
	if gcerrors.Code(err) == gcerrors.NotFound {
		return &os.PathError{Op: op, Path: ref.String(), Err: os.ErrNotExist}
	}
	return fmt.Errorf("%s %s: %w", op, ref, err)
}

// object parses a remote location naming one object (a key that is not a
// "directory") and opens its bucket.
func object(ctx context.Context, op, loc string) (Ref, *blob.Bucket, error) {
	ref, err := Parse(loc)
	if err != nil {
		return Ref{}, nil, err
	}
	if ref.Key == "" || strings.HasSuffix(ref.Key, "/") {
		return Ref{}, nil, fmt.Errorf("%s %s: no object key (want s3://bucket/key)", op, ref)
	}
	b, err := bucket(ctx, ref)
	return ref, b, err
}

// Object is an open object: an io.ReaderAt over ranged GETs (safe for
// concurrent use), and an io.ReadSeeker for sequential readers (not
// concurrent).
type Object struct {
	ref  Ref
	b    *blob.Bucket
	ctx  context.Context
	size int64
	off  int64
}

// Open opens the object at a remote location.
func Open(ctx context.Context, loc string) (*Object, error) {
	ref, b, err := object(ctx, "open", loc)
	if err != nil {
		return nil, err
	}
	a, err := b.Attributes(ctx, ref.Key)
	if err != nil {
		return nil, wrap("open", ref, err)
	}
	return &Object{ref: ref, b: b, ctx: ctx, size: a.Size}, nil
}

// Size is the object's size in bytes.
func (o *Object) Size() int64 { return o.size }

// ReadAt reads len(p) bytes at off with one ranged GET.
func (o *Object) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset", o.ref)
	}
	if off >= o.size {
		return 0, io.EOF
	}
	n := int64(len(p))
	if off+n > o.size {
		n = o.size - off
	}
	r, err := o.b.NewRangeReader(o.ctx, o.ref.Key, off, n, nil)
	if err != nil {
		return 0, wrap("read", o.ref, err)
	}
	defer r.Close()
	got, err := io.ReadFull(r, p[:n])
	if err != nil {
		return got, fmt.Errorf("read %s at %d: %w", o.ref, off, err)
	}
	if got < len(p) {
		return got, io.EOF
	}
	return got, nil
}

// Read reads from the current offset.
func (o *Object) Read(p []byte) (int, error) {
	if o.off >= o.size {
		return 0, io.EOF
	}
	n, err := o.ReadAt(p, o.off)
	o.off += int64(n)
	if errors.Is(err, io.EOF) && n > 0 {
		err = nil
	}
	return n, err
}

// Seek sets the offset for Read.
func (o *Object) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += o.off
	case io.SeekEnd:
		offset += o.size
	default:
		return 0, fmt.Errorf("seek %s: bad whence %d", o.ref, whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("seek %s: negative offset", o.ref)
	}
	o.off = offset
	return offset, nil
}

// WriteTo streams the object from the current offset to w with one GET (what
// io.Copy uses: hashing an input reads it in one request, not one per
// 32 KiB buffer).
func (o *Object) WriteTo(w io.Writer) (int64, error) {
	if o.off >= o.size {
		return 0, nil
	}
	r, err := o.b.NewRangeReader(o.ctx, o.ref.Key, o.off, -1, nil)
	if err != nil {
		return 0, wrap("read", o.ref, err)
	}
	defer r.Close()
	n, err := io.Copy(w, r)
	o.off += n
	if err != nil {
		return n, fmt.Errorf("read %s: %w", o.ref, err)
	}
	return n, nil
}

// Close releases nothing (every read is its own request); it exists so an
// Object is an io.Closer like a file.
func (o *Object) Close() error { return nil }

// ReadFile reads a whole file or object.
func ReadFile(ctx context.Context, loc string) ([]byte, error) {
	if !IsRemote(loc) {
		p, err := Local(loc)
		if err != nil {
			return nil, err
		}
		return os.ReadFile(p)
	}
	ref, b, err := object(ctx, "read", loc)
	if err != nil {
		return nil, err
	}
	data, err := b.ReadAll(ctx, ref.Key)
	return data, wrap("read", ref, err)
}

// Exists reports whether a file or object exists at loc.
func Exists(ctx context.Context, loc string) (bool, error) {
	if !IsRemote(loc) {
		p, err := Local(loc)
		if err != nil {
			return false, err
		}
		_, err = os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return err == nil, err
	}
	ref, b, err := object(ctx, "stat", loc)
	if err != nil {
		return false, err
	}
	ok, err := b.Exists(ctx, ref.Key)
	return ok, wrap("stat", ref, err)
}

// Writer streams an object to its key as a multipart upload; the object
// appears (or replaces the previous one) only when Commit completes it.
// Abort, or a process that dies, leaves nothing under the key; an
// interrupted multipart upload's parts are invisible and are removed by the
// bucket's AbortIncompleteMultipartUpload lifecycle rule.
type Writer struct {
	ref    Ref
	b      *blob.Bucket
	w      *blob.Writer
	cancel context.CancelFunc
	done   bool
}

// Create starts writing the object at a remote location.
func Create(ctx context.Context, loc string) (*Writer, error) {
	ref, b, err := object(ctx, "create", loc)
	if err != nil {
		return nil, err
	}
	return createKey(ctx, ref, b, ref.Key)
}

// createKey starts the upload of key in ref's bucket b.
func createKey(ctx context.Context, ref Ref, b *blob.Bucket, key string) (*Writer, error) {
	ctx, cancel := context.WithCancel(ctx)
	w, err := b.NewWriter(ctx, key, &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		cancel()
		return nil, wrap("create", ref, err)
	}
	return &Writer{ref: Ref{Bucket: ref.Bucket, Key: key, loc: ref.loc}, b: b, w: w, cancel: cancel}, nil
}

// Write appends to the upload.
func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil {
		return n, fmt.Errorf("write %s: %w", w.ref, err)
	}
	return n, nil
}

// Commit completes the upload.
func (w *Writer) Commit() error {
	if w.done {
		return fmt.Errorf("commit %s: already finished", w.ref)
	}
	w.done = true
	defer w.cancel()
	if err := w.w.Close(); err != nil {
		return fmt.Errorf("write %s: %w", w.ref, err)
	}
	return nil
}

// Abort cancels the upload: nothing appears under the key. A no-op after
// Commit.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.cancel() // a canceled context makes Close abort the upload
	_ = w.w.Close()
}

// Staged is a remote object written under a temporary key beside its
// destination, to be moved into place by Promote (a server-side copy, then
// the temporary object is deleted): how the files of a write set are staged.
type Staged struct {
	*Writer
	dest Ref
}

// TempKey is the key of a staged object: hidden beside the destination, and
// named after the write that made it, so what an interrupted run left behind
// can be listed by its ID.
func TempKey(key, id string) string {
	dir, base := path.Split(key)
	return dir + "." + base + ".tmp-" + id
}

// CreateStaged starts writing loc's object under TempKey(key, id).
func CreateStaged(ctx context.Context, loc, id string) (*Staged, error) {
	ref, b, err := object(ctx, "create", loc)
	if err != nil {
		return nil, err
	}
	w, err := createKey(ctx, ref, b, TempKey(ref.Key, id))
	if err != nil {
		return nil, err
	}
	return &Staged{Writer: w, dest: ref}, nil
}

// Promote copies the staged object over its destination. The temporary
// object stays until Discard.
func (s *Staged) Promote(ctx context.Context) error {
	if err := s.copyKey(ctx, s.dest.Key, s.ref.Key); err != nil {
		return fmt.Errorf("write %s: %w", s.dest, err)
	}
	return nil
}

// copyKey copies src to dst in the bucket with one server-side CopyObject.
// It calls the S3 client itself rather than Bucket.Copy, which query-escapes
// the whole copy source ("bucket%2Fkey"): AWS decodes that, but some
// S3-compatible servers (s3rver) split the source on a literal "/" only.
func (s *Staged) copyKey(ctx context.Context, dst, src string) error {
	var c *s3.Client
	if !s.b.As(&c) {
		return s.b.Copy(ctx, dst, src, nil)
	}
	u, _ := url.Parse(s.dest.Bucket)
	segs := strings.Split(src, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	_, err := c.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket:     aws.String(u.Host),
		CopySource: aws.String(u.Host + "/" + strings.Join(segs, "/")),
		Key:        aws.String(dst),
	})
	return err
}

// Discard deletes the temporary object (after Promote, or instead of it).
func (s *Staged) Discard(ctx context.Context) {
	s.Abort()
	_ = s.b.Delete(ctx, s.ref.Key)
}

// Backup copies the destination, when it exists, to a hidden key named after
// id; it returns that key ("" when there was nothing to keep).
func (s *Staged) Backup(ctx context.Context, id string) (string, error) {
	ok, err := s.b.Exists(ctx, s.dest.Key)
	if err != nil || !ok {
		return "", wrap("stat", s.dest, err)
	}
	dir, base := path.Split(s.dest.Key)
	key := dir + "." + base + ".prev-" + id
	if err := s.copyKey(ctx, key, s.dest.Key); err != nil {
		return "", fmt.Errorf("keep the previous %s: %w", s.dest, err)
	}
	return key, nil
}

// Restore puts a backup made by Backup back over the destination ("" removes
// the destination: it did not exist before) and deletes the backup.
func (s *Staged) Restore(ctx context.Context, backup string) error {
	if backup == "" {
		return s.b.Delete(ctx, s.dest.Key)
	}
	if err := s.copyKey(ctx, s.dest.Key, backup); err != nil {
		return err
	}
	return s.b.Delete(ctx, backup)
}

// DeleteKey deletes a key of the destination's bucket (a backup), ignoring a
// missing one.
func (s *Staged) DeleteKey(ctx context.Context, key string) {
	if key != "" {
		_ = s.b.Delete(ctx, key)
	}
}

// Join joins elements to a location: a path for a local one, a key for a
// remote one (keeping the URL's query).
func Join(loc string, elem ...string) string {
	if !IsRemote(loc) {
		return filepath.Join(append([]string{loc}, elem...)...)
	}
	u, err := url.Parse(loc)
	if err != nil {
		return loc
	}
	u.Path = path.Join(append([]string{"/", u.Path}, elem...)...)
	return u.String()
}

// Dir is the location's directory (a key prefix for a remote one).
func Dir(loc string) string {
	if !IsRemote(loc) {
		return filepath.Dir(loc)
	}
	u, err := url.Parse(loc)
	if err != nil {
		return loc
	}
	u.Path = path.Dir(u.Path)
	return u.String()
}

// Base is the location's last element.
func Base(loc string) string {
	if !IsRemote(loc) {
		return filepath.Base(loc)
	}
	u, err := url.Parse(loc)
	if err != nil {
		return loc
	}
	return path.Base(u.Path)
}

// Same reports whether two remote locations name the same object (the same
// bucket and key, whatever the query).
func Same(a, b string) bool {
	ra, ea := Parse(a)
	rb, eb := Parse(b)
	if ea != nil || eb != nil {
		return a == b
	}
	ua, _ := url.Parse(ra.Bucket)
	ub, _ := url.Parse(rb.Bucket)
	return ua.Host == ub.Host && path.Clean("/"+ra.Key) == path.Clean("/"+rb.Key)
}

// Rel is target relative to the directory base (as filepath.Rel), for two
// local paths or two objects of one bucket.
func Rel(base, target string) (string, error) {
	if !IsRemote(base) && !IsRemote(target) {
		return filepath.Rel(base, target)
	}
	ub, err1 := url.Parse(base)
	ut, err2 := url.Parse(target)
	if err1 != nil || err2 != nil || !IsRemote(base) || !IsRemote(target) || ub.Scheme != ut.Scheme || ub.Host != ut.Host {
		return "", fmt.Errorf("%s is not relative to %s", Redact(target), Redact(base))
	}
	return filepath.Rel(path.Clean("/"+ub.Path), path.Clean("/"+ut.Path))
}

// Remove removes a file or object; a missing one is not an error.
func Remove(ctx context.Context, loc string) error {
	if !IsRemote(loc) {
		p, err := Local(loc)
		if err != nil {
			return err
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	ref, b, err := object(ctx, "remove", loc)
	if err != nil {
		return err
	}
	if err := b.Delete(ctx, ref.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return wrap("remove", ref, err)
	}
	return nil
}

// Ext is the extension of the location's last element (without a URL's
// query).
func Ext(loc string) string { return filepath.Ext(Base(loc)) }

// OpenStream opens a file or object for one sequential read (a CSV or text
// source): a local file, or one streaming GET of the object.
func OpenStream(ctx context.Context, loc string) (io.ReadCloser, error) {
	if !IsRemote(loc) {
		p, err := Local(loc)
		if err != nil {
			return nil, err
		}
		return os.Open(p)
	}
	ref, b, err := object(ctx, "open", loc)
	if err != nil {
		return nil, err
	}
	r, err := b.NewReader(ctx, ref.Key, nil)
	if err != nil {
		return nil, wrap("open", ref, err)
	}
	return r, nil
}
