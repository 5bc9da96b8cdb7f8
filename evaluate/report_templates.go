package evaluate

// The reports read top-down: the headline numbers of the primary split,
// then the figures, then the tables, with the detail (health classes, the
// raw-RUL table, the remaining PNG plots) folded in <details>. Each part is
// its own named template ("head", "headline", "figures", "tables",
// "details", "howto", and "importance" from importance.go), so a new
// section is added in one place.

const mdTemplate = `{{template "head" .}}{{template "headline" .}}{{template "figures" .}}{{template "tables" .}}{{template "details" .}}{{template "howto" .}}`

const mdSections = `{{define "head"}}# Evaluation report

- created: {{.M.CreatedAt}}{{if .M.RunID}} (run {{.M.RunID}}){{end}}
- model: {{if .M.Model}}` + "`{{.M.Model.Path}}`" + ` {{.M.Model.ModelVersion}} sha256 ` + "`{{.M.Model.SHA256}}`" + `{{else}}unknown{{end}}
- predictions: ` + "`{{.M.Predictions.Path}}`" + `{{if .M.Windows}}; windows: ` + "`{{.M.Windows.Path}}`" + `{{end}}
- thresholds: critical < {{g .M.Thresholds.Critical}} h ≤ warning < {{g .M.Thresholds.Warning}} h ≤ normal; horizon {{num .M.HorizonHours}} h; critical tolerance {{g .M.CriticalToleranceHours}} h
{{range .Warnings}}
> **warning:** {{.}}
{{end}}{{end}}

{{define "headline"}}
## Headline ({{.Primary}} split)

{{with .PrimaryM}}- **MAE {{f3 .MAE}} h**, RMSE {{f3 .RMSE}} h, bias {{f3 .Bias}} h over {{.N}} windows of {{.Devices}} devices; PHM08 score {{num .Score}} ({{f3 .ScoreMean}} per window)
- critical accuracy {{pct .CriticalAccuracy}} ({{.CriticalN}} windows), health-class accuracy {{pct .Classification.Accuracy}}{{with .Alerts}}{{if .FailingLives}}
- critical alerts: median lead time {{hours .LeadTimeMedian}} before failure, {{.NeverAlerted}} of {{.FailingLives}} failing lives never alerted, {{f3 .FalseAlarmsPerDeviceDay}} false alarms per device-day{{end}}{{end}}{{with headIv .}}
- {{g100 .Level}} % interval: coverage {{pct .Coverage}}, mean width {{hours .MeanWidth}}{{end}}
{{end}}
| split | n | devices | MAE | RMSE | R² | bias | score | score/n | early | late | critical acc. (n) | class acc. | macro F1 |
|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|
{{range .Splits}}| {{.Name}} | {{.N}} | {{.Devices}} | {{f3 .MAE}} | {{f3 .RMSE}} | {{f3 .R2}} | {{f3 .Bias}} | {{num .Score}} | {{f3 .ScoreMean}} | {{pct .EarlyRate}} | {{pct .LateRate}} | {{pct .CriticalAccuracy}} ({{.CriticalN}}) | {{pct .Classification.Accuracy}} | {{f3 .Classification.MacroAvg.F1}} |
{{end}}{{end}}

{{define "figures"}}{{if .Figures}}
## Figures
{{range .Figures}}
### {{.Title}}

![{{.Title}}]({{figureRel $ .}})

{{.Caption}}
{{end}}{{end}}{{end}}

{{define "tables"}}{{with bucketRows .Splits}}
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
{{end}}{{end}}{{if .Worst}}
## Devices ({{.Primary}} split)

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
{{end}}{{template "importance" .}}{{if .Compare}}
## Compared with ` + "`{{.Compare.Other}}`" + `

This: {{.Compare.ThisModel}}; other: {{.Compare.OtherModel}}. Better here on {{index .Compare.Wins "this"}} metrics, there on {{index .Compare.Wins "other"}}, equal on {{index .Compare.Wins "same"}}.

| split | metric | this | other | delta | better |
|---|---|--:|--:|--:|---|
{{range .Compare.Rows}}| {{.Split}} | {{.Metric}} | {{num .This}} | {{num .Other}} | {{delta .Delta}} | {{.Better}} |
{{end}}{{range .Compare.Notes}}
- note: {{.}}{{end}}
{{end}}{{end}}

{{define "details"}}
<details id="health-classes"><summary>Health classes per split</summary>
{{range .Splits}}
### Health classes: {{.Name}}

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
</details>

<details id="raw-rul"><summary>Against the raw (uncapped) RUL</summary>

{{rawNote .M}}

| split | n_raw | MAE | RMSE | R² | bias | score |
|---|--:|--:|--:|--:|--:|--:|
{{range .Splits}}| {{.Name}} | {{.NRaw}} | {{f3 .MAERaw}} | {{f3 .RMSERaw}} | {{f3 .R2Raw}} | {{f3 .BiasRaw}} | {{num .ScoreRaw}} |
{{end}}
</details>
{{if .Plots}}
<details id="more-plots"><summary>More plots (PNG)</summary>
{{range .Plots}}
### {{.Title}}

![{{.Title}}]({{.Rel}})

{{.Caption}}
{{end}}
</details>
{{end}}{{end}}

{{define "howto"}}
## How to read these numbers

- **MAE / RMSE / R² / bias** compare the predicted RUL with the true RUL capped at the horizon
  (what the model was trained to predict). R² is empty (—) when the true RUL is constant: it would
  divide by zero. **Error by true-RUL bucket** splits them by how far the failure is: most windows
  of a fleet sit at the cap, where the error is small, and the headline MAE hides the error near
  failure.
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
{{end}}`

