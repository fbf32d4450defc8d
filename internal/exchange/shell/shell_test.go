package shell

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hybridflow/hybridflow/internal/exchange"
)

func fakeShell(t *testing.T, mode string, mutate ...func(*Options)) *Shell {
	t.Helper()
	argv, env := fakeHostArgv(mode)
	o := Options{Argv: argv, Env: env, Name: "test", CallTimeout: 10 * time.Second, StartTimeout: 10 * time.Second, StopGrace: 500 * time.Millisecond}
	for _, m := range mutate {
		m(&o)
	}
	s := New(o)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func echo(t *testing.T, s *Shell, params map[string]any) exchange.Row {
	t.Helper()
	rows, err := s.Run(context.Background(), exchange.Command{Cmdlet: fakeEcho, Parameters: params})
	if err != nil {
		t.Fatalf("echo: %v", err)
	}
	if len(rows) != 1 {
		t.Fatalf("echo rows: %v", rows)
	}
	return rows[0]
}

func TestRoundTripThroughProcess(t *testing.T) {
	s := fakeShell(t, "ok")
	for _, v := range hostileStrings {
		row := echo(t, s, map[string]any{"Name": v, "DomainName": []string{v, "contoso.com"}, "Enabled": true})
		p := row["parameters"].(map[string]any)
		if p["Name"] != v {
			t.Fatalf("value changed in transit: %q -> %q", v, p["Name"])
		}
		if l := p["DomainName"].([]any); len(l) != 2 || l[0] != v {
			t.Fatalf("list changed in transit: %#v", l)
		}
		if p["Enabled"] != true {
			t.Fatalf("bool changed in transit: %#v", p["Enabled"])
		}
	}
	if !strings.HasPrefix(s.Session(), fmt.Sprintf("fake-%d-none", s.PID())) {
		t.Fatalf("session %q does not come from host %d with mode none", s.Session(), s.PID())
	}
}

func TestSessionConfigReachesHost(t *testing.T) {
	s := fakeShell(t, "ok", func(o *Options) {
		o.Session = SessionConfig{Mode: ModeRemote, ConnectionURI: "http://ex01.contoso.com/PowerShell/"}
	})
	echo(t, s, nil)
	if !strings.HasSuffix(s.Session(), "-remote-http://ex01.contoso.com/PowerShell/") {
		t.Fatalf("session %q", s.Session())
	}
	bad := fakeShell(t, "ok", func(o *Options) { o.Session = SessionConfig{Mode: ModeRemote, ConnectionURI: "ex01"} })
	if _, err := bad.Run(context.Background(), exchange.Command{Cmdlet: fakeEcho}); !exchange.HasType(err, exchange.TypeParameterBinding) || bad.Running() {
		t.Fatalf("remote without a URI: %v (running %v)", err, bad.Running())
	}
}

func TestScriptIsWrittenPrivatelyAndRemoved(t *testing.T) {
	s := fakeShell(t, "ok")
	rows, err := s.Run(context.Background(), exchange.Command{Cmdlet: fakeScript})
	if err != nil {
		t.Fatal(err)
	}
	path := rows[0]["path"].(string)
	if rows[0]["matches"] != true || filepath.Base(path) != "bootstrap.ps1" {
		t.Fatalf("host did not get the bootstrap: %v", rows[0])
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("bootstrap copy: %v %v", fi, err)
	}
	_ = s.Close()
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("bootstrap directory left behind: %v", err)
	}
}

func TestClientSideRefusals(t *testing.T) {
	s := fakeShell(t, "ok")
	tests := []struct {
		name string
		run  func() error
		typ  string
	}{
		{"not allow-listed", func() error {
			_, err := s.Run(context.Background(), exchange.Command{Cmdlet: "Invoke-Expression", Parameters: map[string]any{"Command": "Remove-Item C:\\"}})
			return err
		}, exchange.TypeCmdletNotAllowed},
		{"not allow-listed in a batch", func() error {
			_, err := s.RunBatch(context.Background(), []exchange.Command{{Cmdlet: fakeEcho}, {Cmdlet: "Get-Process"}})
			return err
		}, exchange.TypeCmdletNotAllowed},
		{"invalid UTF-8", func() error {
			_, err := s.Run(context.Background(), exchange.Command{Cmdlet: fakeEcho, Parameters: map[string]any{"Name": "\xff"}})
			return err
		}, exchange.TypeParameterBinding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if !exchange.HasType(err, tt.typ) || exchange.Retryable(err) {
				t.Fatalf("want non-retryable %s, got %v", exchange.ShortType(tt.typ), err)
			}
		})
	}
	if s.Running() {
		t.Fatal("a refused call started the host")
	}
}

