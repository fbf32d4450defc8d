package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/workflows"
)

// TestMigrateResetFirstPartyKeysGuards runs the real migrate command with
// nothing listening at the Temporal address. --reset-first-party-keys
// without a terminal and without --yes is refused before anything is
// dialled, with a question that says every key of the first-party service
// principal goes, other applications' included, and names --yes; with
// --yes it goes on (and dials). Together with --keep-legacy-key it is
// refused whatever else is given, naming both flags, before dialling.
func TestMigrateResetFirstPartyKeysGuards(t *testing.T) {
	const tenant = "11111111-1111-4111-8111-000000000003"
	migrate := func(extra ...string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		args := append([]string{"migrate", "-f", demoInventory, "-t", tenant, "--address", "127.0.0.1:1"}, extra...)
		var out, errb bytes.Buffer
		code := runIO(ctx, args, strings.NewReader(""), &out, &errb, func(string) string { return "" })
		return code, out.String() + errb.String()
	}
	const dial = "connect to Temporal"

	code, got := migrate("--reset-first-party-keys")
	if code == 0 || strings.Contains(got, dial) || strings.Contains(got, "[y/N]") {
		t.Fatalf("without a terminal: exit %d, want a refusal before dialling:\n%s", code, got)
	}
	for _, want := range []string{"remove EVERY key on the Exchange Online first-party service principal", "other applications' keys included",
		"All of its keys would go", "refused without a terminal", "--yes"} {
		if !strings.Contains(got, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, got)
		}
	}

	if code, got := migrate("--reset-first-party-keys", "--yes"); code == 0 || !strings.Contains(got, dial) {
		t.Errorf("--yes: exit %d, want the migration to go on and dial:\n%s", code, got)
	}

	for _, extra := range [][]string{
		{"--reset-first-party-keys", "--keep-legacy-key"},
		{"--keep-legacy-key", "--reset-first-party-keys", "--yes"},
		{"--reset-first-party-keys", "--keep-legacy-key", "--dry-run"},
	} {
		code, got := migrate(extra...)
		if code == 0 || strings.Contains(got, dial) || !strings.Contains(got, "--reset-first-party-keys and --keep-legacy-key cannot be combined") {
			t.Errorf("%v: exit %d, want a refusal naming both flags before dialling:\n%s", extra, code, got)
		}
	}
}

// TestResetQuestionNamesTheKeys: asked on a terminal, the question counts
// and lists the keys the plan's reset step drops, every one of them.
func TestResetQuestionNamesTheKeys(t *testing.T) {
	res := workflows.SetupResult{Plan: []plan.Action{
		{Step: plan.StepVerify, Change: plan.ChangeCheck, Reason: "Test-OAuthConnectivity"},
		{Step: plan.StepRemoveLegacyKey, Change: plan.ChangeUpdate, Reason: "every key goes", Details: []string{
			"drop 6A754EC1550A880A6F0ED4928B526E5C899B8789 (Fabrikam SAML signing, valid until 2028-01-01): another application's key",
			"drop EE1DAECE0739F252FACD9E4391A7F7FE1EA70DE4 (legacy upload, valid until 2030-06-01): Exchange auth certificate",
		}},
	}}
	q := resetQuestion("t1", &res)
	for _, want := range []string{"remove EVERY key on the Exchange Online first-party service principal, other applications' keys included",
		"It holds 2 key(s) now; all of them would go:",
		"\n  6A754EC1550A880A6F0ED4928B526E5C899B8789 (Fabrikam SAML signing, valid until 2028-01-01): another application's key",
		"\n  EE1DAECE0739F252FACD9E4391A7F7FE1EA70DE4 (legacy upload, valid until 2030-06-01): Exchange auth certificate",
		"Remove all 2 key(s)?"} {
		if !strings.Contains(q, want) {
			t.Errorf("question does not say %q:\n%s", want, q)
		}
	}
	res.Plan[1] = plan.Action{Step: plan.StepRemoveLegacyKey, Change: plan.ChangeNone, Reason: "holds no key"}
	if q := resetQuestion("t1", &res); !strings.Contains(q, "It holds no key now, so nothing would be removed") {
		t.Errorf("no keys: %s", q)
	}
}
