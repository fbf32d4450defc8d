package workflows_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/certs"
	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/graph"
	"github.com/hybridflow/hybridflow/internal/logging"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/workflows"
)

// gatedClients hands the setup's Entra activities their own Graph client
// for the simulator, whose first PATCH of an application (the keys)
// is held (after the activity has read the collection and built the body)
// until the renewal's key upload has completed, or until `hold` passes.
// That is the interleaving in which two read-then-PATCH writers lose an
// update: both read, the renewal writes, the setup writes what it read.
type gatedClients struct {
	h    *renewHarness
	once sync.Once
	mu   sync.Mutex
	c    *graph.Client
	// patching is closed when the setup's key PATCH reaches the gate;
	// uploaded when the renewal's upload has returned.
	patching, uploaded chan struct{}
	hold               time.Duration
}

func (g *gatedClients) Graph(t activities.Target) (*graph.Client, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.c != nil {
		return g.c, nil
	}
	p, err := cloud.Lookup(t.Cloud)
	if err != nil {
		return nil, err
	}
	srv := g.h.be.Sim.Servers
	c, err := graph.New(graph.Options{Cloud: p, TenantID: t.TenantID, Credential: sim.StaticCredential(t.TenantID), BaseURL: srv.GraphURL(),
		HTTPClient: &http.Client{Transport: gate{g, srv.Transport()}, Timeout: time.Minute}})
	g.c = c
	return c, err
}

type gate struct {
	g    *gatedClients
	base http.RoundTripper
}

func (t gate) RoundTrip(req *http.Request) (*http.Response, error) {
	// The tenant is set up, so the setup's only application PATCH is the
	// keys step's (the body is compressed on the wire: judged by the path).
	if req.Method == http.MethodPatch && strings.Contains(req.URL.Path, "/applications/") {
		first := false
		t.g.once.Do(func() { first = true; close(t.g.patching) })
		if first {
			select {
			case <-t.g.uploaded:
				t.g.h.t.Log("setup: key PATCH sent after the renewal's upload")
			case <-time.After(t.g.hold):
				t.g.h.t.Log("setup: key PATCH sent, no upload by the renewal meanwhile")
			}
		}
	}
	return t.base.RoundTrip(req)
}

// raceOut is what both runs ended with.
type raceOut struct {
	Setup      workflows.SetupResult
	SetupErr   string
	Renewal    workflows.RenewalResult
	RenewalErr string
}

// setupAndRenewal starts a tenant's setup and renewal at once, under
// their production workflow IDs, and waits for both.
func setupAndRenewal(ctx workflow.Context, s workflows.SetupInput, r workflows.RenewalInput) (raceOut, error) {
	var out raceOut
	fs := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: workflows.SetupWorkflowID(s.Tenant.ID)}), workflows.Setup, s)
	fr := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: workflows.RenewalWorkflowID(r.Tenant.ID)}), workflows.Renewal, r)
	if err := fs.Get(ctx, &out.Setup); err != nil {
		out.SetupErr = err.Error()
	}
	if err := fr.Get(ctx, &out.Renewal); err != nil {
		out.RenewalErr = err.Error()
	}
	return out, nil
}

