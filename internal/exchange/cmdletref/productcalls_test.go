package cmdletref

// TestProductCallsAreDocumented derives, from the product's source, every
// (cmdlet, set of parameter names) it can send and on which side, and
// binds each against the reference table. Nothing is listed by hand: the
// scan finds every exchange.Command the product builds (composite
// literals, and calls of helpers such as activities' cmd(name, kv...)),
// follows parameter slices and maps through append, index assignments,
// helper functions that return them and loops over literal tables, and
// works out the side from which worker type's methods reach the call.
// What it cannot determine statically fails the test, naming the call
// site, so that a maintainer makes it static.

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/hybridflow/hybridflow/internal/exchange"
)

// workerSides says which side each worker type's methods talk to: the
// types that hold an on-prem PowerShell host, an Exchange Online client or
// a Lync host (package activities). A command reached from none of them
// fails the test until its type is added here.
var workerSides = map[string][]Side{
	"activities.OnPrem":  {OnPrem},
	"activities.Online":  {Online},
	"activities.Lync":    {Lync},
	"activities.Renewal": {OnPrem}, // its PowerShell methods run on the on-prem queue
}

// scanSkip are the directories that are not the product: the simulator
// (it answers commands, it does not send them) and non-Go trees.
var scanSkip = []string{"internal/sim", "bin", ".data", "docs", "configs"}

func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// productCall is one way a call site can send a command.
type productCall struct {
	Site   string // file:line
	Side   Side
	Cmdlet string
	Params []string
}

func TestProductCallsAreDocumented(t *testing.T) {
	calls, problems := scanProduct(moduleRoot(t))
	for _, p := range problems {
		t.Error(p)
	}
	checkCalls(t, calls)
	// A scan that finds nothing would pass vacuously.
	perSide := map[Side]int{}
	for _, c := range calls {
		perSide[c.Side]++
	}
	for _, s := range []Side{OnPrem, Online, Lync} {
		if perSide[s] == 0 {
			t.Errorf("the scan found no command sent to side %s: the scanner no longer sees the product's calls", s)
		}
	}
	if testing.Verbose() {
		seen := map[string]bool{}
		var lines []string
		for _, c := range calls {
			l := fmt.Sprintf("%-7s %s", c.Side, describe(c))
			if !seen[l] {
				seen[l] = true
				lines = append(lines, l)
			}
		}
		sort.Strings(lines)
		t.Logf("%d call sites × sides × parameter combinations, %d distinct calls:\n%s", len(calls), len(lines), strings.Join(lines, "\n"))
	}
}

// checkCalls binds every call, failing with the call site.
func checkCalls(t *testing.T, calls []productCall) {
	t.Helper()
	for _, c := range calls {
		if !exchange.Allowed(c.Cmdlet) {
			t.Errorf("%s: %s is not on exchange.AllowedCmdlets, so the hosts refuse it", c.Site, c.Cmdlet)
		}
		cmd := exchange.Command{Cmdlet: c.Cmdlet, Parameters: map[string]any{}}
		for _, p := range c.Params {
			cmd.Parameters[p] = true
		}
		if _, err := Bind(c.Side, cmd); err != nil {
			t.Errorf("%s: %s %s: %v", c.Site, c.Side, describe(c), err)
		}
	}
}

func describe(c productCall) string {
	if len(c.Params) == 0 {
		return c.Cmdlet
	}
	return c.Cmdlet + " -" + strings.Join(c.Params, " -")
}

