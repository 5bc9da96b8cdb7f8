#!/usr/bin/python3
"""PyTorch reference throughput for the fused engine's benchmarks.

Trains the design's LSTMRULPredictor (hidden 128, 2 layers, fc 64, dropout
0.2, Adam, MSE) on random batches and prints one JSON line per shape with
samples/s (wall clock) and CPU seconds per step (the machine may be shared),
and inference windows/s (batch 256) and single-window latency.

  OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/torchref/bench.py [--threads N] [--seconds S]
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from torchref import LSTMRULPredictor  # noqa: E402


def measure(fn, seconds):
    fn()  # warm-up
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n, time.perf_counter() - t0, time.process_time() - c0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--seconds", type=float, default=5)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    for inp, t, b in ((5, 50, 32), (14, 30, 256)):
        m = LSTMRULPredictor(inp, 128, 2, 0.2, 64)
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        crit = torch.nn.MSELoss()
        x, y = torch.randn(b, t, inp), torch.randn(b)

        def step():
            opt.zero_grad()
            loss = crit(m(x).reshape(-1), y)
            loss.backward()
            opt.step()

        m.train()
        n, wall, cpu = measure(step, a.seconds)
        res = {"shape": f"I{inp}xT{t}xB{b}", "threads": a.threads, "train_samples_per_s": n * b / wall,
               "train_cpu_ms_per_step": 1000 * cpu / n}
        m.eval()
        for bs in (256, 1):
            xb = torch.randn(bs, t, inp)

            def fwd():
                with torch.no_grad():
                    m(xb)

            n, wall, cpu = measure(fwd, a.seconds / 2)
            if bs == 1:
                res["predict_latency_ms"] = 1000 * wall / n
                res["predict_latency_cpu_ms"] = 1000 * cpu / n
            else:
                res["predict_windows_per_s"] = n * bs / wall
        print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
