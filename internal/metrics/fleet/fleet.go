// Package fleet exports per-tenant gauges read from Temporal itself: the
// newest verify report of each inventory (drift, auth certificate
// expiry), paused workflows and since when, scheduled renewals' last
// success and failure, and the pollers of every task queue the verified
// tenants need. Like hybridflow_tenants, the numbers come from Temporal's
// visibility store, workflow results and queries, not from what one worker
// happened to run: every cloud worker reports the same values (aggregate
// with max, never sum) and a restarted worker reports them at once.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/workflows"
)

// Metric names, for alerts, dashboards and docs/operations.md.
const (
	NameTenantDrift        = "hybridflow_tenant_drift"
	NameVerifyCompleted    = "hybridflow_verify_last_completed_timestamp_seconds"
	NameCertNotAfter       = "hybridflow_auth_certificate_not_after_timestamp_seconds"
	NameCertNextEffective  = "hybridflow_auth_certificate_next_effective_timestamp_seconds"
	NamePausedSince        = "hybridflow_tenant_paused_since_timestamp_seconds"
	NameRenewalLastSuccess = "hybridflow_renewal_last_success_timestamp_seconds"
	NameRenewalLastFailure = "hybridflow_renewal_last_failure_timestamp_seconds"
	NameQueuePollers       = "hybridflow_task_queue_pollers"
	NameErrors             = "hybridflow_fleet_query_errors_total"
)

// Drift reasons (the reason label of hybridflow_tenant_drift).
const (
	ReasonConverged = "converged"
	ReasonWrites    = "writes"
	ReasonBlocked   = "blocked"
	ReasonError     = "error"
)

// Sources of the error counter's source label.
const (
	SourceVerify  = "verify"
	SourcePaused  = "paused"
	SourceRenewal = "renewal"
	SourcePollers = "pollers"
)

// Source is what the collector reads from Temporal; FromClient adapts a
// client.Client.
type Source interface {
	// List is one page of ListWorkflowExecutions.
	List(ctx context.Context, query string, token []byte) (*workflowservice.ListWorkflowExecutionsResponse, error)
	// Query runs a workflow query and decodes its answer into v.
	Query(ctx context.Context, workflowID, runID, queryType string, v any) error
	// Result decodes a closed run's result into v.
	Result(ctx context.Context, workflowID, runID string, v any) error
	// Pollers lists a task queue's pollers of one task type.
	Pollers(ctx context.Context, queue string, t enumspb.TaskQueueType) ([]*Poller, error)
	// ScheduleIDs lists the IDs of the schedules starting with prefix.
	ScheduleIDs(ctx context.Context, prefix string) ([]string, error)
}

// Poller is what the collector needs of a poller.
type Poller struct {
	Identity   string
	LastAccess time.Time
}

// Options configure the collector.
type Options struct {
	Source    Source
	Namespace string
	// Lookback bounds the verify runs and renewals considered (default 7
	// days): a report or renewal older than this no longer counts.
	Lookback time.Duration
	// CacheFor bounds how often Temporal is asked (default 60s); Timeout
	// bounds one refresh (default 30s).
	CacheFor, Timeout time.Duration
	// PollerFreshness: a poller last seen longer ago than this is gone
	// (default 75s, as hybridflow doctor).
	PollerFreshness time.Duration
	// Now is the clock (tests).
	Now func() time.Time
}

// Register adds the fleet gauges to reg.
func Register(reg prometheus.Registerer, o Options) (*Collector, error) {
	c := New(o)
	if err := reg.Register(c.errs); err != nil {
		return nil, err
	}
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	return c, nil
}

// Collector is the fleet gauges' prometheus.Collector.
type Collector struct {
	o    Options
	errs *prometheus.CounterVec

	drift, verifyDone, certNotAfter, certEffective, pausedSince, renewOK, renewFail, pollers *prometheus.Desc

	mu      sync.Mutex
	at      time.Time
	snap    *Snapshot
	reports map[string]workflows.VerifyReport // by run ID: results never change
}

