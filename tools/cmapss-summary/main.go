// Command cmapss-summary prints the one-line JSON result of the C-MAPSS recipe
// (scripts/cmapss.sh) from the metrics.json of each seed's run
// (evaluate.SummarizeSeeds).
//
//	go run ./tools/cmapss-summary -subset FD001 metrics-s1.json metrics-s2.json ...
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/modax/modax-ml/evaluate"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("cmapss-summary", flag.ContinueOnError)
	subset := fs.String("subset", "FD001", "subset name for the output")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	s, err := evaluate.SummarizeSeeds(*subset, fs.Args())
	if err == nil {
		var b []byte
		if b, err = json.Marshal(s); err == nil {
			fmt.Println(string(b))
			return 0
		}
	}
	fmt.Fprintln(os.Stderr, "cmapss-summary:", err)
	return 1
}
