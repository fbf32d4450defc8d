package activities

import (
	"context"
	"errors"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/hybridflow/hybridflow/internal/exchange"
)

// mailboxFails answers every batch with empty rows, except Get-Mailbox,
// which fails with err.
type mailboxFails struct{ err *exchange.Error }

func (m mailboxFails) Run(ctx context.Context, c exchange.Command) ([]exchange.Row, error) {
	res, err := m.RunBatch(ctx, []exchange.Command{c})
	if err != nil || res[0].Error != nil {
		return nil, errors.Join(err, res[0].Error)
	}
	return res[0].Rows, nil
}

func (m mailboxFails) RunBatch(_ context.Context, cmds []exchange.Command) ([]exchange.Result, error) {
	out := make([]exchange.Result, len(cmds))
	for i, c := range cmds {
		if c.Cmdlet == "Get-Mailbox" {
			out[i].Error = m.err
		}
	}
	return out, nil
}

func (m mailboxFails) OnPrem(Target) exchange.Runner                  { return m }
func (m mailboxFails) ExchangeOnline(Target) (exchange.Runner, error) { return m, nil }

// A mailbox to test with is optional only when no retry can bring it: a
// throttled or dropped Get-Mailbox must fail discovery (and be retried),
// or verification runs with an empty -Mailbox and fails for nothing.
func TestDiscoveryRetriesATransientMailboxRead(t *testing.T) {
	cases := []struct {
		name      string
		errType   string
		wantRetry bool // discovery fails, retryably
	}{
		{"throttled", exchange.TypeThrottled, true},
		{"host died", exchange.TypeHostDied, true},
		{"no permission", exchange.TypeAccessDenied, false},
		{"not found", exchange.TypeNotFound, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := mailboxFails{err: &exchange.Error{Type: c.errType, Message: "injected"}}
			_, errOn := (&OnPrem{Hosts: r}).DiscoverOnPrem(context.Background(), Target{TenantID: "t1"})
			_, errOl := (&Online{Clients: r}).DiscoverOnline(context.Background(), Target{TenantID: "t1"})
			for side, err := range map[string]error{"on-prem": errOn, "online": errOl} {
				var app *temporal.ApplicationError
				switch {
				case !c.wantRetry && err != nil:
					t.Errorf("%s: %v; want the mailbox passed over", side, err)
				case c.wantRetry && (!errors.As(err, &app) || app.NonRetryable()):
					t.Errorf("%s: %v; want a retryable error", side, err)
				}
			}
		})
	}
}
