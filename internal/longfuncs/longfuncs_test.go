// Package longfuncs holds the test that keeps functions short (README "Developers": functions
// fit on a screen).
package longfuncs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// maxLines is the longest a function may be without a doc comment saying why it is one
// piece ("one piece").
const maxLines = 80

// TestLongFunctionsSayWhy lists the production functions over maxLines lines whose doc
// comment does not say why they are one piece. LONGFUNCS_ALL=1 lists every long function.
// It runs with CHORDPHONE_LONGFUNCS=1 (go test -v ./internal/longfuncs): issue 21 item 6
// left some long functions, so the suite does not run it yet.
func TestLongFunctionsSayWhy(t *testing.T) {
	if os.Getenv("CHORDPHONE_LONGFUNCS") == "" {
		t.Skip("set CHORDPHONE_LONGFUNCS=1 to list long functions")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	all := os.Getenv("LONGFUNCS_ALL") != ""
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "build") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			n := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1
			if n <= maxLines {
				continue
			}
			why := fn.Doc != nil && strings.Contains(strings.Join(strings.Fields(fn.Doc.Text()), " "), "one piece")
			rel, _ := filepath.Rel(root, path)
			if !why {
				t.Errorf("%s:%d: %s is %d lines: split it, or say in its doc comment why it is one piece", rel, fset.Position(fn.Pos()).Line, fn.Name.Name, n)
			} else if all {
				t.Logf("%s:%d: %s is %d lines (one piece)", rel, fset.Position(fn.Pos()).Line, fn.Name.Name, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
