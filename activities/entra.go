package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/hybridflow/hybridflow/internal/certs"
	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/graph"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// GraphClients hands out a tenant's Microsoft Graph client.
type GraphClients interface {
	Graph(t Target) (*graph.Client, error)
}

// Entra runs the Microsoft Graph steps (4, 5, the dedicated application
// and the legacy-key removal) on the cloud task queue.
type Entra struct {
	Clients GraphClients
	// Now is the clock for key expiry; activities may read the clock (they
	// are not replayed), but tests pin it.
	Now func() time.Time
}

func (a *Entra) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now().UTC()
}

func (a *Entra) client(t Target) (*graph.Client, error) {
	c, err := a.Clients.Graph(t)
	if err != nil {
		return nil, nonRetryable(ErrInvalidInput, "Graph client for %s: %v", t.TenantID, err)
	}
	return c, nil
}

// DiscoverEntra reads the first-party service principal (keys and SPNs), the
// dedicated application, its service principal and consent, and the
// tenant's domains: the Entra half of plan.Observed. It is one Graph JSON
// batch, plus one more for the keys' certificates when the first-party
// service principal has keys and this worker has not yet learnt its object
// ID, or the application has keys and lacks one
// of the organisation's auth certificates (Graph sends certificates only
// to a single-object $select=keyCredentials read); see
// graph.ReadEntraState for when the certificates are read and for the
// rare cases that need more.
func (a *Entra) DiscoverEntra(ctx context.Context, in EntraDiscoverInput) (plan.Observed, error) {
	var o plan.Observed
	c, err := a.client(in.Target)
	if err != nil {
		return o, err
	}
	st, err := c.ReadEntraState(ctx, cloud.FirstPartyAppID, in.DedicatedAppName, in.AuthThumbprints...)
	if err != nil {
		return o, classify("read the tenant's Entra state", err)
	}
	if sp := st.FirstParty; sp != nil {
		o.FirstPartySP = plan.ServicePrincipal{ID: sp.ID, Keys: toPlanKeys(sp.KeyCredentials), SPNs: sp.ServicePrincipalNames}
	}
	if app := st.Application; app != nil {
		o.DedicatedApp = plan.Application{Exists: true, ID: app.ID, AppID: app.AppID, Keys: toPlanKeys(app.KeyCredentials), HasFullAccessAsApp: hasFullAccess(app.RequiredResourceAccess)}
		if dsp := st.ApplicationSP; dsp != nil {
			o.DedicatedSP = plan.DedicatedSP{Exists: true, ID: dsp.ID}
			if st.FirstParty != nil {
				o.ConsentGranted = hasConsent(st.Assignments, st.FirstParty.ID)
			}
		}
	}
	for _, d := range st.Domains {
		if d.IsVerified {
			o.TenantDomains = append(o.TenantDomains, d.ID)
		}
	}
	return o, nil
}

func hasFullAccess(rra []graph.RequiredResourceAccess) bool {
	for _, r := range rra {
		if !strings.EqualFold(r.ResourceAppID, cloud.FirstPartyAppID) {
			continue
		}
		for _, ra := range r.ResourceAccess {
			if strings.EqualFold(ra.ID, plan.FullAccessAsAppRoleID) && ra.Type == "Role" {
				return true
			}
		}
	}
	return false
}

func hasConsent(as []graph.AppRoleAssignment, resourceID string) bool {
	return consentAssignment(as, resourceID) != nil
}

// consentAssignment is the assignment of full_access_as_app on resourceID
// among as, or nil.
func consentAssignment(as []graph.AppRoleAssignment, resourceID string) *graph.AppRoleAssignment {
	for i, x := range as {
		if strings.EqualFold(x.ResourceID, resourceID) && strings.EqualFold(x.AppRoleID, plan.FullAccessAsAppRoleID) {
			return &as[i]
		}
	}
	return nil
}

