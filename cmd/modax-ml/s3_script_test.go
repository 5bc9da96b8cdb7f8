package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/modax/modax-ml/internal/testutil"
)

// cmdS3Server: s3server gofakes3|s3rver BUCKET... starts an S3-compatible
// server for the rest of the script (the in-process gofakes3, or the npm
// s3rver in its own process) and points the script's AWS environment at it
// (AWS_ENDPOINT_URL, path style, its credentials); $S3ENDPOINT is its URL.
func cmdS3Server(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: s3server gofakes3|s3rver BUCKET...")
	}
	var srv *testutil.S3Server
	var err error
	switch args[0] {
	case "gofakes3":
		srv, err = testutil.StartFakeS3(args[1:]...)
	case "s3rver":
		bin := testutil.S3rverBin(ts.Getenv("REPO"))
		if bin == "" {
			ts.Fatalf("s3rver is not installed (tools/interop); guard the script with [s3rver]")
		}
		srv, err = testutil.StartS3rver(bin, ts.MkAbs(".s3rver"), args[1:]...)
	default:
		ts.Fatalf("s3server: unknown server %q", args[0])
	}
	ts.Check(err)
	ts.Defer(srv.Stop)
	for k, v := range srv.Env {
		ts.Setenv(k, v)
	}
	ts.Setenv("S3ENDPOINT", srv.Endpoint)
}

// cmdS3Put: s3put FILE BUCKET KEY uploads a file of the script's directory.
func cmdS3Put(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: s3put FILE BUCKET KEY")
	}
	data, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	_, err = s3Client(ts).PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(args[1]), Key: aws.String(args[2]), Body: bytes.NewReader(data)})
	ts.Check(err)
}

// s3Client is an S3 client for the script's S3 server.
func s3Client(ts *testscript.TestScript) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(ts.Getenv("AWS_ENDPOINT_URL")),
		UsePathStyle: true,
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(ts.Getenv("AWS_ACCESS_KEY_ID"), ts.Getenv("AWS_SECRET_ACCESS_KEY"), ""),
	})
}

// cmdS3Ls: s3ls BUCKET prints every key of the bucket (hidden temporaries
// too), one per line with its size, to stdout.
func cmdS3Ls(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: s3ls BUCKET")
	}
	c := s3Client(ts)
	var lines []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(args[0])})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		ts.Check(err)
		for _, o := range page.Contents {
			lines = append(lines, fmt.Sprintf("%s %d", aws.ToString(o.Key), aws.ToInt64(o.Size)))
		}
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Fprintln(ts.Stdout(), l)
	}
}
