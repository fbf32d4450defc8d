package plan

// The Lync workflow's decisions: the hosting provider Microsoft documents
// for a cloud, what each Lync step would change and why (a chain of small
// policies, like the setup's), and the verdicts the Lync activities reach
// on what they read (how a provider differs, which replicas lag or have
// not applied the change, which access policies allow remote users).
// The facts they rest on are in docs/microsoft-behaviour.md, "Lync Edge
// replication check".

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hybridflow/hybridflow/internal/cloud"
)

// The documented hosting provider.
const (
	LyncProviderIdentity      = "Exchange Online"
	LyncVerificationLevel     = "UseSourceVerification"
	lyncUnconfirmedProxyField = "lync_proxy_fqdn" // cloud.Profile.Unconfirmed entry
)

// Lync plan steps, in the order the Lync workflow runs them. The values
// appear in queries, search attributes and the CLI.
const (
	LyncStepFederation      Step = "lync-federation"
	LyncStepHostingProvider Step = "lync-hosting-provider"
	LyncStepReplication     Step = "lync-replication"
	LyncStepEdgeStore       Step = "lync-edge-local-store"
	LyncStepExternalAccess  Step = "lync-external-access"
)

// LyncSteps is every Lync step in order.
var LyncSteps = []Step{LyncStepFederation, LyncStepHostingProvider, LyncStepReplication, LyncStepEdgeStore, LyncStepExternalAccess}

// LyncHostingProvider is a hosting provider as Get-CsHostingProvider shows it.
type LyncHostingProvider struct {
	Identity                  string `json:"identity"`
	Enabled                   bool   `json:"enabled"`
	EnabledSharedAddressSpace bool   `json:"enabled_shared_address_space"`
	HostsOCSUsers             bool   `json:"hosts_ocs_users"`
	ProxyFqdn                 string `json:"proxy_fqdn"`
	IsLocal                   bool   `json:"is_local"`
	VerificationLevel         string `json:"verification_level"`
}

// LyncNormFqdn is an FQDN as the Lync decisions compare it: trimmed, lower
// case, without a trailing dot.
func LyncNormFqdn(s string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
}

// SameProxy reports whether two providers use the same proxy FQDN.
func (p LyncHostingProvider) SameProxy(o LyncHostingProvider) bool {
	return LyncNormFqdn(p.ProxyFqdn) == LyncNormFqdn(o.ProxyFqdn)
}

// LyncSetting is one setting Set-CsHostingProvider can change.
type LyncSetting struct {
	Name  string
	Value any
}

// Settable lists the settings Set-CsHostingProvider can change (all but
// Identity and ProxyFqdn) with their values, in a fixed order.
func (p LyncHostingProvider) Settable() []LyncSetting {
	return []LyncSetting{
		{"Enabled", p.Enabled}, {"EnabledSharedAddressSpace", p.EnabledSharedAddressSpace},
		{"HostsOCSUsers", p.HostsOCSUsers}, {"IsLocal", p.IsLocal}, {"VerificationLevel", p.VerificationLevel},
	}
}

// SetDiff returns the Set-CsHostingProvider parameters that turn p into
// want, and the same differences in words.
func (p LyncHostingProvider) SetDiff(want LyncHostingProvider) (map[string]any, []string) {
	params := map[string]any{}
	var words []string
	have := p.Settable()
	for i, w := range want.Settable() {
		same := have[i].Value == w.Value
		if s, ok := w.Value.(string); ok {
			same = strings.EqualFold(have[i].Value.(string), s)
		}
		if !same {
			params[w.Name] = w.Value
			words = append(words, fmt.Sprintf("%s %v → %v", w.Name, LyncValue(have[i].Value), LyncValue(w.Value)))
		}
	}
	return params, words
}

// Equal reports whether two providers have the same settings.
func (p LyncHostingProvider) Equal(o LyncHostingProvider) bool {
	_, d := p.SetDiff(o)
	return len(d) == 0 && p.SameProxy(o) && strings.EqualFold(p.Identity, o.Identity)
}

// Differences lists, in words, what differs from want (ProxyFqdn first).
func (p LyncHostingProvider) Differences(want LyncHostingProvider) []string {
	var out []string
	if !p.SameProxy(want) {
		out = append(out, fmt.Sprintf("ProxyFqdn %s → %s", p.ProxyFqdn, want.ProxyFqdn))
	}
	_, d := p.SetDiff(want)
	return append(out, d...)
}

// String is the provider as New-CsHostingProvider parameters.
func (p LyncHostingProvider) String() string {
	return fmt.Sprintf("-Identity %q -Enabled %s -EnabledSharedAddressSpace %s -HostsOCSUsers %s -ProxyFqdn %q -IsLocal %s -VerificationLevel %s",
		p.Identity, LyncValue(p.Enabled), LyncValue(p.EnabledSharedAddressSpace), LyncValue(p.HostsOCSUsers), p.ProxyFqdn, LyncValue(p.IsLocal), p.VerificationLevel)
}

