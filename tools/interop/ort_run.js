#!/usr/bin/env node
// ONNX Runtime (npm onnxruntime-node, CPU, one thread) for modax-ml's interop
// tests and benchmarks.
//
//   node ort_run.js run   model.onnx x.f32 DIMS out.f32
//       runs the model's input on x (raw little-endian float32, shape DIMS
//       such as 4,50,5) and writes the output as float32; prints a JSON line
//       with the output dims and the session's opset/inputs.
//   node ort_run.js bench model.onnx BATCHES [SECONDS] [SEQ]
//       for each batch size in BATCHES (e.g. 1,256), times session.run on
//       random inputs (the model's input shape with the batch axis set, and a
//       dynamic sequence axis set to SEQ, default 50) for about SECONDS
//       (default 3) after a warm-up; prints a JSON line per batch: median,
//       p90 and min latency in ms, windows per second.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

const opts = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' };

function dims(s) {
  const d = s.split(',').map(Number);
  if (d.some((v) => !Number.isInteger(v) || v < 1)) throw new Error(`bad dims ${s}`);
  return d;
}

async function run(model, xpath, ds, out) {
  const d = dims(ds);
  const buf = fs.readFileSync(xpath);
  const n = d.reduce((a, b) => a * b, 1);
  if (buf.length !== 4 * n) throw new Error(`${xpath}: ${buf.length} bytes, want ${4 * n} for dims ${ds}`);
  const x = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  const s = await ort.InferenceSession.create(model, opts);
  const res = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x, d) });
  const y = res[s.outputNames[0]];
  fs.writeFileSync(out, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
  console.log(JSON.stringify({ inputs: s.inputNames, outputs: s.outputNames, dims: y.dims }));
}

async function bench(model, batches, seconds, seq) {
  const s = await ort.InferenceSession.create(model, opts);
  const meta = s.inputMetadata[0];
  for (const b of batches.split(',').map(Number)) {
    const d = meta.shape.map((v, i) => (i === 0 ? b : typeof v === 'number' ? v : seq));
    const n = d.reduce((a, c) => a * c, 1);
    const x = new Float32Array(n);
    let r = 1;
    for (let i = 0; i < n; i++) { r = (r * 1103515245 + 12345) % 2147483648; x[i] = (r / 2147483648) * 2 - 1; }
    const feeds = { [s.inputNames[0]]: new ort.Tensor('float32', x, d) };
    for (let i = 0; i < 5; i++) await s.run(feeds);
    const times = [];
    const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
    while (process.hrtime.bigint() < end || times.length < 10) {
      const t0 = process.hrtime.bigint();
      await s.run(feeds);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    times.sort((a, c) => a - c);
    const med = times[Math.floor(times.length / 2)];
    console.log(JSON.stringify({
      runtime: `onnxruntime-node ${require('onnxruntime-node/package.json').version}`, threads: 1, dims: d,
      runs: times.length, median_ms: med, p90_ms: times[Math.floor(times.length * 0.9)], min_ms: times[0],
      windows_per_s: b / (med / 1000),
    }));
  }
}

async function main() {
  const [cmd, ...a] = process.argv.slice(2);
  if (cmd === 'run' && a.length === 4) return run(...a);
  if (cmd === 'bench' && a.length >= 2 && a.length <= 4) return bench(a[0], a[1], Number(a[2] || 3), Number(a[3] || 50));
  throw new Error('usage: ort_run.js run model.onnx x.f32 DIMS out.f32 | bench model.onnx BATCHES [SECONDS] [SEQ]');
}

main().catch((e) => { console.error(`ort_run: ${e.message}`); process.exit(1); });
