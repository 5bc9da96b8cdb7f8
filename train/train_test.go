package train

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/nn"
	"github.com/modax/modax-ml/internal/progress"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/train/traintest"
)

func testEnv() *runenv.Env {
	env := runenv.Test()
	env.Now = func() time.Time { return time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC) }
	env.Workers = 2
	return env
}

func windowsFile(t *testing.T, s traintest.Spec) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "windows.parquet")
	if err := traintest.WriteWindows(path, s); err != nil {
		t.Fatal(err)
	}
	return path
}

// smallOptions trains a small model fast.
func smallOptions(windows, out string) Options {
	o := DefaultOptions()
	o.Windows, o.Out = windows, out
	o.Hidden, o.Layers, o.FC, o.Dropout = 16, 2, 8, 0.1
	o.Epochs, o.BatchSize, o.LR = 12, 16, 1e-2
	o.Workers = 2
	return o
}

func TestTrainLSTM(t *testing.T) {
	win := windowsFile(t, traintest.Default())
	out := filepath.Join(t.TempDir(), "model.safetensors")
	res, err := Run(context.Background(), testEnv(), smallOptions(win, out))
	if err != nil {
		t.Fatal(err)
	}
	h := res.History
	if len(h) != res.Epochs || res.Epochs < 5 {
		t.Fatalf("%d epochs run, history %d", res.Epochs, len(h))
	}
	if res.BestValRMSE == nil || *res.BestValRMSE > 0.6*h[0].ValRMSE || *res.BestValRMSE > 15 {
		t.Fatalf("val RMSE did not improve enough: first %.2f h, best %v", h[0].ValRMSE, res.BestValRMSE)
	}
	if res.SamplesPerS <= 0 || res.TrainWindows != 256 || res.ValWindows != 64 || res.TargetScale != 100 {
		t.Fatalf("result %+v", res)
	}
	ck, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	in := ck.Info
	if in.Window != 12 || in.Horizon != 100 || len(in.Features) != 3 || in.Scaler.Kind != "zscore" || len(in.History) != len(h) ||
		in.RunID != "test-run" || in.ModelVersion != "lstm-test-run" || len(in.Inputs) != 1 || in.Inputs[0].SHA256 == "" {
		t.Fatalf("checkpoint info %+v", in)
	}
	if _, err := os.Stat(SidecarPath(out)); err != nil {
		t.Fatal("no optimizer state:", err)
	}
	// The checkpoint predicts hours: its val RMSE through the native
	// predictor is the best epoch's.
	checkValRMSE(t, win, ck, *res.BestValRMSE)
}

// checkValRMSE fails unless the checkpoint's val RMSE through the native
// predictor is want (the best epoch's, as training reported it).
func checkValRMSE(t *testing.T, win string, ck *model.Checkpoint, want float64) {
	t.Helper()
	d, err := loadWindows(context.Background(), win, "val")
	if err != nil {
		t.Fatal(err)
	}
	pred := make([]float32, d.val.n)
	if err := nn.NewPredictor(ck.Params, 2).Predict(d.val.x, d.val.n, pred); err != nil {
		t.Fatal(err)
	}
	var sq float64
	for i, p := range pred {
		sq += (float64(p) - float64(d.val.rul[i])) * (float64(p) - float64(d.val.rul[i]))
	}
	if rmse := math.Sqrt(sq / float64(d.val.n)); math.Abs(rmse-want) > 1e-3*want {
		t.Fatalf("checkpoint val RMSE %.5f h, training reported %.5f h", rmse, want)
	}
}

func tensorsEqual(t *testing.T, a, b string) bool {
	t.Helper()
	ca, err := model.Load(a)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := model.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	for i, ta := range ca.Params.Tensors {
		if !slices.Equal(ta.Data, cb.Params.Tensors[i].Data) {
			return false
		}
	}
	return true
}