// TestScannerSeesPlantedParameter plants an undocumented parameter into a
// copy of a product file and shows that the scan reports it: the check is
// only as good as the scan's reach.
func TestScannerSeesPlantedParameter(t *testing.T) {
	root := moduleRoot(t)
	src, err := os.ReadFile(filepath.Join(root, "activities", "onprem.go"))
	if err != nil {
		t.Fatal(err)
	}
	planted := strings.Replace(string(src), `cmd("Get-PartnerApplication")`, `cmd("Get-PartnerApplication", "Foo", 1)`, 1)
	if planted == string(src) {
		t.Fatal(`activities/onprem.go no longer calls cmd("Get-PartnerApplication"); plant elsewhere`)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "activities"), 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(root, "activities"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(root, "activities", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "onprem.go" {
			b = []byte(planted)
		}
		if err := os.WriteFile(filepath.Join(dir, "activities", e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	calls, problems := scanProduct(dir)
	if len(problems) > 0 {
		t.Fatalf("scan of the planted copy: %v", problems)
	}
	var refused []string
	for _, c := range calls {
		cmd := exchange.Command{Cmdlet: c.Cmdlet, Parameters: map[string]any{}}
		for _, p := range c.Params {
			cmd.Parameters[p] = true
		}
		if _, err := Bind(c.Side, cmd); err != nil {
			refused = append(refused, fmt.Sprintf("%s: %v", c.Site, err))
		}
	}
	if len(refused) != 1 || !strings.Contains(refused[0], "A parameter cannot be found that matches parameter name 'Foo'.") ||
		!strings.Contains(refused[0], "onprem.go:") {
		t.Fatalf("planted -Foo: refused %q", refused)
	}
}

// TestScannerFailsOnDynamicNames shows that a parameter name the scan
// cannot determine is reported at its call site rather than skipped.
func TestScannerFailsOnDynamicNames(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "activities"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := `package activities

import "github.com/hybridflow/hybridflow/internal/exchange"

type OnPrem struct{}

func cmd(name string, kv ...any) exchange.Command {
	c := exchange.Command{Cmdlet: name}
	if len(kv) > 0 {
		c.Parameters = map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			c.Parameters[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

func (a *OnPrem) Read(name string) exchange.Command { return cmd("Get-AuthServer", name, 1) }

func (a *OnPrem) Other(p map[string]any) exchange.Command {
	return exchange.Command{Cmdlet: "Get-AuthServer", Parameters: p}
}

func (a *OnPrem) Missing() exchange.Command { return cmd("Import-ExchangeCertificate") }
`
	if err := os.WriteFile(filepath.Join(dir, "activities", "x.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	calls, problems := scanProduct(dir)
	joined := strings.Join(problems, "\n")
	for _, want := range []string{"x.go:18:", "x.go:21:"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no problem reported at %s; problems:\n%s", want, joined)
		}
	}
	var missing bool
	for _, c := range calls {
		if _, err := Bind(c.Side, exchange.Command{Cmdlet: c.Cmdlet}); err != nil &&
			strings.Contains(err.Error(), "cmdlet Import-ExchangeCertificate is not in the reference table") {
			missing = true
		}
	}
	if !missing {
		t.Errorf("Import-ExchangeCertificate was not reported as missing from the table: calls %+v", calls)
	}
}

// ---- the scan ----

type funcKey = string // "pkg.Recv.Name", "pkg.Name" or "pkg.var:Name"

type pkgScan struct {
	fset     *token.FileSet
	pkg      string // directory relative to the root, slash-separated
	name     string // Go package name
	files    []*ast.File
	funcs    map[string]*ast.FuncDecl   // key without the pkg prefix
	byName   map[string][]*ast.FuncDecl // method and function names
	consts   map[string]string          // package-level string constants
	helpers  map[*ast.FuncDecl]helper
	exchName map[*ast.File]string // local name of the exchange package
	problems []string
}

// helper is a function that builds a Command from a cmdlet-name argument
// and name/value pairs (activities' cmd).
type helper struct {
	nameArg int
	kvArg   int // index of the variadic name/value parameter
}

type site struct {
	pos    token.Pos
	owner  funcKey
	cmdlet string
	combos [][]string
}

func scanProduct(root string) ([]productCall, []string) {
	var problems []string
	var pkgs []*pkgScan
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor" || slices.Contains(scanSkip, rel)) {
				return filepath.SkipDir
			}
			p, err := parseDir(fset, path, rel)
			if err != nil {
				return err
			}
			if p != nil {
				pkgs = append(pkgs, p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, []string{err.Error()}
	}
	// Reachability over all packages: the worker types live in activities,
	// but a command could be built anywhere.
	edges := map[funcKey][]funcKey{}
	var sites []site
	for _, p := range pkgs {
		p.findHelpers()
		for k, v := range p.edges() {
			edges[k] = append(edges[k], v...)
		}
		sites = append(sites, p.sites()...)
		problems = append(problems, p.problems...)
	}
	sides := map[funcKey][]Side{}
	for root, ss := range workerSides {
		prefix := root + "."
		var start []funcKey
		for k := range edges {
			if strings.HasPrefix(k, prefix) {
				start = append(start, k)
			}
		}
		for _, p := range pkgs {
			for k := range p.funcs {
				if fk := p.name + "." + k; strings.HasPrefix(fk, prefix) {
					start = append(start, fk)
				}
			}
		}
		seen := map[funcKey]bool{}
		for len(start) > 0 {
			k := start[len(start)-1]
			start = start[:len(start)-1]
			if seen[k] {
				continue
			}
			seen[k] = true
			for _, s := range ss {
				if !slices.Contains(sides[k], s) {
					sides[k] = append(sides[k], s)
				}
			}
			start = append(start, edges[k]...)
		}
	}
	var calls []productCall
	for _, s := range sites {
		pos := fset.Position(s.pos)
		where := fmt.Sprintf("%s:%d", relPath(root, pos.Filename), pos.Line)
		ss := sides[s.owner]
		if len(ss) == 0 {
			problems = append(problems, fmt.Sprintf("%s: %s is built in %s, which no method of %v reaches: add the type that sends it to workerSides with its side", where, s.cmdlet, s.owner, slices.Sorted(mapKeys(workerSides))))
			continue
		}
		slices.Sort(ss)
		for _, side := range ss {
			for _, combo := range s.combos {
				calls = append(calls, productCall{Site: where, Side: side, Cmdlet: s.cmdlet, Params: combo})
			}
		}
	}
	return calls, problems
}

func mapKeys[M ~map[string]V, V any](m M) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func relPath(root, file string) string {
	if r, err := filepath.Rel(root, file); err == nil {
		return filepath.ToSlash(r)
	}
	return file
}

func parseDir(fset *token.FileSet, dir, rel string) (*pkgScan, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	p := &pkgScan{fset: fset, pkg: rel, funcs: map[string]*ast.FuncDecl{}, byName: map[string][]*ast.FuncDecl{},
		consts: map[string]string{}, helpers: map[*ast.FuncDecl]helper{}, exchName: map[*ast.File]string{}}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, 0)
		if err != nil {
			return nil, err
		}
		p.files = append(p.files, f)
		p.name = f.Name.Name
		p.exchName[f] = ""
		for _, im := range f.Imports {
			if path, _ := strconv.Unquote(im.Path.Value); path == "github.com/hybridflow/hybridflow/internal/exchange" {
				p.exchName[f] = "exchange"
				if im.Name != nil {
					p.exchName[f] = im.Name.Name
				}
			}
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				p.funcs[declKey(d)] = d
				p.byName[d.Name.Name] = append(p.byName[d.Name.Name], d)
			case *ast.GenDecl:
				if d.Tok != token.CONST {
					continue
				}
				for _, s := range d.Specs {
					vs := s.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if i < len(vs.Values) {
							if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
								p.consts[n.Name], _ = strconv.Unquote(lit.Value)
							}
						}
					}
				}
			}
		}
	}
	if len(p.files) == 0 {
		return nil, nil
	}
	return p, nil
}