// EnsureFirstPartyServicePrincipal merges keys (keep every unexpired key,
// drop expired ones only when writing anyway, never duplicate a
// thumbprint; see plan.MergeKeys) and unions SPNs, then writes both in ONE
// PATCH, or nothing when both are already there. Keys are read with their
// certificates first, and every kept key goes back as read. A wanted key or
// SPN that is there now but was not when the setup discovered the tenant
// (in.Before) was written by this run, in a write whose result was lost:
// it gets the undo record that write would have had.
func (a *Entra) EnsureFirstPartyServicePrincipal(ctx context.Context, in FirstPartyInput) (StepResult, error) {
	c, err := a.client(in.Target)
	if err != nil {
		return StepResult{}, err
	}
	sp, err := c.ServicePrincipalByAppID(ctx, cloud.FirstPartyAppID)
	if err != nil {
		return StepResult{}, classify("read the Exchange Online service principal", err)
	}
	if err := checkUploads(in.Keys, a.now()); err != nil {
		return StepResult{}, err
	}
	kd := plan.MergeKeys(toPlanKeys(sp.KeyCredentials), in.Keys, a.now(), plan.MergeOptions{})
	if len(kd.MissingDER) > 0 {
		return StepResult{}, retryable(ErrTransient, "Graph returned keys without their certificate (%s); re-reading before any write", strings.Join(kd.MissingDER, ", "))
	}
	sd := plan.UnionSPNs(sp.ServicePrincipalNames, in.SPNs)
	if len(in.Keys) == 0 {
		kd.Reason = "" // an SPN-only call has nothing to say about keys
	}
	if len(in.SPNs) == 0 {
		sd.Reason = ""
	}
	var claimedKeys, claimedSPNs []string
	if len(in.Keys) > 0 {
		claimedKeys = newKeys(in.Before, sp.ID, toPlanKeys(sp.KeyCredentials), in.Keys, a.now())
	}
	if len(in.SPNs) > 0 {
		claimedSPNs = newSPNs(in.Before, sp.ID, sp.ServicePrincipalNames, in.SPNs)
	}
	claimed := claimedWrites("servicePrincipal", sp.ID, claimedKeys, claimedSPNs)
	if !kd.Changed && !sd.Changed {
		if len(claimed.Undo) > 0 {
			claimed.Detail = joinReasons(kd.Reason, sd.Reason, claimed.Detail)
			return claimed, nil
		}
		return StepResult{Outcome: Unchanged, ObjectID: sp.ID, Detail: joinReasons(kd.Reason, sd.Reason)}, nil
	}
	var p graph.Patch
	res := StepResult{Outcome: Updated, ObjectID: sp.ID, Detail: joinReasons(kd.Reason, sd.Reason, claimed.Detail), Undo: claimed.Undo}
	if kd.Changed {
		keys := toGraphKeys(kd.Keys)
		p.KeyCredentials = &keys
		if len(kd.Added) > 0 {
			res.Undo = append(res.Undo, UndoRecord{System: SystemEntra, Kind: UndoRemoveKeys, ObjectKind: "servicePrincipal", ObjectID: sp.ID, Thumbprints: kd.Added})
		}
		if len(kd.Dropped) > 0 {
			res.Undo = append(res.Undo, UndoRecord{System: SystemEntra, Kind: UndoRestoreKeys, ObjectKind: "servicePrincipal", ObjectID: sp.ID, Keys: droppedKeys(kd.Dropped)})
		}
	}
	if sd.Changed {
		p.ServicePrincipalNames = &sd.SPNs
		res.Undo = append(res.Undo, UndoRecord{System: SystemEntra, Kind: UndoRemoveSPNs, ObjectKind: "servicePrincipal", ObjectID: sp.ID, SPNs: sd.Added})
	}
	if err := c.UpdateServicePrincipal(ctx, sp.ID, p); err != nil {
		return StepResult{}, classify("update the Exchange Online service principal", err)
	}
	return res, nil
}

// claimedWrites is the result for keys and SPNs found on an object that
// the setup's discovery did not see there (Before): this run's, written by
// a call whose result was lost. The undo records are those the call would
// have returned, saying how the keys and SPNs were proven this run's.
func claimedWrites(kind, id string, thumbprints, spns []string) StepResult {
	res := StepResult{ObjectID: id}
	var did []string
	if len(thumbprints) > 0 {
		res.Undo = append(res.Undo, UndoRecord{System: SystemEntra, Kind: UndoRemoveKeys, ObjectKind: kind, ObjectID: id, Thumbprints: thumbprints, Evidence: evidenceAbsentBefore})
		did = append(did, "added key "+strings.Join(thumbprints, ", "))
	}
	if len(spns) > 0 {
		res.Undo = append(res.Undo, UndoRecord{System: SystemEntra, Kind: UndoRemoveSPNs, ObjectKind: kind, ObjectID: id, SPNs: spns, Evidence: evidenceAbsentBefore})
		did = append(did, "added service principal name "+strings.Join(spns, ", "))
	}
	if len(did) > 0 {
		res.Outcome, res.Detail = Updated, claimedHow(strings.Join(did, "; "))
	}
	return res
}

// checkUploads refuses certificates that must never be uploaded (issue:
// parseable X.509, not expired, key ≥ 2048 bits) before any write.
func checkUploads(keys []plan.Key, now time.Time) error {
	for _, k := range keys {
		if _, err := certs.Check(k.DER, now, false); err != nil {
			return nonRetryable(ErrInvalidInput, "refusing to upload %s: %v", k.Thumbprint, err)
		}
	}
	return nil
}

func joinReasons(rs ...string) string {
	var out []string
	for _, r := range rs {
		if r != "" {
			out = append(out, r)
		}
	}
	return strings.Join(out, "; ")
}

