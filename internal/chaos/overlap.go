package chaos

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
	Start, End        time.Time
	Err               string
}

// Recorder sees every activity attempt of every worker incarnation
// through a worker interceptor set on the incarnation's client, so the
// worker host is still built by workerhost.Start and ForBackend.
type Recorder struct {
	mu    sync.Mutex
	execs []Execution
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
	x := Execution{Worker: a.inc.gen, WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
		ActivityID: info.ActivityID, Type: info.ActivityType.Name, Attempt: info.Attempt, Start: time.Now()}
	out, err := a.Next.ExecuteActivity(ctx, in)
	// The end is when the code returned, not when the server heard of it:
	// an attempt of a killed worker may run on after its report is lost.
	x.End = time.Now()
	if err != nil {
		x.Err = err.Error()
	}
	a.inc.rec.mu.Lock()
	a.inc.rec.execs = append(a.inc.rec.execs, x)
	a.inc.rec.mu.Unlock()
	return out, err
}

// Overlaps reports attempts of one activity type for one workflow ID (one
// tenant's step, over all its runs) that ran at the same time: a step
// executed twice at once, by two workers or by two runs of the tenant.
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

// Run is one workflow execution as the server lists it.
type Run struct {
	WorkflowID, RunID string
	Start, Close      time.Time // Close zero: still open
}

// RunOverlaps reports two runs of one workflow ID that were open at the
// same time: one tenant set up twice at once. Temporal's ID uniqueness
// should make it impossible; the check is that nothing (a second ID
// scheme, a terminate-and-restart) bypasses it.
func RunOverlaps(runs []Run) []string {
	groups := map[string][]Run{}
	for _, r := range runs {
		groups[r.WorkflowID] = append(groups[r.WorkflowID], r)
	}
	var out []string
	for id, g := range groups {
		sort.Slice(g, func(i, j int) bool { return g[i].Start.Before(g[j].Start) })
		for i := 1; i < len(g); i++ {
			prev := g[i-1]
			if prev.Close.IsZero() || g[i].Start.Before(prev.Close) {
				out = append(out, fmt.Sprintf("%s: run %s started at %s while run %s (started %s) was open until %s",
					id, g[i].RunID, g[i].Start.Format(time.RFC3339Nano), prev.RunID, prev.Start.Format(time.RFC3339Nano), closeOf(prev)))
			}
		}
	}
	sort.Strings(out)
	return out
}

func closeOf(r Run) string {
	if r.Close.IsZero() {
		return "now (still open)"
	}
	return r.Close.Format(time.RFC3339Nano)
}
