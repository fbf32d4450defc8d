package activities

import (
	"context"
	"fmt"

	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// OnlineClients hands out a tenant's Exchange Online cmdlet runner.
type OnlineClients interface {
	ExchangeOnline(t Target) (exchange.Runner, error)
}

// Online runs the Exchange Online steps (7 and verification to on-prem) on
// the cloud task queue, through the InvokeCommand REST endpoint.
type Online struct {
	Clients OnlineClients
}

func (a *Online) runner(t Target) (exchange.Runner, error) {
	r, err := a.Clients.ExchangeOnline(t)
	if err != nil {
		return nil, nonRetryable(ErrInvalidInput, "Exchange Online client for %s: %v", t.TenantID, err)
	}
	return r, nil
}

// DiscoverOnline reads the connectors and a mailbox to test with.
func (a *Online) DiscoverOnline(ctx context.Context, t Target) (plan.Observed, error) {
	var o plan.Observed
	r, err := a.runner(t)
	if err != nil {
		return o, err
	}
	cmds := []exchange.Command{cmd("Get-IntraOrganizationConnector"), cmd("Get-Mailbox", "ResultSize", 1)}
	res, err := r.RunBatch(ctx, cmds)
	if err != nil {
		return o, classify("discover Exchange Online for "+t.TenantID, err)
	}
	rows, err := batchRows(res, 0, cmds)
	if err != nil {
		return o, classify("discover Exchange Online connectors", err)
	}
	for _, row := range rows {
		o.OnlineIOCs = append(o.OnlineIOCs, iocFromRow(row))
	}
	rows, err = batchRows(res, 1, cmds)
	switch {
	case err == nil:
		for _, row := range rows {
			o.CloudMailboxes = append(o.CloudMailboxes, rowString(row, "PrimarySmtpAddress"))
		}
	case !skippable(err):
		return o, classify("discover an Exchange Online mailbox to test with", err)
	}
	return o, nil
}

// EnsureOnlineConnector is step 7: the Exchange Online → on-prem connector.
func (a *Online) EnsureOnlineConnector(ctx context.Context, in IOCInput) (StepResult, error) {
	r, err := a.runner(in.Target)
	if err != nil {
		return StepResult{}, err
	}
	return ensureIOC(ctx, r, SystemOnline, in.Spec, in.Before)
}

// VerifyFromOnline runs Test-OAuthConnectivity from Exchange Online to on-prem.
func (a *Online) VerifyFromOnline(ctx context.Context, in VerifyInput) (VerifyResult, error) {
	r, err := a.runner(in.Target)
	if err != nil {
		return VerifyResult{}, err
	}
	return verify(ctx, r, in)
}

// UndoOnline reverses an Exchange Online change this product made.
func (a *Online) UndoOnline(ctx context.Context, in UndoInput) error {
	r, err := a.runner(in.Target)
	if err != nil {
		return err
	}
	switch in.Record.Kind {
	case UndoRemoveIOC, UndoRestoreIOC:
		return undoIOC(ctx, r, in.Record)
	}
	return nonRetryable(ErrInvalidInput, "Exchange Online undo: unknown kind %q", fmt.Sprint(in.Record.Kind))
}
