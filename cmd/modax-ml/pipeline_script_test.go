package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/tracking"
)

// cmdSameOutputs is the testscript command
//
//	same-outputs DIR_A DIR_B FILE...
//
// which checks that two runs produced the same files: Parquet by schema
// (fields and the metadata that is not about the run: ids, times, lineage
// paths) and rows; checkpoints by tensors and model metadata; JSON metrics
// by their numbers within 1e-9 relative (fields naming the run, a time, a
// path or a hash are skipped, and so is the model_version column, which
// names the run that trained the model).
func cmdSameOutputs(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 {
		ts.Fatalf("usage: same-outputs DIR_A DIR_B FILE...")
	}
	a, b := ts.MkAbs(args[0]), ts.MkAbs(args[1])
	for _, name := range args[2:] {
		pa, pb := filepath.Join(a, name), filepath.Join(b, name)
		var err error
		switch {
		case strings.HasSuffix(name, ".parquet"):
			err = sameParquet(pa, pb)
		case strings.HasSuffix(name, ".safetensors"):
			err = sameCheckpoint(pa, pb)
		case strings.HasSuffix(name, ".json"):
			err = sameJSON(pa, pb, args[0]+"/", args[1]+"/")
		default:
			ts.Fatalf("same-outputs: no comparison for %s", name)
		}
		if err != nil {
			ts.Fatalf("same-outputs: %s: %v", name, err)
		}
		ts.Logf("same-outputs: %s: same", name)
	}
}

// volatileMeta are file metadata keys that name the run, not the data.
var volatileMeta = []string{dataset.MetaRunID, dataset.MetaCreatedAt, dataset.MetaInputs, dataset.MetaToolVersion, dataset.MetaWriteSet}

func readTable(path string) (arrow.Table, dataset.Meta, error) {
	r, err := dataset.Open(path, "")
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	var recs []arrow.RecordBatch
	defer func() {
		for _, rec := range recs {
			rec.Release()
		}
	}()
	for rec, err := range r.Batches(context.Background()) {
		if err != nil {
			return nil, nil, err
		}
		rec.Retain()
		recs = append(recs, rec)
	}
	return array.NewTableFromRecords(r.Schema(), recs), r.Meta(), nil
}

func sameParquet(a, b string) error {
	ta, ma, err := readTable(a)
	if err != nil {
		return err
	}
	defer ta.Release()
	tb, mb, err := readTable(b)
	if err != nil {
		return err
	}
	defer tb.Release()
	fa, fb := ta.Schema().Fields(), tb.Schema().Fields()
	if len(fa) != len(fb) {
		return fmt.Errorf("%d columns vs %d", len(fa), len(fb))
	}
	for i := range fa {
		if fa[i].Name != fb[i].Name || !arrow.TypeEqual(fa[i].Type, fb[i].Type) || fa[i].Nullable != fb[i].Nullable {
			return fmt.Errorf("column %d: %s vs %s", i, fa[i], fb[i])
		}
	}
	for k, v := range ma {
		if slices.Contains(volatileMeta, k) || mb[k] == v {
			continue
		}
		// JSON values (the lineage of a predictions file) are compared
		// without the fields that name the run.
		var x, y any
		if json.Unmarshal([]byte(v), &x) == nil && json.Unmarshal([]byte(mb[k]), &y) == nil {
			if err := sameValues(x, y); err == nil {
				continue
			}
		}
		return fmt.Errorf("metadata %s: %q vs %q", k, v, mb[k])
	}
	for k := range mb {
		if _, ok := ma[k]; !ok && !slices.Contains(volatileMeta, k) {
			return fmt.Errorf("metadata %s only in %s", k, b)
		}
	}
	if ta.NumRows() != tb.NumRows() {
		return fmt.Errorf("%d rows vs %d", ta.NumRows(), tb.NumRows())
	}
	for i := range fa {
		if fa[i].Name == "model_version" {
			continue // names the run that trained the model
		}
		if !array.ChunkedEqual(ta.Column(i).Data(), tb.Column(i).Data()) {
			return fmt.Errorf("column %s differs", fa[i].Name)
		}
	}
	return nil
}

func sameCheckpoint(a, b string) error {
	ca, err := model.Load(a)
	if err != nil {
		return err
	}
	cb, err := model.Load(b)
	if err != nil {
		return err
	}
	ia, ib := ca.Info, cb.Info
	if ia.Arch != ib.Arch || ia.Window != ib.Window || !slices.Equal(ia.Features, ib.Features) || ia.Horizon != ib.Horizon {
		return fmt.Errorf("model info differs: %+v vs %+v", ia.Arch, ib.Arch)
	}
	sa, _ := json.Marshal(ia.Scaler)
	sb, _ := json.Marshal(ib.Scaler)
	if string(sa) != string(sb) {
		return fmt.Errorf("scaler differs")
	}
	for i, t := range ca.Params.Tensors {
		u := cb.Params.Tensors[i]
		if t.Name != u.Name || !slices.Equal(t.Data, u.Data) {
			return fmt.Errorf("tensor %s differs", t.Name)
		}
	}
	return nil
}

