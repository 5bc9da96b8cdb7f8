#!/usr/bin/python3
"""PyTorch reference for the gorgonia engine's tests, with dropout masks.

Reads a JSON list of cases on stdin, writes a JSON list of results on stdout:

  in:  arch {input_size, hidden_size, num_layers, fc_size, dropout}, dtype,
       params {state_dict name: flat list}, b, t, x [B][T][F] flat, y [B],
       inter [[T][B][H] flat per layer] or null, fc [B][FC] flat or null,
       huber (0 = MSE), adam {lr, beta1, beta2, eps, weight_decay, clip_norm},
       steps (Adam steps on the same batch), lrs (lr per step, optional)
  out: loss, grads {name: flat}, out (eval forward, no dropout),
       step_losses [steps], params_after {name: flat}

The model is tools/torchref's LSTMRULPredictor (the design's class). tools/
torchref runs it without dropout; here the dropout masks are inputs: the
LSTM runs one layer at a time (as nn.LSTM does internally) with the mask on
the output of every layer but the last; without masks the script also runs
the stock multi-layer nn.LSTM and checks that both agree. Inputs are float32
values (Go writes the shortest decimal that round-trips as float32), so they
are parsed as float32 first and only then widened for a float64 case.
"""
import json
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "..", "tools", "torchref"))

import torch  # noqa: E402
from torch import nn  # noqa: E402

import torchref  # noqa: E402  (the repository's PyTorch oracle: the design's model)

torch.set_num_threads(1)


def forward(m, x, inter=None, fcmask=None):
    """The design's forward pass on torchref.LSTMRULPredictor m with given
    dropout masks. inter None: the stock nn.LSTM (eval); otherwise a list of
    [B,T,H] masks (None entries: no dropout there) and the layer-by-layer LSTM;
    fcmask: [B,FC] mask or None."""
    if inter is None:
        _, (h_n, _) = m.lstm(x)
        h = h_n[-1]
    else:
        h = layerwise(m.lstm, x, inter)
    a = m.relu(m.fc1(h))
    if fcmask is not None:
        a = a * fcmask
    return m.fc2(a).squeeze(-1)


def layerwise(lstm, x, inter):
    """nn.LSTM's stacked layers one at a time, with inter[k] multiplying the
    output sequence of layer k (as nn.LSTM's dropout does); returns h_T of
    the last layer."""
    seq = x
    L = lstm.num_layers
    for k in range(L):
        w_ih = getattr(lstm, f"weight_ih_l{k}")
        w_hh = getattr(lstm, f"weight_hh_l{k}")
        b_ih = getattr(lstm, f"bias_ih_l{k}")
        b_hh = getattr(lstm, f"bias_hh_l{k}")
        B, T, _ = seq.shape
        H = w_hh.shape[1]
        h = seq.new_zeros(B, H)
        c = seq.new_zeros(B, H)
        outs = []
        for t in range(T):
            z = seq[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
            i, f, g, o = z.chunk(4, dim=1)
            i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
            c = f * c + i * g
            h = o * c.tanh()
            outs.append(h)
        seq = torch.stack(outs, dim=1)
        if k < L - 1 and inter[k] is not None:
            seq = seq * inter[k]
    return h


def main():
    json.dump([run(case) for case in json.load(sys.stdin)], sys.stdout)


def run(case):
    a = case["arch"]
    dt = torch.float64 if case.get("dtype") == "float64" else torch.float32
    B, T, F, H, FC = case["b"], case["t"], a["input_size"], a["hidden_size"], a["fc_size"]
    L = a["num_layers"]
    def tensor(values):
        return torch.tensor(values, dtype=torch.float32).to(dt)

    m = torchref.LSTMRULPredictor(F, H, L, a["dropout"], FC).to(dt)
    sd = m.state_dict()
    m.load_state_dict({k: tensor(case["params"][k]).reshape(v.shape)
                       for k, v in sd.items()}, strict=True)
    x = tensor(case["x"]).reshape(B, T, F)
    y = tensor(case["y"])
    inter = [None] * (L - 1)
    if case.get("inter"):
        # Masks.Inter[k] is [T][B][H]; the layer output is [B][T][H].
        inter = [tensor(mk).reshape(T, B, H).transpose(0, 1) for mk in case["inter"]]
    fcmask = None
    if case.get("fc"):
        fcmask = tensor(case["fc"]).reshape(B, FC)
    huber = case.get("huber", 0)
    lossf = nn.HuberLoss(delta=huber) if huber > 0 else nn.MSELoss()

    m.eval()
    with torch.no_grad():
        out = forward(m, x)
        if inter == [None] * (L - 1):
            ref = layerwise(m.lstm, x, inter)
            stock = m.lstm(x)[1][0][-1]
            assert torch.allclose(ref, stock, rtol=1e-5, atol=1e-6), "layerwise LSTM differs from nn.LSTM"
    m.train()

    def loss_of():
        return lossf(forward(m, x, inter, fcmask), y)

    m.zero_grad()
    loss = loss_of()
    loss.backward()
    res = {
        "loss": loss.item(),
        "grads": {k: p.grad.reshape(-1).tolist() for k, p in m.named_parameters()},
        "out": out.tolist(),
    }

    ad = case.get("adam")
    steps = case.get("steps", 0)
    if ad and steps:
        opt = torch.optim.Adam(m.parameters(), lr=ad["lr"], betas=(ad["beta1"], ad["beta2"]),
                               eps=ad["eps"], weight_decay=ad["weight_decay"])
        lrs = case.get("lrs") or [ad["lr"]] * steps
        res["step_losses"] = []
        for s in range(steps):
            for g in opt.param_groups:
                g["lr"] = lrs[s]
            opt.zero_grad()
            loss = loss_of()
            loss.backward()
            if ad["clip_norm"] > 0:
                nn.utils.clip_grad_norm_(m.parameters(), ad["clip_norm"])
            opt.step()
            res["step_losses"].append(loss.item())
        res["params_after"] = {k: p.detach().reshape(-1).tolist() for k, p in m.named_parameters()}
    return res


if __name__ == "__main__":
    main()
