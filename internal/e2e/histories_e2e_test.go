package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/workflows"
)

// The tests of this file run the workflow types the setup tests do not
// (LyncIntegration, TenantLock, Probe, and a Renewal that waits for a
// tenant's lock) on the dev server against the simulated world, check
// what they did, and with histories.RecordEnv set (make histories) write their histories under
// workflows/testdata/histories for the replay test there.

// execute starts a workflow on the cloud queue under id and has the
// test's cleanup terminate it.
func (e *env) execute(ctx context.Context, id string, wf any, args ...any) client.WorkflowRun {
	e.t.Helper()
	run, err := e.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: temporalx.CloudQueue, WorkflowExecutionTimeout: 5 * time.Minute,
	}, wf, args...)
	if err != nil {
		e.t.Fatalf("start %s: %v", id, err)
	}
	e.mu.Lock()
	e.ids = append(e.ids, id)
	e.mu.Unlock()
	return run
}

// queryInto polls the state query until done accepts what it returns.
func queryInto[T any](e *env, ctx context.Context, run client.WorkflowRun, what string, done func(T) bool) T {
	e.t.Helper()
	var st T
	for {
		v, err := e.c.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.QueryState)
		if err == nil {
			var got T
			if err := v.Get(&got); err == nil {
				st = got
				if done(st) {
					return st
				}
			}
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("%s: never %s (last state %+v, error %v)", run.GetID(), what, st, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// lyncWorld is three tenants, each at its own site with a Lync deployment
// of its own: fresh converges (fe01 lags two status reads); stuck's fe01
// never catches up; wrong has a hosting provider with another cloud's
// ProxyFqdn and an fe01 that never catches up either.
func lyncWorld(t *testing.T) *sim.World {
	return generated(t, sim.GenerateSpec{Tenants: 3, Sites: 3, Prefix: "lync"}, 4420, func(ts []*sim.Tenant) {
		for i, tn := range ts {
			site := fmt.Sprintf("lync-%d", i+1)
			lag := 2
			if i > 0 {
				lag = -1
			}
			d := &sim.LyncDeployment{
				Site: site,
				Replicas: []*sim.Replica{
					{Fqdn: "fe01." + site + ".example.com", UpToDate: true, LagChecks: lag},
					{Fqdn: "edge01." + site + ".example.com", UpToDate: true, LagChecks: 2},
				},
				ExternalAccessPolicies: []sim.ExternalAccessPolicy{{Identity: "Global", EnableOutsideAccess: true}},
			}
			if i == 2 {
				want, _, err := activities.DesiredLyncProvider(tn.Cloud, "")
				if err != nil {
					t.Fatal(err)
				}
				other := "exap.um.partner.outlook.cn"
				if want.ProxyFqdn == other {
					other = "exap.um.outlook.com"
				}
				hp := sim.HostingProvider{Identity: activities.LyncProviderIdentity, Enabled: true, EnabledSharedAddressSpace: true,
					ProxyFqdn: other, VerificationLevel: "AlwaysUnverifiable"}
				edge := hp
				d.HostingProviders, d.EdgeLocalStore = []*sim.HostingProvider{&hp}, []*sim.HostingProvider{&edge}
			}
			tn.Lync = d
		}
	})
}

// lyncInput is the integration of a tenant's Lync site, as `hybridflow
// lync` starts it, with waits short enough for a test.
func (e *env) lyncInput(tn config.Tenant) workflows.LyncInput {
	in := workflows.LyncInput{Site: tn.LyncSite, Cloud: tn.Cloud, ProxyFqdnOverride: tn.Overrides.LyncProxyFQDN,
		Target: activities.Target{TenantID: tn.ID, Cloud: tn.Cloud, Site: tn.Site, LyncSite: tn.LyncSite,
			Credential: tn.Credential, ExchangeOnlineHost: tn.Overrides.ExchangeOnlineHost}}
	in.Options = workflows.LyncOptions{
		Retry:                   workflows.RetryOptions{InitialInterval: 100 * time.Millisecond, MaximumInterval: 100 * time.Millisecond, MaximumAttempts: 2},
		ReplicationPollInterval: 20 * time.Millisecond,
		ReplicationTimeout:      1500 * time.Millisecond,
		ScheduleToStart:         time.Minute,
	}
	return in
}

// TestE2ELyncIntegrationHistories runs the Lync integration three ways on
// real workers: a fresh deployment converges; a replica that never
// catches up pauses the run at the replication wait, the replica is
// fixed and the operator retries; a wrong provider is re-created, the
// run pauses at the same wait and the operator aborts, which puts the
// old provider and AllowFederatedUsers back. The Probe workflow then
// reaches every queue of the world.
func TestE2ELyncIntegrationHistories(t *testing.T) {
	began := time.Now()
	e := newEnv(t, lyncWorld(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	before := e.snapshot()
	fresh, stuck, wrong := before.Tenants[0], before.Tenants[1], before.Tenants[2]
	runs := map[string]client.WorkflowRun{}
	for _, tn := range before.Tenants {
		runs[tn.ID] = e.execute(ctx, workflows.LyncWorkflowID(tn.Lync.Site), workflows.LyncIntegration, e.lyncInput(e.tenant(tn.ID)))
	}

	var res workflows.LyncResult
	if err := runs[fresh.ID].Get(ctx, &res); err != nil || res.State != workflows.StateVerified || res.Writes != 2 {
		t.Fatalf("fresh deployment: state %s, %d writes, error %v; want verified with 2 writes", res.State, res.Writes, err)
	}

	paused := func(st workflows.LyncState) bool { return st.Paused != nil }
	for _, tn := range []*sim.Tenant{stuck, wrong} {
		st := queryInto(e, ctx, runs[tn.ID], "paused", paused)
		if st.Paused.Step != string(activities.LyncStepReplication) || st.Paused.ErrorType != activities.ErrReplicationLagging ||
			!strings.Contains(st.Paused.Error, "fe01."+tn.Lync.Site) || st.Undo != 2 {
			t.Fatalf("%s: paused %+v with %d undo record(s); want the replication wait naming fe01, 2 undo records", tn.Lync.Site, *st.Paused, st.Undo)
		}
	}

	// The operator fixes the replica and retries.
	e.world.Update(stuck.ID, func(tn *sim.Tenant) { tn.Lync.Replicas[0].LagChecks = 1 })
	if step := e.update(ctx, runs[stuck.ID], workflows.UpdateRetry); step != string(activities.LyncStepReplication) {
		t.Errorf("retry answered for step %q", step)
	}
	res = workflows.LyncResult{}
	if err := runs[stuck.ID].Get(ctx, &res); err != nil || res.State != workflows.StateVerified {
		t.Fatalf("after retry: state %s, error %v", res.State, err)
	}
	for _, s := range res.Steps {
		if s.Step == string(activities.LyncStepReplication) && s.Attempts != 2 {
			t.Errorf("replication step: %d attempt(s), want 2 (the paused one and the retry)", s.Attempts)
		}
	}

	// The operator aborts: the run undoes its two changes in reverse.
	e.update(ctx, runs[wrong.ID], workflows.UpdateAbort)
	err := runs[wrong.ID].Get(ctx, &res)
	if err == nil || !strings.Contains(err.Error(), "aborted; 2 change(s) undone") {
		t.Fatalf("wrong provider: want aborted with 2 changes undone, got %v", err)
	}
	after := e.snapshot()
	b, a := tenantOf(t, before, wrong.ID).Lync, tenantOf(t, after, wrong.ID).Lync
	if a.AllowFederatedUsers != b.AllowFederatedUsers || len(a.HostingProviders) != 1 || *a.HostingProviders[0] != *b.HostingProviders[0] {
		t.Errorf("abort did not restore the deployment: AllowFederatedUsers %v (was %v), providers %+v (was %+v)",
			a.AllowFederatedUsers, b.AllowFederatedUsers, a.HostingProviders, b.HostingProviders)
	}
	checkNothingLost(t, before, after)

	e.recordHistory(ctx, runs[fresh.ID], "lync/lync-converges")
	e.recordHistory(ctx, runs[stuck.ID], "lync/lync-pause-retry")
	e.recordHistory(ctx, runs[wrong.ID], "lync/lync-pause-abort")

	// Probe: every queue of the world answers.
	queues := []string{temporalx.CloudQueue}
	for _, r := range e.roles {
		if q := temporalx.QueueForRole(r); q != temporalx.CloudQueue {
			queues = append(queues, q)
		}
	}
	probe := e.execute(ctx, "hybridflow/probe/e2e", workflows.Probe, workflows.ProbeInput{Queues: queues})
	var outs []workflows.ProbeOutcome
	if err := probe.Get(ctx, &outs); err != nil || len(outs) != len(queues) {
		t.Fatalf("probe: %d outcome(s) for %d queue(s), error %v", len(outs), len(queues), err)
	}
	for _, o := range outs {
		if o.Result == nil || o.Error != "" {
			t.Errorf("probe of %s: %q", o.Queue, o.Error)
		}
	}
	e.recordHistory(ctx, probe, "probe/probe-every-queue")
	t.Logf("Lync converged, retried and aborted, %d queues probed in %s", len(queues), time.Since(began).Round(time.Millisecond))
}

// TestE2ETenantLockWaiter: a setup pauses for an operator while it holds
// the tenant's write lock; a renewal of the same tenant started meanwhile
// finds the lock busy and waits on a durable timer. The operator retries
// the setup, which converges and releases the lock; the renewal then takes
// it, reads, finds the certificate not due and releases it in turn. Both
// TenantLock runs, and the waiting renewal, are recorded.
func TestE2ETenantLockWaiter(t *testing.T) {
	began := time.Now()
	w := generated(t, sim.GenerateSpec{Tenants: 1, Prefix: "lock"}, 4421, nil)
	w.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoShell, Operation: "New-IntraOrganizationConnector", Kind: sim.FaultFail, FailFirstN: 2}})
	e := newEnv(t, w)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tn := e.tenant(w.Tenants[0].ID)
	setup := e.start(ctx, tn, workflows.SetupOptions{
		Retry: workflows.RetryOptions{InitialInterval: 100 * time.Millisecond, MaximumInterval: 100 * time.Millisecond, MaximumAttempts: 2},
	})
	if st := e.waitPaused(ctx, setup); st.Paused.Step != string(plan.StepIOCOnPrem) || st.Paused.ErrorType != exchange.ShortType(exchange.TypeTransient) {
		t.Fatalf("setup paused %+v; want step %s", *st.Paused, plan.StepIOCOnPrem)
	}
	holder := lockRunOf(e, ctx, setup)

	renewal := e.execute(ctx, workflows.RenewalWorkflowID(tn.ID), workflows.Renewal, workflows.RenewalInputFromTenant(tn, workflows.RenewalModeDetect, workflows.RenewalOptions{
		Window: time.Hour, EmergencyThreshold: time.Minute, FailurePolicy: workflows.PolicyFail, LockWait: time.Minute,
		Retry:          workflows.RetryOptions{InitialInterval: 100 * time.Millisecond, MaximumInterval: time.Second, MaximumAttempts: 3},
		VerifyInterval: 200 * time.Millisecond, VerifyDeadline: 30 * time.Second, ScheduleToStart: time.Minute,
	}))
	lockID := workflows.TenantLockWorkflowID(tn.ID)
	queryInto(e, ctx, renewal, "waiting for the lock", func(st workflows.RenewalState) bool {
		for _, s := range st.Steps {
			if s.Step == workflows.RenewStepRead && strings.Contains(s.Detail, "waiting for "+lockID) {
				return true
			}
		}
		return false
	})

	e.update(ctx, setup, workflows.UpdateRetry)
	if res, err := e.result(ctx, setup); err != nil || res.State != workflows.StateVerified {
		t.Fatalf("setup after retry: state %s, error %v", res.State, err)
	}
	var rres workflows.RenewalResult
	if err := renewal.Get(ctx, &rres); err != nil || rres.State != workflows.StateRenewalNotDue {
		t.Fatalf("renewal: state %s (%s), error %v; want %s", rres.State, rres.Reason, err, workflows.StateRenewalNotDue)
	}
	waiter := lockRunOf(e, ctx, renewal)
	if holder.GetRunID() == waiter.GetRunID() {
		t.Fatalf("the setup and the renewal share the lock run %s", holder.GetRunID())
	}
	// A setup's close releases its lock (the child's parent close policy
	// terminates it); a renewal cancels its lock and waits for it.
	var terminated *temporal.TerminatedError
	if err := holder.Get(ctx, nil); !errors.As(err, &terminated) {
		t.Errorf("the setup's lock run %s: %v; want it terminated by the setup's close", holder.GetRunID(), err)
	}
	if err := waiter.Get(ctx, nil); err != nil {
		t.Errorf("the renewal's lock run %s: %v", waiter.GetRunID(), err)
	}
	// The renewal's first try to take the lock failed: it was busy.
	busy := 0
	for _, ev := range e.history(ctx, renewal).Events {
		if ev.GetStartChildWorkflowExecutionFailedEventAttributes().GetWorkflowId() == lockID {
			busy++
		}
	}
	if busy == 0 {
		t.Error("the renewal never found the lock busy")
	}

	e.recordHistory(ctx, holder, "lock/lock-held-by-setup")
	e.recordHistory(ctx, waiter, "lock/lock-held-by-renewal")
	e.recordHistory(ctx, renewal, "renewal/renewal-lock-waiter")
	t.Logf("renewal waited for the setup's lock (%d busy tries), then ran: %s in %s", busy, rres.State, time.Since(began).Round(time.Millisecond))
}

// lockRunOf is the TenantLock run the workflow started as its child (the
// first one started, which is the one it holds or held).
func lockRunOf(e *env, ctx context.Context, run client.WorkflowRun) client.WorkflowRun {
	e.t.Helper()
	ev := e.waitEvent(ctx, run, "lock child started", func(ev *historypb.HistoryEvent) bool {
		return ev.GetEventType() == enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED &&
			ev.GetChildWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName() == "TenantLock"
	})
	x := ev.GetChildWorkflowExecutionStartedEventAttributes().GetWorkflowExecution()
	return e.c.GetWorkflow(ctx, x.GetWorkflowId(), x.GetRunId())
}