func droppedKeys(ds []plan.Dropped) []plan.Key {
	out := make([]plan.Key, len(ds))
	for i, d := range ds {
		out[i] = d.Key
	}
	return out
}

var fullAccessRRA = graph.RequiredResourceAccess{ResourceAppID: cloud.FirstPartyAppID,
	ResourceAccess: []graph.ResourceAccess{{ID: plan.FullAccessAsAppRoleID, Type: "Role"}}}

// fullAccessPermission names full_access_as_app in a restore-RRA record's
// Added: "<resource appId>/<app role id>".
const fullAccessPermission = cloud.FirstPartyAppID + "/" + plan.FullAccessAsAppRoleID

// RunTagPrefix starts the tag hybridflow puts on the Entra objects it
// creates (the dedicated application and its service principal), followed
// by the ID of the workflow run that created them.
//
// Why: cloud steps run as local activities. A worker that dies after the
// write but before the workflow task recording its result completes makes
// the step run again, and the object is then already there. Without the
// tag that object would count as found, not created, and an abort would
// leave it behind; with it, only objects this very run created are
// treated as its own, and anything else is never touched.
const RunTagPrefix = "hybridflow-run:"

// runTag is this run's tag; "" outside a workflow (the bench's baselines
// call activities directly), which tags nothing and claims nothing.
func runTag(ctx context.Context) string {
	if !activity.IsActivity(ctx) {
		return ""
	}
	if id := activity.GetInfo(ctx).WorkflowExecution.RunID; id != "" {
		return RunTagPrefix + id
	}
	return ""
}

// tagList is the tags to create an object with.
func tagList(tag string) []string {
	if tag == "" {
		return nil
	}
	return []string{tag}
}

// ownedBy says whether an object's tags name this run.
func ownedBy(tags []string, tag string) bool {
	return tag != "" && slices.Contains(tags, tag)
}

// EnsureDedicatedApplication finds or creates ExchangeServerApp-<org GUID>
// (single tenant) asking for full_access_as_app on Exchange Online, as
// steps 1–2 of Microsoft's ConfigureExchangeHybridApplication.ps1 do.
//
// It is found by its uniqueName (plan.DedicatedAppUniqueName), the
// alternate key hybridflow creates it with, or else by its display name
// (the Hybrid Configuration Wizard and Microsoft's scripts create it
// without a uniqueName): an existing application is adopted, never
// duplicated. A missing one is created by Graph's upsert on that
// uniqueName, which cannot make a second application however often it is
// sent. An application that carries this run's tag was created by this
// run, in an earlier attempt whose result was lost or by a create whose
// reply was lost, and is reported as created (RunTagPrefix).
func (a *Entra) EnsureDedicatedApplication(ctx context.Context, in DedicatedAppInput) (StepResult, error) {
	c, err := a.client(in.Target)
	if err != nil {
		return StepResult{}, err
	}
	tag := runTag(ctx)
	app, err := dedicatedApplication(ctx, c, in.Name)
	if errors.Is(err, graph.ErrNotFound) {
		return a.createDedicatedApplication(ctx, c, in.Name, plan.DedicatedAppUniqueName(in.Name), tag)
	}
	if err != nil {
		return StepResult{}, classify("read application "+in.Name, err)
	}
	return a.adoptDedicatedApplication(ctx, c, app, in.Name, tag, "")
}

// dedicatedApplication finds the dedicated application, keys included: by
// its uniqueName (the one hybridflow creates it with; a read by key, which
// finds an application just created), else by its display name (the one
// Microsoft's tools create has no uniqueName). NotFound when neither finds
// one; Ambiguous when several share the display name and none has the
// uniqueName.
func dedicatedApplication(ctx context.Context, c *graph.Client, name string) (*graph.Application, error) {
	app, err := c.ApplicationByUniqueName(ctx, plan.DedicatedAppUniqueName(name))
	if errors.Is(err, graph.ErrNotFound) {
		return c.ApplicationByDisplayName(ctx, name)
	}
	return app, err
}

// dedicatedCreated is the result of a step that created the application:
// deleting it undoes everything this run did to it.
func dedicatedCreated(app *graph.Application, name, detail string) StepResult {
	return StepResult{Outcome: Created, AppID: app.AppID, ObjectID: app.ID, Detail: detail,
		Undo: []UndoRecord{{System: SystemEntra, Kind: UndoDeleteApplication, ObjectKind: "application", ObjectID: app.ID, Name: name}}}
}

