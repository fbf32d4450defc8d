package e2e_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/devserver"
	"github.com/hybridflow/hybridflow/internal/e2e"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// epoch pins the simulated clock of generated worlds, as small.yaml does,
// so that which keys have expired never depends on the day the test runs.
var epoch = time.Date(2026, time.November, 1, 0, 0, 0, 0, time.UTC)

// generated builds a world of generated tenants, round-tripped through
// Dump and Parse so it is validated like a YAML world.
func generated(t *testing.T, spec sim.GenerateSpec, seed int64, edit func(ts []*sim.Tenant)) *sim.World {
	t.Helper()
	ts, err := sim.GenerateTenants(spec, seed, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(ts)
	}
	w := &sim.World{Seed: seed, FixedNow: epoch, Tenants: ts}
	data, err := w.Dump()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sim.Parse(t.Name(), data)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func loadWorld(t *testing.T, name string) *sim.World {
	t.Helper()
	root, err := devserver.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	w, err := sim.Load(filepath.Join(root, "configs", "sim", name))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// --- facts about a tenant, read from the world (never from the run) ---

func profileOf(t *testing.T, tn *sim.Tenant) cloud.Profile {
	t.Helper()
	p, err := cloud.Lookup(tn.Cloud)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func firstPartySP(tn *sim.Tenant) *sim.ServicePrincipal {
	for _, sp := range tn.Entra.ServicePrincipals {
		if strings.EqualFold(sp.AppID, cloud.FirstPartyAppID) {
			return sp
		}
	}
	return nil
}

func authCert(t *testing.T, tn *sim.Tenant) *sim.ExchangeCertificate {
	t.Helper()
	for _, c := range tn.OnPrem.Certificates {
		if strings.EqualFold(c.Thumbprint, tn.OnPrem.AuthConfig.CurrentCertificateThumbprint) {
			return c
		}
	}
	t.Fatalf("%s: no current auth certificate", tn.ID)
	return nil
}

func dedicatedName(tn *sim.Tenant) string {
	return plan.DedicatedAppPrefix + strings.ToLower(tn.OnPrem.OrganizationGUID)
}

// smtpDomain is the tenant's on-prem default accepted domain.
func smtpDomain(tn *sim.Tenant) string {
	for _, d := range tn.OnPrem.AcceptedDomains {
		if d.Default {
			return d.DomainName
		}
	}
	return ""
}

// spnHosts are the hosts of the on-prem HTTP virtual directories (step 5).
func spnHosts(tn *sim.Tenant) []string {
	var hosts []string
	for _, v := range tn.OnPrem.VirtualDirectories {
		for _, u := range []string{v.InternalURL, v.ExternalURL} {
			if h := cloud.HostOfURL(u); h != "" {
				hosts = append(hosts, h)
			}
		}
	}
	return hosts
}

func keyCredential(c *sim.ExchangeCertificate) sim.KeyCredential {
	return sim.KeyCredential{KeyID: "7d8f0a51-3c55-4a43-9f44-6f1c1f6f0001", CustomKeyIdentifier: c.Thumbprint, DisplayName: "CN=" + sim.AuthCertificateSubject,
		Type: "AsymmetricX509Cert", Usage: "Verify", StartDateTime: c.NotBefore, EndDateTime: c.NotAfter, Key: c.DER}
}

func tenantOf(t *testing.T, w *sim.World, id string) *sim.Tenant {
	t.Helper()
	for _, tn := range w.Tenants {
		if strings.EqualFold(tn.ID, id) {
			return tn
		}
	}
	t.Fatalf("tenant %s not in the world", id)
	return nil
}

func hasKey(ks []sim.KeyCredential, tp string) bool {
	for _, k := range ks {
		if strings.EqualFold(e2e.KeyThumbprint(k), tp) {
			return true
		}
	}
	return false
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func keyTP(k sim.KeyCredential) string { return e2e.KeyThumbprint(k) }
