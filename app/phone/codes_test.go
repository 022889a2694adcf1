package phone

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// Every error and warning event the program makes carries a code (README "Headless
// interface"): each Event literal with Kind EventError or EventWarning in app/ and ui/ sets
// Code.
func TestEveryErrorEventHasACode(t *testing.T) {
	fset := token.NewFileSet()
	checked := 0
	for _, root := range []string{"..", "../../ui"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.CompositeLit)
				if !ok || !isEventType(lit.Type) {
					return true
				}
				kind, code := "", false
				for _, el := range lit.Elts {
					kv, ok := el.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					switch key := kv.Key.(*ast.Ident); {
					case key == nil:
					case key.Name == "Kind":
						kind = name(kv.Value)
					case key.Name == "Code":
						code = true
					}
				}
				if kind == "EventError" || kind == "EventWarning" {
					checked++
					if !code {
						t.Errorf("%s: %s event without a Code", fset.Position(lit.Pos()), kind)
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked < 10 {
		t.Fatalf("only %d error or warning events found: is the walk right?", checked)
	}
}

func isEventType(e ast.Expr) bool { return name(e) == "Event" }

// name is an identifier's or a selector's last name.
func name(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return x.Sel.Name
	}
	return ""
}
