package evaluate

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"fmt"
	htmltemplate "html/template"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"text/template"

	"github.com/modax/modax-ml/internal/model"
)

type splitView struct {
	Name string
	*SplitMetrics
}

type plotView struct {
	*Plot
	Rel     string // path relative to the report
	DataURL htmltemplate.URL
}

type historyView struct {
	Epochs               int
	BestEpoch            int
	BestVal              float64
	FinalTrain, FinalVal float64
}

type reportData struct {
	M           *Metrics
	Splits      []splitView
	Primary     string
	PrimaryM    *SplitMetrics
	Worst, Best []DeviceMetrics
	Plots       []plotView
	History     *historyView
	Compare     *Comparison
	Warnings    []string
	Importance  *Importance
}

func summarizeHistory(h []model.Epoch) *historyView {
	if len(h) == 0 {
		return nil
	}
	v := &historyView{Epochs: len(h), BestVal: math.Inf(1), FinalTrain: h[len(h)-1].TrainLoss, FinalVal: h[len(h)-1].ValLoss}
	for _, e := range h {
		if e.ValLoss < v.BestVal {
			v.BestVal, v.BestEpoch = e.ValLoss, e.Epoch
		}
	}
	return v
}

// worstBestDevices returns up to k devices of split with the highest and the
// lowest RMSE.
func worstBestDevices(ds []DeviceMetrics, split string, k int) (worst, best []DeviceMetrics) {
	var in []DeviceMetrics
	for _, d := range ds {
		if d.Split == split && d.N > 0 {
			in = append(in, d)
		}
	}
	slices.SortStableFunc(in, func(a, b DeviceMetrics) int { return cmp.Compare(b.RMSE, a.RMSE) })
	worst = in[:min(k, len(in))]
	for i := len(in) - 1; i >= 0 && len(best) < k; i-- {
		best = append(best, in[i])
	}
	return worst, best
}

var funcs = map[string]any{
	"num": func(f Float) string { return fmtNum(f) },
	"f3": func(f Float) string {
		if !f.Valid() {
			return "—"
		}
		return fmt.Sprintf("%.3f", float64(f))
	},
	"pct": func(f Float) string {
		if !f.Valid() {
			return "—"
		}
		return fmt.Sprintf("%.1f%%", 100*float64(f))
	},
	"g":     func(v float64) string { return fmt.Sprintf("%.4g", v) },
	"delta": fmtDelta,
	"classes": func(c *Classification) []classRow {
		return []classRow{{"critical", c.Critical}, {"warning", c.Warning}, {"normal", c.Normal}}
	},
	"confusion": func(c *Classification) []confRow {
		out := make([]confRow, 3)
		for i := range 3 {
			out[i] = confRow{Label: c.Labels[i], Cells: c.Confusion[i][:]}
		}
		return out
	},
	"model":      func(m *Metrics) string { return modelName(m) },
	"intervals":  intervalRows,
	"bucketRows": bucketRows,
	"alertRows":  alertRows,
	"hours": func(f Float) string {
		if !f.Valid() {
			return "—"
		}
		return fmt.Sprintf("%.1f h", float64(f))
	},
}

// alertRow is one row of the reports' alert table.
type alertRow struct {
	Split string
	*AlertMetrics
}

// alertRows lists the splits' alert metrics for the reports (splits with
// lives only).
func alertRows(splits []splitView) []alertRow {
	var out []alertRow
	for _, s := range splits {
		if s.Alerts != nil && s.Alerts.Lives > 0 {
			out = append(out, alertRow{Split: s.Name, AlertMetrics: s.Alerts})
		}
	}
	return out
}

// bucketRow is one row of the reports' error-by-bucket table.
type bucketRow struct {
	Split, Title string
	BucketMetrics
}

// bucketRows flattens the splits' true-RUL buckets for the reports.
func bucketRows(splits []splitView) []bucketRow {
	var out []bucketRow
	for _, s := range splits {
		for _, b := range s.RULBuckets {
			out = append(out, bucketRow{Split: s.Name, Title: b.bucketTitle(), BucketMetrics: b})
		}
	}
	return out
}

