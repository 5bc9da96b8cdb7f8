// Command modax-ml trains, evaluates, exports and deploys Remaining-Useful-Life
// models for predictive maintenance.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