// TestTrainDeterministic: the same seed, data, engine and worker count give
// bit-identical weights; another seed does not.
func TestTrainDeterministic(t *testing.T) {
	win := windowsFile(t, traintest.Default())
	dir := t.TempDir()
	var outs []string
	for i, seed := range []int64{7, 7, 8} {
		o := smallOptions(win, filepath.Join(dir, "m"+string(rune('a'+i))+".safetensors"))
		o.Epochs, o.Seed = 3, seed
		if _, err := Run(context.Background(), testEnv(), o); err != nil {
			t.Fatal(err)
		}
		outs = append(outs, o.Out)
	}
	if !tensorsEqual(t, outs[0], outs[1]) {
		t.Fatal("two runs with the same seed differ")
	}
	if tensorsEqual(t, outs[0], outs[2]) {
		t.Fatal("different seeds gave the same weights")
	}
}

// runCancelledAfter runs o and cancels it (as Ctrl-C does) after n batches.
func runCancelledAfter(o Options, n int64) (*Result, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := testEnv()
	env.Progress = cancelAfter(n, cancel)
	return Run(ctx, env, o)
}

// cancelAfter is a progress factory whose bar cancels the run after n
// batches (Add calls).
func cancelAfter(n int64, cancel context.CancelFunc) progress.Factory {
	var calls atomic.Int64
	return func(string, string, int64) progress.Bar {
		return &cancelBar{n: n, calls: &calls, cancel: cancel}
	}
}

type cancelBar struct {
	n      int64
	calls  *atomic.Int64
	cancel context.CancelFunc
}

func (b *cancelBar) Add(int64) {
	if b.calls.Add(1) == b.n {
		b.cancel()
	}
}
func (b *cancelBar) SetTotal(int64)  {}
func (b *cancelBar) Describe(string) {}
func (b *cancelBar) Finish()         {}

