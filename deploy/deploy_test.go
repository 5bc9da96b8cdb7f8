package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/conformal"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/duration"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/fixture"
	"github.com/modax/modax-ml/internal/lock"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/onnxmodel"
	"github.com/modax/modax-ml/internal/runenv"
)

var arch = model.Arch{Type: model.TypeLSTM, InputSize: 3, Hidden: 6, Layers: 2, FC: 4}

// candidateDir writes a candidate (checkpoint v<seed>, windows, metrics with
// the given test MAE, model.onnx) into a fresh directory.
func candidateDir(t testing.TB, seed uint64, mae float64) fixture.Files {
	t.Helper()
	return candidateAt(t, t.TempDir(), fixture.Checkpoint(arch, 8, seed), mae)
}

func candidateAt(t testing.TB, dir string, ck *model.Checkpoint, mae float64) fixture.Files {
	t.Helper()
	ck.Info.ModelVersion = fmt.Sprintf("v%d", ck.Info.Seed)
	f, err := fixture.WriteAll(context.Background(), dir, ck, 6, fixture.Metrics{N: 6, MAE: mae, RMSE: mae * 1.3, Score: 10 * mae})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func opts(models string, f fixture.Files) Options {
	o := DefaultOptions()
	o.Model, o.ONNX, o.Metrics, o.ModelsDir = f.Checkpoint, f.ONNX, f.Metrics, models
	o.LockTimeout = duration.Duration(5 * time.Second)
	return o
}

func env() *runenv.Env { return runenv.Test() }

// served returns the version that models/rul_predictor.onnx and
// models/model_metadata.json resolve to, failing the test on a mix.
func served(t testing.TB, models string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(models, servedONNX))
	if err != nil {
		t.Fatalf("served onnx: %v", err)
	}
	md, err := readMetadata(filepath.Join(models, servedMeta))
	if err != nil {
		t.Fatalf("served metadata: %v", err)
	}
	if onnxmodel.SHA256(b) != md.ONNX.SHA256 {
		t.Fatalf("MIX: rul_predictor.onnx is not the model model_metadata.json (%s) describes", md.ModelVersion)
	}
	mp, err := onnxmodel.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if v := onnxmodel.Props(mp)[onnxmodel.MetaCheckpointSHA256]; v != md.Checkpoint.SHA256 {
		t.Fatalf("MIX: served onnx is of checkpoint %.12s, metadata (%s) of %.12s", v, md.ModelVersion, md.Checkpoint.SHA256)
	}
	return md.ModelVersion
}

// leftovers lists hidden staging/trash/temporary entries.
func leftovers(t testing.TB, models string) []string {
	t.Helper()
	var out []string
	for _, d := range []string{models, filepath.Join(models, versionsDir)} {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") && e.Name() != lockFile {
				out = append(out, filepath.Join(d, e.Name()))
			}
		}
	}
	return out
}

