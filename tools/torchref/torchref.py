#!/usr/bin/python3
"""PyTorch reference for modax-ml (run with Debian's /usr/bin/python3).

The design's LSTMRULPredictor, a dependency-free safetensors reader/writer
(Debian has no python3-safetensors: the format is an 8-byte little-endian
header length, a JSON header, raw little-endian tensors), and subcommands the
Go tests call to check our engines, predictor and checkpoints against PyTorch:

  forward --model M --data D --out O     O["y"] = model(D["x"])      (eval mode)
  grad    --model M --data D --out O     O = gradients of the batch loss D["x"], D["y"]
  train   --model M --data D --out O [--lr --weight-decay --clip-norm --huber]
          D["x"] [S,B,T,F], D["y"] [S,B]: S Adam steps, dropout 0;
          O["losses"] [S] and the final weights (state_dict names)

M is a modax-ml checkpoint (model.safetensors): its __metadata__ "modax.arch"
gives the architecture and PyTorch's strict load_state_dict must accept it.
Set OPENBLAS_NUM_THREADS=1 before running (torch's OpenBLAS and OpenMP threads
otherwise fight on small machines).
"""
import argparse
import json
import os
import struct
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

torch.set_num_threads(1)

_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def st_load(path):
    """Read a safetensors file: ({name: torch.Tensor}, metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        lo, hi = e["data_offsets"]
        arr = np.frombuffer(data[lo:hi], dtype=_DTYPES[e["dtype"]]).reshape(e["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out, meta


def st_save(path, tensors, meta=None):
    """Write float32 tensors as safetensors (names sorted, as safetensors does)."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name].detach().cpu().numpy().astype("<f4"))
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if meta:
        header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


class LSTMRULPredictor(nn.Module):
    """The design's model: stacked LSTM -> last hidden state -> fc1 -> ReLU ->
    dropout -> fc2."""

    def __init__(self, input_size, hidden_size=128, num_layers=2, dropout=0.2, fc_size=64):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0)
        self.fc1 = nn.Linear(hidden_size, fc_size)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(fc_size, 1)

    def forward(self, x):
        _, (h_n, _) = self.lstm(x)
        out = h_n[-1]
        out = self.dropout(self.relu(self.fc1(out)))
        return self.fc2(out)


def load_model(path, dropout=None):
    """Build LSTMRULPredictor from a checkpoint's metadata and load its weights
    with strict=True."""
    state, meta = st_load(path)
    arch = json.loads(meta["modax.arch"])
    if arch["type"] != "lstm":
        raise SystemExit(f"{path}: model type {arch['type']}, want lstm")
    d = arch["dropout"] if dropout is None else dropout
    m = LSTMRULPredictor(arch["input_size"], arch["hidden_size"], arch["num_layers"], d, arch["fc_size"])
    m.load_state_dict(state, strict=True)
    return m, meta


def loss_fn(huber):
    return nn.HuberLoss(delta=huber) if huber > 0 else nn.MSELoss()


def cmd_forward(a):
    m, _ = load_model(a.model)
    m.eval()
    data, _ = st_load(a.data)
    with torch.no_grad():
        y = m(data["x"]).reshape(-1)
    st_save(a.out, {"y": y})


def cmd_grad(a):
    m, _ = load_model(a.model, dropout=0.0)
    m.train()
    data, _ = st_load(a.data)
    loss = loss_fn(a.huber)(m(data["x"]).reshape(-1), data["y"])
    loss.backward()
    out = {name: p.grad for name, p in m.named_parameters()}
    out["loss"] = loss.detach().reshape(1)
    st_save(a.out, out)


def cmd_train(a):
    m, _ = load_model(a.model, dropout=0.0)
    m.train()
    data, _ = st_load(a.data)
    xs, ys = data["x"], data["y"]
    opt = torch.optim.Adam(m.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=a.weight_decay)
    crit = loss_fn(a.huber)
    losses = []
    for s in range(xs.shape[0]):
        opt.zero_grad()
        loss = crit(m(xs[s]).reshape(-1), ys[s])
        loss.backward()
        if a.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(m.parameters(), a.clip_norm)
        opt.step()
        losses.append(loss.item())
    out = dict(m.state_dict())
    out["losses"] = torch.tensor(losses, dtype=torch.float32)
    st_save(a.out, out)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, fn in (("forward", cmd_forward), ("grad", cmd_grad), ("train", cmd_train)):
        s = sub.add_parser(name)
        s.add_argument("--model", required=True)
        s.add_argument("--data", required=True)
        s.add_argument("--out", required=True)
        s.add_argument("--huber", type=float, default=0.0)
        s.add_argument("--lr", type=float, default=1e-3)
        s.add_argument("--weight-decay", type=float, default=0.0)
        s.add_argument("--clip-norm", type=float, default=0.0)
        s.set_defaults(fn=fn)
    a = p.parse_args(argv)
    a.fn(a)


if __name__ == "__main__":
    main(sys.argv[1:])
