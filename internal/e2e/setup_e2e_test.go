package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/e2e"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/workflows"
)

// halfConfigured is two worldwide tenants on current builds (dedicated
// mode) that an administrator started by hand, the way real ones are met:
// auth servers named by the Hybrid Configuration Wizard ("ACS - <guid>",
// "EvoSts - <guid>"), the partner application enabled, an unexpired key of
// another application and an expired key on the first-party service
// principal. Tenant A also had the legacy step 4 done (its auth certificate
// on the first-party principal), one host name registered as an SPN and
// the on-prem → cloud connector created; tenant B had nothing more. Each
// has its own site (one site is one on-prem organisation).
func halfConfigured(t *testing.T) *sim.World {
	return generated(t, sim.GenerateSpec{Tenants: 2, Sites: 2, Prefix: "half", HCWNames: 1, ForeignKeys: 1, ExpiredKeys: 1}, 4401, func(ts []*sim.Tenant) {
		for _, tn := range ts {
			tn.OnPrem.PartnerApplications[0].Enabled = true
		}
		a := ts[0]
		p, _ := cloud.Lookup(a.Cloud)
		fp := firstPartySP(a)
		fp.KeyCredentials = append(fp.KeyCredentials, keyCredential(a.OnPrem.Certificates[0]))
		fp.ServicePrincipalNames = append(fp.ServicePrincipalNames, p.SPNsForHosts([]string{"mail." + smtpDomain(a)})...)
		a.OnPrem.IntraOrganizationConnectors = []*sim.IntraOrgConnector{{Name: plan.OnPremIOCName, DiscoveryEndpoint: p.AutodiscoverURL(),
			TargetAddressDomains: []string{p.RoutingDomain(a.InitialDomain)}, Enabled: true}}
	})
}

// wantDedicated is what a dedicated-mode setup adds to a tenant, computed
// from the world before the run: the application and its service
// principal named after the on-prem organisation, its consent, the auth
// certificate on the application, the SPNs not registered yet, the tenant
// domains on the evoSTS auth server (evoSTSDomains), the setting override
// and the connectors that did not exist.
//
// evoSTS names the tenant's existing evoSTS auth server, whose DomainName
// gains the tenant's domains; "" means the tenant has no auth servers, so
// both are created under the cloud's names (a new server's DomainName is
// part of the new object and not listed separately).
func wantDedicated(t *testing.T, tn *sim.Tenant, evoSTS string) []string {
	t.Helper()
	name := dedicatedName(tn)
	fp := firstPartySP(tn)
	add := func(format string, args ...any) string { return tn.ID + ": " + fmt.Sprintf(format, args...) }
	want := []string{
		add("application %q", name),
		add("key %s on application %q", authCert(t, tn).Thumbprint, name),
		add("service principal %q", name),
		add("app role assignment %s of %q on %q", plan.FullAccessAsAppRoleID, name, fp.DisplayName),
		add("on-prem setting override %q", plan.OverrideName),
	}
	if evoSTS == "" {
		want = append(want, wantAuthServers(t, tn)...)
	} else {
		for _, d := range evoSTSDomains(tn) {
			want = append(want, add("on-prem auth server %q domain name %s", evoSTS, d))
		}
	}
	return append(want, wantCommon(t, tn)...)
}

// wantAuthServers: step 1 under the cloud's names and metadata URLs.
func wantAuthServers(t *testing.T, tn *sim.Tenant) []string {
	p := profileOf(t, tn)
	return []string{
		fmt.Sprintf("%s: on-prem auth server %q (MicrosoftACS, %s)", tn.ID, p.ACSName, p.ACSMetadataURL(tn.InitialDomain)),
		fmt.Sprintf("%s: on-prem auth server %q (AzureAD, %s)", tn.ID, p.EvoSTSName, p.EvoSTSMetadataURL(tn.InitialDomain)),
	}
}

// wantCommon: the SPNs not registered yet and the connectors that do not
// exist yet, in either mode.
func wantCommon(t *testing.T, tn *sim.Tenant) []string {
	p := profileOf(t, tn)
	fp := firstPartySP(tn)
	var want []string
	add := func(format string, args ...any) { want = append(want, tn.ID+": "+fmt.Sprintf(format, args...)) }
	for _, spn := range p.SPNsForHosts(spnHosts(tn)) {
		if !containsFold(fp.ServicePrincipalNames, spn) {
			add("service principal name %s on %q", spn, fp.DisplayName)
		}
	}
	if len(tn.OnPrem.IntraOrganizationConnectors) == 0 {
		add("on-prem IntraOrganizationConnector %q", plan.OnPremIOCName)
	}
	if len(tn.Online.IntraOrganizationConnectors) == 0 {
		add("Exchange Online IntraOrganizationConnector %q", plan.OnlineIOCName)
	}
	return want
}

