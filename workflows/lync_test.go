package workflows_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/devserver"
	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/internal/workerhost"
	"github.com/hybridflow/hybridflow/workflows"
)

// The integration test's backend runs real PowerShell-host clients whose
// host processes are this test binary re-run as the simulator's relay.
func init() { sim.MaybeRunHost() }

// lyncSpec is one tenant with a Lync deployment of its own at its own
// Lync site. Replicas: fe01 lags FELag status reads after a change (-1:
// never catches up), edge01 two.
type lyncSpec struct {
	n        int
	cloud    string
	provider string // extra YAML under hosting_providers (and the Edge's store)
	feLag    int
	override string
}

func (s lyncSpec) id() string   { return fmt.Sprintf("33333333-3333-4333-8333-%012d", s.n) }
func (s lyncSpec) site() string { return fmt.Sprintf("lync-%d", s.n) }
func (s lyncSpec) domain() string {
	if s.cloud == "china" {
		return fmt.Sprintf("lync%d.partner.onmschina.cn", s.n)
	}
	return fmt.Sprintf("lync%d.onmicrosoft.com", s.n)
}
func (s lyncSpec) fe() string { return fmt.Sprintf("fe01.lync%d.example.com", s.n) }

func (s lyncSpec) yaml() string {
	providers := ""
	if s.provider != "" {
		providers = "      hosting_providers:\n" + s.provider + "      edge_local_store:\n" + s.provider
	}
	return fmt.Sprintf(`  - id: %s
    display_name: Lync %d
    cloud: %s
    initial_domain: %s
    site: site-%d
    lync:
      site: %s
      allow_federated_users: false
%s      replicas:
        - fqdn: %s
          up_to_date: true
          lag_checks: %d
        - fqdn: edge01.lync%d.example.com
          up_to_date: true
          lag_checks: 2
      external_access_policies:
        - identity: Global
          enable_outside_access: false
        - identity: Tag:RemoteUsers
          enable_outside_access: %v
`, s.id(), s.n, s.cloud, s.domain(), s.n, s.site(), providers, s.fe(), s.feLag, s.n, s.n%2 == 0)
}

// lyncProvider is a hosting_providers entry.
func lyncProvider(fqdn, level string) string {
	return fmt.Sprintf(`        - identity: Exchange Online
          enabled: true
          enabled_shared_address_space: true
          hosts_ocs_users: false
          proxy_fqdn: %s
          is_local: false
          verification_level: %s
`, fqdn, level)
}

type lyncHarness struct {
	t     *testing.T
	world *sim.World
	be    *backend.Backend
	specs map[string]lyncSpec
}

