package activities

// Lync Server 2013 / Skype for Business Edge integration with Exchange
// Online, as Microsoft documents it for Outlook Web App IM and presence,
// on the hybridflow-lync-<site> task queue:
//
//  1. Set-CsAccessEdgeConfiguration -AllowFederatedUsers $True (shared SIP
//     address space);
//  2. the "Exchange Online" hosting provider with exactly the documented
//     settings (a ProxyFqdn cannot change in place: remove and re-create);
//  3. wait until Get-CsManagementStoreReplicationStatus shows every replica
//     up to date (polled with heartbeats, bounded);
//  4. confirm that the Edge Server has the provider, from the site's
//     internal server: the Central Management store holds the documented
//     provider, and the Edge's replica (every replica, when no Edge FQDN is
//     named) reports UpToDate with a snapshot created after the provider
//     was written (LastUpdateCreation later than before the write);
//  5. report whether an external access policy enables communications with
//     remote users (users signing in to IM from Outlook Web App need one).
//
// Step 4 does not run Get-CsHostingProvider -LocalStore: that reads the
// local replica of the machine the shell runs on, and the site's shell runs
// on an internal server, not on the Edge.
//
// Every write step is check-then-act and returns undo records that restore
// exactly what it found. A step that writes first remembers what it found
// in its heartbeat details, so that an attempt retried after a worker crash
// between the write and the result still returns the original state for
// compensation instead of "unchanged".

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// LyncHosts hands out the PowerShell host (Lync Server Management Shell)
// of a tenant's Lync deployment.
type LyncHosts interface {
	Lync(t Target) exchange.Runner
}

// Lync runs the Lync Server / Skype for Business steps next to the Lync
// deployment of a site.
type Lync struct {
	Hosts LyncHosts
}

// The documented hosting provider, the Lync steps and the Lync types are
// the plan package's (internal/plan/lync.go): the Lync decisions are made
// there. These names keep the activities' callers unchanged.
const (
	LyncProviderIdentity  = plan.LyncProviderIdentity
	LyncVerificationLevel = plan.LyncVerificationLevel

	LyncStepFederation      = plan.LyncStepFederation
	LyncStepHostingProvider = plan.LyncStepHostingProvider
	LyncStepReplication     = plan.LyncStepReplication
	LyncStepEdgeStore       = plan.LyncStepEdgeStore
	LyncStepExternalAccess  = plan.LyncStepExternalAccess
)

// LyncSteps is every Lync step in order.
var LyncSteps = plan.LyncSteps

type (
	LyncHostingProvider      = plan.LyncHostingProvider
	LyncReplica              = plan.LyncReplica
	LyncExternalAccessPolicy = plan.LyncExternalAccessPolicy
	LyncObserved             = plan.LyncObserved
)

// lyncNewCommand is New-CsHostingProvider with every setting of p.
func lyncNewCommand(p LyncHostingProvider) exchange.Command {
	return cmd("New-CsHostingProvider", "Identity", p.Identity, "Enabled", p.Enabled, "EnabledSharedAddressSpace", p.EnabledSharedAddressSpace,
		"HostsOCSUsers", p.HostsOCSUsers, "ProxyFqdn", p.ProxyFqdn, "IsLocal", p.IsLocal, "VerificationLevel", p.VerificationLevel)
}

func lyncProviderFromRow(r exchange.Row) LyncHostingProvider {
	id := rowString(r, "Identity")
	if id == "" {
		id = rowString(r, "Name")
	}
	return LyncHostingProvider{
		Identity: id, Enabled: rowBool(r, "Enabled"), EnabledSharedAddressSpace: rowBool(r, "EnabledSharedAddressSpace"),
		HostsOCSUsers: rowBool(r, "HostsOCSUsers"), ProxyFqdn: rowString(r, "ProxyFqdn"), IsLocal: rowBool(r, "IsLocal"),
		VerificationLevel: rowString(r, "VerificationLevel"),
	}
}

