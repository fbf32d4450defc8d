package plan

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// resetWorld is the Contoso organisation in dedicated mode whose
// first-party service principal holds its legacy auth certificate and a
// partner's key: what Microsoft's reset
// (ConfigureExchangeHybridApplication.ps1
// -ResetFirstPartyServicePrincipalKeyCredentials, PATCH keyCredentials [],
// shared/reference/hybrid-facts.md "-ResetFirstPartyServicePrincipalKeyCredentials")
// and the ordinary clean-up treat differently.
func resetWorld(t *testing.T, reset bool) (Desired, Observed) {
	t.Helper()
	w := contoso("global")
	w.o.FirstPartySP.Keys[0].DisplayName = "Fabrikam SAML signing"
	legacy := k("legacy", derCur, date(2030, 6, 1))
	legacy.DisplayName = "legacy upload"
	w.o.FirstPartySP.Keys = append(w.o.FirstPartySP.Keys, legacy)
	d, _ := mustDerive(t, w)
	if d.Mode != ModeDedicatedApp {
		t.Fatalf("mode %s", d.Mode)
	}
	d.ResetFirstPartyKeys = reset
	return d, w.o
}

// TestResetFirstPartyKeysPlan: with the operator's reset the clean-up step
// removes every key of the first-party service principal, the partner's
// included, and its reason says so and names each key (the partner's as
// another application's); the second verification follows it. Without
// the reset the partner's key stays. The plan's dropped keys are exactly
// ResetKeys' decision, which the clean-up activity makes too.
func TestResetFirstPartyKeysPlan(t *testing.T) {
	d, o := resetWorld(t, true)
	actions := BuildPlan(d, o, genNow)
	assertChanges(t, actions, map[Step]Change{StepRemoveLegacyKey: ChangeUpdate, StepVerifyAfterRemoval: ChangeCheck})
	rm := byStep(actions)[StepRemoveLegacyKey]
	t.Logf("%s %s: %s\n  %s", rm.Step, rm.Change, rm.Reason, strings.Join(rm.Details, "\n  "))
	assertMentions(t, rm, "after verification succeeds", "every key of the Exchange Online first-party service principal goes", "other applications' included", "2 keys",
		short(tpForeign)+" (Fabrikam SAML signing; another application's key)",
		short(tpCur)+" (legacy upload; Exchange auth certificate)",
		"1 of them is not an Exchange auth certificate", "-ResetFirstPartyServicePrincipalKeyCredentials")
	var dropped []string
	for _, l := range rm.Details {
		if !strings.HasPrefix(l, "drop ") {
			t.Errorf("detail %q: a reset keeps nothing", l)
			continue
		}
		dropped = append(dropped, strings.Fields(l)[1])
	}
	var want []string
	for _, x := range ResetKeys(o.FirstPartySP.Keys).Dropped {
		want = append(want, x.Thumbprint)
	}
	if !slices.Equal(dropped, want) || !slices.Equal(dropped, []string{tpForeign, tpCur}) {
		t.Errorf("plan drops %v; ResetKeys drops %v; want the partner's key and ours", dropped, want)
	}
	assertMentions(t, byStep(actions)[StepVerifyAfterRemoval], "every key of the first-party service principal is removed")

	// The ordinary clean-up keeps the partner's key.
	d, o = resetWorld(t, false)
	rm = byStep(BuildPlan(d, o, genNow))[StepRemoveLegacyKey]
	if rm.Change != ChangeUpdate || !slices.Contains(rm.Details, "keep "+tpForeign) || strings.Contains(rm.Reason, "whoever uploaded it") {
		t.Errorf("without the reset: %s %q %q", rm.Change, rm.Reason, rm.Details)
	}

	// A principal without keys: nothing to reset, nothing to verify again.
	d, o = resetWorld(t, true)
	o.FirstPartySP.Keys = nil
	actions = BuildPlan(d, o, genNow)
	assertChanges(t, actions, map[Step]Change{StepRemoveLegacyKey: ChangeNone, StepVerifyAfterRemoval: ChangeSkip})
	assertMentions(t, byStep(actions)[StepRemoveLegacyKey], "holds no key")

	// Legacy mode keeps its key on the principal: the reset does not apply.
	w := contoso("gcchigh")
	w.t.ModeSetting = "legacy-first-party"
	ld, _ := mustDerive(t, w)
	ld.ResetFirstPartyKeys = true
	assertChanges(t, BuildPlan(ld, w.o, genNow), map[Step]Change{StepRemoveLegacyKey: ChangeSkip, StepVerifyAfterRemoval: ChangeSkip})
}

// TestResetFirstPartyKeysPayload: the choice travels in Desired (recorded
// in the plan's history), and a Desired recorded before the field existed
// decodes as the ordinary clean-up.
func TestResetFirstPartyKeysPayload(t *testing.T) {
	d, _ := resetWorld(t, true)
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var back Desired
	if err := json.Unmarshal(b, &back); err != nil || !back.ResetFirstPartyKeys {
		t.Fatalf("round trip lost the reset: %v", err)
	}
	d.ResetFirstPartyKeys = false
	b, _ = json.Marshal(d)
	if strings.Contains(string(b), "reset_first_party_keys") {
		t.Errorf("the ordinary clean-up's payload names the reset: %s", b)
	}
}
