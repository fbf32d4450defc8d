//go:build linux

package realpath_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/exchange/shell"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// oldDefaultCommand is the shell command hybridflow shipped before: no
// {script} placeholder, the script expected on standard input through
// "-Command -", which instead carries the host protocol's JSON lines.
var oldDefaultCommand = []string{"powershell.exe", "-NoLogo", "-NoProfile", "-NonInteractive", "-Command", "-"}

// TestShippedShellSectionRunsASetup: the worker binary, run with the
// shipped example configuration's site-b shell section (only the program
// path and the connection URI changed to loopback) and no simulate block,
// starts its PowerShell host through the stand-in at start (/readyz), and
// a setup of a tenant at site-b, started with the hybridflow CLI,
// completes verified. The result is judged from the stand-alone
// simulator's dump. Then the old default command: the worker refuses the
// configuration naming the field, and, were the validator bypassed, the
// host refuses to start as PowerShell would not run the bootstrap.
func TestShippedShellSectionRunsASetup(t *testing.T) {
	needEnv(t)
	began := time.Now()
	dir := t.TempDir()
	w := newWorld(t, dir, 1801, "shipped")
	endSetup(t, w.tenant.ID)
	s := startSimulator(t, dir, w.file)
	cfg := writeWorkerConfig(t, dir, "worker", s, nil)
	t.Logf("onprem.sites.%s.shell as run:\n%s", site, cfg.shell)

	worker, ready := startWorker(t, dir, "worker", cfg)
	inv := w.inventory(t, dir)
	setupBegan := time.Now()
	code, out := cli(t, dir, 3*time.Minute, "setup", "-f", inv, "-t", w.tenant.ID)
	took := time.Since(setupBegan)
	if code != 0 {
		t.Fatalf("hybridflow setup exited %d (want 0, verified):\n%s\nworker:\n%s", code, out, worker.output())
	}
	res := setupResult(t, w.tenant.ID)

	v := judgeSetUp(t, w.before, s.dump(t))

	// The on-prem steps went through the stand-in and the simulator's
	// remote PowerShell endpoint for site-b.
	var shellCalls, shellFailed, graph, exo int
	for _, r := range s.requests(t, 0) {
		switch r.Protocol {
		case "shell":
			if !strings.EqualFold(r.Site, site) || !strings.EqualFold(r.Tenant, w.tenant.ID) {
				t.Errorf("a PowerShell request for site %q, tenant %q; want %s, %s", r.Site, r.Tenant, site, w.tenant.ID)
			}
			shellCalls++
			if !r.OK {
				shellFailed++
			}
		case "graph":
			graph++
		case "exo":
			exo++
		}
	}
	if shellCalls == 0 || graph == 0 || exo == 0 {
		t.Errorf("request log: %d PowerShell, %d Graph, %d Exchange Online requests; want some of each", shellCalls, graph, exo)
	}
	t.Logf("worker ready in %s; setup verified (%d writes) in %s; %d PowerShell round trips through %s (%d with a cmdlet error), %d Graph, %d Exchange Online requests; application keys %v",
		ready.Round(time.Millisecond), res.Writes, took.Round(time.Millisecond), shellCalls, site, shellFailed, graph, exo, v.appKeys)

	// The old default command.
	worker.stop(t)
	old := writeWorkerConfig(t, dir, "worker-old-default", s, func(sh *yaml.Node) {
		cmd := withProgram(oldDefaultCommand, env.pwsh)
		set(t, sh, "command", seq(cmd...))
	})
	t.Run("old default refused by the validator", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, env.worker, "--config", old.path)
		cmd.Dir = dir
		cmd.Env = childEnv(dir)
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("the worker with the old default command did not exit within 30s:\n%s", out)
		}
		var exit *exec.ExitError
		if err == nil || !errors.As(err, &exit) || exit.ExitCode() == 0 {
			t.Fatalf("the worker with the old default command: %v; want a non-zero exit\n%s", err, out)
		}
		field := "onprem.sites." + site + ".shell.command"
		if !strings.Contains(string(out), field) || !strings.Contains(string(out), "-Command") {
			t.Fatalf("the refusal does not name %s and -Command:\n%s", field, out)
		}
		t.Logf("exit %d: %s", exit.ExitCode(), strings.TrimSpace(string(out)))
	})
	t.Run("old default refused by the host", func(t *testing.T) {
		// The validator bypassed: the worker's shell client starts the
		// stand-in with the old command line and the shipped session, as
		// the site's host. The stand-in, keeping PowerShell's command
		// line, refuses -Command (hybridflow-pwsh's
		// TestOldDefaultCommandFailsToStart covers the variants), so the
		// start fails at once with the reason instead of waiting for a
		// ready line, and no session reaches the simulator.
		mark := lastSeq(t, s)
		sh := shell.New(shell.Options{Argv: withProgram(oldDefaultCommand, env.pwsh), Name: site,
			Session:      shell.SessionConfig{Mode: shell.ModeRemote, ConnectionURI: strings.TrimSuffix(s.state.GatewayURL, "/") + "/PowerShell/" + site},
			StartTimeout: 30 * time.Second, CallTimeout: 30 * time.Second})
		defer sh.Close()
		start := time.Now()
		_, err := sh.Run(context.Background(), exchange.Command{Cmdlet: "Get-AuthServer"})
		if err == nil {
			t.Fatal("the host started with the old default command")
		}
		if !exchange.HasType(err, exchange.TypeHostDied) || !strings.Contains(err.Error(), "-Command is refused") {
			t.Fatalf("start error: %v", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("the refusal took %s", d)
		}
		for _, r := range s.requests(t, mark) {
			if r.Protocol == "shell" {
				t.Errorf("a PowerShell session reached the simulator: %+v", r)
			}
		}
		t.Logf("%v", err)
	})
	t.Logf("test took %s", time.Since(began).Round(time.Millisecond))
}

