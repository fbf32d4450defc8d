package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/config"
)

// hostProbeRetry is how long a failed start probe waits before the next
// try: from min, doubling up to max.
type hostProbeRetry struct{ min, max time.Duration }

// defaultHostProbeRetry keeps a site whose PowerShell cannot start from
// starting a host more than about once a minute.
var defaultHostProbeRetry = hostProbeRetry{min: 5 * time.Second, max: time.Minute}

// hostProbe starts the PowerShell host of every on-prem and Lync role the
// worker serves, the way the roles' first activity would, so that a site
// whose host cannot start (wrong command line, missing snap-in, no ready
// line within the start timeout) is known at start rather than at the
// first step. Until every host has reached its ready line, /readyz answers
// 503 naming the roles still missing; a failed probe is retried in the
// background until it succeeds. The started hosts stay up for the
// activities.
type hostProbe struct {
	roles  []config.Role
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	pending map[config.Role]string // role → why it is not ready yet
}

// maxReasonLen bounds a reason in /readyz: a host that died reports its
// standard error, which can be long.
const maxReasonLen = 300

// startHostProbes probes every on-prem and Lync role in roles with start
// (backend.StartHost) in the background and returns at once.
func startHostProbes(ctx context.Context, start func(context.Context, config.Role) error, roles []config.Role, logger *zap.Logger, retry hostProbeRetry) *hostProbe {
	ctx, cancel := context.WithCancel(ctx)
	p := &hostProbe{cancel: cancel, pending: map[config.Role]string{}}
	for _, r := range roles {
		if r.Kind != config.RoleOnPrem && r.Kind != config.RoleLync {
			continue
		}
		p.roles = append(p.roles, r)
		p.pending[r] = "starting the PowerShell host"
	}
	for _, r := range p.roles {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.probe(ctx, r, start, logger.With(zap.Stringer("role", r)), retry)
		}()
	}
	return p
}

func (p *hostProbe) probe(ctx context.Context, r config.Role, start func(context.Context, config.Role) error, log *zap.Logger, retry hostProbeRetry) {
	wait := retry.min
	for attempt := 1; ; attempt++ {
		began := time.Now()
		err := start(ctx, r)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			p.mu.Lock()
			delete(p.pending, r)
			p.mu.Unlock()
			log.Info("PowerShell host ready", zap.Int("attempt", attempt), zap.Duration("took", time.Since(began)))
			return
		}
		p.mu.Lock()
		p.pending[r] = err.Error()
		p.mu.Unlock()
		log.Warn("PowerShell host did not start; /readyz reports the site until it does", zap.Int("attempt", attempt),
			zap.Duration("took", time.Since(began)), zap.Duration("retry_in", wait), zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, retry.max)
	}
}

// err names the roles whose host has not reached its ready line, nil when
// every one has.
func (p *hostProbe) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending) == 0 {
		return nil
	}
	var parts []string
	for _, r := range p.roles {
		if why, ok := p.pending[r]; ok {
			if len(why) > maxReasonLen {
				why = why[:maxReasonLen] + "..."
			}
			parts = append(parts, fmt.Sprintf("%s (%s)", r, why))
		}
	}
	return errors.New("PowerShell host not ready for " + strings.Join(parts, "; "))
}

// stop ends the probes still retrying and waits for them.
func (p *hostProbe) stop() {
	p.cancel()
	p.wg.Wait()
}
