package backend

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/sim/simserver"
)

// configs/sim/small.yaml: tenant 2 is the only organisation at site-2.
const (
	stressTenant = "22222222-2222-4222-8222-000000000002"
	stressSite   = "site-2"
)

var (
	standInOnce sync.Once
	standInBin  string
	standInErr  error
	standInDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if standInDir != "" {
		_ = os.RemoveAll(standInDir)
	}
	os.Exit(code)
}

// standIn builds the simulator's PowerShell stand-in (hybridflow-pwsh) once
// per test run: the worker starts it from a site's shell.command exactly
// as it would start PowerShell.
func standIn(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build the stand-in")
	}
	standInOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hybridflow-pwsh-backend-test-")
		standInDir = dir
		if err != nil {
			standInErr = err
			return
		}
		standInBin = filepath.Join(dir, "hybridflow-pwsh")
		if out, err := exec.Command(goTool, "build", "-o", standInBin, "github.com/hybridflow/hybridflow/internal/sim/cmd/hybridflow-pwsh").CombinedOutput(); err != nil {
			standInErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if standInErr != nil {
		t.Fatal(standInErr)
	}
	return standInBin
}

// stressRig is a real backend (backend.NewReal from a worker config) whose
// site-2 host is the stand-in with a remote session to the stand-alone
// simulator's gateway, serving configs/sim/small.yaml.
type stressRig struct {
	srv *simserver.Server
	be  *Backend
}

