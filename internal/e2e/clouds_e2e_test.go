package e2e_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/workflows"
)

// Tenants of configs/sim/small.yaml.
const (
	small1 = "22222222-2222-4222-8222-000000000001" // worldwide, clean, current builds
	small2 = "22222222-2222-4222-8222-000000000002" // 21Vianet, mixed builds (dedicated), HCW names, foreign + expired key
	small3 = "22222222-2222-4222-8222-000000000003" // GCC High, a pre-2013-SP1 server, half-configured
)

// cloudsWorld is small.yaml plus two generated tenants: a clean 21Vianet
// tenant on current builds, whose auth servers step 1 must create under
// 21Vianet's names, and a GCC High one whose servers all predate Exchange
// 2013 SP1. That one is the legacy-mode tenant: none of its servers makes
// OAuth calls itself, let alone has the April 2025 hotfix, and GCC High is
// a cloud where Exchange Online still accepts the shared first-party path
// (shared/reference/hybrid-facts.md (b)); in the worldwide cloud or
// 21Vianet it could only pause (TestE2ELegacyPathBlockedPausesAtPlanTime).
// small2 (21Vianet, EX02 below the hotfix, EX01 on it) and small3 (GCC
// High, an Exchange 2013 pre-SP1 server beside current ones) run on the
// dedicated application: mixed builds do not force the first-party path.
//
// One site is one on-prem organisation (a site's PowerShell host reaches
// one), so each tenant has its own: small.yaml's small1 and small2 keep
// site-1 and site-2, small3 (site-1 in the file) moves to site-3, and the
// generated tenants are at site-4 and site-5.
func cloudsWorld(t *testing.T) *sim.World {
	t.Helper()
	now := worldNow()
	w := loadWorldAt(t, "small.yaml", now)
	cn, err := sim.GenerateTenants(sim.GenerateSpec{Tenants: 1, Prefix: "cn", Clouds: []string{"china"}, Sites: 1}, 4403, now)
	if err != nil {
		t.Fatal(err)
	}
	old, err := sim.GenerateTenants(sim.GenerateSpec{Tenants: 1, Prefix: "ex2013", LegacyServers: 1, Clouds: []string{"gcchigh"}}, 4404, now)
	if err != nil {
		t.Fatal(err)
	}
	// Every server older than Exchange 2013 SP1 (15.0.847.32).
	for i := range old[0].OnPrem.Servers {
		old[0].OnPrem.Servers[i].Version = sim.GenLegacyBuild
	}
	w.Tenants = append(w.Tenants, cn[0], old[0])
	for i, site := range []string{"site-1", "site-2", "site-3", "site-4", "site-5"} {
		w.Tenants[i].Site = site
	}
	return reparsed(t, w)
}

