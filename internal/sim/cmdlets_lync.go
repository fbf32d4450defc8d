package sim

// Lync Server 2013 / Skype for Business cmdlets, served through the
// PowerShell host protocol.
//
// Where a command runs matters. The site's Lync Server Management Shell
// runs on an internal server (LyncDeployment.Host); Get-CsHostingProvider
// -LocalStore reads the local replica of the Central Management store of
// that machine, which is not the Edge Server's. Only the Edge Server's
// replica is EdgeLocalStore.
//
// Replication is modelled by reads, not by time. A configuration change is
// packaged by the Master Replicator into a snapshot (at once, or after
// SnapshotDelayChecks status reads); packaging marks every replica out of
// date, stamps its LastUpdateCreation, and each replica then applies the
// snapshot after its LagChecks further status reads (-1: never). A replica
// that has applied the latest snapshot reports UpToDate and holds a copy of
// it in its local store. A check that does not wait, or that reads the
// wrong machine's store, therefore sees the old state, as it would in real
// life.

import (
	"strings"
	"time"

	"github.com/hybridflow/hybridflow/internal/exchange"
)

func init() {
	register(Lync, "Get-CsAccessEdgeConfiguration", lyncGetAccessEdge)
	register(Lync, "Set-CsAccessEdgeConfiguration", lyncSetAccessEdge)
	register(Lync, "Get-CsHostingProvider", lyncGetHostingProvider)
	register(Lync, "New-CsHostingProvider", lyncNewHostingProvider)
	register(Lync, "Set-CsHostingProvider", lyncSetHostingProvider)
	register(Lync, "Remove-CsHostingProvider", lyncRemoveHostingProvider)
	register(Lync, "Get-CsManagementStoreReplicationStatus", lyncGetReplicationStatus)
	register(Lync, "Get-CsExternalAccessPolicy", lyncGetExternalAccessPolicy)
}

const (
	lyncHostingProviderKind = "HostingProvider"
	lyncGlobal              = "Global"
	// LyncRoleEdge marks the Edge Server's replica (Replica.Role).
	LyncRoleEdge = "edge"
)

var lyncVerificationLevels = []string{"UseSourceVerification", "AlwaysVerifiable", "AlwaysUnverifiable"}

// lyncLive is a deployment's replication state that no world file states:
// the snapshot the Master Replicator packaged last, when, and how many
// status reads remain before a pending change is packaged.
type lyncLive struct {
	started    bool
	snapshot   []*HostingProvider
	at         time.Time
	unpackaged int
}

// lyncInitialSnapshotAge is how long before the world's first Lync call the
// configuration it starts with was packaged.
const lyncInitialSnapshotAge = time.Hour

// lyncDeployment is the tenant's topology; without one the Lync module
// would not even have loaded. On first use the deployment's starting
// configuration counts as packaged and applied by the replicas that are
// up to date.
func lyncDeployment(c *Call) (*LyncDeployment, *exchange.Error) {
	if c.Tenant.Lync == nil {
		return nil, &exchange.Error{Type: "System.Management.Automation.CommandNotFoundException",
			Message: "The Lync Server management module is not available for this organisation.", Category: "ObjectNotFound"}
	}
	d := c.Tenant.Lync
	if !d.live.started {
		d.live.started = true
		d.live.snapshot = lyncCopyProviders(d.HostingProviders)
		d.live.at = c.World.Now().Add(-lyncInitialSnapshotAge)
		for _, r := range d.Replicas {
			r.lastUpdateCreation = d.live.at
			if r.UpToDate {
				r.lastStatusReport = d.live.at
				if !lyncIsEdge(r) {
					r.store = lyncCopyProviders(d.live.snapshot)
				}
			}
		}
	}
	return d, nil
}

func lyncCopyProviders(list []*HostingProvider) []*HostingProvider {
	out := make([]*HostingProvider, len(list))
	for i, hp := range list {
		cp := *hp
		out[i] = &cp
	}
	return out
}

func lyncIsEdge(r *Replica) bool { return strings.EqualFold(r.Role, LyncRoleEdge) }

