package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hybridflow/hybridflow/workflows"
)

var now = time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)

// fakeSource answers the collector's reads from fixed data; every query
// it is asked must start with one of the prefixes it knows.
type fakeSource struct {
	t         *testing.T
	execs     map[string][]*workflowpb.WorkflowExecutionInfo // by the query's WorkflowType / first clause
	results   map[string]any                                 // by run ID
	states    map[string]any                                 // by workflow ID
	pollers   map[string][]*Poller                           // by queue/type
	schedules []string
	queries   []string
	resultsOf []string
	failList  string
}

func (f *fakeSource) List(_ context.Context, q string, _ []byte) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	f.queries = append(f.queries, q)
	if f.failList != "" && strings.Contains(q, f.failList) {
		return nil, errors.New("visibility unavailable")
	}
	for k, v := range f.execs {
		if strings.HasPrefix(q, k) {
			return &workflowservice.ListWorkflowExecutionsResponse{Executions: v}, nil
		}
	}
	f.t.Fatalf("unexpected query %q", q)
	return nil, nil
}

func roundTrip(from, to any) error {
	b, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, to)
}

func (f *fakeSource) Query(_ context.Context, id, _, qt string, v any) error {
	if qt != workflows.QueryState {
		f.t.Fatalf("query type %q", qt)
	}
	st, ok := f.states[id]
	if !ok {
		return errors.New("no such workflow")
	}
	return roundTrip(st, v)
}

func (f *fakeSource) Result(_ context.Context, _, runID string, v any) error {
	f.resultsOf = append(f.resultsOf, runID)
	r, ok := f.results[runID]
	if !ok {
		return errors.New("no such run")
	}
	return roundTrip(r, v)
}

func (f *fakeSource) Pollers(_ context.Context, q string, t enumspb.TaskQueueType) ([]*Poller, error) {
	return f.pollers[q+"/"+t.String()], nil
}

func (f *fakeSource) ScheduleIDs(context.Context, string) ([]string, error) { return f.schedules, nil }

func exec(id, run, typ string, status enumspb.WorkflowExecutionStatus, closed time.Time, sa map[string]string) *workflowpb.WorkflowExecutionInfo {
	e := &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: run}, Type: &commonpb.WorkflowType{Name: typ}, Status: status}
	if !closed.IsZero() {
		e.CloseTime = timestamppb.New(closed)
	}
	if len(sa) > 0 {
		e.SearchAttributes = &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{}}
		for k, v := range sa {
			p, _ := converter.GetDefaultDataConverter().ToPayload(v)
			e.SearchAttributes.IndexedFields[k] = p
		}
	}
	return e
}

func at(d time.Duration) *time.Time { t := now.Add(d); return &t }

const (
	tA = "11111111-1111-4111-8111-00000000000a"
	tB = "11111111-1111-4111-8111-00000000000b"
	tC = "11111111-1111-4111-8111-00000000000c"
)

var (
	wf  = enumspb.TASK_QUEUE_TYPE_WORKFLOW.String()
	act = enumspb.TASK_QUEUE_TYPE_ACTIVITY.String()
)