// New builds a collector without registering it.
func New(o Options) *Collector {
	if o.Lookback <= 0 {
		o.Lookback = 7 * 24 * time.Hour
	}
	if o.CacheFor <= 0 {
		o.CacheFor = time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.PollerFreshness <= 0 {
		o.PollerFreshness = 75 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Collector{o: o, reports: map[string]workflows.VerifyReport{},
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameErrors,
			Help: "Failed reads of Temporal behind the fleet gauges, by source: verify, paused, renewal, pollers."}, []string{"source"}),
		drift: prometheus.NewDesc(NameTenantDrift,
			"1 when the newest verify report of the inventory says the tenant drifted (a setup would write, would pause at a blocked step, or the check failed), 0 when converged.",
			[]string{"tenant", "inventory", "reason"}, nil),
		verifyDone: prometheus.NewDesc(NameVerifyCompleted,
			"Close time of the newest completed verify run of each inventory; 0 for a verify schedule with no completed run within the lookback.",
			[]string{"inventory"}, nil),
		certNotAfter: prometheus.NewDesc(NameCertNotAfter,
			"Expiry of the tenant's Exchange auth certificates as the newest verify report read them: certificate=current, and certificate=next while one is staged.",
			[]string{"tenant", "certificate"}, nil),
		certEffective: prometheus.NewDesc(NameCertNextEffective,
			"Effective date of the staged next auth certificate (when a renewal publishes it).", []string{"tenant"}, nil),
		pausedSince: prometheus.NewDesc(NamePausedSince,
			"When a running workflow paused for an operator (setup, renewal, Lync), from its state query.",
			[]string{"tenant", "workflow_type", "workflow_id", "step", "error_type"}, nil),
		renewOK: prometheus.NewDesc(NameRenewalLastSuccess,
			"Close time of the tenant's newest scheduled renewal run that completed, within the lookback.", []string{"tenant"}, nil),
		renewFail: prometheus.NewDesc(NameRenewalLastFailure,
			"Close time of the tenant's newest scheduled renewal run that failed, timed out or was terminated, within the lookback.", []string{"tenant"}, nil),
		pollers: prometheus.NewDesc(NameQueuePollers,
			"Pollers seen on the task queue within the freshness window, for the cloud queue and the queues of every site the verified tenants use.",
			[]string{"task_queue", "task_type"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.drift, c.verifyDone, c.certNotAfter, c.certEffective, c.pausedSince, c.renewOK, c.renewFail, c.pollers} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.Snapshot()
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, inv := range s.Inventories {
		g(c.verifyDone, unix(inv.Completed), inv.Name)
	}
	for _, t := range s.Tenants {
		v := 0.0
		if t.Drifted {
			v = 1
		}
		g(c.drift, v, t.TenantID, t.Inventory, t.Reason)
		if t.CertNotAfter != nil {
			g(c.certNotAfter, unix(*t.CertNotAfter), t.TenantID, "current")
		}
		if t.NextCertNotAfter != nil {
			g(c.certNotAfter, unix(*t.NextCertNotAfter), t.TenantID, "next")
		}
		if t.NextCertEffect != nil {
			g(c.certEffective, unix(*t.NextCertEffect), t.TenantID)
		}
	}
	for _, p := range s.Paused {
		g(c.pausedSince, unix(p.Since), p.TenantID, p.WorkflowType, p.WorkflowID, p.Step, p.ErrorType)
	}
	for _, r := range s.Renewals {
		if !r.LastSuccess.IsZero() {
			g(c.renewOK, unix(r.LastSuccess), r.TenantID)
		}
		if !r.LastFailure.IsZero() {
			g(c.renewFail, unix(r.LastFailure), r.TenantID)
		}
	}
	for _, q := range s.Queues {
		g(c.pollers, float64(q.Pollers), q.Queue, q.Type)
	}
}

func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// Snapshot is what one refresh read.
type Snapshot struct {
	Inventories []InventoryVerify
	Tenants     []TenantFacts
	Paused      []PausedRun
	Renewals    []RenewalRuns
	Queues      []QueuePollers
}

// InventoryVerify is an inventory's newest completed verify run.
type InventoryVerify struct {
	Name       string
	WorkflowID string
	RunID      string
	Completed  time.Time // zero: a schedule without a completed run
}

// TenantFacts is a tenant's line of the newest report that names it.
type TenantFacts struct {
	workflows.TenantVerdict
	Inventory string
	Reason    string
}

// PausedRun is a running workflow waiting for an operator.
type PausedRun struct {
	TenantID, WorkflowType, WorkflowID, Step, ErrorType string
	Since                                               time.Time
}

// RenewalRuns are a tenant's newest scheduled renewal outcomes.
type RenewalRuns struct {
	TenantID                 string
	LastSuccess, LastFailure time.Time
}

// QueuePollers is a task queue's live pollers of one type.
type QueuePollers struct {
	Queue, Type string
	Pollers     int
}

// Snapshot returns the cached snapshot, refreshing it when older than
// CacheFor. A part whose read fails is left out (no stale guess) and
// counted in hybridflow_fleet_query_errors_total.
func (c *Collector) Snapshot() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.o.Now()
	if c.snap != nil && now.Sub(c.at) < c.o.CacheFor {
		return *c.snap
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.o.Timeout)
	defer cancel()
	var s Snapshot
	var err error
	if s.Inventories, s.Tenants, err = c.readVerify(ctx, now); err != nil {
		c.errs.WithLabelValues(SourceVerify).Inc()
	}
	if s.Paused, err = c.readPaused(ctx); err != nil {
		c.errs.WithLabelValues(SourcePaused).Inc()
	}
	if s.Renewals, err = c.readRenewals(ctx, now); err != nil {
		c.errs.WithLabelValues(SourceRenewal).Inc()
	}
	if s.Queues, err = c.readPollers(ctx, now, s.Tenants); err != nil {
		c.errs.WithLabelValues(SourcePollers).Inc()
	}
	c.snap, c.at = &s, now
	return s
}

// listAll pages through a visibility query.
func (c *Collector) listAll(ctx context.Context, query string, each func(*workflowpb.WorkflowExecutionInfo) error) error {
	var token []byte
	for {
		resp, err := c.o.Source.List(ctx, query, token)
		if err != nil {
			return err
		}
		for _, e := range resp.GetExecutions() {
			if err := each(e); err != nil {
				return err
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return nil
		}
	}
}

func since(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// readVerify finds each inventory's newest completed verify run within the
// lookback (and every verify schedule, completed or not), reads the
// reports it has not read yet, and merges them newest first: a tenant in
// two inventories is reported from the newer report.
func (c *Collector) readVerify(ctx context.Context, now time.Time) ([]InventoryVerify, []TenantFacts, error) {
	newest := map[string]InventoryVerify{}
	q := fmt.Sprintf("WorkflowType = 'VerifyInventory' AND ExecutionStatus = 'Completed' AND CloseTime > '%s'", since(now.Add(-c.o.Lookback)))
	err := c.listAll(ctx, q, func(e *workflowpb.WorkflowExecutionInfo) error {
		id := e.GetExecution().GetWorkflowId()
		name, ok := workflows.VerifyNameFromWorkflowID(id)
		if !ok {
			return nil
		}
		closed := e.GetCloseTime().AsTime()
		if cur, ok := newest[name]; !ok || closed.After(cur.Completed) {
			newest[name] = InventoryVerify{Name: name, WorkflowID: id, RunID: e.GetExecution().GetRunId(), Completed: closed}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	var firstErr error
	ids, err := c.o.Source.ScheduleIDs(ctx, workflows.VerifyIDPrefix)
	if err != nil {
		firstErr = err
	}
	for _, id := range ids {
		name := strings.TrimPrefix(id, workflows.VerifyIDPrefix)
		if _, ok := newest[name]; !ok && name != "" {
			newest[name] = InventoryVerify{Name: name}
		}
	}
	invs := make([]InventoryVerify, 0, len(newest))
	for _, iv := range newest {
		invs = append(invs, iv)
	}
	// Newest first; equal times by name, so the merge is stable.
	sort.Slice(invs, func(i, j int) bool {
		if !invs[i].Completed.Equal(invs[j].Completed) {
			return invs[i].Completed.After(invs[j].Completed)
		}
		return invs[i].Name < invs[j].Name
	})
	keep := map[string]workflows.VerifyReport{}
	seen := map[string]bool{}
	var tenants []TenantFacts
	for _, iv := range invs {
		if iv.RunID == "" {
			continue
		}
		rep, ok := c.reports[iv.RunID]
		if !ok {
			if err := c.o.Source.Result(ctx, iv.WorkflowID, iv.RunID, &rep); err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("verify report %s: %w", iv.WorkflowID, err)
				}
				continue
			}
		}
		keep[iv.RunID] = rep
		for _, v := range rep.Tenants {
			key := strings.ToLower(v.TenantID)
			if seen[key] {
				continue
			}
			seen[key] = true
			tenants = append(tenants, TenantFacts{TenantVerdict: v, Inventory: iv.Name, Reason: reason(v)})
		}
	}
	c.reports = keep
	sort.Slice(invs, func(i, j int) bool { return invs[i].Name < invs[j].Name })
	return invs, tenants, firstErr
}

func reason(v workflows.TenantVerdict) string {
	switch {
	case v.Error != "":
		return ReasonError
	case len(v.Blocked) > 0:
		return ReasonBlocked
	case v.Writes > 0:
		return ReasonWrites
	case v.Drifted:
		return ReasonError
	}
	return ReasonConverged
}

// pauseState is the part of every operator workflow's state query (setup,
// renewal, Lync) that says what it waits for.
type pauseState struct {
	Paused *workflows.Pause `json:"paused"`
}

// readPaused lists running workflows whose HybridflowState is paused and
// asks each since when.
func (c *Collector) readPaused(ctx context.Context) ([]PausedRun, error) {
	q := fmt.Sprintf("ExecutionStatus = 'Running' AND %s = '%s'", workflows.SAState.GetName(), workflows.StatePaused)
	var out []PausedRun
	var firstErr error
	err := c.listAll(ctx, q, func(e *workflowpb.WorkflowExecutionInfo) error {
		id, run := e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()
		var st pauseState
		if err := c.o.Source.Query(ctx, id, run, workflows.QueryState, &st); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("query %s: %w", id, err)
			}
			return nil
		}
		if st.Paused == nil {
			return nil // resumed since visibility was written
		}
		out = append(out, PausedRun{TenantID: keyword(e, workflows.SATenant.GetName()), WorkflowType: e.GetType().GetName(), WorkflowID: id,
			Step: st.Paused.Step, ErrorType: st.Paused.ErrorType, Since: st.Paused.Since})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].WorkflowID < out[j].WorkflowID })
	return out, firstErr
}

// readRenewals reads the scheduled renewal runs closed within the lookback
// (read-only report runs have other IDs and are left out) and keeps each
// tenant's newest success and newest failure.
func (c *Collector) readRenewals(ctx context.Context, now time.Time) ([]RenewalRuns, error) {
	q := fmt.Sprintf("WorkflowType = 'Renewal' AND ExecutionStatus != 'Running' AND CloseTime > '%s'", since(now.Add(-c.o.Lookback)))
	by := map[string]*RenewalRuns{}
	err := c.listAll(ctx, q, func(e *workflowpb.WorkflowExecutionInfo) error {
		id := e.GetExecution().GetWorkflowId()
		if !strings.HasPrefix(id, workflows.RenewalScheduleIDPrefix) {
			return nil
		}
		tenant := keyword(e, workflows.SATenant.GetName())
		if tenant == "" {
			return nil
		}
		r := by[tenant]
		if r == nil {
			r = &RenewalRuns{TenantID: tenant}
			by[tenant] = r
		}
		closed := e.GetCloseTime().AsTime()
		switch e.GetStatus() {
		case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
			if closed.After(r.LastSuccess) {
				r.LastSuccess = closed
			}
		case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
			if closed.After(r.LastFailure) {
				r.LastFailure = closed
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]RenewalRuns, 0, len(by))
	for _, r := range by {
		if !r.LastSuccess.IsZero() || !r.LastFailure.IsZero() {
			out = append(out, *r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TenantID < out[j].TenantID })
	return out, nil
}

// readPollers counts the live pollers of the cloud queue (workflow and
// activity tasks) and of every on-prem and Lync site queue the reported
// tenants use (activity tasks).
func (c *Collector) readPollers(ctx context.Context, now time.Time, tenants []TenantFacts) ([]QueuePollers, error) {
	type want struct {
		queue string
		typ   enumspb.TaskQueueType
	}
	wants := []want{{temporalx.CloudQueue, enumspb.TASK_QUEUE_TYPE_WORKFLOW}, {temporalx.CloudQueue, enumspb.TASK_QUEUE_TYPE_ACTIVITY}}
	seen := map[string]bool{}
	var sites []string
	for _, t := range tenants {
		for _, q := range []string{siteQueue(temporalx.OnPremQueue, t.Site), siteQueue(temporalx.LyncQueue, t.LyncSite)} {
			if q != "" && !seen[q] {
				seen[q] = true
				sites = append(sites, q)
			}
		}
	}
	sort.Strings(sites)
	for _, q := range sites {
		wants = append(wants, want{q, enumspb.TASK_QUEUE_TYPE_ACTIVITY})
	}
	var out []QueuePollers
	var errs []error
	for _, w := range wants {
		ps, err := c.o.Source.Pollers(ctx, w.queue, w.typ)
		if err != nil {
			errs = append(errs, fmt.Errorf("describe %s: %w", w.queue, err))
			continue
		}
		n := 0
		for _, p := range ps {
			if !p.LastAccess.IsZero() && now.Sub(p.LastAccess) <= c.o.PollerFreshness {
				n++
			}
		}
		typ := "activity"
		if w.typ == enumspb.TASK_QUEUE_TYPE_WORKFLOW {
			typ = "workflow"
		}
		out = append(out, QueuePollers{Queue: w.queue, Type: typ, Pollers: n})
	}
	return out, errors.Join(errs...)
}

func siteQueue(f func(string) string, site string) string {
	if site == "" {
		return ""
	}
	return f(site)
}

// keyword decodes a Keyword search attribute of a listed execution.
func keyword(e *workflowpb.WorkflowExecutionInfo, name string) string {
	p := e.GetSearchAttributes().GetIndexedFields()[name]
	if p == nil {
		return ""
	}
	var s string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &s); err != nil {
		return ""
	}
	return s
}

// clientSource is Source over a client.Client.
type clientSource struct {
	c         client.Client
	namespace string
}

// FromClient reads through c in namespace.
func FromClient(c client.Client, namespace string) Source {
	return clientSource{c: c, namespace: namespace}
}

func (s clientSource) List(ctx context.Context, query string, token []byte) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	return s.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: s.namespace, Query: query, PageSize: 1000, NextPageToken: token})
}

