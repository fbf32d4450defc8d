package workflows

import (
	"errors"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/hybridflow/hybridflow/internal/config"
)

// Rollout query and updates.
const (
	QueryProgress        = "progress"
	UpdatePauseRollout   = "pause-rollout"  // stop starting new tenants
	UpdateResumeRollout  = "resume-rollout" // start them again
	SignalTenantState    = "tenant-state"   // a child reports pause / resume
	DefaultConcurrency   = 10
	inventoryPageSize    = 100
	deferredRetryBackoff = 30 * time.Second
)

// inventoryContentHash versions the rollout's keeping of its inventory
// file's SHA-256 (version 1): earlier runs sent no hash with their page
// requests.
const inventoryContentHash = "inventory-content-hash"

// DefaultContinueAsNewEvery is how many tenants one rollout run starts
// before it continues as new. Each tenant costs about eight events in the
// rollout's history (child initiated, started, completed, a signal or two,
// and the workflow tasks around them), so 500 tenants stay near 4,000
// events: well under Temporal's 10,240-event warning and 51,200-event limit
// (docs/design.md, "How a rollout behaves"), with room for signals and updates.
const DefaultContinueAsNewEvery = 500

// RolloutWorkflowID names a rollout; the CLI derives it from the inventory
// so starting the same rollout twice attaches to the running one.
func RolloutWorkflowID(name string) string { return "hybridflow/rollout/" + name }

// PlanWorkflowID keeps dry runs apart from real setups.
func PlanWorkflowID(tenantID string) string { return "hybridflow/plan/" + strings.ToLower(tenantID) }

// RolloutInput is a rollout request. Large inventories travel by
// reference (InventoryPath, read page by page by an activity); small ones
// may be inline.
type RolloutInput struct {
	Name          string          `json:"name"`
	InventoryPath string          `json:"inventory_path,omitempty"`
	Tenants       []config.Tenant `json:"tenants,omitempty"`
	Concurrency   int             `json:"concurrency,omitempty"`
	Setup         SetupOptions    `json:"setup"`
	// ContinueAsNewEvery overrides DefaultContinueAsNewEvery (tests).
	ContinueAsNewEvery int `json:"continue_as_new_every,omitempty"`
	// Carry is the state handed over by continue-as-new.
	Carry *RolloutCarry `json:"carry,omitempty"`
}

// TenantOutcome is a tenant that needs attention (or did, for history).
type TenantOutcome struct {
	TenantID  string `json:"tenant_id"`
	State     string `json:"state"`
	Step      string `json:"step,omitempty"`
	Error     string `json:"error,omitempty"`
	ErrorType string `json:"error_type,omitempty"`
}

// RolloutCarry survives continue-as-new.
type RolloutCarry struct {
	Next      int             `json:"next"` // index of the next tenant to start
	Total     int             `json:"total"`
	Counts    map[string]int  `json:"counts"`
	Attention []TenantOutcome `json:"attention,omitempty"` // paused / failed / aborted tenants
	Started   time.Time       `json:"started"`
	Runs      int             `json:"runs"` // continue-as-new generations so far
	Paused    bool            `json:"paused,omitempty"`
	// Deferred tenants were busy with another setup; they are retried.
	Deferred []config.Tenant `json:"deferred,omitempty"`
	// Carried are children paused for an operator when the previous run
	// continued as new: their futures stayed behind, so their ends arrive
	// as tenant-state signals and are counted from those.
	Carried []string `json:"carried,omitempty"`
	// Signals counts tenant-state signals received over all runs.
	Signals int `json:"signals"`
	// StartedTotal counts child starts over all runs (a tenant deferred
	// because another setup was running is started once, later).
	StartedTotal int `json:"started_total"`
	// InventorySHA256 is the inventory file's SHA-256 when the rollout read
	// its first page of it; every later page must come from a file with
	// the same hash.
	InventorySHA256 string `json:"inventory_sha256,omitempty"`
}

