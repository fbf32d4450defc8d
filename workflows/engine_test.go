package workflows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/steps"
)

// The engine's tests run a small workflow of named steps on the engine:
// each step is one activity ("EngineStep") that records an undo record
// named after the step, and compensation runs "EngineUndo". The test's
// activities fail where the test says and log the undo order.

type engineTestInput struct {
	Policy string
	Steps  []string
	// NoUndo: the workflow never compensates (as Renewal).
	NoUndo bool
}

type engineTestState struct {
	State        string
	Step         string
	Steps        []*StepState
	Writes       int
	Compensation []string
	Error        string
}

func engineTestWorkflow(ctx workflow.Context, in engineTestInput) (engineTestState, error) {
	var st engineTestState
	cfg := engineConfig{policy: in.Policy, summary: func(s string) string { return "test " + s },
		onState: func(_ workflow.Context, state, step string) {
			if state != "" {
				st.State = state
			}
			if step != "" {
				st.Step = step
			}
		},
		describe: func(e steps.Entry) string { return e.Step + ": " + e.Rec.Kind + " " + e.Rec.Name },
		subject:  "test run", cancelled: "test run cancelled"}
	ao := workflow.ActivityOptions{StartToCloseTimeout: time.Minute, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}}
	if in.NoUndo {
		cfg.noUndoCancelled = "test run cancelled; nothing was undone"
		cfg.noUndoAborted = func() string { return "test run stopped at " + st.Step }
	} else {
		cfg.undo = func(ctx workflow.Context, e steps.Entry) error {
			return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, ao), "EngineUndo", e.Rec.Name).Get(ctx, nil)
		}
	}
	e, err := newEngine(ctx, cfg, engineState{Steps: &st.Steps, Writes: &st.Writes, Compensation: &st.Compensation, Error: &st.Error})
	if err != nil {
		return st, err
	}
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (engineTestState, error) { return st, nil }); err != nil {
		return st, err
	}
	var list []engineStep
	for _, name := range in.Steps {
		list = append(list, engineStep{name: name, change: "create", run: func(ctx workflow.Context) error {
			var out activities.Outcome
			if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, ao), "EngineStep", name).Get(ctx, &out); err != nil {
				return err
			}
			e.Wrote(out)
			e.Push(name, steps.UndoRecord{Kind: "remove", Name: name})
			return nil
		}})
	}
	err = e.finish(ctx, e.runSteps(ctx, list))
	return st, err
}

// engineWorld is the test's activities: fails[name] is how many times a
// step fails before it succeeds (-1: always); undone logs the undo order.
type engineWorld struct {
	mu     sync.Mutex
	fails  map[string]int
	undone []string
	calls  map[string]int
}

func (w *engineWorld) step(_ context.Context, name string) (activities.Outcome, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls[name]++
	if n := w.fails[name]; n != 0 {
		w.fails[name] = n - 1
		return "", temporal.NewNonRetryableApplicationError("step "+name+" refused", "TestRefused", nil)
	}
	return activities.Created, nil
}

func (w *engineWorld) undo(_ context.Context, name string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.undone = append(w.undone, name)
	return nil
}

func newEngineEnv(t *testing.T, fails map[string]int) (*testsuite.TestWorkflowEnvironment, *engineWorld) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(engineQuietLogger{})
	env := s.NewTestWorkflowEnvironment()
	w := &engineWorld{fails: fails, calls: map[string]int{}}
	env.RegisterWorkflow(engineTestWorkflow)
	env.RegisterActivityWithOptions(w.step, activity.RegisterOptions{Name: "EngineStep"})
	env.RegisterActivityWithOptions(w.undo, activity.RegisterOptions{Name: "EngineUndo"})
	return env, w
}

// decideWhenPaused sends decision once the workflow waits for an operator.
func decideWhenPaused(t *testing.T, env *testsuite.TestWorkflowEnvironment, decision string) {
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(decision, "", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { t.Errorf("%s rejected: %v", decision, err) },
			OnAccept:   func() {},
			OnComplete: func(any, error) {},
		}, OperatorAction{Reason: "test"})
	}, time.Minute)
}

func runEngine(t *testing.T, env *testsuite.TestWorkflowEnvironment, in engineTestInput) (engineTestState, error) {
	t.Helper()
	env.ExecuteWorkflow(engineTestWorkflow, in)
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	var st engineTestState
	err := env.GetWorkflowError()
	if err == nil {
		if gerr := env.GetWorkflowResult(&st); gerr != nil {
			t.Fatal(gerr)
		}
	}
	return st, err
}

