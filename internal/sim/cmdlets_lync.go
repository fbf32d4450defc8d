package sim

// Lync Server 2013 / Skype for Business cmdlets (side Lync, seed 003,
// FACTS §8), served through the PowerShell host protocol.
//
// Replication is modelled by reads, not by time: every configuration
// change marks each Central Management store replica out of date for its
// next LagChecks status reads (-1: never catches up), and the Edge
// server's local store receives the CMS state only once every replica is
// up to date. A workflow that confirms on the Edge without waiting for
// replication therefore sees the old state, as it would in real life.

import (
	"strings"

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
)

var lyncVerificationLevels = []string{"UseSourceVerification", "AlwaysVerifiable", "AlwaysUnverifiable"}

// lyncDeployment is the tenant's topology; without one the Lync module
// would not even have loaded.
func lyncDeployment(c *Call) (*LyncDeployment, *exchange.Error) {
	if c.Tenant.Lync == nil {
		return nil, &exchange.Error{Type: "System.Management.Automation.CommandNotFoundException",
			Message: "The Lync Server management module is not available for this organisation.", Category: "ObjectNotFound"}
	}
	return c.Tenant.Lync, nil
}

// lyncChanged records a CMS write: replicas fall behind, and the write is
// counted. It does not restart Exchange's OAuth propagation delay (touch),
// which Lync changes have nothing to do with.
func lyncChanged(c *Call, d *LyncDeployment) {
	for _, r := range d.Replicas {
		r.UpToDate = false
		r.pending = max(r.LagChecks, 0)
	}
	c.World.countWrite(c.Tenant.ID)
}

// lyncSyncEdge copies the CMS hosting providers to the Edge's local store
// once every replica is up to date.
func lyncSyncEdge(d *LyncDeployment) {
	for _, r := range d.Replicas {
		if !r.UpToDate {
			return
		}
	}
	d.EdgeLocalStore = make([]*HostingProvider, len(d.HostingProviders))
	for i, hp := range d.HostingProviders {
		cp := *hp
		d.EdgeLocalStore[i] = &cp
	}
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

// lyncGetHostingProvider reads the CMS, or with -LocalStore the Edge
// server's replica. Like Lync's Get- cmdlets it returns nothing, not an
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
		lyncSyncEdge(d)
		list = d.EdgeLocalStore
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
// -ProxyFqdn: changing the proxy means remove and re-create (FACTS §8),
// so passing it fails parameter binding like any unknown parameter.
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
// every lagging replica one step closer.
func lyncGetReplicationStatus(c *Call) ([]exchange.Row, *exchange.Error) {
	d, err := lyncDeployment(c)
	if err != nil {
		return nil, err
	}
	if err := onpremBind(c.Params, "ReplicaFqdn", "CentralManagementStoreStatus"); err != nil {
		return nil, err
	}
	for _, r := range d.Replicas {
		switch {
		case r.UpToDate || r.LagChecks < 0:
		case r.pending > 0:
			r.pending--
		default:
			r.UpToDate = true
		}
	}
	lyncSyncEdge(d)
	now := onpremTime(c.World.Now())
	only := c.Params.String("ReplicaFqdn")
	rows := []exchange.Row{}
	for _, r := range d.Replicas {
		if only != "" && !strings.EqualFold(only, r.Fqdn) {
			continue
		}
		rows = append(rows, exchange.Row{"ReplicaFqdn": r.Fqdn, "UpToDate": r.UpToDate, "LastStatusReport": now})
	}
	return rows, nil
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