// adoptDedicatedApplication settles an application that exists: this
// run's own (its tag) is reported as created; another gains
// full_access_as_app when it lacks it, with an undo that takes exactly
// that permission away again.
func (a *Entra) adoptDedicatedApplication(ctx context.Context, c *graph.Client, app *graph.Application, name, tag, how string) (StepResult, error) {
	owned, full := ownedBy(app.Tags, tag), hasFullAccess(app.RequiredResourceAccess)
	if full && !owned {
		return StepResult{Outcome: Unchanged, AppID: app.AppID, ObjectID: app.ID, Detail: fmt.Sprintf("application %s exists with full_access_as_app", name)}, nil
	}
	prev := app.RequiredResourceAccess
	if !full {
		rra := append(slices.Clone(prev), fullAccessRRA)
		if err := c.UpdateApplication(ctx, app.ID, graph.ApplicationPatch{RequiredResourceAccess: &rra}); err != nil {
			return StepResult{}, classify("add full_access_as_app to "+name, err)
		}
	}
	if owned {
		if how == "" {
			how = "in an earlier attempt of this run"
		}
		return dedicatedCreated(app, name, fmt.Sprintf("created application %s (appId %s) %s", name, app.AppID, how)), nil
	}
	return StepResult{Outcome: Updated, AppID: app.AppID, ObjectID: app.ID, Detail: "added full_access_as_app to " + name,
		Undo: []UndoRecord{{System: SystemEntra, Kind: UndoRestoreRRA, ObjectKind: "application", ObjectID: app.ID,
			RequiredResourceAccess: toRRA(prev), Added: []string{fullAccessPermission}}}}, nil
}

// createDedicatedApplication creates the application by the upsert on its
// uniqueName, tagged with this run, after reads by uniqueName and by
// display name found none.
//
//   - 201: created by this call.
//   - 204: an application with the uniqueName existed when the upsert
//     arrived although the reads before it found none: made by another
//     writer in between, or by this run and not yet visible to the read.
//     Either way this call did not create it, so it is not claimed: the
//     upsert wrote this run's tag into its tags, and that tag is taken
//     off again. It is adopted like any existing application.
//   - no reply (a dropped connection, a gateway's 503/504): the upsert may
//     or may not have been applied. The application is read back by its
//     key: found with this run's tag, it is the one this call made
//     (nobody else writes that tag); found without, it is adopted; not
//     found, nothing was made and the step fails to be retried.
func (a *Entra) createDedicatedApplication(ctx context.Context, c *graph.Client, name, unique, tag string) (StepResult, error) {
	what := "create application " + name
	app, isNew, err := c.UpsertApplication(ctx, unique, name, "AzureADMyOrg", []graph.RequiredResourceAccess{fullAccessRRA}, tagList(tag)...)
	switch {
	case err == nil && isNew:
		return dedicatedCreated(app, name, fmt.Sprintf("created application %s (appId %s)", name, app.AppID)), nil
	case err == nil:
		if ownedBy(app.Tags, tag) {
			rest := slices.DeleteFunc(slices.Clone(app.Tags), func(t string) bool { return t == tag })
			if err := c.UpdateApplication(ctx, app.ID, graph.ApplicationPatch{Tags: &rest}); err != nil {
				return StepResult{}, classify("take this run's tag off application "+name+", which it did not create", err)
			}
			app.Tags = rest
		}
		return a.adoptDedicatedApplication(ctx, c, app, name, tag, "")
	case graph.OutcomeUnknown(err):
		got, rerr := c.ApplicationByUniqueName(ctx, unique)
		switch {
		case rerr == nil:
			return a.adoptDedicatedApplication(ctx, c, got, name, tag, "(the reply to the create was lost; found by its uniqueName)")
		case errors.Is(rerr, graph.ErrNotFound):
			return StepResult{}, classify(what, err) // nothing was made; retried
		}
		return StepResult{}, classify(what, err)
	}
	return StepResult{}, classify(what, err)
}