func TestDeployListRollback(t *testing.T) {
	ctx := context.Background()
	models := filepath.Join(t.TempDir(), "models")
	c1, c2 := candidateDir(t, 1, 7), candidateDir(t, 2, 6)

	res, err := Run(ctx, env(), opts(models, c1))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Deployed || res.Version != "v1" || res.Previous != "" || len(res.Gate) != 1 || !res.Gate[0].Passed {
		t.Fatalf("first deploy: %+v", res)
	}
	if got := served(t, models); got != "v1" {
		t.Fatalf("served %s", got)
	}
	// model_metadata.json carries the real metrics and what the issue lists.
	md, err := readMetadata(filepath.Join(models, servedMeta))
	if err != nil {
		t.Fatal(err)
	}
	ckSHA, _ := dataset.FileSHA256(c1.Checkpoint)
	onnxSHA, _ := dataset.FileSHA256(c1.ONNX)
	var splits map[string]map[string]any
	if err := json.Unmarshal(md.Metrics, &splits); err != nil {
		t.Fatal(err)
	}
	if *md.TestMetrics.MAE != 7 || splits["test"]["mae"] != 7.0 || splits["val"]["r2"] != 0.7 || md.Checkpoint.SHA256 != ckSHA ||
		md.ONNX.SHA256 != onnxSHA || md.ONNX.Opset != 13 || md.ModelType != "lstm" || md.Window != 8 || len(md.Features) != 3 ||
		md.TrainingDate == "" || md.TrainingRunID != "train-1" || md.ToolVersion == "" || md.HorizonHours != 100 || md.DeployedAt.IsZero() {
		t.Errorf("metadata %+v", md)
	}
	if md.ONNX.Input != "input [batch,8,3] raw sensor values" {
		t.Errorf("onnx input %q", md.ONNX.Input)
	}
	// The files in the version directory are the candidate's, byte for byte.
	for src, name := range map[string]string{c1.Checkpoint: fileCheckpoint, c1.ONNX: fileONNX, c1.Metrics: fileMetrics} {
		a, _ := os.ReadFile(src)
		b, _ := os.ReadFile(filepath.Join(models, versionsDir, "v1", name))
		if string(a) != string(b) {
			t.Errorf("%s differs from %s", name, src)
		}
	}

	if res, err = Run(ctx, env(), opts(models, c2)); err != nil || res.Previous != "v1" {
		t.Fatalf("second deploy: %+v %v", res, err)
	}
	if got := served(t, models); got != "v2" {
		t.Fatalf("served %s", got)
	}
	l, err := List(ctx, opts(models, c2))
	if err != nil {
		t.Fatal(err)
	}
	if l.Current != "v2" || l.Previous != "v1" || len(l.Versions) != 2 || !l.Versions[0].Current || !l.Versions[1].Previous || *l.Versions[1].TestMAE != 7 {
		t.Fatalf("list %+v", l)
	}

	// Rollback to the previous one, then back with --to.
	if res, err = Rollback(ctx, env(), opts(models, c2), ""); err != nil || res.Version != "v1" || res.Previous != "v2" {
		t.Fatalf("rollback: %+v %v", res, err)
	}
	if got := served(t, models); got != "v1" {
		t.Fatalf("served %s after rollback", got)
	}
	if _, err = Rollback(ctx, env(), opts(models, c2), "v2"); err != nil || served(t, models) != "v2" {
		t.Fatalf("rollback --to v2: %v", err)
	}
	if _, err = Rollback(ctx, env(), opts(models, c2), "v9"); err == nil || !strings.Contains(err.Error(), `no version "v9"`) {
		t.Fatalf("rollback to a missing version: %v", err)
	}
	if _, err = Rollback(ctx, env(), opts(models, c2), "v2"); err == nil || !strings.Contains(err.Error(), "already served") {
		t.Fatalf("rollback to the served version: %v", err)
	}
	// Deploying v1 again reuses its directory.
	if res, err = Run(ctx, env(), opts(models, c1)); err != nil || !res.Reused || served(t, models) != "v1" {
		t.Fatalf("redeploy v1: %+v %v", res, err)
	}
	h, _ := (&store{dir: models}).history()
	var acts []string
	for _, e := range h.Events {
		acts = append(acts, e.Action+":"+e.Version)
	}
	if got := strings.Join(acts, " "); got != "deploy:v1 deploy:v2 rollback:v1 rollback:v2 deploy:v1" {
		t.Errorf("history %s", got)
	}
	if lo := leftovers(t, models); len(lo) > 0 {
		t.Errorf("leftovers %v", lo)
	}
}