func newLyncHarness(t *testing.T, direct bool, specs ...lyncSpec) *lyncHarness {
	t.Helper()
	var b strings.Builder
	b.WriteString("now: 2026-11-02T12:00:00Z\ntenants:\n")
	h := &lyncHarness{t: t, specs: map[string]lyncSpec{}}
	for _, s := range specs {
		b.WriteString(s.yaml())
		h.specs[s.site()] = s
	}
	w, err := sim.Parse("lync-test", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	be, err := backend.NewSimulated(ctx, w, zap.NewNop(), backend.SimOptions{DirectShell: direct})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(be.Close)
	h.world, h.be = w, be
	return h
}

var lyncFast = workflows.LyncOptions{
	Retry:                   workflows.RetryOptions{InitialInterval: 5 * time.Millisecond, MaximumInterval: 20 * time.Millisecond, MaximumAttempts: 3},
	ReplicationPollInterval: 2 * time.Millisecond,
	ReplicationTimeout:      400 * time.Millisecond,
}

func (h *lyncHarness) input(s lyncSpec, o workflows.LyncOptions) workflows.LyncInput {
	h.t.Helper()
	inv := h.world.Inventory()
	for i := range inv.Tenants {
		inv.Tenants[i].Overrides.LyncProxyFQDN = h.specs[inv.Tenants[i].LyncSite].override
	}
	// As the CLI maps a site (starter's lyncInputForSite): its first tenant
	// decides the cloud and the target.
	for _, tn := range inv.Tenants {
		if strings.EqualFold(tn.LyncSite, s.site()) {
			return workflows.LyncInput{Site: s.site(), Cloud: tn.Cloud, ProxyFqdnOverride: tn.Overrides.LyncProxyFQDN, Options: o,
				Target: workflows.TargetFromTenant(tn)}
		}
	}
	h.t.Fatalf("no tenant at Lync site %s", s.site())
	return workflows.LyncInput{}
}

// lyncTestLog sends the test environment's warnings and errors to t.Log.
type lyncTestLog struct{ t *testing.T }

func (l lyncTestLog) Write(p []byte) (int, error) {
	l.t.Helper()
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (h *lyncHarness) env() *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(lyncTestLog{h.t}, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(workflows.LyncIntegration)
	env.RegisterActivity(&activities.Lync{Hosts: h.be})
	env.SetTestTimeout(time.Minute)
	// -race slows the first workflow task past the 1s deadlock detector.
	env.SetWorkerOptions(worker.Options{DeadlockDetectionTimeout: 10 * time.Second})
	return env
}

func (h *lyncHarness) run(env *testsuite.TestWorkflowEnvironment, in workflows.LyncInput) (workflows.LyncResult, error) {
	h.t.Helper()
	env.ExecuteWorkflow(workflows.LyncIntegration, in)
	if !env.IsWorkflowCompleted() {
		h.t.Fatal("workflow did not complete")
	}
	var res workflows.LyncResult
	err := env.GetWorkflowError()
	if err == nil {
		if gerr := env.GetWorkflowResult(&res); gerr != nil {
			h.t.Fatal(gerr)
		}
	}
	return res, err
}

// deployment is a deep copy of a tenant's Lync deployment.
func (h *lyncHarness) deployment(s lyncSpec) sim.LyncDeployment {
	var d sim.LyncDeployment
	h.world.View(s.id(), func(t *sim.Tenant) {
		data, err := yaml.Marshal(t.Lync)
		if err != nil {
			h.t.Fatal(err)
		}
		if err := yaml.Unmarshal(data, &d); err != nil {
			h.t.Fatal(err)
		}
	})
	return d
}

// lyncConfiguration is the deployment as YAML without the replicas' live
// status: any write, the undo's included, marks replicas behind, and a
// replica that never catches up cannot be "restored".
func lyncConfiguration(t *testing.T, d sim.LyncDeployment) string {
	t.Helper()
	for _, r := range d.Replicas {
		r.UpToDate = false
	}
	out, err := yaml.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func lyncYAML(t *testing.T, v any) string {
	t.Helper()
	out, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// settle reads replication status until every replica is up to date (the
// passage of time, in the simulator), which also syncs the Edge.
func (h *lyncHarness) settle(s lyncSpec) {
	h.t.Helper()
	r := sim.DirectRunner{W: h.world, Side: sim.Lync, Tenant: s.id()}
	for i := 0; i < 100; i++ {
		rows, err := r.Run(context.Background(), exchange.Command{Cmdlet: "Get-CsManagementStoreReplicationStatus"})
		if err != nil {
			h.t.Fatal(err)
		}
		done := true
		for _, row := range rows {
			done = done && row["UpToDate"] == true
		}
		if done {
			return
		}
	}
	h.t.Fatal("replication did not settle")
}

func (h *lyncHarness) writes(s lyncSpec) int64 {
	if c := h.world.Stats().ByTenant[strings.ToLower(s.id())]; c != nil {
		return c.Writes
	}
	return 0
}

func lyncWantProvider(fqdn string) sim.HostingProvider {
	return sim.HostingProvider{Identity: "Exchange Online", Enabled: true, EnabledSharedAddressSpace: true, HostsOCSUsers: false,
		ProxyFqdn: fqdn, IsLocal: false, VerificationLevel: "UseSourceVerification"}
}

// lyncCheckConverged asserts the deployment is exactly as Microsoft's Lync Edge procedure
// documents.
func lyncCheckConverged(t *testing.T, d sim.LyncDeployment, fqdn string) {
	t.Helper()
	if !d.AllowFederatedUsers {
		t.Error("AllowFederatedUsers is still false")
	}
	if len(d.HostingProviders) != 1 || *d.HostingProviders[0] != lyncWantProvider(fqdn) {
		t.Errorf("hosting providers: %s", lyncYAML(t, d.HostingProviders))
	}
	if len(d.EdgeLocalStore) != 1 || *d.EdgeLocalStore[0] != lyncWantProvider(fqdn) {
		t.Errorf("edge local store: %s", lyncYAML(t, d.EdgeLocalStore))
	}
}

func lyncLogSteps(t *testing.T, res workflows.LyncResult) {
	t.Helper()
	for _, s := range res.Steps {
		t.Logf("%-22s %-11s %-9s %s", s.Step, s.Status, s.Outcome, s.Detail)
	}
}

func lyncStep(res workflows.LyncState, name string) *workflows.StepState {
	for _, s := range res.Steps {
		if s.Step == name {
			return s
		}
	}
	return &workflows.StepState{}
}

// lyncWhenPaused answers the workflow's first pause: check sees the state,
// decide is the update to send (after prepare, if any, changed the world).
func lyncWhenPaused(t *testing.T, env *testsuite.TestWorkflowEnvironment, check func(workflows.LyncState), decision string) {
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(workflows.QueryState)
		if err != nil {
			t.Errorf("query: %v", err)
			return
		}
		var st workflows.LyncState
		if err := v.Get(&st); err != nil {
			t.Errorf("query result: %v", err)
			return
		}
		if st.Paused == nil || st.State != workflows.StatePaused {
			t.Errorf("not paused: state %s", st.State)
			return
		}
		if check != nil {
			check(st)
		}
		env.UpdateWorkflow(decision, "", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { t.Errorf("%s rejected: %v", decision, err) },
			OnAccept:   func() {},
			OnComplete: func(any, error) {},
		}, workflows.OperatorAction{Reason: "test"})
	}, 10*time.Minute)
}

func TestLyncFreshDeploymentConverges(t *testing.T) {
	s := lyncSpec{n: 1, cloud: "global", feLag: 3}
	h := newLyncHarness(t, true, s)
	res, err := h.run(h.env(), h.input(s, lyncFast))
	if err != nil {
		t.Fatal(err)
	}
	lyncLogSteps(t, res)
	if res.State != workflows.StateVerified || res.Writes != 2 {
		t.Fatalf("state %s, %d writes", res.State, res.Writes)
	}
	lyncCheckConverged(t, h.deployment(s), "exap.um.outlook.com")
	if st := lyncStep(res, string(activities.LyncStepHostingProvider)); st.Outcome != string(activities.Created) {
		t.Errorf("hosting provider outcome %q", st.Outcome)
	}
	// fe01 lags 3 reads after the last write: 4 reads (discovery read one
	// before the writes).
	if st := lyncStep(res, string(activities.LyncStepReplication)); !strings.Contains(st.Detail, "after 4 status read(s)") {
		t.Errorf("replication detail %q", st.Detail)
	}
	// Odd specs have no policy that allows remote users: a warning says so.
	if !strings.Contains(strings.Join(res.Warnings, "\n"), "no external access policy enables communications with remote users") {
		t.Errorf("no external access warning: %q", res.Warnings)
	}

	// A second run writes nothing.
	before := h.writes(s)
	res2, err := h.run(h.env(), h.input(s, lyncFast))
	if err != nil {
		t.Fatal(err)
	}
	if res2.Writes != 0 || h.writes(s) != before || res2.State != workflows.StateVerified {
		t.Fatalf("second run: state %s, %d workflow writes, %d world writes", res2.State, res2.Writes, h.writes(s)-before)
	}
}

// TestLyncProxyFqdnPerCloud: 21Vianet gets exap.um.partner.outlook.cn,
// worldwide exap.um.outlook.com, and an inventory override wins.
func TestLyncProxyFqdnPerCloud(t *testing.T) {
	cn := lyncSpec{n: 2, cloud: "china"}
	gl := lyncSpec{n: 4, cloud: "global"}
	ov := lyncSpec{n: 6, cloud: "dod", override: "exap.um.example.us"}
	h := newLyncHarness(t, true, cn, gl, ov)
	for _, c := range []struct {
		s    lyncSpec
		want string
	}{{cn, "exap.um.partner.outlook.cn"}, {gl, "exap.um.outlook.com"}, {ov, "exap.um.example.us"}} {
		res, err := h.run(h.env(), h.input(c.s, lyncFast))
		if err != nil {
			t.Fatalf("%s: %v", c.s.cloud, err)
		}
		if res.Desired == nil || res.Desired.ProxyFqdn != c.want {
			t.Fatalf("%s: desired %+v", c.s.cloud, res.Desired)
		}
		lyncCheckConverged(t, h.deployment(c.s), c.want)
		if len(res.RemoteAccess) != 1 || res.RemoteAccess[0] != "Tag:RemoteUsers" {
			t.Errorf("%s: remote access policies %v", c.s.cloud, res.RemoteAccess)
		}
	}
}

func TestLyncWrongProxyFqdnIsRecreated(t *testing.T) {
	s := lyncSpec{n: 3, cloud: "global", provider: lyncProvider("exap.um.partner.outlook.cn", "AlwaysVerifiable"), feLag: 1}
	h := newLyncHarness(t, true, s)
	before := h.writes(s)
	res, err := h.run(h.env(), h.input(s, lyncFast))
	if err != nil {
		t.Fatal(err)
	}
	lyncLogSteps(t, res)
	st := lyncStep(res, string(activities.LyncStepHostingProvider))
	if st.Outcome != string(activities.Updated) || !strings.Contains(st.Detail, "removed and re-created (ProxyFqdn exap.um.partner.outlook.cn → exap.um.outlook.com") {
		t.Fatalf("hosting provider step: %s %q", st.Outcome, st.Detail)
	}
	lyncCheckConverged(t, h.deployment(s), "exap.um.outlook.com")
	// federation + remove + new
	if got := h.writes(s) - before; got != 3 {
		t.Fatalf("%d writes, want 3", got)
	}
}

func TestLyncVerificationLevelCorrectedInPlace(t *testing.T) {
	s := lyncSpec{n: 5, cloud: "global", provider: lyncProvider("exap.um.outlook.com", "AlwaysVerifiable")}
	h := newLyncHarness(t, true, s)
	h.world.Update(s.id(), func(t *sim.Tenant) { t.Lync.AllowFederatedUsers = true })
	before := h.writes(s)
	res, err := h.run(h.env(), h.input(s, lyncFast))
	if err != nil {
		t.Fatal(err)
	}
	lyncLogSteps(t, res)
	st := lyncStep(res, string(activities.LyncStepHostingProvider))
	if st.Outcome != string(activities.Updated) || !strings.Contains(st.Detail, "set in place: VerificationLevel AlwaysVerifiable → UseSourceVerification") {
		t.Fatalf("hosting provider step: %s %q", st.Outcome, st.Detail)
	}
	if fed := lyncStep(res, string(activities.LyncStepFederation)); fed.Outcome != string(activities.Unchanged) {
		t.Errorf("federation %q", fed.Outcome)
	}
	// One Set-CsHostingProvider, no remove / re-create.
	if got := h.writes(s) - before; got != 1 || res.Writes != 1 {
		t.Fatalf("%d world writes, %d workflow writes; want 1 (set in place)", got, res.Writes)
	}
	lyncCheckConverged(t, h.deployment(s), "exap.um.outlook.com")
}

func TestLyncWaitsForLaggingReplication(t *testing.T) {
	s := lyncSpec{n: 7, cloud: "global", feLag: 40}
	h := newLyncHarness(t, true, s)
	var beats int
	var mu sync.Mutex
	env := h.env()
	env.SetOnActivityHeartbeatListener(func(info *activity.Info, _ converter.EncodedValues) {
		mu.Lock()
		beats++
		mu.Unlock()
	})
	o := lyncFast
	o.ReplicationTimeout = 5 * time.Second
	res, err := h.run(env, h.input(s, o))
	if err != nil {
		t.Fatal(err)
	}
	lyncLogSteps(t, res)
	st := lyncStep(res, string(activities.LyncStepReplication))
	if !strings.Contains(st.Detail, "after 41 status read(s)") {
		t.Fatalf("replication detail %q", st.Detail)
	}
	if beats == 0 {
		t.Error("the replication wait never heartbeat")
	}
	lyncCheckConverged(t, h.deployment(s), "exap.um.outlook.com")
}

// TestLyncReplicationNeverCatchesUp: the wait gives up at its bound and the
// workflow pauses naming the replica; abort restores the deployment's
// configuration exactly (AllowFederatedUsers and the previous provider,
// re-created with its old settings).
func TestLyncReplicationNeverCatchesUp(t *testing.T) {
	s := lyncSpec{n: 9, cloud: "global", provider: lyncProvider("exap.um.partner.outlook.cn", "AlwaysUnverifiable"), feLag: -1}
	h := newLyncHarness(t, true, s)
	before := h.deployment(s)
	env := h.env()
	lyncWhenPaused(t, env, func(st workflows.LyncState) {
		if st.Paused.Step != string(activities.LyncStepReplication) || st.Paused.ErrorType != activities.ErrReplicationLagging ||
			!strings.Contains(st.Paused.Error, s.fe()+" (last status report") || strings.Contains(st.Paused.Error, "edge01") {
			t.Errorf("pause: %+v", st.Paused)
		}
		if st.Undo != 2 {
			t.Errorf("%d undo records while paused, want 2", st.Undo)
		}
		t.Logf("paused: %s", st.Paused.Error)
	}, workflows.UpdateAbort)
	res, err := h.run(env, h.input(s, lyncFast))
	var app *temporal.ApplicationError
	if err == nil || !lyncAsApp(err, &app) || app.Type() != "Aborted" {
		t.Fatalf("want an Aborted error, got %v", err)
	}
	var st workflows.LyncState
	if v, qerr := env.QueryWorkflow(workflows.QueryState); qerr == nil {
		_ = v.Get(&st)
	}
	_ = res
	t.Logf("compensation: %q", st.Compensation)
	if len(st.Compensation) != 2 || !strings.HasPrefix(st.Compensation[0], "lync-hosting-provider: "+activities.UndoLyncRestoreHostingProvider) ||
		!strings.HasPrefix(st.Compensation[1], "lync-federation: "+activities.UndoLyncSetAllowFederatedUsers) {
		t.Errorf("compensation %q", st.Compensation)
	}
	if got, want := lyncConfiguration(t, h.deployment(s)), lyncConfiguration(t, before); got != want {
		t.Fatalf("abort did not restore the deployment:\n got %s\nwant %s", got, want)
	}
}

func lyncAsApp(err error, app **temporal.ApplicationError) bool {
	for e := err; e != nil; {
		if a, ok := e.(*temporal.ApplicationError); ok {
			*app = a
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

// TestLyncAbortRestoresExactly pauses after everything converged (the
// external access read is denied), aborts, lets replication settle and
// expects the whole deployment — CMS, Edge local store, replica status —
// exactly as before.
func TestLyncAbortRestoresExactly(t *testing.T) {
	s := lyncSpec{n: 11, cloud: "global", provider: lyncProvider("exap.um.outlook.com", "AlwaysVerifiable"), feLag: 2}
	h := newLyncHarness(t, true, s)
	before := lyncYAML(t, h.deployment(s))
	env := h.env()
	env.SetOnActivityCompletedListener(func(info *activity.Info, _ converter.EncodedValue, _ error) {
		if info.ActivityType.Name == "ConfirmLyncEdgeProvider" {
			h.world.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoShell, Operation: "Get-CsExternalAccessPolicy", Kind: sim.FaultFail, Rate: 1,
				ErrorType: exchange.TypeAccessDenied, Message: "Access denied."}})
		}
	})
	lyncWhenPaused(t, env, func(st workflows.LyncState) {
		if st.Paused.Step != string(activities.LyncStepExternalAccess) || st.Paused.ErrorType != activities.ErrMissingPermission {
			t.Errorf("pause: %+v", st.Paused)
		}
		lyncCheckConverged(t, h.deployment(s), "exap.um.outlook.com")
	}, workflows.UpdateAbort)
	_, err := h.run(env, h.input(s, lyncFast))
	if err == nil || !strings.Contains(err.Error(), "aborted; 2 change(s) undone") {
		t.Fatalf("want abort, got %v", err)
	}
	h.world.SetFaults(nil)
	h.settle(s)
	if after := lyncYAML(t, h.deployment(s)); after != before {
		t.Fatalf("abort did not restore the deployment:\n got %s\nwant %s", after, before)
	}
}

// TestLyncAbortAfterFailedRecreate: re-creating the provider fails and
// so does putting the old one back, leaving none; the failure carries the
// old provider, and abort re-creates it exactly.
func TestLyncAbortAfterFailedRecreate(t *testing.T) {
	s := lyncSpec{n: 19, cloud: "global", provider: lyncProvider("exap.um.partner.outlook.cn", "AlwaysUnverifiable"), feLag: 1}
	h := newLyncHarness(t, true, s)
	before := lyncConfiguration(t, h.deployment(s))
	h.world.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoShell, Operation: "New-CsHostingProvider", Kind: sim.FaultFail, Rate: 1,
		ErrorType: exchange.TypeAccessDenied, Message: "Access denied."}})
	env := h.env()
	lyncWhenPaused(t, env, func(st workflows.LyncState) {
		if st.Paused.Step != string(activities.LyncStepHostingProvider) || !strings.Contains(st.Paused.Error, "putting the previous provider back failed too") || st.Undo != 2 {
			t.Errorf("pause %+v, %d undo records", st.Paused, st.Undo)
		}
		if d := h.deployment(s); len(d.HostingProviders) != 0 {
			t.Errorf("providers while paused: %s", lyncYAML(t, d.HostingProviders))
		}
		h.world.SetFaults(nil)
	}, workflows.UpdateAbort)
	if _, err := h.run(env, h.input(s, lyncFast)); err == nil || !strings.Contains(err.Error(), "aborted; 2 change(s) undone") {
		t.Fatalf("%v", err)
	}
	if after := lyncConfiguration(t, h.deployment(s)); after != before {
		t.Fatalf("not restored:\n%s\nwant\n%s", after, before)
	}
}