// RolloutProgress is what the progress query returns.
type RolloutProgress struct {
	Name           string          `json:"name"`
	Total          int             `json:"total"`
	Done           int             `json:"done"`
	Running        int             `json:"running"`
	Pending        int             `json:"pending"`
	Counts         map[string]int  `json:"counts"`
	Attention      []TenantOutcome `json:"attention,omitempty"`
	PerMinute      float64         `json:"per_minute"`
	ETA            time.Duration   `json:"eta"`
	Elapsed        time.Duration   `json:"elapsed"`
	Paused         bool            `json:"paused"`
	Finished       bool            `json:"finished"`
	ContinuedAsNew int             `json:"continued_as_new"`
	Signals        int             `json:"signals"`
	DryRun         bool            `json:"dry_run,omitempty"`
}

type child struct {
	tenant string
	future workflow.ChildWorkflowFuture
}

type rollout struct {
	in RolloutInput
	// deferTimer paces retries of deferred tenants.
	deferTimer workflow.Future
	carry      RolloutCarry
	running    []child
	deferred   []config.Tenant // another setup of the tenant was running
	inventory  inventoryPager
	finished   bool
	// This run's loop: tenant-state signals, the tenants it started (by ID,
	// for lookups only, never iterated), how many, and whether the
	// inventory has no more.
	signals        workflow.ReceiveChannel
	byID           map[string]config.Tenant
	startedThisRun int
	exhausted      bool
}

// Rollout sets up every tenant of an inventory with bounded concurrency,
// one Setup child per tenant under its deterministic ID, and continues as
// new before its history grows large. Failed tenants pause in their own
// workflow (by default) and are listed for the operator; the rollout goes on.
func Rollout(ctx workflow.Context, in RolloutInput) (RolloutProgress, error) {
	r := &rollout{in: in}
	if err := r.setup(ctx); err != nil {
		return RolloutProgress{}, err
	}
	return r.run(ctx)
}

func (r *rollout) setup(ctx workflow.Context) error {
	endKnown := knowsItsEnd(ctx)
	if r.in.Concurrency <= 0 {
		r.in.Concurrency = DefaultConcurrency
	}
	if r.in.ContinueAsNewEvery <= 0 {
		r.in.ContinueAsNewEvery = DefaultContinueAsNewEvery
	}
	if r.in.Carry != nil {
		r.carry = *r.in.Carry
		r.deferred, r.carry.Deferred = r.carry.Deferred, nil
		if len(r.deferred) > 0 {
			r.deferTimer = workflow.NewTimer(ctx, deferredRetryBackoff)
		}
	} else {
		r.carry = RolloutCarry{Counts: map[string]int{}, Started: workflow.Now(ctx)}
	}
	r.inventory = inventoryPager{path: r.in.InventoryPath, inline: r.in.Tenants, next: &r.carry.Next, total: &r.carry.Total, endKnown: endKnown,
		sha: &r.carry.InventorySHA256, hashed: func(ctx workflow.Context) bool {
			// Runs before this change neither sent nor kept the file's hash.
			return workflow.GetVersion(ctx, inventoryContentHash, workflow.DefaultVersion, 1) >= 1
		}}
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (RolloutProgress, error) { return r.progress(ctx), nil }); err != nil {
		return err
	}
	for _, u := range []struct {
		name   string
		paused bool
	}{{UpdatePauseRollout, true}, {UpdateResumeRollout, false}} {
		paused := u.paused
		if err := workflow.SetUpdateHandler(ctx, u.name, func(ctx workflow.Context) (RolloutProgress, error) {
			r.carry.Paused = paused
			return r.progress(ctx), nil
		}); err != nil {
			return err
		}
	}
	return nil
}