// lyncFindProvider picks identity out of Get-CsHostingProvider's rows; the
// others are returned too (for "another provider uses this proxy").
func lyncFindProvider(rows []exchange.Row, identity string) (*LyncHostingProvider, []LyncHostingProvider) {
	var mine *LyncHostingProvider
	var others []LyncHostingProvider
	for _, r := range rows {
		p := lyncProviderFromRow(r)
		if strings.EqualFold(p.Identity, identity) && mine == nil {
			mine = &p
			continue
		}
		others = append(others, p)
	}
	return mine, others
}

// DesiredLyncProvider is the hosting provider Microsoft documents for a
// cloud (plan.DesiredLyncProvider).
func DesiredLyncProvider(cloudName, override string) (LyncHostingProvider, []string, error) {
	return plan.DesiredLyncProvider(cloudName, override)
}

// lyncDiscovery is discovery's one batched round trip.
var lyncDiscovery = []exchange.Command{
	cmd("Get-CsAccessEdgeConfiguration"),
	cmd("Get-CsHostingProvider"),
	cmd("Get-CsExternalAccessPolicy"),
	cmd("Get-CsManagementStoreReplicationStatus"),
}

func (a *Lync) runner(t Target) exchange.Runner { return a.Hosts.Lync(t) }

func lyncWhere(t Target) string {
	if t.LyncSite != "" {
		return "Lync site " + t.LyncSite
	}
	return "the Lync deployment of " + t.TenantID
}

// DiscoverLync reads the access edge configuration, the hosting providers,
// replication status and external access policies in one round trip. It
// writes nothing.
func (a *Lync) DiscoverLync(ctx context.Context, t Target) (LyncObserved, error) {
	var o LyncObserved
	what := "discover " + lyncWhere(t)
	res, err := a.runner(t).RunBatch(ctx, lyncDiscovery)
	if err != nil {
		return o, classify(what, err)
	}
	for i, c := range lyncDiscovery {
		rows, err := batchRows(res, i, lyncDiscovery)
		if err != nil {
			if i >= 3 { // replication status is informative here
				o.Notes = append(o.Notes, fmt.Sprintf("%s could not be read: %v", lyncDescribeCommand(c), err))
				continue
			}
			return o, classify(what, err)
		}
		switch i {
		case 0:
			if len(rows) > 0 {
				o.AllowFederatedUsers = rowBool(rows[0], "AllowFederatedUsers")
			}
		case 1:
			o.Provider, o.OtherProviders = lyncFindProvider(rows, LyncProviderIdentity)
		case 2:
			o.ExternalAccess = lyncExternalAccessFromRows(rows)
		case 3:
			o.Replicas = lyncReplicasFromRows(rows)
		}
	}
	return o, nil
}

func lyncDescribeCommand(c exchange.Command) string {
	s := c.Cmdlet
	for _, k := range slices.Sorted(maps.Keys(c.Parameters)) {
		s += " -" + k
	}
	return s
}

func lyncReplicasFromRows(rows []exchange.Row) []LyncReplica {
	out := make([]LyncReplica, 0, len(rows))
	for _, r := range rows {
		out = append(out, LyncReplica{Fqdn: rowString(r, "ReplicaFqdn"), UpToDate: rowBool(r, "UpToDate"),
			LastStatusReport: rowTime(r, "LastStatusReport"), LastUpdateCreation: rowTime(r, "LastUpdateCreation")})
	}
	return out
}

func lyncExternalAccessFromRows(rows []exchange.Row) []LyncExternalAccessPolicy {
	out := make([]LyncExternalAccessPolicy, 0, len(rows))
	for _, r := range rows {
		out = append(out, LyncExternalAccessPolicy{Identity: rowString(r, "Identity"), EnableOutsideAccess: rowBool(r, "EnableOutsideAccess")})
	}
	return out
}

var PlanLync = contract.PlanLync

// BuildLyncPlan says, per Lync step, what a run would change and why
// (plan.BuildLyncPlan's chain of policies).
func BuildLyncPlan(o LyncObserved, want LyncHostingProvider, edge []string) ([]plan.Action, []string) {
	return plan.BuildLyncPlan(o, want, edge)
}

