package workflows_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/workflows"
)

// TestSetupResetFirstPartyKeysOnlyWhenAsked: a dedicated-mode tenant whose
// first-party service principal holds the legacy auth certificate and a
// partner's key. The clean-up activity gets ResetAll only when the
// operator's option asked for Microsoft's reset
// (shared/reference/hybrid-facts.md "-ResetFirstPartyServicePrincipalKeyCredentials":
// PATCH keyCredentials [] removes every key, whatever its origin); the
// plan says so beforehand; with it every key goes, without it the
// partner's key stays; either way the second verification passes.
func TestSetupResetFirstPartyKeysOnlyWhenAsked(t *testing.T) {
	for _, reset := range []bool{false, true} {
		name := "ordinary clean-up"
		if reset {
			name = "reset asked for"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, "small.yaml")
			id := h.inv.Tenants[0].ID
			h.giveLegacyKey(id)
			foreign := sim.NewCertificate("CN=Fabrikam Partner Signing", 78, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC))
			h.world.Update(id, func(t *sim.Tenant) {
				fp := firstPartySP(t)
				fp.KeyCredentials = append(fp.KeyCredentials, sim.KeyCredential{KeyID: "6d1f4c1e-0000-4000-8000-0000000f0e20", CustomKeyIdentifier: foreign.Thumbprint,
					DisplayName: "Fabrikam partner", Type: "AsymmetricX509Cert", Usage: "Verify", StartDateTime: foreign.NotBefore, EndDateTime: foreign.NotAfter, Key: foreign.DER})
			})
			env := h.env()
			var (
				mu   sync.Mutex
				seen []activities.RemoveLegacyKeysInput
			)
			env.SetOnLocalActivityStartedListener(func(_ *activity.Info, _ context.Context, args []any) {
				for _, a := range args {
					if in, ok := a.(activities.RemoveLegacyKeysInput); ok {
						mu.Lock()
						seen = append(seen, in)
						mu.Unlock()
					}
				}
			})
			res, err := h.run(env, h.input(0, workflows.SetupOptions{ResetFirstPartyKeys: reset}))
			if err != nil {
				t.Fatal(err)
			}
			logSetup(t, res)
			if len(seen) != 1 || seen[0].ResetAll != reset {
				t.Fatalf("clean-up activity inputs %+v, want one with ResetAll=%v", seen, reset)
			}
			if res.Desired == nil || res.Desired.ResetFirstPartyKeys != reset {
				t.Errorf("recorded plan's reset %v, want %v", res.Desired != nil && res.Desired.ResetFirstPartyKeys, reset)
			}
			var rmPlan plan.Action
			for _, a := range res.Plan {
				if a.Step == plan.StepRemoveLegacyKey {
					rmPlan = a
				}
			}
			if says := strings.Contains(rmPlan.Reason, "every key of the Exchange Online first-party service principal goes"); says != reset || rmPlan.Change != plan.ChangeUpdate {
				t.Errorf("plan of %s: %s %q", plan.StepRemoveLegacyKey, rmPlan.Change, rmPlan.Reason)
			}
			tn := h.tenant(id)
			keys := firstPartySP(tn).KeyCredentials
			if hasKeyFor(keys, authCert(tn)) || hasKeyFor(keys, foreign) == reset || (reset && len(keys) != 0) {
				t.Errorf("first-party keys after the clean-up: %d left, auth cert %v, partner's %v", len(keys), hasKeyFor(keys, authCert(tn)), hasKeyFor(keys, foreign))
			}
			if rm, v2 := setupStep(res, plan.StepRemoveLegacyKey), setupStep(res, plan.StepVerifyAfterRemoval); res.State != workflows.StateVerified ||
				rm.Outcome != string(activities.Removed) || v2.Status != workflows.StatusDone {
				t.Errorf("state %s; remove %s/%s; verify again %s", res.State, rm.Status, rm.Outcome, v2.Status)
			}
		})
	}
}
