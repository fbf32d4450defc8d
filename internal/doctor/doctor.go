// Package doctor answers "can hybridflow run here?": Temporal reachable,
// namespace present, search attributes registered, and a live poller on
// every task queue an inventory needs, with what is missing named.
package doctor

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/hybridflow/hybridflow/internal/temporalx"
)

// Check is one line of the report.
type Check struct {
	Name    string   `json:"name"`
	OK      bool     `json:"ok"`
	Detail  string   `json:"detail"`
	Missing []string `json:"missing,omitempty"`
	// Hint says what to do when the check fails.
	Hint string `json:"hint,omitempty"`
}

// Report is the whole answer; Healthy only when every check passed.
type Report struct {
	Healthy   bool    `json:"healthy"`
	Address   string  `json:"address"`
	Namespace string  `json:"namespace"`
	Checks    []Check `json:"checks"`
}

// Options tune the checks.
type Options struct {
	Address   string // for the report only
	Namespace string
	// Queues the inventory needs served.
	Queues []temporalx.QueueNeed
	// SearchAttributes that must be registered, by name and type.
	SearchAttributes map[string]enumspb.IndexedValueType
	// PollerFreshness: a poller last seen longer ago than this is gone.
	// The server remembers pollers for minutes after they stop, and an idle
	// poller re-polls at least once per long-poll interval (about a minute
	// on a default server), so the default is a little over that.
	PollerFreshness time.Duration
	Now             func() time.Time
}

// DefaultPollerFreshness is slightly above a default server's long-poll interval.
const DefaultPollerFreshness = 75 * time.Second

// Run performs every check it can; a failed connection skips the rest.
func Run(ctx context.Context, c client.Client, o Options) Report {
	if o.PollerFreshness <= 0 {
		o.PollerFreshness = DefaultPollerFreshness
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := Report{Address: o.Address, Namespace: o.Namespace}
	add := func(ch Check) { r.Checks = append(r.Checks, ch) }

	if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		add(Check{Name: "temporal reachable", Detail: err.Error(), Hint: "start the server (`make server`) or fix temporal.address / HYBRIDFLOW_TEMPORAL_ADDRESS"})
		return r
	}
	add(Check{Name: "temporal reachable", OK: true, Detail: o.Address})

	if _, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: o.Namespace}); err != nil {
		add(Check{Name: "namespace", Detail: fmt.Sprintf("%s: %v", o.Namespace, err), Missing: []string{o.Namespace},
			Hint: fmt.Sprintf("create it: temporal operator namespace create --namespace %s", o.Namespace)})
		r.finish()
		return r
	}
	add(Check{Name: "namespace", OK: true, Detail: o.Namespace})

	add(searchAttributes(ctx, c, o))
	for _, q := range o.Queues {
		add(pollers(ctx, c, q, o))
	}
	r.finish()
	return r
}

func (r *Report) finish() {
	r.Healthy = len(r.Checks) > 0
	for _, c := range r.Checks {
		r.Healthy = r.Healthy && c.OK
	}
}

func searchAttributes(ctx context.Context, c client.Client, o Options) Check {
	ch := Check{Name: "search attributes"}
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: o.Namespace})
	if err != nil {
		ch.Detail = err.Error()
		return ch
	}
	names := make([]string, 0, len(o.SearchAttributes))
	for n := range o.SearchAttributes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if got, ok := resp.GetCustomAttributes()[n]; !ok || got != o.SearchAttributes[n] {
			ch.Missing = append(ch.Missing, n)
		}
	}
	if len(ch.Missing) > 0 {
		ch.Detail = "not registered: " + strings.Join(ch.Missing, ", ")
		var flags []string
		for _, n := range ch.Missing {
			flags = append(flags, "--name "+n+" --type Keyword")
		}
		ch.Hint = "temporal operator search-attribute create --namespace " + o.Namespace + " " + strings.Join(flags, " ")
		return ch
	}
	ch.OK = true
	ch.Detail = strings.Join(names, ", ")
	return ch
}

// pollers checks the queue types a role must serve: activity tasks always,
// workflow tasks on the cloud queue.
func pollers(ctx context.Context, c client.Client, q temporalx.QueueNeed, o Options) Check {
	ch := Check{Name: "worker for " + q.Role}
	types := []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_ACTIVITY}
	if q.Workflows {
		types = append(types, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
	}
	var seen []string
	for _, tt := range types {
		resp, err := c.DescribeTaskQueue(ctx, q.Queue, tt)
		if err != nil {
			ch.Detail = fmt.Sprintf("%s: %v", q.Queue, err)
			ch.Missing = []string{q.Queue}
			return ch
		}
		live := 0
		for _, p := range resp.GetPollers() {
			if la := p.GetLastAccessTime(); la != nil && o.Now().Sub(la.AsTime()) <= o.PollerFreshness {
				live++
				seen = appendUnique(seen, p.GetIdentity())
			}
		}
		if live == 0 {
			ch.Missing = []string{q.Queue}
			ch.Detail = fmt.Sprintf("no live %s poller on %s", strings.ToLower(strings.TrimPrefix(tt.String(), "TASK_QUEUE_TYPE_")), q.Queue)
			ch.Hint = fmt.Sprintf("start a worker with role %s (hybridflow-worker --role %s)", q.Role, q.Role)
			return ch
		}
	}
	ch.OK = true
	ch.Detail = fmt.Sprintf("%s served by %s", q.Queue, strings.Join(seen, ", "))
	return ch
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