// LyncUndoRecord is the undo record of a Lync change: System lync, Kind,
// Name (the provider's identity), Enabled (the previous
// AllowFederatedUsers) and, for restores, the previous Provider.
type LyncUndoRecord = contract.UndoRecord

// lyncBefore[T] is the state a write step found before its first write, kept
// in heartbeat details across attempts; Baseline is the replication status
// read then (hosting-provider step only).
type lyncBefore[T any] struct {
	Seen     bool          `json:"seen"`
	Value    T             `json:"value"`
	Baseline []LyncReplica `json:"baseline,omitempty"`
}

// lyncEarlier returns what an earlier attempt of this activity found before
// it wrote, if any (ok), without recording anything.
func lyncEarlier[T any](ctx context.Context) (lyncBefore[T], bool) {
	var b lyncBefore[T]
	if !activity.IsActivity(ctx) || !activity.HasHeartbeatDetails(ctx) {
		return lyncBefore[T]{}, false
	}
	if err := activity.GetHeartbeatDetails(ctx, &b); err != nil || !b.Seen {
		return lyncBefore[T]{}, false
	}
	return b, true
}

// lyncEarlierBefore is lyncEarlier's state alone.
func lyncEarlierBefore[T any](ctx context.Context) (T, bool) {
	b, ok := lyncEarlier[T](ctx)
	return b.Value, ok
}

// lyncRecordBefore records the state found before the first write. The first
// heartbeat of an attempt is sent at once, before the write it guards.
func lyncRecordBefore[T any](ctx context.Context, v T) {
	lyncRecord(ctx, lyncBefore[T]{Seen: true, Value: v})
}

func lyncRecord[T any](ctx context.Context, b lyncBefore[T]) {
	if activity.IsActivity(ctx) {
		activity.RecordHeartbeat(ctx, b)
	}
}

// EnsureLyncEdgeFederation sets AllowFederatedUsers on the access edge
// configuration (the shared SIP address space needs it). Undo restores the
// previous value.
func (a *Lync) EnsureLyncEdgeFederation(ctx context.Context, t Target) (LyncStepResult, error) {
	what := "ensure AllowFederatedUsers on " + lyncWhere(t)
	r := a.runner(t)
	rows, err := r.Run(ctx, cmd("Get-CsAccessEdgeConfiguration"))
	if err != nil {
		return LyncStepResult{}, classify(what, err)
	}
	if len(rows) == 0 {
		return LyncStepResult{}, nonRetryable(ErrInvalidInput, "%s: Get-CsAccessEdgeConfiguration returned no configuration; is there an Edge pool in the topology?", what)
	}
	now := rowBool(rows[0], "AllowFederatedUsers")
	orig, earlier := lyncEarlierBefore[bool](ctx)
	if !earlier {
		orig = now
	}
	if !now {
		if !earlier {
			lyncRecordBefore(ctx, now)
		}
		if _, err := r.Run(ctx, cmd("Set-CsAccessEdgeConfiguration", "AllowFederatedUsers", true)); err != nil {
			return LyncStepResult{}, classify(what, err)
		}
	}
	if orig {
		return LyncStepResult{Outcome: Unchanged, Detail: "AllowFederatedUsers already $True"}, nil
	}
	return LyncStepResult{Outcome: Updated, Detail: "AllowFederatedUsers $False → $True",
		Undo: []LyncUndoRecord{{System: SystemLync, Kind: UndoLyncSetAllowFederatedUsers, Name: "Global", Enabled: false}}}, nil
}

// readProvider reads one provider from the Central Management store.
func (a *Lync) readProvider(ctx context.Context, r exchange.Runner, identity string) (*LyncHostingProvider, error) {
	rows, err := r.Run(ctx, cmd("Get-CsHostingProvider"))
	if err != nil {
		return nil, err
	}
	p, _ := lyncFindProvider(rows, identity)
	return p, nil
}

