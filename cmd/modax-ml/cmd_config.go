package main

import (
	"io"

	"github.com/spf13/cobra"
)

func newConfigCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect the effective configuration",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "show",
		Short: "Print the effective config (flags > MODAX_* env > file > defaults) as the stages see it, secrets redacted",
		Example: `  modax-ml config show
  MODAX_TRAIN_EPOCHS=5 modax-ml --config examples/default.yaml config show --output json`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			red := a.cfg.Resolve().Redacted()
			m, err := red.Map()
			if err != nil {
				return err
			}
			return a.emit(m, func(w io.Writer) error {
				b, err := red.YAML()
				if err != nil {
					return err
				}
				_, err = w.Write(b)
				return err
			})
		},
	})
	return cmd
}
