package workerhost

import (
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hybridflow/hybridflow/internal/histories"
)

// TestEveryWorkflowTypeHasRecordedHistory: every workflow type the worker
// registers has at least one recorded history in
// workflows/testdata/histories, which workflows' replay test replays
// against the current code, so no change to any workflow reaches running
// workflows without a replay. A new workflow type needs a recording test
// (see that replay test's comment); a type no longer registered must not
// keep histories nobody replays against a worker.
func TestEveryWorkflowTypeHasRecordedHistory(t *testing.T) {
	var reg recorder
	RegisterWorkflows(&reg)
	if len(reg.workflows) == 0 {
		t.Fatal("RegisterWorkflows registered no workflow type")
	}
	files, err := histories.Load(histories.Dir(filepath.Join("..", "..")))
	if err != nil {
		t.Fatal(err)
	}
	byType := map[string][]string{}
	for _, f := range files {
		byType[f.Type] = append(byType[f.Type], f.Name)
	}
	for _, name := range reg.workflows {
		if len(byType[name]) == 0 {
			t.Errorf("workflow type %s has no recorded history in workflows/testdata/histories: record one (make histories)", name)
			continue
		}
		t.Logf("%-16s %d recorded: %s", name, len(byType[name]), strings.Join(byType[name], ", "))
	}
	var stale []string
	for typ, names := range byType {
		if !slices.Contains(reg.workflows, typ) {
			stale = append(stale, typ+" ("+strings.Join(names, ", ")+")")
		}
	}
	sort.Strings(stale)
	for _, s := range stale {
		t.Errorf("recorded histories of a workflow type the worker does not register: %s", s)
	}
}
