"""PyTorch oracle for model.Params.Forward and the ONNX export's interop tests.

usage: torch_forward.py model.safetensors x.f32 B T out.f32

Loads the checkpoint into the design's LSTMRULPredictor with PyTorch's strict
load_state_dict (tools/torchref: its safetensors reader and model class), or a
ridge checkpoint into an nn.Linear, runs it in eval mode in float64 on x
[B][T][F] (raw little-endian float32; scaled inputs, as windows.parquet stores
them; ridge: T = 1) and writes the B outputs as float32.
"""
import json
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "torchref"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import torchref  # noqa: E402


class Ridge(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.ridge = nn.Linear(n, 1)

    def forward(self, x):
        return self.ridge(x.reshape(x.shape[0], -1))


def main():
    ckpt, xpath, B, T, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    state, meta = torchref.st_load(ckpt)
    arch = json.loads(meta["modax.arch"])
    if arch["type"] == "ridge":
        m = Ridge(arch["input_size"])
        m.load_state_dict(state, strict=True)
    else:
        m, _ = torchref.load_model(ckpt)
    m = m.double().eval()
    x = np.fromfile(xpath, dtype="<f4").reshape(B, T, arch["input_size"])
    with torch.no_grad():
        y = m(torch.from_numpy(x.astype(np.float64))).reshape(-1).numpy()
    y.astype("<f4").tofile(out)


if __name__ == "__main__":
    main()