// TestSetupAndRenewalOfOneTenantLoseNoKey runs a setup and a renewal of
// the same tenant at the same time. Both write the dedicated
// application's keyCredentials (the setup the current certificate's key,
// the renewal the current and the staged one), each by reading the
// collection and PATCHing it whole. The setup's PATCH is held between its
// read and its write until the renewal's upload is done: without mutual
// exclusion the setup then writes back what it read and the staged key is
// gone, and the renewal publishes a certificate Entra does not know. With
// the tenant's write lock one of them waits for the other, and the key
// published is on the application at the end.
func TestSetupAndRenewalOfOneTenantLoseNoKey(t *testing.T) {
	h := newRenewHarness(t)
	h.replaceCurrent(0, renewBase.AddDate(0, 0, 45))
	h.setUp(0, renewBase)
	// A new current certificate (someone ran New-ExchangeCertificate and
	// Set-AuthConfig): the setup wants its key on the application, and it
	// is within the renewal window, so the renewal stages a successor.
	cur := h.replaceCurrent(0, renewBase.AddDate(0, 0, 50))

	var s testsuite.WorkflowTestSuite
	s.SetLogger(logging.NewTemporal(zap.NewNop()))
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(renewBase)
	env.SetWorkerOptions(worker.Options{DeadlockDetectionTimeout: 30 * time.Second})
	h.world.SetClock(env.Now)
	g := &gatedClients{h: h, patching: make(chan struct{}), uploaded: make(chan struct{}), hold: 5 * time.Second}
	env.RegisterWorkflow(setupAndRenewal)
	env.RegisterWorkflow(workflows.Setup)
	env.RegisterWorkflow(workflows.Renewal)
	env.RegisterWorkflow(workflows.TenantLock)
	env.RegisterActivity(&activities.OnPrem{Hosts: h.be})
	env.RegisterActivity(&activities.Online{Clients: h.be})
	env.RegisterActivity(&activities.Entra{Clients: g, Now: env.Now})
	ren := &activities.Renewal{Hosts: h.be, Clients: h.be, Now: env.Now}
	env.RegisterActivity(ren)
	env.RegisterActivityWithOptions(activities.PlanSetup, activity.RegisterOptions{Name: "PlanSetup"})
	// The renewal starts reading once the setup has read the keys and is
	// about to PATCH them (or after a while, when the setup cannot get
	// there because the renewal holds the tenant).
	var readOnce, upOnce sync.Once
	env.OnActivity("ReadAuthCertificate", mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.Target) (activities.AuthCertificateState, error) {
			readOnce.Do(func() {
				select {
				case <-g.patching:
					t.Log("renewal: reading after the setup's key PATCH reached the gate")
				case <-time.After(8 * time.Second):
					t.Log("renewal: reading without the setup at its key PATCH")
				}
			})
			return ren.ReadAuthCertificate(ctx, in)
		})
	env.OnActivity("UploadAuthCertificateKeys", mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.UploadAuthKeysInput) (activities.AuthKeysResult, error) {
			r, err := ren.UploadAuthCertificateKeys(ctx, in)
			upOnce.Do(func() { t.Log("renewal: keys uploaded"); close(g.uploaded) })
			return r, err
		})
	env.SetTestTimeout(3 * time.Minute)

	retry := workflows.RetryOptions{InitialInterval: 10 * time.Millisecond, MaximumInterval: 50 * time.Millisecond, MaximumAttempts: 3}
	sin := workflows.InputFromTenant(h.tenant(0), workflows.SetupOptions{FailurePolicy: workflows.PolicyFail, Retry: retry})
	rin := h.input(0, workflows.RenewalOptions{FailurePolicy: workflows.PolicyFail})
	env.ExecuteWorkflow(setupAndRenewal, sin, rin)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var out raceOut
	if err := env.GetWorkflowResult(&out); err != nil {
		t.Fatal(err)
	}
	for _, st := range out.Renewal.Steps {
		t.Logf("renewal %-20s %-9s %-9s %s", st.Step, st.Status, st.Outcome, st.Detail)
	}
	after := h.snap(0)
	t.Logf("setup: %s %s; renewal: %s %s; current %s (was %s), keys %v", out.Setup.State, out.SetupErr, out.Renewal.State, out.RenewalErr, after.current, cur, after.keys)
	if certs.SameThumbprint(after.current, cur) {
		t.Fatalf("the renewal did not publish a successor of %s (renewal %s: %s)", cur, out.Renewal.State, out.RenewalErr)
	}
	if !after.hasKey(after.current) {
		t.Fatalf("LOST UPDATE: certificate %s is published but its key is not on the application (keys %v): the setup wrote back the collection it had read before the renewal's upload", after.current, after.keys)
	}
	if out.SetupErr != "" || out.Setup.State != workflows.StateVerified {
		t.Fatalf("setup %s: %s", out.Setup.State, out.SetupErr)
	}
	if out.RenewalErr != "" || out.Renewal.State != workflows.StateRenewed {
		t.Fatalf("renewal %s: %s", out.Renewal.State, out.RenewalErr)
	}
}

// TestRenewalRefusesToPublishAStagedKeyThatDisappeared removes the staged
// certificate's key from the application while the renewal waits for the
// effective date. The renewal must not publish: it stops at
// check-staged-key naming the key; the operator's retry uploads it again
// and the renewal completes with the key in place.
func TestRenewalRefusesToPublishAStagedKeyThatDisappeared(t *testing.T) {
	h := newRenewHarness(t)
	old := h.replaceCurrent(0, renewBase.AddDate(0, 0, 45))
	h.setUp(0, renewBase)

	env := h.newEnv(renewBase)
	var staged string
	dropStaged := func() {
		staged = h.snap(0).next
		h.world.Update(h.tenant(0).ID, func(t *sim.Tenant) {
			for _, a := range t.Entra.Applications {
				if !strings.HasPrefix(a.DisplayName, "ExchangeServerApp-") {
					continue
				}
				keep := a.KeyCredentials[:0]
				for _, k := range a.KeyCredentials {
					if len(k.Key) > 0 && certs.SameThumbprint(certs.Thumbprint(k.Key), staged) {
						continue
					}
					keep = append(keep, k)
				}
				a.KeyCredentials = keep
			}
		})
	}
	env.RegisterDelayedCallback(dropStaged, 10*24*time.Hour)
	paused := h.pauseFixRetry(env, 40*24*time.Hour, func() {})
	res, err := runRenewal(t, env, h.input(0, workflows.RenewalOptions{}))
	for _, st := range res.Steps {
		t.Logf("%-20s %-9s %-9s %s", st.Step, st.Status, st.Outcome, st.Detail)
	}
	if staged == "" {
		t.Fatal("nothing was staged when the key was removed")
	}
	if paused.Paused == nil || paused.Paused.Step != workflows.RenewStepCheckKey || paused.Paused.ErrorType != workflows.ErrStagedKeyMissing {
		t.Fatalf("want a pause at %s (%s) before publishing; the state at day 40: %s %s, paused %+v, current %+v",
			workflows.RenewStepCheckKey, workflows.ErrStagedKeyMissing, paused.State, paused.CurrentStep, paused.Paused, paused.Current)
	}
	if paused.Current == nil || !certs.SameThumbprint(paused.Current.Thumbprint, old) {
		t.Fatalf("while paused, the current certificate must still be %s: %+v", old, paused.Current)
	}
	if !strings.Contains(paused.Paused.Error, strings.ToUpper(staged)) {
		t.Fatalf("the pause must name the staged certificate %s: %s", staged, paused.Paused.Error)
	}
	if err != nil {
		t.Fatalf("renewal after the retry: %v", err)
	}
	after := h.snap(0)
	if !certs.SameThumbprint(after.current, staged) || !after.hasKey(staged) || res.State != workflows.StateRenewed {
		t.Fatalf("after the retry: state %s, current %s (want %s), keys %v", res.State, after.current, staged, after.keys)
	}
}