// LyncValue prints booleans as PowerShell does.
func LyncValue(v any) string {
	if b, ok := v.(bool); ok {
		if b {
			return "$True"
		}
		return "$False"
	}
	return fmt.Sprint(v)
}

// LyncReplica is one Central Management store replica's status: whether
// it has applied the latest snapshot, when it last reported, and when the
// latest snapshot was packaged for it (times are the Central Management
// Server's, so two of them compare without any clock skew).
type LyncReplica struct {
	Fqdn               string    `json:"fqdn"`
	UpToDate           bool      `json:"up_to_date"`
	LastStatusReport   time.Time `json:"last_status_report,omitempty"`
	LastUpdateCreation time.Time `json:"last_update_creation,omitempty"`
}

// LyncExternalAccessPolicy is an external access policy's remote-user switch.
type LyncExternalAccessPolicy struct {
	Identity            string `json:"identity"`
	EnableOutsideAccess bool   `json:"enable_outside_access"`
}

// LyncObserved is what discovery read from the Lync deployment.
type LyncObserved struct {
	AllowFederatedUsers bool                 `json:"allow_federated_users"`
	Provider            *LyncHostingProvider `json:"provider,omitempty"`
	// OtherProviders are the deployment's other hosting providers.
	OtherProviders []LyncHostingProvider      `json:"other_providers,omitempty"`
	Replicas       []LyncReplica              `json:"replicas,omitempty"`
	ExternalAccess []LyncExternalAccessPolicy `json:"external_access_policies,omitempty"`
	// Notes say what could not be read (replication status); discovery
	// goes on without it.
	Notes []string `json:"notes,omitempty"`
}

// DesiredLyncProvider is the hosting provider Microsoft documents for a
// cloud: ProxyFqdn is the cloud's, or override when set. It warns when the
// cloud's value is unconfirmed and no override is given.
func DesiredLyncProvider(cloudName, override string) (LyncHostingProvider, []string, error) {
	p, err := cloud.Lookup(cloudName)
	if err != nil {
		return LyncHostingProvider{}, nil, err
	}
	var warnings []string
	fqdn := LyncNormFqdn(override)
	if fqdn == "" {
		fqdn = p.LyncProxyFqdn
		if slices.Contains(p.Unconfirmed, lyncUnconfirmedProxyField) {
			warnings = append(warnings, fmt.Sprintf("the Lync hosting-provider ProxyFqdn for %s (%s) is not published by Microsoft; confirm it with Microsoft and set overrides.lync_proxy_fqdn",
				p.DisplayName, fqdn))
		}
	}
	if fqdn == "" || strings.ContainsAny(fqdn, " /:@\\") || !strings.Contains(fqdn, ".") {
		return LyncHostingProvider{}, nil, fmt.Errorf("lync proxy FQDN %q is not a fully qualified domain name", override)
	}
	return LyncHostingProvider{
		Identity: LyncProviderIdentity, Enabled: true, EnabledSharedAddressSpace: true, HostsOCSUsers: false,
		ProxyFqdn: fqdn, IsLocal: false, VerificationLevel: LyncVerificationLevel,
	}, warnings, nil
}

// LyncProviderChange is what it takes to turn the provider found into the
// one wanted.
type LyncProviderChange string

const (
	// LyncProviderCreate: there is none; New-CsHostingProvider.
	LyncProviderCreate LyncProviderChange = "create"
	// LyncProviderReplace: its ProxyFqdn differs, which Set-CsHostingProvider
	// cannot change: Remove-CsHostingProvider, then New-CsHostingProvider.
	LyncProviderReplace LyncProviderChange = "replace"
	// LyncProviderSet: other settings differ; Set-CsHostingProvider with
	// Params.
	LyncProviderSet LyncProviderChange = "set"
	// LyncProviderKeep: it already has every setting wanted.
	LyncProviderKeep LyncProviderChange = "keep"
)

// LyncProviderDecision says how a provider is brought to the wanted
// settings: the change, and for a set the parameters and their
// differences in words.
type LyncProviderDecision struct {
	Change LyncProviderChange
	Params map[string]any
	Words  []string
}

// DecideLyncProvider compares the provider found (nil: none) with the one
// wanted. The hosting-provider step and the undo that puts a previous
// provider back both act on it.
func DecideLyncProvider(cur *LyncHostingProvider, want LyncHostingProvider) LyncProviderDecision {
	switch {
	case cur == nil:
		return LyncProviderDecision{Change: LyncProviderCreate}
	case !cur.SameProxy(want):
		_, words := cur.SetDiff(want)
		return LyncProviderDecision{Change: LyncProviderReplace, Words: words}
	}
	params, words := cur.SetDiff(want)
	if len(params) == 0 {
		return LyncProviderDecision{Change: LyncProviderKeep}
	}
	return LyncProviderDecision{Change: LyncProviderSet, Params: params, Words: words}
}

