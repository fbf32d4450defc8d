package workflows_test

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"go.temporal.io/sdk/worker"

	"github.com/hybridflow/hybridflow/internal/histories"
	"github.com/hybridflow/hybridflow/workflows"
)

// TestReplayRecordedHistories replays every recorded history below
// testdata/histories, each against the current code of the workflow type
// it is a run of. The histories are real runs on the Temporal dev server
// with the simulated world, written by the tests that make them when
// HYBRIDFLOW_RECORD_HISTORIES is set:
//
//	setup-*.json             Setup (internal/e2e): dedicated mode with HCW auth servers,
//	                         the legacy path (availability address space, 21Vianet),
//	                         worker restarts, pause+retry, pause+abort, a blocked legacy path
//	rollout/                 Rollout paging an inventory file and continuing as new (workflows' TestRolloutPagedDevServer)
//	renewal/                 Renewal: a scheduled renewal (internal/renewaltest), a renewal
//	                         that waits for a setup's tenant lock (internal/e2e)
//	verify/                  VerifyInventory started by a verify schedule (starter)
//	lync/                    LyncIntegration: converges, pause+retry, pause+abort with compensation (internal/e2e)
//	lock/                    TenantLock held by a setup and by the renewal that waited for it (internal/e2e)
//	probe/                   Probe of every queue of a world (internal/e2e)
//
// setup-legacy-21vianet was recorded before setup refused the legacy path
// in 21Vianet and is kept, not re-recorded, for setups still running.
// v2-setup-locked-* are version 2 runs that take the tenant's lock
// (changeTenantLock) and release it by cancelling; the other v2- files
// predate the lock. lock/lock-released-by-cancel is such a run's lock.
// internal/workerhost's TestEveryWorkflowTypeHasRecordedHistory fails when
// a registered workflow type has no history here.
//
// A change to a workflow that would break a running workflow on upgrade
// (activities scheduled in another order, a step added or removed, a timer
// or search-attribute upsert moved) makes its replay fail with a
// non-determinism error. Such a change must be guarded with
// workflow.GetVersion, and the histories of both branches kept. The SDK
// compares commands by kind and activity type, not by input: calling one
// activity type with its arguments in another order (the ACS and evoSTS
// auth servers, say) replays without complaint, so such changes need the
// same care without this test's help.
//
// A vN- file is a run recorded at version N of its workflow type
// (versionShapes below: which version of each of the type's versioned
// changes that is; v0-: before the first change) and must replay through
// those branches; a file without a prefix is at the current version.
// Refresh every history with
//
//	make histories
//
// (it runs the recording tests with HYBRIDFLOW_RECORD_HISTORIES=1, then
// this test). Before refreshing after a versioned change, append its
// shape to versionShapes and rename the files the new recordings replace
// to the old version's prefix (setup-x.json to v2-setup-x.json); keep
// them, and every other vN- file, while a workflow started at that
// version may still run; then commit testdata/histories.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := histories.Load(filepath.Join("testdata", "histories"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded histories in testdata/histories (see this test's comment to record them)")
	}
	byShape := map[string]map[int][]string{}
	for _, f := range files {
		t.Run(f.Name, func(t *testing.T) {
			wf, ok := replayable[f.Type]
			if !ok {
				t.Fatalf("history %s is a run of workflow type %q, which this test does not know: add it to replayable", f.Path, f.Type)
			}
			if shapes, ok := versionShapes[f.Type]; ok {
				n := len(shapes) - 1
				if v, ok := versionPrefix(filepath.Base(f.Path)); ok {
					n = v
				}
				if n >= len(shapes) {
					t.Fatalf("history %s: %s has versions v0 to v%d, not v%d", f.Path, f.Type, len(shapes)-1, n)
				}
				vs, err := histories.Versions(f.History)
				if err != nil {
					t.Fatalf("%s: %v", f.Path, err)
				}
				for _, c := range shapes[n] {
					if got := vs[c.id]; got != c.version {
						t.Fatalf("history %s (v%d of %s): %s version %d; want %d (0: no marker)", f.Path, n, f.Type, c.id, got, c.version)
					}
				}
				if byShape[f.Type] == nil {
					byShape[f.Type] = map[int][]string{}
				}
				byShape[f.Type][n] = append(byShape[f.Type][n], f.Name)
			} else if _, ok := versionPrefix(filepath.Base(f.Path)); ok {
				t.Fatalf("history %s has a version prefix, but %s has no versioned change in versionShapes", f.Path, f.Type)
			}
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflow(wf)
			if err := r.ReplayWorkflowHistory(nil, f.History); err != nil {
				t.Fatalf("replaying %s (%s) against the current workflow code: %v", f.Path, f.Type, err)
			}
		})
	}
	// Each version of a workflow type must stay covered.
	types := make([]string, 0, len(versionShapes))
	for typ := range versionShapes {
		types = append(types, typ)
	}
	sort.Strings(types)
	for _, typ := range types {
		for n := range versionShapes[typ] {
			if len(byShape[typ][n]) == 0 {
				t.Errorf("no recorded %s history at v%d (have %v)", typ, n, byShape[typ])
			}
		}
	}
}