func TestTypedErrorAndBatch(t *testing.T) {
	s := fakeShell(t, "ok")
	_, err := s.Run(context.Background(), exchange.Command{Cmdlet: fakeNotFound, Parameters: map[string]any{"Identity": "x"}})
	var e *exchange.Error
	if !errors.As(err, &e) || !exchange.IsNotFound(err) || e.Cmdlet != fakeNotFound || exchange.Retryable(err) {
		t.Fatalf("want a typed not-found error naming the cmdlet, got %#v", err)
	}
	res, err := s.RunBatch(context.Background(), []exchange.Command{
		{Cmdlet: fakeEcho, Parameters: map[string]any{"N": "1"}},
		{Cmdlet: fakeNotFound},
		{Cmdlet: fakeEcho, Parameters: map[string]any{"N": "3"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].Error != nil || res[2].Error != nil || !exchange.IsNotFound(res[1].Error) || res[1].Error.Cmdlet != fakeNotFound {
		t.Fatalf("batch results: %+v", res)
	}
	if res[2].Rows[0]["parameters"].(map[string]any)["N"] != "3" {
		t.Fatalf("results out of order: %+v", res)
	}
}

func TestHostDiesMidCall(t *testing.T) {
	s := fakeShell(t, "ok")
	echo(t, s, nil)
	first := s.PID()
	_, err := s.Run(context.Background(), exchange.Command{Cmdlet: fakeDie})
	if !exchange.HasType(err, exchange.TypeHostDied) || !exchange.Retryable(err) {
		t.Fatalf("want retryable HostDied, got %v", err)
	}
	if !strings.Contains(err.Error(), "exit status 7") || !strings.Contains(err.Error(), "fatal: host crashed") {
		t.Fatalf("error lacks the exit status or stderr: %v", err)
	}
	if s.Running() {
		t.Fatal("dead host still counted as running")
	}
	row := echo(t, s, nil)
	if pid := int(row["pid"].(float64)); pid == first || pid != s.PID() {
		t.Fatalf("next call not on a fresh host: first %d now %d (shell says %d)", first, pid, s.PID())
	}
}

func TestStuckCallTimesOut(t *testing.T) {
	s := fakeShell(t, "ok", func(o *Options) { o.CallTimeout, o.StopGrace = 300*time.Millisecond, 300*time.Millisecond })
	echo(t, s, nil)
	first := s.PID()
	began := time.Now()
	_, err := s.Run(context.Background(), exchange.Command{Cmdlet: fakeHang})
	if !exchange.HasType(err, exchange.TypeTimeout) || !exchange.Retryable(err) {
		t.Fatalf("want retryable Timeout, got %v", err)
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Fatalf("timeout took %s", took)
	}
	if row := echo(t, s, nil); int(row["pid"].(float64)) == first {
		t.Fatal("the stuck host was reused")
	}
}

func TestCancelledCallKillsHost(t *testing.T) {
	s := fakeShell(t, "ok", func(o *Options) { o.StopGrace = 300 * time.Millisecond })
	echo(t, s, nil)
	first := s.PID()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := s.Run(ctx, exchange.Command{Cmdlet: fakeHang})
	var e *exchange.Error
	if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &e) {
		t.Fatalf("want the context's error, got %v", err)
	}
	if row := echo(t, s, nil); int(row["pid"].(float64)) == first {
		t.Fatal("the host busy with the cancelled call was reused")
	}
}

func TestStartFailures(t *testing.T) {
	tests := []struct {
		mode      string
		argv      []string
		start     time.Duration
		typ       string // "" = not an *exchange.Error
		retryable bool
		msg       string
	}{
		{mode: "notready", typ: "System.Management.Automation.Remoting.PSRemotingTransportException", msg: "session setup (none) failed: Connecting to remote server failed"},
		{mode: "badversion", typ: TypeProtocol, msg: "protocol version 99"},
		{mode: "silent", start: 300 * time.Millisecond, typ: exchange.TypeTimeout, retryable: true, msg: "not ready within"},
		{mode: "die-early", typ: exchange.TypeHostDied, retryable: true, msg: "snap-in not installed"},
		{mode: "ok", argv: []string{filepath.Join(t.TempDir(), "no-such-powershell")}, retryable: true, msg: "start"},
	}
	for _, tt := range tests {
		t.Run(tt.mode+tt.msg, func(t *testing.T) {
			s := fakeShell(t, tt.mode, func(o *Options) {
				if tt.argv != nil {
					o.Argv = tt.argv
				}
				if tt.start > 0 {
					o.StartTimeout = tt.start
				}
			})
			_, err := s.Run(context.Background(), exchange.Command{Cmdlet: fakeEcho})
			if err == nil {
				t.Fatal("call succeeded")
			}
			var e *exchange.Error
			if tt.typ == "" {
				if errors.As(err, &e) {
					t.Fatalf("want a plain error, got %#v", e)
				}
			} else if !exchange.HasType(err, tt.typ) {
				t.Fatalf("want %s, got %v", exchange.ShortType(tt.typ), err)
			}
			if exchange.Retryable(err) != tt.retryable || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("retryable=%v message=%q", exchange.Retryable(err), err)
			}
			if s.Running() {
				t.Fatal("a failed host is counted as running")
			}
		})
	}
}

func TestNoiseAndStaleRepliesAreSkipped(t *testing.T) {
	s := fakeShell(t, "banner")
	rows, err := s.Run(context.Background(), exchange.Command{Cmdlet: fakeStale})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0]["stale"] != nil || rows[0]["cmdlet"] != fakeStale {
		t.Fatalf("got the stale reply: %v", rows)
	}
	echo(t, s, map[string]any{"A": "b"})
}

