package workflows_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"
	"gopkg.in/yaml.v3"

	historypb "go.temporal.io/api/history/v1"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/devserver"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/workflows"
)

// recordHistoriesEnv makes TestRolloutPagedDevServer write the runs it
// makes to testdata/histories/rollout (the replay test replays them).
const recordHistoriesEnv = "HYBRIDFLOW_RECORD_HISTORIES"

// instantSetup stands in for Setup (under its name) where only the
// rollout is under test: every tenant is verified at once.
func instantSetup(_ workflow.Context, in workflows.SetupInput) (workflows.SetupResult, error) {
	return workflows.SetupResult{TenantID: in.Target.TenantID, State: workflows.StateVerified}, nil
}

// writeInventoryFile writes n generated tenants as an inventory file in dir.
func writeInventoryFile(t *testing.T, dir string, n int) (string, []config.Tenant) {
	t.Helper()
	w, _ := generatedWorld(t, n)
	tenants := w.Inventory().Tenants
	data, err := yaml.Marshal(config.Inventory{Tenants: tenants})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "inventory.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, tenants
}

// TestRolloutPagedDevServer runs a rollout that reads its inventory by
// file reference on the real dev server: 120 tenants, pages of 100, a
// continue-as-new every 60 starts. Every tenant is started once, the
// second run carries the file's hash, and it ends the rollout: its share's
// last start was the inventory's last tenant, so there is no third, empty
// run (v1- recordings: the run before changeNoEmptyHandover that continued
// as new with nothing left). With
// HYBRIDFLOW_RECORD_HISTORIES set, the first two runs' histories are
// written to testdata/histories/rollout for the replay test (rename the
// files they replace to the older version's vN- prefix first).
func TestRolloutPagedDevServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, c := devserver.ForTest(t, ctx)

	dir := t.TempDir()
	path, tenants := writeInventoryFile(t, dir, 120)
	w := worker.New(c, temporalx.CloudQueue, worker.Options{})
	w.RegisterWorkflow(workflows.Rollout)
	w.RegisterWorkflowWithOptions(instantSetup, workflow.RegisterOptions{Name: "Setup"})
	w.RegisterActivity(&activities.Inventory{Dir: dir})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	in := workflows.RolloutInput{Name: "paged", InventoryPath: path, Concurrency: 20, ContinueAsNewEvery: 60}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.RolloutWorkflowID("paged"), TaskQueue: temporalx.CloudQueue},
		workflows.Rollout, in)
	if err != nil {
		t.Fatal(err)
	}
	firstRunID := run.GetRunID() // Get follows the runs and moves GetRunID on
	var p workflows.RolloutProgress
	if err := run.Get(ctx, &p); err != nil {
		t.Fatal(err)
	}
	if p.Total != len(tenants) || p.Counts[workflows.StateVerified] != len(tenants) || p.ContinuedAsNew != 1 {
		t.Fatalf("progress %+v; want %d verified over 2 runs", p, len(tenants))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)

	// The runs, first to last, by following each run's continued-as-new link.
	var runs []*historypb.History
	runID := firstRunID
	for len(runs) < 3 { // one more than wanted, to see an extra run
		h := history(ctx, t, c, run.GetID(), runID)
		runs = append(runs, h)
		last := h.Events[len(h.Events)-1]
		if a := last.GetWorkflowExecutionContinuedAsNewEventAttributes(); a != nil {
			runID = a.GetNewExecutionRunId()
			continue
		}
		break
	}
	if len(runs) != 2 {
		last := runs[len(runs)-1].Events
		t.Fatalf("%d runs; want 2 (last event of the last: %v)", len(runs), last[len(last)-1].GetEventType())
	}
	// The second run starts with the hash the first one read.
	for i, h := range runs[1:] {
		var in workflows.RolloutInput
		if err := converter.GetDefaultDataConverter().FromPayloads(h.Events[0].GetWorkflowExecutionStartedEventAttributes().GetInput(), &in); err != nil {
			t.Fatal(err)
		}
		if in.Carry == nil || in.Carry.InventorySHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("run %d carries inventory hash %+v; want %x", i+2, in.Carry, sum)
		}
	}
	if os.Getenv(recordHistoriesEnv) != "" {
		for i, name := range []string{"rollout-paged-first-run", "rollout-paged-continued-run"} {
			recordRolloutHistory(t, runs[i], name)
		}
	}
}

// history reads one run's full history.
func history(ctx context.Context, t *testing.T, c client.Client, id, runID string) *historypb.History {
	t.Helper()
	it := c.GetWorkflowHistory(ctx, id, runID, false, 0)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		h.Events = append(h.Events, ev)
	}
	return h
}

// recordRolloutHistory writes testdata/histories/rollout/<name>.json.
func recordRolloutHistory(t *testing.T, h *historypb.History, name string) {
	t.Helper()
	raw, err := protojson.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "histories", "rollout", name+".json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(buf.Bytes(), '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %s (%d bytes)", path, buf.Len())
}

// currentInventoryHashShape is the version of "inventory-content-hash" new
// rollouts take.
const currentInventoryHashShape = 1

