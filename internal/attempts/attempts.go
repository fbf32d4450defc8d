// Package attempts records every activity attempt the workers of a test
// run, through a worker interceptor, and finds attempts that ran at the
// same time: one tenant's step executed twice at once, by two workers or
// by two runs of the tenant. The end-to-end tests and the chaos suite
// share it.
package attempts

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
)

// Execution is one activity attempt as a worker ran it.
type Execution struct {
	Worker            int // incarnation number
	WorkflowID, RunID string
	ActivityID, Type  string
	Attempt           int32
	Local             bool
	Start, End        time.Time
	Err               string
	Cancelled         bool // its context was cancelled (the worker stopped)
}

// Recorder sees every activity attempt of every worker incarnation
// through a client interceptor set on the incarnation's client, so the
// worker host is still built by workerhost.Start and ForBackend.
type Recorder struct {
	mu      sync.Mutex
	execs   []Execution
	running map[*Execution]bool
}

// Interceptor is the client interceptor for worker incarnation gen.
func (r *Recorder) Interceptor(gen int) interceptor.ClientInterceptor {
	return &incarnation{rec: r, gen: gen}
}

// Executions returns the finished attempts.
func (r *Recorder) Executions() []Execution {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.execs)
}

// OfType lists the finished attempts of one activity type by start time.
func (r *Recorder) OfType(typ string) []Execution {
	var out []Execution
	for _, x := range r.Executions() {
		if x.Type == typ {
			out = append(out, x)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// AwaitRunning waits until an attempt of the type is executing and
// returns when it started.
func (r *Recorder) AwaitRunning(ctx context.Context, typ string) (time.Time, error) {
	for {
		r.mu.Lock()
		for x := range r.running {
			if x.Type == typ {
				began := x.Start
				r.mu.Unlock()
				return began, nil
			}
		}
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("activity %s never ran: %w", typ, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

type incarnation struct {
	interceptor.InterceptorBase
	rec *Recorder
	gen int
}

func (i *incarnation) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &activityIn{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, inc: i}
}

type activityIn struct {
	interceptor.ActivityInboundInterceptorBase
	inc *incarnation
}

func (a *activityIn) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	info := activity.GetInfo(ctx)
	x := &Execution{Worker: a.inc.gen, WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
		ActivityID: info.ActivityID, Type: info.ActivityType.Name, Attempt: info.Attempt, Local: info.IsLocalActivity, Start: time.Now()}
	r := a.inc.rec
	r.mu.Lock()
	if r.running == nil {
		r.running = map[*Execution]bool{}
	}
	r.running[x] = true
	r.mu.Unlock()
	out, err := a.Next.ExecuteActivity(ctx, in)
	// The end is when the code returned, not when the server heard of it:
	// an attempt of a killed worker may run on after its report is lost.
	x.End = time.Now()
	if err != nil {
		x.Err = err.Error()
	}
	x.Cancelled = ctx.Err() != nil
	r.mu.Lock()
	delete(r.running, x)
	r.execs = append(r.execs, *x)
	r.mu.Unlock()
	return out, err
}

// Overlaps reports attempts of one activity type for one workflow ID (one
// tenant's step, over all its runs) that ran at the same time.
func Overlaps(execs []Execution) []string {
	groups := map[string][]Execution{}
	for _, x := range execs {
		k := x.WorkflowID + "|" + x.Type
		groups[k] = append(groups[k], x)
	}
	var out []string
	for _, g := range groups {
		sort.Slice(g, func(i, j int) bool { return g[i].Start.Before(g[j].Start) })
		for i := 1; i < len(g); i++ {
			for j := 0; j < i; j++ {
				if g[i].Start.Before(g[j].End) {
					out = append(out, fmt.Sprintf("%s %s: attempt %d (worker %d, run %s) started while attempt %d (worker %d, run %s) was still running",
						g[i].WorkflowID, g[i].Type, g[i].Attempt, g[i].Worker, g[i].RunID, g[j].Attempt, g[j].Worker, g[j].RunID))
				}
			}
		}
	}
	sort.Strings(out)
	return out
}
