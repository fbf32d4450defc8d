package e2e_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/devserver"
	"github.com/hybridflow/hybridflow/internal/logging"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// The package shares one real Temporal dev server (bin/temporal, in
// memory), started on first use and stopped after the last test. Every
// test serves its own simulated world, and terminates its workflows when
// it ends, so tests do not see each other's tenants.
var shared struct {
	once sync.Once
	srv  *testsuite.DevServer
	c    client.Client
	err  error
}

func TestMain(m *testing.M) {
	// The simulated PowerShell hosts are this test binary re-run as a relay.
	sim.MaybeRunHost()
	code := m.Run()
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