// ivRow is one row of the reports' interval table: a level of a split, or
// one bucket of it (Bucket set).
type ivRow struct {
	Split, Bucket string
	Level         string
	N, Covered    int
	Coverage      Float
	Width         string
}

// intervalRows flattens the splits' interval coverage for the reports.
func intervalRows(splits []splitView) []ivRow {
	var out []ivRow
	for _, s := range splits {
		for _, iv := range s.Intervals {
			lv := fmt.Sprintf("%g %%", 100*iv.Level)
			out = append(out, ivRow{Split: s.Name, Level: lv, N: iv.N, Covered: iv.Covered, Coverage: iv.Coverage, Width: widthText(iv.MeanWidth)})
			for _, b := range iv.Buckets {
				out = append(out, ivRow{Split: s.Name, Bucket: bucketText(b), Level: lv, N: b.N, Covered: b.Covered, Coverage: b.Coverage, Width: widthText(b.MeanWidth)})
			}
		}
	}
	return out
}

type classRow struct {
	Name string
	ClassMetrics
}

type confRow struct {
	Label string
	Cells []int
}

const mdTemplate = `# Evaluation report

- created: {{.M.CreatedAt}}{{if .M.RunID}} (run {{.M.RunID}}){{end}}
- model: {{if .M.Model}}` + "`{{.M.Model.Path}}`" + ` {{.M.Model.ModelVersion}} sha256 ` + "`{{.M.Model.SHA256}}`" + `{{else}}unknown{{end}}
- predictions: ` + "`{{.M.Predictions.Path}}`" + `{{if .M.Windows}}; windows: ` + "`{{.M.Windows.Path}}`" + `{{end}}
- thresholds: critical < {{g .M.Thresholds.Critical}} h ≤ warning < {{g .M.Thresholds.Warning}} h ≤ normal; horizon {{num .M.HorizonHours}} h; critical tolerance {{g .M.CriticalToleranceHours}} h
{{range .Warnings}}
> **warning:** {{.}}
{{end}}
## Summary

| split | n | devices | MAE | RMSE | R² | bias | score | score/n | early | late | critical acc. (n) | class acc. | macro F1 |
|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|
{{range .Splits}}| {{.Name}} | {{.N}} | {{.Devices}} | {{f3 .MAE}} | {{f3 .RMSE}} | {{f3 .R2}} | {{f3 .Bias}} | {{num .Score}} | {{f3 .ScoreMean}} | {{pct .EarlyRate}} | {{pct .LateRate}} | {{pct .CriticalAccuracy}} ({{.CriticalN}}) | {{pct .Classification.Accuracy}} | {{f3 .Classification.MacroAvg.F1}} |
{{end}}
Against the raw (uncapped) RUL, where known:

| split | n_raw | MAE | RMSE | R² | bias | score |
|---|--:|--:|--:|--:|--:|--:|
{{range .Splits}}| {{.Name}} | {{.NRaw}} | {{f3 .MAERaw}} | {{f3 .RMSERaw}} | {{f3 .R2Raw}} | {{f3 .BiasRaw}} | {{num .ScoreRaw}} |
{{end}}{{with bucketRows .Splits}}
## Error by true-RUL bucket

The error of the windows whose true RUL (capped at the horizon) lies in each bucket; bias = mean(predicted − true).

| split | true RUL | n | MAE | RMSE | bias |
|---|---|--:|--:|--:|--:|
{{range .}}| {{.Split}} | {{.Title}} | {{.N}} | {{f3 .MAE}} | {{f3 .RMSE}} | {{f3 .Bias}} |
{{end}}{{end}}{{with alertRows .Splits}}
## Critical alerts

An alert is a window predicted critical (RUL < {{g $.M.Thresholds.Critical}} h). Lead time: the true RUL at a failing life's first alert while it was degrading (true RUL < {{g $.M.Thresholds.Warning}} h); a false alarm: an alert raised while the true class was normal.

| split | failing lives | alerted | never alerted | lead time mean | median | min | false alarms | device-days | false alarms / device-day |
|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|
{{range .}}| {{.Split}} | {{.FailingLives}} | {{.Alerted}} | {{.NeverAlerted}} ({{pct .NeverAlertedShare}}) | {{hours .LeadTimeMean}} | {{hours .LeadTimeMedian}} | {{hours .LeadTimeMin}} | {{.FalseAlarms}} | {{f3 .DeviceDays}} | {{f3 .FalseAlarmsPerDeviceDay}} |
{{end}}{{end}}{{with intervals .Splits}}
## Prediction intervals

Measured coverage of the prediction intervals: the share of windows whose true RUL lies in [rul_lower, rul_upper], against the level (the nominal coverage); per bucket of predicted RUL the same over the windows predicted in it.

| split | level | bucket of predicted RUL | n | covered | coverage | mean width |
|---|--:|---|--:|--:|--:|--:|
{{range .}}| {{.Split}} | {{.Level}} | {{if .Bucket}}{{.Bucket}}{{else}}all{{end}} | {{.N}} | {{.Covered}} | {{pct .Coverage}} | {{.Width}} |
{{end}}{{end}}
{{range .Splits}}
## Health classes: {{.Name}}

| class | precision | recall | F1 | support | predicted |
|---|--:|--:|--:|--:|--:|
{{range classes .Classification}}| {{.Name}} | {{f3 .Precision}} | {{f3 .Recall}} | {{f3 .F1}} | {{.Support}} | {{.Predicted}} |
{{end}}| accuracy | | | {{f3 .Classification.Accuracy}} | {{.N}} | |
| macro avg | {{f3 .Classification.MacroAvg.Precision}} | {{f3 .Classification.MacroAvg.Recall}} | {{f3 .Classification.MacroAvg.F1}} | {{.N}} | |
| weighted avg | {{f3 .Classification.WeightedAvg.Precision}} | {{f3 .Classification.WeightedAvg.Recall}} | {{f3 .Classification.WeightedAvg.F1}} | {{.N}} | |

Confusion matrix (rows: true class, columns: predicted class):

| true \ predicted | critical | warning | normal |
|---|--:|--:|--:|
{{range confusion .Classification}}| {{.Label}} |{{range .Cells}} {{.}} |{{end}}
{{end}}{{end}}
{{if .Worst}}## Devices ({{.Primary}} split)

Worst by RMSE:

| device | n | lives | MAE | RMSE | bias | score | last true | last predicted |
|---|--:|--:|--:|--:|--:|--:|--:|--:|
{{range .Worst}}| {{if .Tenant}}{{.Tenant}}/{{end}}{{.Device}} | {{.N}} | {{.Lives}} | {{f3 .MAE}} | {{f3 .RMSE}} | {{f3 .Bias}} | {{num .Score}} | {{f3 .LastRULTrue}} | {{f3 .LastRULPred}} |
{{end}}
Best by RMSE:

| device | n | lives | MAE | RMSE | bias | score | last true | last predicted |
|---|--:|--:|--:|--:|--:|--:|--:|--:|
{{range .Best}}| {{if .Tenant}}{{.Tenant}}/{{end}}{{.Device}} | {{.N}} | {{.Lives}} | {{f3 .MAE}} | {{f3 .RMSE}} | {{f3 .Bias}} | {{num .Score}} | {{f3 .LastRULTrue}} | {{f3 .LastRULPred}} |
{{end}}
All devices are in metrics.json (per_device).
{{end}}{{if .History}}
## Training

{{.History.Epochs}} epochs; best validation loss {{g .History.BestVal}} at epoch {{.History.BestEpoch}}; last epoch: train loss {{g .History.FinalTrain}}, validation loss {{g .History.FinalVal}}.
{{end}}{{if .Plots}}
## Plots
{{range .Plots}}
### {{.Title}}

![{{.Title}}]({{.Rel}})

{{.Caption}}
{{end}}{{end}}{{template "importance" .}}{{if .Compare}}
## Compared with ` + "`{{.Compare.Other}}`" + `

This: {{.Compare.ThisModel}}; other: {{.Compare.OtherModel}}. Better here on {{index .Compare.Wins "this"}} metrics, there on {{index .Compare.Wins "other"}}, equal on {{index .Compare.Wins "same"}}.

| split | metric | this | other | delta | better |
|---|---|--:|--:|--:|---|
{{range .Compare.Rows}}| {{.Split}} | {{.Metric}} | {{num .This}} | {{num .Other}} | {{delta .Delta}} | {{.Better}} |
{{end}}{{range .Compare.Notes}}
- note: {{.}}{{end}}
{{end}}
## How to read these numbers

- **MAE / RMSE / R² / bias** compare the predicted RUL with the true RUL capped at the horizon
  (what the model was trained to predict); the *raw* table uses the uncapped RUL where it is known.
  R² is empty (—) when the true RUL is constant: it would divide by zero.
- **score** is the PHM08/NASA asymmetric score, Σ exp(−d/13)−1 for d < 0 plus Σ exp(d/10)−1 for
  d ≥ 0 with d = predicted − true: late predictions cost more than early ones. It is a sum, so
  compare it only over the same samples (score/n otherwise).
- **early** = predicted < true (the failure is expected before it happens: the safe side);
  **late** = predicted > true (the failure arrives before the model expects it). The design
  document's code computed ` + "`y_pred > y_true`" + ` and called it "early" — that is the late
  case; both rates are reported here under their correct names.
- **critical acc.** is the share of windows with true RUL < {{g .M.Thresholds.Critical}} h predicted within
  ± {{g .M.CriticalToleranceHours}} h (empty when there are none).
- **Health classes** come from applying the thresholds to the true and the predicted RUL. Every row
  is named after its own class. (The design called scikit-learn's ` + "`classification_report`" + ` with
  ` + "`target_names=['critical','warning','normal']`" + `; scikit-learn sorts string labels —
  critical, normal, warning — so there the "warning" row showed the normal class and vice versa.)
  A precision or recall that divides by zero is shown as 0, as scikit-learn's ` + "`zero_division=0`" + `.
`