func newFake(t *testing.T) *fakeSource {
	completed := enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	return &fakeSource{t: t,
		execs: map[string][]*workflowpb.WorkflowExecutionInfo{
			"WorkflowType = 'VerifyInventory'": {
				// inventory "east": an old run and the newest (scheduled) one.
				exec("hybridflow/verify/east-2026-11-10T06:00:00Z", "east-new", "VerifyInventory", completed, now.Add(-6*time.Hour), nil),
				exec("hybridflow/verify/east-2026-11-09T06:00:00Z", "east-old", "VerifyInventory", completed, now.Add(-30*time.Hour), nil),
				// inventory "west", run by hand, older than east's newest.
				exec("hybridflow/verify/west", "west-1", "VerifyInventory", completed, now.Add(-10*time.Hour), nil),
			},
			"ExecutionStatus = 'Running' AND HybridflowState = 'paused'": {
				exec("hybridflow/setup/"+tA, "s1", "Setup", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, time.Time{}, map[string]string{"HybridflowTenant": tA}),
				// resumed between the visibility write and the query
				exec("hybridflow/setup/"+tB, "s2", "Setup", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, time.Time{}, map[string]string{"HybridflowTenant": tB}),
			},
			"WorkflowType = 'Renewal'": {
				exec("hybridflow/renewal/"+tA+"-2026-11-10T00:00:00Z", "r1", "Renewal", enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, now.Add(-11*time.Hour), map[string]string{"HybridflowTenant": tA}),
				exec("hybridflow/renewal/"+tA+"-2026-11-09T00:00:00Z", "r2", "Renewal", completed, now.Add(-35*time.Hour), map[string]string{"HybridflowTenant": tA}),
				exec("hybridflow/renewal/"+tB+"-2026-11-10T00:00:00Z", "r3", "Renewal", completed, now.Add(-12*time.Hour), map[string]string{"HybridflowTenant": tB}),
				exec("hybridflow/renewal/"+tB+"-2026-11-09T00:00:00Z", "r4", "Renewal", enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, now.Add(-36*time.Hour), map[string]string{"HybridflowTenant": tB}),
				// a read-only report run is not a renewal
				exec("hybridflow/renewal-report/"+tC, "r5", "Renewal", enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, now.Add(-time.Hour), map[string]string{"HybridflowTenant": tC}),
			},
		},
		results: map[string]any{
			"east-new": workflows.VerifyReport{Name: "east", Tenants: []workflows.TenantVerdict{
				{TenantID: tA, Site: "site-1", Drifted: true, Writes: 2, CertNotAfter: at(20 * 24 * time.Hour)},
				{TenantID: tB, Site: "site-2", LyncSite: "edge-1", Drifted: false, CertNotAfter: at(400 * 24 * time.Hour),
					NextCertNotAfter: at(2000 * 24 * time.Hour), NextCertEffect: at(3 * 24 * time.Hour)},
			}},
			"east-old": workflows.VerifyReport{Name: "east", Tenants: []workflows.TenantVerdict{{TenantID: tA, Drifted: false}}},
			"west-1": workflows.VerifyReport{Name: "west", Tenants: []workflows.TenantVerdict{
				{TenantID: tB, Drifted: true, Blocked: []string{"setting-override"}}, // older than east's line for tB
				{TenantID: tC, Site: "site-1", Drifted: true, Error: "no worker at site-1"},
			}},
		},
		states: map[string]any{
			"hybridflow/setup/" + tA: workflows.SetupState{Paused: &workflows.Pause{Step: "ioc-onprem-to-online", ErrorType: "MissingPermission", Since: now.Add(-3 * time.Hour)}},
			"hybridflow/setup/" + tB: workflows.SetupState{},
		},
		pollers: map[string][]*Poller{
			"hybridflow-cloud/" + wf:  {{Identity: "w1", LastAccess: now.Add(-10 * time.Second)}},
			"hybridflow-cloud/" + act: {{Identity: "w1", LastAccess: now.Add(-10 * time.Second)}},
			// site-1's worker stopped polling five minutes ago; site-2's polls.
			"hybridflow-onprem-site-1/" + act: {{Identity: "old", LastAccess: now.Add(-5 * time.Minute)}},
			"hybridflow-onprem-site-2/" + act: {{Identity: "s2", LastAccess: now.Add(-20 * time.Second)}},
		},
		schedules: []string{"hybridflow/verify/east", "hybridflow/verify/north"},
	}
}

