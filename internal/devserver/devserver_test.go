package devserver

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hybridflow/hybridflow/workflows"
)

// The Makefile registers search attributes on the dev server it starts;
// they must be exactly the ones the workflows upsert.
func TestMakefileSearchAttributesMatchWorkflows(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^SEARCH_ATTRIBUTES\s*:=\s*(.*)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("Makefile has no SEARCH_ATTRIBUTES")
	}
	got := strings.Fields(string(m[1]))
	var want []string
	for n := range workflows.SearchAttributes {
		want = append(want, n)
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("Makefile SEARCH_ATTRIBUTES = %v, workflows.SearchAttributes = %v", got, want)
	}
}
