package sim

// Exchange Online cmdlets (side Online), served through InvokeCommand
// (exo.go). They are self-contained on purpose: the on-prem engine
// (cmdlets_onprem.go) implements the same IntraOrganizationConnector
// semantics for its side, and the two must agree only on behaviour, which
// the tests of both pin down.

import (
	"net/url"
	"strings"

	"github.com/hybridflow/hybridflow/internal/exchange"
)

func init() {
	register(Online, "Get-IntraOrganizationConnector", onlineGetIOC)
	register(Online, "New-IntraOrganizationConnector", onlineNewIOC)
	register(Online, "Set-IntraOrganizationConnector", onlineSetIOC)
	register(Online, "Remove-IntraOrganizationConnector", onlineRemoveIOC)
	register(Online, "Get-OrganizationConfig", onlineGetOrganizationConfig)
	register(Online, "Get-AcceptedDomain", onlineGetAcceptedDomain)
	register(Online, "Get-IntraOrganizationConfiguration", onlineGetIntraOrganizationConfiguration)
}

const onlineIOCKind = "IntraOrganizationConnector"

func onlineIOCRow(ioc *IntraOrgConnector) exchange.Row {
	return exchange.Row{
		"Identity":             ioc.Name,
		"Name":                 ioc.Name,
		"DiscoveryEndpoint":    ioc.DiscoveryEndpoint,
		"TargetAddressDomains": append([]string{}, ioc.TargetAddressDomains...),
		"Enabled":              ioc.Enabled,
	}
}

func onlineFindIOC(org *ExchangeOrg, identity string) (int, *IntraOrgConnector) {
	for i, ioc := range org.IntraOrganizationConnectors {
		if strings.EqualFold(ioc.Name, identity) {
			return i, ioc
		}
	}
	return -1, nil
}

