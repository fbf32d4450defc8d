package devserver

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
)

// ForTest starts a dev server of its own for one test (skipped under
// -short) and a client for the test's side (starting workflows, queries,
// updates) that logs nothing: the dev server logs every activity at debug.
// Both stop when the test ends.
func ForTest(t testing.TB, ctx context.Context) (*testsuite.DevServer, client.Client) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: starts the Temporal dev server")
	}
	srv, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	c, err := client.Dial(client.Options{HostPort: srv.FrontendHostPort(), Namespace: "default",
		Logger: tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return srv, c
}
