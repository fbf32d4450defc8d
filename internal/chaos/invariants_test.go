package chaos_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/chaos"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// Each new invariant is shown the damage it looks for, planted in a
// generated world, and an untouched copy of the world.

// tenantWith returns the first tenant of w for which ok holds.
func tenantWith(t *testing.T, w *sim.World, what string, ok func(*sim.Tenant) bool) *sim.Tenant {
	t.Helper()
	for _, tn := range w.Tenants {
		if ok(tn) {
			return tn
		}
	}
	t.Fatalf("the generated world has no tenant with %s", what)
	return nil
}

func byID(w *sim.World, id string) *sim.Tenant {
	for _, tn := range w.Tenants {
		if tn.ID == id {
			return tn
		}
	}
	return nil
}

func wantLine(t *testing.T, got []string, want string) {
	t.Helper()
	if !strings.Contains(strings.Join(got, "\n"), want) {
		t.Fatalf("got %q, want a line with %q", got, want)
	}
}

func TestDuplicatesCatchPlantedCopies(t *testing.T) {
	before := plantWorld(t)
	if d := chaos.Duplicates(before, before.Clone()); len(d) > 0 {
		t.Fatalf("an untouched world has duplicates %q", d)
	}
	withKey := tenantWith(t, before, "a key on the first-party SP", func(tn *sim.Tenant) bool {
		sp := firstPartySP(tn)
		return sp != nil && len(sp.KeyCredentials) > 0
	})
	withAuth := tenantWith(t, before, "auth servers", func(tn *sim.Tenant) bool { return len(tn.OnPrem.AuthServers) > 0 })
	withIOC := tenantWith(t, before, "an on-prem connector", func(tn *sim.Tenant) bool { return len(tn.OnPrem.IntraOrganizationConnectors) > 0 })
	app := func(id, uniqueName, name string) *sim.Application {
		return &sim.Application{ID: id, AppID: id + "-app", DisplayName: name, UniqueName: uniqueName, CreatedBy: "client"}
	}
	tests := []struct {
		name   string
		damage func(w *sim.World)
		want   string
	}{
		{"the dedicated application created twice under one uniqueName", func(w *sim.World) {
			tn := byID(w, withKey.ID)
			tn.Entra.Applications = append(tn.Entra.Applications, app("a1", "ExchangeServerApp-x", "ExchangeServerApp-x"), app("a2", "exchangeserverapp-x", "other"))
		}, "applications with uniqueName exchangeserverapp-x: 2"},
		{"two applications under one display name", func(w *sim.World) {
			tn := byID(w, withKey.ID)
			tn.Entra.Applications = append(tn.Entra.Applications, app("a1", "", "ExchangeServerApp-y"), app("a2", "", "ExchangeServerApp-Y"))
		}, `applications named "exchangeserverapp-y": 2`},
		{"a second service principal of one appId", func(w *sim.World) {
			tn := byID(w, withKey.ID)
			sp := *firstPartySP(tn)
			sp.ID = "another-object"
			tn.Entra.ServicePrincipals = append(tn.Entra.ServicePrincipals, &sp)
		}, "service principals of appId 00000002-0000-0ff1-ce00-000000000000: 2"},
		{"a key uploaded twice", func(w *sim.World) {
			sp := firstPartySP(byID(w, withKey.ID))
			k := sp.KeyCredentials[0]
			k.KeyID = "00000000-0000-4000-8000-000000000001"
			sp.KeyCredentials = append(sp.KeyCredentials, k)
		}, "keys of certificate"},
		{"a service principal name registered twice", func(w *sim.World) {
			sp := firstPartySP(byID(w, withKey.ID))
			sp.ServicePrincipalNames = append(sp.ServicePrincipalNames, strings.ToUpper(sp.ServicePrincipalNames[0]))
		}, "service principal name"},
		{"a second auth server for one metadata URL", func(w *sim.World) {
			tn := byID(w, withAuth.ID)
			a := *tn.OnPrem.AuthServers[0]
			a.Name += " (2)"
			tn.OnPrem.AuthServers = append(tn.OnPrem.AuthServers, &a)
		}, "on-prem auth servers with metadata URL"},
		{"an auth server name twice", func(w *sim.World) {
			tn := byID(w, withAuth.ID)
			a := *tn.OnPrem.AuthServers[0]
			a.AuthMetadataURL += "x"
			a.Name = strings.ToUpper(a.Name)
			tn.OnPrem.AuthServers = append(tn.OnPrem.AuthServers, &a)
		}, "on-prem auth servers named"},
		{"a second connector for the hand-made one's domain", func(w *sim.World) {
			tn := byID(w, withIOC.ID)
			c := *tn.OnPrem.IntraOrganizationConnectors[0]
			c.Name = "HybridIOC - 1"
			tn.OnPrem.IntraOrganizationConnectors = append(tn.OnPrem.IntraOrganizationConnectors, &c)
		}, "on-prem IntraOrganizationConnectors for target address domain"},
		{"an Exchange Online connector name twice", func(w *sim.World) {
			tn := byID(w, withIOC.ID)
			c := &sim.IntraOrgConnector{Name: "HybridIOC", TargetAddressDomains: []string{"a.example.com"}}
			d := &sim.IntraOrgConnector{Name: "hybridioc", TargetAddressDomains: []string{"b.example.com"}}
			tn.Online.IntraOrganizationConnectors = append(tn.Online.IntraOrganizationConnectors, c, d)
		}, `Exchange Online IntraOrganizationConnectors named "hybridioc": 2`},
		{"an availability address space twice", func(w *sim.World) {
			tn := byID(w, withIOC.ID)
			s := &sim.AvailabilityAddressSpace{ForestName: "contoso.mail.onmicrosoft.com", AccessMethod: "InternalProxy"}
			c := *s
			tn.OnPrem.AvailabilityAddressSpaces = append(tn.OnPrem.AvailabilityAddressSpaces, s, &c)
		}, "availability address spaces for forest contoso.mail.onmicrosoft.com: 2"},
		{"an app role assigned twice", func(w *sim.World) {
			tn := byID(w, withKey.ID)
			x := *tn.Entra.AppRoleAssignments[0]
			x.ID = "another"
			tn.Entra.AppRoleAssignments = append(tn.Entra.AppRoleAssignments, &x)
		}, "app role assignments of role"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			after := before.Clone()
			tc.damage(after)
			wantLine(t, chaos.Duplicates(before, after), tc.want)
		})
	}
	t.Run("a duplicate the world was seeded with", func(t *testing.T) {
		seeded := before.Clone()
		sp := firstPartySP(byID(seeded, withKey.ID))
		sp.KeyCredentials = append(sp.KeyCredentials, sp.KeyCredentials[0])
		if d := chaos.Duplicates(seeded, seeded.Clone()); len(d) != 0 {
			t.Fatalf("a seeded duplicate was blamed on the run: %q", d)
		}
		worse := seeded.Clone()
		sp = firstPartySP(byID(worse, withKey.ID))
		sp.KeyCredentials = append(sp.KeyCredentials, sp.KeyCredentials[0])
		wantLine(t, chaos.Duplicates(seeded, worse), "(2 before the run)")
	})
}

