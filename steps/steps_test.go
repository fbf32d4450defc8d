package steps

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// fakeCaller answers each activity from results (by name, in order) and
// logs the calls.
type fakeCaller struct {
	now     time.Time
	calls   []string
	results map[string][]any
	undone  []contract.UndoRecord
	undoErr error
	slept   []time.Duration
}

type fakeFuture struct {
	v   any
	err error
}

func (f fakeFuture) Get(p any) error {
	if f.err != nil || p == nil || f.v == nil {
		return f.err
	}
	reflect.ValueOf(p).Elem().Set(reflect.ValueOf(f.v))
	return nil
}

func (c *fakeCaller) next(name string) Future {
	c.calls = append(c.calls, name)
	rs := c.results[name]
	if len(rs) == 0 {
		return fakeFuture{err: errors.New("unexpected call " + name)}
	}
	c.results[name] = rs[1:]
	if err, ok := rs[0].(error); ok {
		return fakeFuture{err: err}
	}
	return fakeFuture{v: rs[0]}
}

func (c *fakeCaller) OnPrem(name string, _ any) Future     { return c.next(name) }
func (c *fakeCaller) CloudRead(name string, _ any) Future  { return c.next(name) }
func (c *fakeCaller) CloudWrite(name string, _ any) Future { return c.next(name) }
func (c *fakeCaller) Plan(contract.PlanInput) Future       { return c.next("PlanSetup") }
func (c *fakeCaller) Undo(_ string, r contract.UndoRecord) error {
	c.undone = append(c.undone, r)
	return c.undoErr
}
func (c *fakeCaller) Sleep(d time.Duration) error {
	c.slept = append(c.slept, d)
	c.now = c.now.Add(d)
	return nil
}
func (c *fakeCaller) Now() time.Time  { return c.now }
func (c *fakeCaller) Cancelled() bool { return false }

func newRun(c *fakeCaller, mode plan.Mode, actions ...plan.Action) *Run {
	var states []*StepState
	var writes int
	var notes []string
	var verdicts map[string]string
	return &Run{C: c, Shared: &Shared{L: NewLedger(&states, &writes, &notes), OneCall: true, Verification: &verdicts,
		Plan: contract.PlanOutput{Desired: plan.Desired{Mode: mode}, Actions: actions}}}
}

// run admits and executes one action as the engine does.
func run(t *testing.T, r *Run, a plan.Action) error {
	t.Helper()
	s := Lookup(a.Step)
	if !s.Admit(r, a) {
		return nil
	}
	st := r.L.State(string(a.Step))
	st.Status = StatusRunning
	err := s.Execute(r, a)
	if err == nil && st.Status == StatusRunning {
		st.Status = StatusDone
	}
	return err
}