// volatileJSON are JSON fields that name the run, a time, a file or a hash.
var volatileJSON = regexp.MustCompile(`(^|\.)(created_at|path|sha256|model_version|run_id|tool_version|inputs|seconds|[a-z_]*_s)$`)

// sameJSON compares two JSON files; strings are compared with the run
// directory prefixes (relA, relB) removed, so paths into the run compare.
func sameJSON(a, b, relA, relB string) error {
	var va, vb any
	for _, x := range []struct {
		path string
		v    *any
	}{{a, &va}, {b, &vb}} {
		raw, err := os.ReadFile(x.path)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(raw, x.v); err != nil {
			return fmt.Errorf("%s: %w", x.path, err)
		}
	}
	return sameValues(relativize(va, relA), relativize(vb, relB))
}

// relativize removes prefix from the strings in v.
func relativize(v any, prefix string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = relativize(e, prefix)
		}
	case []any:
		for i, e := range x {
			x[i] = relativize(e, prefix)
		}
	case string:
		return strings.ReplaceAll(x, prefix, "")
	}
	return v
}

// sameValues compares decoded JSON values, numbers within 1e-9 relative,
// skipping the fields that name the run, a time, a path or a hash.
func sameValues(va, vb any) error {
	fa, fb := map[string]any{}, map[string]any{}
	flatten("", va, fa)
	flatten("", vb, fb)
	keys := map[string]bool{}
	for k := range fa {
		keys[k] = true
	}
	for k := range fb {
		keys[k] = true
	}
	var diffs []string
	for k := range keys {
		if volatileJSON.MatchString(k) {
			continue
		}
		x, y := fa[k], fb[k]
		if xf, ok := x.(float64); ok {
			if yf, ok := y.(float64); ok && math.Abs(xf-yf) <= 1e-9*math.Max(1, math.Max(math.Abs(xf), math.Abs(yf))) {
				continue
			}
		} else if fmt.Sprint(x) == fmt.Sprint(y) {
			continue
		}
		diffs = append(diffs, fmt.Sprintf("%s: %v vs %v", k, x, y))
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		if len(diffs) > 5 {
			diffs = append(diffs[:5], fmt.Sprintf("and %d more", len(diffs)-5))
		}
		return fmt.Errorf("%s", strings.Join(diffs, "; "))
	}
	return nil
}

func flatten(prefix string, v any, out map[string]any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			flatten(strings.TrimPrefix(prefix+"."+k, "."), e, out)
		}
	case []any:
		for i, e := range x {
			flatten(fmt.Sprintf("%s[%d]", prefix, i), e, out)
		}
	default:
		out[prefix] = v
	}
}

// cmdWaitFor is the testscript command
//
//	waitfor FILE REGEXP [TIMEOUT]
//
// which waits until FILE exists and its content matches REGEXP (default
// timeout 2m), to synchronise with a background command.
func cmdWaitFor(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: waitfor FILE REGEXP [TIMEOUT]")
	}
	re, err := regexp.Compile(args[1])
	ts.Check(err)
	timeout := 2 * time.Minute
	if len(args) == 3 {
		timeout, err = time.ParseDuration(args[2])
		ts.Check(err)
	}
	path := ts.MkAbs(args[0])
	deadline := time.Now().Add(timeout)
	for {
		if b, err := os.ReadFile(path); err == nil && re.Match(b) {
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(path)
			ts.Fatalf("waitfor: %s does not match %q after %s; content:\n%s", args[0], args[1], timeout, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cmdBeatsBaseline is the testscript command
//
//	beats-baseline RUN_DIR FACTOR
//
// which checks that the run's test MAE and RMSE are below FACTOR times those
// of the train-mean baseline (final metrics in run.json): the model learned.
func cmdBeatsBaseline(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: beats-baseline RUN_DIR FACTOR")
	}
	var factor float64
	_, err := fmt.Sscan(args[1], &factor)
	ts.Check(err)
	rec, err := tracking.Load(ts.MkAbs(args[0]))
	ts.Check(err)
	for _, m := range []string{"mae", "rmse"} {
		got, ok1 := rec.FinalMetrics["test_"+m]
		base, ok2 := rec.FinalMetrics["baseline_test_"+m]
		if !ok1 || !ok2 {
			ts.Fatalf("beats-baseline: run.json has no test_%s or baseline_test_%s", m, m)
		}
		ts.Logf("test %s %.3f, train-mean baseline %.3f (ratio %.2f)", m, got, base, got/base)
		if !(float64(got) < factor*float64(base)) {
			ts.Fatalf("beats-baseline: test %s %.3f is not below %.2f × the baseline's %.3f", m, got, factor, base)
		}
	}
}
