package evaluate

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/modax/modax-ml/internal/dataset"
)

// TestErrorByBucketHand checks the per-bucket error against values worked
// out by hand.
func TestErrorByBucketHand(t *testing.T) {
	truth := []float64{5, 8, 12, 30, 60, 125, 125}
	pred := []float64{7, 4, 20, 25, 70, 120, 126}
	// d = pred − true: 2, −4 | 8 | −5 | 10 | −5, 1
	bs := ErrorByBucket(truth, pred, 125)
	want := []struct {
		label           string
		lo, hi          float64
		atCap           bool
		n               int
		mae, rmse, bias float64
	}{
		{"[0,10)", 0, 10, false, 2, 3, math.Sqrt(10), -1}, // |2|,|−4|; (4+16)/2; (2−4)/2
		{"[10,25)", 10, 25, false, 1, 8, 8, 8},
		{"[25,50)", 25, 50, false, 1, 5, 5, -5},
		{"[50,125)", 50, 125, false, 1, 10, 10, 10},
		{"=125", 125, 125, true, 2, 3, math.Sqrt(13), -2}, // (5+1)/2; (25+1)/2; (−5+1)/2
	}
	if len(bs) != len(want) {
		t.Fatalf("%d buckets, want %d: %+v", len(bs), len(want), bs)
	}
	total := 0
	for i, w := range want {
		b := bs[i]
		if b.Label != w.label || float64(b.LoHours) != w.lo || float64(b.HiHours) != w.hi || b.AtCap != w.atCap || b.N != w.n {
			t.Errorf("bucket %d = %+v, want %+v", i, b, w)
		}
		near(t, w.label+" mae", float64(b.MAE), w.mae)
		near(t, w.label+" rmse", float64(b.RMSE), w.rmse)
		near(t, w.label+" bias", float64(b.Bias), w.bias)
		total += b.N
	}
	if total != len(truth) {
		t.Errorf("counts add up to %d, want %d", total, len(truth))
	}
}

func TestBucketsForCaps(t *testing.T) {
	labels := func(bs []BucketMetrics) string {
		var out []string
		for _, b := range bs {
			out = append(out, b.Label)
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		cap  float64
		want string
	}{
		{125, "[0,10) [10,25) [25,50) [50,125) =125"},
		{100, "[0,10) [10,25) [25,50) [50,100) =100"},
		{30, "[0,10) [10,25) [25,30) =30"},
		{25, "[0,10) [10,25) =25"},
		{50, "[0,10) [10,25) [25,50) =50"},
		{math.NaN(), "[0,10) [10,25) [25,50) [50,∞)"}, // uncapped: no =cap bucket
		{0, "[0,10) [10,25) [25,50) [50,∞)"},
	} {
		if got := labels(Buckets(tc.cap)); got != tc.want {
			t.Errorf("Buckets(%g) = %s, want %s", tc.cap, got, tc.want)
		}
	}
	// Uncapped: 125 h falls in [50,∞), whose hi is null in JSON.
	bs := ErrorByBucket([]float64{125, 3}, []float64{120, 3}, math.NaN())
	if bs[3].N != 1 || bs[3].HiHours.Valid() || bs[0].N != 1 || bs[1].N != 0 || bs[1].MAE.Valid() {
		t.Errorf("uncapped buckets = %+v", bs)
	}
	b, err := json.Marshal(bs[3])
	if err != nil || !strings.Contains(string(b), `"hi_hours":null`) || !strings.Contains(string(b), `"mae":5`) {
		t.Errorf("json = %s, %v", b, err)
	}
	// Just below the cap is [50,cap); the cap up to rounding is =cap.
	bs = ErrorByBucket([]float64{99.5, 100 - 1e-12}, []float64{99.5, 100}, 100)
	if bs[3].N != 1 || bs[4].N != 1 {
		t.Errorf("near the cap: %+v", bs)
	}
}

// TestRunBuckets: metrics.json, both reports and --compare carry the error
// by bucket (the fixture's horizon is 100 h).
func TestRunBuckets(t *testing.T) {
	ps := fleet(3, 4, 40, dataset.SplitTest)
	a := writeFixture(t, ps, nil)
	oa := a.opts()
	if _, err := Run(context.Background(), testEnv(), oa); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Splits map[string]struct {
			N          int             `json:"n"`
			RULBuckets []BucketMetrics `json:"rul_buckets"`
		} `json:"splits"`
		Definitions map[string]string `json:"definitions"`
	}
	b, err := os.ReadFile(oa.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	got := doc.Splits["test"].RULBuckets
	truth, pred := labelled(ps)
	want := ErrorByBucket(truth, pred, 100)
	if len(got) != 5 || got[4].Label != "=100" || doc.Definitions["rul_buckets"] == "" {
		t.Fatalf("rul_buckets = %+v", got)
	}
	// The fleet's truth is 3·(39−w) h: w = 39..37 → 0, 3, 6, 9 h are
	// [0,10) — four windows per device, 16 over four devices.
	if got[0].N != 16 {
		t.Errorf("[0,10) n = %d, want 16", got[0].N)
	}
	for i := range want {
		if got[i].N != want[i].N {
			t.Errorf("bucket %s n = %d, want %d", want[i].Label, got[i].N, want[i].N)
		}
		near(t, want[i].Label+" rmse", float64(got[i].RMSE), float64(want[i].RMSE))
	}
	md, _ := os.ReadFile(oa.Report)
	html, _ := os.ReadFile(oa.HTML)
	for _, s := range []string{"## Error by true-RUL bucket", "| test | [0, 10) h | 16 |", "| test | = 100 h (at the cap) |"} {
		if !strings.Contains(string(md), s) {
			t.Errorf("report.md lacks %q", s)
		}
	}
	for _, s := range []string{`id="buckets"`, "<td>[25, 50) h</td><td class=\"n\">" + itoa(want[2].N) + "</td>"} {
		if !strings.Contains(string(html), s) {
			t.Errorf("report.html lacks %q", s)
		}
	}

	// --compare: a second model twice as far off is worse in every bucket.
	psb := fleet(3, 4, 40, dataset.SplitTest)
	for i := range psb {
		psb[i].RULPred = psb[i].RULTrue + 2*(psb[i].RULPred-psb[i].RULTrue)
	}
	bf := writeFixture(t, psb, nil)
	ob := bf.opts()
	ob.Compare = oa.Metrics
	rb, err := Run(context.Background(), testEnv(), ob)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, r := range rb.Compare.Rows {
		if strings.HasPrefix(r.Metric, "rul[") || strings.HasPrefix(r.Metric, "rul=") {
			seen++
			if strings.HasSuffix(r.Metric, " rmse") && r.Better != "other" {
				t.Errorf("%s better = %q, want other", r.Metric, r.Better)
			}
		}
	}
	if seen != 5*4 {
		t.Errorf("%d bucket rows in the comparison, want 20 (5 buckets × n, mae, rmse, bias)", seen)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
