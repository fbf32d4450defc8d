package workerhost

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/codec"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/devserver"
	"github.com/hybridflow/hybridflow/internal/logging"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/workflows"
)

// directOnPrem is what someone with access to the namespace but not to the
// codec keys could run: their own workflow, on their own worker, that
// schedules an on-prem activity of ours on a site's queue with an input
// of their choosing.
func directOnPrem(ctx workflow.Context, t activities.Target) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           temporalx.OnPremQueue(t.Site),
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, MaximumAttempts: 3},
	})
	return workflow.ExecuteActivity(ctx, "DiscoverOnPrem", t).Get(ctx, nil)
}

// failureType is the type of the first application error in err's chain
// that is not the SDK's own wrapping, and whether it is non-retryable.
func failureType(err error) (string, bool) {
	for e := err; e != nil; e = errors.Unwrap(e) {
		var app *temporal.ApplicationError
		if errors.As(e, &app) && app.Type() != "wrapError" {
			return app.Type(), app.NonRetryable()
		}
	}
	return "", false
}

// TestWorkerRequiresEncryption runs the worker as hybridflow-worker does
// (temporalx.Dial with the codec, workerhost.ForBackend) with
// temporal.require_encryption on, against the real dev server: a workflow
// started with sealed input runs; the same workflow started by a client
// without the codec fails at once, non-retryably, with
// PlaintextPayloadRefused; and an on-prem activity scheduled with a plain
// input by a workflow of someone else's worker fails on its first
// attempt, before any cmdlet reaches the site, while the same workflow
// with a sealed input reaches it.
func TestWorkerRequiresEncryption(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts the Temporal dev server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Stop() }()

	k := make([]byte, codec.KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "k1.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(k)), 0o600); err != nil {
		t.Fatal(err)
	}
	noEnv := func(string) string { return "" }
	temporalCfg := func(required bool) config.TemporalConfig {
		return config.TemporalConfig{Address: srv.FrontendHostPort(), Namespace: "default", RequireEncryption: required,
			Codec: &config.CodecConfig{Active: "k1", Keys: []config.CodecKey{{ID: "k1", Key: "file:" + keyFile}}, Required: required}}
	}
	dial := func(cfg config.TemporalConfig) client.Client {
		c, err := temporalx.Dial(ctx, cfg, zap.NewNop(), noEnv)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	strict := dial(temporalCfg(true))  // the worker's connection
	sealed := dial(temporalCfg(false)) // an operator's CLI: the keys, not strict
	plain, err := client.Dial(client.Options{HostPort: srv.FrontendHostPort(), Namespace: "default", Logger: logging.NewTemporal(zap.NewNop())})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()

	w, err := sim.Load("../../configs/sim/small.yaml")
	if err != nil {
		t.Fatal(err)
	}
	be, err := backend.NewSimulated(ctx, w, zap.NewNop(), backend.SimOptions{DirectShell: true})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	tn := w.Tenants[0]
	roles := []config.Role{{Kind: config.RoleCloud}, {Kind: config.RoleOnPrem, Site: tn.Site}}
	h, err := Start(strict, roles, ForBackend(be, "strict-worker"), zap.NewNop(), Options{Identity: "strict-worker", StopTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()

	probe := workflows.ProbeInput{Queues: []string{temporalx.CloudQueue}}
	start := func(c client.Client, id, queue string, wf any, arg any) client.WorkflowRun {
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue}, wf, arg)
		if err != nil {
			t.Fatal(err)
		}
		return run
	}
	var out []workflows.ProbeOutcome
	if err := start(sealed, "probe-sealed", temporalx.CloudQueue, workflows.Probe, probe).Get(ctx, &out); err != nil || len(out) != 1 || out[0].Result == nil {
		t.Fatalf("probe with a sealed input: %+v, %v", out, err)
	}
	err = start(plain, "probe-plain", temporalx.CloudQueue, workflows.Probe, probe).Get(ctx, &out)
	if typ, final := failureType(err); typ != codec.PlaintextErrorType || !final {
		t.Fatalf("probe with a plain input: %v (type %q, non-retryable %v); want a non-retryable %s", err, typ, final, codec.PlaintextErrorType)
	}
	t.Logf("plain workflow input: %v", err)

	// Someone else's workflows, on their own workers: one without the
	// keys, one with them.
	target := activities.Target{TenantID: tn.ID, Cloud: tn.Cloud, Site: tn.Site}
	for _, c := range []struct {
		name   string
		client client.Client
	}{{"plain", plain}, {"sealed", sealed}} {
		wk := worker.New(c.client, "direct-"+c.name, worker.Options{})
		wk.RegisterWorkflow(directOnPrem)
		if err := wk.Start(); err != nil {
			t.Fatal(err)
		}
		defer wk.Stop()
	}
	shell := func() int64 { return w.Stats().ShellRoundTrips }
	before := shell()
	run := start(plain, "direct-plain", "direct-plain", directOnPrem, target)
	err = run.Get(ctx, nil)
	if typ, final := failureType(err); typ != codec.PlaintextErrorType || !final {
		t.Fatalf("on-prem activity with a plain input: %v (type %q, non-retryable %v); want a non-retryable %s", err, typ, final, codec.PlaintextErrorType)
	}
	attempts := 0
	it := plain.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil {
			attempts = int(a.GetAttempt())
		}
	}
	if attempts != 1 || shell() != before {
		t.Fatalf("plain activity input: %d attempts (want 1 of the 3 allowed), %d cmdlet round trips (want 0)", attempts, shell()-before)
	}
	t.Logf("plain activity input, attempt %d: %v", attempts, err)
	if err := start(sealed, "direct-sealed", "direct-sealed", directOnPrem, target).Get(ctx, nil); err != nil {
		t.Fatalf("on-prem activity with a sealed input: %v", err)
	}
	if shell() == before {
		t.Fatal("the sealed input reached no cmdlet: the round-trip count proves nothing")
	}
}
