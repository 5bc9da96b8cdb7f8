"""PyTorch oracle for model.Params.Forward.

usage: forward_torch.py model.safetensors x.f32 B T out.f32

Builds the design's LSTMRULPredictor (or the ridge nn.Linear) from the
checkpoint's architecture metadata, loads the state_dict strictly from the
safetensors file (parsed by hand: Debian has no python3-safetensors), runs it in
eval mode in float64 on x [B][T][F] (raw little-endian float32) and writes the B
outputs as float32.
"""
import json
import os
import struct
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402


def load_safetensors(path):
    with open(path, "rb") as f:
        b = f.read()
    (n,) = struct.unpack("<Q", b[:8])
    header = json.loads(b[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    data = b[8 + n :]
    sd = {}
    for name, e in header.items():
        assert e["dtype"] == "F32", e
        lo, hi = e["data_offsets"]
        sd[name] = torch.from_numpy(np.frombuffer(data[lo:hi], dtype="<f4").reshape(e["shape"]).copy())
    return sd, meta


class LSTMRULPredictor(nn.Module):
    def __init__(self, input_size, hidden_size=128, num_layers=2, dropout=0.2, fc_size=64):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0)
        self.fc1 = nn.Linear(hidden_size, fc_size)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(fc_size, 1)

    def forward(self, x):
        _, (h_n, _) = self.lstm(x)
        out = self.fc1(h_n[-1])
        out = self.relu(out)
        out = self.dropout(out)
        return self.fc2(out)


class Ridge(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.ridge = nn.Linear(n, 1)

    def forward(self, x):
        return self.ridge(x.reshape(x.shape[0], -1))


def main():
    ckpt, xpath, B, T, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    sd, meta = load_safetensors(ckpt)
    arch = json.loads(meta["modax.arch"])
    if arch["type"] == "ridge":
        m = Ridge(arch["input_size"])
    else:
        m = LSTMRULPredictor(arch["input_size"], arch["hidden_size"], arch["num_layers"], arch["dropout"], arch["fc_size"])
    m.load_state_dict(sd, strict=True)
    m = m.double().eval()
    x = np.fromfile(xpath, dtype="<f4").reshape(B, T, arch["input_size"])
    with torch.no_grad():
        y = m(torch.from_numpy(x.astype(np.float64))).reshape(-1).numpy()
    y.astype("<f4").tofile(out)


if __name__ == "__main__":
    main()
