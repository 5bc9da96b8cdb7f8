package tracking

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestSplitBatchProperties splits random batches under small limits and
// checks every chunk is within them and the chunks carry everything in order.
func TestSplitBatchProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		lim := BatchLimits{Metrics: 1 + rng.IntN(20), Params: 1 + rng.IntN(5), Tags: 1 + rng.IntN(5), Total: 1 + rng.IntN(25), Bytes: 300 + rng.IntN(2000)}
		var ms []WireMetric
		var ps, ts []KV
		for i := range rng.IntN(60) {
			ms = append(ms, WireMetric{Key: fmt.Sprintf("m%d", i), Value: Float(rng.NormFloat64()), Timestamp: 1740830400000 + int64(i), Step: int64(i)})
		}
		for i := range rng.IntN(15) {
			ps = append(ps, KV{Key: fmt.Sprintf("p%d", i), Value: strings.Repeat("v", rng.IntN(80))})
		}
		for i := range rng.IntN(15) {
			ts = append(ts, KV{Key: fmt.Sprintf("t%d", i), Value: strings.Repeat("<", rng.IntN(30))})
		}
		chunks, err := SplitBatch("run-1", ms, ps, ts, lim)
		if err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		var gotM []WireMetric
		var gotP, gotT []KV
		for i, c := range chunks {
			if len(c.Body) > lim.Bytes {
				t.Fatalf("trial %d chunk %d: %d bytes > %d", trial, i, len(c.Body), lim.Bytes)
			}
			var body struct {
				RunID   string       `json:"run_id"`
				Metrics []WireMetric `json:"metrics"`
				Params  []KV         `json:"params"`
				Tags    []KV         `json:"tags"`
			}
			if err := json.Unmarshal(c.Body, &body); err != nil {
				t.Fatalf("trial %d chunk %d: %v\n%s", trial, i, err, c.Body)
			}
			if body.RunID != "run-1" || len(body.Metrics) != c.Metrics || len(body.Params) != c.Params || len(body.Tags) != c.Tags {
				t.Fatalf("trial %d chunk %d: counts %+v do not match the body", trial, i, c.BatchCounts)
			}
			if c.Metrics > lim.Metrics || c.Params > lim.Params || c.Tags > lim.Tags || c.Metrics+c.Params+c.Tags > lim.Total || c.Metrics+c.Params+c.Tags == 0 {
				t.Fatalf("trial %d chunk %d: %+v over %+v", trial, i, c.BatchCounts, lim)
			}
			gotM, gotP, gotT = append(gotM, body.Metrics...), append(gotP, body.Params...), append(gotT, body.Tags...)
		}
		if fmt.Sprint(gotM) != fmt.Sprint(ms) || fmt.Sprint(gotP) != fmt.Sprint(ps) || fmt.Sprint(gotT) != fmt.Sprint(ts) {
			t.Fatalf("trial %d: the chunks do not carry the input in order", trial)
		}
	}
}

func TestAppendMetricMatchesJSON(t *testing.T) {
	for _, m := range []WireMetric{{Key: "a<b", Value: 0.1, Timestamp: 1740830400000, Step: -3}, {Key: "x", Value: Float(math.NaN())}, {Key: "é\"", Value: Float(math.Inf(-1)), Step: 1 << 40}} {
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		k, _ := json.Marshal(m.Key)
		if got := appendMetric(nil, k, m); !bytes.Equal(got, want) {
			t.Errorf("appendMetric = %s, json.Marshal = %s", got, want)
		}
	}
}

func TestSplitBatchOversizedEntry(t *testing.T) {
	_, err := SplitBatch("r", nil, []KV{{Key: "k", Value: strings.Repeat("x", 2000)}}, nil, BatchLimits{Metrics: 10, Params: 10, Tags: 10, Total: 10, Bytes: 1000})
	if err == nil {
		t.Fatal("an entry larger than a request was accepted")
	}
}

// mlflowName is MLflow's rule (validation.py) the server applies.
var mlflowName = regexp.MustCompile(`^[/\w.\- ]*$`)

func TestCleanKey(t *testing.T) {
	for in, want := range map[string]string{
		"train.epochs":     "train.epochs",
		"val/mae":          "val/mae",
		"with space-dash_": "with space-dash_",
		"a:b@c":            "a_b_c",
		"température":      "temp_rature",
		"a//b":             "a__b",
		"/abs":             "_abs",
		"./x":              "._x",
		"..":               "_.",
		"..x":              "_.x",
		".":                "_",
		"":                 "_",
		"a/./b":            "a_._b",
	} {
		if got := CleanKey(in); got != want {
			t.Errorf("CleanKey(%q) = %q, want %q", in, got, want)
		}
	}
	if got := CleanKey(strings.Repeat("k", 300)); utf8.RuneCountInString(got) != MaxKeyLength {
		t.Errorf("long key cut to %d", len(got))
	}
}

func FuzzCleanKey(f *testing.F) {
	for _, s := range []string{"a", "a//b", "../x", "", ".", "ä/ö", "a/b/../c", strings.Repeat("x/", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k := CleanKey(s)
		if !mlflowName.MatchString(k) || pathNotUnique(k) || utf8.RuneCountInString(k) > MaxKeyLength || k == "" {
			t.Fatalf("CleanKey(%q) = %q is not a valid MLflow name", s, k)
		}
		if mlflowName.MatchString(s) && !pathNotUnique(s) && s != "" && utf8.RuneCountInString(s) <= MaxKeyLength && k != s {
			t.Fatalf("CleanKey changed the valid name %q to %q", s, k)
		}
	})
}

func TestNormPath(t *testing.T) {
	// Python's posixpath.normpath.
	for in, want := range map[string]string{
		"": ".", "a": "a", "a/": "a", "a//b": "a/b", "./a": "a", "a/../b": "b", "../a": "../a",
		"/a/../..": "/", "//a": "//a", "///a": "/a", "a/b/..": "a", "..": "..",
	} {
		if got := normPath(in); got != want {
			t.Errorf("normPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkSplitBatch(b *testing.B) {
	for _, n := range []int{100, 1000, 10000, 100000} {
		ms := make([]WireMetric, n)
		for i := range ms {
			ms[i] = WireMetric{Key: "val_mae", Value: Float(float64(i) / 7), Timestamp: 1740830400000 + int64(i), Step: int64(i)}
		}
		b.Run(fmt.Sprintf("metrics=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var bytesOut int
			for b.Loop() {
				chunks, err := SplitBatch("0123456789abcdef0123456789abcdef", ms, nil, nil, Limits)
				if err != nil {
					b.Fatal(err)
				}
				bytesOut = 0
				for _, c := range chunks {
					bytesOut += len(c.Body)
				}
			}
			b.SetBytes(int64(bytesOut))
		})
	}
}

func BenchmarkFloatMarshal(b *testing.B) {
	b.ReportAllocs()
	var buf bytes.Buffer
	v := Float(0.30000000000000004)
	for b.Loop() {
		buf.Reset()
		js, _ := v.MarshalJSON()
		buf.Write(js)
	}
}