// onlineIOCDomains normalises -TargetAddressDomains: trimmed, lower-case,
// without duplicates, as Exchange stores SmtpDomain values.
func onlineIOCDomains(raw []string) ([]string, *exchange.Error) {
	seen := map[string]bool{}
	var out []string
	for _, r := range raw {
		for _, d := range strings.Split(r, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			if d == "" {
				continue
			}
			if strings.ContainsAny(d, " @/") || !strings.Contains(d, ".") {
				return nil, invalid("Cannot bind parameter 'TargetAddressDomains': %q is not a valid SMTP domain.", d)
			}
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	return out, nil
}

func onlineDiscoveryEndpoint(raw string) (string, *exchange.Error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || !u.IsAbs() || u.Host == "" {
		return "", invalid("Cannot bind parameter 'DiscoveryEndpoint': %q is not an absolute URI.", raw)
	}
	return u.String(), nil
}

// onlineIOCDomainConflict returns the first domain that another connector
// (not skip) already targets: Exchange refuses to route a domain twice.
func onlineIOCDomainConflict(org *ExchangeOrg, skip *IntraOrgConnector, domains []string) *exchange.Error {
	for _, other := range org.IntraOrganizationConnectors {
		if other == skip {
			continue
		}
		for _, d := range domains {
			for _, od := range other.TargetAddressDomains {
				if strings.EqualFold(d, od) {
					return &exchange.Error{
						Type:     exchange.TypeDuplicateIOCDomain,
						Message:  "The domain '" + d + "' is already used by IntraOrganizationConnector '" + other.Name + "'.",
						Category: "InvalidOperation",
					}
				}
			}
		}
	}
	return nil
}

func onlineGetIOC(c *Call) ([]exchange.Row, *exchange.Error) {
	if id := c.Params.String("Identity"); id != "" {
		_, ioc := onlineFindIOC(c.Org, id)
		if ioc == nil {
			return nil, notFound(onlineIOCKind, id)
		}
		return []exchange.Row{onlineIOCRow(ioc)}, nil
	}
	rows := make([]exchange.Row, 0, len(c.Org.IntraOrganizationConnectors))
	for _, ioc := range c.Org.IntraOrganizationConnectors {
		rows = append(rows, onlineIOCRow(ioc))
	}
	return rows, nil
}

func onlineNewIOC(c *Call) ([]exchange.Row, *exchange.Error) {
	name := strings.TrimSpace(c.Params.String("Name"))
	if name == "" {
		return nil, invalid("Cannot bind argument to parameter 'Name' because it is an empty string.")
	}
	endpoint, err := onlineDiscoveryEndpoint(c.Params.String("DiscoveryEndpoint"))
	if err != nil {
		return nil, err
	}
	domains, err := onlineIOCDomains(c.Params.Strings("TargetAddressDomains"))
	if err != nil {
		return nil, err
	}
	if len(domains) == 0 {
		return nil, invalid("Cannot bind argument to parameter 'TargetAddressDomains' because it is empty.")
	}
	if _, existing := onlineFindIOC(c.Org, name); existing != nil {
		return nil, alreadyExists(onlineIOCKind, name)
	}
	if err := onlineIOCDomainConflict(c.Org, nil, domains); err != nil {
		return nil, err
	}
	enabled := true
	if c.Params.Has("Enabled") {
		enabled = c.Params.Bool("Enabled")
	}
	ioc := &IntraOrgConnector{Name: name, DiscoveryEndpoint: endpoint, TargetAddressDomains: domains, Enabled: enabled, CreatedBy: "client"}
	c.Org.IntraOrganizationConnectors = append(c.Org.IntraOrganizationConnectors, ioc)
	c.touch()
	return []exchange.Row{onlineIOCRow(ioc)}, nil
}

func onlineSetIOC(c *Call) ([]exchange.Row, *exchange.Error) {
	id := c.Params.String("Identity")
	if id == "" {
		return nil, invalid("Cannot bind argument to parameter 'Identity' because it is an empty string.")
	}
	_, ioc := onlineFindIOC(c.Org, id)
	if ioc == nil {
		return nil, notFound(onlineIOCKind, id)
	}
	next := *ioc
	if c.Params.Has("DiscoveryEndpoint") {
		endpoint, err := onlineDiscoveryEndpoint(c.Params.String("DiscoveryEndpoint"))
		if err != nil {
			return nil, err
		}
		next.DiscoveryEndpoint = endpoint
	}
	if c.Params.Has("TargetAddressDomains") {
		domains, err := onlineIOCDomains(c.Params.Strings("TargetAddressDomains"))
		if err != nil {
			return nil, err
		}
		if len(domains) == 0 {
			return nil, invalid("Cannot bind argument to parameter 'TargetAddressDomains' because it is empty.")
		}
		if err := onlineIOCDomainConflict(c.Org, ioc, domains); err != nil {
			return nil, err
		}
		next.TargetAddressDomains = domains
	}
	if c.Params.Has("Enabled") {
		next.Enabled = c.Params.Bool("Enabled")
	}
	if next.DiscoveryEndpoint == ioc.DiscoveryEndpoint && next.Enabled == ioc.Enabled && onlineSameDomains(next.TargetAddressDomains, ioc.TargetAddressDomains) {
		// Exchange writes nothing and says so on the warning stream; the
		// propagation delay must not restart for a no-op.
		c.Warn("The command completed successfully but no settings of '%s' have been modified.", ioc.Name)
		return nil, nil
	}
	*ioc = next
	c.touch()
	return nil, nil
}

func onlineSameDomains(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		found := false
		for _, y := range b {
			if strings.EqualFold(x, y) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func onlineRemoveIOC(c *Call) ([]exchange.Row, *exchange.Error) {
	id := c.Params.String("Identity")
	if id == "" {
		return nil, invalid("Cannot bind argument to parameter 'Identity' because it is an empty string.")
	}
	i, ioc := onlineFindIOC(c.Org, id)
	if ioc == nil {
		return nil, notFound(onlineIOCKind, id)
	}
	c.Org.IntraOrganizationConnectors = append(c.Org.IntraOrganizationConnectors[:i:i], c.Org.IntraOrganizationConnectors[i+1:]...)
	c.touch()
	return nil, nil
}

// onlineGetOrganizationConfig answers the fields discovery uses. Exchange
// Online names the organisation after the tenant's initial domain.
func onlineGetOrganizationConfig(c *Call) ([]exchange.Row, *exchange.Error) {
	name := oauthInitialDomain(c.Tenant)
	return []exchange.Row{{
		"Identity":    name,
		"Name":        name,
		"DisplayName": c.Tenant.DisplayName,
		"Guid":        c.Org.OrganizationGUID,
	}}, nil
}

// onlineAcceptedDomains are the organisation's accepted domains. Exchange
// Online derives them from the tenant's verified domains, so a world that
// lists none for Exchange Online falls back to Entra's.
func onlineAcceptedDomains(t *Tenant) []AcceptedDomain {
	if len(t.Online.AcceptedDomains) > 0 {
		return t.Online.AcceptedDomains
	}
	var out []AcceptedDomain
	for _, d := range t.Entra.Domains {
		if d.IsVerified || d.IsInitial {
			out = append(out, AcceptedDomain{DomainName: d.ID, Default: d.IsDefault})
		}
	}
	return out
}

func onlineGetAcceptedDomain(c *Call) ([]exchange.Row, *exchange.Error) {
	p, perr := oauthProfile(c.Tenant)
	if perr != nil {
		return nil, perr
	}
	id := c.Params.String("Identity")
	var rows []exchange.Row
	for _, d := range onlineAcceptedDomains(c.Tenant) {
		if id != "" && !strings.EqualFold(id, d.DomainName) {
			continue
		}
		rows = append(rows, exchange.Row{
			"Identity":      d.DomainName,
			"Name":          d.DomainName,
			"DomainName":    d.DomainName,
			"DomainType":    "Authoritative",
			"Default":       d.Default,
			"InitialDomain": p.IsInitialDomain(d.DomainName),
		})
	}
	if id != "" && len(rows) == 0 {
		return nil, notFound("AcceptedDomain", id)
	}
	return rows, nil
}

// onlineGetIntraOrganizationConfiguration answers what step 7 needs from
// Exchange Online's point of view: its own endpoint and routing domain, and
// the on-prem endpoints and SMTP domains it knows from the hybrid
// configuration (here: read from the on-prem organisation).
func onlineGetIntraOrganizationConfiguration(c *Call) ([]exchange.Row, *exchange.Error) {
	p, perr := oauthProfile(c.Tenant)
	if perr != nil {
		return nil, perr
	}
	t := c.Tenant
	routing := p.RoutingDomain(oauthInitialDomain(t))
	for _, d := range onlineAcceptedDomains(t) {
		if p.IsRoutingDomain(d.DomainName) {
			routing = d.DomainName
			break
		}
	}
	var onPremDomains []string
	for _, d := range t.OnPrem.AcceptedDomains {
		if !p.IsRoutingDomain(d.DomainName) && !p.IsInitialDomain(d.DomainName) {
			onPremDomains = append(onPremDomains, d.DomainName)
		}
	}
	var autodiscover, ews string
	for _, vd := range t.OnPrem.VirtualDirectories {
		switch {
		case strings.EqualFold(vd.Kind, "Autodiscover") && autodiscover == "" && vd.ExternalURL != "":
			autodiscover = vd.ExternalURL
		case strings.EqualFold(vd.Kind, "WebServices") && ews == "" && vd.ExternalURL != "":
			ews = vd.ExternalURL
		}
	}
	if autodiscover == "" && ews != "" {
		// Exchange publishes autodiscover next to EWS when no Autodiscover
		// virtual directory has an external URL of its own.
		if u, err := url.Parse(ews); err == nil {
			autodiscover = "https://" + u.Host + "/autodiscover/autodiscover.svc"
		}
	}
	return []exchange.Row{{
		"OnlineDiscoveryEndpoint":     p.AutodiscoverURL(),
		"OnlineTargetAddress":         routing,
		"OnPremiseDiscoveryEndpoint":  autodiscover,
		"OnPremiseWebServiceEndpoint": ews,
		"OnPremiseTargetAddresses":    onPremDomains,
	}}, nil
}