// EnsureDedicatedServicePrincipal creates the application's service
// principal when missing. It writes at most one object and
// writes last, so its undo record cannot be lost to a later failure in
// the same call; consent is GrantDedicatedConsent's.
//
// The service principal is read by its alternate key, appId, which finds
// one just created. A create is a POST, sent once: when its reply is lost,
// or Graph answers that the application already has a service principal,
// the service principal is read back by appId, and it is this run's when
// it carries this run's tag (set only when it is created).
func (a *Entra) EnsureDedicatedServicePrincipal(ctx context.Context, in AppIDInput) (StepResult, error) {
	c, err := a.client(in.Target)
	if err != nil {
		return StepResult{}, err
	}
	if in.AppID == "" {
		return StepResult{}, nonRetryable(ErrInvalidInput, "the dedicated application's appId is unknown: the application step must run first")
	}
	tag := runTag(ctx)
	found := func(sp *graph.ServicePrincipal, how string) StepResult {
		if !ownedBy(sp.Tags, tag) {
			return StepResult{Outcome: Unchanged, ObjectID: sp.ID, Detail: "service principal exists" + how}
		}
		if how == "" {
			how = " in an earlier attempt of this run"
		}
		return StepResult{Outcome: Created, ObjectID: sp.ID, Detail: "created its service principal" + how,
			Undo: []UndoRecord{{System: SystemEntra, Kind: UndoDeleteSP, ObjectKind: "servicePrincipal", ObjectID: sp.ID}}}
	}
	sp, err := c.ServicePrincipalByAppIDKey(ctx, in.AppID)
	switch {
	case err == nil:
		return found(sp, ""), nil
	case !errors.Is(err, graph.ErrNotFound):
		return StepResult{}, classify("read service principal for "+in.AppID, err)
	}
	what := "create service principal for " + in.AppID
	sp, err = c.CreateServicePrincipal(ctx, in.AppID, tagList(tag)...)
	switch {
	case err == nil:
		return StepResult{Outcome: Created, ObjectID: sp.ID, Detail: "created its service principal",
			Undo: []UndoRecord{{System: SystemEntra, Kind: UndoDeleteSP, ObjectKind: "servicePrincipal", ObjectID: sp.ID}}}, nil
	case !graph.OutcomeUnknown(err) && !errors.Is(err, graph.ErrConflict):
		return StepResult{}, classify(what, err)
	}
	got, rerr := c.ServicePrincipalByAppIDKey(ctx, in.AppID)
	switch {
	case rerr == nil:
		how := " (the reply to the create was lost; found by appId)"
		if errors.Is(err, graph.ErrConflict) {
			how = " (created concurrently; found by appId)"
		}
		return found(got, how), nil
	case errors.Is(rerr, graph.ErrNotFound) && errors.Is(err, graph.ErrConflict):
		// Graph says it exists and the read by key does not see it yet.
		return StepResult{}, retryable(ErrTransient, "%s: Graph answered that it exists (%v) but a read by appId does not find it yet; the next attempt reads again", what, err)
	case errors.Is(rerr, graph.ErrNotFound):
		return StepResult{}, classify(what, err) // nothing was made; retried
	}
	return StepResult{}, classify(what, err)
}

// GrantDedicatedConsent grants admin consent for full_access_as_app on the
// first-party principal to the dedicated application's service principal
// (an app role assignment), unless it is granted already. The grant is a
// POST, sent once; when its reply is lost it is read back by principal,
// resource and app role (which identify an assignment: Graph refuses a
// second identical one), and an assignment found there, which the read
// just before the grant did not show, is the one this call made. Consent
// found granted that the setup's discovery did not see (in.Before) was
// granted by this run, by a call whose result was lost, and is reported
// with its undo record.
func (a *Entra) GrantDedicatedConsent(ctx context.Context, in AppIDInput) (StepResult, error) {
	c, err := a.client(in.Target)
	if err != nil {
		return StepResult{}, err
	}
	if in.AppID == "" {
		return StepResult{}, nonRetryable(ErrInvalidInput, "the dedicated application's appId is unknown: the application step must run first")
	}
	sp, err := c.ServicePrincipalByAppIDKey(ctx, in.AppID)
	if err != nil {
		return StepResult{}, classify("read service principal for "+in.AppID, err)
	}
	fp, err := c.LookupServicePrincipal(ctx, cloud.FirstPartyAppID)
	if err != nil {
		return StepResult{}, classify("read the Exchange Online service principal", err)
	}
	as, err := c.AppRoleAssignments(ctx, sp.ID)
	if err != nil {
		return StepResult{}, classify("read app role assignments", err)
	}
	granted := func(asg *graph.AppRoleAssignment, how, evidence string) StepResult {
		return StepResult{Outcome: Created, ObjectID: sp.ID, Detail: "granted admin consent for full_access_as_app" + how,
			Undo: []UndoRecord{{System: SystemEntra, Kind: UndoRemoveAssignment, ObjectKind: "servicePrincipal", ObjectID: sp.ID, AssignmentID: asg.ID, Evidence: evidence}}}
	}
	// claim reports consent found granted: this run's when discovery saw
	// none on this principal.
	claim := func(asg *graph.AppRoleAssignment, how string) (StepResult, bool) {
		if asg == nil || !sameObject(in.Before, sp.ID) || in.Before.Consent {
			return StepResult{}, false
		}
		return granted(asg, how+" ("+evidenceAbsentBefore+")", evidenceAbsentBefore), true
	}
	if asg := consentAssignment(as, fp.ID); asg != nil {
		if res, ok := claim(asg, " in an earlier write of this run whose result was lost"); ok {
			return res, nil
		}
		return StepResult{Outcome: Unchanged, ObjectID: sp.ID, Detail: "full_access_as_app consented"}, nil
	}
	asg, err := c.AssignAppRole(ctx, sp.ID, fp.ID, plan.FullAccessAsAppRoleID)
	switch {
	case err == nil:
		return granted(asg, "", ""), nil
	case errors.Is(err, graph.ErrConflict):
		// A duplicate: granted between our read and write, by an earlier
		// write of this run the read did not show yet, or by someone else.
		if got, rerr := c.FindAppRoleAssignment(ctx, sp.ID, fp.ID, plan.FullAccessAsAppRoleID); rerr == nil {
			if res, ok := claim(got, " (Graph answered that it exists)"); ok {
				return res, nil
			}
		}
		return StepResult{Outcome: Unchanged, ObjectID: sp.ID, Detail: "full_access_as_app consented (granted concurrently)"}, nil
	case graph.OutcomeUnknown(err):
		got, rerr := c.FindAppRoleAssignment(ctx, sp.ID, fp.ID, plan.FullAccessAsAppRoleID)
		if rerr == nil {
			return granted(got, " (the reply to the grant was lost; found by principal, resource and app role)", ""), nil
		}
	}
	return StepResult{}, classify("grant full_access_as_app", err)
}