// TestReplayRecordedRolloutHistories replays testdata/histories/rollout:
// rollouts that page through an inventory file on the dev server, recorded
// by TestRolloutPagedDevServer (the first run, which reads the first page
// and continues as new, and the second, which starts from the carried
// state). The v0- files were recorded before "inventory-content-hash"
// (no hash kept or sent) and replay through that branch.
func TestReplayRecordedRolloutHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "rollout", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	versions := map[int]int{}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			want := currentInventoryHashShape
			if v, _, ok := strings.Cut(filepath.Base(f), "-"); ok && len(v) == 2 && v[0] == 'v' && v[1] >= '0' && v[1] <= '9' {
				want = int(v[1] - '0')
			}
			if got := changeVersions(t, f)["inventory-content-hash"]; got != want {
				t.Fatalf("history %s: inventory-content-hash version %d; want %d (0: no marker)", f, got, want)
			}
			versions[want]++
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflow(workflows.Rollout)
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatalf("replaying %s against the current workflow code: %v", f, err)
			}
		})
	}
	if versions[0] < 2 || versions[currentInventoryHashShape] < 2 {
		t.Fatalf("want a first and a continued run of each version of inventory-content-hash in testdata/histories/rollout; have %v by version", versions)
	}
}

// pagedRolloutEnv is a test environment for rollouts over an inventory
// file in dir, with Setup replaced by instantSetup.
func pagedRolloutEnv(dir string) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(workflows.Rollout)
	env.RegisterWorkflowWithOptions(instantSetup, workflow.RegisterOptions{Name: "Setup"})
	env.RegisterActivity(&activities.Inventory{Dir: dir})
	env.SetTestTimeout(time.Minute)
	return env
}

// rewriteAfterFirstPage changes the inventory file (one tenant's display
// name) once the first page has been read.
func rewriteAfterFirstPage(t *testing.T, env *testsuite.TestWorkflowEnvironment, path string) {
	done := false
	env.SetOnActivityCompletedListener(func(info *activity.Info, _ converter.EncodedValue, err error) {
		if done || info.ActivityType.Name != "LoadInventoryPage" || err != nil {
			return
		}
		done = true
		data, err := os.ReadFile(path)
		if err != nil {
			t.Error(err)
			return
		}
		i := bytes.Index(data, []byte("display_name: "))
		if i < 0 {
			t.Error("no display_name in the inventory")
			return
		}
		i += len("display_name: ")
		changed := append(append(append([]byte{}, data[:i]...), "Renamed "...), data[i:]...)
		if err := os.WriteFile(path, changed, 0o600); err != nil {
			t.Error(err)
		}
	})
}

// inventoryChanged reports whether err is the rollout's refusal of a
// changed inventory, naming both hashes' prefixes.
func inventoryChanged(t *testing.T, err error, before, after []byte) {
	t.Helper()
	found := false
	for e := err; e != nil; e = errors.Unwrap(e) {
		var app *temporal.ApplicationError
		if errors.As(e, &app) && app.Type() == activities.ErrInventoryChanged && app.NonRetryable() {
			found = true
			break
		}
	}
	if !found {
		t.Fatalf("rollout error %v; want a non-retryable %s", err, activities.ErrInventoryChanged)
	}
	b, a := sha256.Sum256(before), sha256.Sum256(after)
	for _, h := range [][32]byte{b, a} {
		if p := hex.EncodeToString(h[:])[:12]; !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not name hash prefix %s", err, p)
		}
	}
	t.Logf("refused: %v", err)
}

// TestRolloutRefusesChangedInventory: a rollout of 150 tenants reads its
// first page (100), the file changes, and the read of the second page is
// refused with InventoryChanged naming both hashes; the same rollout over
// the unchanged file starts every tenant.
func TestRolloutRefusesChangedInventory(t *testing.T) {
	dir := t.TempDir()
	path, tenants := writeInventoryFile(t, dir, 150)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	in := workflows.RolloutInput{Name: "changed", InventoryPath: path, Concurrency: 25}

	env := pagedRolloutEnv(dir)
	env.ExecuteWorkflow(workflows.Rollout, in)
	var p workflows.RolloutProgress
	if err := env.GetWorkflowResult(&p); err != nil {
		t.Fatalf("unchanged file: %v", err)
	}
	if p.Counts[workflows.StateVerified] != len(tenants) {
		t.Fatalf("unchanged file: %+v; want %d verified", p.Counts, len(tenants))
	}

	env = pagedRolloutEnv(dir)
	rewriteAfterFirstPage(t, env, path)
	env.ExecuteWorkflow(workflows.Rollout, in)
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(before, after) {
		t.Fatal("the file was not changed")
	}
	inventoryChanged(t, env.GetWorkflowError(), before, after)
}

// TestRolloutRefusesInventoryChangedAcrossContinueAsNew: the hash is
// carried over continue-as-new, so the next run refuses a file that
// changed between runs.
func TestRolloutRefusesInventoryChangedAcrossContinueAsNew(t *testing.T) {
	dir := t.TempDir()
	path, _ := writeInventoryFile(t, dir, 120)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	in := workflows.RolloutInput{Name: "carried", InventoryPath: path, Concurrency: 25, ContinueAsNewEvery: 50}
	env := pagedRolloutEnv(dir)
	env.ExecuteWorkflow(workflows.Rollout, in)
	cerr, ok := asContinueAsNew(env.GetWorkflowError())
	if !ok {
		t.Fatalf("first run ended with %v; want continue-as-new", env.GetWorkflowError())
	}
	if err := cerr.Get(&in); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(before)
	if in.Carry == nil || in.Carry.InventorySHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("carried state %+v; want the file's hash %x", in.Carry, sum)
	}
	after := append(append([]byte{}, before...), "\n# edited between runs\n"...)
	if err := os.WriteFile(path, after, 0o600); err != nil {
		t.Fatal(err)
	}
	env = pagedRolloutEnv(dir)
	env.ExecuteWorkflow(workflows.Rollout, in)
	inventoryChanged(t, env.GetWorkflowError(), before, after)
}