const htmlTemplate = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>modax-ml evaluation report</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1250px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:.8em 0}th,td{border:1px solid #ccc;padding:.25em .6em}td.n{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f3f5f8}code{background:#f3f3f3;padding:0 .2em}.warn{background:#fff4e5;border-left:4px solid #f0a020;padding:.4em .8em}
figure{margin:1.5em 0}figure img{max-width:100%;border:1px solid #ddd}figcaption{color:#555;font-size:.92em}
.better-this{color:#1a7f37}.better-other{color:#c62828}
.cards{display:flex;flex-wrap:wrap;gap:.8em;margin:1em 0}.card{border:1px solid #d0d7de;border-radius:6px;padding:.5em .9em;min-width:9em}
.card .k{display:block;color:#57606a;font-size:.85em}.card .v{display:block;font-size:1.5em;font-weight:600;font-variant-numeric:tabular-nums}
.figgrid{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:0 1.5em}
details{margin:1em 0;border:1px solid #e1e4e8;border-radius:6px;padding:.3em .9em}summary{cursor:pointer;font-weight:600;padding:.3em 0}
{{chartCSS}}</style></head><body>
{{template "head" .}}{{template "headline" .}}{{template "figures" .}}{{template "tables" .}}{{template "details" .}}{{template "howto" .}}
</body></html>
`

const htmlSections = `{{define "head"}}<h1>Evaluation report</h1>
<ul>
<li>created: {{.M.CreatedAt}}{{if .M.RunID}} (run {{.M.RunID}}){{end}}</li>
<li>model: {{if .M.Model}}<code>{{.M.Model.Path}}</code> {{.M.Model.ModelVersion}} sha256 <code>{{.M.Model.SHA256}}</code>{{else}}unknown{{end}}</li>
<li>predictions: <code>{{.M.Predictions.Path}}</code>{{if .M.Windows}}; windows: <code>{{.M.Windows.Path}}</code>{{end}}</li>
<li>thresholds: critical &lt; {{g .M.Thresholds.Critical}} h ≤ warning &lt; {{g .M.Thresholds.Warning}} h ≤ normal; horizon {{num .M.HorizonHours}} h; critical tolerance {{g .M.CriticalToleranceHours}} h</li>
</ul>
{{range .Warnings}}<p class="warn"><b>warning:</b> {{.}}</p>{{end}}{{end}}

{{define "headline"}}<section id="headline"><h2>Headline ({{.Primary}} split)</h2>
{{with .PrimaryM}}<div class="cards">
<div class="card" id="card-mae"><span class="k">MAE</span><span class="v">{{f3 .MAE}} h</span></div>
<div class="card" id="card-rmse"><span class="k">RMSE</span><span class="v">{{f3 .RMSE}} h</span></div>
<div class="card" id="card-bias"><span class="k">bias (pred − true)</span><span class="v">{{f3 .Bias}} h</span></div>
<div class="card" id="card-score"><span class="k">PHM08 score (per window)</span><span class="v">{{num .Score}}</span><span class="k">{{f3 .ScoreMean}}</span></div>
<div class="card" id="card-n"><span class="k">windows / devices</span><span class="v">{{.N}} / {{.Devices}}</span></div>
<div class="card" id="card-critical"><span class="k">critical accuracy ({{.CriticalN}})</span><span class="v">{{pct .CriticalAccuracy}}</span></div>
{{with .Alerts}}{{if .FailingLives}}<div class="card" id="card-lead"><span class="k">median alert lead time</span><span class="v">{{hours .LeadTimeMedian}}</span><span class="k">{{.NeverAlerted}} of {{.FailingLives}} failing lives never alerted</span></div>
<div class="card" id="card-false-alarms"><span class="k">false alarms per device-day</span><span class="v">{{f3 .FalseAlarmsPerDeviceDay}}</span></div>{{end}}{{end}}
{{with headIv .}}<div class="card" id="card-coverage"><span class="k">{{g100 .Level}} % interval coverage</span><span class="v">{{pct .Coverage}}</span><span class="k">mean width {{hours .MeanWidth}}</span></div>{{end}}
</div>{{end}}
<table id="summary"><tr><th>split</th><th>n</th><th>devices</th><th>MAE</th><th>RMSE</th><th>R²</th><th>bias</th><th>score</th><th>score/n</th><th>early</th><th>late</th><th>critical acc. (n)</th><th>class acc.</th><th>macro F1</th></tr>
{{range .Splits}}<tr><td>{{.Name}}</td><td class="n">{{.N}}</td><td class="n">{{.Devices}}</td><td class="n">{{f3 .MAE}}</td><td class="n">{{f3 .RMSE}}</td><td class="n">{{f3 .R2}}</td><td class="n">{{f3 .Bias}}</td><td class="n">{{num .Score}}</td><td class="n">{{f3 .ScoreMean}}</td><td class="n">{{pct .EarlyRate}}</td><td class="n">{{pct .LateRate}}</td><td class="n">{{pct .CriticalAccuracy}} ({{.CriticalN}})</td><td class="n">{{pct .Classification.Accuracy}}</td><td class="n">{{f3 .Classification.MacroAvg.F1}}</td></tr>
{{end}}</table></section>{{end}}

{{define "figures"}}{{if .Figures}}<section id="figures"><h2>Figures</h2>
{{range figureGroups .Figures}}{{if .Grid}}<div class="figgrid">{{end}}{{range .Figures}}<figure id="figure-{{.ID}}">{{.SVG}}<figcaption><b>{{.Title}}.</b> {{.Caption}}</figcaption></figure>
{{end}}{{if .Grid}}</div>{{end}}{{end}}</section>{{end}}{{end}}

{{define "tables"}}<section id="tables"><h2>Tables</h2>
{{with bucketRows .Splits}}<h3 id="buckets">Error by true-RUL bucket</h3>
<p>The error of the windows whose true RUL (capped at the horizon) lies in each bucket; bias = mean(predicted − true).</p>
<table class="buckets"><tr><th>split</th><th>true RUL</th><th>n</th><th>MAE</th><th>RMSE</th><th>bias</th></tr>
{{range .}}<tr><td>{{.Split}}</td><td>{{.Title}}</td><td class="n">{{.N}}</td><td class="n">{{f3 .MAE}}</td><td class="n">{{f3 .RMSE}}</td><td class="n">{{f3 .Bias}}</td></tr>
{{end}}</table>{{end}}
{{with alertRows .Splits}}<h3 id="alerts">Critical alerts</h3>
<p>An alert is a window predicted critical (RUL &lt; {{g $.M.Thresholds.Critical}} h). Lead time: the true RUL at a failing life's first alert while it was degrading (true RUL &lt; {{g $.M.Thresholds.Warning}} h); a false alarm: an alert raised while the true class was normal.</p>
<table class="alerts"><tr><th>split</th><th>failing lives</th><th>alerted</th><th>never alerted</th><th>lead time mean</th><th>median</th><th>min</th><th>false alarms</th><th>device-days</th><th>false alarms / device-day</th></tr>
{{range .}}<tr><td>{{.Split}}</td><td class="n">{{.FailingLives}}</td><td class="n">{{.Alerted}}</td><td class="n">{{.NeverAlerted}} ({{pct .NeverAlertedShare}})</td><td class="n">{{hours .LeadTimeMean}}</td><td class="n">{{hours .LeadTimeMedian}}</td><td class="n">{{hours .LeadTimeMin}}</td><td class="n">{{.FalseAlarms}}</td><td class="n">{{f3 .DeviceDays}}</td><td class="n">{{f3 .FalseAlarmsPerDeviceDay}}</td></tr>
{{end}}</table>{{end}}
{{with intervals .Splits}}<h3 id="intervals">Prediction intervals</h3>
<p>Measured coverage of the prediction intervals: the share of windows whose true RUL lies in [rul_lower, rul_upper], against the level (the nominal coverage); per bucket of predicted RUL the same over the windows predicted in it.</p>
<table><tr><th>split</th><th>level</th><th>bucket of predicted RUL</th><th>n</th><th>covered</th><th>coverage</th><th>mean width</th></tr>
{{range .}}<tr><td>{{.Split}}</td><td class="n">{{.Level}}</td><td>{{if .Bucket}}{{.Bucket}}{{else}}all{{end}}</td><td class="n">{{.N}}</td><td class="n">{{.Covered}}</td><td class="n">{{pct .Coverage}}</td><td class="n">{{.Width}}</td></tr>
{{end}}</table>{{end}}
{{if .Worst}}<h3 id="devices">Devices ({{.Primary}} split)</h3>
{{range $t := list "Worst" "Best"}}<p>{{$t}} by RMSE:</p>
<table><tr><th>device</th><th>n</th><th>lives</th><th>MAE</th><th>RMSE</th><th>bias</th><th>score</th><th>last true</th><th>last predicted</th></tr>
{{range devices $ $t}}<tr><td>{{if .Tenant}}{{.Tenant}}/{{end}}{{.Device}}</td><td class="n">{{.N}}</td><td class="n">{{.Lives}}</td><td class="n">{{f3 .MAE}}</td><td class="n">{{f3 .RMSE}}</td><td class="n">{{f3 .Bias}}</td><td class="n">{{num .Score}}</td><td class="n">{{f3 .LastRULTrue}}</td><td class="n">{{f3 .LastRULPred}}</td></tr>
{{end}}</table>{{end}}
<p>All devices are in metrics.json (<code>per_device</code>).</p>{{end}}
{{if .History}}<h3 id="training">Training</h3>
<p>{{.History.Epochs}} epochs; best validation loss {{g .History.BestVal}} at epoch {{.History.BestEpoch}}; last epoch: train loss {{g .History.FinalTrain}}, validation loss {{g .History.FinalVal}}.</p>{{end}}
{{template "importance" .}}
{{if .Compare}}<h3 id="compare">Compared with <code>{{.Compare.Other}}</code></h3>
<p>This: {{.Compare.ThisModel}}; other: {{.Compare.OtherModel}}. Better here on {{index .Compare.Wins "this"}} metrics, there on {{index .Compare.Wins "other"}}, equal on {{index .Compare.Wins "same"}}.</p>
<table><tr><th>split</th><th>metric</th><th>this</th><th>other</th><th>delta</th><th>better</th></tr>
{{range .Compare.Rows}}<tr><td>{{.Split}}</td><td>{{.Metric}}</td><td class="n">{{num .This}}</td><td class="n">{{num .Other}}</td><td class="n">{{delta .Delta}}</td><td class="better-{{.Better}}">{{.Better}}</td></tr>
{{end}}</table>
{{range .Compare.Notes}}<p class="warn">note: {{.}}</p>{{end}}{{end}}</section>{{end}}

{{define "details"}}<details id="health-classes"><summary>Health classes per split</summary>
{{range .Splits}}<h3>Health classes: {{.Name}}</h3>
<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th><th>predicted</th></tr>
{{range classes .Classification}}<tr><td>{{.Name}}</td><td class="n">{{f3 .Precision}}</td><td class="n">{{f3 .Recall}}</td><td class="n">{{f3 .F1}}</td><td class="n">{{.Support}}</td><td class="n">{{.Predicted}}</td></tr>
{{end}}<tr><td>accuracy</td><td></td><td></td><td class="n">{{f3 .Classification.Accuracy}}</td><td class="n">{{.N}}</td><td></td></tr>
<tr><td>macro avg</td><td class="n">{{f3 .Classification.MacroAvg.Precision}}</td><td class="n">{{f3 .Classification.MacroAvg.Recall}}</td><td class="n">{{f3 .Classification.MacroAvg.F1}}</td><td class="n">{{.N}}</td><td></td></tr>
<tr><td>weighted avg</td><td class="n">{{f3 .Classification.WeightedAvg.Precision}}</td><td class="n">{{f3 .Classification.WeightedAvg.Recall}}</td><td class="n">{{f3 .Classification.WeightedAvg.F1}}</td><td class="n">{{.N}}</td><td></td></tr></table>
<p>Confusion matrix (rows: true class, columns: predicted class):</p>
<table><tr><th>true \ predicted</th><th>critical</th><th>warning</th><th>normal</th></tr>
{{range confusion .Classification}}<tr><th>{{.Label}}</th>{{range .Cells}}<td class="n">{{.}}</td>{{end}}</tr>
{{end}}</table>
{{end}}</details>
<details id="raw-rul"><summary>Against the raw (uncapped) RUL</summary>
<p>{{rawNote .M}}</p>
<table><tr><th>split</th><th>n_raw</th><th>MAE</th><th>RMSE</th><th>R²</th><th>bias</th><th>score</th></tr>
{{range .Splits}}<tr><td>{{.Name}}</td><td class="n">{{.NRaw}}</td><td class="n">{{f3 .MAERaw}}</td><td class="n">{{f3 .RMSERaw}}</td><td class="n">{{f3 .R2Raw}}</td><td class="n">{{f3 .BiasRaw}}</td><td class="n">{{num .ScoreRaw}}</td></tr>
{{end}}</table></details>
{{if .Plots}}<details id="more-plots"><summary>More plots (PNG)</summary>
{{range .Plots}}<figure><img alt="{{.Title}}" width="{{.Width}}" height="{{.Height}}" src="{{.DataURL}}"><figcaption><b>{{.Title}}.</b> {{.Caption}}</figcaption></figure>
{{end}}</details>{{end}}{{end}}

{{define "howto"}}<h2 id="howto">How to read these numbers</h2>
<ul>
<li><b>MAE / RMSE / R² / bias</b> compare the predicted RUL with the true RUL capped at the horizon (what the model was trained to predict). R² is empty (—) when the true RUL is constant: it would divide by zero. <b>Error by true-RUL bucket</b> splits them by how far the failure is: most windows of a fleet sit at the cap, where the error is small, and the headline MAE hides the error near failure.</li>
<li><b>score</b> is the PHM08/NASA asymmetric score, Σ exp(−d/13)−1 for d &lt; 0 plus Σ exp(d/10)−1 for d ≥ 0 with d = predicted − true: late predictions cost more than early ones. It is a sum, so compare it only over the same samples (score/n otherwise).</li>
<li><b>early</b> = predicted &lt; true (the failure is expected before it happens: the safe side); <b>late</b> = predicted &gt; true (the failure arrives before the model expects it). The design document's code computed <code>y_pred &gt; y_true</code> and called it "early" — that is the late case; both rates are reported here under their correct names.</li>
<li><b>critical acc.</b> is the share of windows with true RUL &lt; {{g .M.Thresholds.Critical}} h predicted within ± {{g .M.CriticalToleranceHours}} h (empty when there are none).</li>
<li><b>Health classes</b> come from applying the thresholds to the true and the predicted RUL. Every row is named after its own class. (The design called scikit-learn's <code>classification_report</code> with <code>target_names=['critical','warning','normal']</code>; scikit-learn sorts string labels — critical, normal, warning — so there the "warning" row showed the normal class and vice versa.) A precision or recall that divides by zero is shown as 0, as scikit-learn's <code>zero_division=0</code>.</li>
</ul>{{end}}`