func recvName(d *ast.FuncDecl) string {
	if d.Recv == nil || len(d.Recv.List) == 0 {
		return ""
	}
	t := d.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if ix, ok := t.(*ast.IndexExpr); ok {
		t = ix.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name
	}
	return "?"
}

func declKey(d *ast.FuncDecl) string {
	if r := recvName(d); r != "" {
		return r + "." + d.Name.Name
	}
	return d.Name.Name
}

func (p *pkgScan) key(k string) funcKey { return p.name + "." + k }

func (p *pkgScan) where(pos token.Pos) string {
	ps := p.fset.Position(pos)
	return fmt.Sprintf("%s/%s:%d", p.pkg, filepath.Base(ps.Filename), ps.Line)
}

func (p *pkgScan) problem(pos token.Pos, format string, args ...any) {
	p.problems = append(p.problems, p.where(pos)+": "+fmt.Sprintf(format, args...))
}

// isCommandType reports whether e names exchange.Command in file f.
func (p *pkgScan) isCommandType(f *ast.File, e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.SelectorExpr:
		x, ok := e.X.(*ast.Ident)
		return ok && p.exchName[f] != "" && x.Name == p.exchName[f] && e.Sel.Name == "Command"
	case *ast.Ident:
		return p.pkg == "internal/exchange" && e.Name == "Command"
	case *ast.StarExpr:
		return p.isCommandType(f, e.X)
	}
	return false
}

// commandLits calls fn for every composite literal of type
// exchange.Command in n, including elements of []exchange.Command and
// map[...]exchange.Command literals that elide the type.
func (p *pkgScan) commandLits(f *ast.File, n ast.Node, fn func(*ast.CompositeLit)) {
	ast.Inspect(n, func(n ast.Node) bool {
		cl, ok := n.(*ast.CompositeLit)
		if !ok {
			return true
		}
		if cl.Type != nil && p.isCommandType(f, cl.Type) {
			fn(cl)
			return true
		}
		var elt ast.Expr
		switch t := cl.Type.(type) {
		case *ast.ArrayType:
			elt = t.Elt
		case *ast.MapType:
			elt = t.Value
		}
		if elt != nil && p.isCommandType(f, elt) {
			for _, e := range cl.Elts {
				if kv, ok := e.(*ast.KeyValueExpr); ok {
					e = kv.Value
				}
				if ecl, ok := e.(*ast.CompositeLit); ok && ecl.Type == nil {
					fn(ecl)
				}
			}
		}
		return true
	})
}

func field(cl *ast.CompositeLit, name string) (ast.Expr, bool) {
	for _, e := range cl.Elts {
		kv, ok := e.(*ast.KeyValueExpr)
		if !ok {
			return nil, false // positional Command literals are not used
		}
		if id, ok := kv.Key.(*ast.Ident); ok && id.Name == name {
			return kv.Value, true
		}
	}
	return nil, false
}