func (r *rollout) progress(ctx workflow.Context) RolloutProgress {
	p := RolloutProgress{Name: r.in.Name, Total: r.carry.Total, Counts: map[string]int{}, Paused: r.carry.Paused,
		Running: len(r.running) + len(r.carry.Carried), Finished: r.finished, ContinuedAsNew: r.carry.Runs, DryRun: r.in.Setup.DryRun,
		Signals: r.carry.Signals}
	for k, v := range r.carry.Counts {
		p.Counts[k] = v
		p.Done += v
	}
	p.Pending = max(p.Total-p.Done-p.Running, 0)
	for _, a := range r.carry.Attention {
		// A pause is news only while its setup is still ours to wait for;
		// signals and child completions are not ordered, so a pause may be
		// reported after the end was already counted.
		if a.State == StatePaused && !r.isRunning(a.TenantID) && indexOf(r.carry.Carried, a.TenantID) < 0 {
			continue
		}
		p.Attention = append(p.Attention, a)
	}
	p.Elapsed = workflow.Now(ctx).Sub(r.carry.Started)
	if p.Elapsed > 0 && p.Done > 0 {
		p.PerMinute = float64(p.Done) / p.Elapsed.Minutes()
		if left := p.Total - p.Done; left > 0 {
			p.ETA = time.Duration(float64(left) / p.PerMinute * float64(time.Minute))
		}
	}
	return p
}

func (r *rollout) start(ctx workflow.Context, t config.Tenant) {
	if r.in.Setup.FailurePolicy != PolicyCompensate {
		// Cancelling the rollout stops new starts but lets running setups
		// finish: their context must not inherit the cancellation.
		ctx, _ = workflow.NewDisconnectedContext(ctx)
	}
	id := SetupWorkflowID(t.ID)
	if r.in.Setup.DryRun {
		id = PlanWorkflowID(t.ID)
	}
	in := InputFromTenant(t, r.in.Setup)
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            id,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		// Setups outlive a rollout that is terminated; the rollout drains
		// its children before continuing as new.
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		TypedSearchAttributes: SetupStartAttributes(in),
		StaticSummary:         TenantSummary(t),
	})
	f := workflow.ExecuteChildWorkflow(cctx, Setup, in)
	r.running = append(r.running, child{tenant: t.ID, future: f})
	r.carry.StartedTotal++
}

// outcome folds a finished child into the counts.
func (r *rollout) outcome(ctx workflow.Context, c child, t config.Tenant) {
	var res SetupResult
	err := c.future.Get(ctx, &res)
	r.forgetAttention(c.tenant)
	switch {
	case err == nil && res.State == StateUnverified:
		// Finished, but verification was skipped: the operator should know.
		r.carry.Counts[StateUnverified]++
		r.carry.Attention = append(r.carry.Attention, TenantOutcome{TenantID: c.tenant, State: StateUnverified, Step: "verify", Error: "verification was skipped"})
	case err == nil && res.State != "":
		r.carry.Counts[res.State]++
	case err == nil:
		r.carry.Counts[StateVerified]++
	case isAlreadyStarted(err) && ctx.Err() == nil:
		// Another setup of this tenant is running (a manual one, or another
		// rollout): never run two at once; try again later.
		r.deferred = append(r.deferred, t)
		if r.deferTimer == nil || r.deferTimer.IsReady() {
			r.deferTimer = workflow.NewTimer(ctx, deferredRetryBackoff)
		}
	default:
		state := StateFailed
		var ce *temporal.CanceledError
		if errors.As(err, &ce) || res.State == StateAborted {
			state = StateAborted
		}
		msg, typ := describeError(err)
		r.carry.Counts[state]++
		r.carry.Attention = append(r.carry.Attention, TenantOutcome{TenantID: c.tenant, State: state, Step: res.CurrentStep, Error: msg, ErrorType: typ})
	}
}

func isAlreadyStarted(err error) bool {
	var e *temporal.ChildWorkflowExecutionAlreadyStartedError
	return errors.As(err, &e)
}

func (r *rollout) forgetAttention(tenant string) {
	out := r.carry.Attention[:0]
	for _, a := range r.carry.Attention {
		if a.TenantID != tenant {
			out = append(out, a)
		}
	}
	r.carry.Attention = out
}

