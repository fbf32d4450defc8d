package activities

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// Steps and reads both Exchange sides share: IntraOrganizationConnectors
// (steps 6 and 7) and Test-OAuthConnectivity (verification).

func iocFromRow(r exchange.Row) plan.IOC {
	return plan.IOC{
		Name:                 rowString(r, "Name"),
		DiscoveryEndpoint:    rowString(r, "DiscoveryEndpoint"),
		TargetAddressDomains: rowStrings(r, "TargetAddressDomains"),
		Enabled:              rowBool(r, "Enabled"),
	}
}

func sameFold(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x := make([]string, len(a))
	y := make([]string, len(b))
	for i := range a {
		x[i], y[i] = strings.ToLower(a[i]), strings.ToLower(b[i])
	}
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// unionFold is have plus the members of want it lacks, ignoring case.
func unionFold(have, want []string) []string {
	out := slices.Clone(have)
	for _, w := range want {
		if !slices.ContainsFunc(out, func(h string) bool { return strings.EqualFold(h, w) }) {
			out = append(out, w)
		}
	}
	return out
}

func overlapFold(a, b []string) string {
	for _, x := range a {
		for _, y := range b {
			if strings.EqualFold(x, y) {
				return x
			}
		}
	}
	return ""
}

func sameURL(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "/"), strings.TrimSuffix(b, "/"))
}

// ensureIOC makes the connector spec exist and match, on either side.
// A connector of another name that already serves the target domains with
// the right endpoint (the Hybrid Configuration Wizard's "HybridIOC - …")
// counts as done; one with another endpoint is in the way and not ours,
// so it is reported, never changed.
func ensureIOC(ctx context.Context, r exchange.Runner, sys System, spec plan.IOCSpec) (StepResult, error) {
	what := fmt.Sprintf("ensure IntraOrganizationConnector %s", spec.Name)
	rows, err := r.Run(ctx, cmd("Get-IntraOrganizationConnector"))
	if err != nil {
		return StepResult{}, classify(what, err)
	}
	var mine *plan.IOC
	for _, row := range rows {
		ioc := iocFromRow(row)
		if strings.EqualFold(ioc.Name, spec.Name) {
			mine = &ioc
			continue
		}
		if d := overlapFold(ioc.TargetAddressDomains, spec.TargetAddressDomains); d != "" {
			if sameURL(ioc.DiscoveryEndpoint, spec.DiscoveryEndpoint) && ioc.Enabled {
				return StepResult{Outcome: Unchanged, Detail: fmt.Sprintf("connector %q already serves %s through %s", ioc.Name, d, ioc.DiscoveryEndpoint)}, nil
			}
			return StepResult{}, nonRetryable(ErrConflict,
				"%s: connector %q already claims target domain %s with discovery endpoint %s; it was not created by hybridflow, so fix or remove it by hand, then retry",
				what, ioc.Name, d, ioc.DiscoveryEndpoint)
		}
	}
	if mine == nil {
		_, err := r.Run(ctx, cmd("New-IntraOrganizationConnector", "Name", spec.Name, "DiscoveryEndpoint", spec.DiscoveryEndpoint,
			"TargetAddressDomains", spec.TargetAddressDomains, "Enabled", true))
		if err != nil && !exchange.IsAlreadyExists(err) {
			return StepResult{}, classify(what, err)
		}
		if err != nil {
			// Someone created it between our read and write: read again next attempt.
			return StepResult{}, retryable(ErrTransient, "%s: created concurrently by someone else; the next attempt re-reads it", what)
		}
		return StepResult{Outcome: Created, Detail: fmt.Sprintf("created %s → %s for %s", spec.Name, spec.DiscoveryEndpoint, strings.Join(spec.TargetAddressDomains, ", ")),
			Undo: []UndoRecord{{System: sys, Kind: UndoRemoveIOC, Name: spec.Name}}}, nil
	}
	// Target domains someone else added stay (the plan says so too):
	// the connector gains ours, it does not lose theirs.
	domains := unionFold(mine.TargetAddressDomains, spec.TargetAddressDomains)
	if sameURL(mine.DiscoveryEndpoint, spec.DiscoveryEndpoint) && sameFold(mine.TargetAddressDomains, domains) && mine.Enabled {
		return StepResult{Outcome: Unchanged, Detail: spec.Name + " already as wanted"}, nil
	}
	if _, err := r.Run(ctx, cmd("Set-IntraOrganizationConnector", "Identity", spec.Name, "DiscoveryEndpoint", spec.DiscoveryEndpoint,
		"TargetAddressDomains", domains, "Enabled", true)); err != nil {
		return StepResult{}, classify(what, err)
	}
	prev := *mine
	return StepResult{Outcome: Updated, Detail: fmt.Sprintf("updated %s (was %s for %s, enabled=%v)", spec.Name, prev.DiscoveryEndpoint, strings.Join(prev.TargetAddressDomains, ", "), prev.Enabled),
		Undo: []UndoRecord{{System: sys, Kind: UndoRestoreIOC, Name: spec.Name, IOC: &prev}}}, nil
}

// undoIOC reverses ensureIOC.
func undoIOC(ctx context.Context, r exchange.Runner, rec UndoRecord) error {
	switch rec.Kind {
	case UndoRemoveIOC:
		_, err := r.Run(ctx, cmd("Remove-IntraOrganizationConnector", "Identity", rec.Name))
		if exchange.IsNotFound(err) {
			return nil
		}
		return classify("remove IntraOrganizationConnector "+rec.Name, err)
	case UndoRestoreIOC:
		_, err := r.Run(ctx, cmd("Set-IntraOrganizationConnector", "Identity", rec.Name, "DiscoveryEndpoint", rec.IOC.DiscoveryEndpoint,
			"TargetAddressDomains", rec.IOC.TargetAddressDomains, "Enabled", rec.IOC.Enabled))
		return classify("restore IntraOrganizationConnector "+rec.Name, err)
	}
	return nonRetryable(ErrInvalidInput, "unknown undo kind %q for an IntraOrganizationConnector", rec.Kind)
}

// noMailboxNoise is the documented message Test-OAuthConnectivity prints
// even when the test passes (FACTS §1, V); it must never fail a check.
const noMailboxNoise = "The SMTP address has no mailbox associated with it."

// verify runs Test-OAuthConnectivity and reports the outcome as data. Only
// ResultType decides: the Detail is for people (and the noise sentence
// above appears in successful runs too).
func verify(ctx context.Context, r exchange.Runner, in VerifyInput) (VerifyResult, error) {
	p := []any{"Service", "EWS", "TargetUri", in.TargetURI}
	if in.Mailbox != "" {
		p = append(p, "Mailbox", in.Mailbox)
	}
	rows, err := r.Run(ctx, cmd("Test-OAuthConnectivity", p...))
	if err != nil {
		return VerifyResult{}, classify("Test-OAuthConnectivity to "+in.TargetURI, err)
	}
	if len(rows) == 0 {
		return VerifyResult{Detail: "Test-OAuthConnectivity returned no result"}, nil
	}
	detail := strings.TrimSpace(strings.ReplaceAll(rowString(rows[0], "Detail"), noMailboxNoise, ""))
	return VerifyResult{Success: strings.EqualFold(rowString(rows[0], "ResultType"), "Success"), Detail: detail}, nil
}