func TestProtocolViolationRestartsHost(t *testing.T) {
	s := fakeShell(t, "ok")
	echo(t, s, nil)
	first := s.PID()
	_, err := s.Run(context.Background(), exchange.Command{Cmdlet: fakeConfused})
	if !exchange.HasType(err, TypeProtocol) || exchange.Retryable(err) {
		t.Fatalf("want non-retryable protocol error, got %v", err)
	}
	if row := echo(t, s, nil); int(row["pid"].(float64)) == first {
		t.Fatal("the confused host was reused")
	}
}

func TestConcurrentCallersShareOneHost(t *testing.T) {
	s := fakeShell(t, "ok")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	pids := sync.Map{}
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				want := fmt.Sprintf("g%d-i%d", g, i)
				cmdlet := fakeEcho
				if i%2 == 0 {
					cmdlet = fakeSlow
				}
				rows, err := s.Run(context.Background(), exchange.Command{Cmdlet: cmdlet, Parameters: map[string]any{"V": want}})
				if err != nil {
					errs <- err
					return
				}
				if got := rows[0]["parameters"].(map[string]any)["V"]; got != want {
					errs <- fmt.Errorf("reply mismatched: want %s got %v", want, got)
				}
				pids.Store(rows[0]["pid"], true)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	n := 0
	pids.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Fatalf("calls spread over %d hosts", n)
	}
}