// paramIndex returns the index of the parameter named id in d, or -1.
func paramIndex(d *ast.FuncDecl, id *ast.Ident) (int, bool) {
	i := 0
	for _, f := range d.Type.Params.List {
		for _, n := range f.Names {
			if id.Obj != nil && n.Obj == id.Obj {
				_, variadic := f.Type.(*ast.Ellipsis)
				return i, variadic
			}
			i++
		}
	}
	return -1, false
}

func (p *pkgScan) fileOf(n ast.Node) *ast.File {
	for _, f := range p.files {
		if f.Pos() <= n.Pos() && n.End() <= f.End() {
			return f
		}
	}
	return nil
}

// findHelpers finds functions that build a Command whose cmdlet is one of
// their parameters and whose parameters come from a variadic name/value
// list.
func (p *pkgScan) findHelpers() {
	for _, d := range p.funcs {
		if d.Body == nil {
			continue
		}
		f := p.fileOf(d)
		p.commandLits(f, d.Body, func(cl *ast.CompositeLit) {
			v, ok := field(cl, "Cmdlet")
			id, isID := v.(*ast.Ident)
			if !ok || !isID {
				return
			}
			i, _ := paramIndex(d, id)
			if i < 0 {
				return
			}
			h := helper{nameArg: i, kvArg: -1}
			n := 0
			for _, fl := range d.Type.Params.List {
				for range fl.Names {
					if _, ok := fl.Type.(*ast.Ellipsis); ok {
						h.kvArg = n
					}
					n++
				}
			}
			if h.kvArg < 0 {
				p.problem(cl.Pos(), "%s builds a Command from its parameter %s but takes no name/value list: teach the scan in productcalls_test.go how it sets parameters", d.Name.Name, id.Name)
				return
			}
			p.helpers[d] = h
		})
	}
}

func (p *pkgScan) helperOf(call *ast.CallExpr) (*ast.FuncDecl, helper, bool) {
	id, ok := call.Fun.(*ast.Ident)
	if !ok {
		return nil, helper{}, false
	}
	for _, d := range p.byName[id.Name] {
		if h, ok := p.helpers[d]; ok && d.Recv == nil {
			return d, h, true
		}
	}
	return nil, helper{}, false
}

// edges: which functions and package variables each function or variable
// refers to. Method calls x.M() lead to every method M of the package (the
// scan has no types), except on the method's own receiver.
func (p *pkgScan) edges() map[funcKey][]funcKey {
	out := map[funcKey][]funcKey{}
	vars := map[string]bool{}
	for _, f := range p.files {
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.VAR {
				for _, s := range g.Specs {
					for _, n := range s.(*ast.ValueSpec).Names {
						vars[n.Name] = true
					}
				}
			}
		}
	}
	refs := func(from funcKey, n ast.Node, recv *ast.FuncDecl) {
		ast.Inspect(n, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.Ident:
				if vars[n.Name] {
					out[from] = append(out[from], p.key("var:"+n.Name))
				}
				for _, d := range p.byName[n.Name] {
					if d.Recv == nil {
						out[from] = append(out[from], p.key(declKey(d)))
					}
				}
			case *ast.SelectorExpr:
				own := ""
				if recv != nil && recv.Recv != nil && len(recv.Recv.List) > 0 && len(recv.Recv.List[0].Names) > 0 {
					if x, ok := n.X.(*ast.Ident); ok && x.Obj != nil && x.Obj == recv.Recv.List[0].Names[0].Obj {
						own = recvName(recv)
					}
				}
				for _, d := range p.byName[n.Sel.Name] {
					if d.Recv != nil && (own == "" || recvName(d) == own) {
						out[from] = append(out[from], p.key(declKey(d)))
					}
				}
			}
			return true
		})
	}
	for _, f := range p.files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Body != nil {
					refs(p.key(declKey(d)), d.Body, d)
				}
			case *ast.GenDecl:
				if d.Tok != token.VAR {
					continue
				}
				for _, s := range d.Specs {
					vs := s.(*ast.ValueSpec)
					for _, n := range vs.Names {
						for _, v := range vs.Values {
							refs(p.key("var:"+n.Name), v, nil)
						}
					}
				}
			}
		}
	}
	return out
}

// sites finds every command the package builds.
func (p *pkgScan) sites() []site {
	var out []site
	for _, f := range p.files {
		for _, d := range f.Decls {
			var owner funcKey
			var fn *ast.FuncDecl
			var body ast.Node
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Body == nil {
					continue
				}
				if _, isHelper := p.helpers[d]; isHelper {
					continue
				}
				owner, fn, body = p.key(declKey(d)), d, d.Body
				p.noLateMutation(d.Body)
			case *ast.GenDecl:
				if d.Tok != token.VAR {
					continue
				}
				for _, s := range d.Specs {
					vs := s.(*ast.ValueSpec)
					for i, v := range vs.Values {
						name := vs.Names[min(i, len(vs.Names)-1)].Name
						out = append(out, p.sitesIn(f, p.key("var:"+name), nil, v)...)
					}
				}
				continue
			default:
				continue
			}
			out = append(out, p.sitesIn(f, owner, fn, body)...)
		}
	}
	return out
}

