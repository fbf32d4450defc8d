package workflows_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// forbiddenDeps are packages workflow code must not link: the simulator,
// the PowerShell host, and the Graph and Azure SDKs. Workflows schedule
// activities by name (package contract), so none of the activity
// implementations, and none of what they use, is needed to run or replay
// a workflow.
var forbiddenDeps = []string{
	"github.com/hybridflow/hybridflow/internal/sim",
	"github.com/hybridflow/hybridflow/internal/exchange/shell",
	"github.com/microsoftgraph/msgraph-sdk-go",
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity",
}

// TestWorkflowsDependencies runs `go list -deps` on this package (test
// files excluded) and fails naming each forbidden package it links and
// the import chain that brings it in.
func TestWorkflowsDependencies(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goBin, "list", "-deps", "-f", `{{.ImportPath}} {{join .Imports " "}}`, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	imports := map[string][]string{}
	var root string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		imports[f[0]] = f[1:]
		root = f[0] // -deps lists the package itself last
	}
	for _, bad := range forbiddenDeps {
		var linked []string
		for pkg := range imports {
			if pkg == bad || strings.HasPrefix(pkg, bad+"/") {
				linked = append(linked, pkg)
			}
		}
		if len(linked) == 0 {
			continue
		}
		slices.Sort(linked)
		t.Errorf("%s links %s (%d package(s)): %s", root, bad, len(linked), strings.Join(importChain(imports, root, linked[0]), " → "))
	}
}

// importChain is a shortest import path from root to pkg.
func importChain(imports map[string][]string, root, pkg string) []string {
	prev := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == pkg {
			var chain []string
			for ; p != ""; p = prev[p] {
				chain = append([]string{p}, chain...)
			}
			return chain
		}
		for _, q := range imports[p] {
			if _, seen := prev[q]; !seen {
				prev[q] = p
				queue = append(queue, q)
			}
		}
	}
	return []string{pkg}
}
