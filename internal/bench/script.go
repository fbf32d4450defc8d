package bench

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/steps"
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
// documents would do it: the same steps (the registry in package steps,
// which the workflow runs too), as the same step graph, with the same retry
// policy and verification waits, but without Temporal (no history, no
// durable timers, nothing survives a crash). Its Caller calls the activity
// structs' methods directly, by the names the workflow schedules;
// TestHarnessSmoke compares the activities of both for fresh and
// converged tenants of each mode.
type script struct {
	acts Acts
	in   workflows.SetupInput
	// turn is held by whichever of the tenant's goroutines runs step code
	// and released while it waits for a call or a timer: the steps run one
	// at a time between waits, as workflow coroutines do, so the ledger
	// they share needs no other lock.
	turn           sync.Mutex
	mu             sync.Mutex
	calls          []string // activity types, in the order the workflow schedules them
	nonRetryable   []string
	retryMax       time.Duration
	retryInitial   time.Duration
	retryAttempts  int32
	startToClose   time.Duration
	verifyDeadline time.Duration
	verifyInterval time.Duration
}

// newScript applies the same defaults as the workflow (stepActivityOptions
// and the verification step) so that both runners wait alike.
func newScript(acts Acts, in workflows.SetupInput) *script {
	o := in.Options
	s := &script{acts: acts, in: in,
		retryInitial: time.Second, retryMax: time.Minute, retryAttempts: 5,
		startToClose: 5 * time.Minute, verifyDeadline: steps.DefaultVerifyDeadline, verifyInterval: steps.DefaultVerifyInterval,
		nonRetryable: []string{contract.ErrInvalidInput, contract.ErrMissingPermission, contract.ErrUnsupportedVersion, contract.ErrConflict},
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
	s.turn.Lock()
	defer s.turn.Unlock()
	c := directCaller{s: s, ctx: ctx}
	found, err := steps.Discover(c, s.in.Tenant, s.in.Target, s.in.Options.ResetFirstPartyKeys)
	if err != nil {
		return workflows.StateFailed, fmt.Errorf("discover: %w", err)
	}
	var (
		states       []*steps.StepState
		writes       int
		notes        []string
		verification map[string]string
	)
	r := &steps.Run{C: c, Shared: &steps.Shared{L: steps.NewLedger(&states, &writes, &notes), Target: s.in.Target, Plan: found.Plan, Observed: found.Observed,
		AppID: found.AppID, SkipSteps: s.in.Options.SkipSteps, OneCall: true,
		VerifyDeadline: s.verifyDeadline, VerifyInterval: s.verifyInterval, Verification: &verification}}
	if err := s.runGraph(r, found.Plan.Actions); err != nil {
		return workflows.StateFailed, err
	}
	if !r.Verified() {
		return workflows.StateUnverified, nil
	}
	return workflows.StateVerified, nil
}

// runGraph runs the plan's actions as the workflow does (steps.Graph): each
// in a goroutine that starts once the actions it waits for have ended; no
// action starts after one failed. The caller holds s.turn.
func (s *script) runGraph(r *steps.Run, actions []plan.Action) error {
	deps := r.Graph()
	ended := make([]chan struct{}, len(actions))
	for i := range ended {
		ended[i] = make(chan struct{})
	}
	var first error
	for i, a := range actions {
		go func() {
			defer close(ended[i])
			for _, j := range deps[i] {
				<-ended[j]
			}
			s.turn.Lock()
			defer s.turn.Unlock()
			if first != nil {
				return
			}
			if err := runStep(r, a); err != nil && first == nil {
				first = fmt.Errorf("step %s: %w", a.Step, err)
			}
		}()
	}
	s.turn.Unlock()
	for _, c := range ended {
		<-c
	}
	s.turn.Lock()
	return first
}

// runStep runs one plan action by its registered step, as the workflow's
// engine does, without an operator to ask.
func runStep(r *steps.Run, a plan.Action) error {
	step := steps.Lookup(a.Step)
	if !step.Admit(r, a) {
		return nil
	}
	st := r.L.State(string(a.Step))
	st.Status, st.Outcome, st.Detail = steps.StatusRunning, "", ""
	if err := step.Execute(r, a); err != nil {
		st.Status = steps.StatusFailed
		return err
	}
	if st.Status == steps.StatusRunning {
		st.Status = steps.StatusDone
	}
	return nil
}

// directCaller runs the steps' activities by calling the activity structs'
// methods of the same names, each in its own goroutine (as the workflow
// starts futures), with the workflow's retry policy; the call log keeps
// the workflow's scheduling order.
type directCaller struct {
	s   *script
	ctx context.Context
}

func (c directCaller) OnPrem(name string, arg any) steps.Future     { return c.start(name, arg) }
func (c directCaller) CloudRead(name string, arg any) steps.Future  { return c.start(name, arg) }
func (c directCaller) CloudWrite(name string, arg any) steps.Future { return c.start(name, arg) }

// Plan is a local activity in the workflow (a marker in its history) with
// one attempt.
func (c directCaller) Plan(in contract.PlanInput) steps.Future {
	c.s.logCall(contract.ActPlanSetup)
	out, err := activities.PlanSetup(c.ctx, in)
	return done(out, err)
}

func (c directCaller) Undo(step string, rec contract.UndoRecord) error {
	name := map[contract.System]string{contract.SystemOnPrem: contract.ActUndoOnPrem, contract.SystemOnline: contract.ActUndoOnline, contract.SystemEntra: contract.ActUndoEntra}[rec.System]
	if name == "" {
		return fmt.Errorf("undo record for unknown system %q", rec.System)
	}
	return c.start(name, contract.UndoInput{Target: c.s.in.Target, Record: rec}).Get(nil)
}

func (c directCaller) Sleep(d time.Duration) error {
	c.s.turn.Unlock()
	defer c.s.turn.Lock()
	select {
	case <-c.ctx.Done():
		return c.ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func (c directCaller) Now() time.Time  { return time.Now().UTC() }
func (c directCaller) Cancelled() bool { return c.ctx.Err() != nil }

// start logs the call and runs it in the background.
func (c directCaller) start(name string, arg any) steps.Future {
	c.s.logCall(name)
	f := &future{done: make(chan struct{}), turn: &c.s.turn}
	go func() {
		defer close(f.done)
		f.v, f.err = call(c.ctx, c.s, name, func(ctx context.Context) (any, error) { return c.s.invoke(ctx, name, arg) })
	}()
	return f
}

// invoke calls the activity method named name on the activity structs, as
// a worker's registry would find it.
func (s *script) invoke(ctx context.Context, name string, arg any) (any, error) {
	for _, acts := range []any{s.acts.OnPrem, s.acts.Online, s.acts.Entra} {
		m := reflect.ValueOf(acts).MethodByName(name)
		if !m.IsValid() {
			continue
		}
		if t := m.Type(); t.NumIn() != 2 || !reflect.TypeOf(arg).AssignableTo(t.In(1)) {
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("activity %s does not take %T", name, arg), contract.ErrInvalidInput, nil)
		}
		out := m.Call([]reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(arg)})
		err, _ := out[len(out)-1].Interface().(error)
		if len(out) == 1 {
			return nil, err
		}
		return out[0].Interface(), err
	}
	return nil, temporal.NewNonRetryableApplicationError("no activity "+name, contract.ErrInvalidInput, nil)
}

// future is a direct call's result.
type future struct {
	done chan struct{}
	// turn, when set, is released while Get waits (script.turn).
	turn *sync.Mutex
	v    any
	err  error
}

func done(v any, err error) *future {
	f := &future{done: make(chan struct{}), v: v, err: err}
	close(f.done)
	return f
}

// Get waits for the call and stores its result in valuePtr (nil: drop it).
func (f *future) Get(valuePtr any) error {
	if f.turn != nil {
		select {
		case <-f.done:
		default:
			f.turn.Unlock()
			<-f.done
			f.turn.Lock()
		}
	}
	<-f.done
	if f.err != nil || valuePtr == nil || f.v == nil {
		return f.err
	}
	dst := reflect.ValueOf(valuePtr).Elem()
	v := reflect.ValueOf(f.v)
	if !v.Type().AssignableTo(dst.Type()) {
		return fmt.Errorf("result %T does not fit %T", f.v, valuePtr)
	}
	dst.Set(v)
	return nil
}
