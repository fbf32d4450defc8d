package realpath_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/e2e"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// verdict is what judgeSetUp found in the dump.
type verdict struct {
	app      *sim.Application
	appKeys  map[string]int // thumbprint → copies on the dedicated application
	authCert []string       // the on-prem auth certificates' thumbprints
}

// judgeSetUp checks, from the simulator's dump alone, that the tenant of
// before now has the dedicated-application configuration of a verified
// setup, and that nothing that existed was lost:
//
//   - exactly one application named ExchangeServerApp-<on-prem
//     organisation GUID>, holding exactly one key per on-prem auth
//     certificate (current, and next when one is staged) and no other key;
//   - exactly one service principal of that application, with exactly one
//     full_access_as_app assignment on the first-party principal;
//   - the evoSTS auth server on-prem names the application;
//   - both intra-organisation connectors, enabled;
//   - the first-party principal keeps every key it had (the other
//     application's); e2e.NothingLost and e2e.NewDuplicates find nothing.
func judgeSetUp(t *testing.T, before, after *sim.World) verdict {
	t.Helper()
	b := before.Tenants[0]
	var a *sim.Tenant
	for _, tn := range after.Tenants {
		if strings.EqualFold(tn.ID, b.ID) {
			a = tn
		}
	}
	if a == nil {
		t.Fatalf("tenant %s is not in the dump", b.ID)
	}
	var v verdict
	v.appKeys = map[string]int{}

	name := plan.DedicatedAppPrefix + strings.ToLower(b.OnPrem.OrganizationGUID)
	var apps []*sim.Application
	for _, app := range a.Entra.Applications {
		if strings.EqualFold(app.DisplayName, name) {
			apps = append(apps, app)
		}
	}
	if len(apps) != 1 {
		t.Fatalf("%d applications named %s; want exactly 1", len(apps), name)
	}
	v.app = apps[0]

	// One key per auth certificate, and nothing else.
	for _, tp := range []string{b.OnPrem.AuthConfig.CurrentCertificateThumbprint, b.OnPrem.AuthConfig.NextCertificateThumbprint} {
		if tp != "" {
			v.authCert = append(v.authCert, strings.ToUpper(tp))
		}
	}
	if len(v.authCert) == 0 {
		t.Fatal("the world has no auth certificate")
	}
	for _, k := range v.app.KeyCredentials {
		v.appKeys[e2e.KeyThumbprint(k)]++
	}
	for _, tp := range v.authCert {
		if n := v.appKeys[tp]; n != 1 {
			t.Errorf("application %s holds auth certificate %s %d times; want exactly once (keys: %v)", name, tp, n, v.appKeys)
		}
	}
	if len(v.app.KeyCredentials) != len(v.authCert) {
		t.Errorf("application %s has %d keys; want %d, one per auth certificate %v (keys: %v)", name, len(v.app.KeyCredentials), len(v.authCert), v.authCert, v.appKeys)
	}

	// Its service principal and consent.
	var sps []*sim.ServicePrincipal
	var fp *sim.ServicePrincipal
	for _, sp := range a.Entra.ServicePrincipals {
		switch {
		case strings.EqualFold(sp.AppID, v.app.AppID):
			sps = append(sps, sp)
		case strings.EqualFold(sp.AppID, cloud.FirstPartyAppID):
			fp = sp
		}
	}
	if len(sps) != 1 || fp == nil {
		t.Fatalf("%d service principals of %s (want 1); first-party principal found: %v", len(sps), name, fp != nil)
	}
	consents := 0
	for _, as := range a.Entra.AppRoleAssignments {
		if as.PrincipalID == sps[0].ID && as.ResourceID == fp.ID && strings.EqualFold(as.AppRoleID, plan.FullAccessAsAppRoleID) {
			consents++
		}
	}
	if consents != 1 {
		t.Errorf("%d full_access_as_app assignments of %s on the first-party principal; want 1", consents, name)
	}

	// On-prem: the evoSTS auth server names the application.
	evo := 0
	for _, as := range a.OnPrem.AuthServers {
		if as.Type == "AzureAD" && as.Enabled && strings.EqualFold(as.ApplicationIdentifier, v.app.AppID) {
			evo++
		}
	}
	if evo != 1 {
		t.Errorf("%d enabled AzureAD auth servers on-prem name application %s; want 1 (auth servers: %s)", evo, v.app.AppID, authServers(a.OnPrem.AuthServers))
	}

	// The connectors, both ways.
	for _, c := range []struct {
		side string
		org  *sim.ExchangeOrg
		name string
	}{{"on-prem", &a.OnPrem, plan.OnPremIOCName}, {"Exchange Online", &a.Online, plan.OnlineIOCName}} {
		found := false
		for _, ioc := range c.org.IntraOrganizationConnectors {
			if ioc.Name == c.name && ioc.Enabled && len(ioc.TargetAddressDomains) > 0 {
				found = true
			}
		}
		if !found {
			t.Errorf("%s has no enabled IntraOrganizationConnector %s", c.side, c.name)
		}
	}

	// The first-party principal keeps the other application's key.
	var fpBefore *sim.ServicePrincipal
	for _, sp := range b.Entra.ServicePrincipals {
		if strings.EqualFold(sp.AppID, cloud.FirstPartyAppID) {
			fpBefore = sp
		}
	}
	if fpBefore == nil || len(fpBefore.KeyCredentials) == 0 {
		t.Fatal("the world was meant to have a foreign key on the first-party principal")
	}
	have := map[string]bool{}
	for _, k := range fp.KeyCredentials {
		have[e2e.KeyThumbprint(k)] = true
	}
	for _, k := range fpBefore.KeyCredentials {
		if !have[e2e.KeyThumbprint(k)] {
			t.Errorf("the first-party principal lost key %s (%s)", e2e.KeyThumbprint(k), k.DisplayName)
		}
	}

	for _, l := range e2e.NothingLost(before, after) {
		t.Errorf("lost: %s", l)
	}
	for _, d := range e2e.NewDuplicates(before, after) {
		t.Errorf("duplicate: %s", d)
	}
	return v
}

func authServers(list []*sim.AuthServer) string {
	var out []string
	for _, a := range list {
		out = append(out, fmt.Sprintf("%s (%s, app %q, enabled %v)", a.Name, a.Type, a.ApplicationIdentifier, a.Enabled))
	}
	return strings.Join(out, "; ")
}
