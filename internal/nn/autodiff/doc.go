// Package autodiff is the gorgonia engine of the LSTM RUL model (`train
// --engine gorgonia`): the design's LSTMRULPredictor written as a
// gorgonia.org/gorgonia v0.9.18 expression graph, differentiated by gorgonia's
// symbolic reverse mode (gorgonia.Grad) and trained with gorgonia's
// AdamSolver. It implements nn.Engine.
//
// It is the independent reference for the fused engine of package nn (whose
// backward pass is hand-written) and the quickest way to try another
// architecture: change the graph, and the gradients follow. It is slower than
// the fused engine and allocates heavily (see below); use it for checks and
// experiments, not for production training.
//
// # The graph
//
// The math is PyTorch's: nn.LSTM (batch_first input [B][T][F], gate order i,
// f, g, o, c_t = f⊙c_{t−1} + i⊙g, h_t = o⊙tanh(c_t), zero initial state),
// stacked layers with the inter-layer dropout applied to h_t of every layer
// but the last, then h_T of the last layer → fc1 → ReLU → dropout → fc2,
// and the mean MSE or Huber(δ) loss (torch.nn.MSELoss, torch.nn.HuberLoss).
// The LSTM runs transposed (hidden × batch): z = W_ih·x_tᵀ + W_hh·h_{t−1}ᵀ +
// (b_ih + b_hh), so the parameters are single nodes in PyTorch's layout
// ([4H, in] with gate blocks as row ranges of z) and gradients come out in
// that layout with no reordering.
//
// The gate blocks are slices of z viewed as [4, H, B], not row ranges of z:
// gorgonia v0.9.18 hashes a slice's bounds as single bytes and merges nodes
// with equal hashes, so for H = 128 the row range 256:384 (the g gate) would
// silently become the node 0:128 (the i gate); see
// TestGorgoniaSliceHashCollision.
//
// Dropout comes in as mask inputs (nn.Masks, values 0 or 1/(1−p)), so that the
// fused engine, this engine and PyTorch can be given the same masks. The
// graph does not use gorgonia.Dropout: in v0.9.18 its backward pass divides
// the gradient of a kept element by p instead of 1−p (for p = 0.2 the
// gradient is 4× too large), see TestGorgoniaDropoutBackwardScale. Without
// masks (nil) the training graph applies no dropout.
//
// The graph is unrolled over the window, so its shape depends on the batch
// size and the window length: the engine compiles one graph and tape machine
// per (batch size, window length, train or predict) on first use and keeps
// it (at most Options.MaxGraphs, least recently used dropped), so an epoch's
// last partial batch compiles once, not every epoch. Compiling the training
// graph for B=32, T=50 (H=128, 2 layers) took 1.4–1.8 s on a loaded
// 2-core machine, several steps' worth. Predict splits batches larger than 256 windows.
//
// gorgonia's tape machine allocates every intermediate value afresh on each
// run (its Reset drops the registers), so a step allocates about the size of
// the unrolled forward and backward values: ≈135 MB for I=5, T=50, B=32 and
// ≈450 MB for I=14, T=30, B=256 (BenchmarkStep), and each cached graph keeps
// its last run's values alive until the next run.
//
// # Adam: gorgonia's AdamSolver against torch.optim.Adam
//
// Steps use gorgonia's AdamSolver. Its update is torch.optim.Adam's (PyTorch
// 1.13, amsgrad=False): m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g², and
// w ← w − lr·m̂/(√v̂ + ε) with m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ), which is
// PyTorch's w − (lr/(1−β1ᵗ))·m/(√v/√(1−β2ᵗ) + ε): ε sits outside the square
// root and after the bias correction in both. The differences, and what this
// engine does about them:
//
//   - Weight decay: the solver's WithL2Reg(λ) adds λ·w to the gradient before
//     the moment updates, exactly as torch.optim.Adam's weight_decay (L2, not
//     AdamW's decoupled decay). Used as is.
//   - Clipping: the solver's WithClip(c) clamps every gradient element to
//     [−c, c]; PyTorch's usual clipping is torch.nn.utils.clip_grad_norm_,
//     which rescales the whole gradient by c/(‖g‖₂ + 1e-6) when that is < 1.
//     The engine does the latter itself before solver.Step (so, as in
//     PyTorch, clipping acts on the raw gradient and weight decay is added
//     after it) and never sets WithClip.
//   - The solver also has WithBatchSize (divides the gradient by the batch
//     size) and WithL1Reg, which torch.optim.Adam does not; unused. PyTorch's
//     amsgrad and maximize have no gorgonia counterpart; nn.Adam has neither.
//   - Learning rate: the solver has no setter, but a SolverOpt is a plain
//     function of the solver, so SetLR applies WithLearnRate(lr) to the live
//     solver and keeps its moments.
//   - State: the step count and the moment estimates are unexported fields
//     of the solver (its moments live in a private cache indexed by the
//     position of each parameter in the slice given to Step). The engine
//     counts steps itself; OptimizerState returns that count with nil
//     moments, and SetOptimizerState accepts only a fresh state (step 0,
//     zero or nil moments) and otherwise returns ErrOptimizerState. Resuming
//     a run exactly needs the fused engine.
//   - Rounding: the float32 solver computes 1−β and the bias corrections in
//     float64 and rounds them to float32; PyTorch keeps them as Python floats.
//     Over six steps the parameter updates agree to about 1e-5 relative
//     (TestAdamVsTorch requires 1e-3).
//   - The solver consumes the gradient (squares it in place, then zeroes it).
//     gorgonia's gradient values may alias: b_ih and b_hh enter the graph
//     only through their sum, so gorgonia.Grad returns the same gradient
//     node for both, and the solver would see a zeroed gradient for b_hh.
//     The engine therefore copies (and clips) the gradients into tensors of
//     its own and hands those to the solver.
//
// # Tests
//
// Every parameter's gradient of a float64 graph is checked against central
// finite differences (MSE and Huber, with masks); gradients, loss and
// forward pass against PyTorch on the same weights, batch and masks (float64
// to 1e-12, measured 1e-15; float32 to 1e-4, measured 5e-7 relative;
// testdata/masked_ref.py, on tools/torchref's model class, run by Debian's
// /usr/bin/python3); Adam steps with weight decay, active norm clipping and a
// learning-rate change against torch.optim.Adam.
package autodiff