// TestLyncRetryAfterReplicationRecovers: the operator fixes the lagging
// replica and retries; the run completes.
func TestLyncRetryAfterReplicationRecovers(t *testing.T) {
	s := lyncSpec{n: 13, cloud: "global", feLag: -1}
	h := newLyncHarness(t, true, s)
	env := h.env()
	lyncWhenPaused(t, env, func(workflows.LyncState) {
		h.world.Update(s.id(), func(t *sim.Tenant) { t.Lync.Replicas[0].LagChecks = 1 })
	}, workflows.UpdateRetry)
	res, err := h.run(env, h.input(s, lyncFast))
	if err != nil {
		t.Fatal(err)
	}
	if st := lyncStep(res, string(activities.LyncStepReplication)); st.Attempts != 2 || res.State != workflows.StateVerified {
		t.Fatalf("state %s, replication attempts %d", res.State, st.Attempts)
	}
	lyncCheckConverged(t, h.deployment(s), "exap.um.outlook.com")
}

func TestLyncDryRunWritesNothing(t *testing.T) {
	s := lyncSpec{n: 15, cloud: "china", provider: lyncProvider("exap.um.outlook.com", "UseSourceVerification")}
	h := newLyncHarness(t, true, s)
	before := lyncYAML(t, h.deployment(s))
	o := lyncFast
	o.DryRun = true
	res, err := h.run(h.env(), h.input(s, o))
	if err != nil {
		t.Fatal(err)
	}
	if res.State != workflows.StatePlanned || res.Writes != 0 || h.writes(s) != 0 {
		t.Fatalf("state %s, writes %d / %d", res.State, res.Writes, h.writes(s))
	}
	changes := map[string]string{}
	for _, a := range res.Plan {
		changes[string(a.Step)] = string(a.Change)
		t.Logf("%-22s %-7s %s %q", a.Step, a.Change, a.Reason, a.Details)
	}
	want := map[string]string{"lync-federation": "update", "lync-hosting-provider": "update", "lync-replication": "check", "lync-edge-local-store": "check", "lync-external-access": "check"}
	if lyncYAML(t, changes) != lyncYAML(t, want) {
		t.Fatalf("plan %v, want %v", changes, want)
	}
	if r := res.Plan[1].Reason; !strings.Contains(r, "removed and re-created") || !strings.Contains(r, "exap.um.partner.outlook.cn") {
		t.Errorf("provider reason %q", r)
	}
	if after := lyncYAML(t, h.deployment(s)); after != before {
		t.Fatalf("dry run changed the deployment")
	}
}