// LyncLagging names the replicas that have not applied the latest snapshot.
func LyncLagging(rs []LyncReplica) []string {
	var out []string
	for _, r := range rs {
		if !r.UpToDate {
			out = append(out, r.Fqdn)
		}
	}
	return out
}

// LyncExternalAccessWarning is the warning when no external access policy
// allows remote users.
const LyncExternalAccessWarning = "no external access policy enables communications with remote users (EnableOutsideAccess): users signing in to IM from Outlook Web App count as remote users and need one assigned, " +
	"e.g. Set-CsExternalAccessPolicy -Identity Global -EnableOutsideAccess $True or a per-user policy (hybridflow does not change access policies)"

// LyncExternalAccessVerdict names the policies that enable communications
// with remote users, or returns the warning when none does.
func LyncExternalAccessVerdict(ps []LyncExternalAccessPolicy) (allowing []string, warning string) {
	for _, p := range ps {
		if p.EnableOutsideAccess {
			allowing = append(allowing, p.Identity)
		}
	}
	if len(allowing) == 0 {
		warning = LyncExternalAccessWarning
	}
	return allowing, warning
}

// LyncReplicaStale says what a replica still lacks before it can be said to
// hold the provider, or "". baseline is the status read just before the
// provider was written (empty: nothing was written in this run, and
// UpToDate alone says the replica holds the current store).
func LyncReplicaStale(rep LyncReplica, baseline []LyncReplica) string {
	if !rep.UpToDate {
		return "has not applied the latest snapshot (UpToDate False)"
	}
	if len(baseline) == 0 {
		return ""
	}
	if rep.LastUpdateCreation.IsZero() {
		return "reports no LastUpdateCreation, so nothing shows it received the change"
	}
	for _, b := range baseline {
		if strings.EqualFold(b.Fqdn, rep.Fqdn) && !rep.LastUpdateCreation.After(b.LastUpdateCreation) {
			return fmt.Sprintf("still reports the snapshot of %s, packaged before the provider was written (the Master Replicator has not packaged the change yet)",
				rep.LastUpdateCreation.Format(time.RFC3339Nano))
		}
	}
	return ""
}

// LyncStoreVerdict says why the Central Management store's provider (nil:
// none) cannot reach the Edge Server as wanted, or "" when it holds the
// wanted provider. Either way someone changed the store after the
// hosting-provider step: a conflict for an operator, not a wait.
func LyncStoreVerdict(cms *LyncHostingProvider, want LyncHostingProvider) string {
	switch {
	case cms == nil:
		return fmt.Sprintf("the Central Management store has no %q provider, so no replica can receive it; run the hosting-provider step (or find who removed it)", want.Identity)
	case !cms.Equal(want):
		return fmt.Sprintf("the Central Management store's provider is no longer the documented one (%s); it was changed after the hosting-provider step",
			strings.Join(cms.Differences(want), ", "))
	}
	return ""
}

// lyncInput is what every Lync policy sees.
type lyncInput struct {
	o    LyncObserved
	want LyncHostingProvider
	// edge names the Edge Servers' replicas (none: every replica).
	edge []string
}

// lyncPolicy decides one Lync step: its action and any warnings.
type lyncPolicy func(in lyncInput) (Action, []string)

// lyncChain is the Lync workflow's order (LyncSteps).
var lyncChain = []struct {
	step Step
	fn   lyncPolicy
}{
	{LyncStepFederation, lyncFederationPolicy},
	{LyncStepHostingProvider, lyncProviderPolicy},
	{LyncStepReplication, lyncReplicationPolicy},
	{LyncStepEdgeStore, lyncEdgePolicy},
	{LyncStepExternalAccess, lyncExternalAccessPolicy},
}

// BuildLyncPlan says, per Lync step, what a run would change and why; edge
// names the Edge Servers' replicas (none: every replica is checked).
func BuildLyncPlan(o LyncObserved, want LyncHostingProvider, edge []string) ([]Action, []string) {
	in := lyncInput{o: o, want: want, edge: edge}
	var warnings []string
	out := make([]Action, 0, len(lyncChain))
	for _, c := range lyncChain {
		a, w := c.fn(in)
		a.Step = c.step
		out = append(out, a)
		warnings = append(warnings, w...)
	}
	return out, warnings
}

func lyncFederationPolicy(in lyncInput) (Action, []string) {
	if in.o.AllowFederatedUsers {
		return Action{Change: ChangeNone, Reason: "AllowFederatedUsers is already $True on the access edge configuration"}, nil
	}
	return Action{Change: ChangeUpdate,
		Reason:  "AllowFederatedUsers is $False; the shared SIP address space with Exchange Online needs it $True",
		Details: []string{"Set-CsAccessEdgeConfiguration -AllowFederatedUsers $True"}}, nil
}

