// Package collect is the first stage of modax-ml: it reads sensor history from
// one of four sources and writes readings.parquet + failures.parquet.
//
//   - postgres: the sensor and failure tables of one tenant (internal/pg),
//     streamed into Arrow batches;
//   - csv:PATH (with --failures csv:PATH): a CSV export;
//   - cmapss:PATH (with --rul for test files): NASA's C-MAPSS turbofan data;
//   - synthetic: a deterministic fleet simulator, the built-in default data.
//
// Every source produces rows sorted by tenant, device and time, with the
// sensors as nullable float64 columns, and failures as separate events.
package collect
