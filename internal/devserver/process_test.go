package devserver

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/logging"
)

// A SIGKILLed server restarted on the same port and SQLite file still has
// the workflow started before the crash, and a client dialled before the
// crash reconnects by itself.
func TestProcessKilledAndRestartedKeepsState(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts the Temporal dev server twice")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := StartProcess(ctx, ProcessOptions{DBFile: filepath.Join(t.TempDir(), "temporal.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Stop() }()
	c, err := client.Dial(client.Options{HostPort: p.HostPort(), Namespace: "default", Logger: logging.NewTemporal(zap.NewNop())})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// No worker polls this queue: the workflow just stays open.
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "devserver-restart", TaskQueue: "nobody"}, "NoSuchWorkflow")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeWorkflowExecution(ctx, run.GetID(), ""); err == nil {
		t.Fatal("describe succeeded while the server was killed")
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribeWorkflowExecution(ctx, run.GetID(), "")
	if err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	if got := d.GetWorkflowExecutionInfo().GetExecution().GetRunId(); got != run.GetRunID() {
		t.Fatalf("run %s after the restart, want %s", got, run.GetRunID())
	}
	if err := p.Start(ctx); err == nil {
		t.Fatal("a second Start of a running server succeeded")
	}
}
