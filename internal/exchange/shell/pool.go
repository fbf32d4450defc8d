package shell

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/hybridflow/hybridflow/internal/exchange"
)

// DefaultIdleTimeout is how long a pooled host may sit unused before it is
// stopped.
const DefaultIdleTimeout = 10 * time.Minute

// MaxPoolSize bounds Options.PoolSize: each host holds a remote session,
// and Exchange limits the concurrent sessions of one account.
const MaxPoolSize = 8

// Pool hands out one Group of hosts per key (site or tenant): a worker
// serving many organisations cannot keep a PowerShell process for each of
// them alive, and one organisation may get a few hosts (Options.PoolSize)
// so that its calls need not all wait for one.
//
// Two bounds apply. A key's Group never runs more than its PoolSize hosts:
// a call waits for a free one. And the pool as a whole bounds host
// processes to max: making room stops the least recently used idle host,
// whose Shell simply starts a new one on its next call. A caller holding
// a Group therefore never finds it closed under its feet, and a host in
// the middle of a call is never stopped to make room; when every host is
// busy the pool runs over max until calls finish and the idle sweep trims
// it.
type Pool struct {
	options func(key string) Options
	max     int

	mu      sync.Mutex
	idle    time.Duration
	groups  map[string]*Group
	shells  []*Shell // every group's members
	closed  bool
	stop    chan struct{}
	sweeper sync.WaitGroup
	stops   sync.WaitGroup // background stops of evicted hosts
}

// NewPool makes a pool; options builds a new key's Options (its PoolSize
// is the key's number of hosts), max (at least 1) bounds the running host
// processes.
func NewPool(options func(key string) Options, max int) *Pool {
	if max < 1 {
		max = 1
	}
	p := &Pool{options: options, max: max, idle: DefaultIdleTimeout, groups: map[string]*Group{}, stop: make(chan struct{})}
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

// Get returns the key's Group, creating it on first use. After Close it
// returns a closed Group whose calls fail with ErrClosed.
func (p *Pool) Get(key string) *Group {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		g := newGroup(nil, p.options(key))
		for _, s := range g.members {
			_ = s.Close()
		}
		return g
	}
	g := p.groups[key]
	if g == nil {
		g = newGroup(p, p.options(key))
		p.groups[key] = g
		p.shells = append(p.shells, g.members...)
	}
	return g
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

// makeRoom stops least recently used idle hosts until the host about to
// start for next fits under max.
func (p *Pool) makeRoom(next *Shell) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
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
// background (a graceful stop can take seconds; callers must not wait for
// it).
func (p *Pool) stopIdleLocked(s *Shell) bool {
	proc := s.detachIfIdle()
	if proc == nil {
		return false
	}
	p.stops.Add(1)
	go func() {
		defer p.stops.Done()
		s.stop(proc)
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
	shells := append([]*Shell(nil), p.shells...)
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

// Group is one key's hosts: up to its pool size, each a Shell running one
// call at a time. It implements exchange.Runner: a call takes a free host,
// preferring one already running, and waits while all are busy.
type Group struct {
	pool    *Pool // nil for a closed pool's Group
	name    string
	members []*Shell
	free    chan struct{} // a token per member not taken by a call

	mu    sync.Mutex
	taken []bool
}

var _ exchange.Runner = (*Group)(nil)

func newGroup(p *Pool, opts Options) *Group {
	n := min(max(opts.PoolSize, 1), MaxPoolSize)
	g := &Group{pool: p, name: opts.Name, free: make(chan struct{}, n), taken: make([]bool, n)}
	for i := range n {
		o := opts
		if n > 1 {
			o.Name = fmt.Sprintf("%s#%d", opts.Name, i+1)
		}
		g.members = append(g.members, New(o))
		g.free <- struct{}{}
	}
	return g
}

// Size is the number of hosts the Group may run at once.
func (g *Group) Size() int { return len(g.members) }

// Hosts counts the Group's live host processes.
func (g *Group) Hosts() int {
	n := 0
	for _, s := range g.members {
		if s.Running() {
			n++
		}
	}
	return n
}

// Running reports whether any of the Group's hosts is up.
func (g *Group) Running() bool { return g.Hosts() > 0 }

// Members are the Group's Shells (tests, diagnostics).
func (g *Group) Members() []*Shell { return append([]*Shell(nil), g.members...) }

// Run runs one command on a free host.
func (g *Group) Run(ctx context.Context, cmd exchange.Command) ([]exchange.Row, error) {
	s, i, err := g.acquire(ctx, cmd.Cmdlet)
	if err != nil {
		return nil, err
	}
	defer g.release(i)
	return s.Run(ctx, cmd)
}

// RunBatch runs a batch on a free host.
func (g *Group) RunBatch(ctx context.Context, cmds []exchange.Command) ([]exchange.Result, error) {
	if len(cmds) == 0 {
		return nil, nil
	}
	s, i, err := g.acquire(ctx, cmdletLabel(cmds))
	if err != nil {
		return nil, err
	}
	defer g.release(i)
	return s.RunBatch(ctx, cmds)
}

// Start starts one host, unless one is running, and waits for its ready
// line: the probe that the key's PowerShell can be started at all. The
// other hosts start when calls need them.
func (g *Group) Start(ctx context.Context) error {
	s, i, err := g.acquire(ctx, "start")
	if err != nil {
		return err
	}
	defer g.release(i)
	return s.Start(ctx)
}

// acquire takes a free member: one with a running host if there is one
// (the most recently used, so that the others go idle and are swept),
// else one without a host, last one whose host is still being stopped
// (its next call waits for that). It waits while every member is taken.
func (g *Group) acquire(ctx context.Context, label string) (*Shell, int, error) {
	select {
	case <-g.free:
	case <-ctx.Done():
		return nil, -1, fmt.Errorf("shell %s: %s: waiting for a free host (%d in use): %w", g.name, label, len(g.members), ctx.Err())
	}
	rank := func(s *Shell) int {
		switch {
		case s.Running():
			return 2
		case s.stoppingN.Load() == 0:
			return 1
		}
		return 0
	}
	g.mu.Lock()
	pick, pickRank := -1, -1
	for i, s := range g.members {
		if g.taken[i] {
			continue
		}
		r := rank(s)
		if pick < 0 || r > pickRank || r == pickRank && s.lastUsed.Load() > g.members[pick].lastUsed.Load() {
			pick, pickRank = i, r
		}
	}
	g.taken[pick] = true
	g.mu.Unlock()
	s := g.members[pick]
	// Marked used now, so the pool does not pick it to make room.
	s.lastUsed.Store(time.Now().UnixNano())
	if g.pool != nil && !s.Running() {
		g.pool.makeRoom(s)
	}
	return s, pick, nil
}

func (g *Group) release(i int) {
	g.mu.Lock()
	g.taken[i] = false
	g.mu.Unlock()
	g.free <- struct{}{}
}
