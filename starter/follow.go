package main

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/hybridflow/hybridflow/workflows"
)

// following says how to follow one kind of workflow whose state query
// returns S (setup, lync): the result is the same type as the query's.
type following[S any] struct {
	kind  string // "setup", "lync": for errors
	every time.Duration
	query func(context.Context) (S, error)
	// status is what the progress line and the pause check read.
	status func(S) (state, step string, paused *workflows.Pause)
	print  func(S)
	// next is how to continue after a pause, printed under it.
	next func(S) string
}

// followRun prints progress lines until the run ends (then its steps) or
// pauses for an operator (then its steps, the pause and how to continue,
// exit status 3).
func followRun[S any](a *app, ctx context.Context, id string, run client.WorkflowRun, f following[S]) error {
	done := make(chan error, 1)
	var res S
	go func() { done <- run.Get(ctx, &res) }()
	tick := time.NewTicker(f.every)
	defer tick.Stop()
	last := ""
	for {
		select {
		case err := <-done:
			if state, _, _ := f.status(res); err != nil && state == "" {
				// A failed workflow returns no result: show its last state.
				if st, qerr := f.query(ctx); qerr == nil {
					res = st
				}
			}
			if a.output == "json" {
				_ = a.printJSON(res)
			} else {
				f.print(res)
			}
			if err != nil {
				return fmt.Errorf("%s %s: %w", f.kind, id, err)
			}
			return nil
		case <-tick.C:
			st, err := f.query(ctx)
			if err != nil {
				continue
			}
			state, step, paused := f.status(st)
			line := fmt.Sprintf("%s: %s %s", id, state, step)
			if line != last && a.output != "json" {
				a.printf("%s\n", line)
				last = line
			}
			if paused != nil {
				if a.output == "json" {
					_ = a.printJSON(st)
				} else {
					f.print(st)
					a.printf("\nPAUSED at %s: %s (%s)\n", paused.Step, paused.Error, paused.ErrorType)
					a.printf("Continue with one of:\n%s", f.next(st))
				}
				return silentExit{code: 3}
			}
		}
	}
}