// EnsureApplicationKeys is step 4 in dedicated mode: the current (and
// staged next) auth certificate on the application's keyCredentials, with
// the same merge rules as the first-party principal. A wanted key that is
// there now but was not when the setup discovered the tenant (in.Before)
// was uploaded by this run, in a write whose result was lost: it gets the
// undo record that write would have had.
func (a *Entra) EnsureApplicationKeys(ctx context.Context, in AppKeysInput) (StepResult, error) {
	c, err := a.client(in.Target)
	if err != nil {
		return StepResult{}, err
	}
	if err := checkUploads(in.Keys, a.now()); err != nil {
		return StepResult{}, err
	}
	app, err := dedicatedApplication(ctx, c, in.Name)
	if err != nil {
		return StepResult{}, classify("read application "+in.Name, err)
	}
	kd := plan.MergeKeys(toPlanKeys(app.KeyCredentials), in.Keys, a.now(), plan.MergeOptions{})
	if len(kd.MissingDER) > 0 {
		return StepResult{}, retryable(ErrTransient, "Graph returned keys without their certificate (%s); re-reading before any write", strings.Join(kd.MissingDER, ", "))
	}
	claimed := claimedWrites("application", app.ID, newKeys(in.Before, app.ID, toPlanKeys(app.KeyCredentials), in.Keys, a.now()), nil)
	if !kd.Changed {
		if len(claimed.Undo) > 0 {
			claimed.Detail = joinReasons(kd.Reason, claimed.Detail)
			return claimed, nil
		}
		return StepResult{Outcome: Unchanged, ObjectID: app.ID, Detail: kd.Reason}, nil
	}
	keys := toGraphKeys(kd.Keys)
	if err := c.UpdateApplication(ctx, app.ID, graph.ApplicationPatch{KeyCredentials: &keys}); err != nil {
		return StepResult{}, classify("upload keys to "+in.Name, err)
	}
	res := StepResult{Outcome: Updated, ObjectID: app.ID, Detail: joinReasons(kd.Reason, claimed.Detail), Undo: claimed.Undo}
	if len(kd.Added) > 0 {
		res.Undo = append(res.Undo, UndoRecord{System: SystemEntra, Kind: UndoRemoveKeys, ObjectKind: "application", ObjectID: app.ID, Thumbprints: kd.Added})
	}
	if len(kd.Dropped) > 0 {
		res.Undo = append(res.Undo, UndoRecord{System: SystemEntra, Kind: UndoRestoreKeys, ObjectKind: "application", ObjectID: app.ID, Keys: droppedKeys(kd.Dropped)})
	}
	return res, nil
}

