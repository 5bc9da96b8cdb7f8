//go:build openblas

package examples

func init() { buildTags = "openblas" }