// TestFleetGauges: what each gauge reports from a fixed picture of
// Temporal, in the exposition format Prometheus scrapes.
func TestFleetGauges(t *testing.T) {
	f := newFake(t)
	reg := prometheus.NewPedanticRegistry()
	c, err := Register(reg, Options{Source: f, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	want := `
# HELP hybridflow_tenant_drift 1 when the newest verify report of the inventory says the tenant drifted (a setup would write, would pause at a blocked step, or the check failed), 0 when converged.
# TYPE hybridflow_tenant_drift gauge
hybridflow_tenant_drift{inventory="east",reason="converged",tenant="` + tB + `"} 0
hybridflow_tenant_drift{inventory="east",reason="writes",tenant="` + tA + `"} 1
hybridflow_tenant_drift{inventory="west",reason="error",tenant="` + tC + `"} 1
# HELP hybridflow_verify_last_completed_timestamp_seconds Close time of the newest completed verify run of each inventory; 0 for a verify schedule with no completed run within the lookback.
# TYPE hybridflow_verify_last_completed_timestamp_seconds gauge
hybridflow_verify_last_completed_timestamp_seconds{inventory="east"} 1.7942904e+09
hybridflow_verify_last_completed_timestamp_seconds{inventory="north"} 0
hybridflow_verify_last_completed_timestamp_seconds{inventory="west"} 1.794276e+09
# HELP hybridflow_auth_certificate_not_after_timestamp_seconds Expiry of the tenant's Exchange auth certificates as the newest verify report read them: certificate=current, and certificate=next while one is staged.
# TYPE hybridflow_auth_certificate_not_after_timestamp_seconds gauge
hybridflow_auth_certificate_not_after_timestamp_seconds{certificate="current",tenant="` + tA + `"} 1.79604e+09
hybridflow_auth_certificate_not_after_timestamp_seconds{certificate="current",tenant="` + tB + `"} 1.828872e+09
hybridflow_auth_certificate_not_after_timestamp_seconds{certificate="next",tenant="` + tB + `"} 1.967112e+09
# HELP hybridflow_auth_certificate_next_effective_timestamp_seconds Effective date of the staged next auth certificate (when a renewal publishes it).
# TYPE hybridflow_auth_certificate_next_effective_timestamp_seconds gauge
hybridflow_auth_certificate_next_effective_timestamp_seconds{tenant="` + tB + `"} 1.7945712e+09
# HELP hybridflow_tenant_paused_since_timestamp_seconds When a running workflow paused for an operator (setup, renewal, Lync), from its state query.
# TYPE hybridflow_tenant_paused_since_timestamp_seconds gauge
hybridflow_tenant_paused_since_timestamp_seconds{error_type="MissingPermission",step="ioc-onprem-to-online",tenant="` + tA + `",workflow_id="hybridflow/setup/` + tA + `",workflow_type="Setup"} 1.7943012e+09
# HELP hybridflow_renewal_last_success_timestamp_seconds Close time of the tenant's newest scheduled renewal run that completed, within the lookback.
# TYPE hybridflow_renewal_last_success_timestamp_seconds gauge
hybridflow_renewal_last_success_timestamp_seconds{tenant="` + tA + `"} 1.794186e+09
hybridflow_renewal_last_success_timestamp_seconds{tenant="` + tB + `"} 1.7942688e+09
# HELP hybridflow_renewal_last_failure_timestamp_seconds Close time of the tenant's newest scheduled renewal run that failed, timed out or was terminated, within the lookback.
# TYPE hybridflow_renewal_last_failure_timestamp_seconds gauge
hybridflow_renewal_last_failure_timestamp_seconds{tenant="` + tA + `"} 1.7942724e+09
hybridflow_renewal_last_failure_timestamp_seconds{tenant="` + tB + `"} 1.7941824e+09
# HELP hybridflow_task_queue_pollers Pollers seen on the task queue within the freshness window, for the cloud queue and the queues of every site the verified tenants use.
# TYPE hybridflow_task_queue_pollers gauge
hybridflow_task_queue_pollers{task_queue="hybridflow-cloud",task_type="activity"} 1
hybridflow_task_queue_pollers{task_queue="hybridflow-cloud",task_type="workflow"} 1
hybridflow_task_queue_pollers{task_queue="hybridflow-lync-edge-1",task_type="activity"} 0
hybridflow_task_queue_pollers{task_queue="hybridflow-onprem-site-1",task_type="activity"} 0
hybridflow_task_queue_pollers{task_queue="hybridflow-onprem-site-2",task_type="activity"} 1
`
	names := []string{NameTenantDrift, NameVerifyCompleted, NameCertNotAfter, NameCertNextEffective, NamePausedSince,
		NameRenewalLastSuccess, NameRenewalLastFailure, NameQueuePollers}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	// Only the newest report of each inventory is read, once: a second
	// refresh reads no report again.
	if strings.Join(f.resultsOf, ",") != "east-new,west-1" {
		t.Errorf("reports read %v, want east-new then west-1", f.resultsOf)
	}
	c.o.Now = func() time.Time { return now.Add(2 * time.Minute) }
	c.Snapshot()
	if len(f.resultsOf) != 2 {
		t.Errorf("the second refresh read reports again: %v", f.resultsOf)
	}
	// The queries are bounded by the lookback.
	for _, q := range f.queries {
		if strings.Contains(q, "CloseTime") && !strings.Contains(q, "CloseTime > '2026-11-03T1") {
			t.Errorf("query %q is not bounded by the 7-day lookback", q)
		}
	}
	if got := testutil.ToFloat64(c.errs.WithLabelValues(SourcePaused)); got != 0 {
		t.Errorf("paused errors %v", got)
	}
}

// TestFleetErrorsLeaveOut: a failing read leaves its gauges out and is
// counted; the others are still reported.
func TestFleetErrorsLeaveOut(t *testing.T) {
	f := newFake(t)
	f.failList = "WorkflowType = 'Renewal'"
	delete(f.states, "hybridflow/setup/"+tA)
	c := New(Options{Source: f, Now: func() time.Time { return now }})
	s := c.Snapshot()
	if len(s.Renewals) != 0 || len(s.Paused) != 0 || len(s.Tenants) != 3 {
		t.Fatalf("snapshot %+v", s)
	}
	if testutil.ToFloat64(c.errs.WithLabelValues(SourceRenewal)) != 1 || testutil.ToFloat64(c.errs.WithLabelValues(SourcePaused)) != 1 {
		t.Error("the failed renewal list and the failed query are not counted")
	}
}
