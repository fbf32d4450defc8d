package contract

// The pure decisions the workflows run as local activities, so that each
// answer is recorded in history and a later release that decides
// differently cannot change, on replay, what a running workflow decided.
// Workflows pass these functions themselves (their names are the
// activity types, as registered on the cloud worker); being pure, they
// need no client.

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// PlanLync derives the desired provider and the plan.
func PlanLync(_ context.Context, in LyncPlanInput) (LyncPlan, error) {
	want, warnings, err := plan.DesiredLyncProvider(in.Cloud, in.ProxyFqdnOverride)
	if err != nil {
		return LyncPlan{}, nonRetryable(ErrInvalidInput, "Lync plan: %v", err)
	}
	actions, more := plan.BuildLyncPlan(in.Observed, want, in.EdgeFqdns)
	return LyncPlan{Desired: want, Actions: actions, Warnings: append(warnings, more...)}, nil
}

// DecideRenewalMode decides where the renewal keeps the keys, by the rule
// setup uses (plan.RenewalMode). It is pure, but runs as a local activity
// so that its answer is recorded in the renewal's history, as PlanSetup's
// is in the setup's. A blocked first-party path is LegacyPathBlocked, never
// retried.
func DecideRenewalMode(_ context.Context, in RenewalModeInput) (RenewalModeOutput, error) {
	p, err := cloud.Lookup(in.Tenant.Cloud)
	if err != nil {
		return RenewalModeOutput{}, nonRetryable(ErrInvalidInput, "%v", err)
	}
	path, err := plan.LegacyPath(p, in.Tenant.LegacyFirstPartyBlocked)
	if err != nil {
		return RenewalModeOutput{}, nonRetryable(PlanErrorType(err), "renewal of %s: %v", in.Tenant.ID, err)
	}
	servers, perr := plan.ParseServers(in.Servers)
	d, err := plan.RenewalMode(plan.RenewalModeInput{Requested: in.Requested, Setting: in.Tenant.ModeSetting, Path: path,
		DedicatedAppID: in.DedicatedAppID, Servers: servers})
	if err != nil {
		if perr != nil {
			err = errors.Join(err, perr)
		}
		return RenewalModeOutput{}, nonRetryable(PlanErrorType(err), "renewal of %s: %v", in.Tenant.ID, err)
	}
	out := RenewalModeOutput{Mode: d.Mode, Reason: d.Reason, Warnings: d.Warnings}
	if perr != nil {
		// The builds did not decide this one (the organisation's own
		// configuration did); say what could not be read.
		out.Warnings = append(out.Warnings, perr.Error())
	}
	return out, nil
}

// DecideRenewal decides what a renewal run does with the certificate it
// read (plan.DecideRenewal's chain of policies, with the workflow's clock
// in the facts). It is pure, but runs as a local activity so that the
// decision is recorded in the renewal's history: a release with other
// thresholds cannot change, on replay, what a sleeping renewal decided.
func DecideRenewal(_ context.Context, in plan.RenewalFacts) (plan.RenewalDecision, error) {
	return plan.DecideRenewal(in), nil
}

// PlanErrorType is the stable type of a planning error: the most decisive
// cause wins, since the setup pauses with one type however many problems
// the plan lists (a blocked path is not fixed by any inventory value).
func PlanErrorType(err error) string {
	switch {
	case errors.Is(err, plan.ErrLegacyPathBlocked):
		return ErrLegacyPathBlocked
	case errors.Is(err, plan.ErrUnsupportedVersion):
		return ErrUnsupportedVersion
	}
	return ErrInvalidInput
}

// nonRetryable is an application error Temporal does not retry.
func nonRetryable(typ, format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), typ, nil)
}