func TestForeignLostCatchPlantedDamage(t *testing.T) {
	before := plantWorld(t)
	// An availability address space made by hand, and an expired key of
	// another application (the generated expired keys are old Exchange
	// auth certificates, which are the product's), to guard.
	before.Tenants[0].OnPrem.AvailabilityAddressSpaces = []*sim.AvailabilityAddressSpace{{ForestName: "fabrikam.example.com", AccessMethod: "OrgWideFB", ProxyURL: "https://mail.fabrikam.example.com/EWS/Exchange.asmx"}}
	old := sim.NewCertificate("Fabrikam Old Signing", 99, before.Now().AddDate(-3, 0, 0), before.Now().AddDate(-1, 0, 0))
	sp0 := firstPartySP(before.Tenants[1])
	sp0.KeyCredentials = append(sp0.KeyCredentials, sim.KeyCredential{KeyID: "55555555-5555-4555-8555-555555555555", CustomKeyIdentifier: old.Thumbprint,
		DisplayName: old.Subject, Type: "AsymmetricX509Cert", Usage: "Verify", StartDateTime: old.NotBefore, EndDateTime: old.NotAfter, Key: old.DER})
	if f := chaos.ForeignLost(before, before.Clone()); len(f.Lost) > 0 || f.Guarded == 0 || f.ExpiredDropped != 0 {
		t.Fatalf("an untouched world: %+v", f)
	}
	now := before.Now()
	foreignKey := func(tn *sim.Tenant) int {
		sp := firstPartySP(tn)
		if sp == nil {
			return -1
		}
		for i, k := range sp.KeyCredentials {
			if k.EndDateTime.After(now) && !strings.Contains(k.DisplayName, sim.AuthCertificateSubject) {
				return i
			}
		}
		return -1
	}
	expiredKey := func(tn *sim.Tenant) int {
		sp := firstPartySP(tn)
		if sp == nil {
			return -1
		}
		for i, k := range sp.KeyCredentials {
			if k.EndDateTime.Before(now) && strings.Contains(k.DisplayName, "Fabrikam Old Signing") {
				return i
			}
		}
		return -1
	}
	withForeign := tenantWith(t, before, "an unexpired key of another application", func(tn *sim.Tenant) bool { return foreignKey(tn) >= 0 })
	withExpired := tenantWith(t, before, "an expired key of another application", func(tn *sim.Tenant) bool { return expiredKey(tn) >= 0 })
	withAuth := tenantWith(t, before, "auth servers", func(tn *sim.Tenant) bool { return len(tn.OnPrem.AuthServers) > 0 })
	withIOC := tenantWith(t, before, "an on-prem connector", func(tn *sim.Tenant) bool { return len(tn.OnPrem.IntraOrganizationConnectors) > 0 })
	authKey := func(w *sim.World, id string) sim.KeyCredential {
		tn := byID(w, id)
		c := tn.OnPrem.Certificates[0]
		return sim.KeyCredential{KeyID: "11111111-1111-4111-8111-111111111111", CustomKeyIdentifier: c.Thumbprint, DisplayName: c.Subject,
			Type: "AsymmetricX509Cert", Usage: "Verify", StartDateTime: c.NotBefore, EndDateTime: c.NotAfter, Key: c.DER}
	}
	tests := []struct {
		name    string
		damage  func(w *sim.World)
		want    string // "" = nothing lost
		dropped int    // ExpiredDropped expected
	}{
		{"a key of another application removed", func(w *sim.World) {
			sp := firstPartySP(byID(w, withForeign.ID))
			i := foreignKey(byID(w, withForeign.ID))
			sp.KeyCredentials = append(sp.KeyCredentials[:i:i], sp.KeyCredentials[i+1:]...)
		}, "lost the key", 0},
		{"a key of another application rewritten", func(w *sim.World) {
			sp := firstPartySP(byID(w, withForeign.ID))
			i := foreignKey(byID(w, withForeign.ID))
			sp.KeyCredentials[i].CustomKeyIdentifier = "b64:AAAA"
			sp.KeyCredentials[i].EndDateTime = sp.KeyCredentials[i].EndDateTime.Add(time.Hour)
		}, "changed its customKeyIdentifier, endDateTime", 0},
		{"an expired key dropped by housekeeping alone", func(w *sim.World) {
			sp := firstPartySP(byID(w, withExpired.ID))
			i := expiredKey(byID(w, withExpired.ID))
			sp.KeyCredentials = append(sp.KeyCredentials[:i:i], sp.KeyCredentials[i+1:]...)
		}, "lost the expired key", 0},
		{"an expired key left out of a collection rewritten to add the auth key", func(w *sim.World) {
			sp := firstPartySP(byID(w, withExpired.ID))
			i := expiredKey(byID(w, withExpired.ID))
			sp.KeyCredentials = append(sp.KeyCredentials[:i:i], sp.KeyCredentials[i+1:]...)
			sp.KeyCredentials = append(sp.KeyCredentials, authKey(w, withExpired.ID))
		}, "", 1},
		{"the tenant's own auth certificate key removed (not foreign)", func(w *sim.World) {
			// before holds it, after not: the product's to manage.
			sp := firstPartySP(byID(w, withForeign.ID))
			sp.KeyCredentials = sp.KeyCredentials[:len(sp.KeyCredentials):len(sp.KeyCredentials)]
		}, "", 0},
		{"a service principal name removed", func(w *sim.World) {
			sp := firstPartySP(byID(w, withForeign.ID))
			sp.ServicePrincipalNames = sp.ServicePrincipalNames[1:]
		}, "lost service principal name", 0},
		{"the line-of-business application deleted", func(w *sim.World) {
			tn := byID(w, withForeign.ID)
			tn.Entra.Applications = tn.Entra.Applications[1:]
		}, "is gone", 0},
		{"an app role assignment removed", func(w *sim.World) {
			byID(w, withForeign.ID).Entra.AppRoleAssignments = nil
		}, "app role assignment", 0},
		{"an auth server removed", func(w *sim.World) {
			tn := byID(w, withAuth.ID)
			tn.OnPrem.AuthServers = tn.OnPrem.AuthServers[1:]
		}, "auth server", 0},
		{"an auth server's realm rewritten", func(w *sim.World) {
			byID(w, withAuth.ID).OnPrem.AuthServers[0].Realm = "contoso.com"
		}, "realm was", 0},
		{"an auth server disabled", func(w *sim.World) {
			byID(w, withAuth.ID).OnPrem.AuthServers[0].Enabled = false
		}, "enabled was true, now false", 0},
		{"an auth server adopted: ApplicationIdentifier filled in, a domain added", func(w *sim.World) {
			a := byID(w, withAuth.ID).OnPrem.AuthServers[1]
			a.ApplicationIdentifier = "22222222-2222-4222-8222-222222222222"
			a.DomainName = append(a.DomainName, "contoso.mail.onmicrosoft.com")
		}, "", 0},
		{"a hand-made connector's discovery endpoint rewritten", func(w *sim.World) {
			byID(w, withIOC.ID).OnPrem.IntraOrganizationConnectors[0].DiscoveryEndpoint = "https://autodiscover.contoso.com/autodiscover/autodiscover.svc"
		}, "DiscoveryEndpoint was", 0},
		{"a hand-made connector removed", func(w *sim.World) {
			byID(w, withIOC.ID).OnPrem.IntraOrganizationConnectors = nil
		}, "IntraOrganizationConnector", 0},
		{"a hand-made connector adopted: a target domain added", func(w *sim.World) {
			c := byID(w, withIOC.ID).OnPrem.IntraOrganizationConnectors[0]
			c.TargetAddressDomains = append(c.TargetAddressDomains, "contoso.onmicrosoft.com")
		}, "", 0},
		{"an availability address space changed", func(w *sim.World) {
			w.Tenants[0].OnPrem.AvailabilityAddressSpaces[0].UseServiceAccount = true
		}, "availability address space fabrikam.example.com was", 0},
		{"a certificate removed from the store", func(w *sim.World) {
			w.Tenants[0].OnPrem.Certificates = nil
		}, "certificate", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			after := before.Clone()
			tc.damage(after)
			f := chaos.ForeignLost(before, after)
			if tc.want == "" {
				if len(f.Lost) > 0 {
					t.Fatalf("reported %q", f.Lost)
				}
			} else {
				wantLine(t, f.Lost, tc.want)
			}
			if f.ExpiredDropped != tc.dropped {
				t.Fatalf("ExpiredDropped = %d, want %d", f.ExpiredDropped, tc.dropped)
			}
		})
	}
}