// Legacy path: the keys and the planned SPNs go in one call; the SPN step
// is then done and the SPN undo record belongs to it (compensation marks
// the step it reverses).
func TestKeyCredentialsWritesSPNsInOnePatch(t *testing.T) {
	spnUndo := contract.UndoRecord{System: contract.SystemEntra, Kind: contract.UndoRemoveSPNs}
	keyUndo := contract.UndoRecord{System: contract.SystemEntra, Kind: contract.UndoRemoveKeys}
	c := &fakeCaller{results: map[string][]any{"EnsureFirstPartyServicePrincipal": {contract.StepResult{Outcome: contract.Updated, Undo: []contract.UndoRecord{keyUndo, spnUndo}}}}}
	keys := plan.Action{Step: plan.StepKeys, Change: plan.ChangeUpdate}
	spns := plan.Action{Step: plan.StepSPNs, Change: plan.ChangeUpdate}
	r := newRun(c, plan.ModeLegacyFirstParty, keys, spns)
	r.Plan.Desired.SPNs = []string{"https://mail.contoso.com/"}
	for _, a := range r.Plan.Actions {
		if err := run(t, r, a); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(c.calls, []string{"EnsureFirstPartyServicePrincipal"}) {
		t.Fatalf("calls %v: want one PATCH", c.calls)
	}
	if st := r.L.Lookup(string(plan.StepSPNs)); st.Status != StatusDone || st.Detail != "written with the keys in one PATCH" {
		t.Fatalf("SPN step %+v", st)
	}
	if r.L.Undo[0].Step != string(plan.StepKeys) || r.L.Undo[1].Step != string(plan.StepSPNs) {
		t.Fatalf("undo entries %+v", r.L.Undo)
	}
}

// The legacy key is removed only after a verification of this run; the
// second verification is then not needed.
func TestRemoveLegacyKeyOnlyAfterVerification(t *testing.T) {
	c := &fakeCaller{results: map[string][]any{}}
	r := newRun(c, plan.ModeDedicatedApp,
		plan.Action{Step: plan.StepRemoveLegacyKey, Change: plan.ChangeUpdate},
		plan.Action{Step: plan.StepVerifyAfterRemoval, Change: plan.ChangeCheck})
	r.SkipSteps = []string{string(plan.StepVerify)}
	for _, a := range append([]plan.Action{{Step: plan.StepVerify, Change: plan.ChangeCheck}}, r.Plan.Actions...) {
		if err := run(t, r, a); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.calls) != 0 || r.L.Status(string(plan.StepRemoveLegacyKey)) != StatusSkipped || r.L.Status(string(plan.StepVerifyAfterRemoval)) != StatusNotNeeded {
		t.Fatalf("calls %v, removal %s, verify after %s", c.calls, r.L.Status(string(plan.StepRemoveLegacyKey)), r.L.Status(string(plan.StepVerifyAfterRemoval)))
	}
}

// A failed verification after the removal puts the removed keys back at
// once (in reverse), drops their records and says so.
func TestRemoveLegacyKeyRestoresOnFailedVerification(t *testing.T) {
	k1 := contract.UndoRecord{System: contract.SystemEntra, Kind: contract.UndoRestoreKeys, Name: "k1"}
	k2 := contract.UndoRecord{System: contract.SystemEntra, Kind: contract.UndoRestoreKeys, Name: "k2"}
	fail := contract.VerifyResult{Detail: "401"}
	c := &fakeCaller{now: time.Unix(0, 0), results: map[string][]any{
		"RemoveLegacyKeys": {contract.StepResult{Outcome: contract.Removed, Undo: []contract.UndoRecord{k1, k2}}},
		"VerifyFromOnPrem": {fail, fail}, "VerifyFromOnline": {fail, fail},
	}}
	a := plan.Action{Step: plan.StepRemoveLegacyKey, Change: plan.ChangeUpdate}
	r := newRun(c, plan.ModeDedicatedApp, a)
	r.L.State(string(plan.StepVerify)).Status = StatusDone
	r.VerifyDeadline, r.VerifyInterval = 90*time.Second, time.Minute
	err := run(t, r, a)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != contract.ErrVerification {
		t.Fatalf("error %v", err)
	}
	if len(c.undone) != 2 || c.undone[0].Name != "k2" || c.undone[1].Name != "k1" || len(r.L.Undo) != 0 {
		t.Fatalf("undone %+v, left %+v", c.undone, r.L.Undo)
	}
	if st := r.L.Lookup(string(plan.StepVerifyAfterRemoval)); st.Status != StatusFailed || st.Attempts != 1 {
		t.Fatalf("verify-after-removal %+v", st)
	}
	if !slices.Equal(c.slept, []time.Duration{time.Minute}) {
		t.Fatalf("slept %v", c.slept)
	}
}

// Every registered step decides and acts, once, and the plan has one
// action per registered step, in the registry's order.
func TestRegistryBuildsThePlan(t *testing.T) {
	seen := map[plan.Step]bool{}
	for _, s := range Registry {
		if s.Exec == nil || s.Decide == nil || seen[s.Name] {
			t.Errorf("step %s: exec %v, decide %v, seen before %v", s.Name, s.Exec != nil, s.Decide != nil, seen[s.Name])
		}
		seen[s.Name] = true
	}
	got := BuildPlan(plan.Desired{Mode: plan.ModeDedicatedApp}, plan.Observed{}, time.Unix(0, 0))
	if len(got) != len(Registry) {
		t.Fatalf("%d actions for %d steps", len(got), len(Registry))
	}
	for i, a := range got {
		if a.Step != Registry[i].Name || a.Reason == "" {
			t.Errorf("action %d: %s (%q), want step %s with a reason", i, a.Step, a.Reason, Registry[i].Name)
		}
	}
	// The documented steps the plan package's tests pin keep their
	// relative order.
	i := 0
	for _, r := range Registry {
		if i < len(plan.Steps) && r.Name == plan.Steps[i] {
			i++
		}
	}
	if i != len(plan.Steps) {
		t.Fatalf("the registry lacks %s, or holds it out of the documented order", plan.Steps[i])
	}
}

// TestGraphOfTheFullPlan: in a plan of every registered step, the first
// steps wait for nothing, the application's halves for what they need,
// the setting override for everything it switches over to, and
// verification and what follows it for every earlier step.
func TestGraphOfTheFullPlan(t *testing.T) {
	var actions []plan.Action
	for _, s := range Registry {
		actions = append(actions, plan.Action{Step: s.Name})
	}
	deps := Graph(actions)
	names := func(i int) []string {
		var out []string
		for _, j := range deps[i] {
			out = append(out, string(actions[j].Step))
		}
		return out
	}
	want := map[plan.Step][]string{
		plan.StepAuthServers:         nil,
		plan.StepPartnerApp:          nil,
		plan.StepExportCert:          nil,
		plan.StepDedicatedApp:        nil,
		plan.StepKeys:                {"export-certificate", "dedicated-app"},
		plan.StepSPNs:                {"key-credentials"},
		plan.StepOnPremAuthServerApp: {"auth-servers", "dedicated-app"},
		plan.StepIOCOnPrem:           nil,
		plan.StepIOCOnline:           nil,
		plan.StepSettingOverride:     {"partner-application", "dedicated-app", "key-credentials", "service-principal-names", "auth-server-app-id", "ioc-onprem-to-online", "ioc-online-to-onprem"},
		plan.StepAvailability:        nil,
	}
	for i, a := range actions {
		got := names(i)
		if w, ok := want[a.Step]; ok {
			if !slices.Equal(got, w) {
				t.Errorf("%s waits for %v, want %v", a.Step, got, w)
			}
			continue
		}
		if len(got) != i { // verification, the clean-up and the second verification
			t.Errorf("%s waits for %v, want all %d earlier steps", a.Step, got, i)
		}
	}
	// A recorded plan in another order stays runnable: only earlier
	// actions count, so a step never waits for a later one.
	rev := slices.Clone(actions)
	slices.Reverse(rev)
	for i, d := range Graph(rev) {
		for _, j := range d {
			if j >= i {
				t.Errorf("reversed plan: %s waits for later action %s", rev[i].Step, rev[j].Step)
			}
		}
	}
}

// TestRunKeepsItsRecordedGraph: a run follows the graph recorded with its
// plan, not the one today's steps would give; a malformed one (waiting
// for a later action) or none falls back to today's.
func TestRunKeepsItsRecordedGraph(t *testing.T) {
	actions := []plan.Action{{Step: plan.StepAuthServers}, {Step: plan.StepPartnerApp}, {Step: plan.StepVerify}}
	r := newRun(&fakeCaller{}, plan.ModeDedicatedApp, actions...)
	today := Graph(actions)
	if got := r.Graph(); !reflect.DeepEqual(got, today) {
		t.Fatalf("no recorded graph: %v, want today's %v", got, today)
	}
	recorded := [][]int{nil, {0}, {1}} // one after another, as an older release planned
	r.Plan.After = recorded
	if got := r.Graph(); !reflect.DeepEqual(got, recorded) {
		t.Fatalf("recorded graph: %v, want %v", got, recorded)
	}
	r.Plan.After = [][]int{{1}, nil, nil}
	if got := r.Graph(); !reflect.DeepEqual(got, today) {
		t.Fatalf("malformed recorded graph: %v, want today's %v", got, today)
	}
}
