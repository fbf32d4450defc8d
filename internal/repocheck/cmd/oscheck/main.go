// Command oscheck type-checks packages for another operating system, as
// the compiler's front end would for `GOOS=windows go build`, without
// generating code: the on-prem worker runs on Windows hosts, and what
// breaks there is a file for one system that uses or leaves out what
// another declares. Every dependency is checked from its source, so no
// dependency is compiled a second time for Windows (make test's
// windows-check; a full Windows build compiles the whole tree again).
//
//	go run ./internal/repocheck/cmd/oscheck -goos windows -goarch amd64 ./...
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"golang.org/x/tools/go/packages"
)

func main() {
	goos := flag.String("goos", "windows", "GOOS to check for")
	goarch := flag.String("goarch", "amd64", "GOARCH to check for")
	flag.Parse()
	patterns := flag.Args()
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	n, err := check(*goos, *goarch, patterns)
	if err != nil {
		fmt.Fprintln(os.Stderr, "oscheck:", err)
		os.Exit(1)
	}
	fmt.Printf("oscheck: %d packages (with their dependencies) type-check for %s/%s\n", n, *goos, *goarch)
}

// check loads patterns for goos/goarch with every dependency parsed and
// type-checked from source, and returns how many packages matched, or
// the errors found in any package, dependencies included.
func check(goos, goarch string, patterns []string) (int, error) {
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedImports | packages.NeedDeps |
			packages.NeedTypes | packages.NeedSyntax,
		Env: append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0"),
	}
	pkgs, err := packages.Load(cfg, patterns...)
	if err != nil {
		return 0, err
	}
	var errs []string
	packages.Visit(pkgs, nil, func(p *packages.Package) {
		for _, e := range p.Errors {
			errs = append(errs, fmt.Sprintf("%s: %s", p.PkgPath, e))
		}
	})
	if len(errs) > 0 {
		return 0, fmt.Errorf("%d error(s) for %s/%s:\n  %s", len(errs), goos, goarch, strings.Join(errs, "\n  "))
	}
	return len(pkgs), nil
}