func lyncValidProvider(p LyncHostingProvider) error {
	if p.Identity == "" || plan.LyncNormFqdn(p.ProxyFqdn) == "" || p.VerificationLevel == "" {
		return nonRetryable(ErrInvalidInput, "hosting provider needs Identity, ProxyFqdn and VerificationLevel: %+v", p)
	}
	return nil
}

// EnsureLyncHostingProvider makes the "Exchange Online" hosting provider
// exist with exactly the desired settings: created when absent, removed
// and re-created when its ProxyFqdn differs (it cannot change in place),
// set in place for any other difference. Undo removes the provider this
// run created or restores the previous one exactly. Before its first write
// it reads the replication status, returned as Baseline for the Edge step.
func (a *Lync) EnsureLyncHostingProvider(ctx context.Context, in LyncProviderInput) (LyncStepResult, error) {
	want := in.Desired
	if err := lyncValidProvider(want); err != nil {
		return LyncStepResult{}, err
	}
	w := &lyncProviderWrite{ctx: ctx, r: a.runner(in.Target), want: want,
		what: fmt.Sprintf("ensure hosting provider %q on %s", want.Identity, lyncWhere(in.Target))}
	cur, err := a.readProvider(ctx, w.r, want.Identity)
	if err != nil {
		return LyncStepResult{}, classify(w.what, err)
	}
	prev, earlier := lyncEarlier[*LyncHostingProvider](ctx)
	w.cur, w.orig, w.baseline, w.earlier = cur, prev.Value, prev.Baseline, earlier
	if !earlier {
		w.orig = cur
	}
	did, err := w.apply(plan.DecideLyncProvider(cur, want))
	if err != nil {
		return LyncStepResult{}, err
	}
	return w.result(did), nil
}

// lyncProviderWrite is one attempt of the hosting-provider step: what it
// found (cur), what was there before the first write of any attempt
// (orig, from the heartbeat when an earlier attempt wrote), and the
// replication status read just before that write (baseline).
type lyncProviderWrite struct {
	ctx       context.Context
	r         exchange.Runner
	what      string
	want      LyncHostingProvider
	cur, orig *LyncHostingProvider
	baseline  []LyncReplica
	// earlier: what was there before the first write is in the heartbeat.
	earlier bool
}

// apply makes the change plan.DecideLyncProvider chose and says what it
// did ("" when nothing was needed).
func (w *lyncProviderWrite) apply(d plan.LyncProviderDecision) (string, error) {
	if d.Change == plan.LyncProviderKeep {
		return "", nil
	}
	if err := w.remember(); err != nil {
		return "", err
	}
	switch d.Change {
	case plan.LyncProviderCreate:
		return "created", w.create()
	case plan.LyncProviderReplace:
		return fmt.Sprintf("removed and re-created (ProxyFqdn %s → %s; it cannot change in place)", w.cur.ProxyFqdn, w.want.ProxyFqdn), w.replace()
	}
	if _, err := w.r.Run(w.ctx, setProviderCommand(w.cur.Identity, w.want, d)); err != nil {
		return "", w.fail(classify(w.what, err))
	}
	return "set in place: " + strings.Join(d.Words, ", "), nil
}

// remember reads the replication status and keeps it, with what was
// found, in the heartbeat before the first write.
func (w *lyncProviderWrite) remember() error {
	if w.earlier {
		return nil
	}
	rows, err := w.r.Run(w.ctx, cmd("Get-CsManagementStoreReplicationStatus"))
	if err != nil {
		return classify(w.what+": read the replication status before the change", err)
	}
	w.baseline = lyncReplicasFromRows(rows)
	lyncRecord(w.ctx, lyncBefore[*LyncHostingProvider]{Seen: true, Value: w.cur, Baseline: w.baseline})
	w.earlier = true
	return nil
}

// fail keeps the original provider with a failure that may have left it
// removed, so that the workflow can still put it back on abort.
func (w *lyncProviderWrite) fail(err error) error {
	if w.orig == nil {
		return err
	}
	return lyncWithUndo(err, lyncRestoreRecord(*w.orig))
}