// stagedWorld is before with one tenant whose renewal created a
// certificate and staged it (next) or published it (current), its key on
// the first-party service principal.
func stagedWorld(t *testing.T, before *sim.World, current bool) (*sim.World, *sim.Tenant, *sim.ExchangeCertificate) {
	t.Helper()
	after := before.Clone()
	tn := after.Tenants[0]
	now := before.Now()
	c := sim.NewCertificate(sim.AuthCertificateSubject, 4242, now.Add(-time.Hour), now.AddDate(5, 0, 0))
	tn.OnPrem.Certificates = append(tn.OnPrem.Certificates, c)
	if current {
		tn.OnPrem.AuthConfig.PreviousCertificateThumbprint = tn.OnPrem.AuthConfig.CurrentCertificateThumbprint
		tn.OnPrem.AuthConfig.CurrentCertificateThumbprint = c.Thumbprint
	} else {
		tn.OnPrem.AuthConfig.NextCertificateThumbprint = c.Thumbprint
	}
	sp := firstPartySP(tn)
	sp.KeyCredentials = append(sp.KeyCredentials, sim.KeyCredential{KeyID: "33333333-3333-4333-8333-333333333333", CustomKeyIdentifier: c.Thumbprint,
		DisplayName: c.Subject, Type: "AsymmetricX509Cert", Usage: "Verify", StartDateTime: c.NotBefore, EndDateTime: c.NotAfter, Key: c.DER})
	return after, tn, c
}

