package workflows

import (
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/codec"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/steps"
)

func TestTenantSummary(t *testing.T) {
	tn := config.Tenant{ID: "11111111-1111-4111-8111-000000000006", DisplayName: "Demo 6", Cloud: "global",
		InitialDomain: "demo6.onmicrosoft.com", Site: "site-6", LyncSite: "lync-a"}
	if got, want := TenantSummary(tn), "Demo 6 · demo6.onmicrosoft.com · global · site-6"; got != want {
		t.Errorf("TenantSummary = %q, want %q", got, want)
	}
	if got, want := LyncSummary(tn, "lync-a"), "Demo 6 · demo6.onmicrosoft.com · global · Lync lync-a"; got != want {
		t.Errorf("LyncSummary = %q, want %q", got, want)
	}
	tn.DisplayName = "  "
	if got := TenantSummary(tn); !strings.HasPrefix(got, tn.ID+" · ") {
		t.Errorf("without a display name the summary names the tenant by ID: %q", got)
	}
	if got, want := RolloutSummary("inventory-demo", 20), "rollout inventory-demo · 20 tenants"; got != want {
		t.Errorf("RolloutSummary = %q, want %q", got, want)
	}
}

// A summary is one line of at most 200 bytes (Temporal's documented
// bound; the Web UI's list shows it in a row), and sealed by the codec it
// stays under the server's 400-byte default for a summary payload
// (limit.userMetadataSummarySize).
func TestSummaryIsOneBoundedLine(t *testing.T) {
	tn := config.Tenant{ID: "x", DisplayName: "Evil\nName\r\u2028" + strings.Repeat("é", 300), Cloud: "global", InitialDomain: "d.example", Site: "s"}
	got := TenantSummary(tn)
	if strings.ContainsAny(got, "\n\r\u2028") {
		t.Errorf("summary has a line break: %q", got)
	}
	if len(got) > 200 {
		t.Errorf("summary is %d bytes, more than 200", len(got))
	}
	if !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("a long summary is cut at a rune boundary with an ellipsis: %q", got[len(got)-10:])
	}
	c, err := codec.New("k1", []codec.Key{{ID: "k1", Secret: make([]byte, codec.KeySize)}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := codec.DataConverter(c).ToPayload(got)
	if err != nil {
		t.Fatal(err)
	}
	if n := proto.Size(p); !codec.IsEncrypted(p) || n > 400 {
		t.Errorf("the longest summary sealed is %d bytes (encrypted %v), more than the server's 400", n, codec.IsEncrypted(p))
	}
}

// Every step of every workflow has a summary of its own: a new step
// without one would show in the Web UI under its bare name.
func TestEveryStepHasASummary(t *testing.T) {
	for _, s := range steps.Registry {
		if s.Summary == "" {
			t.Errorf("setup step %s has no summary", s.Name)
		}
	}
	for _, s := range activities.LyncSteps {
		if _, ok := lyncStepSummaries[string(s)]; !ok {
			t.Errorf("Lync step %s has no summary", s)
		}
	}
	for _, s := range []string{RenewStepRead, RenewStepCreate, RenewStepStage, RenewStepUpload, RenewStepWait, RenewStepCheckKey,
		RenewStepCheckServers, RenewStepPublish, RenewStepVerify, RenewStepClear, RenewStepRemoveKey, RenewStepVerifyFinal} {
		if _, ok := renewalStepSummaries[s]; !ok {
			t.Errorf("renewal step %s has no summary", s)
		}
	}
	for _, m := range []map[string]string{setupStepSummaries, lyncStepSummaries, renewalStepSummaries} {
		for step, s := range m {
			if s != oneLine(s) {
				t.Errorf("summary of %s is not one bounded line: %q", step, s)
			}
		}
	}
	if got := SetupStepSummary(string(plan.StepIOCOnPrem)); !strings.HasPrefix(got, "Step 6: ") {
		t.Errorf("the on-prem connector is step 6 of Microsoft's procedure: %q", got)
	}
}
