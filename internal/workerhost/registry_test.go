package workerhost

import (
	"reflect"
	"runtime"
	"strings"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// recorder is a worker.Registry that records what a registration
// registers, under the names the Go SDK gives them: the activity values
// (acts), the activity type names (every exported method of a registered
// struct whose last result is an error, and a function under its
// RegisterOptions name or its own), and the workflow type names.
type recorder struct {
	worker.Registry // not called: panics if a registration uses something else
	acts            []any
	activities      []string
	workflows       []string
}

func (r *recorder) RegisterWorkflow(w any) {
	r.RegisterWorkflowWithOptions(w, workflow.RegisterOptions{})
}

func (r *recorder) RegisterWorkflowWithOptions(w any, o workflow.RegisterOptions) {
	name := o.Name
	if name == "" {
		name = funcName(w)
	}
	r.workflows = append(r.workflows, name)
}

func (r *recorder) RegisterActivity(a any) {
	r.RegisterActivityWithOptions(a, activity.RegisterOptions{})
}

func (r *recorder) RegisterActivityWithOptions(a any, o activity.RegisterOptions) {
	r.acts = append(r.acts, a)
	v := reflect.ValueOf(a)
	if v.Kind() == reflect.Func {
		name := o.Name
		if name == "" {
			name = funcName(a)
		}
		r.activities = append(r.activities, name)
		return
	}
	errType := reflect.TypeFor[error]()
	for i := range v.Type().NumMethod() {
		m := v.Type().Method(i)
		if n := m.Type.NumOut(); n == 0 || m.Type.Out(n-1) != errType {
			continue
		}
		r.activities = append(r.activities, o.Name+m.Name)
	}
}

// funcName is the SDK's default name of a registered function: its own,
// without the package path (and without the -fm of a method value).
func funcName(f any) string {
	full := runtime.FuncForPC(reflect.ValueOf(f).Pointer()).Name()
	return strings.TrimSuffix(full[strings.LastIndex(full, ".")+1:], "-fm")
}
