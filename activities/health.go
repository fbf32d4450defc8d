// Package activities holds one struct per target system (on-prem Exchange,
// Exchange Online, Entra, Lync); each method is one idempotent step of the
// documented procedure and holds its clients, never globals.
package activities

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/activity"
)

// Health answers probes on a worker's task queue: which worker took the
// task, what role and backend it serves, and whether the backend answers.
// `hybridflow doctor --deep` runs it on every queue an inventory needs.
type Health struct {
	Worker  string // the worker's identity
	Role    string
	Backend string // "simulated" or "real"
	// Check reaches the backend (a harmless read); nil skips it.
	Check func(ctx context.Context) error
}

// Probe reports the worker that ran it and checks its backend.
func (h *Health) Probe(ctx context.Context) (ProbeResult, error) {
	res := ProbeResult{Worker: h.Worker, Role: h.Role, Backend: h.Backend, TaskQueue: activity.GetInfo(ctx).TaskQueue}
	if h.Check != nil {
		if err := h.Check(ctx); err != nil {
			return res, fmt.Errorf("probe %s backend for role %s: %w", h.Backend, h.Role, err)
		}
		res.Checked = true
	}
	return res, nil
}
