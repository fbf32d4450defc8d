package workflows_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/certs"
	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/logging"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/workflows"
)

// The renewal tests run against small.yaml's tenants, set up first by the
// real Setup workflow, with the world's clock tied to the test
// environment's (World.SetClock(env.Now)): the environment skips time on
// durable timers, and certificate expiry, key validity and the effective
// date are all judged on that one skipped clock. That is safe across
// goroutines: the cmdlet engine reads the clock under the world's lock,
// env.Now reads the environment's mock clock under its own mutex, and the
// clock is swapped only between runs, when no activity is in flight.

// renewBase is "today" in these tests; certificates are made relative to it.
var renewBase = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

type renewHarness struct {
	t     *testing.T
	world *sim.World
	be    *backend.Backend
	inv   *config.Inventory
}

func newRenewHarness(t *testing.T) *renewHarness {
	t.Helper()
	w, err := sim.Load(filepath.Join("..", "configs", "sim", "small.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	be, err := backend.NewSimulated(ctx, w, zap.NewNop(), backend.SimOptions{DirectShell: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(be.Close)
	return &renewHarness{t: t, world: w, be: be, inv: w.Inventory()}
}

func (h *renewHarness) tenant(i int) config.Tenant { return h.inv.Tenants[i] }

// replaceCurrent gives tenant i a new current auth certificate valid until
// notAfter (the world's certificates all run to 2029).
func (h *renewHarness) replaceCurrent(i int, notAfter time.Time) string {
	c := sim.NewCertificate(sim.AuthCertificateSubject, 900+int64(i), notAfter.AddDate(-5, 0, 0), notAfter)
	h.world.Update(h.tenant(i).ID, func(t *sim.Tenant) {
		t.OnPrem.Certificates = []*sim.ExchangeCertificate{c}
		t.OnPrem.AuthConfig = sim.AuthConfig{CurrentCertificateThumbprint: c.Thumbprint}
	})
	return c.Thumbprint
}

// newEnv is a test environment starting at `at`, with the world's clock
// following it.
func (h *renewHarness) newEnv(at time.Time) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(logging.NewTemporal(zap.NewNop()))
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(at)
	// The default 1 s deadlock detector misfires when the machine is busy
	// (go test runs packages in parallel, the integration tests link a CLI).
	env.SetWorkerOptions(worker.Options{DeadlockDetectionTimeout: 30 * time.Second})
	h.world.SetClock(env.Now)
	env.RegisterWorkflow(workflows.Setup)
	env.RegisterWorkflow(workflows.Renewal)
	env.RegisterWorkflow(workflows.TenantLock)
	env.RegisterActivity(&activities.OnPrem{Hosts: h.be})
	env.RegisterActivity(&activities.Online{Clients: h.be})
	env.RegisterActivity(&activities.Entra{Clients: h.be, Now: env.Now})
	env.RegisterActivity(&activities.Renewal{Hosts: h.be, Clients: h.be, Now: env.Now})
	env.RegisterActivityWithOptions(activities.PlanSetup, activity.RegisterOptions{Name: "PlanSetup"})
	env.SetTestTimeout(time.Minute)
	return env
}

// setUp runs the real Setup workflow for tenant i at `at`.
func (h *renewHarness) setUp(i int, at time.Time) {
	h.t.Helper()
	env := h.newEnv(at)
	in := workflows.InputFromTenant(h.tenant(i), workflows.SetupOptions{FailurePolicy: workflows.PolicyFail,
		Retry: workflows.RetryOptions{InitialInterval: 10 * time.Millisecond, MaximumInterval: 50 * time.Millisecond, MaximumAttempts: 3}})
	env.ExecuteWorkflow(workflows.Setup, in)
	if err := env.GetWorkflowError(); err != nil {
		h.t.Fatalf("setup of %s: %v", h.tenant(i).ID, err)
	}
}

func (h *renewHarness) input(i int, o workflows.RenewalOptions) workflows.RenewalInput {
	if o.Retry.InitialInterval == 0 {
		o.Retry = workflows.RetryOptions{InitialInterval: 10 * time.Millisecond, MaximumInterval: 50 * time.Millisecond, MaximumAttempts: 3}
	}
	if o.VerifyInterval == 0 {
		o.VerifyInterval = time.Second
	}
	return workflows.RenewalInputFromTenant(h.tenant(i), "", o)
}

func runRenewal(t *testing.T, env *testsuite.TestWorkflowEnvironment, in workflows.RenewalInput) (workflows.RenewalResult, error) {
	t.Helper()
	env.ExecuteWorkflow(workflows.Renewal, in)
	if !env.IsWorkflowCompleted() {
		t.Fatal("renewal did not complete")
	}
	var res workflows.RenewalResult
	err := env.GetWorkflowError()
	if err == nil {
		if gerr := env.GetWorkflowResult(&res); gerr != nil {
			t.Fatal(gerr)
		}
	}
	return res, err
}

// renewSnap is the part of a tenant the renewal changes.
type renewSnap struct {
	current, next, previous string
	effective               time.Time
	authCerts               []string // auth certificates in the store
	keys                    []string // key thumbprints on the dedicated app (or first-party SP)
}

func (s renewSnap) hasKey(tp string) bool {
	return slices.ContainsFunc(s.keys, func(k string) bool { return certs.SameThumbprint(k, tp) })
}

func (h *renewHarness) snap(i int) renewSnap {
	var s renewSnap
	h.world.View(h.tenant(i).ID, func(t *sim.Tenant) {
		ac := t.OnPrem.AuthConfig
		s.current, s.next, s.previous = ac.CurrentCertificateThumbprint, ac.NextCertificateThumbprint, ac.PreviousCertificateThumbprint
		if ac.NextCertificateEffectiveDate != nil {
			s.effective = *ac.NextCertificateEffectiveDate
		}
		for _, c := range t.OnPrem.Certificates {
			if strings.Contains(c.Subject, sim.AuthCertificateSubject) {
				s.authCerts = append(s.authCerts, c.Thumbprint)
			}
		}
		var keys []sim.KeyCredential
		dedicated := false
		for _, a := range t.OnPrem.AuthServers {
			dedicated = dedicated || (strings.EqualFold(a.Type, "AzureAD") && a.ApplicationIdentifier != "")
		}
		if dedicated {
			for _, a := range t.Entra.Applications {
				if strings.HasPrefix(a.DisplayName, "ExchangeServerApp-") {
					keys = a.KeyCredentials
				}
			}
		} else {
			for _, sp := range t.Entra.ServicePrincipals {
				if strings.EqualFold(sp.AppID, cloud.FirstPartyAppID) {
					keys = sp.KeyCredentials
				}
			}
		}
		for _, k := range keys {
			tp := k.CustomKeyIdentifier
			if len(k.Key) > 0 {
				tp = certs.Thumbprint(k.Key)
			}
			s.keys = append(s.keys, tp)
		}
	})
	return s
}

// oauth runs Test-OAuthConnectivity both ways at `at`, through the same
// activities the workflows use.
func (h *renewHarness) oauth(i int, at time.Time) (bool, bool, string) {
	h.t.Helper()
	h.world.SetClock(func() time.Time { return at })
	ten := h.tenant(i)
	var ews, onMbx, clMbx string
	h.world.View(ten.ID, func(t *sim.Tenant) {
		for _, vd := range t.OnPrem.VirtualDirectories {
			if vd.Kind == "WebServices" && vd.ExternalURL != "" && ews == "" {
				ews = "https://" + cloud.HostOfURL(vd.ExternalURL) + "/metadata/json/1"
			}
		}
		onMbx, clMbx = t.OnPrem.Mailboxes[0], t.Online.Mailboxes[0]
	})
	tgt := workflows.InputFromTenant(ten, workflows.SetupOptions{}).Target
	ctx := context.Background()
	on, err := (&activities.OnPrem{Hosts: h.be}).VerifyFromOnPrem(ctx, activities.VerifyInput{Target: tgt, TargetURI: cloud.MustLookup(ten.Cloud).EWSURL(), Mailbox: onMbx})
	if err != nil {
		h.t.Fatal(err)
	}
	cl, err := (&activities.Online{Clients: h.be}).VerifyFromOnline(ctx, activities.VerifyInput{Target: tgt, TargetURI: ews, Mailbox: clMbx})
	if err != nil {
		h.t.Fatal(err)
	}
	return on.Success, cl.Success, on.Detail + " | " + cl.Detail
}

// converged asserts the end state of every renewal: a new current
// certificate, nothing staged or previous, exactly one key per certificate
// and only the current one's, exactly one successor in the store, and a
// configuration that works both ways.
func (h *renewHarness) converged(i int, old string, at time.Time) renewSnap {
	h.t.Helper()
	s := h.snap(i)
	if certs.SameThumbprint(s.current, old) || s.current == "" || s.next != "" || s.previous != "" {
		h.t.Fatalf("auth config not converged: current %s (old %s), next %q, previous %q", s.current, old, s.next, s.previous)
	}
	if len(s.authCerts) != 2 {
		h.t.Fatalf("store has %d auth certificates %v, want 2 (the old one and exactly one successor)", len(s.authCerts), s.authCerts)
	}
	counts := map[string]int{}
	for _, k := range s.keys {
		counts[strings.ToUpper(k)]++
	}
	for tp, n := range counts {
		if n != 1 {
			h.t.Errorf("certificate %s has %d keys in Entra, want exactly 1", tp, n)
		}
	}
	if !s.hasKey(s.current) || s.hasKey(old) {
		h.t.Fatalf("Entra keys %v: want the current %s and not the old %s", s.keys, s.current, old)
	}
	if on, cl, d := h.oauth(i, at); !on || !cl {
		h.t.Fatalf("Test-OAuthConnectivity after the renewal: on-prem→cloud %v, cloud→on-prem %v: %s", on, cl, d)
	}
	return s
}

func TestRenewalFarFromExpiryDoesNothing(t *testing.T) {
	h := newRenewHarness(t)
	h.setUp(0, renewBase)
	before := h.world.Stats().ByTenant[h.tenant(0).ID].Writes
	res, err := runRenewal(t, h.newEnv(renewBase), h.input(0, workflows.RenewalOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	after := h.world.Stats().ByTenant[h.tenant(0).ID].Writes
	t.Logf("%s: %s (%d days left)", res.State, res.Reason, res.DaysLeft)
	if res.State != workflows.StateRenewalNotDue || res.Action != workflows.RenewalActionNone || res.Writes != 0 || after != before {
		t.Fatalf("state %s action %s writes %d/%d", res.State, res.Action, res.Writes, after-before)
	}
	// 2029-11-01 is 1066 days after 2026-12-01.
	if res.DaysLeft != 1066 || !strings.Contains(res.Reason, "1066 day(s) left") || res.Mode != "dedicated-app" || !res.Current.InEntra {
		t.Fatalf("days left %d, reason %q, mode %s, current %+v", res.DaysLeft, res.Reason, res.Mode, res.Current)
	}
}

// renewEvent is one activity of a run and the world right after it.
type renewEvent struct {
	activity string
	at       time.Time
	snap     renewSnap
}

// record collects every activity's completion with a world snapshot.
func (h *renewHarness) record(env *testsuite.TestWorkflowEnvironment, i int) func() []renewEvent {
	var mu sync.Mutex
	var evs []renewEvent
	env.SetOnActivityCompletedListener(func(info *activity.Info, _ converter.EncodedValue, err error) {
		if err != nil {
			return
		}
		s := h.snap(i)
		mu.Lock()
		defer mu.Unlock()
		evs = append(evs, renewEvent{activity: info.ActivityType.Name, at: env.Now(), snap: s})
	})
	return func() []renewEvent {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(evs)
	}
}

func eventIndex(evs []renewEvent, name string) int {
	return slices.IndexFunc(evs, func(e renewEvent) bool { return e.activity == name })
}

func TestRenewalInsideWindowStagesUploadsWaitsPublishesAndCleansUp(t *testing.T) {
	h := newRenewHarness(t)
	expiry := renewBase.AddDate(0, 0, 45)
	old := h.replaceCurrent(0, expiry)
	h.setUp(0, renewBase)

	env := h.newEnv(renewBase)
	events := h.record(env, 0)
	var waiting workflows.RenewalState
	env.RegisterDelayedCallback(func() {
		if v, err := env.QueryWorkflow(workflows.QueryState); err == nil {
			_ = v.Get(&waiting)
		}
	}, 10*24*time.Hour)
	res, err := runRenewal(t, env, h.input(0, workflows.RenewalOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Steps {
		t.Logf("%-20s %-9s %-9s %s", s.Step, s.Status, s.Outcome, s.Detail)
	}
	if res.State != workflows.StateRenewed || res.Action != workflows.RenewalActionRenew || res.Emergency {
		t.Fatalf("state %s action %s emergency %v: %s", res.State, res.Action, res.Emergency, res.Reason)
	}
	if waiting.State != workflows.StateRenewalWaiting || waiting.CurrentStep != workflows.RenewStepWait || waiting.Next == nil || waiting.Next.Effective == nil || !waiting.Next.InEntra {
		t.Fatalf("state query while waiting: %s %s next %+v", waiting.State, waiting.CurrentStep, waiting.Next)
	}
	evs := events()
	var order []string
	for _, e := range evs {
		order = append(order, e.activity)
	}
	t.Logf("activities: %s", strings.Join(order, " → "))

	// Stage, upload next to the current key, wait, publish, clear, remove.
	iCreate, iStage, iUpload := eventIndex(evs, "CreateAuthCertificate"), eventIndex(evs, "StageAuthCertificate"), eventIndex(evs, "UploadAuthCertificateKeys")
	iPublish, iClear, iRemove := eventIndex(evs, "PublishAuthCertificate"), eventIndex(evs, "ClearPreviousAuthCertificate"), eventIndex(evs, "RemoveRetiredAuthKeys")
	if !(iCreate >= 0 && iCreate < iStage && iStage < iUpload && iUpload < iPublish && iPublish < iClear && iClear < iRemove) {
		t.Fatalf("activity order %v", order)
	}
	staged := evs[iStage].snap
	wantEffective := renewBase.Add(workflows.DefaultRenewalLeadTime)
	if !staged.effective.Equal(wantEffective) || staged.next == "" {
		t.Fatalf("staged %q effective %s, want %s", staged.next, staged.effective, wantEffective)
	}
	if up := evs[iUpload].snap; !up.hasKey(old) || !up.hasKey(staged.next) || len(up.keys) != 2 {
		t.Fatalf("after upload the app holds %v, want the current %s and the next %s side by side", up.keys, old, staged.next)
	}
	if at := evs[iPublish].at; at.Before(wantEffective) {
		t.Fatalf("published at %s, before the effective date %s", at, wantEffective)
	}
	// The old key stays until the previous certificate is cleared.
	for _, e := range evs[:iClear] {
		if !e.snap.hasKey(old) {
			t.Fatalf("old key gone after %s, before the previous certificate was cleared", e.activity)
		}
	}
	if p := evs[iPublish].snap; !certs.SameThumbprint(p.previous, old) {
		t.Fatalf("after publish previous = %q, want %s", p.previous, old)
	}
	if c := evs[iClear].snap; c.previous != "" || !c.hasKey(old) {
		t.Fatalf("after clear: previous %q, old key present %v", c.previous, c.hasKey(old))
	}
	if r := evs[iRemove].snap; r.hasKey(old) {
		t.Fatalf("old key still there after RemoveRetiredAuthKeys: %v", r.keys)
	}
	if v := eventIndex(evs[iRemove:], "VerifyFromOnPrem"); v < 0 {
		t.Fatalf("no verification after the key removal: %v", order)
	}
	s := h.converged(0, old, env.Now())
	if res.Current == nil || !certs.SameThumbprint(res.Current.Thumbprint, s.current) || res.Previous != nil || len(res.EntraKeys) != 1 {
		t.Fatalf("result: current %+v previous %+v keys %v", res.Current, res.Previous, res.EntraKeys)
	}

	// A second run right after: far from expiry again, nothing to do.
	res2, err := runRenewal(t, h.newEnv(env.Now()), h.input(0, workflows.RenewalOptions{}))
	if err != nil || res2.Action != workflows.RenewalActionNone || res2.Writes != 0 {
		t.Fatalf("second run: %v action %s writes %d", err, res2.Action, res2.Writes)
	}
}

func TestRenewalEmergencyRestoresExpiredCertificate(t *testing.T) {
	h := newRenewHarness(t)
	expiry := renewBase.AddDate(0, 0, 10)
	old := h.replaceCurrent(0, expiry)
	h.setUp(0, renewBase)
	at := expiry.Add(36 * time.Hour) // expired a day and a half ago
	if on, cl, d := h.oauth(0, at); on || cl || !strings.Contains(d, sim.OAuthReasonAuthCertificateExpired) {
		t.Fatalf("before: Test-OAuthConnectivity should fail with an expired certificate: %v %v %s", on, cl, d)
	}

	env := h.newEnv(at)
	var mu sync.Mutex
	var states, steps []string
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		sa := args.Get(0).(temporal.SearchAttributes)
		mu.Lock()
		defer mu.Unlock()
		if v, ok := sa.GetKeyword(workflows.SAState); ok {
			states = append(states, v)
		}
		if v, ok := sa.GetKeyword(workflows.SAStep); ok {
			steps = append(steps, v)
		}
	}).Return()
	res, err := runRenewal(t, env, h.input(0, workflows.RenewalOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Steps {
		t.Logf("%-20s %-10s %-9s %s", s.Step, s.Status, s.Outcome, s.Detail)
	}
	t.Logf("HybridflowState: %v; HybridflowStep: %v", states, steps)
	if !res.Emergency || res.Action != workflows.RenewalActionEmergency || res.State != workflows.StateRenewed || !strings.Contains(res.Reason, "expired") {
		t.Fatalf("emergency %v action %s state %s: %s", res.Emergency, res.Action, res.State, res.Reason)
	}
	if !slices.Contains(states, workflows.StateRenewalEmergency) || !slices.Contains(steps, workflows.RenewalEmergencyStepPrefix+workflows.RenewStepPublish) {
		t.Fatalf("search attributes do not mark the emergency: states %v steps %v", states, steps)
	}
	if st := stepOf(res, workflows.RenewStepWait); st.Status != workflows.StatusNotNeeded {
		t.Fatalf("the emergency path waited: %+v", st)
	}
	if env.Now().Sub(at) > time.Hour {
		t.Fatalf("emergency renewal took %s of workflow time", env.Now().Sub(at))
	}
	h.converged(0, old, env.Now())
}

func stepOf(res workflows.RenewalResult, name string) workflows.StepState {
	for _, s := range res.Steps {
		if s.Step == name {
			return *s
		}
	}
	return workflows.StepState{}
}

func TestRenewalReportOnlyReadsAndWritesNothing(t *testing.T) {
	h := newRenewHarness(t)
	h.replaceCurrent(0, renewBase.AddDate(0, 0, 20))
	h.setUp(0, renewBase)
	before := h.world.Stats().ByTenant[h.tenant(0).ID].Writes
	res, err := runRenewal(t, h.newEnv(renewBase), h.input(0, workflows.RenewalOptions{ReportOnly: true}))
	if err != nil {
		t.Fatal(err)
	}
	if after := h.world.Stats().ByTenant[h.tenant(0).ID].Writes; after != before || res.Writes != 0 {
		t.Fatalf("report wrote %d times", after-before)
	}
	if res.State != workflows.StateRenewalReported || res.DaysLeft != 20 || res.Current == nil || !res.Current.InEntra || res.Next != nil {
		t.Fatalf("report: %+v current %+v", res, res.Current)
	}
}

// renewFault is one interruption point: the activity whose write completes
// and whose result is then lost (the worker dies), or a wait cut short.
type renewFault struct {
	name     string
	activity string
	call     int // which call of the activity (1-based)
}

// failAfter mocks activity so that its k-th call runs the real activity
// (its write happens) and then reports a non-retryable failure, as if the
// worker died before reporting: with policy fail the run stops there.
func (h *renewHarness) failAfter(env *testsuite.TestWorkflowEnvironment, f renewFault) {
	ren := &activities.Renewal{Hosts: h.be, Clients: h.be, Now: env.Now}
	onp, onl := &activities.OnPrem{Hosts: h.be}, &activities.Online{Clients: h.be}
	var mu sync.Mutex
	n := 0
	hit := func() bool {
		mu.Lock()
		defer mu.Unlock()
		n++
		return n == f.call
	}
	lost := func(err error) error {
		if err != nil {
			return err
		}
		return temporal.NewNonRetryableApplicationError("simulated crash after "+f.activity, "SimulatedCrash", nil)
	}
	var fn any
	switch f.activity {
	case "ReadAuthCertificate":
		fn = func(ctx context.Context, in activities.Target) (activities.AuthCertificateState, error) {
			r, err := ren.ReadAuthCertificate(ctx, in)
			if hit() {
				return r, lost(err)
			}
			return r, err
		}
	case "CreateAuthCertificate":
		fn = func(ctx context.Context, in activities.CreateAuthCertificateInput) (activities.AuthCertificateResult, error) {
			r, err := ren.CreateAuthCertificate(ctx, in)
			if hit() {
				return r, lost(err)
			}
			return r, err
		}
	case "StageAuthCertificate":
		fn = func(ctx context.Context, in activities.StageAuthCertificateInput) (activities.AuthCertificateResult, error) {
			r, err := ren.StageAuthCertificate(ctx, in)
			if hit() {
				return r, lost(err)
			}
			return r, err
		}
	case "UploadAuthCertificateKeys":
		fn = func(ctx context.Context, in activities.UploadAuthKeysInput) (activities.AuthKeysResult, error) {
			r, err := ren.UploadAuthCertificateKeys(ctx, in)
			if hit() {
				return r, lost(err)
			}
			return r, err
		}
	case "CheckAuthCertificateOnServers":
		fn = func(ctx context.Context, in activities.ServerCertificateInput) (activities.ServerCertificateResult, error) {
			r, err := ren.CheckAuthCertificateOnServers(ctx, in)
			if hit() {
				return r, lost(err)
			}
			return r, err
		}
	case "PublishAuthCertificate", "ClearPreviousAuthCertificate":
		real := ren.PublishAuthCertificate
		if f.activity == "ClearPreviousAuthCertificate" {
			real = ren.ClearPreviousAuthCertificate
		}
		fn = func(ctx context.Context, in activities.AuthCertificateInput) (activities.AuthCertificateResult, error) {
			r, err := real(ctx, in)
			if hit() {
				return r, lost(err)
			}
			return r, err
		}
	case "RemoveRetiredAuthKeys":
		fn = func(ctx context.Context, in activities.RemoveRetiredAuthKeysInput) (activities.AuthKeysResult, error) {
			r, err := ren.RemoveRetiredAuthKeys(ctx, in)
			if hit() {
				return r, lost(err)
			}
			return r, err
		}
	case "VerifyFromOnPrem":
		fn = func(ctx context.Context, in activities.VerifyInput) (activities.VerifyResult, error) {
			r, err := onp.VerifyFromOnPrem(ctx, in)
			if hit() {
				return r, lost(err)
			}
			return r, err
		}
	case "VerifyFromOnline":
		fn = func(ctx context.Context, in activities.VerifyInput) (activities.VerifyResult, error) {
			r, err := onl.VerifyFromOnline(ctx, in)
			if hit() {
				return r, lost(err)
			}
			return r, err
		}
	default:
		h.t.Fatalf("no fault for %s", f.activity)
	}
	env.OnActivity(f.activity, mock.Anything, mock.Anything).Return(fn)
}

// TestRenewalResumesAfterInterruptionAtEveryStep stops a renewal right
// after each step's write (the activity did its work, the result is lost,
// policy fail ends the run), or during the wait for the effective date,
// then runs a fresh Renewal: it must converge, with exactly one successor
// certificate and exactly one key per certificate.
func TestRenewalResumesAfterInterruptionAtEveryStep(t *testing.T) {
	cases := []renewFault{
		{name: "read", activity: "ReadAuthCertificate", call: 1},
		{name: "create", activity: "CreateAuthCertificate", call: 1},
		{name: "stage", activity: "StageAuthCertificate", call: 1},
		{name: "upload", activity: "UploadAuthCertificateKeys", call: 1},
		{name: "wait"}, // cancelled while waiting for the effective date
		{name: "check-servers", activity: "CheckAuthCertificateOnServers", call: 1},
		{name: "publish", activity: "PublishAuthCertificate", call: 1},
		{name: "verify", activity: "VerifyFromOnline", call: 1},
		{name: "clear-previous", activity: "ClearPreviousAuthCertificate", call: 1},
		{name: "remove-retired-key", activity: "RemoveRetiredAuthKeys", call: 1},
		{name: "verify-final", activity: "VerifyFromOnPrem", call: 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newRenewHarness(t)
			old := h.replaceCurrent(0, renewBase.AddDate(0, 0, 45))
			h.setUp(0, renewBase)

			env := h.newEnv(renewBase)
			opts := workflows.RenewalOptions{FailurePolicy: workflows.PolicyFail}
			if c.activity != "" {
				h.failAfter(env, c)
			} else {
				env.RegisterDelayedCallback(env.CancelWorkflow, 10*24*time.Hour)
			}
			res, err := runRenewal(t, env, h.input(0, opts))
			if err == nil {
				t.Fatalf("the first run was not interrupted: %s %s", res.State, res.Action)
			}
			if c.activity == "" && !temporal.IsCanceledError(err) {
				t.Fatalf("want a cancellation, got %v", err)
			}
			if c.activity != "" && !strings.Contains(err.Error(), "simulated crash") {
				t.Fatalf("interrupted by something else: %v", err)
			}
			mid := h.snap(0)
			stopped := env.Now()

			env2 := h.newEnv(stopped)
			res2, err := runRenewal(t, env2, h.input(0, workflows.RenewalOptions{FailurePolicy: workflows.PolicyFail}))
			if err != nil {
				t.Fatalf("resumed run: %v", err)
			}
			t.Logf("interrupted at %s (current %.8s next %.8s previous %.8s, %d key(s)); resumed as %q: %s",
				c.name, mid.current, mid.next, mid.previous, len(mid.keys), res2.Action, res2.Reason)
			s := h.converged(0, old, env2.Now())
			// A staged successor is carried through with the date chosen first.
			if mid.next != "" && !certs.SameThumbprint(s.current, mid.next) {
				t.Fatalf("staged %s but %s became current", mid.next, s.current)
			}
			if mid.next != "" && env2.Now().Before(renewBase.Add(workflows.DefaultRenewalLeadTime)) {
				t.Fatalf("resumed run published before the first run's effective date")
			}
		})
	}
}

// TestRenewalReusesEmergencyCertificateAfterCrash: the emergency path
// stopped right after New-ExchangeCertificate; the next run reuses it.
func TestRenewalReusesEmergencyCertificateAfterCrash(t *testing.T) {
	h := newRenewHarness(t)
	expiry := renewBase.AddDate(0, 0, 10)
	old := h.replaceCurrent(0, expiry)
	h.setUp(0, renewBase)
	at := expiry.Add(time.Hour)
	env := h.newEnv(at)
	h.failAfter(env, renewFault{activity: "CreateAuthCertificate", call: 1})
	if _, err := runRenewal(t, env, h.input(0, workflows.RenewalOptions{FailurePolicy: workflows.PolicyFail})); err == nil {
		t.Fatal("not interrupted")
	}
	env2 := h.newEnv(env.Now())
	res, err := runRenewal(t, env2, h.input(0, workflows.RenewalOptions{FailurePolicy: workflows.PolicyFail}))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Emergency || !strings.Contains(stepOf(res, workflows.RenewStepCreate).Detail, "reusing") {
		t.Fatalf("emergency %v, create step %+v", res.Emergency, stepOf(res, workflows.RenewStepCreate))
	}
	h.converged(0, old, env2.Now())
}

// TestRenewalLegacyFirstPartyKeepsForeignKeys renews a legacy tenant: the
// first-party path only works where Exchange Online still accepts it, so
// the tenant is small 3 (GCC High) with every Mailbox server below the
// April 2025 hotfix (shared/reference/hybrid-facts.md (b) "Minimum
// builds") and a partner's key on the first-party service principal. The
// auth keys rotate on the principal; the foreign key stays.
func TestRenewalLegacyFirstPartyKeepsForeignKeys(t *testing.T) {
	h := newRenewHarness(t)
	foreignCert := sim.NewCertificate("CN=Fabrikam Partner Signing", 7001, renewBase.AddDate(-1, 0, 0), renewBase.AddDate(3, 0, 0))
	foreign := foreignCert.Thumbprint
	h.world.Update(h.tenant(2).ID, func(t *sim.Tenant) {
		for i := range t.OnPrem.Servers {
			t.OnPrem.Servers[i].Version = sim.GenOldBuild
		}
		for _, sp := range t.Entra.ServicePrincipals {
			if strings.EqualFold(sp.AppID, cloud.FirstPartyAppID) {
				sp.KeyCredentials = append(sp.KeyCredentials, sim.KeyCredential{KeyID: "3f1d2c4b-5a6e-4f70-8192-a3b4c5d6e7f8", CustomKeyIdentifier: foreign,
					DisplayName: "Fabrikam", Type: "AsymmetricX509Cert", Usage: "Verify", StartDateTime: foreignCert.NotBefore, EndDateTime: foreignCert.NotAfter, Key: foreignCert.DER})
			}
		}
	})
	old := h.replaceCurrent(2, renewBase.AddDate(0, 0, 30))
	h.setUp(2, renewBase)
	if !h.snap(2).hasKey(foreign) {
		t.Fatal("world changed: no foreign key on the first-party service principal")
	}
	env := h.newEnv(renewBase)
	res, err := runRenewal(t, env, h.input(2, workflows.RenewalOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != "legacy-first-party" || res.State != workflows.StateRenewed {
		t.Fatalf("mode %s state %s", res.Mode, res.State)
	}
	// 30 days left: the effective date is one day before the expiry.
	if st := stepOf(res, workflows.RenewStepWait); !strings.Contains(st.Detail, renewBase.AddDate(0, 0, 29).Format(time.RFC3339)) {
		t.Fatalf("wait: %+v", st)
	}
	s := h.converged(2, old, env.Now())
	if !s.hasKey(foreign) {
		t.Fatalf("the foreign key was dropped: %v", s.keys)
	}
}

func (h *renewHarness) writes(i int) int64 {
	if st := h.world.Stats().ByTenant[strings.ToLower(h.tenant(i).ID)]; st != nil {
		return st.Writes
	}
	return 0
}

// TestRenewalUnconfiguredWorldwideOldBuildsRefusesBeforeWriting is the
// case tried as an operator would: a worldwide tenant never set up, its
// auth certificate expired, every Mailbox server below the April 2025
// hotfix. The first-party path is blocked worldwide
// (shared/reference/hybrid-facts.md (b) "after 31 Oct 2025"), so the
// renewal must not renew onto it: it stops at the read step with
// LegacyPathBlocked, naming the servers and the builds they need, having
// written nothing.
func TestRenewalUnconfiguredWorldwideOldBuildsRefusesBeforeWriting(t *testing.T) {
	h := newRenewHarness(t)
	h.world.Update(h.tenant(0).ID, func(t *sim.Tenant) {
		for i := range t.OnPrem.Servers {
			t.OnPrem.Servers[i].Version = sim.GenOldBuild
		}
	})
	h.replaceCurrent(0, renewBase.AddDate(0, 0, -3))
	before := h.writes(0)
	res, err := runRenewal(t, h.newEnv(renewBase), h.input(0, workflows.RenewalOptions{FailurePolicy: workflows.PolicyFail}))
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrLegacyPathBlocked {
		t.Fatalf("want LegacyPathBlocked, got %v (mode %s, action %s)", err, res.Mode, res.Action)
	}
	for _, m := range []string{"EX01 runs " + sim.GenOldBuild, "15.2.1544.25", "Worldwide"} {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("error %q should mention %q", err, m)
		}
	}
	if n := h.writes(0) - before; n != 0 {
		t.Fatalf("the renewal wrote %d time(s) before refusing", n)
	}
}

// TestRenewalReportOfABlockedTenant: `renew report` (read only) of that
// tenant reports why no mode applies instead of pausing.
func TestRenewalReportOfABlockedTenant(t *testing.T) {
	h := newRenewHarness(t)
	h.world.Update(h.tenant(0).ID, func(t *sim.Tenant) {
		for i := range t.OnPrem.Servers {
			t.OnPrem.Servers[i].Version = sim.GenOldBuild
		}
	})
	h.replaceCurrent(0, renewBase.AddDate(0, 0, -3))
	before := h.writes(0)
	res, err := runRenewal(t, h.newEnv(renewBase), h.input(0, workflows.RenewalOptions{ReportOnly: true}))
	if err != nil {
		t.Fatal(err)
	}
	if res.State != workflows.StateRenewalReported || res.Mode != "" || !strings.Contains(res.ModeReason, "legacy first-party path blocked") ||
		res.Current == nil || res.DaysLeft >= 0 || h.writes(0) != before {
		t.Fatalf("report: state %s mode %q reason %q days %d, %d writes", res.State, res.Mode, res.ModeReason, res.DaysLeft, h.writes(0)-before)
	}
}

// TestRenewalUnconfiguredWorldwideRenewsCertificateOnly: the same tenant
// on current builds. The renewal follows setup's choice (the dedicated
// application) but the application does not exist yet: it replaces the
// expired certificate on-prem, puts no key on the blocked first-party
// principal, and leaves the upload and verification to setup, which then
// succeeds (before, setup refused the expired certificate and the renewal
// renewed onto the blocked path).
func TestRenewalUnconfiguredWorldwideRenewsCertificateOnly(t *testing.T) {
	h := newRenewHarness(t)
	old := h.replaceCurrent(0, renewBase.AddDate(0, 0, -3))
	fpKeys := func() int {
		n := 0
		h.world.View(h.tenant(0).ID, func(t *sim.Tenant) {
			for _, sp := range t.Entra.ServicePrincipals {
				if strings.EqualFold(sp.AppID, cloud.FirstPartyAppID) {
					n = len(sp.KeyCredentials)
				}
			}
		})
		return n
	}
	keysBefore := fpKeys()
	env := h.newEnv(renewBase)
	res, err := runRenewal(t, env, h.input(0, workflows.RenewalOptions{FailurePolicy: workflows.PolicyFail}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != string(plan.ModeDedicatedApp) || !res.Emergency || res.State != workflows.StateRenewed {
		t.Fatalf("mode %s emergency %v state %s: %s", res.Mode, res.Emergency, res.State, res.ModeReason)
	}
	for _, step := range []string{workflows.RenewStepUpload, workflows.RenewStepVerify, workflows.RenewStepRemoveKey, workflows.RenewStepVerifyFinal} {
		if st := stepOf(res, step); st.Status != workflows.StatusNotNeeded || !strings.Contains(st.Detail, "setup") {
			t.Errorf("%s: %+v", step, st)
		}
	}
	if st := stepOf(res, workflows.RenewStepPublish); st.Status != workflows.StatusDone {
		t.Fatalf("publish: %+v", st)
	}
	if n := fpKeys(); n != keysBefore {
		t.Fatalf("the first-party service principal went from %d to %d keys", keysBefore, n)
	}
	s := h.snap(0)
	if certs.SameThumbprint(s.current, old) || s.current == "" {
		t.Fatalf("current certificate %s (old %s)", s.current, old)
	}
	h.setUp(0, env.Now())
	if on, cl, d := h.oauth(0, env.Now()); !on || !cl {
		t.Fatalf("after setup: %s", d)
	}
}

// waitForPause runs the renewal until it pauses for an operator (checked
// at `after`), lets fix change the world, and sends retry.
func (h *renewHarness) pauseFixRetry(env *testsuite.TestWorkflowEnvironment, after time.Duration, fix func()) *workflows.RenewalState {
	paused := &workflows.RenewalState{}
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(workflows.QueryState)
		if err != nil {
			h.t.Error(err)
			return
		}
		if err := v.Get(paused); err != nil {
			h.t.Error(err)
		}
		fix()
		env.UpdateWorkflow(workflows.UpdateRetry, "retry-1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { h.t.Errorf("retry rejected: %v", err) },
			OnAccept: func() {}, OnComplete: func(any, error) {},
		}, workflows.OperatorAction{Reason: "fixed"})
	}, after)
	return paused
}

// stageMissingOn stages a successor for tenant i, effective in 30 days,
// that server EX02 does not hold, and sets the tenant up (which uploads it).
func (h *renewHarness) stageMissingOn(i int, edit func(t *sim.Tenant, next *sim.ExchangeCertificate)) (current, next string) {
	n := sim.NewCertificate(sim.AuthCertificateSubject, 4343, renewBase.AddDate(0, 0, -1), renewBase.AddDate(5, 0, 0))
	effective := renewBase.AddDate(0, 0, 30)
	h.world.Update(h.tenant(i).ID, func(t *sim.Tenant) {
		t.OnPrem.Certificates = append(t.OnPrem.Certificates, n)
		t.OnPrem.AuthConfig.NextCertificateThumbprint = n.Thumbprint
		t.OnPrem.AuthConfig.NextCertificateEffectiveDate = &effective
		current = t.OnPrem.AuthConfig.CurrentCertificateThumbprint
	})
	h.setUp(i, renewBase)
	h.world.Update(h.tenant(i).ID, func(t *sim.Tenant) {
		for _, c := range t.OnPrem.Certificates {
			if c.Thumbprint == n.Thumbprint {
				edit(t, c)
			}
		}
	})
	return current, n.Thumbprint
}

// TestRenewalRefusesToPublishACertificateAServerLacks follows
// shared/reference/hybrid-facts.md (c) "per-server probe" and "scenario
// 4/5": the staged certificate is missing on EX02, so the renewal asks
// every Mailbox server before publishing, pauses at check-servers naming
// EX02 (CertificateMissingOnServers), and publishes only after the operator
// imported it there and retried.
func TestRenewalRefusesToPublishACertificateAServerLacks(t *testing.T) {
	h := newRenewHarness(t)
	current, next := h.stageMissingOn(0, func(_ *sim.Tenant, c *sim.ExchangeCertificate) { c.MissingOn = []string{"EX02"} })
	env := h.newEnv(renewBase)
	var currentWhilePaused string
	paused := h.pauseFixRetry(env, 31*24*time.Hour, func() {
		currentWhilePaused = h.snap(0).current
		h.world.Update(h.tenant(0).ID, func(t *sim.Tenant) { // the operator imports it on EX02
			for _, c := range t.OnPrem.Certificates {
				c.MissingOn = nil
			}
		})
	})
	res, err := runRenewal(t, env, h.input(0, workflows.RenewalOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if paused.Paused == nil || paused.Paused.Step != workflows.RenewStepCheckServers || paused.Paused.ErrorType != activities.ErrCertificateMissingOnServers ||
		!strings.Contains(paused.Paused.Error, "missing on EX02") || !strings.Contains(paused.Paused.Error, next) || !strings.Contains(paused.Paused.Error, "Import-ExchangeCertificate") {
		t.Fatalf("while EX02 lacked it: %+v", paused.Paused)
	}
	if !certs.SameThumbprint(currentWhilePaused, current) {
		t.Fatalf("%s was published while EX02 lacked it", currentWhilePaused)
	}
	if st := stepOf(res, workflows.RenewStepCheckServers); st.Attempts != 2 || st.Status != workflows.StatusDone || !strings.Contains(st.Detail, "EX01, EX02") {
		t.Fatalf("check-servers %+v", st)
	}
	if s := h.snap(0); !certs.SameThumbprint(s.current, next) {
		t.Fatalf("current %s, want the staged %s", s.current, next)
	}
}

// TestRenewalDoesNotPublishWhileAServerIsUnreachable: an unreachable
// server stops the renewal before publishing (shared/reference/hybrid-facts.md
// (c) "unreachable servers"); the step is retried, then pauses as
// ServerUnreachable until the operator retries (or skips).
func TestRenewalDoesNotPublishWhileAServerIsUnreachable(t *testing.T) {
	h := newRenewHarness(t)
	current, next := h.stageMissingOn(0, func(t *sim.Tenant, _ *sim.ExchangeCertificate) {
		for i := range t.OnPrem.Servers {
			if t.OnPrem.Servers[i].Name == "EX02" {
				t.OnPrem.Servers[i].Unreachable = true
			}
		}
	})
	env := h.newEnv(renewBase)
	var currentWhilePaused string
	paused := h.pauseFixRetry(env, 31*24*time.Hour, func() {
		currentWhilePaused = h.snap(0).current
		h.world.Update(h.tenant(0).ID, func(t *sim.Tenant) {
			for i := range t.OnPrem.Servers {
				t.OnPrem.Servers[i].Unreachable = false
			}
		})
	})
	res, err := runRenewal(t, env, h.input(0, workflows.RenewalOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if paused.Paused == nil || paused.Paused.Step != workflows.RenewStepCheckServers || paused.Paused.ErrorType != activities.ErrServerUnreachable ||
		!strings.Contains(paused.Paused.Error, "EX02") {
		t.Fatalf("while EX02 was unreachable: %+v", paused.Paused)
	}
	if !certs.SameThumbprint(currentWhilePaused, current) {
		t.Fatalf("%s was published while EX02 could not be asked", currentWhilePaused)
	}
	if s := h.snap(0); res.State != workflows.StateRenewed || !certs.SameThumbprint(s.current, next) {
		t.Fatalf("state %s current %s, want renewed with %s", res.State, s.current, next)
	}
}

// TestRenewalSetupUploadsStagedNextCertificate: Setup puts the staged next
// certificate in Entra together with the current one (plan.deriveKeys),
// so a scheduled rollover needs no visit.
func TestRenewalSetupUploadsStagedNextCertificate(t *testing.T) {
	h := newRenewHarness(t)
	next := sim.NewCertificate(sim.AuthCertificateSubject, 4242, renewBase.AddDate(0, 0, -1), renewBase.AddDate(5, 0, 0))
	var current string
	effective := renewBase.AddDate(0, 0, 30)
	h.world.Update(h.tenant(0).ID, func(t *sim.Tenant) {
		t.OnPrem.Certificates = append(t.OnPrem.Certificates, next)
		t.OnPrem.AuthConfig.NextCertificateThumbprint = next.Thumbprint
		t.OnPrem.AuthConfig.NextCertificateEffectiveDate = &effective
		current = t.OnPrem.AuthConfig.CurrentCertificateThumbprint
	})
	h.setUp(0, renewBase)
	s := h.snap(0)
	if len(s.keys) != 2 || !s.hasKey(current) || !s.hasKey(next.Thumbprint) {
		t.Fatalf("dedicated app keys %v, want exactly the current %s and the staged next %s", s.keys, current, next.Thumbprint)
	}
	// The renewal then carries the staged certificate through, re-uploading nothing.
	env := h.newEnv(renewBase)
	res, err := runRenewal(t, env, h.input(0, workflows.RenewalOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != workflows.RenewalActionResume || stepOf(res, workflows.RenewStepUpload).Outcome != string(activities.Unchanged) {
		t.Fatalf("action %s, upload %+v", res.Action, stepOf(res, workflows.RenewStepUpload))
	}
	h.converged(0, current, env.Now())
}

// TestRenewalRejectsCompensatePolicy: a renewal is resumed, not undone.
func TestRenewalRejectsCompensatePolicy(t *testing.T) {
	h := newRenewHarness(t)
	_, err := runRenewal(t, h.newEnv(renewBase), h.input(0, workflows.RenewalOptions{FailurePolicy: workflows.PolicyCompensate}))
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrInvalidInput {
		t.Fatalf("want InvalidInput, got %v", err)
	}
}

// TestRenewalPausesForAnOperatorAndRetries: with the default policy a step
// that keeps failing pauses the renewal (state query and HybridflowState
// say so); the operator's retry update runs it again and the renewal ends.
func TestRenewalPausesForAnOperatorAndRetries(t *testing.T) {
	h := newRenewHarness(t)
	old := h.replaceCurrent(0, renewBase.AddDate(0, 0, 45))
	h.setUp(0, renewBase)
	env := h.newEnv(renewBase)
	ren := &activities.Renewal{Hosts: h.be, Clients: h.be, Now: env.Now}
	var mu sync.Mutex
	calls := 0
	env.OnActivity("PublishAuthCertificate", mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.AuthCertificateInput) (activities.AuthCertificateResult, error) {
			mu.Lock()
			calls++
			n := calls
			mu.Unlock()
			if n == 1 {
				return activities.AuthCertificateResult{}, temporal.NewNonRetryableApplicationError("Exchange is unreachable", "Transient", nil)
			}
			return ren.PublishAuthCertificate(ctx, in)
		})
	var paused workflows.RenewalState
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(workflows.QueryState)
		if err != nil {
			t.Error(err)
			return
		}
		if err := v.Get(&paused); err != nil {
			t.Error(err)
		}
		env.UpdateWorkflow(workflows.UpdateRetry, "retry-1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("retry rejected: %v", err) },
			OnAccept: func() {}, OnComplete: func(any, error) {},
		}, workflows.OperatorAction{Reason: "Exchange is back"})
	}, 31*24*time.Hour)
	res, err := runRenewal(t, env, h.input(0, workflows.RenewalOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if paused.State != workflows.StatePaused || paused.Paused == nil || paused.Paused.Step != workflows.RenewStepPublish {
		t.Fatalf("while failing: state %s paused %+v", paused.State, paused.Paused)
	}
	if st := stepOf(res, workflows.RenewStepPublish); st.Attempts != 2 || st.Status != workflows.StatusDone {
		t.Fatalf("publish step %+v", st)
	}
	h.converged(0, old, env.Now())
}

// failOnce makes the named renewal activity fail once, non-retryably, and
// then run for real.
func failOnce[In, Out any](env *testsuite.TestWorkflowEnvironment, name string, real func(context.Context, In) (Out, error)) {
	var mu sync.Mutex
	calls := 0
	env.OnActivity(name, mock.Anything, mock.Anything).Return(func(ctx context.Context, in In) (Out, error) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 {
			var zero Out
			return zero, temporal.NewNonRetryableApplicationError("Exchange is unreachable", "Transient", nil)
		}
		return real(ctx, in)
	})
}

// decideRenewal sends an operator's decision once the renewal has paused.
func decideRenewal(t *testing.T, env *testsuite.TestWorkflowEnvironment, update string, after time.Duration) {
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(update, update+"-1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("%s rejected: %v", update, err) },
			OnAccept: func() {}, OnComplete: func(any, error) {},
		}, workflows.OperatorAction{Reason: "operator"})
	}, after)
}

// TestRenewalAbortStopsWithoutUndoing: an operator's abort stops a renewal
// where it is and undoes nothing (a renewal never compensates): the new
// certificate stays staged with its key in Entra, the current one stays
// current, and the run ends Aborted naming the step, for the next renewal
// to resume.
func TestRenewalAbortStopsWithoutUndoing(t *testing.T) {
	h := newRenewHarness(t)
	old := h.replaceCurrent(0, renewBase.AddDate(0, 0, 45))
	h.setUp(0, renewBase)
	env := h.newEnv(renewBase)
	ren := &activities.Renewal{Hosts: h.be, Clients: h.be, Now: env.Now}
	failOnce(env, "PublishAuthCertificate", ren.PublishAuthCertificate)
	decideRenewal(t, env, workflows.UpdateAbort, 31*24*time.Hour)
	_, err := runRenewal(t, env, h.input(0, workflows.RenewalOptions{}))
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != "Aborted" ||
		!strings.Contains(app.Message(), "stopped by an operator at "+workflows.RenewStepPublish+"; nothing was undone: the next renewal resumes where this one stopped") {
		t.Fatalf("renewal ended with %v; want an Aborted error naming %s", err, workflows.RenewStepPublish)
	}
	s := h.snap(0)
	if !certs.SameThumbprint(s.current, old) || s.next == "" || certs.SameThumbprint(s.next, old) || !s.hasKey(s.next) || !s.hasKey(old) {
		t.Fatalf("after the abort: %+v; want %s current and the new certificate staged with its key", s, old)
	}
}

// TestRenewalSkippedClearKeepsTheRetiredKey: when an operator skips
// clearing the previous certificate, its key stays in Entra (it may still
// be in use) and the renewal finishes.
func TestRenewalSkippedClearKeepsTheRetiredKey(t *testing.T) {
	h := newRenewHarness(t)
	old := h.replaceCurrent(0, renewBase.AddDate(0, 0, 45))
	h.setUp(0, renewBase)
	env := h.newEnv(renewBase)
	ren := &activities.Renewal{Hosts: h.be, Clients: h.be, Now: env.Now}
	failOnce(env, "ClearPreviousAuthCertificate", ren.ClearPreviousAuthCertificate)
	decideRenewal(t, env, workflows.UpdateSkip, 31*24*time.Hour)
	res, err := runRenewal(t, env, h.input(0, workflows.RenewalOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if st := stepOf(res, workflows.RenewStepClear); st.Status != workflows.StatusSkipped {
		t.Fatalf("clear step %+v; want skipped", st)
	}
	if st := stepOf(res, workflows.RenewStepRemoveKey); st.Status != workflows.StatusNotNeeded || st.Detail != "the previous certificate was not cleared; its key stays in Entra" {
		t.Fatalf("remove-key step %+v; want not needed because the clear was skipped", st)
	}
	if res.State != workflows.StateRenewed || !h.snap(0).hasKey(old) {
		t.Fatalf("state %s, keys %v; want renewed with %s's key kept", res.State, h.snap(0).keys, old)
	}
}
