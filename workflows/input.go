package workflows

import (
	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// InputFromTenant turns an inventory entry into a setup request. Only
// references travel (the credential's name), never secrets. It stays in
// this package, unlike the mapping only the CLI uses (starter), because
// Rollout and VerifyInventory map each tenant of their inventory to their
// children's input at run time.
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
		Target:  TargetFromTenant(t),
		Options: o,
	}
}

// TargetFromTenant is where an inventory entry's activities run: the
// tenant, its cloud, its on-prem and Lync sites, and the names (never the
// secrets) of its credential and Exchange Online host override.
func TargetFromTenant(t config.Tenant) contract.Target {
	return contract.Target{TenantID: t.ID, Cloud: t.Cloud, Site: t.Site, LyncSite: t.LyncSite,
		Credential: t.Credential, ExchangeOnlineHost: t.Overrides.ExchangeOnlineHost}
}