func (w *lyncProviderWrite) create() error {
	if _, err := w.r.Run(w.ctx, lyncNewCommand(w.want)); err != nil {
		if exchange.IsAlreadyExists(err) {
			return w.fail(retryable(ErrTransient, "%s: created concurrently by someone else; the next attempt re-reads it", w.what))
		}
		return w.fail(classify(w.what, err))
	}
	return nil
}

// replace removes the provider and creates it with the wanted ProxyFqdn.
func (w *lyncProviderWrite) replace() error {
	cur, want := w.cur, w.want
	if _, err := w.r.Run(w.ctx, cmd("Remove-CsHostingProvider", "Identity", cur.Identity)); err != nil && !exchange.IsNotFound(err) {
		return w.fail(classify(w.what+": remove the provider with ProxyFqdn "+cur.ProxyFqdn, err))
	}
	if _, err := w.r.Run(w.ctx, lyncNewCommand(want)); err != nil {
		// Put the old provider back at once so that nothing is left
		// half-done; the heartbeat and the error keep it anyway.
		_, perr := w.r.Run(w.ctx, lyncNewCommand(*cur))
		back := "the previous provider was put back"
		if perr != nil {
			back = fmt.Sprintf("putting the previous provider back failed too (%v); the next attempt or an abort restores it", perr)
		}
		return w.fail(classify(fmt.Sprintf("%s: re-create with ProxyFqdn %s (%s)", w.what, want.ProxyFqdn, back), err))
	}
	return nil
}

// result is the step's outcome, with the undo record that reverses it.
func (w *lyncProviderWrite) result(did string) LyncStepResult {
	want, orig := w.want, w.orig
	final := want
	switch {
	case orig == nil:
		return LyncStepResult{Outcome: Created, Detail: "created " + want.String(), Provider: &final, Baseline: w.baseline,
			Undo: []LyncUndoRecord{{System: SystemLync, Kind: UndoLyncRemoveHostingProvider, Name: want.Identity}}}
	case orig.Equal(want):
		return LyncStepResult{Outcome: Unchanged, Detail: fmt.Sprintf("%q already has the documented settings (ProxyFqdn %s)", want.Identity, want.ProxyFqdn), Provider: &final}
	}
	if did == "" { // an earlier attempt wrote and did not get to report it
		did = "changed by an earlier attempt: " + strings.Join(orig.Differences(want), ", ")
	}
	return LyncStepResult{Outcome: Updated, Detail: fmt.Sprintf("%q %s", want.Identity, did), Provider: &final, Baseline: w.baseline,
		Undo: []LyncUndoRecord{lyncRestoreRecord(*orig)}}
}

func lyncRestoreRecord(prev LyncHostingProvider) LyncUndoRecord {
	return LyncUndoRecord{System: SystemLync, Kind: UndoLyncRestoreHostingProvider, Name: prev.Identity, Provider: &prev}
}

// lyncWithUndo attaches an undo record to a step's failure as the
// application error's details (LyncUndoFromError reads it back): a step
// that failed after a write it could not take back still tells the
// workflow how to reverse it.
func lyncWithUndo(err error, rec LyncUndoRecord) error {
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		return err
	}
	return temporal.NewApplicationErrorWithOptions(app.Message(), app.Type(), temporal.ApplicationErrorOptions{
		NonRetryable: app.NonRetryable(), Cause: errors.Unwrap(app), NextRetryDelay: app.NextRetryDelay(), Details: []any{rec}})
}

// lyncReplicationProgress is the wait's heartbeat: where it stands, and when
// it started, so that a retried attempt keeps the original bound.
type lyncReplicationProgress struct {
	Started time.Time `json:"started"`
	Polls   int       `json:"polls"`
	Lagging []string  `json:"lagging,omitempty"`
}

