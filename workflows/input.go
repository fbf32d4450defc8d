package workflows

import (
	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// InputFromTenant turns an inventory entry into a setup request. Only
// references travel (the credential's name), never secrets.
func InputFromTenant(t config.Tenant, o SetupOptions) SetupInput {
	return SetupInput{
		Tenant: plan.TenantFacts{
			ID: t.ID, Cloud: t.Cloud, InitialDomain: t.InitialDomain, RoutingDomain: t.RoutingDomain,
			SMTPDomains: t.SMTPDomains, ModeSetting: string(t.ModeSetting),
			OrganizationGUID: t.Overrides.OrganizationGUID, ExchangeOnlineHost: t.Overrides.ExchangeOnlineHost,
			OnPremAutodiscoverURL: t.Overrides.OnPremAutodiscoverURL, OnPremEWSExternalURL: t.Overrides.OnPremEWSExternalURL,
			SPNHosts: t.Overrides.SPNHosts, OnPremMailbox: t.Overrides.OnPremMailbox, CloudMailbox: t.Overrides.CloudMailbox,
			LegacyFirstPartyBlocked: t.Overrides.LegacyFirstPartyBlocked,
		},
		Target: activities.Target{TenantID: t.ID, Cloud: t.Cloud, Site: t.Site, LyncSite: t.LyncSite,
			Credential: t.Credential, ExchangeOnlineHost: t.Overrides.ExchangeOnlineHost},
		Options: o,
	}
}
