package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/exchange/shell"
)

const standInPkg = "github.com/hybridflow/hybridflow/internal/sim/cmd/hybridflow-pwsh"

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

// standIn builds the stand-in binary once per test run.
func standIn(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build the stand-in")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "hybridflow-pwsh-test-")
		if buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "hybridflow-pwsh")
		out, err := exec.Command(goTool, "build", "-o", builtBin, standInPkg).CombinedOutput()
		if err != nil {
			buildErr = &buildError{err: err, out: string(out)}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + e.out }

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// clientFor is the worker's real shell client starting argv (its first
// element replaced by the stand-in) with env, as a site's shell.command
// and shell.env would.
func clientFor(t *testing.T, argv []string, env []string, sess shell.SessionConfig) *shell.Shell {
	t.Helper()
	s := shell.New(shell.Options{Argv: argv, Env: env, Session: sess, Name: "site-1",
		StartTimeout: 20 * time.Second, CallTimeout: 20 * time.Second})
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func withExe(argv []string, exe string) []string {
	out := append([]string(nil), argv...)
	out[0] = exe
	return out
}

// TestThroughTheShellClient: the worker's shell client starts the built
// stand-in with the product's default command line (DefaultArgv, which
// hands PowerShell the bootstrap with -File {script}), and cmdlet calls
// reach the gateway and come back.
func TestThroughTheShellClient(t *testing.T) {
	bin := standIn(t)
	g := newFakeGateway(t)
	s := clientFor(t, withExe(shell.DefaultArgv(), bin), []string{GatewayEnv + "=" + g.URL("/PowerShell/site-1")},
		shell.SessionConfig{Mode: shell.ModeLocalSnapin})
	ctx := context.Background()
	rows, err := s.Run(ctx, exchange.Command{Cmdlet: "Get-AuthServer", Parameters: map[string]any{"Identity": "evoSTS"}})
	if err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(s.PID())
	if len(rows) != 1 || rows[0]["cmdlet"] != "Get-AuthServer" || rows[0]["path"] != "/PowerShell/site-1" || rows[0]["pid"] != pid {
		t.Fatalf("rows %v (host pid %s)", rows, pid)
	}
	if s.Session() != "fake-"+pid+"-/PowerShell/site-1" {
		t.Fatalf("session %q", s.Session())
	}
	res, err := s.RunBatch(ctx, []exchange.Command{{Cmdlet: "Get-AuthConfig"}, {Cmdlet: "Get-PartnerApplication"}})
	if err != nil || len(res) != 2 || len(res[1].Rows) != 1 || res[1].Rows[0]["cmdlet"] != "Get-PartnerApplication" {
		t.Fatalf("batch: %v %v", res, err)
	}
	sessions := g.Sessions()
	if len(sessions) != 1 || sessions[0].Config != `{"config":{"mode":"local-snapin"}}` || len(sessions[0].Requests) != 2 ||
		!strings.Contains(sessions[0].Requests[1], `"batch"`) {
		t.Fatalf("gateway sessions %+v", sessions)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// TestOldDefaultCommandFailsToStart: the command line hybridflow shipped
// before (-Command -, no {script}) hands PowerShell no script at all, so
// the stand-in refuses to start, and the worker's host start fails with
// the reason instead of waiting for a ready line that never comes.
func TestOldDefaultCommandFailsToStart(t *testing.T) {
	bin := standIn(t)
	g := newFakeGateway(t)
	old := []string{"powershell.exe", "-NoLogo", "-NoProfile", "-NonInteractive", "-Command", "-"}
	s := clientFor(t, withExe(old, bin), []string{GatewayEnv + "=" + g.URL("/PowerShell/site-1")},
		shell.SessionConfig{Mode: shell.ModeLocalSnapin})
	began := time.Now()
	_, err := s.Run(context.Background(), exchange.Command{Cmdlet: "Get-AuthServer"})
	if err == nil {
		t.Fatal("the host started")
	}
	if !exchange.HasType(err, exchange.TypeHostDied) || !strings.Contains(err.Error(), "exited before it was ready") ||
		!strings.Contains(err.Error(), "exit status 64") || !strings.Contains(err.Error(), "-Command is refused") {
		t.Fatalf("start error: %v", err)
	}
	if d := time.Since(began); d > 10*time.Second {
		t.Fatalf("the failure took %s: it waited for the start timeout", d)
	}
	if n := len(g.Sessions()); n != 0 {
		t.Fatalf("the gateway saw %d sessions", n)
	}

	// The same command line with the script placeholder is accepted.
	fixed := withExe([]string{"powershell.exe", "-NoLogo", "-NoProfile", "-NonInteractive", "-File", shell.ScriptPlaceholder}, bin)
	ok := clientFor(t, fixed, []string{GatewayEnv + "=" + g.URL("/PowerShell/site-1")}, shell.SessionConfig{Mode: shell.ModeLocalSnapin})
	if _, err := ok.Run(context.Background(), exchange.Command{Cmdlet: "Get-AuthServer"}); err != nil {
		t.Fatalf("with -File {script}: %v", err)
	}
}

// TestStartFailuresThroughTheShellClient: a session the gateway cannot
// set up reaches the worker as the typed ready:false error, and a dropped
// session as a host that died mid-call (retryable).
func TestStartFailuresThroughTheShellClient(t *testing.T) {
	bin := standIn(t)
	argv := withExe(shell.DefaultArgv(), bin)

	s := clientFor(t, argv, nil, shell.SessionConfig{Mode: shell.ModeLocalSnapin})
	_, err := s.Run(context.Background(), exchange.Command{Cmdlet: "Get-AuthServer"})
	if !exchange.HasType(err, "System.Management.Automation.PSArgumentException") ||
		!strings.Contains(err.Error(), "snap-in 'Microsoft.Exchange.Management.PowerShell.SnapIn' is not installed") {
		t.Fatalf("without the gateway: %v", err)
	}

	g := newFakeGateway(t)
	g.refuseStatus, g.refuseBody = "404 Not Found", "no on-premises Exchange site \"nowhere\"\n"
	s = clientFor(t, argv, nil, shell.SessionConfig{Mode: shell.ModeRemote, ConnectionURI: g.URL("/PowerShell/nowhere")})
	_, err = s.Run(context.Background(), exchange.Command{Cmdlet: "Get-AuthServer"})
	if !exchange.HasType(err, "System.Management.Automation.Remoting.PSRemotingTransportException") ||
		!strings.Contains(err.Error(), `404 Not Found: no on-premises Exchange site "nowhere"`) {
		t.Fatalf("refused by the gateway: %v", err)
	}

	drop := newFakeGateway(t)
	drop.dropAfter = 1
	s = clientFor(t, argv, []string{GatewayEnv + "=" + drop.URL("/PowerShell/site-1")}, shell.SessionConfig{Mode: shell.ModeLocalSnapin})
	_, err = s.Run(context.Background(), exchange.Command{Cmdlet: "Get-AuthServer"})
	if !exchange.HasType(err, exchange.TypeHostDied) || !exchange.Retryable(err) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("dropped: %v", err)
	}
}

// TestLinksOnlyStdlib: the stand-in starts once per site; every package
// it links adds to that.
func TestLinksOnlyStdlib(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool")
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", standInPkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := map[string]bool{
		standInPkg: true,
		"github.com/hybridflow/hybridflow/internal/exchange/shell/bootstrapps1": true,
		"github.com/hybridflow/hybridflow/internal/sim/pshostrelay":             true,
	}
	for _, p := range strings.Fields(string(out)) {
		if !allowed[p] {
			t.Errorf("the stand-in links %s", p)
		}
	}
	out, err = exec.Command(goTool, "list", "-deps", standInPkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, heavy := range []string{"net/http", "os/exec", "reflect/internal"} {
		for _, p := range strings.Fields(string(out)) {
			if p == heavy {
				t.Errorf("the stand-in links %s", heavy)
			}
		}
	}
}