const htmlTemplate = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>modax-ml evaluation report</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1250px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:.8em 0}th,td{border:1px solid #ccc;padding:.25em .6em}td.n{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f3f5f8}code{background:#f3f3f3;padding:0 .2em}.warn{background:#fff4e5;border-left:4px solid #f0a020;padding:.4em .8em}
figure{margin:1.5em 0}figure img{max-width:100%;border:1px solid #ddd}figcaption{color:#555;font-size:.92em}
.better-this{color:#1a7f37}.better-other{color:#c62828}
</style></head><body>
<h1>Evaluation report</h1>
<ul>
<li>created: {{.M.CreatedAt}}{{if .M.RunID}} (run {{.M.RunID}}){{end}}</li>
<li>model: {{if .M.Model}}<code>{{.M.Model.Path}}</code> {{.M.Model.ModelVersion}} sha256 <code>{{.M.Model.SHA256}}</code>{{else}}unknown{{end}}</li>
<li>predictions: <code>{{.M.Predictions.Path}}</code>{{if .M.Windows}}; windows: <code>{{.M.Windows.Path}}</code>{{end}}</li>
<li>thresholds: critical &lt; {{g .M.Thresholds.Critical}} h ≤ warning &lt; {{g .M.Thresholds.Warning}} h ≤ normal; horizon {{num .M.HorizonHours}} h; critical tolerance {{g .M.CriticalToleranceHours}} h</li>
</ul>
{{range .Warnings}}<p class="warn"><b>warning:</b> {{.}}</p>{{end}}
<h2>Summary</h2>
<table><tr><th>split</th><th>n</th><th>devices</th><th>MAE</th><th>RMSE</th><th>R²</th><th>bias</th><th>score</th><th>score/n</th><th>early</th><th>late</th><th>critical acc. (n)</th><th>class acc.</th><th>macro F1</th></tr>
{{range .Splits}}<tr><td>{{.Name}}</td><td class="n">{{.N}}</td><td class="n">{{.Devices}}</td><td class="n">{{f3 .MAE}}</td><td class="n">{{f3 .RMSE}}</td><td class="n">{{f3 .R2}}</td><td class="n">{{f3 .Bias}}</td><td class="n">{{num .Score}}</td><td class="n">{{f3 .ScoreMean}}</td><td class="n">{{pct .EarlyRate}}</td><td class="n">{{pct .LateRate}}</td><td class="n">{{pct .CriticalAccuracy}} ({{.CriticalN}})</td><td class="n">{{pct .Classification.Accuracy}}</td><td class="n">{{f3 .Classification.MacroAvg.F1}}</td></tr>
{{end}}</table>
<p>Against the raw (uncapped) RUL, where known:</p>
<table><tr><th>split</th><th>n_raw</th><th>MAE</th><th>RMSE</th><th>R²</th><th>bias</th><th>score</th></tr>
{{range .Splits}}<tr><td>{{.Name}}</td><td class="n">{{.NRaw}}</td><td class="n">{{f3 .MAERaw}}</td><td class="n">{{f3 .RMSERaw}}</td><td class="n">{{f3 .R2Raw}}</td><td class="n">{{f3 .BiasRaw}}</td><td class="n">{{num .ScoreRaw}}</td></tr>
{{end}}</table>
{{with bucketRows .Splits}}<h2 id="buckets">Error by true-RUL bucket</h2>
<p>The error of the windows whose true RUL (capped at the horizon) lies in each bucket; bias = mean(predicted − true).</p>
<table class="buckets"><tr><th>split</th><th>true RUL</th><th>n</th><th>MAE</th><th>RMSE</th><th>bias</th></tr>
{{range .}}<tr><td>{{.Split}}</td><td>{{.Title}}</td><td class="n">{{.N}}</td><td class="n">{{f3 .MAE}}</td><td class="n">{{f3 .RMSE}}</td><td class="n">{{f3 .Bias}}</td></tr>
{{end}}</table>{{end}}
{{with alertRows .Splits}}<h2 id="alerts">Critical alerts</h2>
<p>An alert is a window predicted critical (RUL &lt; {{g $.M.Thresholds.Critical}} h). Lead time: the true RUL at a failing life's first alert while it was degrading (true RUL &lt; {{g $.M.Thresholds.Warning}} h); a false alarm: an alert raised while the true class was normal.</p>
<table class="alerts"><tr><th>split</th><th>failing lives</th><th>alerted</th><th>never alerted</th><th>lead time mean</th><th>median</th><th>min</th><th>false alarms</th><th>device-days</th><th>false alarms / device-day</th></tr>
{{range .}}<tr><td>{{.Split}}</td><td class="n">{{.FailingLives}}</td><td class="n">{{.Alerted}}</td><td class="n">{{.NeverAlerted}} ({{pct .NeverAlertedShare}})</td><td class="n">{{hours .LeadTimeMean}}</td><td class="n">{{hours .LeadTimeMedian}}</td><td class="n">{{hours .LeadTimeMin}}</td><td class="n">{{.FalseAlarms}}</td><td class="n">{{f3 .DeviceDays}}</td><td class="n">{{f3 .FalseAlarmsPerDeviceDay}}</td></tr>
{{end}}</table>{{end}}
{{with intervals .Splits}}<h2>Prediction intervals</h2>
<p>Measured coverage of the prediction intervals: the share of windows whose true RUL lies in [rul_lower, rul_upper], against the level (the nominal coverage); per bucket of predicted RUL the same over the windows predicted in it.</p>
<table><tr><th>split</th><th>level</th><th>bucket of predicted RUL</th><th>n</th><th>covered</th><th>coverage</th><th>mean width</th></tr>
{{range .}}<tr><td>{{.Split}}</td><td class="n">{{.Level}}</td><td>{{if .Bucket}}{{.Bucket}}{{else}}all{{end}}</td><td class="n">{{.N}}</td><td class="n">{{.Covered}}</td><td class="n">{{pct .Coverage}}</td><td class="n">{{.Width}}</td></tr>
{{end}}</table>{{end}}
{{range .Splits}}
<h2>Health classes: {{.Name}}</h2>
<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th><th>predicted</th></tr>
{{range classes .Classification}}<tr><td>{{.Name}}</td><td class="n">{{f3 .Precision}}</td><td class="n">{{f3 .Recall}}</td><td class="n">{{f3 .F1}}</td><td class="n">{{.Support}}</td><td class="n">{{.Predicted}}</td></tr>
{{end}}<tr><td>accuracy</td><td></td><td></td><td class="n">{{f3 .Classification.Accuracy}}</td><td class="n">{{.N}}</td><td></td></tr>
<tr><td>macro avg</td><td class="n">{{f3 .Classification.MacroAvg.Precision}}</td><td class="n">{{f3 .Classification.MacroAvg.Recall}}</td><td class="n">{{f3 .Classification.MacroAvg.F1}}</td><td class="n">{{.N}}</td><td></td></tr>
<tr><td>weighted avg</td><td class="n">{{f3 .Classification.WeightedAvg.Precision}}</td><td class="n">{{f3 .Classification.WeightedAvg.Recall}}</td><td class="n">{{f3 .Classification.WeightedAvg.F1}}</td><td class="n">{{.N}}</td><td></td></tr></table>
<p>Confusion matrix (rows: true class, columns: predicted class):</p>
<table><tr><th>true \ predicted</th><th>critical</th><th>warning</th><th>normal</th></tr>
{{range confusion .Classification}}<tr><th>{{.Label}}</th>{{range .Cells}}<td class="n">{{.}}</td>{{end}}</tr>
{{end}}</table>
{{end}}
{{if .Worst}}<h2>Devices ({{.Primary}} split)</h2>
{{range $t := list "Worst" "Best"}}<p>{{$t}} by RMSE:</p>
<table><tr><th>device</th><th>n</th><th>lives</th><th>MAE</th><th>RMSE</th><th>bias</th><th>score</th><th>last true</th><th>last predicted</th></tr>
{{range devices $ $t}}<tr><td>{{if .Tenant}}{{.Tenant}}/{{end}}{{.Device}}</td><td class="n">{{.N}}</td><td class="n">{{.Lives}}</td><td class="n">{{f3 .MAE}}</td><td class="n">{{f3 .RMSE}}</td><td class="n">{{f3 .Bias}}</td><td class="n">{{num .Score}}</td><td class="n">{{f3 .LastRULTrue}}</td><td class="n">{{f3 .LastRULPred}}</td></tr>
{{end}}</table>{{end}}
<p>All devices are in metrics.json (<code>per_device</code>).</p>{{end}}
{{if .History}}<h2>Training</h2>
<p>{{.History.Epochs}} epochs; best validation loss {{g .History.BestVal}} at epoch {{.History.BestEpoch}}; last epoch: train loss {{g .History.FinalTrain}}, validation loss {{g .History.FinalVal}}.</p>{{end}}
{{if .Plots}}<h2>Plots</h2>
{{range .Plots}}<figure><img alt="{{.Title}}" width="{{.Width}}" height="{{.Height}}" src="{{.DataURL}}"><figcaption><b>{{.Title}}.</b> {{.Caption}}</figcaption></figure>
{{end}}{{end}}
{{template "importance" .}}
{{if .Compare}}<h2>Compared with <code>{{.Compare.Other}}</code></h2>
<p>This: {{.Compare.ThisModel}}; other: {{.Compare.OtherModel}}. Better here on {{index .Compare.Wins "this"}} metrics, there on {{index .Compare.Wins "other"}}, equal on {{index .Compare.Wins "same"}}.</p>
<table><tr><th>split</th><th>metric</th><th>this</th><th>other</th><th>delta</th><th>better</th></tr>
{{range .Compare.Rows}}<tr><td>{{.Split}}</td><td>{{.Metric}}</td><td class="n">{{num .This}}</td><td class="n">{{num .Other}}</td><td class="n">{{delta .Delta}}</td><td class="better-{{.Better}}">{{.Better}}</td></tr>
{{end}}</table>
{{range .Compare.Notes}}<p class="warn">note: {{.}}</p>{{end}}{{end}}
<h2>How to read these numbers</h2>
<ul>
<li><b>MAE / RMSE / R² / bias</b> compare the predicted RUL with the true RUL capped at the horizon (what the model was trained to predict); the <i>raw</i> table uses the uncapped RUL where it is known. R² is empty (—) when the true RUL is constant: it would divide by zero.</li>
<li><b>score</b> is the PHM08/NASA asymmetric score, Σ exp(−d/13)−1 for d &lt; 0 plus Σ exp(d/10)−1 for d ≥ 0 with d = predicted − true: late predictions cost more than early ones. It is a sum, so compare it only over the same samples (score/n otherwise).</li>
<li><b>early</b> = predicted &lt; true (the failure is expected before it happens: the safe side); <b>late</b> = predicted &gt; true (the failure arrives before the model expects it). The design document's code computed <code>y_pred &gt; y_true</code> and called it "early" — that is the late case; both rates are reported here under their correct names.</li>
<li><b>critical acc.</b> is the share of windows with true RUL &lt; {{g .M.Thresholds.Critical}} h predicted within ± {{g .M.CriticalToleranceHours}} h (empty when there are none).</li>
<li><b>Health classes</b> come from applying the thresholds to the true and the predicted RUL. Every row is named after its own class. (The design called scikit-learn's <code>classification_report</code> with <code>target_names=['critical','warning','normal']</code>; scikit-learn sorts string labels — critical, normal, warning — so there the "warning" row showed the normal class and vice versa.) A precision or recall that divides by zero is shown as 0, as scikit-learn's <code>zero_division=0</code>.</li>
</ul>
</body></html>
`

var (
	mdTmpl   = template.Must(template.Must(template.New("report.md").Funcs(funcs).Parse(mdTemplate)).Parse(importanceMD))
	htmlTmpl = htmltemplate.Must(htmltemplate.Must(htmltemplate.New("report.html").Funcs(funcs).Funcs(htmltemplate.FuncMap{
		"list": func(s ...string) []string { return s },
		"devices": func(d *reportData, which string) []DeviceMetrics {
			if which == "Worst" {
				return d.Worst
			}
			return d.Best
		},
	}).Parse(htmlTemplate)).Parse(importanceHTML))
)

// renderReports renders report.md (plots linked relative to mdPath) and the
// self-contained report.html (plots inline).
func renderReports(d *reportData, mdPath, plotsDir string) (md, html []byte, err error) {
	for i := range d.Plots {
		p := &d.Plots[i]
		rel, rerr := filepath.Rel(filepath.Dir(mdPath), filepath.Join(plotsDir, p.Name))
		if rerr != nil {
			rel = filepath.Join(plotsDir, p.Name)
		}
		p.Rel = filepath.ToSlash(rel)
		// A data: URL of our own PNG bytes (trusted content).
		p.DataURL = htmltemplate.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(p.PNG))
	}
	var mb, hb bytes.Buffer
	if err := mdTmpl.Execute(&mb, d); err != nil {
		return nil, nil, fmt.Errorf("render report.md: %w", err)
	}
	if err := htmlTmpl.Execute(&hb, d); err != nil {
		return nil, nil, fmt.Errorf("render report.html: %w", err)
	}
	return squeezeBlankLines(mb.Bytes()), hb.Bytes(), nil
}

// squeezeBlankLines collapses runs of blank lines left by the template.
func squeezeBlankLines(b []byte) []byte {
	lines := strings.Split(string(b), "\n")
	out := lines[:0]
	blank := false
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			if blank {
				continue
			}
			blank = true
		} else {
			blank = false
		}
		out = append(out, l)
	}
	return []byte(strings.Join(out, "\n"))
}