func statuses(st engineTestState) map[string]string {
	m := map[string]string{}
	for _, s := range st.Steps {
		m[s.Step] = s.Status
	}
	return m
}

// appError is the workflow's application error (type and message).
func appError(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		t.Fatalf("want an application error, got %v", err)
	}
	return app
}

// Policy compensate: the failure undoes the earlier steps in reverse and
// ends Aborted, naming the failed step and counting the undone changes.
func TestEngineCompensatesInReverse(t *testing.T) {
	env, w := newEngineEnv(t, map[string]int{"c": -1})
	_, err := runEngine(t, env, engineTestInput{Policy: PolicyCompensate, Steps: []string{"a", "b", "c", "d"}})
	app := appError(t, err)
	if app.Type() != ErrAborted || !strings.HasPrefix(app.Message(), "test run aborted; 2 change(s) undone: step c failed: ") || !strings.Contains(app.Message(), "step c refused") {
		t.Fatalf("error %s: %s", app.Type(), app.Message())
	}
	if !slices.Equal(w.undone, []string{"b", "a"}) {
		t.Fatalf("undo order %v, want [b a]", w.undone)
	}
	st := queryEngine(t, env)
	if s := statuses(st); w.calls["d"] != 0 || s["a"] != StatusCompensated || s["b"] != StatusCompensated || s["c"] != StatusFailed ||
		!slices.Equal(st.Compensation, []string{"b: remove b", "a: remove a"}) || !strings.HasPrefix(st.Error, "step c failed: ") {
		t.Fatalf("calls %v, steps %v, compensation %q, error %q", w.calls, s, st.Compensation, st.Error)
	}
}

// The compensated steps and the compensation list show in the result of a
// paused run the operator aborts.
func TestEnginePauseAbortCompensates(t *testing.T) {
	env, w := newEngineEnv(t, map[string]int{"b": -1})
	decideWhenPaused(t, env, UpdateAbort)
	_, err := runEngine(t, env, engineTestInput{Policy: PolicyPause, Steps: []string{"a", "b", "c"}})
	app := appError(t, err)
	if app.Type() != ErrAborted || app.Message() != "test run aborted; 1 change(s) undone" {
		t.Fatalf("error %s: %q", app.Type(), app.Message())
	}
	if !slices.Equal(w.undone, []string{"a"}) || w.calls["c"] != 0 || w.calls["b"] != 1 {
		t.Fatalf("undone %v, calls %v", w.undone, w.calls)
	}
	st := queryEngine(t, env)
	if s := statuses(st); s["a"] != StatusCompensated || s["b"] != StatusFailed || st.State != StateAborted ||
		!slices.Equal(st.Compensation, []string{"a: remove a"}) {
		t.Fatalf("steps %v, state %s, compensation %q", s, st.State, st.Compensation)
	}
}

