package shell

import (
	"sort"
	"sync"
	"time"
)

// DefaultIdleTimeout is how long a pooled host may sit unused before it is
// stopped.
const DefaultIdleTimeout = 10 * time.Minute

// Pool hands out one Shell per key (site or tenant): a worker serving many
// organisations cannot keep a PowerShell process for each of them alive.
//
// What the pool bounds is host processes, not Shell values: Get returns the
// same *Shell for a key for the pool's whole life, and making room stops
// the least recently used idle host, whose Shell simply starts a new one on
// its next call. A caller holding a Shell therefore never finds it closed
// under its feet, and a host in the middle of a call is never stopped to
// make room; when every host is busy the pool runs over max until calls
// finish and the idle sweep trims it.
type Pool struct {
	options func(key string) Options
	max     int

	mu      sync.Mutex
	idle    time.Duration
	shells  map[string]*Shell
	closed  bool
	stop    chan struct{}
	sweeper sync.WaitGroup
	stops   sync.WaitGroup // background stops of evicted hosts
}

// NewPool makes a pool; options builds a new key's Options, max (at least
// 1) bounds the running host processes.
func NewPool(options func(key string) Options, max int) *Pool {
	if max < 1 {
		max = 1
	}
	p := &Pool{options: options, max: max, idle: DefaultIdleTimeout, shells: map[string]*Shell{}, stop: make(chan struct{})}
	p.sweeper.Add(1)
	go p.sweep()
	return p
}

// SetIdleTimeout changes how long an unused host is kept (tests, config).
func (p *Pool) SetIdleTimeout(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.idle = d
}

// Get returns the key's Shell, creating it on first use. After Close it
// returns a closed Shell whose calls fail with ErrClosed.
func (p *Pool) Get(key string) *Shell {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		s := New(p.options(key))
		_ = s.Close()
		return s
	}
	s := p.shells[key]
	if s == nil {
		s = New(p.options(key))
		p.shells[key] = s
	}
	s.lastUsed.Store(time.Now().UnixNano())
	if !s.Running() {
		p.makeRoomLocked(s)
	}
	return s
}

// Running counts the pool's live host processes.
func (p *Pool) Running() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, s := range p.shells {
		if s.Running() {
			n++
		}
	}
	return n
}

// makeRoomLocked stops least recently used idle hosts until the host about
// to start for next fits under max.
func (p *Pool) makeRoomLocked(next *Shell) {
	var running []*Shell
	for _, s := range p.shells {
		if s != next && s.Running() {
			running = append(running, s)
		}
	}
	if len(running) < p.max {
		return
	}
	sort.Slice(running, func(i, j int) bool { return running[i].lastUsed.Load() < running[j].lastUsed.Load() })
	excess := len(running) - p.max + 1
	for _, s := range running {
		if excess == 0 {
			return
		}
		if p.stopIdleLocked(s) {
			excess--
		}
	}
}

// stopIdleLocked detaches an idle Shell's host and stops it in the
// background (a graceful stop can take seconds; Get must not wait for it).
func (p *Pool) stopIdleLocked(s *Shell) bool {
	proc := s.detachIfIdle()
	if proc == nil {
		return false
	}
	p.stops.Add(1)
	go func() {
		defer p.stops.Done()
		proc.shutdown(closeGrace)
	}()
	return true
}

func (p *Pool) sweep() {
	defer p.sweeper.Done()
	for {
		p.mu.Lock()
		idle := p.idle
		p.mu.Unlock()
		tick := min(max(idle/4, 10*time.Millisecond), time.Minute)
		select {
		case <-p.stop:
			return
		case <-time.After(tick):
		}
		cutoff := time.Now().Add(-idle).UnixNano()
		p.mu.Lock()
		for _, s := range p.shells {
			if s.lastUsed.Load() < cutoff && s.Running() {
				p.stopIdleLocked(s)
			}
		}
		p.mu.Unlock()
	}
}

// Close stops every host and the idle sweep; it waits for the hosts to go.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.stop)
	shells := make([]*Shell, 0, len(p.shells))
	for _, s := range p.shells {
		shells = append(shells, s)
	}
	p.mu.Unlock()
	p.sweeper.Wait()
	var wg sync.WaitGroup
	for _, s := range shells {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.Close()
		}()
	}
	wg.Wait()
	p.stops.Wait()
}

// detachIfIdle takes the host away from a Shell that has no call in
// flight or waiting; the Shell stays usable and starts a new host on its
// next call.
func (s *Shell) detachIfIdle() *process {
	if s.inflight.Load() > 0 {
		return nil
	}
	select {
	case s.slot <- struct{}{}:
	default:
		return nil
	}
	defer func() { <-s.slot }()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	s.proc = nil
	return p
}
