package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/workflows"
)

// Acts are the activity structs a baseline calls directly, holding the same
// backend clients a worker's activities would.
type Acts struct {
	OnPrem *activities.OnPrem
	Online *activities.Online
	Entra  *activities.Entra
}

// script is one tenant's setup done the way a script following the
// documents would do it: the same activity code, in the same order, with
// the same retry policy and verification waits, but without Temporal (no
// history, no durable timers, nothing survives a crash).
//
// The step → activity mapping below mirrors workflows/setup.go (setup.action,
// setup.execute, setup.verify, setup.removeLegacyKey); TestBaselineCallsMatchDurable
// compares the activity sequence of both for fresh tenants of each mode, so
// a change there that is not made here fails a test instead of skewing the
// comparison.
type script struct {
	acts  Acts
	in    workflows.SetupInput
	out   activities.PlanOutput
	appID string
	// done marks steps finished by an earlier combined call (legacy keys +
	// SPNs in one PATCH; verification run right after the legacy-key removal).
	done           map[plan.Step]bool
	verified       bool
	removalSkipped bool
	mu             sync.Mutex
	calls          []string // activity types, in the order the workflow schedules them
	writes         int
	nonRetryable   []string
	retryMax       time.Duration
	retryInitial   time.Duration
	retryAttempts  int32
	startToClose   time.Duration
	verifyDeadline time.Duration
	verifyInterval time.Duration
}

// newScript applies the same defaults as the workflow (stepActivityOptions
// and setup.verify) so that both runners wait alike.
func newScript(acts Acts, in workflows.SetupInput) *script {
	o := in.Options
	s := &script{acts: acts, in: in, done: map[plan.Step]bool{},
		retryInitial: time.Second, retryMax: time.Minute, retryAttempts: 5,
		startToClose: 5 * time.Minute, verifyDeadline: 30 * time.Minute, verifyInterval: 15 * time.Second,
		nonRetryable: []string{activities.ErrInvalidInput, activities.ErrMissingPermission, activities.ErrUnsupportedVersion, activities.ErrConflict},
	}
	if o.Retry.InitialInterval > 0 {
		s.retryInitial = o.Retry.InitialInterval
	}
	if o.Retry.MaximumInterval > 0 {
		s.retryMax = o.Retry.MaximumInterval
	}
	if o.Retry.MaximumAttempts > 0 {
		s.retryAttempts = o.Retry.MaximumAttempts
	}
	if o.StartToClose > 0 {
		s.startToClose = o.StartToClose
	}
	if o.VerifyDeadline > 0 {
		s.verifyDeadline = o.VerifyDeadline
	}
	if o.VerifyInterval > 0 {
		s.verifyInterval = o.VerifyInterval
	}
	return s
}

func (s *script) logCall(name string) {
	s.mu.Lock()
	s.calls = append(s.calls, name)
	s.mu.Unlock()
}

// call runs one activity with Temporal's retry semantics (exponential
// backoff, coefficient 2, the server's NextRetryDelay when the activity
// names one, non-retryable types stop at once) and a per-attempt timeout.
func call[T any](ctx context.Context, s *script, name string, f func(context.Context) (T, error)) (T, error) {
	if name != "" {
		s.logCall(name)
	}
	wait := s.retryInitial
	var zero T
	for attempt := int32(1); ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, s.startToClose)
		v, err := f(actx)
		cancel()
		if err == nil {
			return v, nil
		}
		var app *temporal.ApplicationError
		if errors.As(err, &app) && (app.NonRetryable() || slices.Contains(s.nonRetryable, app.Type())) {
			return zero, fmt.Errorf("%s: %w", name, err)
		}
		if attempt >= s.retryAttempts || ctx.Err() != nil {
			return zero, fmt.Errorf("%s after %d attempts: %w", name, attempt, err)
		}
		d := wait
		if app != nil && app.NextRetryDelay() > 0 {
			d = app.NextRetryDelay()
		}
		select {
		case <-ctx.Done():
			return zero, ctx.Err()
		case <-time.After(d):
		}
		wait = min(wait*2, s.retryMax)
	}
}