func lyncProviderPolicy(in lyncInput) (Action, []string) {
	want, cur := in.want, in.o.Provider
	var a Action
	switch d := DecideLyncProvider(cur, want); d.Change {
	case LyncProviderCreate:
		a = Action{Change: ChangeCreate, Reason: fmt.Sprintf("there is no %q hosting provider", want.Identity),
			Details: []string{"New-CsHostingProvider " + want.String()}}
	case LyncProviderReplace:
		a = Action{Change: ChangeUpdate,
			Reason:  fmt.Sprintf("ProxyFqdn is %s, not %s; it cannot be changed in place, so the provider is removed and re-created", cur.ProxyFqdn, want.ProxyFqdn),
			Details: []string{fmt.Sprintf("Remove-CsHostingProvider -Identity %q", cur.Identity), "New-CsHostingProvider " + want.String()}}
		if len(d.Words) > 0 {
			a.Details = append(a.Details, "also differs: "+strings.Join(d.Words, ", "))
		}
	case LyncProviderSet:
		a = Action{Change: ChangeUpdate, Reason: "the provider differs from the documented settings: " + strings.Join(d.Words, ", "),
			Details: []string{"Set-CsHostingProvider in place (ProxyFqdn already " + want.ProxyFqdn + ")"}}
	default:
		a = Action{Change: ChangeNone, Reason: fmt.Sprintf("%q already has the documented settings (ProxyFqdn %s)", want.Identity, want.ProxyFqdn)}
	}
	return a, lyncSameProxyWarnings(in)
}

// lyncSameProxyWarnings names the other providers that use the wanted
// proxy: hybridflow leaves them alone.
func lyncSameProxyWarnings(in lyncInput) []string {
	var out []string
	for _, p := range in.o.OtherProviders {
		if p.SameProxy(in.want) {
			out = append(out, fmt.Sprintf("hosting provider %q also uses ProxyFqdn %s; Microsoft's procedure names the provider %q, and hybridflow leaves %q as it is",
				p.Identity, p.ProxyFqdn, in.want.Identity, p.Identity))
		}
	}
	return out
}

func lyncReplicationPolicy(in lyncInput) (Action, []string) {
	a := Action{Change: ChangeCheck, Reason: "wait until Get-CsManagementStoreReplicationStatus shows every replica up to date"}
	if lag := LyncLagging(in.o.Replicas); len(lag) > 0 {
		a.Details = []string{"not up to date now: " + strings.Join(lag, ", ")}
	} else if len(in.o.Replicas) > 0 {
		a.Details = []string{fmt.Sprintf("all %d replica(s) up to date now", len(in.o.Replicas))}
	}
	return a, nil
}

// lyncEdgePolicy is the Edge step's plan: which replicas it will check,
// and how they stand now.
func lyncEdgePolicy(in lyncInput) (Action, []string) {
	a := Action{Change: ChangeCheck}
	if len(in.edge) > 0 {
		a.Reason = fmt.Sprintf("confirm from the site's internal server that the Edge Server's replica (%s) has applied a snapshot made after the hosting provider was written (Get-CsManagementStoreReplicationStatus -ReplicaFqdn: UpToDate, LastUpdateCreation)",
			strings.Join(in.edge, ", "))
	} else {
		a.Reason = "confirm from the site's internal server that every Central Management store replica, the Edge Server's included, has applied a snapshot made after the hosting provider was written (Get-CsManagementStoreReplicationStatus: UpToDate, LastUpdateCreation)"
	}
	var now []string
	for _, r := range in.o.Replicas {
		if len(in.edge) > 0 && !slices.ContainsFunc(in.edge, func(e string) bool { return strings.EqualFold(e, r.Fqdn) }) {
			continue
		}
		st := "up to date"
		if !r.UpToDate {
			st = "not up to date"
		}
		if !r.LastUpdateCreation.IsZero() {
			st += ", last snapshot " + r.LastUpdateCreation.Format(time.RFC3339)
		}
		now = append(now, r.Fqdn+": "+st)
	}
	if len(now) > 0 {
		a.Details = append([]string{"now:"}, now...)
	}
	return a, nil
}

func lyncExternalAccessPolicy(in lyncInput) (Action, []string) {
	a := Action{Change: ChangeCheck, Reason: "report whether an external access policy enables communications with remote users"}
	allowing, warn := LyncExternalAccessVerdict(in.o.ExternalAccess)
	if warn != "" {
		a.Details = []string{"none does now"}
		return a, []string{warn}
	}
	a.Details = []string{"enabled in: " + strings.Join(allowing, ", ")}
	return a, nil
}