// RemoveLegacyKeys is the legacy-key clean-up after a migration to the
// dedicated application: PATCH the first-party service principal's
// keyCredentials without its Exchange auth certificates (the organisation's
// listed ones and any other key whose certificate is an Exchange auth
// certificate, judged from the certificate itself; plan.LegacyKeyRemoval),
// keeping every other key exactly as Graph returned it; SPNs are not
// touched. With ResetAll every key goes. The removed keys go into the undo
// record so a failed verification can put them back.
func (a *Entra) RemoveLegacyKeys(ctx context.Context, in RemoveLegacyKeysInput) (StepResult, error) {
	c, err := a.client(in.Target)
	if err != nil {
		return StepResult{}, err
	}
	// Keys come with their certificates: the read is followed by the
	// single-object $select=keyCredentials read Graph answers with them.
	sp, err := c.ServicePrincipalByAppID(ctx, cloud.FirstPartyAppID)
	if err != nil {
		return StepResult{}, classify("read the Exchange Online service principal", err)
	}
	var kd plan.KeyDecision
	if in.ResetAll {
		kd = plan.ResetKeys(toPlanKeys(sp.KeyCredentials))
	} else {
		kd = plan.LegacyKeyRemoval(toPlanKeys(sp.KeyCredentials), in.Thumbprints, a.now())
	}
	if len(kd.MissingDER) > 0 {
		return StepResult{}, retryable(ErrTransient, "Graph returned keys without their certificate (%s); re-reading before any write", strings.Join(kd.MissingDER, ", "))
	}
	if !kd.Changed {
		return StepResult{Outcome: Unchanged, ObjectID: sp.ID, Detail: kd.Reason}, nil
	}
	keys := toGraphKeys(kd.Keys)
	if err := c.UpdateServicePrincipal(ctx, sp.ID, graph.Patch{KeyCredentials: &keys}); err != nil {
		return StepResult{}, classify("remove legacy keys from the Exchange Online service principal", err)
	}
	return StepResult{Outcome: Removed, ObjectID: sp.ID, Detail: kd.Reason,
		Undo: []UndoRecord{{System: SystemEntra, Kind: UndoRestoreKeys, ObjectKind: "servicePrincipal", ObjectID: sp.ID, Keys: droppedKeys(kd.Dropped)}}}, nil
}

// UndoEntra reverses one Entra change this product made, touching only the keys,
// names or objects the record lists.
func (a *Entra) UndoEntra(ctx context.Context, in UndoInput) error {
	c, err := a.client(in.Target)
	if err != nil {
		return err
	}
	rec := in.Record
	what := fmt.Sprintf("undo %s on %s %s", rec.Kind, rec.ObjectKind, rec.ObjectID)
	switch rec.Kind {
	case UndoDeleteApplication:
		err = c.DeleteApplication(ctx, rec.ObjectID)
	case UndoDeleteSP:
		err = c.DeleteServicePrincipal(ctx, rec.ObjectID)
	case UndoRemoveAssignment:
		err = c.RemoveAppRoleAssignment(ctx, rec.ObjectID, rec.AssignmentID)
	case UndoRestoreRRA:
		return classify(what, undoRRA(ctx, c, rec))
	case UndoRemoveKeys, UndoRestoreKeys, UndoRemoveSPNs:
		return classify(what, a.undoCollections(ctx, c, rec))
	default:
		return nonRetryable(ErrInvalidInput, "Entra undo: unknown kind %q", rec.Kind)
	}
	if errors.Is(err, graph.ErrNotFound) {
		return nil
	}
	return classify(what, err)
}