// run is the tenant's whole setup; it returns the final state name the
// workflow would report (verified / unverified) or an error.
func (s *script) run(ctx context.Context) (string, error) {
	if err := s.discoverAndPlan(ctx); err != nil {
		return workflows.StateFailed, fmt.Errorf("discover: %w", err)
	}
	for _, a := range s.out.Actions {
		if err := s.action(ctx, a); err != nil {
			return workflows.StateFailed, fmt.Errorf("step %s: %w", a.Step, err)
		}
	}
	if !s.verified {
		return workflows.StateUnverified, nil
	}
	return workflows.StateVerified, nil
}

// discoverAndPlan: on-prem and Exchange Online in parallel (as the workflow
// does), then Entra, then the same pure planning function.
func (s *script) discoverAndPlan(ctx context.Context) error {
	t := s.in.Target
	onprem, online, err := both(ctx, s,
		"DiscoverOnPrem", func(c context.Context) (plan.Observed, error) { return s.acts.OnPrem.DiscoverOnPrem(c, t) },
		"DiscoverOnline", func(c context.Context) (plan.Observed, error) { return s.acts.Online.DiscoverOnline(c, t) })
	if err != nil {
		return err
	}
	guid := s.in.Tenant.OrganizationGUID
	if guid == "" {
		guid = onprem.OrganizationGUID
	}
	ein := activities.EntraDiscoverInput{Target: t}
	if guid != "" {
		ein.DedicatedAppName = plan.DedicatedAppPrefix + guid
	}
	entra, err := call(ctx, s, "DiscoverEntra", func(c context.Context) (plan.Observed, error) { return s.acts.Entra.DiscoverEntra(c, ein) })
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	in := activities.PlanInput{Tenant: s.in.Tenant, Observed: activities.MergeObserved(onprem, online, entra, now), Now: now}
	s.logCall("PlanSetup") // a local activity in the workflow: a marker in its history
	if s.out, err = activities.PlanSetup(ctx, in); err != nil {
		return err
	}
	s.appID = in.Observed.DedicatedApp.AppID
	return nil
}

// both runs two activities at once, as the workflow starts two futures
// before waiting on either (discovery, verification); the call log keeps
// the workflow's scheduling order.
func both[A, B any](ctx context.Context, s *script, nameA string, fa func(context.Context) (A, error), nameB string, fb func(context.Context) (B, error)) (A, B, error) {
	s.logCall(nameA)
	s.logCall(nameB)
	var a A
	var errA error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a, errA = call(ctx, s, "", fa)
	}()
	b, errB := call(ctx, s, "", fb)
	wg.Wait()
	return a, b, errors.Join(errA, errB)
}

// action mirrors setup.action: which actions run at all.
func (s *script) action(ctx context.Context, a plan.Action) error {
	if slices.Contains(s.in.Options.SkipSteps, string(a.Step)) || s.done[a.Step] {
		return nil
	}
	switch a.Step {
	case plan.StepRemoveLegacyKey:
		if a.Change.Writes() && !s.verified {
			s.removalSkipped = true
			return nil
		}
	case plan.StepVerifyAfterRemoval:
		if s.removalSkipped {
			return nil
		}
	}
	switch a.Change {
	case plan.ChangeSkip:
		return nil
	case plan.ChangeNone:
		if a.Step != plan.StepVerify && a.Step != plan.StepVerifyAfterRemoval {
			return nil
		}
	}
	return s.execute(ctx, a)
}

func (s *script) record(r activities.StepResult) {
	if r.Outcome != activities.Unchanged && r.Outcome != "" {
		s.writes++
	}
	if r.AppID != "" {
		s.appID = r.AppID
	}
}

