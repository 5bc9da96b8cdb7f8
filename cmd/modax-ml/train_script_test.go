package main

import (
	"flag"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/modax/modax-ml/train/traintest"
)

// cmdGenWindows writes a synthetic windows file for the train stories:
//
//	gen-windows [-train N] [-val N] [-nan ROW] [-features F] file
func cmdGenWindows(ts *testscript.TestScript, neg bool, args []string) {
	s, path := genSpec(ts, neg, "gen-windows", args)
	ts.Check(traintest.WriteWindows(ts.MkAbs(path), s))
}

// cmdGenStats writes a synthetic stats file (same flags as gen-windows).
func cmdGenStats(ts *testscript.TestScript, neg bool, args []string) {
	s, path := genSpec(ts, neg, "gen-stats", args)
	ts.Check(traintest.WriteStats(ts.MkAbs(path), s))
}

func genSpec(ts *testscript.TestScript, neg bool, name string, args []string) (traintest.Spec, string) {
	if neg {
		ts.Fatalf("%s does not fail", name)
	}
	s := traintest.Default()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.IntVar(&s.Train, "train", s.Train, "train windows")
	fs.IntVar(&s.Val, "val", s.Val, "val windows")
	fs.IntVar(&s.NaNRow, "nan", 0, "row with a NaN")
	fs.IntVar(&s.Features, "features", s.Features, "features")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		ts.Fatalf("usage: %s [-train N] [-val N] [-nan ROW] [-features F] file (%v)", name, err)
	}
	return s, fs.Arg(0)
}