// TestLyncSkippedDiscovery: an operator may skip a discovery that cannot
// run; the plan then assumes nothing is configured and the steps, which
// read before they write, change only what differs.
func TestLyncSkippedDiscovery(t *testing.T) {
	s := lyncSpec{n: 17, cloud: "global", provider: lyncProvider("exap.um.outlook.com", "UseSourceVerification")}
	h := newLyncHarness(t, true, s)
	h.world.Update(s.id(), func(t *sim.Tenant) { t.Lync.AllowFederatedUsers = true })
	h.world.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoShell, Operation: "Get-CsAccessEdgeConfiguration", Kind: sim.FaultFail, FailFirstN: 1,
		ErrorType: exchange.TypeAccessDenied, Message: "Access denied."}})
	env := h.env()
	lyncWhenPaused(t, env, func(st workflows.LyncState) {
		if st.Paused.Step != "discover" || st.Paused.ErrorType != activities.ErrMissingPermission {
			t.Errorf("pause %+v", st.Paused)
		}
	}, workflows.UpdateSkip)
	res, err := h.run(env, h.input(s, lyncFast))
	if err != nil {
		t.Fatal(err)
	}
	lyncLogSteps(t, res)
	if res.State != workflows.StateVerified || res.Writes != 0 || h.writes(s) != 0 || !strings.Contains(strings.Join(res.Warnings, " "), "discovery was skipped") {
		t.Fatalf("state %s, writes %d/%d, warnings %q", res.State, res.Writes, h.writes(s), res.Warnings)
	}
	if st := lyncStep(res, string(activities.LyncStepHostingProvider)); st.Change != "create" || st.Outcome != string(activities.Unchanged) {
		t.Fatalf("provider step planned %s, did %s", st.Change, st.Outcome)
	}
}