// WaitLyncReplication reads Get-CsManagementStoreReplicationStatus until
// every replica is up to date, heartbeating after each read, for at most
// Timeout. When the bound is reached it fails (ReplicationLagging, not
// retried: the wait was the retry) naming the replicas that lag.
func (a *Lync) WaitLyncReplication(ctx context.Context, in LyncReplicationInput) (LyncStepResult, error) {
	timeout, every := in.Timeout, in.PollInterval
	if timeout <= 0 {
		timeout = DefaultLyncReplicationTimeout
	}
	if every <= 0 {
		every = DefaultLyncReplicationPoll
	}
	what := "wait for Central Management store replication on " + lyncWhere(in.Target)
	p := lyncReplicationProgress{Started: time.Now()}
	if activity.IsActivity(ctx) && activity.HasHeartbeatDetails(ctx) {
		var earlier lyncReplicationProgress
		if activity.GetHeartbeatDetails(ctx, &earlier) == nil && !earlier.Started.IsZero() {
			p = earlier
		}
	}
	r := a.runner(in.Target)
	for {
		rows, err := r.Run(ctx, cmd("Get-CsManagementStoreReplicationStatus"))
		if err != nil {
			return LyncStepResult{}, classify(what, err)
		}
		p.Polls++
		reps := lyncReplicasFromRows(rows)
		p.Lagging = plan.LyncLagging(reps)
		if len(reps) == 0 {
			p.Lagging = []string{"(no replica reported)"}
		}
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, p)
		}
		if len(p.Lagging) == 0 {
			return LyncStepResult{Outcome: Unchanged, Replicas: reps, Polls: p.Polls,
				Detail: fmt.Sprintf("all %d replica(s) up to date after %d status read(s)", len(reps), p.Polls)}, nil
		}
		waited := time.Since(p.Started)
		if waited+every > timeout {
			return LyncStepResult{}, nonRetryable(ErrReplicationLagging,
				"%s: after %s (%d status reads) still not up to date: %s; check the Lync Server Replica Replicator Agent service and connectivity to the master store on %s, then retry",
				what, waited.Round(time.Millisecond), p.Polls, lyncReplicaList(reps), strings.Join(p.Lagging, ", "))
		}
		select {
		case <-ctx.Done():
			return LyncStepResult{}, classify(what, ctx.Err())
		case <-time.After(every):
		}
	}
}