func TestGate(t *testing.T) {
	ctx := context.Background()
	c := candidateDir(t, 3, 20) // MAE 20, RMSE 26, score 200
	for _, tc := range []struct {
		name string
		mod  func(*Options)
		want []string
	}{
		{"default max-mae", func(*Options) {}, []string{"test MAE 20 > --max-mae 15"}},
		{"rmse", func(o *Options) { o.MaxMAE, o.MaxRMSE = 0, 25 }, []string{"test RMSE 26 > --max-rmse 25"}},
		{"all", func(o *Options) { o.MaxMAE, o.MaxRMSE, o.MaxScore = 19, 25, 100 }, []string{"MAE 20 > --max-mae 19", "RMSE 26", "SCORE 200 > --max-score 100"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			models := filepath.Join(t.TempDir(), "models")
			o := opts(models, c)
			tc.mod(&o)
			res, err := Run(ctx, env(), o)
			if exitcode.Code(err) != exitcode.Gate || res == nil || res.Deployed {
				t.Fatalf("err = %v (exit %d), res %+v", err, exitcode.Code(err), res)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q lacks %q", err, w)
				}
			}
			if _, err := os.Stat(models); err == nil {
				t.Errorf("a model that missed the gate created %s", models)
			}
		})
	}
	// The limits pass when high enough, and off when 0.
	models := filepath.Join(t.TempDir(), "models")
	o := opts(models, c)
	o.MaxMAE, o.MaxRMSE, o.MaxScore = 20, 26, 0
	if _, err := Run(ctx, env(), o); err != nil {
		t.Fatal(err)
	}
	// An undefined metric fails the gate that needs it.
	c2 := candidateDir(t, 4, 5)
	var doc map[string]any
	b, _ := os.ReadFile(c2.Metrics)
	_ = json.Unmarshal(b, &doc)
	doc["splits"].(map[string]any)["test"].(map[string]any)["score"] = nil
	b, _ = json.Marshal(doc)
	_ = os.WriteFile(c2.Metrics, b, 0o644)
	o = opts(models, c2)
	o.MaxScore = 100
	if _, err := Run(ctx, env(), o); exitcode.Code(err) != exitcode.Gate || !strings.Contains(err.Error(), "undefined") {
		t.Fatalf("null score: %v", err)
	}
}

