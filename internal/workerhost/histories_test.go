package workerhost

import (
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/hybridflow/hybridflow/internal/histories"
)

// workflowTypes records the workflow types a registration registers,
// under the names Temporal gives them.
type workflowTypes struct {
	worker.Registry // not called: panics if RegisterWorkflows uses something else
	names           []string
}

func (r *workflowTypes) RegisterWorkflow(w any) {
	r.RegisterWorkflowWithOptions(w, workflow.RegisterOptions{})
}

func (r *workflowTypes) RegisterWorkflowWithOptions(w any, o workflow.RegisterOptions) {
	if o.Name != "" {
		r.names = append(r.names, o.Name)
		return
	}
	// The SDK's default name: the function's, without its package path
	// (and without the -fm of a method value).
	name := runtime.FuncForPC(reflect.ValueOf(w).Pointer()).Name()
	name = strings.TrimSuffix(name[strings.LastIndex(name, ".")+1:], "-fm")
	r.names = append(r.names, name)
}

// TestEveryWorkflowTypeHasRecordedHistory: every workflow type the worker
// registers has at least one recorded history in
// workflows/testdata/histories, which workflows' replay test replays
// against the current code, so no change to any workflow reaches running
// workflows without a replay. A new workflow type needs a recording test
// (see that replay test's comment); a type no longer registered must not
// keep histories nobody replays against a worker.
func TestEveryWorkflowTypeHasRecordedHistory(t *testing.T) {
	var reg workflowTypes
	RegisterWorkflows(&reg)
	if len(reg.names) == 0 {
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
	for _, name := range reg.names {
		if len(byType[name]) == 0 {
			t.Errorf("workflow type %s has no recorded history in workflows/testdata/histories: record one (make histories)", name)
			continue
		}
		t.Logf("%-16s %d recorded: %s", name, len(byType[name]), strings.Join(byType[name], ", "))
	}
	var stale []string
	for typ, names := range byType {
		if !slices.Contains(reg.names, typ) {
			stale = append(stale, typ+" ("+strings.Join(names, ", ")+")")
		}
	}
	sort.Strings(stale)
	for _, s := range stale {
		t.Errorf("recorded histories of a workflow type the worker does not register: %s", s)
	}
}
