package sim

import (
	"context"
	"time"

	"github.com/hybridflow/hybridflow/internal/exchange"
)

// DirectRunner runs cmdlets against the world in-process, through the same
// fault injection and cmdlet engine as the PowerShell-host relay but
// without a process or a socket. Workflow tests with the time-skipping
// environment use it; the real shell client is exercised by the contract
// and integration tests.
type DirectRunner struct {
	W      *World
	Side   Side
	Tenant string
}

var _ exchange.Runner = DirectRunner{}

// Run implements exchange.Runner.
func (d DirectRunner) Run(ctx context.Context, c exchange.Command) ([]exchange.Row, error) {
	res, err := d.RunBatch(ctx, []exchange.Command{c})
	if err != nil {
		return nil, err
	}
	if res[0].Error != nil {
		return nil, res[0].Error
	}
	return res[0].Rows, nil
}

// RunBatch implements exchange.Runner: one counted round trip.
func (d DirectRunner) RunBatch(ctx context.Context, cmds []exchange.Command) ([]exchange.Result, error) {
	write := false
	for _, c := range cmds {
		write = write || shellIsWrite(c.Cmdlet)
	}
	d.W.CountRequest(ProtoShell, d.Tenant, write)
	out := make([]exchange.Result, len(cmds))
	for i, c := range cmds {
		f := d.W.Decide(ProtoShell, c.Cmdlet, d.Tenant)
		if f.Delay > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(f.Delay):
			}
		}
		if f.Crash() || f.Kind == FaultApplyThenDrop {
			if f.Kind == FaultApplyThenDrop {
				_, _ = d.W.Invoke(d.Side, d.Tenant, c) // it ran; its reply is lost
			}
			return nil, &exchange.Error{Cmdlet: c.Cmdlet, Type: exchange.TypeHostDied, Message: "the PowerShell host exited (simulated crash)"}
		}
		if e := shellFault(c.Cmdlet, f); e != nil {
			out[i] = exchange.Result{Error: e}
			continue
		}
		rows, e := d.W.Invoke(d.Side, d.Tenant, c)
		out[i] = exchange.Result{Rows: rows, Error: e}
	}
	return out, nil
}