// noLateMutation refuses writes into a Command's Cmdlet or Parameters after
// it was built: the scan reads commands where they are built.
func (p *pkgScan) noLateMutation(body ast.Node) {
	ast.Inspect(body, func(n ast.Node) bool {
		as, ok := n.(*ast.AssignStmt)
		if !ok {
			return true
		}
		// Without types the scan tells a command by its fields: a literal
		// written into .Cmdlet, a map literal into .Parameters, or a key
		// into .Parameters[...]. Copies from another value (transports
		// forwarding a command, errors naming their cmdlet) are left alone.
		for i, l := range as.Lhs {
			var rhs ast.Expr
			if len(as.Rhs) == len(as.Lhs) {
				rhs = as.Rhs[i]
			}
			if ix, ok := l.(*ast.IndexExpr); ok {
				if sel, ok := ix.X.(*ast.SelectorExpr); ok && sel.Sel.Name == "Parameters" {
					p.problem(as.Pos(), "assignment into a command's Parameters after it was built: build the parameters first, then the exchange.Command, so the reference check can read them")
				}
				continue
			}
			sel, ok := l.(*ast.SelectorExpr)
			if !ok || rhs == nil {
				continue
			}
			_, isLit := p.str(rhs)
			cl, isMap := rhs.(*ast.CompositeLit)
			if (sel.Sel.Name == "Cmdlet" && isLit) || (sel.Sel.Name == "Parameters" && isMap && cl.Type != nil) {
				p.problem(as.Pos(), "assignment to a command's %s after it was built: build the parameters first, then the exchange.Command, so the reference check can read them", sel.Sel.Name)
			}
		}
		return true
	})
}

func (p *pkgScan) sitesIn(f *ast.File, owner funcKey, fn *ast.FuncDecl, n ast.Node) []site {
	var out []site
	ast.Inspect(n, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		_, h, ok := p.helperOf(call)
		if !ok {
			return true
		}
		if h.nameArg >= len(call.Args) {
			p.problem(call.Pos(), "call of a command helper without a cmdlet name")
			return true
		}
		name, ok := p.str(call.Args[h.nameArg])
		if !ok {
			p.problem(call.Pos(), "the cmdlet name is not a string literal or constant: make it one so the reference check can read it")
			return true
		}
		kv := call.Args[min(h.kvArg, len(call.Args)):]
		var combos [][]string
		var err error
		if call.Ellipsis.IsValid() {
			if len(kv) != 1 {
				p.problem(call.Pos(), "%s: name/value pairs before a spread list", name)
				return true
			}
			combos, err = p.keySets(fn, kv[0], call, 0)
		} else {
			var keys []string
			keys, err = p.pairs(kv)
			combos = [][]string{keys}
		}
		if err != nil {
			p.problem(call.Pos(), "%s: %v", name, err)
			return true
		}
		out = append(out, site{pos: call.Pos(), owner: owner, cmdlet: name, combos: normalise(combos)})
		return true
	})
	p.commandLits(f, n, func(cl *ast.CompositeLit) {
		v, ok := field(cl, "Cmdlet")
		if !ok {
			p.problem(cl.Pos(), "exchange.Command without a Cmdlet field (or positional): name the cmdlet as Cmdlet: \"...\"")
			return
		}
		if sel, ok := v.(*ast.SelectorExpr); ok && sel.Sel.Name == "Cmdlet" {
			return // forwards a command built elsewhere (transport, wrappers)
		}
		name, ok := p.str(v)
		if !ok {
			p.problem(cl.Pos(), "the cmdlet name is not a string literal or constant: make it one so the reference check can read it")
			return
		}
		combos := [][]string{nil}
		if pv, ok := field(cl, "Parameters"); ok {
			var err error
			if combos, err = p.keySets(fn, pv, cl, 0); err != nil {
				p.problem(cl.Pos(), "%s: %v", name, err)
				return
			}
		}
		out = append(out, site{pos: cl.Pos(), owner: owner, cmdlet: name, combos: normalise(combos)})
	})
	return out
}

func normalise(combos [][]string) [][]string {
	seen := map[string]bool{}
	var out [][]string
	for _, c := range combos {
		c = slices.Clone(c)
		slices.Sort(c)
		c = slices.Compact(c)
		k := strings.Join(c, "\x00")
		if !seen[k] {
			seen[k] = true
			out = append(out, c)
		}
	}
	return out
}

// str resolves a string literal or a package-level string constant.
func (p *pkgScan) str(e ast.Expr) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind == token.STRING {
			s, err := strconv.Unquote(e.Value)
			return s, err == nil
		}
	case *ast.Ident:
		s, ok := p.consts[e.Name]
		return s, ok
	case *ast.ParenExpr:
		return p.str(e.X)
	}
	return "", false
}

