//go:build linux

package realpath_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/hybridflow/hybridflow/internal/devserver"
)

// The package builds the product's binaries once into a temporary bin
// directory, as make build does, and shares one Temporal dev server
// (bin/temporal, in memory, hybridflow's search attributes registered).
// Each test runs its own simulator and workers, and stops them when it
// ends, so a test's workers never serve another test's tenant.
var env struct {
	root    string // the repository
	bin     string // the built binaries
	worker  string // hybridflow-worker
	cli     string // hybridflow
	sim     string // hybridflow-sim
	pwsh    string // hybridflow-pwsh
	srv     *testsuite.DevServer
	err     error // why the environment is not usable
	skipped bool  // -short
}

// binaries are the programs built, by package and the name make build
// gives them in bin/.
var binaries = []struct{ pkg, name string }{
	{"./worker", "hybridflow-worker"},
	{"./starter", "hybridflow"},
	{"./internal/sim/cmd/hybridflow-sim", "hybridflow-sim"},
	{"./internal/sim/cmd/hybridflow-pwsh", "hybridflow-pwsh"},
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		env.skipped = true
		os.Exit(m.Run())
	}
	began := time.Now()
	var cleanup func()
	cleanup, env.err = prepare()
	if env.err == nil {
		fmt.Fprintf(os.Stderr, "realpath: binaries built and Temporal dev server at %s started in %s\n",
			env.srv.FrontendHostPort(), time.Since(began).Round(time.Millisecond))
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// prepare builds the binaries and starts the dev server at the same time.
func prepare() (func(), error) {
	var (
		wg       sync.WaitGroup
		buildErr error
		srvErr   error
	)
	cleanup := func() {
		if env.srv != nil {
			_ = env.srv.Stop()
		}
		if env.bin != "" {
			_ = os.RemoveAll(env.bin)
		}
	}
	root, err := devserver.RepoRoot()
	if err != nil {
		return cleanup, err
	}
	env.root = root
	if env.bin, err = os.MkdirTemp("", "hybridflow-realpath-bin-"); err != nil {
		return cleanup, err
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		buildErr = build(root, env.bin)
	}()
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		env.srv, srvErr = devserver.Start(ctx, devserver.Options{})
	}()
	wg.Wait()
	if err := errors.Join(buildErr, srvErr); err != nil {
		return cleanup, err
	}
	env.worker = filepath.Join(env.bin, "hybridflow-worker")
	env.cli = filepath.Join(env.bin, "hybridflow")
	env.sim = filepath.Join(env.bin, "hybridflow-sim")
	env.pwsh = filepath.Join(env.bin, "hybridflow-pwsh")
	return cleanup, nil
}

// build runs one go build for every binary (the build cache is shared)
// into a scratch directory, then names them as bin/ does.
func build(root, bin string) error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("no go tool to build the binaries: %w", err)
	}
	out := filepath.Join(bin, "build")
	if err := os.Mkdir(out, 0o755); err != nil {
		return err
	}
	args := []string{"build", "-buildvcs=false", "-o", out + string(filepath.Separator)}
	for _, b := range binaries {
		args = append(args, b.pkg)
	}
	cmd := exec.Command(goTool, args...)
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, msg)
	}
	for _, b := range binaries {
		if err := os.Rename(filepath.Join(out, filepath.Base(b.pkg)), filepath.Join(bin, b.name)); err != nil {
			return err
		}
	}
	return os.Remove(out)
}

// needEnv skips in -short mode and fails when the binaries or the dev
// server are missing.
func needEnv(t *testing.T) {
	t.Helper()
	if env.skipped {
		t.Skip("integration test: builds the binaries and starts the Temporal dev server")
	}
	if env.err != nil {
		t.Fatalf("test environment: %v", env.err)
	}
}

// childEnv is this process's environment without hybridflow's own
// variables, so that a developer's HYBRIDFLOW_CONFIG or address never
// reaches the processes under test, and with TMPDIR set to the test's
// directory: a SIGKILLed worker cannot remove its hosts' private script
// directories, and the test's clean-up does.
func childEnv(tmp string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HYBRIDFLOW_") && !strings.HasPrefix(kv, "TMPDIR=") {
			out = append(out, kv)
		}
	}
	return append(out, "TMPDIR="+tmp)
}

// proc is a started program of the product. Each runs in a process group
// of its own, so that stopping it also ends the PowerShell stand-ins a
// worker started (a SIGKILLed worker leaves them to notice their closed
// standard input).
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string // path of its combined standard output and error
	done chan struct{}
	err  error // Wait's result, once done is closed
}

// start runs a binary with args, its output in dir/<name>.log, and stops
// it (SIGTERM to its process group, SIGKILL after 10s) when the test ends.
func start(t *testing.T, dir, name, bin string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = childEnv(dir)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process's group: SIGTERM, then SIGKILL after 10s.
func (p *proc) stop(t *testing.T) {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Logf("%s did not stop on SIGTERM within 10s; SIGKILL", p.name)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// A stand-in left behind by a SIGKILLed worker is in the same group.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// output is what the process wrote so far (its last 8 KiB).
func (p *proc) output() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 8<<10 {
		b = append([]byte("...\n"), b[len(b)-8<<10:]...)
	}
	return string(b)
}