// TestLyncPolicies: skipping the Edge confirmation leaves the run
// unverified; policy compensate undoes at once and keeps the cause; a
// cancel while paused still undoes this run's changes.
func TestLyncPolicies(t *testing.T) {
	t.Run("skip edge confirmation", func(t *testing.T) {
		s := lyncSpec{n: 31, cloud: "global"}
		h := newLyncHarness(t, true, s)
		o := lyncFast
		o.SkipSteps = []string{string(activities.LyncStepEdgeStore)}
		res, err := h.run(h.env(), h.input(s, o))
		if err != nil || res.State != workflows.StateUnverified {
			t.Fatalf("state %s: %v", res.State, err)
		}
	})
	t.Run("unknown step to skip", func(t *testing.T) {
		s := lyncSpec{n: 32, cloud: "global"}
		h := newLyncHarness(t, true, s)
		o := lyncFast
		o.SkipSteps = []string{"edge"}
		if _, err := h.run(h.env(), h.input(s, o)); err == nil || !strings.Contains(err.Error(), "unknown Lync step") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("compensate", func(t *testing.T) {
		s := lyncSpec{n: 33, cloud: "global", feLag: -1}
		h := newLyncHarness(t, true, s)
		before := lyncConfiguration(t, h.deployment(s))
		o := lyncFast
		o.FailurePolicy = workflows.PolicyCompensate
		_, err := h.run(h.env(), h.input(s, o))
		if err == nil || !strings.Contains(err.Error(), "aborted; 2 change(s) undone: step lync-replication failed") || !strings.Contains(err.Error(), s.fe()) {
			t.Fatalf("%v", err)
		}
		if after := lyncConfiguration(t, h.deployment(s)); after != before {
			t.Fatalf("not restored:\n%s\nwant\n%s", after, before)
		}
	})
	t.Run("cancel during the provider write", func(t *testing.T) {
		// Cancelled as the hosting provider's activity starts: the write
		// is not cancelled, its undo record is kept, and the compensation
		// takes the provider away again with the federation setting.
		s := lyncSpec{n: 39, cloud: "global", feLag: -1}
		h := newLyncHarness(t, true, s)
		before := lyncConfiguration(t, h.deployment(s))
		env := h.env()
		var cancelled atomic.Bool
		env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
			if info.ActivityType.Name == "EnsureLyncHostingProvider" && cancelled.CompareAndSwap(false, true) {
				env.CancelWorkflow()
			}
		})
		res, err := h.run(env, h.input(s, lyncFast))
		if !cancelled.Load() || !temporal.IsCanceledError(err) {
			t.Fatalf("cancelled %v, error %v; want a cancelled run", cancelled.Load(), err)
		}
		if after := lyncConfiguration(t, h.deployment(s)); after != before {
			t.Fatalf("not restored (compensation %v):\n%s\nwant\n%s", res.Compensation, after, before)
		}
	})
	t.Run("cancel while paused", func(t *testing.T) {
		s := lyncSpec{n: 35, cloud: "global", provider: lyncProvider("exap.um.outlook.com", "AlwaysVerifiable"), feLag: -1}
		h := newLyncHarness(t, true, s)
		before := lyncConfiguration(t, h.deployment(s))
		env := h.env()
		env.RegisterDelayedCallback(env.CancelWorkflow, 10*time.Minute)
		_, err := h.run(env, h.input(s, lyncFast))
		if !temporal.IsCanceledError(err) {
			t.Fatalf("want cancelled, got %v", err)
		}
		if after := lyncConfiguration(t, h.deployment(s)); after != before {
			t.Fatalf("not restored:\n%s\nwant\n%s", after, before)
		}
	})
	t.Run("fail", func(t *testing.T) {
		s := lyncSpec{n: 37, cloud: "global", feLag: -1}
		h := newLyncHarness(t, true, s)
		o := lyncFast
		o.FailurePolicy = workflows.PolicyFail
		_, err := h.run(h.env(), h.input(s, o))
		var app *temporal.ApplicationError
		if !lyncAsApp(err, &app) || app.Type() != activities.ErrReplicationLagging {
			t.Fatalf("%v", err)
		}
		if !h.deployment(s).AllowFederatedUsers {
			t.Fatal("policy fail undid changes")
		}
	})
}

