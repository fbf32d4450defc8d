package shell

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/exchange"
)

func fakePool(t *testing.T, max int) *Pool {
	t.Helper()
	p := NewPool(func(key string) Options {
		argv, env := fakeHostArgv("ok")
		return Options{Argv: argv, Env: env, Name: key, CallTimeout: 10 * time.Second, StopGrace: 300 * time.Millisecond}
	}, max)
	t.Cleanup(p.Close)
	return p
}

func poolEcho(t *testing.T, s exchange.Runner) {
	t.Helper()
	if _, err := s.Run(context.Background(), exchange.Command{Cmdlet: fakeEcho}); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPoolEvictsLeastRecentlyUsedIdleHost(t *testing.T) {
	p := fakePool(t, 2)
	a, b := p.Get("site-a"), p.Get("site-b")
	if p.Get("site-a") != a {
		t.Fatal("Get returned a different Shell for the same key")
	}
	poolEcho(t, a)
	poolEcho(t, b)
	poolEcho(t, p.Get("site-a")) // a is now more recent than b
	c := p.Get("site-c")
	poolEcho(t, c)
	if !a.Running() || b.Running() || !c.Running() {
		t.Fatalf("want b evicted: a=%v b=%v c=%v", a.Running(), b.Running(), c.Running())
	}
	if n := p.Running(); n != 2 {
		t.Fatalf("%d hosts running, max 2", n)
	}
	// An evicted Shell is not closed: it starts a new host when used again.
	poolEcho(t, p.Get("site-b"))
	if !b.Running() || p.Running() != 2 {
		t.Fatalf("b=%v running=%d", b.Running(), p.Running())
	}
}

func TestPoolNeverStopsABusyHost(t *testing.T) {
	p := fakePool(t, 1)
	a := p.Get("a")
	poolEcho(t, a)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := a.Run(ctx, exchange.Command{Cmdlet: fakeHang})
		done <- err
	}()
	waitFor(t, "a busy", func() bool { return a.members[0].inflight.Load() > 0 })
	b := p.Get("b")
	poolEcho(t, b)
	if !a.Running() || !b.Running() || p.Running() != 2 {
		t.Fatalf("busy host evicted: a=%v b=%v running=%d", a.Running(), b.Running(), p.Running())
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("hung call: %v", err)
	}
	// Now idle (its host was stopped after the cancel), a restarts and b,
	// the least recently used idle host, makes room.
	poolEcho(t, p.Get("a"))
	if b.Running() || p.Running() != 1 {
		t.Fatalf("over max after the busy call ended: b=%v running=%d", b.Running(), p.Running())
	}
}

func TestPoolStopsIdleHosts(t *testing.T) {
	p := fakePool(t, 4)
	p.SetIdleTimeout(150 * time.Millisecond)
	a := p.Get("a")
	poolEcho(t, a)
	waitFor(t, "idle eviction", func() bool { return !a.Running() })
	poolEcho(t, p.Get("a"))
}

func TestPoolClose(t *testing.T) {
	p := fakePool(t, 4)
	a, b := p.Get("a"), p.Get("b")
	poolEcho(t, a)
	poolEcho(t, b)
	p.Close()
	if a.Running() || b.Running() {
		t.Fatal("hosts survive Close")
	}
	if _, err := p.Get("a").Run(context.Background(), exchange.Command{Cmdlet: fakeEcho}); !errors.Is(err, ErrClosed) {
		t.Fatalf("want ErrClosed after Close, got %v", err)
	}
	p.Close()
}

// TestGroupRunsUpToPoolSizeHosts: a key with PoolSize 2 runs overlapping
// calls on two hosts and never on a third; calls one after another stay on
// one warm host, so the second can go idle.
func TestGroupRunsUpToPoolSizeHosts(t *testing.T) {
	p := NewPool(func(key string) Options {
		argv, env := fakeHostArgv("ok")
		return Options{Argv: argv, Env: env, Name: key, CallTimeout: 10 * time.Second, StopGrace: 300 * time.Millisecond, PoolSize: 2}
	}, 8)
	t.Cleanup(p.Close)
	g := p.Get("site")
	if g.Size() != 2 || len(g.Members()) != 2 || g.Members()[1].opts.Name != "site#2" {
		t.Fatalf("group of %d: %v", g.Size(), g.Members())
	}
	for range 3 {
		poolEcho(t, g)
	}
	if g.Hosts() != 1 {
		t.Fatalf("%d hosts after calls one after another, want 1 (the warm one reused)", g.Hosts())
	}
	var mu sync.Mutex
	pids := map[float64]bool{}
	busy, peak := 0, 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rows, err := g.Run(context.Background(), exchange.Command{Cmdlet: fakeSlow})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			pids[rows[0]["pid"].(float64)] = true
			mu.Unlock()
		}()
	}
	// Sample how many hosts run while the calls overlap.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for sampling := true; sampling; {
		select {
		case <-done:
			sampling = false
		case <-time.After(2 * time.Millisecond):
			busy = g.Hosts()
			peak = max(peak, busy)
		}
	}
	if len(pids) != 2 || peak > 2 {
		t.Fatalf("overlapping calls ran on %d hosts (%d at most at once), want 2", len(pids), peak)
	}
	if n := p.Running(); n != 2 {
		t.Fatalf("pool counts %d hosts, want 2", n)
	}
}