// lyncChanged records a CMS write: it is packaged for the replicas now or
// after the deployment's snapshot delay, and the write is counted. It does
// not restart Exchange's OAuth propagation delay (touch), which Lync
// changes have nothing to do with.
func lyncChanged(c *Call, d *LyncDeployment) {
	c.World.countWrite(c.Tenant.ID)
	if d.SnapshotDelayChecks > 0 {
		if d.live.unpackaged == 0 {
			d.live.unpackaged = d.SnapshotDelayChecks
		}
		return
	}
	lyncPackage(c, d)
}

// lyncPackage is the Master Replicator's snapshot of the CMS: every
// replica is out of date until it applies it. Snapshot times only move
// forward, even in a world whose clock stands still.
func lyncPackage(c *Call, d *LyncDeployment) {
	at := c.World.Now()
	if !at.After(d.live.at) {
		at = d.live.at.Add(time.Millisecond)
	}
	d.live.snapshot, d.live.at, d.live.unpackaged = lyncCopyProviders(d.HostingProviders), at, 0
	for _, r := range d.Replicas {
		r.UpToDate = false
		r.pending = max(r.LagChecks, 0)
		r.lastUpdateCreation = at
	}
}

// lyncSync gives every replica that has applied the latest snapshot a copy
// of it: the Edge Server's replica is EdgeLocalStore. Without a replica
// marked as the Edge, the Edge store follows the whole replica set.
func lyncSync(d *LyncDeployment) {
	edgeMarked, all := false, true
	for _, r := range d.Replicas {
		edgeMarked = edgeMarked || lyncIsEdge(r)
		all = all && r.UpToDate
		if !r.UpToDate {
			continue
		}
		if lyncIsEdge(r) {
			d.EdgeLocalStore = lyncCopyProviders(d.live.snapshot)
		} else {
			r.store = lyncCopyProviders(d.live.snapshot)
		}
	}
	if !edgeMarked && all {
		d.EdgeLocalStore = lyncCopyProviders(d.live.snapshot)
	}
}

// lyncLocalStore is the local replica of the machine the shell runs on:
// Host, else the first replica that is not the Edge Server's. Nil when the
// topology names no such machine.
func lyncLocalStore(d *LyncDeployment) []*HostingProvider {
	for _, r := range d.Replicas {
		if d.Host != "" && !strings.EqualFold(r.Fqdn, d.Host) || d.Host == "" && lyncIsEdge(r) {
			continue
		}
		if lyncIsEdge(r) {
			return d.EdgeLocalStore
		}
		return r.store
	}
	return nil
}

func lyncGetAccessEdge(c *Call) ([]exchange.Row, *exchange.Error) {
	d, err := lyncDeployment(c)
	if err != nil {
		return nil, err
	}
	if err := onpremBind(c.Params, "Identity"); err != nil {
		return nil, err
	}
	if id := c.Params.String("Identity"); id != "" && !strings.EqualFold(id, lyncGlobal) {
		return []exchange.Row{}, nil
	}
	return []exchange.Row{{"Identity": lyncGlobal, "AllowFederatedUsers": d.AllowFederatedUsers}}, nil
}

func lyncSetAccessEdge(c *Call) ([]exchange.Row, *exchange.Error) {
	d, err := lyncDeployment(c)
	if err != nil {
		return nil, err
	}
	if err := onpremBind(c.Params, "Identity", "AllowFederatedUsers"); err != nil {
		return nil, err
	}
	if id := c.Params.String("Identity"); id != "" && !strings.EqualFold(id, lyncGlobal) {
		return nil, notFound("AccessEdgeConfiguration", id)
	}
	if !c.Params.Has("AllowFederatedUsers") || c.Params.Bool("AllowFederatedUsers") == d.AllowFederatedUsers {
		c.Warn("No changes were made to the Access Edge configuration.")
		return nil, nil
	}
	d.AllowFederatedUsers = c.Params.Bool("AllowFederatedUsers")
	lyncChanged(c, d)
	return nil, nil
}

func lyncHostingProviderRow(hp *HostingProvider) exchange.Row {
	return exchange.Row{
		"Identity":                  hp.Identity,
		"Name":                      hp.Identity,
		"Enabled":                   hp.Enabled,
		"EnabledSharedAddressSpace": hp.EnabledSharedAddressSpace,
		"HostsOCSUsers":             hp.HostsOCSUsers,
		"ProxyFqdn":                 hp.ProxyFqdn,
		"IsLocal":                   hp.IsLocal,
		"VerificationLevel":         hp.VerificationLevel,
	}
}