// pairs reads parameter names from a name, value, name, value... list.
func (p *pkgScan) pairs(kv []ast.Expr) ([]string, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("odd name/value list (%d items)", len(kv))
	}
	var keys []string
	for i := 0; i < len(kv); i += 2 {
		k, ok := p.str(kv[i])
		if !ok {
			return nil, fmt.Errorf("parameter name at %s is not a string literal or constant: make it one so the reference check can read it", p.where(kv[i].Pos()))
		}
		keys = append(keys, k)
	}
	return keys, nil
}

const maxOptional = 12

// keySets returns the sets of parameter names e can hold at use: e is a
// name/value slice or a map from parameter names.
func (p *pkgScan) keySets(fn *ast.FuncDecl, e ast.Expr, use ast.Node, depth int) ([][]string, error) {
	if depth > 6 {
		return nil, fmt.Errorf("parameters pass through too many functions to follow")
	}
	switch e := e.(type) {
	case *ast.ParenExpr:
		return p.keySets(fn, e.X, use, depth)
	case *ast.CompositeLit:
		switch e.Type.(type) {
		case *ast.MapType:
			var keys []string
			for _, el := range e.Elts {
				k, ok := p.str(el.(*ast.KeyValueExpr).Key)
				if !ok {
					return nil, fmt.Errorf("map key at %s is not a string literal or constant", p.where(el.Pos()))
				}
				keys = append(keys, k)
			}
			return [][]string{keys}, nil
		case *ast.ArrayType:
			keys, err := p.pairs(e.Elts)
			return [][]string{keys}, err
		}
	case *ast.Ident:
		if e.Name == "nil" {
			return [][]string{nil}, nil
		}
		if fn != nil && e.Obj != nil && e.Obj.Kind == ast.Var {
			return p.localKeySets(fn, e, use, depth)
		}
	case *ast.CallExpr:
		if id, ok := e.Fun.(*ast.Ident); ok && id.Name == "append" && len(e.Args) > 0 && !e.Ellipsis.IsValid() {
			base, err := p.keySets(fn, e.Args[0], use, depth+1)
			if err != nil {
				return nil, err
			}
			more, err := p.pairs(e.Args[1:])
			if err != nil {
				return nil, err
			}
			for i := range base {
				base[i] = append(slices.Clone(base[i]), more...)
			}
			return base, nil
		}
		return p.returnedKeySets(e, 0, depth)
	}
	return nil, fmt.Errorf("parameters %s at %s cannot be determined statically: build them from literal names", exprString(e), p.where(e.Pos()))
}

// returnedKeySets follows a call of a package function or method to what
// it returns as result idx.
func (p *pkgScan) returnedKeySets(call *ast.CallExpr, idx, depth int) ([][]string, error) {
	callee, err := p.callee(call)
	if err != nil {
		return nil, err
	}
	var out [][]string
	var ferr error
	found := false
	ast.Inspect(callee.Body, func(n ast.Node) bool {
		if _, ok := n.(*ast.FuncLit); ok {
			return false
		}
		r, ok := n.(*ast.ReturnStmt)
		if !ok || ferr != nil {
			return true
		}
		if idx >= len(r.Results) {
			ferr = fmt.Errorf("%s returns its parameters in a way the scan cannot follow (at %s)", callee.Name.Name, p.where(r.Pos()))
			return false
		}
		found = true
		c, err := p.keySets(callee, r.Results[idx], r, depth+1)
		if err != nil {
			ferr = err
			return false
		}
		out = append(out, c...)
		return true
	})
	if ferr != nil {
		return nil, ferr
	}
	if !found {
		return nil, fmt.Errorf("%s has no return statement to follow", callee.Name.Name)
	}
	return out, nil
}

// callee resolves a call to the one function or method of the package it
// can be (by name).
func (p *pkgScan) callee(call *ast.CallExpr) (*ast.FuncDecl, error) {
	var name string
	method := false
	switch f := call.Fun.(type) {
	case *ast.Ident:
		name = f.Name
	case *ast.SelectorExpr:
		name, method = f.Sel.Name, true
	default:
		return nil, fmt.Errorf("call %s at %s cannot be followed", exprString(call.Fun), p.where(call.Pos()))
	}
	var cands []*ast.FuncDecl
	for _, d := range p.byName[name] {
		if (d.Recv != nil) == method && d.Body != nil {
			cands = append(cands, d)
		}
	}
	if len(cands) != 1 {
		return nil, fmt.Errorf("call %s at %s: %d functions of that name in package %s; the scan follows only a unique one", exprString(call.Fun), p.where(call.Pos()), len(cands), p.pkg)
	}
	return cands[0], nil
}