func TestCloseStopsHostAndRefusesCalls(t *testing.T) {
	s := fakeShell(t, "ok")
	echo(t, s, nil)
	if !s.Running() {
		t.Fatal("not running")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s.Running() || s.PID() != 0 {
		t.Fatal("host still running after Close")
	}
	if _, err := s.Run(context.Background(), exchange.Command{Cmdlet: fakeEcho}); !errors.Is(err, ErrClosed) {
		t.Fatalf("want ErrClosed, got %v", err)
	}
	_ = s.Close() // idempotent
}

func TestLogsNeverCarryParameterValues(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	s := fakeShell(t, "ok", func(o *Options) { o.Logger = zap.New(core) })
	const secret = "hunter2-very-secret"
	echo(t, s, map[string]any{"Password": secret})
	_, _ = s.Run(context.Background(), exchange.Command{Cmdlet: fakeNotFound, Parameters: map[string]any{"Identity": secret}})
	if logs.Len() == 0 {
		t.Fatal("nothing logged")
	}
	sawCmdlet := false
	for _, e := range logs.All() {
		line := fmt.Sprint(e.Message, e.ContextMap())
		if strings.Contains(line, secret) {
			t.Fatalf("log entry carries a parameter value: %s", line)
		}
		if e.ContextMap()["cmdlet"] == fakeNotFound && e.ContextMap()["error_type"] == "ManagementObjectNotFoundException" {
			sawCmdlet = true
		}
	}
	if !sawCmdlet {
		t.Fatal("calls are not logged with cmdlet name and error type")
	}
}

// TestTimedOutRemoteHostIsStoppedNotKilled: a call that outlives the call
// timeout in a remote session fails with a timeout at once; the host is
// then told to stop by the end of its input, and it stops the command and
// removes its session on the way out (the fake host marks that), well
// within the stop grace, instead of being killed, which would leave the
// session on the server. The next call runs on a new host.
func TestTimedOutRemoteHostIsStoppedNotKilled(t *testing.T) {
	marks := t.TempDir()
	s := fakeShell(t, "ok", func(o *Options) {
		o.Session = SessionConfig{Mode: ModeRemote, ConnectionURI: "http://ex01.contoso.com/PowerShell/"}
		o.CallTimeout, o.StopGrace = 300*time.Millisecond, 5*time.Second
		o.Env = append(o.Env, fakeMarksEnv+"="+marks)
	})
	echo(t, s, nil)
	first := s.PID()
	began := time.Now()
	_, err := s.Run(context.Background(), exchange.Command{Cmdlet: fakeHang})
	if !exchange.HasType(err, exchange.TypeTimeout) || !exchange.Retryable(err) {
		t.Fatalf("want retryable Timeout, got %v", err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("the timed-out call returned after %s", took)
	}
	row := echo(t, s, nil)
	if int(row["pid"].(float64)) == first {
		t.Fatal("the stuck host was reused")
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Fatalf("the next call waited %s: the stuck host was killed after the grace instead of leaving", took)
	}
	if _, err := os.Stat(filepath.Join(marks, fmt.Sprintf("%d.removed", first))); err != nil {
		t.Fatalf("the stuck host did not leave through its session removal: %v", err)
	}
	if !strings.Contains(err.Error(), "stop the call and remove its session") {
		t.Errorf("timeout error: %v", err)
	}
}

// TestStuckLocalHostIsKilledAfterTheGrace: a host that cannot stop its
// command (a local session runs it in the script's own thread) is killed
// once the stop grace has passed; the caller does not wait for that, but
// the next call does, so that a replacement never runs beside it.
func TestStuckLocalHostIsKilledAfterTheGrace(t *testing.T) {
	const grace = time.Second
	s := fakeShell(t, "ok", func(o *Options) { o.CallTimeout, o.StopGrace = 200*time.Millisecond, grace })
	echo(t, s, nil)
	first := s.PID()
	began := time.Now()
	_, err := s.Run(context.Background(), exchange.Command{Cmdlet: fakeHang})
	if !exchange.HasType(err, exchange.TypeTimeout) {
		t.Fatalf("want Timeout, got %v", err)
	}
	if took := time.Since(began); took > grace {
		t.Fatalf("the caller waited %s for the stop", took)
	}
	row := echo(t, s, nil)
	if int(row["pid"].(float64)) == first {
		t.Fatal("the stuck host was reused")
	}
	if took := time.Since(began); took < grace {
		t.Fatalf("the replacement answered %s after the call began, before the stuck host's grace (%s) ended", took, grace)
	}
}

// TestStartTimeoutStopsTheHost: a host not ready within the start timeout
// is stopped like a timed-out call's, not killed: one that gets its
// session up within the stop grace then removes it on its way out.
func TestStartTimeoutStopsTheHost(t *testing.T) {
	marks := t.TempDir()
	s := fakeShell(t, "slowready", func(o *Options) {
		o.Session = SessionConfig{Mode: ModeRemote, ConnectionURI: "http://ex01.contoso.com/PowerShell/"}
		o.StartTimeout, o.StopGrace = 200*time.Millisecond, 5*time.Second
		o.Env = append(o.Env, fakeMarksEnv+"="+marks)
	})
	err := s.Start(context.Background())
	if !exchange.HasType(err, exchange.TypeTimeout) {
		t.Fatalf("want a start timeout, got %v", err)
	}
	_ = s.Close() // waits for the stop
	if m, _ := filepath.Glob(filepath.Join(marks, "*.removed")); len(m) != 1 {
		t.Fatalf("the host that timed out starting did not leave through its session removal (marks %v)", m)
	}
}
