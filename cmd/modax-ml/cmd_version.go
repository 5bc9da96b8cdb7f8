package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/modax/modax-ml/internal/nn"
	"github.com/modax/modax-ml/internal/version"
)

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build details",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			info := version.Get()
			out := struct {
				version.Info
				BLAS string `json:"blas"` // the fused engine's matrix-product backend
			}{info, nn.BLAS()}
			return a.emit(out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "modax-ml %s\ngo: %s\nblas: %s\n", info, info.GoVersion, out.BLAS)
				return err
			})
		},
	}
}
