package metrics

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/api/workflowservice/v1"
)

// Counter is the part of client.Client the tenant gauge needs.
type Counter interface {
	CountWorkflow(ctx context.Context, req *workflowservice.CountWorkflowExecutionsRequest) (*workflowservice.CountWorkflowExecutionsResponse, error)
}

// TenantStates configures the hybridflow_tenants{state} gauge. It is read
// from Temporal's visibility store (the same search attributes operators
// filter on in the Web UI), not from what this worker happened to
// process, so it is right across several workers and after restarts —
// paused tenants, whose workflows sit idle waiting for an operator, are
// counted too. Every cloud worker reports the same numbers: aggregate
// with max, not sum.
type TenantStates struct {
	Client    Counter
	Namespace string
	// WorkflowType is the per-tenant workflow ("Setup").
	WorkflowType string
	// StateAttribute is the Keyword search attribute holding the state.
	StateAttribute string
	// Open states are counted over running executions, Closed states over
	// closed ones (within the namespace's retention).
	Open, Closed []string
	// CacheFor bounds how often Temporal is asked (default 15s); Timeout
	// bounds one scrape's queries (default 5s).
	CacheFor, Timeout time.Duration
}

// RegisterTenantStates adds the hybridflow_tenants gauge to m.
func (m *Metrics) RegisterTenantStates(o TenantStates) error {
	if o.CacheFor == 0 {
		o.CacheFor = defaultTenantCache
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	c := &tenantCollector{o: o,
		desc: prometheus.NewDesc(NameTenants, "Setup executions (one per tenant run) by the state in their "+o.StateAttribute+
			" search attribute: open states count running executions, closed states closed ones within retention.", []string{"state"}, nil),
		errs: prometheus.NewCounter(prometheus.CounterOpts{Name: NameTenantsErrors, Help: "Failed visibility queries behind " + NameTenants + "."}),
	}
	if err := m.reg.Register(c.errs); err != nil {
		return err
	}
	return m.reg.Register(c)
}

type tenantCollector struct {
	o    TenantStates
	desc *prometheus.Desc
	errs prometheus.Counter

	mu     sync.Mutex
	at     time.Time
	counts map[string]int64
}

func (c *tenantCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *tenantCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.snapshot()
	for _, states := range [][]string{c.o.Open, c.o.Closed} {
		for _, s := range states {
			if n, ok := counts[s]; ok {
				ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), s)
			}
		}
	}
}

// snapshot returns cached counts, refreshing them when older than
// CacheFor. A state whose query fails is left out (no stale guess).
func (c *tenantCollector) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts != nil && time.Since(c.at) < c.o.CacheFor {
		return c.counts
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.o.Timeout)
	defer cancel()
	counts := map[string]int64{}
	query := func(state, status string) {
		q := fmt.Sprintf("WorkflowType = '%s' AND %s = '%s' AND %s", c.o.WorkflowType, c.o.StateAttribute, state, status)
		resp, err := c.o.Client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: c.o.Namespace, Query: q})
		if err != nil {
			c.errs.Inc()
			return
		}
		counts[state] = resp.GetCount()
	}
	for _, s := range c.o.Open {
		query(s, "ExecutionStatus = 'Running'")
	}
	for _, s := range c.o.Closed {
		query(s, "ExecutionStatus != 'Running'")
	}
	c.counts, c.at = counts, time.Now()
	return counts
}
