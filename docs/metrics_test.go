package docs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// registeredMetrics reads every non-test Go file of the module and returns
// the names of the metrics it registers, with where: the first argument of
// prometheus.NewDesc and the Name of a prometheus.*Opts literal. The
// source, not a scrape, because a metric with labels shows on /metrics only
// once something happened to it, and the forwarder's and the probe agent's
// only in their own processes.
func registeredMetrics(t *testing.T) map[string]string {
	t.Helper()
	names := map[string]string{}
	fset := token.NewFileSet()
	record := func(e ast.Expr, what string) {
		pos := fset.Position(e.Pos())
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			t.Errorf("%s: %s is not a string literal: write metric names whole, so that they can be found", pos, what)
			return
		}
		name, err := strconv.Unquote(lit.Value)
		if err != nil {
			t.Errorf("%s: %v", pos, err)
			return
		}
		names[name] = pos.String()
	}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != ".." && (strings.HasPrefix(n, ".") || n == "testdata" || n == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "NewDesc" && len(n.Args) > 0 {
					record(n.Args[0], "NewDesc's name")
				}
			case *ast.CompositeLit:
				sel, ok := n.Type.(*ast.SelectorExpr)
				if !ok || !strings.HasSuffix(sel.Sel.Name, "Opts") {
					return true
				}
				for _, el := range n.Elts {
					kv, ok := el.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					switch id, _ := kv.Key.(*ast.Ident); {
					case id == nil:
					case id.Name == "Name":
						record(kv.Value, sel.Sel.Name+".Name")
					case id.Name == "Namespace" || id.Name == "Subsystem":
						t.Errorf("%s: %s.%s: write metric names whole in Name, so that they can be found", fset.Position(kv.Pos()), sel.Sel.Name, id.Name)
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 50 {
		t.Fatalf("only %d metrics found in the sources", len(names))
	}
	return names
}

// TestMetricsDocumented holds docs/api.md to the metrics the code
// registers: each is named there whole, and each meridian_ name there is
// registered (histograms' _bucket, _sum and _count included).
func TestMetricsDocumented(t *testing.T) {
	registered := registeredMetrics(t)
	raw, err := os.ReadFile("api.md")
	if err != nil {
		t.Fatal(err)
	}
	page := string(raw)
	word := regexp.MustCompile(`meridian_[a-z0-9_]*[a-z0-9]`)
	named := map[string]bool{}
	for _, n := range word.FindAllString(page, -1) {
		named[n] = true
	}
	for _, name := range sortedKeys(registered) {
		if !strings.HasPrefix(name, "meridian_") {
			t.Errorf("%s: metric %s: Meridian's metrics are named meridian_*", registered[name], name)
		}
		if !named[name] {
			t.Errorf("metric %s (%s) is not documented in api.md", name, registered[name])
		}
	}
	for _, name := range sortedKeys(named) {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && registered[b] != "" {
				base = b
			}
		}
		if registered[base] == "" {
			t.Errorf("api.md names %s, which no code registers", name)
		}
	}
}