func TestMustBeatCurrent(t *testing.T) {
	ctx := context.Background()
	models := filepath.Join(t.TempDir(), "models")
	// Candidates evaluated on the same windows (one directory, files replaced).
	shared := t.TempDir()
	c1 := candidateAt(t, shared, fixture.Checkpoint(arch, 8, 10), 7)
	o := opts(models, c1)
	o.MustBeatCurrent = true
	if _, err := Run(ctx, env(), o); err != nil { // nothing deployed yet: passes
		t.Fatal(err)
	}
	// Same windows file: rewrite the checkpoint/metrics/onnx of v11 with MAE 8.
	ck := fixture.Checkpoint(arch, 8, 11)
	ck.Info.ModelVersion = "v11"
	if err := model.Save(c1.Checkpoint, ck); err != nil {
		t.Fatal(err)
	}
	write := func(mae float64) {
		t.Helper()
		if err := fixture.WriteMetrics(c1.Metrics, c1.Checkpoint, c1.Windows, fixture.Metrics{N: 6, MAE: mae, RMSE: mae, Score: mae}); err != nil {
			t.Fatal(err)
		}
		if err := fixture.WriteONNX(c1.ONNX, c1.Checkpoint, onnxmodel.BuildOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	write(8)
	_, err := Run(ctx, env(), o)
	if exitcode.Code(err) != exitcode.Gate || !strings.Contains(err.Error(), "test MAE 8 is not below 7 of the deployed v10") {
		t.Fatalf("worse challenger: %v", err)
	}
	if served(t, models) != "v10" {
		t.Fatal("gate failure changed the served model")
	}
	write(6.5)
	if res, err := Run(ctx, env(), o); err != nil || served(t, models) != "v11" || res.Gate[1].Against != "deployed v10" {
		t.Fatalf("better challenger: %+v %v", res, err)
	}

	// A challenger evaluated on other windows cannot be compared with the
	// stored metrics; it can with the champion's metrics on its windows.
	c3 := candidateDir(t, 12, 1)
	o3 := opts(models, c3)
	o3.MustBeatCurrent = true
	if _, err := Run(ctx, env(), o3); err == nil || !strings.Contains(err.Error(), "other windows") || !strings.Contains(err.Error(), "--current-metrics") {
		t.Fatalf("other test set: %v", err)
	}
	champ := filepath.Join(t.TempDir(), "champion.json")
	if err := fixture.WriteMetrics(champ, filepath.Join(models, versionsDir, "v11", fileCheckpoint), c3.Windows, fixture.Metrics{N: 6, MAE: 3, RMSE: 3, Score: 3}); err != nil {
		t.Fatal(err)
	}
	o3.CurrentMetrics = champ
	if _, err := Run(ctx, env(), o3); err != nil || served(t, models) != "v12" {
		t.Fatalf("with --current-metrics: %v", err)
	}
	// --current-metrics of a model that is not the deployed one is refused.
	c4 := candidateDir(t, 13, 0.5)
	o4 := opts(models, c4)
	o4.MustBeatCurrent, o4.CurrentMetrics = true, champ // champ belongs to v11, v12 is served
	if _, err := Run(ctx, env(), o4); err == nil || !strings.Contains(err.Error(), "another model") {
		t.Fatalf("foreign current metrics: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	models := filepath.Join(t.TempDir(), "models")
	good := candidateDir(t, 20, 5)
	if _, err := Run(ctx, env(), opts(models, good)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cp := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ckb, _ := os.ReadFile(good.Checkpoint)
	onb, _ := os.ReadFile(good.ONNX)

	// A checkpoint whose tensors are of another architecture than it says.
	other := fixture.Checkpoint(model.Arch{Type: model.TypeLSTM, InputSize: 3, Hidden: 9, Layers: 2, FC: 4}, 8, 20)
	_, meta, _ := model.ReadSafetensors(good.Checkpoint)
	archPath := filepath.Join(dir, "arch.safetensors")
	if err := model.WriteSafetensors(archPath, other.Params.Tensors, meta); err != nil {
		t.Fatal(err)
	}
	// An ONNX file whose weights were damaged: a flipped bit in the fc2 bias
	// (TensorProto: name, then raw_data = tag 0x4a, length 4, the float).
	i := strings.Index(string(onb), "fc2.bias\x4a\x04")
	if i < 0 {
		t.Fatal("fc2.bias raw data not found")
	}
	damaged := append([]byte(nil), onb...)
	damaged[i+len("fc2.bias")+2+3] ^= 0x40 // the float's exponent
	// Another model's export and metrics.
	c2 := candidateDir(t, 21, 5)

	for _, tc := range []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"truncated checkpoint", func(o *Options) { o.Model = cp("t.safetensors", ckb[:len(ckb)-50]) }, "t.safetensors"},
		{"checkpoint of another architecture", func(o *Options) { o.Model = archPath }, "shape"},
		{"truncated onnx", func(o *Options) { o.ONNX = cp("t.onnx", onb[:len(onb)/3]) }, "truncated or corrupt"},
		{"damaged onnx weights", func(o *Options) { o.ONNX = cp("d.onnx", damaged) }, "d.onnx: data validation failed: initializers: the weights do not match the recorded digest"},
		{"onnx of another checkpoint", func(o *Options) { o.ONNX = c2.ONNX }, "exported from another checkpoint"},
		{"metrics of another model", func(o *Options) { o.Metrics = c2.Metrics }, "belong to another model"},
		{"not metrics", func(o *Options) { o.Metrics = cp("m.json", []byte(`{"splits":{}}`)) }, "schema"},
		{"version taken", func(o *Options) { *o = opts(models, c2); o.Version = "v20" }, "already exists with another model"},
		{"bad version", func(o *Options) { o.Version = "../evil" }, "--version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts(models, good)
			o.Version = "new-" + strings.ReplaceAll(tc.name, " ", "-")
			tc.mod(&o)
			_, err := Run(ctx, env(), o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if served(t, models) != "v20" {
				t.Fatal("served model changed")
			}
			vs, _ := (&store{dir: models}).versions()
			if len(vs) != 1 || len(leftovers(t, models)) > 0 {
				t.Fatalf("versions %v leftovers %v", vs, leftovers(t, models))
			}
		})
	}

	// A model with other inputs is refused unless allowed.
	wide := candidateAt(t, t.TempDir(), fixture.Checkpoint(model.Arch{Type: model.TypeLSTM, InputSize: 4, Hidden: 6, Layers: 1, FC: 4}, 8, 22), 5)
	if _, err := Run(ctx, env(), opts(models, wide)); err == nil || !strings.Contains(err.Error(), "--allow-interface-change") {
		t.Fatalf("interface change: %v", err)
	}
	o := opts(models, wide)
	o.AllowInterfaceChange = true
	if _, err := Run(ctx, env(), o); err != nil || served(t, models) != "v22" {
		t.Fatalf("allowed interface change: %v", err)
	}

	// A rul_predictor.onnx that deploy does not manage is not overwritten.
	foreign := filepath.Join(t.TempDir(), "models")
	if err := os.MkdirAll(foreign, 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(foreign, servedONNX), []byte("hand-copied"), 0o644)
	if _, err := Run(ctx, env(), opts(foreign, good)); err == nil || !strings.Contains(err.Error(), "not managed by modax-ml deploy") {
		t.Fatalf("foreign served file: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(foreign, servedONNX)); string(b) != "hand-copied" {
		t.Fatal("foreign file overwritten")
	}
}

func TestKeep(t *testing.T) {
	ctx := context.Background()
	models := filepath.Join(t.TempDir(), "models")
	deployV := func(seed uint64, keep int) *Result {
		t.Helper()
		o := opts(models, candidateDir(t, seed, 5))
		o.Keep = keep
		res, err := Run(ctx, env(), o)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	for s := uint64(30); s < 34; s++ {
		deployV(s, 0)
	}
	// Serve v31 again, so that v32 and v33 are the oldest served.
	if _, err := Rollback(ctx, env(), opts(models, fixture.Files{}), "v31"); err != nil {
		t.Fatal(err)
	}
	res := deployV(34, 1) // keep 1: the current v34 and the previous v31 stay anyway
	vs, _ := (&store{dir: models}).versions()
	if strings.Join(vs, ",") != "v31,v34" || strings.Join(res.Pruned, ",") != "v33,v32,v30" {
		t.Fatalf("versions %v pruned %v", vs, res.Pruned)
	}
	if served(t, models) != "v34" {
		t.Fatal("served model changed")
	}
	if _, err := Rollback(ctx, env(), opts(models, fixture.Files{}), ""); err != nil || served(t, models) != "v31" {
		t.Fatalf("rollback to the kept previous: %v", err)
	}
}

func TestLock(t *testing.T) {
	ctx := context.Background()
	models := filepath.Join(t.TempDir(), "models")
	held, err := openStore(ctx, models, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	o := opts(models, candidateDir(t, 40, 5))
	o.LockTimeout = duration.Duration(200 * time.Millisecond)
	if _, err := Run(ctx, env(), o); !errors.Is(err, lock.ErrHeld) || !strings.Contains(err.Error(), "another deploy holds it (pid") {
		t.Fatalf("err = %v, want a lock timeout naming the holder", err)
	}
	held.close()

	// Concurrent deploys serialise: both succeed, the history has both.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		o := opts(models, candidateDir(t, uint64(41+i), 5))
		o.AllowInterfaceChange = true
		wg.Go(func() { _, errs[i] = Run(ctx, env(), o) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	h, _ := (&store{dir: models}).history()
	if len(h.Events) != 4 {
		t.Fatalf("history %+v", h.Events)
	}
	for i := 1; i < len(h.Events); i++ {
		if h.Events[i].Previous != h.Events[i-1].Version {
			t.Fatalf("history is not a chain: %+v", h.Events)
		}
	}
	if v := served(t, models); v != h.Events[3].Version {
		t.Fatalf("served %s, history ends with %s", v, h.Events[3].Version)
	}
}

// TestDeployCarriesCalibration: the checkpoint's interval calibration is in
// model_metadata.json, as it is in the ONNX file's metadata_props.
func TestDeployCarriesCalibration(t *testing.T) {
	models := filepath.Join(t.TempDir(), "models")
	ck := fixture.Checkpoint(arch, 8, 30)
	cal, err := conformal.Calibrate([]float64{10, 20, 30, 40}, []float64{12, 17, 30, 44}, []float64{0.5}, ck.Info.Horizon, conformal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ck.Info.Calibration = cal
	c := candidateAt(t, t.TempDir(), ck, 5)
	if _, err := Run(context.Background(), env(), opts(models, c)); err != nil {
		t.Fatal(err)
	}
	md, err := readMetadata(filepath.Join(models, servedMeta))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(md.Calibration, cal) {
		t.Fatalf("model_metadata.json calibration %+v, want %+v", md.Calibration, cal)
	}
}

// model_metadata.json records the version's weights digest, the
// checkpoint's and the ONNX model's; a version whose checkpoint was replaced
// by another intact one is not servable (rollback refuses it, exit 3), and
// metadata without a digest (deployed before digests were recorded) passes.
func TestDeployWeightsDigest(t *testing.T) {
	ctx := context.Background()
	models := filepath.Join(t.TempDir(), "models")
	c1, c2 := candidateDir(t, 1, 7), candidateDir(t, 2, 6)
	if _, err := Run(ctx, env(), opts(models, c1)); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(ctx, env(), opts(models, c2)); err != nil {
		t.Fatal(err)
	}
	mdPath := filepath.Join(models, versionsDir, "v1", fileMetadata)
	md, err := readMetadata(mdPath)
	if err != nil {
		t.Fatal(err)
	}
	_, meta, err := model.ReadSafetensors(c1.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(c1.ONNX)
	if err != nil {
		t.Fatal(err)
	}
	mp, err := onnxmodel.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(md.WeightsSHA256) != 64 || md.WeightsSHA256 != meta[model.MetaWeightsSHA256] || md.WeightsSHA256 != onnxmodel.Props(mp)[onnxmodel.MetaWeightsSHA256] {
		t.Fatalf("metadata weights_sha256 %q, checkpoint %q, onnx %q", md.WeightsSHA256, meta[model.MetaWeightsSHA256], onnxmodel.Props(mp)[onnxmodel.MetaWeightsSHA256])
	}
	if err := md.CheckWeights("x", md.WeightsSHA256); err != nil {
		t.Fatal(err)
	}
	err = md.CheckWeights("x.safetensors", strings.Repeat("0", 64))
	if exitcode.Code(err) != exitcode.Validation || !errors.Is(err, model.ErrWeightsDigest) || !strings.Contains(err.Error(), "x.safetensors") {
		t.Fatalf("err = %v, want exit 3 naming the file", err)
	}
	if err := (&Metadata{}).CheckWeights("x", md.WeightsSHA256); err != nil {
		t.Fatalf("metadata without a digest must pass: %v", err)
	}

	// v1's checkpoint replaced by an intact one with other weights (its
	// file sha256 is checked later; the digest speaks first).
	v1ck := filepath.Join(models, versionsDir, "v1", fileCheckpoint)
	other := fixture.Checkpoint(arch, 8, 9)
	other.Info.ModelVersion = "v1"
	if err := os.Chmod(v1ck, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := model.Save(v1ck, other); err != nil {
		t.Fatal(err)
	}
	_, err = Rollback(ctx, env(), opts(models, c2), "v1")
	if exitcode.Code(err) != exitcode.Validation || !strings.Contains(err.Error(), "model_metadata.json records weights_sha256") {
		t.Fatalf("rollback to a replaced checkpoint: err = %v (exit %d), want exit 3", err, exitcode.Code(err))
	}
	if served(t, models) != "v2" {
		t.Fatal("served model changed")
	}
}