func TestStagedKeysLostCatchesADroppedStagedKey(t *testing.T) {
	before := plantWorld(t)
	if s := chaos.StagedKeysLost(before, before.Clone(), nil); s.Keys != 0 || len(s.Lost)+len(s.Excused) != 0 {
		t.Fatalf("an untouched world: %+v", s)
	}
	dropKey := func(tn *sim.Tenant) {
		sp := firstPartySP(tn)
		sp.KeyCredentials = sp.KeyCredentials[:len(sp.KeyCredentials)-1]
	}
	t.Run("staged, key present", func(t *testing.T) {
		after, _, _ := stagedWorld(t, before, false)
		if s := chaos.StagedKeysLost(before, after, nil); s.Keys != 1 || len(s.Lost) != 0 {
			t.Fatalf("%+v", s)
		}
	})
	t.Run("staged, key gone", func(t *testing.T) {
		after, tn, c := stagedWorld(t, before, false)
		dropKey(tn)
		s := chaos.StagedKeysLost(before, after, nil)
		wantLine(t, s.Lost, "the next auth certificate "+c.Thumbprint)
	})
	t.Run("staged, key gone, the renewal said why", func(t *testing.T) {
		after, tn, _ := stagedWorld(t, before, false)
		dropKey(tn)
		s := chaos.StagedKeysLost(before, after, []chaos.Renewal{{Tenant: tn.ID, Reason: "StagedKeyMissing"}})
		if len(s.Lost) != 0 || len(s.Excused) != 1 {
			t.Fatalf("%+v", s)
		}
	})
	t.Run("published, key gone: never excused", func(t *testing.T) {
		after, tn, c := stagedWorld(t, before, true)
		dropKey(tn)
		s := chaos.StagedKeysLost(before, after, []chaos.Renewal{{Tenant: tn.ID, Reason: "StagedKeyMissing"}})
		wantLine(t, s.Lost, "the current auth certificate "+c.Thumbprint)
	})
	t.Run("key on the first-party SP while the trust uses the dedicated application", func(t *testing.T) {
		after, tn, _ := stagedWorld(t, before, false)
		tn.Entra.Applications = append(tn.Entra.Applications, &sim.Application{ID: "app-obj", AppID: "44444444-4444-4444-8444-444444444444", DisplayName: "ExchangeServerApp-x", CreatedBy: "client"})
		tn.OnPrem.AuthServers = append(tn.OnPrem.AuthServers, &sim.AuthServer{Name: "EvoSts - x", Type: "AzureAD", Enabled: true, ApplicationIdentifier: "44444444-4444-4444-8444-444444444444"})
		s := chaos.StagedKeysLost(before, after, nil)
		wantLine(t, s.Lost, `has no key on application "ExchangeServerApp-x"`)
	})
	t.Run("created but never put in service", func(t *testing.T) {
		after, tn, _ := stagedWorld(t, before, false)
		tn.OnPrem.AuthConfig.NextCertificateThumbprint = ""
		dropKey(tn)
		if s := chaos.StagedKeysLost(before, after, nil); s.Keys != 0 || len(s.Lost) != 0 {
			t.Fatalf("%+v", s)
		}
	})
}