// onTenantState records a child's pause (so the progress query lists it)
// and clears it when the child resumes.
func (r *rollout) onTenantState(o TenantOutcome) {
	r.carry.Signals++
	switch o.State {
	case StatePaused:
		// A pause reported after its child already ended (signals and the
		// child's completion are not ordered) is stale.
		if !r.isRunning(o.TenantID) && indexOf(r.carry.Carried, o.TenantID) < 0 {
			return
		}
		r.forgetAttention(o.TenantID)
		r.carry.Attention = append(r.carry.Attention, o)
	case StateRunning, StateCompensating:
		r.forgetAttention(o.TenantID)
	default:
		// A final state. Children of this run are counted from their
		// futures; only a carried child is counted here.
		i := indexOf(r.carry.Carried, o.TenantID)
		if i < 0 {
			if !r.isRunning(o.TenantID) {
				r.forgetAttention(o.TenantID) // its future was counted already
			}
			return
		}
		r.carry.Carried = append(r.carry.Carried[:i], r.carry.Carried[i+1:]...)
		r.forgetAttention(o.TenantID)
		if o.State == "" {
			o.State = StateFailed
		}
		r.carry.Counts[o.State]++
		if o.State == StateAborted || o.State == StateFailed || o.State == StateUnverified {
			r.carry.Attention = append(r.carry.Attention, o)
		}
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func (r *rollout) isRunning(tenant string) bool {
	for _, c := range r.running {
		if c.tenant == tenant {
			return true
		}
	}
	return false
}

// pausedRunning lists running children known to wait for an operator.
func (r *rollout) pausedRunning() []string {
	var out []string
	for _, c := range r.running {
		for _, a := range r.carry.Attention {
			if a.TenantID == c.tenant && a.State == StatePaused {
				out = append(out, c.tenant)
				break
			}
		}
	}
	return out
}

// run starts tenants and waits for them until the inventory is done, the
// rollout is cancelled, or it is time to continue as new.
func (r *rollout) run(ctx workflow.Context) (RolloutProgress, error) {
	r.signals = workflow.GetSignalChannel(ctx, SignalTenantState)
	r.byID = map[string]config.Tenant{}
	for ctx.Err() == nil {
		if err := r.startTenants(ctx); err != nil {
			return r.progress(ctx), err
		}
		if r.allDone() {
			break
		}
		if r.timeToContinueAsNew() {
			if err := r.continueAsNew(ctx); err != nil {
				return RolloutProgress{}, err
			}
		}
		if r.wait(ctx) {
			break
		}
	}
	if ctx.Err() != nil {
		return r.cancelled(ctx)
	}
	r.finished = true
	return r.progress(ctx), nil
}

// startTenants starts tenants while there is room, work and no pause, and
// stops at the continue-as-new threshold so the next run takes over.
func (r *rollout) startTenants(ctx workflow.Context) error {
	for !r.carry.Paused && len(r.running) < r.in.Concurrency && r.startedThisRun < r.in.ContinueAsNewEvery {
		t, ok, err := r.nextToStart(ctx)
		if err != nil || !ok {
			return err
		}
		r.byID[t.ID] = t
		r.start(ctx, t)
		r.startedThisRun++
	}
	r.exhausted = r.exhausted || r.inventory.doneAtShare(r.startedThisRun, r.in.ContinueAsNewEvery)
	return nil
}

// nextToStart is a deferred tenant whose wait is over, else the
// inventory's next tenant; ok is false when there is neither.
func (r *rollout) nextToStart(ctx workflow.Context) (config.Tenant, bool, error) {
	if len(r.deferred) > 0 && r.deferTimer != nil && r.deferTimer.IsReady() {
		t := r.deferred[0]
		r.deferred = r.deferred[1:]
		return t, true, nil
	}
	if r.exhausted {
		return config.Tenant{}, false, nil
	}
	t, ok, err := r.inventory.nextTenant(ctx)
	if err != nil || ok {
		return t, ok, err
	}
	r.exhausted = true
	return r.nextToStart(ctx)
}

// allDone: nothing runs, waits or is left to start, and no carried child
// is still to report its end.
func (r *rollout) allDone() bool {
	return len(r.running) == 0 && r.exhausted && len(r.deferred) == 0 && len(r.carry.Carried) == 0
}

// timeToContinueAsNew: this run started its share and every child still
// running waits for an operator, while work remains.
func (r *rollout) timeToContinueAsNew() bool {
	return len(r.running) == len(r.pausedRunning()) && r.startedThisRun >= r.in.ContinueAsNewEvery &&
		!(r.exhausted && len(r.deferred) == 0 && len(r.running) == 0)
}

// continueAsNew hands the rollout to a new run, carrying its state and its
// paused children; nil when a signal drained first shows a child resumed.
func (r *rollout) continueAsNew(ctx workflow.Context) error {
	// Drain the signals first: one may say a paused child resumed.
	for {
		var o TenantOutcome
		if !r.signals.ReceiveAsync(&o) {
			break
		}
		r.onTenantState(o)
	}
	if len(r.running) != len(r.pausedRunning()) {
		return nil
	}
	r.carry.Runs++
	r.carry.Deferred = r.deferred
	// Paused children wait for a person; hand them over instead of
	// holding every other tenant back.
	r.carry.Carried = append(r.carry.Carried, r.pausedRunning()...)
	next := r.in
	carry := r.carry
	next.Carry = &carry
	workflow.GetLogger(ctx).Info("continuing as new", "next", r.carry.Next, "total", r.carry.Total, "runs", r.carry.Runs, "carried", len(r.carry.Carried))
	return workflow.NewContinueAsNewError(ctx, Rollout, next)
}

// wait blocks until a child finishes, a tenant reports, the deferral timer
// fires, an update (pause/resume) arrives or the rollout is cancelled;
// stop says the loop must end (cancelled while paused).
func (r *rollout) wait(ctx workflow.Context) (stop bool) {
	sel := workflow.NewSelector(ctx)
	for i := range r.running {
		c := r.running[i]
		sel.AddFuture(c.future, func(workflow.Future) {
			r.running = removeChild(r.running, c.tenant)
			r.outcome(ctx, c, r.byID[c.tenant])
		})
	}
	sel.AddReceive(r.signals, func(ch workflow.ReceiveChannel, _ bool) {
		var o TenantOutcome
		ch.Receive(ctx, &o)
		r.onTenantState(o)
	})
	sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
	if r.deferTimer != nil && !r.deferTimer.IsReady() {
		sel.AddFuture(r.deferTimer, func(workflow.Future) {})
	}
	if r.carry.Paused {
		// Only an update, a signal or a finishing child can change
		// anything; re-check after each.
		if err := workflow.Await(ctx, func() bool { return !r.carry.Paused || sel.HasPending() }); err != nil {
			return true
		}
		if !r.carry.Paused && !sel.HasPending() {
			return false
		}
	}
	sel.Select(ctx)
	return false
}

// cancelled ends a cancelled rollout: no new starts. Running setups finish
// (or, under the compensate policy, were cancelled with it and undo their
// changes); it waits for them so the summary is complete.
func (r *rollout) cancelled(ctx workflow.Context) (RolloutProgress, error) {
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	for len(r.running) > 0 {
		c := r.running[0]
		r.running = r.running[1:]
		r.outcome(dctx, c, r.byID[c.tenant])
	}
	r.finished = true
	return r.progress(dctx), temporal.NewCanceledError("rollout cancelled: no new tenants were started; running setups finished or compensated")
}

func removeChild(cs []child, tenant string) []child {
	out := cs[:0]
	for _, c := range cs {
		if c.tenant != tenant {
			out = append(out, c)
		}
	}
	return out
}
