//go:build linux

package cluster_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/cluster"
	"github.com/hybridflow/hybridflow/internal/logging"
	"github.com/hybridflow/hybridflow/workflows"
)

// needCluster skips in -short mode and when bin/ lacks the Temporal server
// (make test builds it first); PostgreSQL missing is a failure (make test
// installs it).
func needCluster(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: starts PostgreSQL and the Temporal server")
	}
	if err := cluster.ServerBuilt(); err != nil {
		t.Skipf("the Temporal server is not built, so the cluster cannot start: %v", err)
	}
	if _, err := cluster.PGBinDir(""); err != nil {
		t.Fatal(err)
	}
}

// stateDir is a fresh state directory PostgreSQL's unprivileged user can
// enter (t.TempDir's are private to root), removed after the test.
func stateDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hybridflow-cluster-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// showLogs prints the ends of both logs when the test failed.
func showLogs(t *testing.T, dir string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, name := range []string{cluster.ServerLog, cluster.PostgresLog} {
			if data, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
				lines := strings.Split(strings.TrimSpace(string(data)), "\n")
				t.Logf("%s (last lines):\n%s", name, strings.Join(lines[max(0, len(lines)-15):], "\n"))
			}
		}
	})
}

// A cluster starts with the namespace and every search attribute; a
// workflow started before the server is SIGKILLed, and before PostgreSQL
// crashes, is still there after each restart, and a client dialled
// before reconnects by itself. PostgreSQL runs as the unprivileged user
// when the test runs as root. A second Start on the same directory (the
// cluster stopped) keeps the data.
func TestClusterRestartsKeepState(t *testing.T) {
	needCluster(t)
	dir := stateDir(t)
	showLogs(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	began := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Stop() }()
	t.Logf("cluster up in %s at %s", time.Since(began).Round(100*time.Millisecond), c.HostPort())

	if os.Geteuid() == 0 {
		if u := ownerOf(t, c.PostgresPID()); u != cluster.DefaultPGUser {
			t.Errorf("PostgreSQL runs as %q, want %s", u, cluster.DefaultPGUser)
		}
	}
	cl, err := client.Dial(client.Options{HostPort: c.HostPort(), Namespace: c.Namespace(), Logger: logging.NewTemporal(zap.NewNop())})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	sa, err := cl.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: c.Namespace()})
	if err != nil {
		t.Fatal(err)
	}
	for name, typ := range workflows.SearchAttributes {
		if got, ok := sa.GetCustomAttributes()[name]; !ok || got != typ {
			t.Errorf("search attribute %s: %v (registered %v), want %v", name, got, ok, typ)
		}
	}
	// No worker polls this queue: the workflow stays open.
	run, err := cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "cluster-restart", TaskQueue: "nobody"}, "NoSuchWorkflow")
	if err != nil {
		t.Fatal(err)
	}
	check := func(after string) {
		t.Helper()
		d, err := cl.DescribeWorkflowExecution(ctx, run.GetID(), "")
		if err != nil {
			t.Fatalf("after %s: %v", after, err)
		}
		if got := d.GetWorkflowExecutionInfo().GetExecution().GetRunId(); got != run.GetRunID() {
			t.Fatalf("after %s: run %s, want %s", after, got, run.GetRunID())
		}
		if st := d.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			t.Fatalf("after %s: status %v", after, st)
		}
	}

	pid := c.ServerPID()
	if err := c.KillServer(); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Fatalf("server pid %d alive after KillServer", pid)
	}
	if _, err := cl.DescribeWorkflowExecution(ctx, run.GetID(), ""); err == nil {
		t.Fatal("describe succeeded while the server was killed")
	}
	t0 := time.Now()
	if err := c.StartServer(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("server SIGKILLed and started again: ready in %s", time.Since(t0).Round(100*time.Millisecond))
	check("the server's SIGKILL")
	if err := c.StartServer(ctx); err == nil {
		t.Fatal("a second StartServer of a running server succeeded")
	}

	pgPID := c.PostgresPID()
	if err := c.CrashPostgres(); err != nil {
		t.Fatal(err)
	}
	if alive(pgPID) {
		t.Fatalf("postgres pid %d alive after CrashPostgres", pgPID)
	}
	t0 = time.Now()
	if err := c.StartPostgres(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("PostgreSQL crashed (immediate stop) and started again: ready in %s", time.Since(t0).Round(100*time.Millisecond))
	// The server reconnects by itself; the first calls may fail.
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := cl.DescribeWorkflowExecution(ctx, run.GetID(), "")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not serve again within a minute of PostgreSQL's restart: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	check("PostgreSQL's crash")
	logData, _ := os.ReadFile(filepath.Join(dir, cluster.PostgresLog))
	if !strings.Contains(string(logData), "was interrupted") && !strings.Contains(string(logData), "not properly shut down") {
		t.Errorf("PostgreSQL's log shows no crash recovery after the immediate stop:\n%s", string(logData))
	}

	// Stopped, then started on the same directory: same data.
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if alive(pid) || alive(c.PostgresPID()) {
		t.Fatal("processes left after Stop")
	}
	c2, err := cluster.Start(ctx, cluster.Options{Dir: dir, Ports: c.Ports()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c2.Stop() }()
	check("a stop and a second Start on the same directory")
}

func ownerOf(t *testing.T, pid int) string {
	t.Helper()
	out, err := exec.Command("ps", "-o", "user=", "-p", strconv.Itoa(pid)).Output()
	if err != nil {
		t.Fatalf("ps for pid %d: %v", pid, err)
	}
	return strings.TrimSpace(string(out))
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// TreeCPU counts a process's descendants, those still running and those
// that have exited and been waited for.
func TestTreeCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	// The shell runs a busy child to its end (reaped: the shell's cutime),
	// then starts another and waits for it (running when measured).
	cmd := exec.Command("sh", "-c", `sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done'; sh -c 'while :; do :; done' & wait`)
	// Its own process group, killed whole at the end: killing only the
	// shell would leave the endless child running after the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() }()
	var got time.Duration
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(300 * time.Millisecond)
		own := ownCPU(cmd.Process.Pid)
		got = cluster.TreeCPU(cmd.Process.Pid)
		// The parent shell itself barely runs: what is counted is its
		// children's.
		if got > own+500*time.Millisecond && reapedCPU(cmd.Process.Pid) > 0 {
			t.Logf("tree %s, the shell's own %s, its reaped children %s", got, own, reapedCPU(cmd.Process.Pid))
			return
		}
	}
	t.Fatalf("TreeCPU(%d) = %s after 30 s: descendants not counted (reaped %s)", cmd.Process.Pid, got, reapedCPU(cmd.Process.Pid))
}

func statFields(pid int) []string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(data)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
}