// TestE2ECloudNamesAndAvailabilityAddressSpace: five tenants set up
// concurrently; assertions read the world afterwards.
//   - small3 (one pre-2013-SP1 server among current ones, dedicated
//     application) and the generated GCC High tenant whose servers are all
//     pre-2013-SP1 (legacy path) get the availability address space
//     (forest = routing domain, InternalProxy through the external EWS
//     URL, service account); small1, small2 and the generated 21Vianet
//     tenant, without such servers, get none.
//   - the generated 21Vianet tenant gets auth servers MicrosoftAzureACS and
//     EvoSTS with accesscontrol.chinacloudapi.cn / login.chinacloudapi.cn
//     metadata URLs, and the wildcard SPN 00000002-…/*.<domain>; small2
//     (21Vianet, HCW-named servers, mixed builds) keeps its servers, runs
//     on the dedicated application with a warning naming its old server,
//     and gets the same SPN form.
//   - everything verified; nothing lost; additions exactly as expected.
func TestE2ECloudNamesAndAvailabilityAddressSpace(t *testing.T) {
	began := time.Now()
	w := cloudsWorld(t)
	e := newEnv(t, w)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := e.snapshot()
	cn, old := before.Tenants[3], before.Tenants[4]

	runs := map[string]client.WorkflowRun{}
	for _, tn := range before.Tenants {
		runs[tn.ID] = e.start(ctx, e.tenant(tn.ID), workflows.SetupOptions{})
	}
	results := map[string]workflows.SetupResult{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, run := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.result(ctx, run)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("%s: %v", id, err)
			}
			results[id] = res
		}()
	}
	wg.Wait()
	for _, tn := range before.Tenants {
		res := results[tn.ID]
		logSteps(t, res)
		if res.State != workflows.StateVerified {
			t.Errorf("%s: state %s, want verified (%v)", tn.ID, res.State, res.Verification)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	for _, id := range []string{small1, small2, small3, cn.ID} {
		if m := results[id].Mode; m != string(plan.ModeDedicatedApp) {
			t.Errorf("%s mode %s, want dedicated-app (at least one Mailbox server on the April 2025 hotfix)", id, m)
		}
	}
	if !slices.ContainsFunc(results[small2].Warnings, func(s string) bool { return strings.Contains(s, "EX02 runs 15.2.1544.4") }) {
		t.Errorf("small2 warnings %q should name EX02 and its build", results[small2].Warnings)
	}
	if m := results[old.ID].Mode; m != string(plan.ModeLegacyFirstParty) {
		t.Errorf("%s mode %s, want legacy-first-party (no server that makes OAuth calls, in GCC High)", old.ID, m)
	}
	after := e.snapshot()

	// Availability address space: only with a pre-2013-SP1 server.
	s3 := tenantOf(t, after, small3)
	want := sim.AvailabilityAddressSpace{ForestName: "small3.mail.onmicrosoft.us", AccessMethod: "InternalProxy",
		ProxyURL: "https://mail.small3.example.com/EWS/Exchange.asmx", UseServiceAccount: true}
	if len(s3.OnPrem.AvailabilityAddressSpaces) != 1 || *s3.OnPrem.AvailabilityAddressSpaces[0] != want {
		t.Errorf("small3 availability address spaces %s, want exactly %+v", spaces(s3), want)
	}
	o := tenantOf(t, after, old.ID)
	wantOld := sim.AvailabilityAddressSpace{ForestName: "ex20131.mail.onmicrosoft.us", AccessMethod: "InternalProxy",
		ProxyURL: "https://mail.ex20131.example.com/EWS/Exchange.asmx", UseServiceAccount: true}
	if len(o.OnPrem.AvailabilityAddressSpaces) != 1 || *o.OnPrem.AvailabilityAddressSpaces[0] != wantOld {
		t.Errorf("Exchange 2013 tenant availability address spaces %s, want exactly %+v", spaces(o), wantOld)
	}
	for _, id := range []string{small1, small2, cn.ID} {
		if tn := tenantOf(t, after, id); len(tn.OnPrem.AvailabilityAddressSpaces) != 0 {
			t.Errorf("%s has no pre-2013-SP1 server but got availability address spaces %s", id, spaces(tn))
		}
	}

	// 21Vianet names, metadata URLs and SPN form (21Vianet's procedure), as literals.
	c := tenantOf(t, after, cn.ID)
	smtp := smtpDomain(c)
	wantServers := map[string][2]string{
		"MicrosoftAzureACS": {"MicrosoftACS", "https://accounts.accesscontrol.chinacloudapi.cn/" + c.InitialDomain + "/metadata/json/1"},
		"EvoSTS":            {"AzureAD", "https://login.chinacloudapi.cn/" + c.InitialDomain + "/federationmetadata/2007-06/federationmetadata.xml"},
	}
	if len(c.OnPrem.AuthServers) != 2 {
		t.Errorf("21Vianet tenant: %d auth servers, want 2", len(c.OnPrem.AuthServers))
	}
	for _, as := range c.OnPrem.AuthServers {
		wantAS, ok := wantServers[as.Name]
		if !ok || as.Type != wantAS[0] || as.AuthMetadataURL != wantAS[1] || !as.Enabled {
			t.Errorf("21Vianet auth server %q %s %s enabled=%v; want one of %v", as.Name, as.Type, as.AuthMetadataURL, as.Enabled, wantServers)
		}
	}
	wildcard := cloud.FirstPartyAppID + "/*." + smtp
	if got := firstPartySP(c).ServicePrincipalNames; !containsFold(got, wildcard) || containsFold(got, "https://mail."+smtp+"/") {
		t.Errorf("21Vianet first-party SPNs %v: want %s and no https:// host form", got, wildcard)
	}
	if got := c.OnPrem.IntraOrganizationConnectors; len(got) != 1 || got[0].DiscoveryEndpoint != "https://partner.outlook.cn/autodiscover/autodiscover.svc" {
		t.Errorf("21Vianet on-prem connector %+v, want discovery through partner.outlook.cn", got)
	}
	s2 := tenantOf(t, after, small2)
	if got := firstPartySP(s2).ServicePrincipalNames; !containsFold(got, cloud.FirstPartyAppID+"/*.small2.example.com") {
		t.Errorf("small2 first-party SPNs %v: want the wildcard form", got)
	}

	// Nothing lost; additions exactly as expected.
	checkNothingLost(t, before, after)
	b1, b2, b3 := tenantOf(t, before, small1), tenantOf(t, before, small2), tenantOf(t, before, small3)
	wantAdd := wantDedicated(t, b1, "")
	wantAdd = append(wantAdd, wantDedicated(t, cn, "")...)
	// Dedicated application on mixed builds; the existing auth servers
	// (HCW-named on small2, manual names on small3) are recognised, not
	// duplicated, and the evoSTS one gets its domains.
	wantAdd = append(wantAdd, wantDedicated(t, b2, "EvoSts - "+small2)...)
	wantAdd = append(wantAdd, wantDedicated(t, b3, profileOf(t, b3).EvoSTSName)...)
	wantAdd = append(wantAdd, fmt.Sprintf("%s: on-prem availability address space %s", small3, want.ForestName))
	// Legacy path: the auth certificate goes to the first-party principal.
	bo := tenantOf(t, before, old.ID)
	wantAdd = append(wantAdd, wantAuthServers(t, bo)...)
	wantAdd = append(wantAdd, fmt.Sprintf("%s: on-prem availability address space %s", old.ID, wantOld.ForestName))
	wantAdd = append(wantAdd, fmt.Sprintf("%s: key %s on service principal %q", bo.ID, authCert(t, bo).Thumbprint, firstPartySP(bo).DisplayName))
	wantAdd = append(wantAdd, wantCommon(t, bo)...)
	checkAdditions(t, before, after, wantAdd)

	// small2's expired key, an Exchange auth certificate of an earlier
	// year, goes with the legacy clean-up; the foreign one stays.
	fp2 := firstPartySP(b2)
	for _, k := range fp2.KeyCredentials {
		tp := keyTP(k)
		expired := k.EndDateTime.Before(time.Now())
		if got := hasKey(firstPartySP(s2).KeyCredentials, tp); got == expired {
			t.Errorf("small2 key %s (%s, expired=%v): present after the run = %v", tp, k.DisplayName, expired, got)
		}
	}
	// Legacy mode writes Entra once: the first-party principal's keys and
	// SPNs go in one PATCH (steps 4 and 5 together), nothing else on Graph.
	for _, id := range []string{old.ID} {
		if c := e.world.Stats().ByTenant[strings.ToLower(id)]; c == nil || c.GraphWrites != 1 {
			t.Errorf("%s: %+v Graph writes, want exactly one PATCH of the first-party service principal", id, c)
		}
	}
	if o := e.overlaps(); len(o) > 0 {
		t.Errorf("steps ran twice at once:\n%s", strings.Join(o, "\n"))
	}
	e.recordHistory(ctx, runs[old.ID], "setup-legacy-availability-gcchigh")
	t.Logf("5 tenants in %s", time.Since(began).Round(time.Millisecond))
}

func spaces(tn *sim.Tenant) string {
	var out []string
	for _, s := range tn.OnPrem.AvailabilityAddressSpaces {
		out = append(out, fmt.Sprintf("%+v", *s))
	}
	return "[" + strings.Join(out, ", ") + "]"
}