func lyncFindHostingProvider(list []*HostingProvider, identity string) (int, *HostingProvider) {
	for i, hp := range list {
		if strings.EqualFold(hp.Identity, identity) {
			return i, hp
		}
	}
	return -1, nil
}

// lyncGetHostingProvider reads the CMS, or with -LocalStore the local
// replica of the machine the shell runs on (the site's internal server,
// not the Edge). Like Lync's Get- cmdlets it returns nothing, not an
// error, for an identity that does not exist.
func lyncGetHostingProvider(c *Call) ([]exchange.Row, *exchange.Error) {
	d, err := lyncDeployment(c)
	if err != nil {
		return nil, err
	}
	if err := onpremBind(c.Params, "Identity", "LocalStore", "Filter"); err != nil {
		return nil, err
	}
	list := d.HostingProviders
	if c.Params.Bool("LocalStore") {
		lyncSync(d)
		list = lyncLocalStore(d)
	}
	id := c.Params.String("Identity")
	rows := []exchange.Row{}
	for _, hp := range list {
		if id == "" || strings.EqualFold(hp.Identity, id) {
			rows = append(rows, lyncHostingProviderRow(hp))
		}
	}
	return rows, nil
}

func lyncVerificationLevel(raw string) (string, *exchange.Error) {
	for _, v := range lyncVerificationLevels {
		if strings.EqualFold(v, raw) {
			return v, nil
		}
	}
	return "", invalid("Cannot bind parameter 'VerificationLevel'. Cannot convert value \"%s\" to type \"VerificationLevel\".", raw)
}

func lyncProxyFqdn(raw string) (string, *exchange.Error) {
	f := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(raw), "."))
	if f == "" || strings.ContainsAny(f, " /:@\\") || !strings.Contains(f, ".") {
		return "", invalid("Cannot bind parameter 'ProxyFqdn': \"%s\" is not a fully qualified domain name.", raw)
	}
	return f, nil
}

func lyncNewHostingProvider(c *Call) ([]exchange.Row, *exchange.Error) {
	d, err := lyncDeployment(c)
	if err != nil {
		return nil, err
	}
	if err := onpremBind(c.Params, "Identity", "Enabled", "EnabledSharedAddressSpace", "HostsOCSUsers", "ProxyFqdn", "IsLocal", "VerificationLevel"); err != nil {
		return nil, err
	}
	id, err := onpremRequire(c.Params, "Identity")
	if err != nil {
		return nil, err
	}
	fqdn, err := lyncProxyFqdn(c.Params.String("ProxyFqdn"))
	if err != nil {
		return nil, err
	}
	level := "AlwaysVerifiable"
	if c.Params.Has("VerificationLevel") {
		if level, err = lyncVerificationLevel(c.Params.String("VerificationLevel")); err != nil {
			return nil, err
		}
	}
	if _, existing := lyncFindHostingProvider(d.HostingProviders, id); existing != nil {
		return nil, alreadyExists(lyncHostingProviderKind, id)
	}
	hp := &HostingProvider{
		Identity:                  id,
		Enabled:                   c.Params.Bool("Enabled"),
		EnabledSharedAddressSpace: c.Params.Bool("EnabledSharedAddressSpace"),
		HostsOCSUsers:             c.Params.Bool("HostsOCSUsers"),
		ProxyFqdn:                 fqdn,
		IsLocal:                   c.Params.Bool("IsLocal"),
		VerificationLevel:         level,
	}
	d.HostingProviders = append(d.HostingProviders, hp)
	lyncChanged(c, d)
	return []exchange.Row{lyncHostingProviderRow(hp)}, nil
}

