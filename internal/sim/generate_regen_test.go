package sim

import (
	"fmt"
	"math/rand"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRegenerateSimConfigs rewrites configs/sim/small.yaml and demo.yaml
// from the generator when HYBRIDFLOW_REGEN_SIM_CONFIGS=1; otherwise it is
// skipped. The files are generated, then written out explicitly with
// readable tenant IDs and a comment per tenant.
func TestRegenerateSimConfigs(t *testing.T) {
	if os.Getenv("HYBRIDFLOW_REGEN_SIM_CONFIGS") != "1" {
		t.Skip("set HYBRIDFLOW_REGEN_SIM_CONFIGS=1 to rewrite configs/sim/*.yaml")
	}
	base := generateEpoch
	// small.yaml
	small := &World{Seed: 2, FixedNow: base}
	var pools genPools
	m := rand.New(rand.NewSource(99))
	for j := range pools.foreign {
		pools.foreign[j] = NewCertificate(genForeignCertSubject, m.Int63()+1, base.AddDate(-1, 0, 0), base.AddDate(2, 0, 0))
		pools.expired[j] = NewCertificate(AuthCertificateSubject, m.Int63()+1, base.AddDate(-6, 0, 0), base.AddDate(-1, 0, 0))
	}
	specs := []struct {
		cloud string
		v     genVariations
		half  int
	}{
		{"global", genVariations{}, -1},
		{"china", genVariations{oldBuilds: true, foreignKey: true, expiredKey: true, hcwNames: true}, -1},
		{"gcchigh", genVariations{legacyServer: true, halfConfigured: true}, 0},
	}
	for i, s := range specs {
		spec := &GenerateSpec{Prefix: "small", Sites: 2, Clouds: []string{s.cloud}}
		var tn *Tenant
		for seed := int64(1); ; seed++ {
			r := rand.New(rand.NewSource(seed*7919 + int64(i)))
			tn = genTenant(spec, i, r, base, s.v, &pools)
			if s.half < 0 || tn.OnPrem.PartnerApplications[0].Enabled == (s.half == 0) && (s.half != 0 || len(tn.OnPrem.AuthServers) > 0) {
				break
			}
		}
		tn.Cloud = s.cloud
		small.Tenants = append(small.Tenants, tn)
	}
	regenWrite(t, small, "22222222-2222-4222-8222-%012d", "../../configs/sim/small.yaml", regenSmallHeader)

	w, err := Parse("demo-gen", []byte(`seed: 20261101
generate:
  tenants: 20
  prefix: demo
  sites: 3
  clouds: [global, gcc, gcchigh, dod, china]
  legacy_servers: 0.05
  old_builds: 0.2
  foreign_keys: 0.2
  expired_keys: 0.2
  half_configured: 0.25
  hcw_names: 0.15
`))
	if err != nil {
		t.Fatal(err)
	}
	w.Generate = nil
	for i, tn := range w.Tenants {
		// The shared first-party path is blocked for EWS in the worldwide,
		// GCC and 21Vianet clouds: the demo keeps its legacy (pre-hotfix)
		// organisations in GCC High and DoD, where the legacy path still
		// verifies; the blocked case is covered by tests.
		if tn.Cloud == "global" || tn.Cloud == "gcc" || tn.Cloud == "china" {
			for j := range tn.OnPrem.Servers {
				if v := tn.OnPrem.Servers[j].Version; v == GenOldBuild || v == GenLegacyBuild {
					tn.OnPrem.Servers[j].Version = GenModernBuild
				}
			}
		}
		if i == 4 || i == 11 {
			tn.Behaviour.PropagationChecks = 2
		}
		if i == 0 || i == 9 {
			smtp := fmt.Sprintf("demo%d.example.com", i+1)
			tn.Lync = &LyncDeployment{
				Site: tn.Site,
				Replicas: []*Replica{
					{Fqdn: "fe01." + smtp, UpToDate: true, LagChecks: 2},
					{Fqdn: "edge01." + smtp, UpToDate: true, LagChecks: 3},
				},
				ExternalAccessPolicies: []ExternalAccessPolicy{{Identity: "Global"}},
			}
		}
	}
	// Keep one organisation with an Exchange 2013 pre-SP1 server (step 8:
	// the availability address space) in a cloud where its legacy path works.
	for _, tn := range w.Tenants {
		if tn.Cloud == "gcchigh" && len(tn.OnPrem.Servers) > 1 {
			tn.OnPrem.Servers[1].Version = GenLegacyBuild
			break
		}
	}
	w.FaultRules = []FaultRule{
		{Protocol: ProtoGraph, Kind: FaultThrottle, Rate: 0.03, RetryAfter: time.Second},
		// Demo 6 needs an operator: its Exchange account lacks a role the
		// first time step 6 runs; the README's walk-through fixes "the
		// role" and sends retry.
		{Protocol: ProtoShell, Operation: "New-IntraOrganizationConnector", Tenant: "11111111-1111-4111-8111-000000000006",
			Kind: FaultFail, FailFirstN: 1, ErrorType: "System.UnauthorizedAccessException",
			Message: "Access is denied: the account running hybridflow needs the Organization Management role (or Federation Management) to create IntraOrganizationConnectors."},
	}
	regenWrite(t, w, "11111111-1111-4111-8111-%012d", "../../configs/sim/demo.yaml", regenDemoHeader)
}

func regenDescribe(tn *Tenant) string {
	var parts []string
	parts = append(parts, tn.Cloud)
	old, legacy := false, false
	for _, s := range tn.OnPrem.Servers {
		if s.Version == GenOldBuild {
			old = true
		}
		if s.Version == GenLegacyBuild {
			legacy = true
		}
	}
	modern := false
	for _, s := range tn.OnPrem.Servers {
		modern = modern || s.Version == GenModernBuild
	}
	switch {
	case old && modern:
		parts = append(parts, "mixed builds: some below the April 2025 hotfix (dedicated app)")
	case old:
		parts = append(parts, "builds below the April 2025 hotfix (first-party path)")
	default:
		parts = append(parts, "modern builds (dedicated app)")
	}
	if legacy {
		parts = append(parts, "an Exchange 2013 pre-SP1 server (needs step 8)")
	}
	now := generateEpoch
	for _, k := range tn.Entra.ServicePrincipals[0].KeyCredentials {
		if k.EndDateTime.Before(now) {
			parts = append(parts, "an expired key on the first-party SP")
		} else {
			parts = append(parts, "a foreign unexpired key on the first-party SP")
		}
	}
	for _, a := range tn.OnPrem.AuthServers {
		if strings.HasPrefix(a.Name, "ACS - ") {
			parts = append(parts, "HCW-named auth servers")
			break
		} else {
			parts = append(parts, "half-configured: auth servers exist")
			break
		}
	}
	if tn.OnPrem.PartnerApplications[0].Enabled {
		parts = append(parts, "partner application enabled")
	}
	if len(tn.OnPrem.IntraOrganizationConnectors) > 0 {
		parts = append(parts, "half-configured: on-prem connector exists")
	}
	if len(tn.Entra.ServicePrincipals[0].ServicePrincipalNames) > 3 {
		parts = append(parts, "half-configured: one SPN registered")
	}
	if tn.Behaviour.PropagationChecks > 0 {
		parts = append(parts, fmt.Sprintf("%d slow propagation checks", tn.Behaviour.PropagationChecks))
	}
	if tn.Lync != nil {
		parts = append(parts, "Lync deployment")
	}
	return strings.Join(parts, "; ")
}

func regenWrite(t *testing.T, w *World, idFmt, path, header string) {
	descs := map[string]string{}
	repl := []string{}
	for i, tn := range w.Tenants {
		id := fmt.Sprintf(idFmt, i+1)
		repl = append(repl, tn.ID, id)
		descs[id] = fmt.Sprintf("%s (%s, %s): %s", tn.DisplayName, tn.InitialDomain, tn.Site, regenDescribe(tn))
	}
	out, err := w.Dump()
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer(repl...).Replace(string(out))
	var b strings.Builder
	b.WriteString(header)
	for _, line := range strings.SplitAfter(s, "\n") {
		if strings.HasPrefix(line, "  - id: ") {
			id := strings.TrimSpace(strings.TrimPrefix(line, "  - id: "))
			b.WriteString("\n  # " + descs[id] + "\n")
		}
		b.WriteString(line)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatal(err)
	}
}

const regenSmallHeader = `# A small simulated world for tests: three explicit tenants.
#
#   01 worldwide, clean: the happy path of the dedicated-application setup.
#   02 21Vianet, mixed builds: EX02 below the April 2025 hotfix, EX01 on
#      it, so the dedicated application (the shared first-party path is
#      blocked in 21Vianet), a foreign and an expired key on the
#      first-party service principal, auth servers named by the Hybrid
#      Configuration Wizard.
#   03 GCC High, an Exchange 2013 pre-SP1 server (availability address
#      space needed; it makes no OAuth calls itself, so the dedicated
#      application), half-configured by hand: auth servers exist and the
#      partner application is enabled.
#
# The clock is pinned so expiry is judged the same way on every run.
# Certificates are real X.509 (public DER in base64); regenerate rather
# than edit them. Load with sim.Load; sim.(*World).Dump writes this format.
`

const regenDemoHeader = `# The demo world: 20 tenants across all five clouds (round-robin: global,
# gcc, gcchigh, dod, china), spread over three on-prem sites, with the
# variations a real rollout meets. Each tenant's comment says what it
# shows. Tenant IDs follow 11111111-1111-4111-8111-0000000000NN.
#
# Made once from a generate spec (seed 20261101, prefix demo) and written
# out explicitly so tenants can be read and edited one by one. A few
# tenants propagate slowly (verification retries), two have Lync, and
# Graph throttles 3% of requests with Retry-After: 1 to show that retries
# honour it; Demo 6's first connector creation is refused for a missing
# Exchange role, so it pauses for an operator (README walk-through).
# Delete the faults block for a quiet run. Legacy (pre-hotfix) builds sit
# only in GCC High and DoD, where the shared first-party path still works.
#
# Certificates are real X.509 (public DER in base64).
`