// localKeySets reads a local variable: its definitions (alternatives),
// then appends and index assignments (always applied when they run
// unconditionally before use, optional otherwise).
func (p *pkgScan) localKeySets(fn *ast.FuncDecl, v *ast.Ident, use ast.Node, depth int) ([][]string, error) {
	var bases [][][]string
	var always []string
	var optional [][]string // each entry: keys added together, or (from a loop) one of them
	var ferr error
	useAnc := ancestors(fn.Body, use)
	fail := func(n ast.Node, format string, args ...any) {
		if ferr == nil {
			ferr = fmt.Errorf("%s: %s", p.where(n.Pos()), fmt.Sprintf(format, args...))
		}
	}
	isV := func(e ast.Expr) bool {
		id, ok := e.(*ast.Ident)
		return ok && id.Obj != nil && id.Obj == v.Obj
	}
	unconditional := func(n ast.Node) bool {
		anc := ancestors(fn.Body, n)
		if len(anc) < 2 {
			return false
		}
		block := anc[1] // the statement's parent
		return slices.Contains(useAnc, block) && n.Pos() < use.Pos()
	}
	addMod := func(stmt ast.Node, keys []string, fromLoop bool) {
		switch {
		case fromLoop:
			for _, k := range keys {
				optional = append(optional, []string{k})
			}
		case unconditional(stmt):
			always = append(always, keys...)
		default:
			optional = append(optional, keys)
		}
	}
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		if ferr != nil {
			return false
		}
		switch n := n.(type) {
		case *ast.AssignStmt:
			for i, l := range n.Lhs {
				if ix, ok := l.(*ast.IndexExpr); ok && isV(ix.X) {
					keys, loop, err := p.indexKeys(fn, ix.Index)
					if err != nil {
						ferr = err
						return false
					}
					addMod(n, keys, loop)
					continue
				}
				if !isV(l) {
					continue
				}
				var rhs ast.Expr
				switch {
				case len(n.Rhs) == len(n.Lhs):
					rhs = n.Rhs[i]
				case len(n.Rhs) == 1:
					call, ok := n.Rhs[0].(*ast.CallExpr)
					if !ok {
						fail(n, "cannot follow %s", v.Name)
						return false
					}
					c, err := p.returnedKeySets(call, i, depth+1)
					if err != nil {
						ferr = err
						return false
					}
					bases = append(bases, c)
					continue
				}
				if call, ok := rhs.(*ast.CallExpr); ok {
					if id, ok := call.Fun.(*ast.Ident); ok && id.Name == "append" && len(call.Args) > 0 && isV(call.Args[0]) {
						if call.Ellipsis.IsValid() {
							fail(n, "append(%s, x...) cannot be followed: append literal names", v.Name)
							return false
						}
						keys, err := p.pairs(call.Args[1:])
						if err != nil {
							ferr = err
							return false
						}
						addMod(n, keys, false)
						continue
					}
				}
				c, err := p.keySets(fn, rhs, n, depth+1)
				if err != nil {
					ferr = err
					return false
				}
				bases = append(bases, c)
			}
		case *ast.ValueSpec:
			for i, name := range n.Names {
				if name.Obj != v.Obj {
					continue
				}
				if i >= len(n.Values) {
					bases = append(bases, [][]string{nil})
					continue
				}
				c, err := p.keySets(fn, n.Values[i], n, depth+1)
				if err != nil {
					ferr = err
					return false
				}
				bases = append(bases, c)
			}
		case *ast.UnaryExpr:
			if n.Op == token.AND && isV(n.X) {
				fail(n, "&%s lets another function change the parameters: build them here", v.Name)
			}
		case *ast.CallExpr:
			if id, ok := n.Fun.(*ast.Ident); ok && (id.Name == "append" || id.Name == "len" || id.Name == "delete") {
				return true
			}
			if _, _, ok := p.helperOf(n); ok {
				return true
			}
			for _, a := range n.Args {
				if isV(a) {
					fail(n, "%s is passed to %s, which could change it: the scan cannot follow that", v.Name, exprString(n.Fun))
				}
			}
		case *ast.RangeStmt:
			if (n.Key != nil && isV(n.Key)) || (n.Value != nil && isV(n.Value)) {
				fail(n, "%s is a range variable: parameters must come from literal names", v.Name)
			}
		}
		return true
	})
	if ferr != nil {
		return nil, ferr
	}
	if len(bases) == 0 {
		return nil, fmt.Errorf("%s at %s: no definition found", v.Name, p.where(v.Pos()))
	}
	if len(optional) > maxOptional {
		return nil, fmt.Errorf("%s at %s: %d optional parameter groups; too many combinations to check", v.Name, p.where(v.Pos()), len(optional))
	}
	var out [][]string
	for _, b := range bases {
		for _, base := range b {
			for mask := 0; mask < 1<<len(optional); mask++ {
				c := append(slices.Clone(base), always...)
				for j, o := range optional {
					if mask&(1<<j) != 0 {
						c = append(c, o...)
					}
				}
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// indexKeys resolves the key of m[key] = v: a literal or constant, or a
// field of a loop variable ranging over a literal table (each of the
// table's values may then be set).
func (p *pkgScan) indexKeys(fn *ast.FuncDecl, key ast.Expr) ([]string, bool, error) {
	if s, ok := p.str(key); ok {
		return []string{s}, false, nil
	}
	sel, ok := key.(*ast.SelectorExpr)
	if !ok {
		return nil, false, fmt.Errorf("map key %s at %s cannot be determined statically: use literal names", exprString(key), p.where(key.Pos()))
	}
	x, ok := sel.X.(*ast.Ident)
	if !ok || x.Obj == nil {
		return nil, false, fmt.Errorf("map key %s at %s cannot be determined statically", exprString(key), p.where(key.Pos()))
	}
	var rng *ast.RangeStmt
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		if r, ok := n.(*ast.RangeStmt); ok {
			if id, ok := r.Value.(*ast.Ident); ok && id.Obj == x.Obj {
				rng = r
			}
		}
		return rng == nil
	})
	if rng == nil {
		return nil, false, fmt.Errorf("map key %s at %s: %s is not a loop variable over a literal table", exprString(key), p.where(key.Pos()), x.Name)
	}
	elts, fields, err := p.tableOf(fn, rng.X)
	if err != nil {
		return nil, false, fmt.Errorf("map key %s at %s: %v", exprString(key), p.where(key.Pos()), err)
	}
	fi := slices.Index(fields, sel.Sel.Name)
	var keys []string
	for _, el := range elts {
		cl, ok := el.(*ast.CompositeLit)
		if !ok {
			return nil, false, fmt.Errorf("table element at %s is not a literal", p.where(el.Pos()))
		}
		var ve ast.Expr
		for j, fe := range cl.Elts {
			if kv, ok := fe.(*ast.KeyValueExpr); ok {
				if id, ok := kv.Key.(*ast.Ident); ok && id.Name == sel.Sel.Name {
					ve = kv.Value
				}
			} else if j == fi {
				ve = fe
			}
		}
		s, ok := p.str(ve)
		if ve == nil || !ok {
			return nil, false, fmt.Errorf("table element at %s: field %s is not a string literal or constant", p.where(el.Pos()), sel.Sel.Name)
		}
		keys = append(keys, s)
	}
	return keys, true, nil
}

// tableOf returns the elements of a literal table (a slice of struct
// literals) that e evaluates to, and the struct's field names in order: a
// literal, or a call of a package function or method that returns one.
func (p *pkgScan) tableOf(fn *ast.FuncDecl, e ast.Expr) ([]ast.Expr, []string, error) {
	fieldsOf := func(t ast.Expr) []string {
		at, ok := t.(*ast.ArrayType)
		if !ok {
			return nil
		}
		st, ok := at.Elt.(*ast.StructType)
		if !ok {
			return nil
		}
		var names []string
		for _, f := range st.Fields.List {
			for _, n := range f.Names {
				names = append(names, n.Name)
			}
		}
		return names
	}
	switch e := e.(type) {
	case *ast.CompositeLit:
		return e.Elts, fieldsOf(e.Type), nil
	case *ast.CallExpr:
		callee, err := p.callee(e)
		if err != nil {
			return nil, nil, err
		}
		var lit *ast.CompositeLit
		ast.Inspect(callee.Body, func(n ast.Node) bool {
			if r, ok := n.(*ast.ReturnStmt); ok && len(r.Results) == 1 {
				if cl, ok := r.Results[0].(*ast.CompositeLit); ok && lit == nil {
					lit = cl
				}
			}
			return lit == nil
		})
		if lit == nil {
			return nil, nil, fmt.Errorf("%s does not return a literal table", callee.Name.Name)
		}
		fields := fieldsOf(lit.Type)
		if fields == nil && callee.Type.Results != nil && len(callee.Type.Results.List) == 1 {
			fields = fieldsOf(callee.Type.Results.List[0].Type)
		}
		return lit.Elts, fields, nil
	}
	return nil, nil, fmt.Errorf("%s is not a literal table", exprString(e))
}

// ancestors returns the chain of nodes from n up to root (n first).
func ancestors(root, n ast.Node) []ast.Node {
	var path []ast.Node
	var found []ast.Node
	ast.Inspect(root, func(x ast.Node) bool {
		if found != nil {
			return false
		}
		if x == nil {
			path = path[:len(path)-1]
			return false
		}
		path = append(path, x)
		if x == n {
			found = slices.Clone(path)
			slices.Reverse(found)
			return false
		}
		return true
	})
	return found
}

func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	case *ast.CallExpr:
		return exprString(e.Fun) + "(...)"
	case *ast.IndexExpr:
		return exprString(e.X) + "[" + exprString(e.Index) + "]"
	case *ast.BasicLit:
		return e.Value
	}
	return fmt.Sprintf("%T", e)
}