func (s clientSource) Query(ctx context.Context, id, runID, queryType string, v any) error {
	val, err := s.c.QueryWorkflow(ctx, id, runID, queryType)
	if err != nil {
		return err
	}
	return val.Get(v)
}

func (s clientSource) Result(ctx context.Context, id, runID string, v any) error {
	return s.c.GetWorkflow(ctx, id, runID).Get(ctx, v)
}

func (s clientSource) Pollers(ctx context.Context, queue string, t enumspb.TaskQueueType) ([]*Poller, error) {
	resp, err := s.c.DescribeTaskQueue(ctx, queue, t)
	if err != nil {
		return nil, err
	}
	out := make([]*Poller, 0, len(resp.GetPollers()))
	for _, p := range resp.GetPollers() {
		tp := &Poller{Identity: p.GetIdentity()}
		if la := p.GetLastAccessTime(); la != nil {
			tp.LastAccess = la.AsTime()
		}
		out = append(out, tp)
	}
	return out, nil
}

func (s clientSource) ScheduleIDs(ctx context.Context, prefix string) ([]string, error) {
	it, err := s.c.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 1000})
	if err != nil {
		return nil, err
	}
	var out []string
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(e.ID, prefix) {
			out = append(out, e.ID)
		}
	}
	return out, nil
}
