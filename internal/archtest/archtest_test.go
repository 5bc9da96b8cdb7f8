// Package archtest checks the layering DESIGN.md §2 asks for: stage packages
// are libraries that import neither cobra, viper, another stage nor the
// pipeline. (A test rather than a depguard rule so that it runs in `make test`
// and does not depend on the directory the repository is cloned into.)
package archtest

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/modax/modax-ml/internal/testutil"
)

const module = "github.com/modax/modax-ml/"

var stages = []string{"collect", "validate", "label", "features", "train", "evaluate", "predict", "export", "deploy", "monitor"}

func TestStagesAreLibraries(t *testing.T) {
	root := testutil.RepoRoot(t)
	forbidden := map[string]string{
		"github.com/spf13/cobra": "flags live in cmd/modax-ml",
		"github.com/spf13/viper": "config loading lives in cmd/modax-ml",
		module + "pipeline":      "stages must not import the pipeline",
	}
	for _, s := range stages {
		forbidden[module+s] = "a stage must not import another stage (files are the contract)"
	}
	checked := 0
	for _, stage := range stages {
		dir := filepath.Join(root, stage)
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			checked++
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if p == module+stage || strings.HasPrefix(p, module+stage+"/") {
					continue
				}
				for bad, why := range forbidden {
					if p == bad || strings.HasPrefix(p, bad+"/") {
						rel, _ := filepath.Rel(root, path)
						t.Errorf("%s imports %s: %s", rel, p, why)
					}
				}
				if strings.Contains(p, "/cmd/") {
					t.Errorf("%s imports %s: stages must not import commands", path, p)
				}
			}
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	if checked == 0 {
		t.Fatal("no stage sources found: the check would pass vacuously")
	}
}

func TestMainOnlyWires(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "cmd", "modax-ml", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n > 20 {
		t.Errorf("cmd/modax-ml/main.go has %d lines: main only wires the process (run() holds the CLI)", n)
	}
}
