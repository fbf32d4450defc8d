package e2e_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/devserver"
	"github.com/hybridflow/hybridflow/internal/logging"
)

// The package shares one real Temporal dev server (bin/temporal, in
// memory), started on first use and stopped after the last test, and one
// build of the PowerShell stand-in (internal/sim/cmd/hybridflow-pwsh) that
// every site's shell.command names. Every test serves its own world from
// its own stand-alone simulator, and terminates its workflows when it
// ends, so tests do not see each other's tenants.
var shared struct {
	once sync.Once
	srv  *testsuite.DevServer
	c    client.Client
	err  error
}

// standIn is the built PowerShell stand-in.
var standIn struct {
	path string
	err  error
}

func TestMain(m *testing.M) {
	flag.Parse()
	var dir string
	if !testing.Short() {
		dir, standIn.path, standIn.err = buildStandIn()
	}
	code := m.Run()
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
	if shared.c != nil {
		shared.c.Close()
	}
	if shared.srv != nil {
		_ = shared.srv.Stop()
	}
	os.Exit(code)
}

// devServer returns the shared dev server and a client for the test side
// (starting workflows, updates, histories), or skips in -short mode.
func devServer(t *testing.T) (*testsuite.DevServer, client.Client) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: starts the Temporal dev server")
	}
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		began := time.Now()
		shared.srv, shared.err = devserver.Start(ctx, devserver.Options{})
		if shared.err != nil {
			return
		}
		shared.c, shared.err = client.Dial(client.Options{HostPort: shared.srv.FrontendHostPort(), Namespace: "default", Identity: "hybridflow-e2e-test",
			Logger: logging.NewTemporal(zap.NewNop())})
		fmt.Fprintf(os.Stderr, "e2e: Temporal dev server at %s started in %s\n", shared.srv.FrontendHostPort(), time.Since(began).Round(time.Millisecond))
	})
	if shared.err != nil {
		t.Fatalf("dev server: %v", shared.err)
	}
	return shared.srv, shared.c
}

// buildStandIn builds hybridflow-pwsh into a new temporary directory, as
// `make build` puts it in bin/ for the demo.
func buildStandIn() (dir, path string, err error) {
	began := time.Now()
	root, err := devserver.RepoRoot()
	if err != nil {
		return "", "", err
	}
	dir, err = os.MkdirTemp("", "hybridflow-e2e-pwsh-")
	if err != nil {
		return "", "", err
	}
	path = filepath.Join(dir, "hybridflow-pwsh")
	if runtime.GOOS == "windows" {
		path += ".exe"
	}
	cmd := exec.Command("go", "build", "-o", path, "./internal/sim/cmd/hybridflow-pwsh")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return dir, "", fmt.Errorf("go build hybridflow-pwsh: %v\n%s", err, out)
	}
	fmt.Fprintf(os.Stderr, "e2e: PowerShell stand-in built in %s\n", time.Since(began).Round(time.Millisecond))
	return dir, path, nil
}

// pwshPath is the built stand-in, or fails the test.
func pwshPath(t *testing.T) string {
	t.Helper()
	if standIn.err != nil || standIn.path == "" {
		t.Fatalf("PowerShell stand-in: %v", standIn.err)
	}
	return standIn.path
}