// newStressRig starts the simulator and a real backend; shellYAML is added
// to the site's shell block (indented by the caller's lines).
func newStressRig(t *testing.T, shellYAML string) *stressRig {
	t.Helper()
	bin := standIn(t)
	w, err := sim.Load(filepath.Join("..", "..", "configs", "sim", "small.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	w.SetPinnedNow(time.Time{}) // the stand-alone simulator runs on the wall clock
	srv, err := simserver.Start(context.Background(), simserver.Options{World: w, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	doc := fmt.Sprintf(`roles: [onprem:%s]
onprem:
  sites:
    %s:
      shell:
        command: [%q, "-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-File", "{script}"]
        session: remote
        connection_uri: %s/%s/%s
        start_timeout: 20s
%s`, stressSite, stressSite, bin, srv.GatewayURL(), simserver.ExchangeEndpoint, stressSite, shellYAML)
	cfg, err := config.ParseWorkerConfig("stress.yaml", []byte(doc), func(string) string { return "" })
	if err != nil {
		t.Fatalf("worker config:\n%s\n%v", doc, err)
	}
	be, err := NewReal(cfg, zap.NewNop(), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(be.Close)
	return &stressRig{srv: srv, be: be}
}

func (r *stressRig) runner() exchange.Runner {
	return r.be.OnPrem(Target{TenantID: stressTenant, Cloud: "global", Site: stressSite})
}

// sessions is the simulator's count of the site's gateway sessions.
func (r *stressRig) sessions() sim.SessionCounts { return r.srv.HostSessions()["onprem:"+stressSite] }

// waitSessions waits at most within until the simulator has seen ended
// sessions end (each removed, orphaned or closed) and returns the counts
// and whether they did.
func (r *stressRig) waitSessions(ended int, within time.Duration) (sim.SessionCounts, bool) {
	deadline := time.Now().Add(within)
	for {
		c := r.sessions()
		if c.Removed+c.Orphaned+c.Closed >= ended {
			return c, true
		}
		if time.Now().After(deadline) {
			return c, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHungCmdletIsStoppedAndItsRemoteSessionRemoved: a cmdlet that hangs
// (a latency fault far past the site's call_timeout) fails with a timeout
// at call_timeout; the host is stopped the way that removes its remote
// session (the client closes its input, the bootstrap stops the running
// command and removes the session on its way out) rather than killed,
// which would leave the session on the Exchange server, its command
// running, until it expires; the next call gets a new host and succeeds
// without waiting for the hung command. The simulator counts the hung
// session removed, not orphaned, and never two sessions at once.
func TestHungCmdletIsStoppedAndItsRemoteSessionRemoved(t *testing.T) {
	const hang = 6 * time.Second
	r := newStressRig(t, "        call_timeout: 1s\n")
	if err := r.srv.World().AddFaults([]sim.FaultRule{{Protocol: sim.ProtoShell, Cmdlet: "Get-AuthConfig", Tenant: stressTenant,
		Kind: sim.FaultLatency, Latency: hang, FailFirstN: 1}}); err != nil {
		t.Fatal(err)
	}
	run := r.runner()
	ctx := context.Background()
	if _, err := run.Run(ctx, exchange.Command{Cmdlet: "Get-AuthServer"}); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	_, hung := run.Run(ctx, exchange.Command{Cmdlet: "Get-AuthConfig"})
	took := time.Since(began)
	if !exchange.HasType(hung, exchange.TypeTimeout) || !exchange.Retryable(hung) {
		t.Fatalf("hung Get-AuthConfig: want a retryable timeout, got %v", hung)
	}
	if took > 3*time.Second {
		t.Fatalf("the hung call took %s to fail with a 1s call_timeout", took)
	}
	if !strings.Contains(hung.Error(), "within 1s") {
		t.Errorf("timeout error does not name the call_timeout: %v", hung)
	}
	// The same cmdlet again (the fault fires once): a new host answers,
	// without waiting for the hung command to end.
	rows, err := run.Run(ctx, exchange.Command{Cmdlet: "Get-AuthConfig"})
	if err != nil || len(rows) != 1 {
		t.Fatalf("the call after the timeout: %d rows, %v", len(rows), err)
	}
	if next := time.Since(began); next > hang/2 {
		t.Errorf("the call after the timeout answered %s after the hung one began: it waited for the hung command", next)
	}
	c, ok := r.waitSessions(1, hang/2-time.Since(began))
	if !ok {
		c, _ = r.waitSessions(1, 2*hang)
		t.Fatalf("the hung session was still open on the server when the call timed out and the next call ran; it ended only when its command did: %+v", c)
	}
	if c.Opened != 2 || c.Open != 1 {
		t.Errorf("sessions %+v: want the hung host's and its replacement's, one still open", c)
	}
	if c.Removed != 1 || c.Orphaned != 0 {
		t.Errorf("sessions %+v: the hung session must be removed, not orphaned on the server", c)
	}
	if c.Peak != 1 {
		t.Errorf("sessions %+v: the replacement opened its session before the hung one was gone (pool size 1)", c)
	}
	r.be.Close()
	c, _ = r.waitSessions(2, 10*time.Second)
	if c.Removed != 2 || c.Orphaned != 0 || c.Open != 0 {
		t.Errorf("after the worker closed: sessions %+v; want both removed", c)
	}
	t.Logf("timeout after %s: %v; sessions %+v", took.Round(time.Millisecond), hung, c)
}

// TestSitePoolBoundsConcurrentSessions: a site with shell.pool_size 2 and
// more concurrent calls than that (each slowed by a latency fault, so they
// overlap) runs two hosts, never more: the simulator sees at most two of
// the site's sessions open at once, and at least two (the calls did not
// all queue on one host). Every call completes.
func TestSitePoolBoundsConcurrentSessions(t *testing.T) {
	const size, calls = 2, 7
	r := newStressRig(t, fmt.Sprintf("        call_timeout: 30s\n        pool_size: %d\n", size))
	if err := r.srv.World().AddFaults([]sim.FaultRule{{Protocol: sim.ProtoShell, Cmdlet: "Get-AuthServer", Tenant: stressTenant,
		Kind: sim.FaultLatency, Latency: 300 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	run := r.runner()
	errs := make(chan error, calls)
	var wg sync.WaitGroup
	for range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rows, err := run.Run(context.Background(), exchange.Command{Cmdlet: "Get-AuthServer"})
			if err == nil && len(rows) == 0 {
				err = fmt.Errorf("no auth servers")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("call: %v", err)
		}
	}
	c := r.sessions()
	if c.Peak > size {
		t.Errorf("sessions %+v: %d open at once at the site, pool_size %d", c, c.Peak, size)
	}
	if c.Peak < size {
		t.Errorf("sessions %+v: the %d overlapping calls never used a second host (pool_size %d)", c, calls, size)
	}
	if c.Opened != size || c.Orphaned != 0 {
		t.Errorf("sessions %+v: want exactly %d hosts started, none orphaned", c, size)
	}
	r.be.Close()
	if c, _ = r.waitSessions(c.Opened, 10*time.Second); c.Removed != size || c.Open != 0 {
		t.Errorf("after the worker closed: sessions %+v; want all %d removed", c, size)
	}
	t.Logf("%d calls, pool_size %d: sessions %+v", calls, size, c)
}
