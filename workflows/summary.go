package workflows

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.temporal.io/sdk/workflow"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/steps"
)

// Temporal's user metadata: a workflow's static summary and each
// activity's summary are what the Web UI shows in its workflow list and
// timeline. Both are payloads, so the data converter (the payload codec,
// when one is configured) encrypts them like inputs and results, and the
// Web UI shows them through the codec server.

// summarySep separates the parts of a workflow summary.
const summarySep = " · "

// maxSummaryBytes bounds a summary: Temporal documents a static summary
// as one line of at most 200 bytes, which the Web UI renders as Markdown
// (docs/web-ui.md).
const maxSummaryBytes = 200

// TenantSummary is the static summary of a tenant's setup or renewal:
// "<tenant> · <domain> · <cloud> · <site>", the tenant by its display name
// (its ID when it has none).
func TenantSummary(t config.Tenant) string {
	return joinSummary(tenantName(t), t.InitialDomain, t.Cloud, t.Site)
}

// LyncSummary is the static summary of a Lync run at a Lync site for the
// tenant that decides it (the CLI's first tenant at the site, or -t).
func LyncSummary(t config.Tenant, lyncSite string) string {
	return joinSummary(tenantName(t), t.InitialDomain, t.Cloud, "Lync "+lyncSite)
}

// RolloutSummary is the static summary of a rollout.
func RolloutSummary(name string, tenants int) string {
	if tenants == 1 {
		return oneLine("rollout " + name + summarySep + "1 tenant")
	}
	return oneLine("rollout " + name + summarySep + strconv.Itoa(tenants) + " tenants")
}

func tenantName(t config.Tenant) string {
	if strings.TrimSpace(t.DisplayName) != "" {
		return t.DisplayName
	}
	return t.ID
}

func joinSummary(parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			kept = append(kept, p)
		}
	}
	return oneLine(strings.Join(kept, summarySep))
}

// oneLine makes s a single line of at most maxSummaryBytes: control
// characters become spaces, and a longer text is cut at a rune boundary
// with an ellipsis.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	if len(s) <= maxSummaryBytes {
		return s
	}
	const ellipsis = "…"
	cut := maxSummaryBytes - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// setupStepSummaries name the setup's steps outside the registry; each
// registered step carries its own Summary (steps/), numbered as Microsoft's
// manual procedure numbers it.
var setupStepSummaries = map[string]string{
	stepDiscover: "Discover: read on-premises Exchange, Exchange Online and Entra, then plan the steps",
	stepPlan:     "Plan the steps from what discovery read",
}

// renewalStepSummaries name the renewal's steps.
var renewalStepSummaries = map[string]string{
	RenewStepRead:         "Read the auth certificates on-premises and their keys in Entra",
	RenewStepCreate:       "Renewal: create a new auth certificate on-premises",
	RenewStepStage:        "Renewal: stage the new auth certificate for its effective date",
	RenewStepUpload:       "Renewal: upload the new certificate's key to Microsoft Entra",
	RenewStepWait:         "Renewal: wait for the effective date",
	RenewStepCheckKey:     "Renewal: check that the staged certificate's key is still in Entra",
	RenewStepCheckServers: "Renewal: check that every Mailbox and Client Access server holds the new certificate",
	RenewStepPublish:      "Renewal: publish the new certificate as the current auth certificate",
	RenewStepVerify:       "Verify: Test-OAuthConnectivity in both directions",
	RenewStepClear:        "Renewal: clear the previous auth certificate",
	RenewStepRemoveKey:    "Renewal: remove the retired certificate's key from Entra",
	RenewStepVerifyFinal:  "Verify again: Test-OAuthConnectivity in both directions",
}

// lyncStepSummaries name the Lync integration's steps.
var lyncStepSummaries = map[string]string{
	stepDiscover:                         "Discover the Lync deployment",
	stepPlan:                             "Plan the Lync steps from what discovery read",
	string(plan.LyncStepFederation):      "Lync: allow federated users on the access edge (shared SIP address space)",
	string(plan.LyncStepHostingProvider): "Lync: configure the Exchange Online hosting provider",
	string(plan.LyncStepReplication):     "Lync: wait for Central Management store replication",
	string(plan.LyncStepEdgeStore):       "Lync: confirm the Edge Server's replica has the hosting provider",
	string(plan.LyncStepExternalAccess):  "Lync: check the external access policy",
}

// SetupStepSummary, RenewalStepSummary and LyncStepSummary are the
// activity summaries of a workflow's steps; an unknown step is named as is.
func SetupStepSummary(step string) string {
	if s := steps.Lookup(plan.Step(step)); s.Summary != "" {
		return oneLine(s.Summary)
	}
	return stepSummary(setupStepSummaries, step)
}
func RenewalStepSummary(step string) string { return stepSummary(renewalStepSummaries, step) }
func LyncStepSummary(step string) string    { return stepSummary(lyncStepSummaries, step) }

func stepSummary(m map[string]string, step string) string {
	if s, ok := m[step]; ok {
		return s
	}
	return oneLine(step)
}

// undoSummary is the summary of an activity that reverses a step.
func undoSummary(stepSummary string) string { return oneLine("Undo: " + stepSummary) }

// summaryKey carries the summary of the step being run on the workflow
// context, for the activities the step schedules.
type summaryKey struct{}

// withSummary is ctx with the summary its activities carry.
func withSummary(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithValue(ctx, summaryKey{}, summary)
}

// summaryIn is the summary withSummary put on ctx ("" for none).
func summaryIn(ctx workflow.Context) string {
	s, _ := ctx.Value(summaryKey{}).(string)
	return s
}

// summarized sets the activity options' summary from ctx.
func summarized(ctx workflow.Context, o workflow.ActivityOptions) workflow.ActivityOptions {
	o.Summary = summaryIn(ctx)
	return o
}