// TestWorkerSIGKILLedAfterAKeyPatchConverges: the simulator applies the
// PATCH that writes the auth certificate to the dedicated application and
// drops its reply (apply_then_drop, first one); as soon as the request log
// shows it, the worker is SIGKILLed. A new worker process with the same
// configuration takes the setup over, and it converges verified with
// exactly one key per auth certificate on the application, judged from
// the simulator's dump, and nothing foreign removed from the first-party
// service principal.
func TestWorkerSIGKILLedAfterAKeyPatchConverges(t *testing.T) {
	needEnv(t)
	began := time.Now()
	dir := t.TempDir()
	w := newWorld(t, dir, 1803, "killed")
	endSetup(t, w.tenant.ID)
	s := startSimulator(t, dir, w.file)
	rules := "- protocol: graph\n  method: PATCH\n  path: /applications/\n  kind: apply_then_drop\n  fail_first_n: 1\n  tenant: " + w.tenant.ID + "\n"
	if _, err := s.admin.AddFaults(context.Background(), []byte(rules)); err != nil {
		t.Fatalf("add fault rule: %v", err)
	}
	cfg := writeWorkerConfig(t, dir, "worker", s, nil)
	first, _ := startWorker(t, dir, "worker-1", cfg)

	inv := w.inventory(t, dir)
	if code, out := cli(t, dir, time.Minute, "setup", "--no-wait", "-f", inv, "-t", w.tenant.ID); code != 0 {
		t.Fatalf("hybridflow setup --no-wait exited %d:\n%s", code, out)
	}

	// Watch the request log for the dropped key PATCH, then SIGKILL.
	var dropped sim.RequestRecord
	var since uint64
	deadline := time.Now().Add(2 * time.Minute)
	for dropped.Seq == 0 {
		if first.exited() {
			t.Fatalf("worker-1 exited (%v):\n%s", first.err, first.output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("no applied-then-dropped PATCH of the application in 2 minutes:\n%s", first.output())
		}
		for _, r := range s.requests(t, since) {
			since = r.Seq
			if isKeyPatch(r) && strings.Contains(r.Fault, sim.FaultApplyThenDrop) {
				dropped = r
				break
			}
		}
		if dropped.Seq == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	hosts := groupMembers(first.cmd.Process.Pid, first.cmd.Process.Pid)
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	<-first.done
	answered := dropped.Time.Add(dropped.Duration)
	if ws, ok := first.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("worker-1 ended with %v, not by SIGKILL", first.cmd.ProcessState)
	}
	// Its PowerShell host (the stand-in, in the worker's process group)
	// sees its standard input close and ends, as the bootstrap's read loop
	// does: no host of a dead worker lingers with an open session.
	if len(hosts) == 0 {
		t.Fatal("worker-1 had no PowerShell host process when it was killed")
	}
	orphanGone := waitGroupGone(first.cmd.Process.Pid, 10*time.Second)
	if orphanGone < 0 {
		t.Errorf("worker-1's PowerShell host (pids %v) still runs 10s after the worker was killed", hosts)
	}

	// The write was applied: the key is on the application already.
	mid := s.dump(t)
	keysAtKill := 0
	for _, a := range mid.Tenants[0].Entra.Applications {
		if strings.HasPrefix(a.DisplayName, "ExchangeServerApp-") {
			keysAtKill = len(a.KeyCredentials)
		}
	}
	if keysAtKill == 0 {
		t.Fatalf("the dropped PATCH (%s %s) left no key on the application", dropped.Method, dropped.Path)
	}

	second, ready := startWorker(t, dir, "worker-2", cfg)
	resumed := time.Now()
	code, out := cli(t, dir, 3*time.Minute, "setup", "-f", inv, "-t", w.tenant.ID)
	if code != 0 {
		t.Fatalf("hybridflow setup (attached after the kill) exited %d (want 0, verified):\n%s\nworker-2:\n%s", code, out, second.output())
	}
	res := setupResult(t, w.tenant.ID)

	v := judgeSetUp(t, w.before, s.dump(t))

	var patches, patchFaults int
	for _, r := range s.requests(t, 0) {
		if isKeyPatch(r) && strings.EqualFold(r.Tenant, w.tenant.ID) {
			patches++
			if r.Fault != "" {
				patchFaults++
			}
		}
	}
	t.Logf("dropped PATCH %s (record %d) answered at %s; SIGKILL %s later; keys on the application at the kill: %d; its host (pids %v) gone %s after the kill; worker-2 ready in %s, setup verified %s after it (the workflow counts %d writes: the killed task's results were lost with it); key PATCHes in the request log: %d (%d faulted); keys found: %v for auth certificates %v; test took %s",
		dropped.Path, dropped.Seq, answered.Format("15:04:05.000"), killedAt.Sub(answered).Round(time.Millisecond), keysAtKill, hosts, orphanGone.Round(time.Millisecond),
		ready.Round(time.Millisecond), time.Since(resumed).Round(time.Millisecond), res.Writes, patches, patchFaults, v.appKeys, v.authCert, time.Since(began).Round(time.Millisecond))
}

// isKeyPatch: a Graph PATCH of one application (the dedicated
// application's keyCredentials are written this way; a fresh application
// is created with its permission, so nothing else patches it).
func isKeyPatch(r sim.RequestRecord) bool {
	return r.Protocol == "graph" && r.Method == "PATCH" && strings.Contains(r.Path, "/applications/")
}

// waitGroupGone waits until no process of group pgid is left and returns
// how long that took, or -1 after timeout.
func waitGroupGone(pgid int, timeout time.Duration) time.Duration {
	began := time.Now()
	for time.Since(began) < timeout {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return time.Since(began)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return -1
}

// groupMembers lists the processes of group pgid other than except,
// from /proc (Linux).
func groupMembers(pgid, except int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == except {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
		rest := string(stat[bytes.LastIndexByte(stat, ')')+1:])
		f := strings.Fields(rest)
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) {
			out = append(out, pid)
		}
	}
	return out
}

// lastSeq is the newest request record's number.
func lastSeq(t *testing.T, s *simulator) uint64 {
	t.Helper()
	page, err := s.admin.Requests(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return page.Last
}

func withProgram(argv []string, program string) []string {
	out := append([]string(nil), argv...)
	out[0] = program
	return out
}
