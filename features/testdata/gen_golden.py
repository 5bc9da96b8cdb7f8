"""Golden values for features tests: per-window statistics (scipy.stats,
numpy), Welch PSD features (scipy.signal.welch) and the design's random split
(sklearn.model_selection.train_test_split twice).

Run by `go test ./features -run Golden -update` with Debian's /usr/bin/python3
(python3-scipy, python3-sklearn); writes golden.json next to this script.
"""
import json
import os
import warnings

import numpy as np
import scipy
import scipy.signal
import scipy.stats
import sklearn
from sklearn.model_selection import train_test_split

rng = np.random.RandomState(20240501)


def case(name, x, fs=10.0, nperseg=256):
    x = np.asarray(x, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nperseg > len(x), constant input
        f, p = scipy.signal.welch(x, fs=fs, nperseg=min(nperseg, len(x)))
        skew = float(scipy.stats.skew(x))
        kurt = float(scipy.stats.kurtosis(x))
    if np.isnan(skew):  # constant input: documented as 0 in Go
        skew, kurt = 0.0, 0.0
    return {
        "name": name,
        "fs": fs,
        "nperseg": nperseg,
        "x": x.tolist(),
        "mean": float(np.mean(x)),
        "std": float(np.std(x)),
        "min": float(np.min(x)),
        "max": float(np.max(x)),
        "range": float(np.ptp(x)),
        "skew": skew,
        "kurtosis": kurt,
        "roc": float((x[-1] - x[0]) / len(x)),
        "psd_peak_hz": float(f[np.argmax(p)]),
        "psd_energy": float(np.sum(p)),
        "psd": p.tolist(),
    }


t = np.arange(600)
cases = [
    case("normal-50", rng.normal(3.0, 2.0, 50)),
    case("sine-50", np.sin(2 * np.pi * 1.7 * t[:50] / 10) + 0.1 * rng.normal(size=50)),
    case("trend-51-odd", 0.05 * t[:51] + np.sin(2 * np.pi * 3.1 * t[:51] / 10)),
    case("skewed-30", rng.exponential(1.5, 30)),
    case("short-7", rng.normal(size=7)),
    case("two-points", [1.0, 4.0]),
    case("constant-20", np.full(20, 518.67)),
    case("multi-segment-600", np.sin(2 * np.pi * 2.3 * t / 10) + rng.normal(size=600)),
    case("nperseg-64-300", np.cos(2 * np.pi * 0.9 * t[:300] / 25) + 0.3 * rng.normal(size=300), fs=25.0, nperseg=64),
    case("nperseg-63-odd-200", rng.normal(size=200).cumsum(), fs=1.0, nperseg=63),
]

splits = []
for n, test_size, val_size, seed in [(10, 0.2, 0.2, 42), (100, 0.2, 0.2, 42), (1000, 0.2, 0.2, 42),
                                     (12345, 0.2, 0.2, 7), (97, 0.3, 0.25, 0), (50, 0.2, 0.0, 42)]:
    idx = np.arange(n)
    rest, test = train_test_split(idx, test_size=test_size, random_state=seed)
    if val_size > 0:
        train, val = train_test_split(rest, test_size=val_size, random_state=seed)
    else:
        train, val = rest, np.array([], dtype=int)
    codes = np.zeros(n, dtype=int)
    codes[train], codes[val], codes[test] = 1, 2, 3
    splits.append({"n": n, "test_size": test_size, "val_size": val_size, "seed": seed, "codes": "".join(str(c) for c in codes)})

out = {
    "generator": "testdata/gen_golden.py",
    "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__},
    "stats": cases,
    "splits": splits,
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden.json")
with open(path, "w") as fh:
    json.dump(out, fh, indent=1, sort_keys=True)
    fh.write("\n")