func lyncReplicaList(rs []LyncReplica) string {
	var parts []string
	for _, r := range rs {
		if r.UpToDate {
			continue
		}
		s := r.Fqdn
		if !r.LastStatusReport.IsZero() {
			s += " (last status report " + r.LastStatusReport.Format(time.RFC3339) + ")"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "no replica reported"
	}
	return strings.Join(parts, ", ")
}

// ConfirmLyncEdgeProvider confirms, from the site's internal server, that
// the Edge Server has the desired provider. Get-CsHostingProvider
// -LocalStore cannot show that here: it reads the local replica of the
// machine the shell runs on. Instead:
//
//   - the Central Management store must hold the provider as desired
//     (otherwise someone changed it since: a conflict, not retried);
//   - the Edge Server's replica (each of in.EdgeFqdns, read with
//     -ReplicaFqdn; every replica when none is named) must report UpToDate,
//     and when the hosting-provider step wrote, a LastUpdateCreation later
//     than the one it had just before that write: it has applied a
//     snapshot packaged after the change. Until then the step fails,
//     retryably, naming each replica and what it still lacks.
func (a *Lync) ConfirmLyncEdgeProvider(ctx context.Context, in LyncProviderInput) (LyncStepResult, error) {
	want := in.Desired
	edge, err := LyncEdgeFqdns(in.EdgeFqdns)
	if err != nil {
		return LyncStepResult{}, err
	}
	what := fmt.Sprintf("confirm that the Edge Server has hosting provider %q (%s)", want.Identity, lyncWhere(in.Target))
	r := a.runner(in.Target)
	cms, err := a.readProvider(ctx, r, want.Identity)
	if err != nil {
		return LyncStepResult{}, classify(what, err)
	}
	if why := plan.LyncStoreVerdict(cms, want); why != "" {
		return LyncStepResult{}, nonRetryable(ErrConflict, "%s: %s", what, why)
	}
	reps, err := a.replicaStatus(ctx, r, edge)
	if err != nil {
		return LyncStepResult{}, classify(what, err)
	}
	for i, rep := range reps {
		if rep == nil {
			return LyncStepResult{}, nonRetryable(ErrInvalidInput, "%s: %s is not a replica of this deployment (Get-CsManagementStoreReplicationStatus -ReplicaFqdn %s returned nothing); check the Edge Server's FQDN", what, edge[i], edge[i])
		}
	}
	var got []LyncReplica
	var stale []string
	for _, rep := range reps {
		got = append(got, *rep)
		if why := plan.LyncReplicaStale(*rep, in.Baseline); why != "" {
			stale = append(stale, rep.Fqdn+" "+why)
		}
	}
	if len(got) == 0 {
		return LyncStepResult{}, retryable(ErrEdgeNotUpdated, "%s: no replica reported its replication status", what)
	}
	if len(stale) > 0 {
		return LyncStepResult{}, retryable(ErrEdgeNotUpdated, "%s: not yet: %s", what, strings.Join(stale, "; "))
	}
	var names []string
	for _, rep := range got {
		names = append(names, rep.Fqdn)
	}
	since := "UpToDate; the provider was already in place before this run"
	if len(in.Baseline) > 0 {
		since = "UpToDate with a snapshot packaged after the provider was written"
	}
	return LyncStepResult{Outcome: Unchanged, Provider: cms, Replicas: got,
		Detail: fmt.Sprintf("the Central Management store holds %q → %s (%s); %s: %s", cms.Identity, cms.ProxyFqdn, cms.VerificationLevel, strings.Join(names, ", "), since)}, nil
}

// replicaStatus reads the named replicas, one -ReplicaFqdn read each in
// one round trip (nil where the deployment has no such replica), or every
// replica when none is named.
func (a *Lync) replicaStatus(ctx context.Context, r exchange.Runner, fqdns []string) ([]*LyncReplica, error) {
	if len(fqdns) == 0 {
		rows, err := r.Run(ctx, cmd("Get-CsManagementStoreReplicationStatus"))
		if err != nil {
			return nil, err
		}
		var out []*LyncReplica
		for _, rep := range lyncReplicasFromRows(rows) {
			out = append(out, &rep)
		}
		return out, nil
	}
	cmds := make([]exchange.Command, len(fqdns))
	for i, f := range fqdns {
		cmds[i] = cmd("Get-CsManagementStoreReplicationStatus", "ReplicaFqdn", f)
	}
	res, err := r.RunBatch(ctx, cmds)
	if err != nil {
		return nil, err
	}
	out := make([]*LyncReplica, len(fqdns))
	for i := range cmds {
		rows, err := batchRows(res, i, cmds)
		if err != nil {
			return nil, err
		}
		for _, rep := range lyncReplicasFromRows(rows) {
			if strings.EqualFold(rep.Fqdn, fqdns[i]) {
				out[i] = &rep
				break
			}
		}
	}
	return out, nil
}

// CheckLyncExternalAccess reports which external access policies enable
// communications with remote users, with a warning when none does. It
// writes nothing: access policies are the administrator's decision.
func (a *Lync) CheckLyncExternalAccess(ctx context.Context, t Target) (LyncStepResult, error) {
	rows, err := a.runner(t).Run(ctx, cmd("Get-CsExternalAccessPolicy"))
	if err != nil {
		return LyncStepResult{}, classify("read external access policies on "+lyncWhere(t), err)
	}
	ps := lyncExternalAccessFromRows(rows)
	allowing, warn := plan.LyncExternalAccessVerdict(ps)
	res := LyncStepResult{Outcome: Unchanged, Policies: ps, Allowing: allowing}
	if warn != "" {
		res.Warnings = []string{warn}
		res.Detail = "no external access policy enables communications with remote users"
	} else {
		res.Detail = "communications with remote users enabled in: " + strings.Join(allowing, ", ")
	}
	return res, nil
}

// UndoLync reverses one Lync change this product made.
func (a *Lync) UndoLync(ctx context.Context, in LyncUndoInput) error {
	rec := in.Record
	r := a.runner(in.Target)
	switch rec.Kind {
	case UndoLyncSetAllowFederatedUsers:
		what := fmt.Sprintf("restore AllowFederatedUsers %s on %s", plan.LyncValue(rec.Enabled), lyncWhere(in.Target))
		rows, err := r.Run(ctx, cmd("Get-CsAccessEdgeConfiguration"))
		if err != nil {
			return classify(what, err)
		}
		if len(rows) > 0 && rowBool(rows[0], "AllowFederatedUsers") == rec.Enabled {
			return nil
		}
		_, err = r.Run(ctx, cmd("Set-CsAccessEdgeConfiguration", "AllowFederatedUsers", rec.Enabled))
		return classify(what, err)
	case UndoLyncRemoveHostingProvider:
		_, err := r.Run(ctx, cmd("Remove-CsHostingProvider", "Identity", rec.Name))
		if exchange.IsNotFound(err) {
			return nil
		}
		return classify(fmt.Sprintf("remove hosting provider %q on %s", rec.Name, lyncWhere(in.Target)), err)
	case UndoLyncRestoreHostingProvider:
		if rec.Provider == nil {
			return nonRetryable(ErrInvalidInput, "Lync undo %s: the record carries no provider", rec.Kind)
		}
		return a.restoreProvider(ctx, r, in.Target, *rec.Provider)
	}
	return nonRetryable(ErrInvalidInput, "Lync undo: unknown kind %q", rec.Kind)
}

// restoreProvider puts prev back exactly, check-then-act.
func (a *Lync) restoreProvider(ctx context.Context, r exchange.Runner, t Target, prev LyncHostingProvider) error {
	what := fmt.Sprintf("restore hosting provider %q (ProxyFqdn %s) on %s", prev.Identity, prev.ProxyFqdn, lyncWhere(t))
	cur, err := a.readProvider(ctx, r, prev.Identity)
	if err != nil {
		return classify(what, err)
	}
	switch d := plan.DecideLyncProvider(cur, prev); d.Change {
	case plan.LyncProviderKeep:
		return nil
	case plan.LyncProviderSet:
		_, err := r.Run(ctx, setProviderCommand(cur.Identity, prev, d))
		return classify(what, err)
	case plan.LyncProviderReplace:
		if _, err := r.Run(ctx, cmd("Remove-CsHostingProvider", "Identity", cur.Identity)); err != nil && !exchange.IsNotFound(err) {
			return classify(what, err)
		}
	}
	if _, err := r.Run(ctx, lyncNewCommand(prev)); err != nil {
		if exchange.IsAlreadyExists(err) {
			return retryable(ErrTransient, "%s: created concurrently by someone else; the next attempt re-reads it", what)
		}
		return classify(what, err)
	}
	return nil
}

// setProviderCommand is Set-CsHostingProvider for the settings decision d
// found different, set to want's values. The parameter names are literals
// so that the cmdlet reference check can read every parameter the product
// sends; d.Params (plan.LyncHostingProvider.SetDiff) says which apply.
func setProviderCommand(identity string, want plan.LyncHostingProvider, d plan.LyncProviderDecision) exchange.Command {
	p := map[string]any{"Identity": identity}
	if _, ok := d.Params["Enabled"]; ok {
		p["Enabled"] = want.Enabled
	}
	if _, ok := d.Params["EnabledSharedAddressSpace"]; ok {
		p["EnabledSharedAddressSpace"] = want.EnabledSharedAddressSpace
	}
	if _, ok := d.Params["HostsOCSUsers"]; ok {
		p["HostsOCSUsers"] = want.HostsOCSUsers
	}
	if _, ok := d.Params["IsLocal"]; ok {
		p["IsLocal"] = want.IsLocal
	}
	if _, ok := d.Params["VerificationLevel"]; ok {
		p["VerificationLevel"] = want.VerificationLevel
	}
	return exchange.Command{Cmdlet: "Set-CsHostingProvider", Parameters: p}
}
