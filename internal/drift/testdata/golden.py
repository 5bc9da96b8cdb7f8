#!/usr/bin/python3
"""Golden values for internal/drift, computed with numpy and scipy.

Run by `go test ./internal/drift -run TestGolden -update` (or by hand:
OPENBLAS_NUM_THREADS=1 /usr/bin/python3 golden.py > golden.json). The inputs
are generated here with a seeded generator and stored in the golden file, so
the Go test needs no Python.

Definitions (the same as drift.go):
  quantiles  numpy.quantile(ref, i/100 for i in 0..100), default 'linear' method
  edges      distinct interior deciles (quantiles[10], [20], ..., [90])
  bins       right-closed: index = numpy.searchsorted(edges, x, side='left')
  psi        sum(rel_entr(a, e) + rel_entr(e, a)) = sum((a - e) * ln(a / e)),
             shares floored at 1e-4
  ks         scipy.stats.ks_2samp(quantiles, cur).statistic
  ks_full    scipy.stats.ks_2samp(ref, cur).statistic (the full reference)
"""
import json
import sys

import numpy as np
from scipy import special, stats

EPS = 1e-4


def case(name, ref, cur):
    ref = np.sort(np.asarray(ref, dtype=np.float64))
    cur = np.sort(np.asarray(cur, dtype=np.float64))
    probs = np.arange(101) / 100.0
    q = np.quantile(ref, probs)
    edges = []
    for e in q[10:100:10]:
        if not edges or e > edges[-1]:
            edges.append(float(e))
    edges = np.asarray(edges)

    def shares(x):
        idx = np.searchsorted(edges, x, side="left")
        return np.bincount(idx, minlength=len(edges) + 1) / len(x)

    e, a = shares(ref), shares(cur)
    ef, af = np.maximum(e, EPS), np.maximum(a, EPS)
    psi = float(np.sum(special.rel_entr(af, ef) + special.rel_entr(ef, af)))
    vals, counts = np.unique(ref, return_counts=True)
    return {
        "name": name,
        "ref": ref.tolist(),
        "cur": cur.tolist(),
        "mean": float(np.mean(ref)),
        "std": float(np.std(ref)),
        "top_share": float(counts.max() / len(ref)),
        "quantiles": q.tolist(),
        "edges": edges.tolist(),
        "proportions": e.tolist(),
        "cur_proportions": a.tolist(),
        "psi": psi,
        "ks": float(stats.ks_2samp(q, cur).statistic),
        "ks_full": float(stats.ks_2samp(ref, cur).statistic),
    }


def main():
    rng = np.random.default_rng(20240601)
    r = lambda x: np.round(x, 6)
    cases = [
        case("normal, no drift", r(rng.normal(0, 1, 500)), r(rng.normal(0, 1, 400))),
        case("normal, shifted and wider", r(rng.normal(0, 1, 500)), r(rng.normal(0.5, 1.2, 400))),
        case("discrete with ties", rng.choice([0, 1, 2, 3, 4], 300, p=[0.5, 0.2, 0.1, 0.1, 0.1]).astype(float),
             rng.choice([0, 1, 2, 3, 4], 250, p=[0.2, 0.2, 0.2, 0.2, 0.2]).astype(float)),
        case("constant reference", np.full(200, 7.0), np.concatenate([np.full(150, 7.0), np.full(50, 8.0)])),
        case("tiny samples", [3.0, 1.0, 2.0, 5.0, 4.0], [2.5, 6.0, 0.5]),
        case("current beyond the reference", r(rng.uniform(0, 1, 300)), r(rng.uniform(2, 3, 100))),
        case("skewed (lognormal) sensor", r(rng.lognormal(3, 0.5, 1000)), r(rng.lognormal(3.1, 0.5, 800))),
    ]
    json.dump({"generator": "internal/drift/testdata/golden.py", "numpy": np.__version__,
               "scipy": __import__("scipy").__version__, "cases": cases}, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
