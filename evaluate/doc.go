// Package evaluate is the evaluate stage: it reads predictions
// (predictions.parquet) and writes metrics.json, report.md, a self-contained
// report.html and PNG plots.
//
// Metrics, per split (test, val, train) and per device:
//
//   - MAE, RMSE, R², mean error (bias) on the RUL the model was trained for
//     (capped at the horizon), and the same on the raw (uncapped) RUL where it
//     is known. R² is null when the truth is constant (its denominator is 0).
//   - The PHM08 / NASA asymmetric score Σ exp(−d/13)−1 (d < 0) + Σ exp(d/10)−1
//     (d ≥ 0), d = predicted − true.
//   - Early rate (predicted < true: failure expected before it happens) and
//     late rate (predicted > true). The design document's code computed
//     `y_pred > y_true` and called it "early"; that is the late case. Both
//     rates are reported under their correct names.
//   - Critical-window accuracy: of the samples with true RUL below the
//     critical threshold, the share predicted within a tolerance (5 h by
//     default); null when there are none.
//   - Health classification from the RUL thresholds (critical, warning,
//     normal): per-class precision, recall, F1 and support, accuracy, macro
//     and weighted averages and the confusion matrix, in that class order.
//     The design passed target_names=['critical','warning','normal'] to
//     scikit-learn's classification_report with string labels, which
//     scikit-learn sorts (critical, normal, warning), so the rows named
//     "warning" and "normal" there belonged to the other class. Here every
//     row carries the name of its own class (see TestDesignTargetNamesBug).
//
// A NaN or infinite prediction is an error naming the row, not a metric.
package evaluate