// undoRRA takes back the permissions a restore-RRA record says the step
// added (Added; a record without it comes from a step that only ever
// added full_access_as_app, and only when the application lacked it), from
// the application as it is now: a permission someone else added or
// removed since stays as they left it.
func undoRRA(ctx context.Context, c *graph.Client, rec UndoRecord) error {
	added := rec.Added
	if len(added) == 0 && !hasFullAccess(fromRRA(rec.RequiredResourceAccess)) {
		added = []string{fullAccessPermission}
	}
	app, err := c.ApplicationByID(ctx, rec.ObjectID)
	if errors.Is(err, graph.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	rra, changed := withoutPermissions(app.RequiredResourceAccess, added)
	if !changed {
		return nil
	}
	err = c.UpdateApplication(ctx, rec.ObjectID, graph.ApplicationPatch{RequiredResourceAccess: &rra})
	if errors.Is(err, graph.ErrNotFound) {
		return nil
	}
	return err
}

// withoutPermissions takes one occurrence of each "<resource appId>/<id>"
// out of rra, preferring an entry that holds nothing else (the one a step
// appended), and drops an entry it empties.
func withoutPermissions(rra []graph.RequiredResourceAccess, perms []string) ([]graph.RequiredResourceAccess, bool) {
	out := make([]graph.RequiredResourceAccess, len(rra))
	for i, r := range rra {
		out[i] = graph.RequiredResourceAccess{ResourceAppID: r.ResourceAppID, ResourceAccess: slices.Clone(r.ResourceAccess)}
	}
	changed := false
	for _, p := range perms {
		res, id, ok := strings.Cut(p, "/")
		if !ok {
			continue
		}
		holds := func(r graph.RequiredResourceAccess) int {
			if !strings.EqualFold(r.ResourceAppID, res) {
				return -1
			}
			return slices.IndexFunc(r.ResourceAccess, func(a graph.ResourceAccess) bool { return strings.EqualFold(a.ID, id) })
		}
		at := slices.IndexFunc(out, func(r graph.RequiredResourceAccess) bool { return holds(r) >= 0 && len(r.ResourceAccess) == 1 })
		if at < 0 {
			at = slices.IndexFunc(out, func(r graph.RequiredResourceAccess) bool { return holds(r) >= 0 })
		}
		if at < 0 {
			continue
		}
		i := holds(out[at])
		out[at].ResourceAccess = slices.Delete(out[at].ResourceAccess, i, i+1)
		if len(out[at].ResourceAccess) == 0 {
			out = slices.Delete(out, at, at+1)
		}
		changed = true
	}
	return out, changed
}

// undoCollections re-reads the object and writes back its collection minus
// (or plus) exactly the recorded items, so changes others made since stay.
func (a *Entra) undoCollections(ctx context.Context, c *graph.Client, rec UndoRecord) error {
	var keys []graph.KeyCredential
	var spns []string
	if rec.ObjectKind == "application" {
		app, err := c.ApplicationByID(ctx, rec.ObjectID)
		if errors.Is(err, graph.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		keys = app.KeyCredentials
	} else {
		sp, err := c.ServicePrincipalByID(ctx, rec.ObjectID)
		if errors.Is(err, graph.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		keys, spns = sp.KeyCredentials, sp.ServicePrincipalNames
	}
	var kd plan.KeyDecision
	switch rec.Kind {
	case UndoRemoveKeys:
		kd = plan.UndoAdd(toPlanKeys(keys), rec.Thumbprints)
	case UndoRestoreKeys:
		kd = plan.UndoRemove(toPlanKeys(keys), rec.Keys)
	case UndoRemoveSPNs:
		sd := plan.UndoSPNs(spns, rec.SPNs)
		if !sd.Changed {
			return nil
		}
		return c.UpdateServicePrincipal(ctx, rec.ObjectID, graph.Patch{ServicePrincipalNames: &sd.SPNs})
	}
	if !kd.Changed {
		return nil
	}
	gk := toGraphKeys(kd.Keys)
	if rec.ObjectKind == "application" {
		return c.UpdateApplication(ctx, rec.ObjectID, graph.ApplicationPatch{KeyCredentials: &gk})
	}
	return c.UpdateServicePrincipal(ctx, rec.ObjectID, graph.Patch{KeyCredentials: &gk})
}

// toPlanKeys carries every field Graph returned, customKeyIdentifier as
// its exact text; Thumbprint is the certificate's (or the identifier's
// when it is a hex thumbprint and the certificate was not returned).
func toPlanKeys(ks []graph.KeyCredential) []plan.Key {
	out := make([]plan.Key, len(ks))
	for i, k := range ks {
		out[i] = plan.Key{KeyID: k.KeyID, Thumbprint: k.Thumbprint(), CustomKeyIdentifier: k.CustomKeyIdentifier,
			DisplayName: k.DisplayName, Type: k.Type, Usage: k.Usage, Start: k.Start, End: k.End, DER: k.Key}
	}
	return out
}

// toGraphKeys sends every key as the plan holds it: a kept (or restored)
// key with everything Graph showed, its customKeyIdentifier byte for byte;
// a new key with its certificate's validity and its hex thumbprint as
// identifier. Nothing of a kept key is rewritten; only a missing type or
// usage is filled in, which Graph never leaves empty.
func toGraphKeys(ks []plan.Key) []graph.KeyCredential {
	out := make([]graph.KeyCredential, len(ks))
	for i, k := range ks {
		typ, usage := k.Type, k.Usage
		if typ == "" {
			typ = graph.KeyTypeX509
		}
		if usage == "" {
			usage = graph.KeyUsageVerify
		}
		out[i] = graph.KeyCredential{KeyID: k.KeyID, CustomKeyIdentifier: k.CustomKeyIdentifier, DisplayName: k.DisplayName, Type: typ, Usage: usage, Start: k.Start, End: k.End, Key: k.DER}
	}
	return out
}

func toRRA(in []graph.RequiredResourceAccess) []RRA {
	out := make([]RRA, 0, len(in))
	for _, r := range in {
		x := RRA{ResourceAppID: r.ResourceAppID}
		for _, ra := range r.ResourceAccess {
			if ra.Type == "Role" {
				x.Roles = append(x.Roles, ra.ID)
			} else {
				x.Scopes = append(x.Scopes, ra.ID)
			}
		}
		out = append(out, x)
	}
	return out
}

func fromRRA(in []RRA) []graph.RequiredResourceAccess {
	out := make([]graph.RequiredResourceAccess, 0, len(in))
	for _, r := range in {
		x := graph.RequiredResourceAccess{ResourceAppID: r.ResourceAppID}
		for _, id := range r.Roles {
			x.ResourceAccess = append(x.ResourceAccess, graph.ResourceAccess{ID: id, Type: "Role"})
		}
		for _, id := range r.Scopes {
			x.ResourceAccess = append(x.ResourceAccess, graph.ResourceAccess{ID: id, Type: "Scope"})
		}
		out = append(out, x)
	}
	return out
}