func (s *script) step(ctx context.Context, name string, f func(context.Context) (activities.StepResult, error)) error {
	r, err := call(ctx, s, name, f)
	if err != nil {
		return err
	}
	s.record(r)
	return nil
}

// execute mirrors setup.execute: a plan action → its activities.
func (s *script) execute(ctx context.Context, a plan.Action) error {
	d, t := s.out.Desired, s.in.Target
	on, ol, en := s.acts.OnPrem, s.acts.Online, s.acts.Entra
	switch a.Step {
	case plan.StepAuthServers:
		in := activities.AuthServersInput{Target: t, Servers: []plan.AuthServerSpec{d.ACS, d.EvoSTS}}
		return s.step(ctx, "EnsureAuthServers", func(c context.Context) (activities.StepResult, error) { return on.EnsureAuthServers(c, in) })
	case plan.StepPartnerApp:
		return s.step(ctx, "EnablePartnerApplication", func(c context.Context) (activities.StepResult, error) { return on.EnablePartnerApplication(c, t) })
	case plan.StepExportCert:
		return nil // discovery exported the certificate; the workflow only records it
	case plan.StepDedicatedApp:
		if err := s.step(ctx, "EnsureDedicatedApplication", func(c context.Context) (activities.StepResult, error) {
			return en.EnsureDedicatedApplication(c, activities.DedicatedAppInput{Target: t, Name: d.DedicatedAppName})
		}); err != nil {
			return err
		}
		if err := s.step(ctx, "EnsureDedicatedServicePrincipal", func(c context.Context) (activities.StepResult, error) {
			return en.EnsureDedicatedServicePrincipal(c, activities.AppIDInput{Target: t, AppID: s.appID})
		}); err != nil {
			return err
		}
		return s.step(ctx, "GrantDedicatedConsent", func(c context.Context) (activities.StepResult, error) {
			return en.GrantDedicatedConsent(c, activities.AppIDInput{Target: t, AppID: s.appID})
		})
	case plan.StepKeys:
		if d.Mode == plan.ModeDedicatedApp {
			if s.appID == "" {
				return errors.New("the dedicated application's appId is unknown")
			}
			return s.step(ctx, "EnsureApplicationKeys", func(c context.Context) (activities.StepResult, error) {
				return en.EnsureApplicationKeys(c, activities.AppKeysInput{Target: t, AppID: s.appID, Name: d.DedicatedAppName, Keys: d.Keys})
			})
		}
		in := activities.FirstPartyInput{Target: t, Keys: d.Keys}
		if spn := s.planned(plan.StepSPNs); spn.Change.Writes() && !slices.Contains(s.in.Options.SkipSteps, string(plan.StepSPNs)) {
			in.SPNs = d.SPNs
		}
		if err := s.step(ctx, "EnsureFirstPartyServicePrincipal", func(c context.Context) (activities.StepResult, error) {
			return en.EnsureFirstPartyServicePrincipal(c, in)
		}); err != nil {
			return err
		}
		if len(in.SPNs) > 0 {
			s.done[plan.StepSPNs] = true
		}
		return nil
	case plan.StepSPNs:
		return s.step(ctx, "EnsureFirstPartyServicePrincipal", func(c context.Context) (activities.StepResult, error) {
			return en.EnsureFirstPartyServicePrincipal(c, activities.FirstPartyInput{Target: t, SPNs: d.SPNs})
		})
	case plan.StepOnPremAuthServerApp:
		if s.appID == "" {
			return errors.New("the dedicated application's appId is unknown")
		}
		return s.step(ctx, "SetAuthServerApplication", func(c context.Context) (activities.StepResult, error) {
			return on.SetAuthServerApplication(c, activities.AuthServerAppInput{Target: t, EvoSTS: d.EvoSTS, AppID: s.appID, Domains: d.AuthServerDomains})
		})
	case plan.StepSettingOverride:
		// As the workflow: consent is there when the plan found it, or the
		// dedicated-app step (which grants it) ran without failing.
		consent := s.planned(plan.StepDedicatedApp).Change == plan.ChangeNone || !slices.Contains(s.in.Options.SkipSteps, string(plan.StepDedicatedApp))
		in := activities.SettingOverrideInput{Target: t, ConsentGranted: &consent, ConnectorsFirst: true} // PlanSetup's order
		return s.step(ctx, "EnsureSettingOverride", func(c context.Context) (activities.StepResult, error) { return on.EnsureSettingOverride(c, in) })
	case plan.StepIOCOnPrem:
		return s.step(ctx, "EnsureOnPremConnector", func(c context.Context) (activities.StepResult, error) {
			return on.EnsureOnPremConnector(c, activities.IOCInput{Target: t, Spec: d.OnPremIOC})
		})
	case plan.StepIOCOnline:
		return s.step(ctx, "EnsureOnlineConnector", func(c context.Context) (activities.StepResult, error) {
			return ol.EnsureOnlineConnector(c, activities.IOCInput{Target: t, Spec: d.OnlineIOC})
		})
	case plan.StepAvailability:
		return s.step(ctx, "EnsureAvailabilityAddressSpace", func(c context.Context) (activities.StepResult, error) {
			return on.EnsureAvailabilityAddressSpace(c, activities.AvailabilityInput{Target: t, Spec: d.Availability})
		})
	case plan.StepVerify, plan.StepVerifyAfterRemoval:
		return s.verify(ctx, a.Step)
	case plan.StepRemoveLegacyKey:
		var r activities.StepResult
		r, err := call(ctx, s, "RemoveLegacyKeys", func(c context.Context) (activities.StepResult, error) {
			return en.RemoveLegacyKeys(c, activities.RemoveLegacyKeysInput{Target: t, Thumbprints: d.LegacyThumbprints})
		})
		if err != nil {
			return err
		}
		s.record(r)
		if r.Outcome == activities.Unchanged {
			return nil
		}
		// The workflow verifies again at once and marks verify-after-removal
		// done; a failure would put the key back (not a benchmark path).
		if err := s.verify(ctx, plan.StepVerifyAfterRemoval); err != nil {
			return err
		}
		s.done[plan.StepVerifyAfterRemoval] = true
		return nil
	}
	return fmt.Errorf("no activity for step %s", a.Step)
}

