// Package depcheck pins the whole dependency set in go.mod while the stages
// that use each module are being written, so that every module resolves
// together (DESIGN.md §8). It is removed once every module has a real user.
package depcheck

import (
	_ "github.com/advancedclimatesystems/gonnx"
	_ "github.com/advancedclimatesystems/gonnx/onnx"
	_ "github.com/apache/arrow-go/v18/arrow"
	_ "github.com/apache/arrow-go/v18/parquet/pqarrow"
	_ "github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/rogpeppe/go-internal/testscript"
	_ "github.com/spf13/cobra"
	_ "github.com/spf13/viper"
	_ "golang.org/x/sync/errgroup"
	_ "golang.org/x/term"
	_ "gonum.org/v1/gonum/dsp/fourier"
	_ "gonum.org/v1/gonum/mat"
	_ "gonum.org/v1/plot"
	_ "gonum.org/v1/plot/vg/vgimg"
	_ "gorgonia.org/gorgonia"
)
