#!/usr/bin/python3
"""Golden metrics for evaluate's tests, computed once with Debian's scikit-learn.

Regenerate with:  go test ./evaluate -run TestSklearnGolden -update
(which runs: OPENBLAS_NUM_THREADS=1 /usr/bin/python3 testdata/sklearn_golden.py > testdata/sklearn_golden.json)

Each case holds its input vectors (so the Go test reads exactly these floats) and:
  - mae, rmse, r2 from sklearn.metrics (r2 with sklearn's default force_finite: a constant
    truth gives 1.0 or 0.0 there; evaluate reports null instead, and the test checks that);
  - score (PHM08), early/late rates and critical accuracy in plain numpy (sklearn has none);
  - report: classification_report(labels=['critical','warning','normal'], zero_division=0),
    the classes named correctly, and confusion_matrix with the same label order;
  - design_report: classification_report(target_names=['critical','warning','normal'],
    zero_division=0) exactly as the design called it (no labels=): sklearn sorts the string
    labels to critical, normal, warning and attaches the names in that order.
"""
import json
import sys

import numpy as np
import sklearn
from sklearn.metrics import (accuracy_score, classification_report, confusion_matrix,
                             mean_absolute_error, mean_squared_error, r2_score)

CRITICAL, WARNING, TOL = 10.0, 50.0, 5.0
NAMES = ["critical", "warning", "normal"]


def classify(v):
    return ["critical" if x < CRITICAL else "warning" if x < WARNING else "normal" for x in v]


def case(name, truth, pred, design=True):
    t = np.asarray(truth, dtype=np.float64)
    p = np.asarray(pred, dtype=np.float64)
    d = p - t
    crit = t < CRITICAL
    yt, yp = classify(t), classify(p)
    out = {
        "name": name,
        "truth": [float(x) for x in t],
        "pred": [float(x) for x in p],
        "mae": mean_absolute_error(t, p),
        "rmse": float(np.sqrt(mean_squared_error(t, p))),
        "r2_sklearn": r2_score(t, p),
        "score": float(np.sum(np.where(d < 0, np.exp(-d / 13) - 1, np.exp(d / 10) - 1))),
        "early_rate": float(np.mean(p < t)),
        "late_rate": float(np.mean(p > t)),
        "critical_n": int(crit.sum()),
        "critical_accuracy": float(np.mean(np.abs(d[crit]) < TOL)) if crit.any() else None,
        "report": classification_report(yt, yp, labels=NAMES, output_dict=True, zero_division=0),
        "confusion": confusion_matrix(yt, yp, labels=NAMES).tolist(),
        "accuracy": accuracy_score(yt, yp),
    }
    if design:
        out["design_report"] = classification_report(yt, yp, target_names=NAMES, output_dict=True, zero_division=0)
    return out


def main():
    rng = np.random.RandomState(20240601)
    n = 300
    truth = np.round(rng.uniform(0, 125, n), 2)
    pred = np.round(np.clip(truth + rng.normal(3, 14, n), 0, None), 3)
    # Fleet-like: many samples near failure, a few wildly late predictions.
    truth2 = np.round(np.concatenate([rng.uniform(0, 12, 40), rng.uniform(12, 100, 60)]), 1)
    pred2 = np.round(truth2 + rng.normal(-2, 6, 100) + np.where(rng.uniform(size=100) < 0.05, 40, 0), 2)
    cases = [
        case("hand", [0, 5, 12, 30, 60, 100], [2, 4, 20, 25, 70, 100]),
        case("random", truth, pred),
        case("fleet", truth2, pred2),
        # Nobody is predicted critical: precision of critical divides by zero.
        case("no_critical_predicted", [1, 3, 20, 30, 70, 90], [15, 12, 20, 60, 70, 40]),
        # Constant truth: R² undefined; sklearn says 0.0 (force_finite).
        case("constant_truth", [50, 50, 50, 50], [40, 50, 60, 55], design=False),
        # No critical sample at all: critical accuracy undefined.
        case("no_critical", [20, 30, 60, 80, 120], [25, 28, 70, 75, 110], design=False),
    ]
    json.dump({"sklearn": sklearn.__version__, "numpy": np.__version__,
               "critical_hours": CRITICAL, "warning_hours": WARNING, "tolerance_hours": TOL,
               "cases": cases}, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