func queryEngine(t *testing.T, env *testsuite.TestWorkflowEnvironment) engineTestState {
	t.Helper()
	v, err := env.QueryWorkflow(QueryState)
	if err != nil {
		t.Fatal(err)
	}
	var st engineTestState
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// Retry runs the failed step again; the run then goes on.
func TestEnginePauseRetry(t *testing.T) {
	env, w := newEngineEnv(t, map[string]int{"b": 1})
	decideWhenPaused(t, env, UpdateRetry)
	st, err := runEngine(t, env, engineTestInput{Policy: PolicyPause, Steps: []string{"a", "b", "c"}})
	if err != nil {
		t.Fatal(err)
	}
	if w.calls["b"] != 2 || w.calls["c"] != 1 || len(w.undone) != 0 {
		t.Fatalf("calls %v, undone %v", w.calls, w.undone)
	}
	if s := statuses(st); s["a"] != StatusDone || s["b"] != StatusDone || s["c"] != StatusDone || st.Steps[1].Attempts != 2 || st.Writes != 3 {
		t.Fatalf("steps %v, b attempts %d, writes %d", s, st.Steps[1].Attempts, st.Writes)
	}
}

// Skip marks the failed step skipped and goes on without undoing anything.
func TestEnginePauseSkip(t *testing.T) {
	env, w := newEngineEnv(t, map[string]int{"b": -1})
	decideWhenPaused(t, env, UpdateSkip)
	st, err := runEngine(t, env, engineTestInput{Policy: PolicyPause, Steps: []string{"a", "b", "c"}})
	if err != nil {
		t.Fatal(err)
	}
	if s := statuses(st); s["a"] != StatusDone || s["b"] != StatusSkipped || s["c"] != StatusDone || len(w.undone) != 0 {
		t.Fatalf("steps %v, undone %v", s, w.undone)
	}
}

// Policy fail passes the step's error through and leaves changes in place.
func TestEnginePolicyFail(t *testing.T) {
	env, w := newEngineEnv(t, map[string]int{"b": -1})
	_, err := runEngine(t, env, engineTestInput{Policy: PolicyFail, Steps: []string{"a", "b"}})
	if app := appError(t, err); app.Type() != "TestRefused" || len(w.undone) != 0 {
		t.Fatalf("error %s, undone %v", app.Type(), w.undone)
	}
}

// A workflow without undo (Renewal) stops where it is on abort, with its
// own text, and undoes nothing.
func TestEngineAbortWithoutUndo(t *testing.T) {
	env, w := newEngineEnv(t, map[string]int{"b": -1})
	decideWhenPaused(t, env, UpdateAbort)
	_, err := runEngine(t, env, engineTestInput{Policy: PolicyPause, Steps: []string{"a", "b"}, NoUndo: true})
	if app := appError(t, err); app.Type() != ErrAborted || app.Message() != "test run stopped at b" || len(w.undone) != 0 {
		t.Fatalf("error %s %q, undone %v", app.Type(), app.Message(), w.undone)
	}
}

// Cancelling a paused run undoes its changes and ends cancelled.
func TestEngineCancelCompensates(t *testing.T) {
	env, w := newEngineEnv(t, map[string]int{"b": -1})
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Minute)
	_, err := runEngine(t, env, engineTestInput{Policy: PolicyPause, Steps: []string{"a", "b"}})
	var ce *temporal.CanceledError
	var why string
	if !errors.As(err, &ce) || ce.Details(&why) != nil || why != "test run cancelled; 1 change(s) undone" || !slices.Equal(w.undone, []string{"a"}) {
		t.Fatalf("error %v (%q), undone %v", err, why, w.undone)
	}
}

// verifyRounds waits 1s, 2s, 4s … (doubling, at most 5m) on durable
// timers, and stops before a wait that would reach the deadline.
func TestEngineVerifyBackoff(t *testing.T) {
	cases := []struct {
		name               string
		deadline, interval time.Duration
		passAt             int
		wantRounds         int
		wantDone           bool
		wantWaits          []time.Duration
	}{
		{"passes at round 4", time.Hour, time.Second, 4, 4, true, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}},
		{"deadline", 5 * time.Second, time.Second, 0, 3, false, []time.Duration{time.Second, 2 * time.Second}},
		{"capped at 5m", time.Hour, 2 * time.Minute, 5, 5, true, []time.Duration{2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			s.SetLogger(engineQuietLogger{})
			env := s.NewTestWorkflowEnvironment()
			type result struct {
				Rounds int
				Done   bool
				Waits  []time.Duration
			}
			wf := func(ctx workflow.Context) (result, error) {
				e := &engine{}
				var at []time.Time
				n, done, err := e.verifyRounds(ctx, c.deadline, c.interval, func(round int) (bool, error) {
					at = append(at, workflow.Now(ctx))
					return round == c.passAt, nil
				})
				var waits []time.Duration
				for i := 1; i < len(at); i++ {
					waits = append(waits, at[i].Sub(at[i-1]))
				}
				return result{n, done, waits}, err
			}
			env.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{Name: "verifyRounds"})
			env.ExecuteWorkflow("verifyRounds")
			var r result
			if err := env.GetWorkflowResult(&r); err != nil {
				t.Fatal(err)
			}
			if r.Rounds != c.wantRounds || r.Done != c.wantDone || !slices.Equal(r.Waits, c.wantWaits) {
				t.Fatalf("rounds %d done %v waits %v; want %d %v %v", r.Rounds, r.Done, r.Waits, c.wantRounds, c.wantDone, c.wantWaits)
			}
		})
	}
}

// engineQuietLogger drops the test environment's log lines.
type engineQuietLogger struct{}

func (engineQuietLogger) Debug(string, ...any) {}
func (engineQuietLogger) Info(string, ...any)  {}
func (engineQuietLogger) Warn(string, ...any)  {}
func (engineQuietLogger) Error(string, ...any) {}