// TestTrainInterruptResume: a run interrupted mid-epoch writes its checkpoint
// and an error wrapping context.Canceled; resuming it ends with exactly the
// weights of an uninterrupted run, and so does resuming a finished run with
// more epochs.
func TestTrainInterruptResume(t *testing.T) {
	win := windowsFile(t, traintest.Default())
	dir := t.TempDir()
	full := smallOptions(win, filepath.Join(dir, "full.safetensors"))
	full.Epochs, full.Patience = 4, 0
	if _, err := Run(context.Background(), testEnv(), full); err != nil {
		t.Fatal(err)
	}

	o := full
	o.Out = filepath.Join(dir, "cut.safetensors")
	res, err := runCancelledAfter(o, 16+5) // 16 batches per epoch: stop in epoch 2
	if !errors.Is(err, context.Canceled) || exitcode.Code(err) != exitcode.Interrupted {
		t.Fatalf("interrupted run: %v", err)
	}
	if !strings.Contains(err.Error(), "epoch 2 after batch 5") || res == nil || res.Epochs != 1 {
		t.Fatalf("interrupted run: %v, %+v", err, res)
	}
	if want := "(continue with --resume " + o.Out + ")"; !strings.Contains(err.Error(), want) {
		t.Errorf("interrupted run: %v, want the hint %q", err, want)
	}
	if _, err := model.Load(o.Out); err != nil {
		t.Fatal("no checkpoint after the interruption:", err)
	}
	o.Resume = o.Out
	res, err = Run(context.Background(), testEnv(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Epochs != 4 || len(res.History) != 4 || res.ResumedFrom != o.Out {
		t.Fatalf("resumed run: %+v", res)
	}
	if !tensorsEqual(t, full.Out, o.Out) {
		t.Fatal("interrupted + resumed weights differ from an uninterrupted run")
	}

	// Finished at 2 epochs, resumed to 4 = 4 epochs straight.
	o2 := full
	o2.Out, o2.Epochs = filepath.Join(dir, "two.safetensors"), 2
	if _, err := Run(context.Background(), testEnv(), o2); err != nil {
		t.Fatal(err)
	}
	o2.Resume, o2.Epochs = o2.Out, 4
	if _, err := Run(context.Background(), testEnv(), o2); err != nil {
		t.Fatal(err)
	}
	if !tensorsEqual(t, full.Out, o2.Out) {
		t.Fatal("2 + 2 epochs differ from 4 epochs")
	}
}

func TestTrainEarlyStoppingAndPlateau(t *testing.T) {
	win := windowsFile(t, traintest.Default())
	o := smallOptions(win, filepath.Join(t.TempDir(), "m.safetensors"))
	o.Epochs, o.Patience, o.MinDelta = 60, 2, 1e9 // no epoch improves by 1e9: stop after epoch 3
	res, err := Run(context.Background(), testEnv(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.StoppedEarly || res.Epochs != 3 || res.BestEpoch != 1 {
		t.Fatalf("early stopping: stopped %v after %d epochs, best %d", res.StoppedEarly, res.Epochs, res.BestEpoch)
	}
	// Resuming with the same patience stops at once; a larger one goes on.
	o.Resume = o.Out
	if res, err = Run(context.Background(), testEnv(), o); err != nil || res.Epochs != 3 {
		t.Fatalf("resume of a stopped run: %v, %d epochs", err, res.Epochs)
	}
	o.Patience = 4
	if res, err = Run(context.Background(), testEnv(), o); err != nil || res.Epochs != 5 || !res.StoppedEarly {
		t.Fatalf("resume with patience 4: %v, %d epochs", err, res.Epochs)
	}
}

// TestReduceLROnPlateau feeds val losses to the hook; the expected learning
// rates are torch.optim.lr_scheduler.ReduceLROnPlateau's (factor 0.5,
// patience 1, min_lr 0.2) on the same sequence.
func TestReduceLROnPlateau(t *testing.T) {
	arch := model.DefaultArch(2)
	p, _ := model.NewParams(arch)
	eng, err := nn.NewFused(p, nn.Config{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	o := DefaultOptions()
	o.LRPatience, o.LRFactor, o.MinLR = 1, 0.5, 0.2
	l := &loop{o: &o, d: &data{val: split{n: 1}}, eng: eng, env: testEnv(), st: trainState{LR: 1}}
	h := reduceLROnPlateau()
	want := []float64{1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2}
	for i, loss := range []float64{1.0, 0.5, 0.6, 0.6, 0.4, 0.45, 0.5, 0.5, 0.5, 0.5, 0.5} {
		if err := h.epoch(l, &model.Epoch{Epoch: i + 1, ValLoss: loss}); err != nil {
			t.Fatal(err)
		}
		if l.st.LR != want[i] {
			t.Fatalf("after epoch %d: lr %g, torch gives %g", i+1, l.st.LR, want[i])
		}
	}
}

// TestTrainGorgonia trains with the gorgonia engine from the same initial
// weights, batches and dropout masks as the fused engine: the two runs'
// losses agree closely (the engines differ only in float32 rounding).
func TestTrainGorgonia(t *testing.T) {
	win := windowsFile(t, traintest.Default())
	dir := t.TempDir()
	var hist [2][]model.Epoch
	for i, engine := range []string{EngineFused, EngineGorgonia} {
		o := smallOptions(win, filepath.Join(dir, engine+".safetensors"))
		o.Epochs, o.Engine, o.LR = 2, engine, 3e-3
		res, err := Run(context.Background(), testEnv(), o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Engine != engine {
			t.Fatalf("engine %q", res.Engine)
		}
		hist[i] = res.History
		if _, err := model.Load(o.Out); err != nil {
			t.Fatal(err)
		}
	}
	for e := range hist[0] {
		f, g := hist[0][e], hist[1][e]
		if math.Abs(f.TrainLoss-g.TrainLoss) > 1e-3*f.TrainLoss || math.Abs(f.ValRMSE-g.ValRMSE) > 1e-3*f.ValRMSE {
			t.Errorf("epoch %d: fused train loss %.6g val RMSE %.5g, gorgonia %.6g %.5g", e+1, f.TrainLoss, f.ValRMSE, g.TrainLoss, g.ValRMSE)
		}
	}
}

func TestTrainHuberAndNoVal(t *testing.T) {
	win := windowsFile(t, traintest.Default())
	o := smallOptions(win, filepath.Join(t.TempDir(), "m.safetensors"))
	o.Epochs, o.Loss, o.HuberDelta, o.ValSplit, o.TargetScale = 3, "huber", 5, "none", ScaleNone
	res, err := Run(context.Background(), testEnv(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.BestValRMSE != nil || res.ValWindows != 0 || res.TargetScale != 1 || res.Epochs != 3 {
		t.Fatalf("%+v", res)
	}
}

// TestTrainBadInput: clear errors and no checkpoint for bad windows files,
// bad resume checkpoints and a diverging run.
func TestTrainBadInput(t *testing.T) {
	good := windowsFile(t, traintest.Default())
	spec := traintest.Default()
	spec.NaNRow = 17
	nan := windowsFile(t, spec)
	spec = traintest.Default()
	spec.Train = 0
	noTrain := windowsFile(t, spec)
	spec = traintest.Default()
	spec.Train = 10
	few := windowsFile(t, spec)
	spec = traintest.Default()
	spec.Features = 4
	fourFeatures := windowsFile(t, spec)
	spec = traintest.Default()
	spec.Horizon = 3e38
	huge := windowsFile(t, spec)

	dir := t.TempDir()
	ckpt := filepath.Join(dir, "ok.safetensors")
	o := smallOptions(good, ckpt)
	o.Epochs = 1
	if _, err := Run(context.Background(), testEnv(), o); err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(dir, "corrupt.safetensors")
	b, _ := os.ReadFile(ckpt)
	if err := os.WriteFile(corrupt, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		modify func(o *Options)
		want   string
		code   int
	}{
		{"nan", func(o *Options) { o.Windows = nan }, "column x, row 17 (window 16): value NaN at position 18 (time step 6, feature sensor_0); windows must hold finite values (device train-2, split train)", exitcode.Validation},
		{"no-train", func(o *Options) { o.Windows = noTrain }, `no windows in the "train" split`, exitcode.Validation},
		{"fewer-than-a-batch", func(o *Options) { o.Windows = few }, "10 train windows, fewer than one batch of 16", exitcode.Validation},
		{"resume-features", func(o *Options) { o.Windows, o.Resume = fourFeatures, ckpt }, "the checkpoint's 3 features", exitcode.Validation},
		{"resume-corrupt", func(o *Options) { o.Resume = corrupt }, "corrupt.safetensors", exitcode.Error},
		{"resume-missing", func(o *Options) { o.Resume = filepath.Join(dir, "nope.safetensors") }, "nope.safetensors", exitcode.Error},
		{"diverges", func(o *Options) { o.Windows, o.TargetScale = huge, ScaleNone }, "epoch 1, batch", exitcode.Error},
		{"bad-engine", func(o *Options) { o.Engine = "torch" }, `--engine "torch"`, exitcode.Usage},
		{"bad-loss", func(o *Options) { o.Loss = "mae" }, `--loss "mae"`, exitcode.Usage},
		{"no-windows-file", func(o *Options) { o.Windows = filepath.Join(dir, "none.parquet") }, "none.parquet", exitcode.Error},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := smallOptions(good, filepath.Join(t.TempDir(), "out.safetensors"))
			o.Epochs = 2
			tc.modify(&o)
			_, err := Run(context.Background(), testEnv(), o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if c := exitcode.Code(err); c != tc.code {
				t.Errorf("exit code %d, want %d (%v)", c, tc.code, err)
			}
			for _, p := range []string{o.Out, SidecarPath(o.Out)} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("%s written despite the error", p)
				}
			}
		})
	}
}

func TestTrainRidge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stats.parquet")
	if err := traintest.WriteStats(path, traintest.Default()); err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.Model, o.Stats, o.Out = ModelRidge, path, filepath.Join(t.TempDir(), "ridge.safetensors")
	res, err := Run(context.Background(), testEnv(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.BestValRMSE == nil || *res.BestValRMSE > 20 || res.TrainWindows >= 256 || res.TrainWindows < 200 {
		t.Fatalf("ridge: %+v (val RMSE %v)", res, *res.BestValRMSE)
	}
	ck, err := model.Load(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Info.Arch.Type != model.TypeRidge || ck.Info.Scaler.Kind != "zscore" || len(ck.Info.Scaler.Offset) != 6 || ck.Info.Window != 12 {
		t.Fatalf("ridge checkpoint %+v", ck.Info)
	}
	// The solution is a stationary point of the ridge objective on the
	// standardised train rows: Zᵀ(Zw + b - y) + αw = 0 and Σ(Zw + b - y) = 0.
	s := &statsFile{loc: path, feats: ck.Info.Features}
	F := len(s.feats)
	w := ck.Params.Get("ridge.weight").Data
	bias := float64(ck.Params.Get("ridge.bias").Data[0])
	grad := make([]float64, F+1)
	sc := ck.Info.Scaler
	err = s.scan(context.Background(), map[string]bool{dataset.SplitTrain: true}, map[string]int{}, func(_ string, y float64, x []float64) {
		r := bias - y
		for j, v := range x {
			r += float64(w[j]) * sc.Apply(j, v)
		}
		for j, v := range x {
			grad[j] += r * sc.Apply(j, v)
		}
		grad[F] += r
	})
	if err != nil {
		t.Fatal(err)
	}
	for j := range F {
		grad[j] += o.RidgeAlpha * float64(w[j])
	}
	for j, g := range grad {
		if math.Abs(g) > 1e-2 {
			t.Errorf("objective gradient[%d] = %g, want 0", j, g)
		}
	}
	// The predictor applies it to standardised features.
	x := make([]float32, F)
	out := make([]float32, 1)
	if err := nn.NewPredictor(ck.Params, 1).Predict(x, 1, out); err != nil || out[0] != float32(bias) {
		t.Fatalf("predictor on the mean row: %v %v, want the intercept %v", out, err, bias)
	}

	spec := traintest.Default()
	spec.NaNRow = 3
	if err := traintest.WriteStats(path, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), testEnv(), o); err == nil || !strings.Contains(err.Error(), "row 3") {
		t.Fatalf("NaN RUL: %v", err)
	}
}

// TestTrainGorgoniaResume: the gorgonia engine cannot export Adam's moments;
// its checkpoints resume (on either engine) with a fresh optimizer.
func TestTrainGorgoniaResume(t *testing.T) {
	win := windowsFile(t, traintest.Default())
	o := smallOptions(win, filepath.Join(t.TempDir(), "g.safetensors"))
	o.Epochs, o.Engine = 1, EngineGorgonia
	if _, err := Run(context.Background(), testEnv(), o); err != nil {
		t.Fatal(err)
	}
	for _, engine := range []string{EngineGorgonia, EngineFused} {
		o.Resume, o.Epochs, o.Engine = o.Out, o.Epochs+1, engine
		res, err := Run(context.Background(), testEnv(), o)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.History) != o.Epochs {
			t.Fatalf("%s: %d epochs in the history, want %d", engine, len(res.History), o.Epochs)
		}
	}
}

// TestTrainRefit: --refit saves a model trained on the train and val windows
// for the selection run's best epoch count, with the selection run's
// learning rate in each epoch; with a constant learning rate it is
// bit-identical to a plain run on a file whose val windows are train
// windows.
func TestTrainRefit(t *testing.T) {
	win := windowsFile(t, traintest.Default())
	dir := t.TempDir()
	o := smallOptions(win, filepath.Join(dir, "refit.safetensors"))
	o.Epochs, o.Patience, o.Refit = 6, 0, true
	res, err := Run(context.Background(), testEnv(), o)
	if err != nil {
		t.Fatal(err)
	}
	rf := res.Refit
	if rf == nil || rf.Epochs != res.BestEpoch || rf.Epochs < 1 || rf.TrainWindows != 256+64 || len(rf.History) != rf.Epochs ||
		rf.FinalTrainLoss <= 0 || rf.SamplesPerS <= 0 || res.BestValRMSE == nil || res.Epochs != 6 || len(res.History) != 6 {
		t.Fatalf("refit result %+v, refit %+v", res, rf)
	}
	ck, err := model.Load(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ck.Info.Train), `"refit":{"epochs":`) || len(ck.Info.History) != 6 {
		t.Fatalf("checkpoint train info %s, %d history rows", ck.Info.Train, len(ck.Info.History))
	}

	merged := windowsFile(t, traintest.Spec{Train: 256, Val: 64, Test: 64, Window: 12, Features: 3, Horizon: 100, Noise: 0.3, Seed: 1, ValAsTrain: true})
	plain := smallOptions(merged, filepath.Join(dir, "plain.safetensors"))
	plain.Epochs, plain.Patience, plain.ValSplit = rf.Epochs, 0, "none"
	pres, err := Run(context.Background(), testEnv(), plain)
	if err != nil {
		t.Fatal(err)
	}
	if pres.TrainWindows != rf.TrainWindows || !tensorsEqual(t, o.Out, plain.Out) {
		t.Fatalf("the refit differs from %d epochs on the merged train split (%d windows)", rf.Epochs, pres.TrainWindows)
	}
	sel := o
	sel.Out, sel.Refit = filepath.Join(dir, "selection.safetensors"), false
	if _, err := Run(context.Background(), testEnv(), sel); err != nil {
		t.Fatal(err)
	}
	if tensorsEqual(t, o.Out, sel.Out) {
		t.Fatal("the refit saved the selection run's weights")
	}

	// The learning rate of each refit epoch is the selection run's.
	o2 := smallOptions(win, filepath.Join(dir, "plateau.safetensors"))
	o2.Epochs, o2.Patience, o2.MinDelta, o2.LRPatience, o2.Refit = 5, 0, 0, 1, true
	o2.LR = 0.2 // diverges a little: plateaus, so the rate drops
	res, err = Run(context.Background(), testEnv(), o2)
	if err != nil {
		t.Fatal(err)
	}
	lrs := map[float64]bool{}
	for i, e := range res.Refit.History {
		lrs[e.LR] = true
		if e.LR != res.History[i].LR {
			t.Fatalf("refit epoch %d: lr %g, the selection run's %g", i+1, e.LR, res.History[i].LR)
		}
	}
	if len(lrs) < 2 {
		t.Fatalf("the learning rate never changed in %d refit epochs: the test checks nothing", len(res.Refit.History))
	}
}

// TestTrainRefitInterrupt: an interruption during the refit writes the
// selection run's best weights and exits as interrupted; --resume with
// --refit redoes the refit and ends with the uninterrupted run's weights.
func TestTrainRefitInterrupt(t *testing.T) {
	win := windowsFile(t, traintest.Default())
	dir := t.TempDir()
	full := smallOptions(win, filepath.Join(dir, "full.safetensors"))
	full.Epochs, full.Patience, full.Refit = 3, 0, true
	if _, err := Run(context.Background(), testEnv(), full); err != nil {
		t.Fatal(err)
	}
	sel := full
	sel.Out, sel.Refit = filepath.Join(dir, "selection.safetensors"), false
	if _, err := Run(context.Background(), testEnv(), sel); err != nil {
		t.Fatal(err)
	}

	o := full
	o.Out = filepath.Join(dir, "cut.safetensors")
	res, err := runCancelledAfter(o, 3*16+4) // 3 selection epochs of 16 batches, then 4 refit batches
	if !errors.Is(err, context.Canceled) || exitcode.Code(err) != exitcode.Interrupted || !strings.Contains(err.Error(), "refit interrupted") {
		t.Fatalf("interrupted refit: %v", err)
	}
	if res == nil || res.Refit != nil || res.Epochs != 3 || !tensorsEqual(t, sel.Out, o.Out) {
		t.Fatalf("interrupted refit: %+v; the checkpoint should hold the selection run's weights", res)
	}
	o.Resume = o.Out
	res, err = Run(context.Background(), testEnv(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Refit == nil || !tensorsEqual(t, full.Out, o.Out) {
		t.Fatal("resumed refit differs from the uninterrupted one")
	}
}

// TestUpdateEMA: one update moves the average by (1 - decay) towards the
// current weights, with the decay warmed up as (1+t)/(10+t).
func TestUpdateEMA(t *testing.T) {
	arch := model.Arch{Type: model.TypeLSTM, InputSize: 2, Hidden: 3, Layers: 1, FC: 2}
	p, _ := model.NewParams(arch)
	p.Init(1)
	eng, err := nn.NewFused(p, nn.Config{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	o := DefaultOptions()
	o.EMADecay = 0.9
	for _, c := range []struct {
		step  int
		decay float64
	}{{1000, 0.9}, {2, 3.0 / 12}} {
		l := newLoop(context.Background(), testEnv(), &o, &data{}, eng, arch, 1, trainState{Step: c.step})
		for _, tn := range l.ema.Tensors {
			for j := range tn.Data {
				tn.Data[j] = 1
			}
		}
		l.updateEMA()
		for i, tn := range l.ema.Tensors {
			for j, v := range tn.Data {
				want := c.decay + (1-c.decay)*float64(p.Tensors[i].Data[j])
				if math.Abs(float64(v)-want) > 1e-6 {
					t.Fatalf("step %d: %s[%d] = %g, want %g", c.step, tn.Name, j, v, want)
				}
			}
		}
	}
}

// TestTrainEMA: with --ema-decay the validated and saved weights are the
// average (the checkpoint reproduces the reported best val RMSE, and
// differs from a run without it), and an interrupted run resumes to the
// same weights as an uninterrupted one (the average is in the optimizer
// state).
func TestTrainEMA(t *testing.T) {
	win := windowsFile(t, traintest.Default())
	dir := t.TempDir()
	o := smallOptions(win, filepath.Join(dir, "ema.safetensors"))
	o.Epochs, o.Patience, o.EMADecay = 4, 0, 0.95
	res, err := Run(context.Background(), testEnv(), o)
	if err != nil {
		t.Fatal(err)
	}
	plain := o
	plain.Out, plain.EMADecay = filepath.Join(dir, "plain.safetensors"), 0
	pres, err := Run(context.Background(), testEnv(), plain)
	if err != nil {
		t.Fatal(err)
	}
	if tensorsEqual(t, o.Out, plain.Out) || res.History[0].ValRMSE == pres.History[0].ValRMSE {
		t.Fatal("--ema-decay changed neither the saved weights nor the validation")
	}
	for i := range res.History {
		if res.History[i].TrainLoss != pres.History[i].TrainLoss {
			t.Fatalf("epoch %d: the average changed training itself (train loss %g vs %g)", i+1, res.History[i].TrainLoss, pres.History[i].TrainLoss)
		}
	}
	ck, err := model.Load(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	checkValRMSE(t, win, ck, *res.BestValRMSE)

	cut := o
	cut.Out = filepath.Join(dir, "cut.safetensors")
	if _, err := runCancelledAfter(cut, 16+5); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	cut.Resume = cut.Out
	if _, err := Run(context.Background(), testEnv(), cut); err != nil {
		t.Fatal(err)
	}
	if !tensorsEqual(t, o.Out, cut.Out) {
		t.Fatal("interrupted + resumed weights differ from an uninterrupted run with --ema-decay")
	}
}