// lyncSetHostingProvider changes a provider in place. It has no
// -ProxyFqdn: changing the proxy means remove and re-create, so passing it
// fails parameter binding like any unknown parameter.
func lyncSetHostingProvider(c *Call) ([]exchange.Row, *exchange.Error) {
	d, err := lyncDeployment(c)
	if err != nil {
		return nil, err
	}
	if err := onpremBind(c.Params, "Identity", "Enabled", "EnabledSharedAddressSpace", "HostsOCSUsers", "IsLocal", "VerificationLevel"); err != nil {
		return nil, err
	}
	id, err := onpremRequire(c.Params, "Identity")
	if err != nil {
		return nil, err
	}
	_, hp := lyncFindHostingProvider(d.HostingProviders, id)
	if hp == nil {
		return nil, notFound(lyncHostingProviderKind, id)
	}
	next := *hp
	for name, field := range map[string]*bool{
		"Enabled": &next.Enabled, "EnabledSharedAddressSpace": &next.EnabledSharedAddressSpace,
		"HostsOCSUsers": &next.HostsOCSUsers, "IsLocal": &next.IsLocal,
	} {
		if c.Params.Has(name) {
			*field = c.Params.Bool(name)
		}
	}
	if c.Params.Has("VerificationLevel") {
		if next.VerificationLevel, err = lyncVerificationLevel(c.Params.String("VerificationLevel")); err != nil {
			return nil, err
		}
	}
	if next == *hp {
		c.Warn("No changes were made to hosting provider '%s'.", hp.Identity)
		return nil, nil
	}
	*hp = next
	lyncChanged(c, d)
	return nil, nil
}

func lyncRemoveHostingProvider(c *Call) ([]exchange.Row, *exchange.Error) {
	d, err := lyncDeployment(c)
	if err != nil {
		return nil, err
	}
	if err := onpremBind(c.Params, "Identity"); err != nil {
		return nil, err
	}
	id, err := onpremRequire(c.Params, "Identity")
	if err != nil {
		return nil, err
	}
	i, hp := lyncFindHostingProvider(d.HostingProviders, id)
	if hp == nil {
		return nil, notFound(lyncHostingProviderKind, id)
	}
	d.HostingProviders = append(d.HostingProviders[:i:i], d.HostingProviders[i+1:]...)
	lyncChanged(c, d)
	return nil, nil
}

// lyncGetReplicationStatus is the clock of replication: each read brings
// every lagging replica one step closer, then packages a change whose
// snapshot delay has run out. One row per replica (or the one -ReplicaFqdn
// names) with UpToDate, LastStatusReport and LastUpdateCreation.
func lyncGetReplicationStatus(c *Call) ([]exchange.Row, *exchange.Error) {
	d, err := lyncDeployment(c)
	if err != nil {
		return nil, err
	}
	if err := onpremBind(c.Params, "ReplicaFqdn", "CentralManagementStoreStatus"); err != nil {
		return nil, err
	}
	now := c.World.Now()
	for _, r := range d.Replicas {
		switch {
		case r.LagChecks < 0: // its replication agent is not reporting
			continue
		case r.UpToDate:
		case r.pending > 0:
			r.pending--
		default:
			r.UpToDate = true
		}
		r.lastStatusReport = now
	}
	if d.live.unpackaged > 0 {
		if d.live.unpackaged--; d.live.unpackaged == 0 {
			lyncPackage(c, d)
		}
	}
	lyncSync(d)
	only := c.Params.String("ReplicaFqdn")
	rows := []exchange.Row{}
	for _, r := range d.Replicas {
		if only != "" && !strings.EqualFold(only, r.Fqdn) {
			continue
		}
		rows = append(rows, exchange.Row{"ReplicaFqdn": r.Fqdn, "UpToDate": r.UpToDate,
			"LastStatusReport": lyncTime(r.lastStatusReport), "LastUpdateCreation": lyncTime(r.lastUpdateCreation)})
	}
	return rows, nil
}

// lyncTime is a DateTime as the host serialises it (ISO 8601, sub-second),
// or null.
func lyncTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func lyncGetExternalAccessPolicy(c *Call) ([]exchange.Row, *exchange.Error) {
	d, err := lyncDeployment(c)
	if err != nil {
		return nil, err
	}
	if err := onpremBind(c.Params, "Identity"); err != nil {
		return nil, err
	}
	id := c.Params.String("Identity")
	rows := []exchange.Row{}
	for _, p := range d.ExternalAccessPolicies {
		if id == "" || strings.EqualFold(p.Identity, id) {
			rows = append(rows, exchange.Row{"Identity": p.Identity, "EnableOutsideAccess": p.EnableOutsideAccess})
		}
	}
	return rows, nil
}
