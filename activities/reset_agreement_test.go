package activities

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/certs"
	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
)

func (a *agreement) firstPartyKeys() []sim.KeyCredential {
	var out []sim.KeyCredential
	a.w.View(hcwTenant, func(tn *sim.Tenant) {
		for _, sp := range tn.Entra.ServicePrincipals {
			if sp.AppID == cloud.FirstPartyAppID {
				out = append(out, sp.KeyCredentials...)
			}
		}
	})
	return out
}

// TestLegacyCleanupPlanAndActivityAgree: the organisation the Hybrid
// Configuration Wizard left (its auth certificate on the first-party
// service principal) plus a partner's key there. For the ordinary clean-up
// and for the operator's reset (Microsoft's
// -ResetFirstPartyServicePrincipalKeyCredentials, PATCH keyCredentials []:
// shared/reference/hybrid-facts.md "-ResetFirstPartyServicePrincipalKeyCredentials"),
// the keys the plan says go are exactly the keys the clean-up activity
// removes (given ResetAll from the plan, as the workflow passes it), the
// ones it says stay are what is left, and a new plan then finds nothing to
// do. The undo puts back every key the activity removed.
func TestLegacyCleanupPlanAndActivityAgree(t *testing.T) {
	nb := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
	partner := sim.NewCertificate("CN=Fabrikam SAML signing", 7101, nb, nb.AddDate(3, 0, 0))
	partnerTP := certs.Thumbprint(partner.DER)
	for _, reset := range []bool{false, true} {
		name := "ordinary clean-up"
		if reset {
			name = "reset"
		}
		t.Run(name, func(t *testing.T) {
			a := newAgreement(t, func(tn *sim.Tenant) {
				for _, sp := range tn.Entra.ServicePrincipals {
					if sp.AppID == cloud.FirstPartyAppID {
						sp.KeyCredentials = append(sp.KeyCredentials, sim.KeyCredential{KeyID: "7e570000-0000-4000-8000-00000000fab1", CustomKeyIdentifier: partnerTP,
							DisplayName: "Fabrikam SAML signing", Type: "AsymmetricX509Cert", Usage: "Verify", StartDateTime: partner.NotBefore, EndDateTime: partner.NotAfter, Key: partner.DER})
					}
				}
			})
			a.planWith(reset)
			if a.out.Desired.Mode != plan.ModeDedicatedApp {
				t.Fatalf("mode %s: %s", a.out.Desired.Mode, a.out.Desired.ModeReason)
			}
			before := a.firstPartyKeys()
			act := a.action(plan.StepRemoveLegacyKey)
			t.Logf("%s %s: %s", act.Step, act.Change, act.Reason)
			var planDrops, planKeeps []string
			for _, l := range act.Details {
				f := strings.Fields(l)
				switch f[0] {
				case "drop":
					planDrops = append(planDrops, strings.TrimSuffix(f[1], ":"))
				case "keep":
					planKeeps = append(planKeeps, f[1])
				}
			}
			if act.Change != plan.ChangeUpdate || len(planDrops) == 0 {
				t.Fatalf("plan: %s %q", act.Change, act.Details)
			}
			if hasPartner := slices.Contains(planDrops, partnerTP); hasPartner != reset {
				t.Errorf("plan drops the partner's key: %v, want %v (%q)", hasPartner, reset, act.Details)
			}

			res, err := exec[StepResult](a, (&Entra{}).RemoveLegacyKeys, RemoveLegacyKeysInput{Target: a.tgt, Thumbprints: a.out.Desired.LegacyThumbprints, ResetAll: a.out.Desired.ResetFirstPartyKeys})
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != Removed || len(res.Undo) != 1 {
				t.Fatalf("activity: %s %s, undo %+v", res.Outcome, res.Detail, res.Undo)
			}
			var removed []string
			for _, k := range res.Undo[0].Keys {
				removed = append(removed, certs.Thumbprint(k.DER))
			}
			var left []string
			for _, k := range a.firstPartyKeys() {
				left = append(left, certs.Thumbprint(k.Key))
			}
			slices.Sort(planDrops)
			slices.Sort(removed)
			slices.Sort(planKeeps)
			slices.Sort(left)
			if !slices.Equal(planDrops, removed) || !slices.Equal(planKeeps, left) {
				t.Errorf("the plan drops %v and keeps %v; the activity removed %v and left %v", planDrops, planKeeps, removed, left)
			}

			a.planWith(reset)
			if again := a.action(plan.StepRemoveLegacyKey); again.Change != plan.ChangeNone {
				t.Errorf("after the clean-up the plan still says %s: %s", again.Change, again.Reason)
			}
			if _, err := a.env.ExecuteActivity((&Entra{}).UndoEntra, UndoInput{Target: a.tgt, Record: res.Undo[0]}); err != nil {
				t.Fatal(err)
			}
			if after := a.firstPartyKeys(); len(after) != len(before) {
				t.Errorf("after the undo %d keys, before the clean-up %d", len(after), len(before))
			}
		})
	}
}