// replayable is every workflow type by the name Temporal registers it
// under (the function's name).
var replayable = map[string]any{
	"Probe":           workflows.Probe,
	"Setup":           workflows.Setup,
	"Rollout":         workflows.Rollout,
	"LyncIntegration": workflows.LyncIntegration,
	"Renewal":         workflows.Renewal,
	"TenantLock":      workflows.TenantLock,
	"VerifyInventory": workflows.VerifyInventory,
}

// change is a workflow.GetVersion change ID and the version a run took.
type change struct {
	id      string
	version int
}

// versionShapes lists, per workflow type, the versions of its versioned
// changes a run takes, oldest first: a vN- file must carry shape N, a file
// without a prefix the last one (what new runs take). Setup's v0- files
// were recorded before "setup-local-cloud-steps", v1- with the cloud steps
// as local activities and HybridflowStep published on state changes only,
// v2- with a step's on-prem writes in one activity, started with
// SetupStartAttributes, v3- with the lock taken without its own marker and
// released by the run's close, the current ones (4) with the planned steps
// run as a step graph. Renewal's v0- file was recorded
// before "renewal-mode-rule-and-server-check" (mode detected inline, no
// server check before publishing), its v1- files before
// "renewal-decision-in-local-activity" (deciding in workflow code).
// Rollout's v0- files before "inventory-content-hash" (no hash kept or
// sent), its v1- files before "inventory-no-empty-handover" (the second
// run continues as new with no tenant left). LyncIntegration's v0- files before "lync-keep-writes-on-cancel"
// (writes cancelled with the run). VerifyInventory's v0- file before
// "inventory-no-empty-handover". A new versioned change appends a shape (and the files it
// replaces are renamed to the old shape's prefix).
var versionShapes = map[string][][]change{
	"Setup": {
		{{"setup-local-cloud-steps", 0}},
		{{"setup-local-cloud-steps", 1}},
		{{"setup-local-cloud-steps", 2}},
		{{"setup-local-cloud-steps", 3}},
		{{"setup-local-cloud-steps", 4}},
	},
	"Renewal": {
		{{"renewal-mode-rule-and-server-check", 0}, {"renewal-decision-in-local-activity", 0}},
		{{"renewal-mode-rule-and-server-check", 1}, {"renewal-decision-in-local-activity", 0}},
		{{"renewal-mode-rule-and-server-check", 1}, {"renewal-decision-in-local-activity", 1}},
	},
	"Rollout": {
		{{"inventory-content-hash", 0}, {"inventory-no-empty-handover", 0}},
		{{"inventory-content-hash", 1}, {"inventory-no-empty-handover", 0}},
		{{"inventory-content-hash", 1}, {"inventory-no-empty-handover", 1}},
	},
	"LyncIntegration": {
		{{"lync-keep-writes-on-cancel", 0}},
		{{"lync-keep-writes-on-cancel", 1}},
	},
	"VerifyInventory": {
		{{"inventory-no-empty-handover", 0}},
		{{"inventory-no-empty-handover", 1}},
	},
}

// versionPrefix reads the N of a "vN-" file name.
func versionPrefix(base string) (int, bool) {
	v, _, ok := strings.Cut(base, "-")
	if !ok || len(v) < 2 || v[0] != 'v' {
		return 0, false
	}
	var n int
	if _, err := fmt.Sscanf(v[1:], "%d", &n); err != nil || fmt.Sprint(n) != v[1:] {
		return 0, false
	}
	return n, true
}

// changeVersions reads the workflow.GetVersion markers of a recorded history.
func changeVersions(t *testing.T, file string) map[string]int {
	t.Helper()
	f, err := histories.Read(file)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := histories.Versions(f.History)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return vs
}