// TestLyncEdgeWaitsForTheSnapshot follows shared/reference/hybrid-facts.md
// (e), rows "replication" and "check on an internal server": the Master
// Replicator packages the change only after a few status reads, so the
// replication wait sees every replica "up to date" with the old snapshot
// and passes; the Edge step must still wait until the Edge Server's
// replica (edge01, named) has applied a snapshot made after the write, and
// the run ends verified with the provider in the Edge's store.
func TestLyncEdgeWaitsForTheSnapshot(t *testing.T) {
	s := lyncSpec{n: 39, cloud: "global", feLag: 0}
	h := newLyncHarness(t, true, s)
	h.world.Update(s.id(), func(t *sim.Tenant) {
		// Packaged at the fourth status read after the first write: the
		// hosting-provider step's baseline read, the replication wait's
		// one read and the Edge step's first attempt all see the old
		// snapshot as current.
		t.Lync.SnapshotDelayChecks = 4
		t.Lync.Replicas[1].Role = sim.LyncRoleEdge
	})
	o := lyncFast
	o.Retry.MaximumAttempts = 8
	in := h.input(s, o)
	in.EdgeFqdns = []string{fmt.Sprintf("edge01.lync%d.example.com", s.n)}
	var edgeAttempts int
	env := h.env()
	env.SetOnActivityCompletedListener(func(info *activity.Info, _ converter.EncodedValue, _ error) {
		if info.ActivityType.Name == "ConfirmLyncEdgeProvider" {
			edgeAttempts = int(info.Attempt)
		}
	})
	res, err := h.run(env, in)
	if err != nil {
		t.Fatal(err)
	}
	lyncLogSteps(t, res)
	if res.State != workflows.StateVerified {
		t.Fatalf("state %s", res.State)
	}
	if st := lyncStep(res, string(activities.LyncStepReplication)); !strings.Contains(st.Detail, "after 1 status read(s)") {
		t.Errorf("replication detail %q: the wait should have seen the old snapshot as current", st.Detail)
	}
	// Attempt 1: not packaged; 2: packaged, not applied; 3: edge01 (lag 2)
	// still behind; 4: one more read; 5: applied.
	if edgeAttempts != 5 {
		t.Errorf("the Edge step took %d attempts, want 5", edgeAttempts)
	}
	if st := lyncStep(res, string(activities.LyncStepEdgeStore)); !strings.Contains(st.Detail, "edge01.lync39.example.com: UpToDate with a snapshot packaged after") {
		t.Errorf("edge detail %q", st.Detail)
	}
	lyncCheckConverged(t, h.deployment(s), "exap.um.outlook.com")
}