func TestRenewedAllowedKeepsEverythingButTheRenewal(t *testing.T) {
	before := plantWorld(t)
	after, tn, c := stagedWorld(t, before, true)
	old := byID(before, tn.ID).OnPrem.AuthConfig.CurrentCertificateThumbprint
	line := tn.ID + ": on-prem auth config CurrentCertificateThumbprint was " + old + `, now "` + c.Thumbprint + `"`
	other := tn.ID + ": on-prem auth server \"x\" is gone"
	if got := chaos.RenewedAllowed([]string{line, other}, before, after, []string{tn.ID}); len(got) != 1 || got[0] != other {
		t.Fatalf("renewed tenant: %q", got)
	}
	if got := chaos.RenewedAllowed([]string{line}, before, after, nil); len(got) != 1 {
		t.Fatalf("a tenant no renewal finished: %q", got)
	}
	foreign := tn.ID + ": on-prem auth config CurrentCertificateThumbprint was " + old + `, now "` + strings.Repeat("A", 40) + `"`
	if got := chaos.RenewedAllowed([]string{foreign}, before, after, []string{tn.ID}); len(got) != 1 {
		t.Fatalf("a current certificate the run did not create: %q", got)
	}
}

func TestWriterOverlapsCatchSetupAndRenewalAtOnce(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	x := func(wf, typ string, from, to float64, local bool) chaos.Execution {
		return chaos.Execution{WorkflowID: wf, Type: typ, Local: local,
			Start: t0.Add(time.Duration(from * float64(time.Second))), End: t0.Add(time.Duration(to * float64(time.Second)))}
	}
	tenantOf := func(wf string) string {
		switch {
		case strings.HasPrefix(wf, "hybridflow/setup/"):
			return strings.TrimPrefix(wf, "hybridflow/setup/")
		case strings.HasPrefix(wf, "hybridflow/renewal/"):
			return strings.SplitN(strings.TrimPrefix(wf, "hybridflow/renewal/"), "-", 2)[0]
		}
		return ""
	}
	tests := []struct {
		name  string
		execs []chaos.Execution
		want  int
	}{
		{"one after the other", []chaos.Execution{x("hybridflow/setup/a", "EnsureKeys", 0, 2, false), x("hybridflow/renewal/a-1", "UploadAuthCertificateKeys", 2.5, 3, false)}, 0},
		{"at once", []chaos.Execution{x("hybridflow/setup/a", "EnsureKeys", 0, 2, false), x("hybridflow/renewal/a-1", "UploadAuthCertificateKeys", 1, 3, false)}, 1},
		{"two tenants at once", []chaos.Execution{x("hybridflow/setup/a", "EnsureKeys", 0, 2, false), x("hybridflow/renewal/b-1", "UploadAuthCertificateKeys", 1, 3, false)}, 0},
		{"one workflow's parallel steps", []chaos.Execution{x("hybridflow/setup/a", "VerifyFromOnPrem", 0, 2, false), x("hybridflow/setup/a", "VerifyFromOnline", 0, 2, false)}, 0},
		{"a local decision", []chaos.Execution{x("hybridflow/setup/a", "EnsureKeys", 0, 2, false), x("hybridflow/renewal/a-1", "DecideRenewalMode", 1, 1.1, true)}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := chaos.WriterOverlaps(tc.execs, tenantOf); len(got) != tc.want {
				t.Fatalf("got %q, want %d", got, tc.want)
			}
		})
	}
}

func TestSessionAndHangProblems(t *testing.T) {
	ok := sim.SessionCounts{Opened: 40, Removed: 37, Orphaned: 3}
	if p := chaos.SessionProblems(ok, 3); len(p) != 0 {
		t.Fatalf("every orphan a host death: %q", p)
	}
	wantLine(t, chaos.SessionProblems(sim.SessionCounts{Opened: 40, Removed: 36, Orphaned: 4}, 3), "1 session(s) left behind by the worker")
	wantLine(t, chaos.SessionProblems(sim.SessionCounts{Opened: 40, Removed: 36, Orphaned: 3, Open: 1}, 3), "still open")
	if p := chaos.HangProblems(3, 3, 1, 3, 0); len(p) != 0 {
		t.Fatalf("every hang cancelled: %q", p)
	}
	wantLine(t, chaos.HangProblems(3, 2, 1, 2, 0), "3 cmdlet(s) hung, 2 cancelled")
	wantLine(t, chaos.HangProblems(3, 3, 0, 3, 0), "ended by the call timeout")
	wantLine(t, chaos.HangProblems(3, 3, 1, 2, 0), "after 2 of them a new host")
	wantLine(t, chaos.HangProblems(3, 3, 1, 3, 1), "ran after")
}
