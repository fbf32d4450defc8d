package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/workflows"
)

// The inventory-to-input mapping that only the CLI needs. What workflows
// themselves map at run time (a rollout's or a scheduled verify's tenant
// to its Setup or Renewal input) stays in package workflows
// (workflows.InputFromTenant, workflows.RenewalInputFromTenant).

// lyncInputFromTenant is the Lync integration of a tenant's lync_site
// (t.LyncSite must be set): the tenant's cloud and proxy override, and a
// target naming the tenant and its sites. Only references travel.
func lyncInputFromTenant(t config.Tenant, o workflows.LyncOptions) workflows.LyncInput {
	return workflows.LyncInput{
		Site: t.LyncSite, Cloud: t.Cloud, ProxyFqdnOverride: t.Overrides.LyncProxyFQDN, Options: o,
		Target: workflows.TargetFromTenant(t),
	}
}

// lyncTenants lists the inventory's tenants at a Lync site, in order.
func lyncTenants(inv *config.Inventory, site string) []config.Tenant {
	var out []config.Tenant
	for _, t := range inv.Tenants {
		if t.LyncSite != "" && strings.EqualFold(t.LyncSite, site) {
			out = append(out, t)
		}
	}
	return out
}

// lyncSites lists the inventory's Lync sites in inventory order.
func lyncSites(inv *config.Inventory) []string {
	var out []string
	for _, t := range inv.Tenants {
		if t.LyncSite != "" && !slices.Contains(out, t.LyncSite) {
			out = append(out, t.LyncSite)
		}
	}
	return out
}

// lyncInputForSite builds the request for a Lync site from the tenants at
// that site. A site is one Lync deployment with one "Exchange Online"
// hosting provider, so its tenants must agree on the ProxyFqdn (their
// clouds' value or their overrides); the first tenant is the target.
func lyncInputForSite(inv *config.Inventory, site string, o workflows.LyncOptions) (workflows.LyncInput, error) {
	ts := lyncTenants(inv, site)
	if len(ts) == 0 {
		sites := lyncSites(inv)
		if len(sites) == 0 {
			return workflows.LyncInput{}, fmt.Errorf("no tenant in %s has a lync_site", inv.File)
		}
		return workflows.LyncInput{}, fmt.Errorf("no tenant in %s has lync_site %q (Lync sites: %s)", inv.File, site, strings.Join(sites, ", "))
	}
	var first string
	var parts []string
	for i, t := range ts {
		want, _, err := plan.DesiredLyncProvider(t.Cloud, t.Overrides.LyncProxyFQDN)
		if err != nil {
			return workflows.LyncInput{}, fmt.Errorf("tenant %s: %w", t.ID, err)
		}
		parts = append(parts, fmt.Sprintf("%s (%s) %s", t.ID, t.Cloud, want.ProxyFqdn))
		if i == 0 {
			first = want.ProxyFqdn
		} else if want.ProxyFqdn != first {
			return workflows.LyncInput{}, fmt.Errorf("the tenants at Lync site %s need different hosting-provider ProxyFqdn values (%s); one Lync deployment has one %q provider: give them separate lync_site values, or name one tenant with -t",
				site, strings.Join(parts, ", "), plan.LyncProviderIdentity)
		}
	}
	in := lyncInputFromTenant(ts[0], o)
	in.Site = site
	in.Target.LyncSite = site
	return in, nil
}