// TestE2EHalfConfiguredTenantsConverge: two half-configured tenants set up
// concurrently on the real dev server converge to a verified dedicated-app
// configuration; nothing that existed is lost (e2e.NothingLost), the
// additions are exactly the expected ones, and the keys on the first-party
// service principal follow the legacy clean-up precisely: the foreign key
// stays on both, as read; on A the legacy key is removed; on both, the
// expired key, an Exchange auth certificate of an earlier year (the
// generator's expired keys carry the auth certificate's subject), goes
// with the clean-up, which judges keys by the certificate they hold.
func TestE2EHalfConfiguredTenantsConverge(t *testing.T) {
	began := time.Now()
	w := halfConfigured(t)
	e := newEnv(t, w)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	before := e.snapshot()
	a, b := before.Tenants[0], before.Tenants[1]
	runA := e.start(ctx, e.tenant(a.ID), workflows.SetupOptions{})
	runB := e.start(ctx, e.tenant(b.ID), workflows.SetupOptions{})
	resA, errA := e.result(ctx, runA)
	resB, errB := e.result(ctx, runB)
	logSteps(t, resA)
	logSteps(t, resB)
	if errA != nil || errB != nil {
		t.Fatalf("setup failed: A: %v; B: %v", errA, errB)
	}
	for _, r := range []workflows.SetupResult{resA, resB} {
		if r.State != workflows.StateVerified || r.Mode != string(plan.ModeDedicatedApp) {
			t.Errorf("%s: state %s, mode %s; want verified, dedicated-app (%v)", r.TenantID, r.State, r.Mode, r.Verification)
		}
	}
	after := e.snapshot()

	checkNothingLost(t, before, after)
	want := append(wantDedicated(t, a, "EvoSts - "+a.ID), wantDedicated(t, b, "EvoSts - "+b.ID)...)
	checkAdditions(t, before, after, want)

	// The first-party principal's keys, precisely.
	foreignA, expiredA := firstPartySP(a).KeyCredentials[0], firstPartySP(a).KeyCredentials[1]
	foreignB, expiredB := firstPartySP(b).KeyCredentials[0], firstPartySP(b).KeyCredentials[1]
	if now := time.Now(); !expiredA.EndDateTime.Before(now) || !expiredB.EndDateTime.Before(now) || foreignA.EndDateTime.Before(now) {
		t.Fatalf("world not as designed: keys %+v / %+v", firstPartySP(a).KeyCredentials, firstPartySP(b).KeyCredentials)
	}
	fpA, fpB := firstPartySP(tenantOf(t, after, a.ID)), firstPartySP(tenantOf(t, after, b.ID))
	if !hasKey(fpA.KeyCredentials, e2e.KeyThumbprint(foreignA)) || !hasKey(fpB.KeyCredentials, e2e.KeyThumbprint(foreignB)) {
		t.Errorf("a foreign unexpired key was dropped: A %v, B %v", thumbprints(fpA.KeyCredentials), thumbprints(fpB.KeyCredentials))
	}
	if hasKey(fpA.KeyCredentials, authCert(t, a).Thumbprint) {
		t.Errorf("A: the legacy key %s is still on the first-party service principal", authCert(t, a).Thumbprint)
	}
	if hasKey(fpA.KeyCredentials, e2e.KeyThumbprint(expiredA)) || hasKey(fpB.KeyCredentials, e2e.KeyThumbprint(expiredB)) {
		t.Errorf("an expired Exchange auth certificate survived the legacy clean-up: A %v, B %v", thumbprints(fpA.KeyCredentials), thumbprints(fpB.KeyCredentials))
	}
	if o := e.overlaps(); len(o) > 0 {
		t.Errorf("steps ran twice at once:\n%s", strings.Join(o, "\n"))
	}
	e.recordHistory(ctx, runA, "setup-dedicated-half-configured")

	// Converged means converged: setting A up again writes nothing, and
	// reads Graph at most twice: one batched Entra discovery, and one batch
	// of single-object $select=keyCredentials reads for the keys'
	// certificates, the only read Graph answers with them (A's first-party
	// principal keeps a foreign key).
	counters := func() sim.TenantCounters { return *e.world.Stats().ByTenant[strings.ToLower(a.ID)] }
	c0 := counters()
	again, err := e.result(ctx, e.start(ctx, e.tenant(a.ID), workflows.SetupOptions{}))
	c1 := counters()
	if err != nil || again.State != workflows.StateVerified || again.Writes != 0 || c1.Writes != c0.Writes {
		t.Errorf("second setup of A: state %s, error %v, %d workflow write(s), %d world write(s); want verified and none", again.State, err, again.Writes, c1.Writes-c0.Writes)
	}
	if reads := c1.GraphReads - c0.GraphReads; reads > 2 || c1.GraphWrites != c0.GraphWrites {
		t.Errorf("second setup of A: %d Graph read(s), %d Graph write(s); want at most 2 and 0", reads, c1.GraphWrites-c0.GraphWrites)
	}
	t.Logf("%d writes for A, %d for B; the second run of A: 0 writes, %d Graph read(s); %s", resA.Writes, resB.Writes, c1.GraphReads-c0.GraphReads, time.Since(began).Round(time.Millisecond))
}

func thumbprints(ks []sim.KeyCredential) []string {
	var out []string
	for _, k := range ks {
		out = append(out, e2e.KeyThumbprint(k))
	}
	return out
}
