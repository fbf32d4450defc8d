package sim

// Exchange Online cmdlets (side Online), served through InvokeCommand
// (exo.go). The IntraOrganizationConnector cmdlets are shared with the
// on-prem side (cmdlets_ioc.go).

import (
	"net/url"
	"strings"

	"github.com/hybridflow/hybridflow/internal/exchange"
)

func init() {
	register(Online, "Get-OrganizationConfig", onlineGetOrganizationConfig)
	register(Online, "Get-AcceptedDomain", onlineGetAcceptedDomain)
	register(Online, "Get-IntraOrganizationConfiguration", onlineGetIntraOrganizationConfiguration)
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
