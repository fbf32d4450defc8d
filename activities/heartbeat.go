package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
)

// keepAlive heartbeats while a step runs, so that a step given a heartbeat
// timeout (the on-prem steps: a host start and one cmdlet may take minutes
// between them) is known alive while it waits, and a worker that died is
// noticed after the heartbeat timeout instead of the whole start-to-close
// timeout. details is what each heartbeat carries (nil for none): a step
// that keeps undo records in its heartbeat (progress) passes them, since a
// heartbeat replaces the details of the one before. Nothing happens
// outside an activity, in a local activity (it cannot heartbeat) or
// without a heartbeat timeout. stop ends it and waits until it has ended.
func keepAlive(ctx context.Context, details func() any) (stop func()) {
	if !activity.IsActivity(ctx) {
		return func() {}
	}
	info := activity.GetInfo(ctx)
	if info.IsLocalActivity || info.HeartbeatTimeout <= 0 {
		return func() {}
	}
	every := max(info.HeartbeatTimeout/4, 50*time.Millisecond)
	done, ended := make(chan struct{}), make(chan struct{})
	beat := func() {
		var d any
		if details != nil {
			d = details()
		}
		activity.RecordHeartbeat(ctx, d)
	}
	go func() {
		defer close(ended)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				beat()
			}
		}
	}()
	return func() {
		close(done)
		<-ended
	}
}