func TestLyncWorkflowID(t *testing.T) {
	if got := workflows.LyncWorkflowID("Edge-1"); got != "hybridflow/lync/edge-1" {
		t.Fatal(got)
	}
}

// lyncRegistrar registers what internal/workerhost/register.go does for
// the Lync workflow and activities.
func lyncRegistrar(be *backend.Backend) workerhost.Registrar {
	return func(role config.Role, r worker.Registry) error {
		switch role.Kind {
		case config.RoleCloud:
			r.RegisterWorkflow(workflows.LyncIntegration)
		case config.RoleLync:
			r.RegisterActivity(&activities.Lync{Hosts: be})
		}
		return nil
	}
}

// TestLyncIntegrationDevServer runs the Lync workflow on the real Temporal
// dev server, with workers on the cloud and Lync task queues and the real
// PowerShell-host client talking to the simulated Lync deployments.
func TestLyncIntegrationDevServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, c := devserver.ForTest(t, ctx)

	fresh := lyncSpec{n: 21, cloud: "global", feLag: 2}
	china := lyncSpec{n: 22, cloud: "china", feLag: 2}
	proxy := lyncSpec{n: 23, cloud: "global", provider: lyncProvider("exap.um.partner.outlook.cn", "UseSourceVerification"), feLag: 1}
	level := lyncSpec{n: 24, cloud: "global", provider: lyncProvider("exap.um.outlook.com", "AlwaysVerifiable")}
	lag := lyncSpec{n: 25, cloud: "global", feLag: 30}
	stuck := lyncSpec{n: 26, cloud: "global", provider: lyncProvider("exap.um.partner.outlook.cn", "AlwaysVerifiable"), feLag: -1}
	all := []lyncSpec{fresh, china, proxy, level, lag, stuck}
	h := newLyncHarness(t, false, all...)
	roles := []config.Role{{Kind: config.RoleCloud}}
	for _, s := range all {
		roles = append(roles, config.Role{Kind: config.RoleLync, Site: s.site()})
	}
	host, err := workerhost.Start(c, roles, lyncRegistrar(h.be), zap.NewNop(), workerhost.Options{Identity: "lync@test"})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Stop()

	stuckBefore := h.deployment(stuck)
	o := lyncFast
	o.ReplicationPollInterval, o.ReplicationTimeout = 10*time.Millisecond, 1500*time.Millisecond
	runs := map[string]client.WorkflowRun{}
	for _, s := range all {
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.LyncWorkflowID(s.site()), TaskQueue: temporalx.CloudQueue},
			workflows.LyncIntegration, h.input(s, o))
		if err != nil {
			t.Fatal(err)
		}
		runs[s.site()] = run
	}
	for _, c := range []struct {
		s      lyncSpec
		fqdn   string
		detail string
	}{
		{fresh, "exap.um.outlook.com", "created"},
		{china, "exap.um.partner.outlook.cn", "created"},
		{proxy, "exap.um.outlook.com", "removed and re-created (ProxyFqdn exap.um.partner.outlook.cn → exap.um.outlook.com"},
		{level, "exap.um.outlook.com", "set in place: VerificationLevel AlwaysVerifiable → UseSourceVerification"},
		{lag, "exap.um.outlook.com", "created"},
	} {
		var res workflows.LyncResult
		if err := runs[c.s.site()].Get(ctx, &res); err != nil {
			t.Fatalf("%s: %v", c.s.site(), err)
		}
		hp := lyncStep(res, string(activities.LyncStepHostingProvider))
		rep := lyncStep(res, string(activities.LyncStepReplication))
		t.Logf("%s (%s): %s, %d writes; provider: %s; replication: %s", c.s.site(), c.s.cloud, res.State, res.Writes, hp.Detail, rep.Detail)
		if res.State != workflows.StateVerified || !strings.Contains(hp.Detail, c.detail) {
			t.Errorf("%s: state %s, provider step %q", c.s.site(), res.State, hp.Detail)
		}
		lyncCheckConverged(t, h.deployment(c.s), c.fqdn)
	}
	if rep := h.deployment(lag); !rep.Replicas[0].UpToDate {
		t.Error("lagging replica not up to date after the wait")
	}

	// The stuck site pauses at the replication wait, naming fe01.
	id := workflows.LyncWorkflowID(stuck.site())
	var st workflows.LyncState
	for {
		v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryState)
		if err == nil && v.Get(&st) == nil && st.Paused != nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("never paused; last state %+v", st)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Logf("paused at %s: %s (%s)", st.Paused.Step, st.Paused.Error, st.Paused.ErrorType)
	if st.Paused.Step != string(activities.LyncStepReplication) || st.Paused.ErrorType != activities.ErrReplicationLagging || !strings.Contains(st.Paused.Error, stuck.fe()) {
		t.Fatalf("pause %+v", st.Paused)
	}
	upd, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: workflows.UpdateAbort,
		Args: []any{workflows.OperatorAction{Reason: "integration test"}}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err != nil {
		t.Fatal(err)
	}
	var pausedStep string
	if err := upd.Get(ctx, &pausedStep); err != nil || pausedStep != string(activities.LyncStepReplication) {
		t.Fatalf("abort: %q %v", pausedStep, err)
	}
	var res workflows.LyncResult
	err = runs[stuck.site()].Get(ctx, &res)
	if err == nil || !strings.Contains(err.Error(), "aborted; 2 change(s) undone") {
		t.Fatalf("stuck site: want aborted, got %v", err)
	}
	if got, want := lyncConfiguration(t, h.deployment(stuck)), lyncConfiguration(t, stuckBefore); got != want {
		t.Fatalf("abort did not restore the stuck site:\n got %s\nwant %s", got, want)
	}
	v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryState)
	if err != nil {
		t.Fatal(err)
	}
	_ = v.Get(&st)
	t.Logf("stuck site after abort: %s; compensation %q", st.State, st.Compensation)
	if st.State != workflows.StateAborted {
		t.Errorf("state %s", st.State)
	}
}
