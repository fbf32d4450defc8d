package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/hybridflow/hybridflow/internal/certs"
	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/workflows"
)

// TestOperatorSafetyOnDevServer runs the operator-safety commands against
// the real dev server and a simulated worker on the demo world: every
// --dry-run leaves the world dump byte-identical and sends no write; a
// paused setup survives a declined or unconfirmed abort and is undone
// only after "y"; a renewal schedule survives "n" and goes after "y".
func TestOperatorSafetyOnDevServer(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts the Temporal dev server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	world, err := sim.Load(filepath.Join("..", "configs", "sim", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	srv, c := simWorker(t, ctx, world, true, "safety")
	addr := "--address=" + srv.FrontendHostPort()
	cli := func(stdin io.Reader, args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := runIO(ctx, append(args, addr), stdin, &out, &errb, func(string) string { return "" })
		return code, out.String(), errb.String()
	}
	noTTY := func() io.Reader { return strings.NewReader("") }
	const (
		demo1 = "11111111-1111-4111-8111-000000000001"
		demo6 = "11111111-1111-4111-8111-000000000006"
	)

	t.Run("dry runs write nothing", func(t *testing.T) {
		before, err := world.Dump()
		if err != nil {
			t.Fatal(err)
		}
		writesBefore := world.Stats().ByTenant[demo1]
		runs := []struct {
			args []string
			want string
		}{
			{[]string{"setup", "-f", demoInventory, "-t", demo1, "--dry-run"}, "step(s) would write"},
			{[]string{"resume", "-f", demoInventory, "-t", demo1, "--dry-run"}, "step(s) would write"},
			{[]string{"migrate", "-f", demoInventory, "-t", demo1, "--dry-run"}, "remove-legacy-key"},
			{[]string{"migrate", "-f", demoInventory, "-t", demo1, "--dry-run", "--keep-legacy-key"}, "skipped by request"},
			{[]string{"renew", "now", "-f", demoInventory, "-t", demo1, "--dry-run"}, "dry run: a renewal now would"},
			{[]string{"renew", "schedule", "-f", demoInventory, "--dry-run"}, "would-create"},
			{[]string{"rollout", "-f", demoInventory, "--dry-run", "--watch"}, "hybridflow/rollout/inventory-demo-plan"},
		}
		for _, r := range runs {
			code, out, errOut := cli(noTTY(), r.args...)
			t.Logf("%s:\n%s", strings.Join(r.args, " "), out)
			if code != 0 || !strings.Contains(out, r.want) {
				t.Fatalf("%v: exit %d, want %q in:\n%s%s", r.args, code, r.want, out, errOut)
			}
		}
		after, err := world.Dump()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Fatalf("a dry run changed the world (%d bytes before, %d after)", len(before), len(after))
		}
		var wb int64
		if writesBefore != nil {
			wb = writesBefore.Writes
		}
		if w := world.Stats().ByTenant[demo1]; w == nil || w.Writes != wb || w.ShellRoundTrips == 0 {
			t.Fatalf("tenant counters after the dry runs: %+v (writes before %d); want reads and no write", w, wb)
		}
		// Nothing was started under the setup's or the real rollout's own
		// ID, and no schedule exists.
		if _, err := c.DescribeWorkflowExecution(ctx, workflows.RolloutWorkflowID(rolloutName(demoInventory)), ""); !isNotFound(err) {
			t.Fatalf("rollout --dry-run ran under the real rollout's ID: %v", err)
		}
		if _, err := c.DescribeWorkflowExecution(ctx, workflows.SetupWorkflowID(demo1), ""); !isNotFound(err) {
			t.Fatalf("a dry run started the setup workflow: %v", err)
		}
		if _, err := c.ScheduleClient().GetHandle(ctx, workflows.RenewalScheduleID(demo1)).Describe(ctx); !isNotFound(err) {
			t.Fatalf("renew schedule --dry-run created a schedule: %v", err)
		}
	})

	// Microsoft's reset of the first-party service principal's keys: the
	// dry run shows every key going; on a terminal the question counts and
	// names each key the plan drops (shared/reference/hybrid-facts.md
	// "-ResetFirstPartyServicePrincipalKeyCredentials": all keys, whatever
	// their origin); "n" writes nothing and starts no setup.
	t.Run("reset asks naming the keys", func(t *testing.T) {
		const demo3 = "11111111-1111-4111-8111-000000000003" // a partner's key on the first-party SP
		var tps []string
		world.View(demo3, func(tn *sim.Tenant) {
			for _, sp := range tn.Entra.ServicePrincipals {
				if sp.AppID == cloud.FirstPartyAppID {
					for _, k := range sp.KeyCredentials {
						tps = append(tps, certs.Thumbprint(k.Key))
					}
				}
			}
		})
		if len(tps) == 0 {
			t.Fatal("demo 3 has no key on the first-party service principal")
		}
		before, err := world.Dump()
		if err != nil {
			t.Fatal(err)
		}
		code, out, errOut := cli(noTTY(), "migrate", "-f", demoInventory, "-t", demo3, "--reset-first-party-keys", "--dry-run")
		if code != 0 || !strings.Contains(out, "every key of the Exchange Online first-party service principal goes") {
			t.Fatalf("reset --dry-run: exit %d\n%s%s", code, out, errOut)
		}
		code, _, errOut = cli(answeredTTY(t, ptr("n")), "migrate", "-f", demoInventory, "-t", demo3, "--reset-first-party-keys")
		t.Logf("question:\n%s", errOut)
		if code == 0 || !strings.Contains(errOut, errNotConfirmed.Error()) || !strings.Contains(errOut, "other applications' keys included") ||
			!strings.Contains(errOut, fmt.Sprintf("It holds %d key(s) now; all of them would go:", len(tps))) || !strings.Contains(errOut, fmt.Sprintf("Remove all %d key(s)? [y/N]", len(tps))) {
			t.Fatalf("reset answered n: exit %d\n%s", code, errOut)
		}
		for _, tp := range tps {
			if !strings.Contains(errOut, "\n  "+tp+" (") {
				t.Errorf("the question does not name key %s", tp)
			}
		}
		after, err := world.Dump()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Fatal("asking about the reset changed the world")
		}
		if _, err := c.DescribeWorkflowExecution(ctx, workflows.SetupWorkflowID(demo3), ""); !isNotFound(err) {
			t.Fatalf("a declined reset started the setup: %v", err)
		}
	})

	t.Run("abort asks first", func(t *testing.T) {
		if code, out, errOut := cli(noTTY(), "setup", "-f", demoInventory, "-t", demo6, "--no-wait"); code != 0 {
			t.Fatalf("setup: %d %s%s", code, out, errOut)
		}
		id := workflows.SetupWorkflowID(demo6)
		paused := func() bool {
			st, err := querySetup(ctx, c, id)
			return err == nil && st.Paused != nil
		}
		for deadline := time.Now().Add(90 * time.Second); !paused(); time.Sleep(300 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("demo 6 never paused")
			}
		}
		// Running `retry` again is the same decision: with demo 6's
		// cmdlets slowed down, the second run (as after a timeout) finds
		// no open pause, is answered with the first run's step, and the
		// history holds one retry. A fresh Update ID per run would get
		// "the workflow is not paused".
		faults := world.Faults()
		if err := world.AddFaults([]sim.FaultRule{{Protocol: sim.ProtoShell, Tenant: demo6, Kind: sim.FaultLatency, Latency: 2 * time.Second}}); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			code, out, errOut := cli(noTTY(), "retry", "-t", demo6)
			if code != 0 || !strings.Contains(out, "retry sent to "+demo6+" (step ioc-onprem-to-online)") {
				t.Fatalf("retry run %d: exit %d\n%s%s", i+1, code, out, errOut)
			}
			if st, err := querySetup(ctx, c, id); err != nil || st.Paused != nil {
				t.Fatalf("after retry run %d the setup is paused again already (or the query failed: %v); the test needs the step still running", i+1, err)
			}
		}
		world.SetFaults(faults) // the demo's own: demo 6 fails again
		for deadline := time.Now().Add(90 * time.Second); !paused(); time.Sleep(300 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("demo 6 did not pause again after the retry")
			}
		}
		if n := acceptedUpdates(t, ctx, c, id, workflows.UpdateRetry); n != 1 {
			t.Fatalf("%d retries accepted for two runs of the same retry; want 1", n)
		}
		// Attaching to the paused setup follows it: its steps, the pause
		// and how to go on, exit status 3.
		if code, out, errOut := cli(noTTY(), "setup", "-f", demoInventory, "-t", demo6); code != 3 ||
			!strings.Contains(out, "PAUSED at ioc-onprem-to-online") || !strings.Contains(out, "hybridflow retry -t "+demo6) {
			t.Fatalf("setup attached to the paused run: exit %d\n%s%s", code, out, errOut)
		}
		if code, _, errOut := cli(noTTY(), "abort", "-t", demo6); code == 0 || !strings.Contains(errOut, "--yes") {
			t.Fatalf("abort without a terminal or --yes: exit %d %s", code, errOut)
		}
		if code, _, errOut := cli(answeredTTY(t, ptr("n")), "abort", "-t", demo6); code == 0 || !strings.Contains(errOut, "[y/N]") || !strings.Contains(errOut, errNotConfirmed.Error()) {
			t.Fatalf("abort answered n: exit %d %s", code, errOut)
		}
		// The bulk form lists what it would undo before asking. Visibility
		// may lag the pause by a moment.
		var errOut string
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(300 * time.Millisecond) {
			var code int
			code, _, errOut = cli(answeredTTY(t, ptr("n")), "abort", "--all-paused")
			if code != 0 && strings.Contains(errOut, demo6) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("abort --all-paused answered n: exit %d %s", code, errOut)
			}
		}
		if !strings.Contains(errOut, "Abort 1 paused setup(s)") || !strings.Contains(errOut, errNotConfirmed.Error()) {
			t.Fatalf("bulk abort question: %s", errOut)
		}
		if !paused() {
			t.Fatal("the setup is no longer paused after two declined aborts")
		}
		code, out, errOut := cli(answeredTTY(t, ptr("y")), "abort", "-t", demo6)
		if code != 0 || !strings.Contains(out, "abort sent to "+demo6) {
			t.Fatalf("abort answered y: exit %d %s%s", code, out, errOut)
		}
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(300 * time.Millisecond) {
			d, err := c.DescribeWorkflowExecution(ctx, id, "")
			if err == nil && d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the setup did not end after the confirmed abort: %v", err)
			}
		}
		if st, err := querySetup(ctx, c, id); err != nil || st.State != workflows.StateAborted {
			t.Fatalf("state after abort: %+v %v", st.State, err)
		}
	})

	t.Run("renew delete asks first", func(t *testing.T) {
		if code, out, errOut := cli(noTTY(), "renew", "schedule", "-f", demoInventory, "-t", demo1, "--every", "24h"); code != 0 {
			t.Fatalf("schedule: %d %s%s", code, out, errOut)
		}
		h := c.ScheduleClient().GetHandle(ctx, workflows.RenewalScheduleID(demo1))
		if code, _, errOut := cli(answeredTTY(t, ptr("n")), "renew", "delete", "-t", demo1); code == 0 || !strings.Contains(errOut, errNotConfirmed.Error()) {
			t.Fatalf("delete answered n: exit %d %s", code, errOut)
		}
		if _, err := h.Describe(ctx); err != nil {
			t.Fatalf("the schedule is gone after n: %v", err)
		}
		if code, out, errOut := cli(answeredTTY(t, ptr("y")), "renew", "delete", "-t", demo1); code != 0 || !strings.Contains(out, "deleted ") {
			t.Fatalf("delete answered y: exit %d %s%s", code, out, errOut)
		}
		if _, err := h.Describe(ctx); !isNotFound(err) {
			t.Fatalf("the schedule survived y: %v", err)
		}
	})
}

func isNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}

// acceptedUpdates counts the Updates named name that workflow id accepted.
func acceptedUpdates(t *testing.T, ctx context.Context, c client.Client, id, name string) int {
	t.Helper()
	n := 0
	for _, e := range historyEvents(t, ctx, c, id) {
		if a := e.GetWorkflowExecutionUpdateAcceptedEventAttributes(); a != nil && a.GetAcceptedRequest().GetInput().GetName() == name {
			n++
		}
	}
	return n
}

// historyEvents is the history of workflow id's current run.
func historyEvents(t *testing.T, ctx context.Context, c client.Client, id string) []*historypb.HistoryEvent {
	t.Helper()
	var out []*historypb.HistoryEvent
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s: %v", id, err)
		}
		out = append(out, e)
	}
	return out
}
