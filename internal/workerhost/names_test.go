package workerhost

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// contractActivityNames reads the Act* constants of package contract from
// its source, so a constant added there is checked without being listed
// here.
func contractActivityNames(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, "../../contract", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, d := range f.Decls {
				g, ok := d.(*ast.GenDecl)
				if !ok || g.Tok != token.CONST {
					continue
				}
				for _, s := range g.Specs {
					vs := s.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if !strings.HasPrefix(n.Name, "Act") || i >= len(vs.Values) {
							continue
						}
						lit, ok := vs.Values[i].(*ast.BasicLit)
						if !ok || lit.Kind != token.STRING {
							t.Fatalf("contract.%s is not a string literal", n.Name)
						}
						out[n.Name], _ = strconv.Unquote(lit.Value)
					}
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no Act* constant found in contract")
	}
	return out
}

// TestContractActivityNamesRegistered: every activity name the workflows
// schedule by (contract.Act*) is one the worker registers on some role, and
// every activity the worker registers has such a name, so a typo fails
// here rather than in a running workflow (an unregistered name only shows
// as a task that no worker picks up).
func TestContractActivityNamesRegistered(t *testing.T) {
	w, err := sim.Load("../../configs/sim/small.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	be, err := backend.NewSimulated(ctx, w, zap.NewNop(), backend.SimOptions{DirectShell: true})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	reg := ForBackend(be, "names@test")
	registered := map[string]bool{}
	for _, role := range []config.Role{{Kind: config.RoleCloud}, {Kind: config.RoleOnPrem, Site: "site-1"}, {Kind: config.RoleLync, Site: "site-1"}} {
		var r recorder
		if err := reg(role, &r); err != nil {
			t.Fatal(err)
		}
		for _, n := range r.activities {
			registered[n] = true
		}
	}
	consts := contractActivityNames(t)
	named := map[string]bool{}
	for c, n := range consts {
		named[n] = true
		if !registered[n] {
			t.Errorf("contract.%s = %q: no worker role registers an activity of that name", c, n)
		}
	}
	var missing []string
	for n := range registered {
		if !named[n] {
			missing = append(missing, n)
		}
	}
	slices.Sort(missing)
	for _, n := range missing {
		t.Errorf("activity %q is registered but has no contract.Act* name", n)
	}
	t.Logf("%d contract names, %d registered activity names", len(consts), len(registered))
}