func ticks(f []string, from, to int) time.Duration {
	var n int64
	for _, k := range f[from:to] {
		v, _ := strconv.ParseInt(k, 10, 64)
		n += v
	}
	return time.Duration(n) * 10 * time.Millisecond
}

func ownCPU(pid int) time.Duration {
	if f := statFields(pid); len(f) > 14 {
		return ticks(f, 11, 13)
	}
	return 0
}

func reapedCPU(pid int) time.Duration {
	if f := statFields(pid); len(f) > 14 {
		return ticks(f, 13, 15)
	}
	return 0
}

// StopDetached ends what a detached Start left running, and nothing whose
// PID file names a process of another program.
func TestFindRunningIgnoresOtherPrograms(t *testing.T) {
	dir := t.TempDir()
	// This test's own PID in both files: alive, but not the programs.
	self := strconv.Itoa(os.Getpid())
	if err := os.WriteFile(filepath.Join(dir, cluster.PIDFile), []byte(self+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "pg"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pg", "postmaster.pid"), []byte(self+"\n"+dir+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := cluster.FindRunning(dir); r.Server != 0 || r.Postgres != 0 {
		t.Fatalf("FindRunning took this test process for the cluster: %+v", r)
	}
	msgs, err := cluster.StopDetached(dir)
	if err != nil || len(msgs) != 0 {
		t.Fatalf("StopDetached on a foreign PID: %v %v", msgs, err)
	}
}