func (s *script) planned(step plan.Step) plan.Action {
	for _, a := range s.out.Actions {
		if a.Step == step {
			return a
		}
	}
	return plan.Action{}
}

// verify mirrors setup.verify: both directions in parallel, sleeping (as a
// script would, where the workflow uses a durable timer) with a doubling
// interval until both succeed or the deadline passes.
func (s *script) verify(ctx context.Context, step plan.Step) error {
	d, t := s.out.Desired, s.in.Target
	wait := s.verifyInterval
	end := time.Now().Add(s.verifyDeadline)
	for round := 1; ; round++ {
		on, cl, err := both(ctx, s,
			"VerifyFromOnPrem", func(c context.Context) (activities.VerifyResult, error) {
				return s.acts.OnPrem.VerifyFromOnPrem(c, activities.VerifyInput{Target: t, TargetURI: d.VerifyCloudTarget, Mailbox: d.OnPremMailbox})
			},
			"VerifyFromOnline", func(c context.Context) (activities.VerifyResult, error) {
				return s.acts.Online.VerifyFromOnline(c, activities.VerifyInput{Target: t, TargetURI: d.VerifyOnPremTarget, Mailbox: d.CloudMailbox})
			})
		if err != nil {
			return err
		}
		if on.Success && cl.Success {
			if step == plan.StepVerify {
				s.verified = true
			}
			return nil
		}
		if !time.Now().Add(wait).Before(end) {
			return fmt.Errorf("verification did not succeed within %s (%d rounds): %s / %s", s.verifyDeadline, round, on.Detail, cl.Detail)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Minute)
	}
}
