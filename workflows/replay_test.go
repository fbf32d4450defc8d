package workflows_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"

	"github.com/hybridflow/hybridflow/workflows"
)

// TestReplayRecordedHistories replays every recorded history in
// testdata/histories against the current workflow code. The histories are
// real runs on the Temporal dev server with the simulated world, recorded
// by the end-to-end tests (internal/e2e):
//
//	setup-dedicated-half-configured    dedicated mode, HCW auth servers, legacy key removed
//	setup-legacy-availability-gcchigh  legacy path (an Exchange 2013 server), availability address space
//	setup-legacy-21vianet              legacy first-party path in 21Vianet (recorded before setup refused that path there; kept for setups still running, not re-recorded)
//	setup-worker-restarts              worker stopped, then killed, mid-write; killed on a verification timer
//	setup-pause-retry                  a step pauses for an operator, who retries it
//	setup-pause-abort                  a step pauses, the operator aborts, compensation runs
//	setup-legacy-blocked               planning fails with LegacyPathBlocked (worldwide, no server on the hotfix), the operator aborts
//
// A change to the workflow that would break a running workflow on upgrade
// (activities scheduled in another order, a step added or removed, a timer
// or search-attribute upsert moved) makes its replay fail with a
// non-determinism error. Such a change must be guarded with
// workflow.GetVersion, and the histories of both branches kept. The SDK
// compares commands by kind and activity type, not by input: calling one
// activity type with its arguments in another order (the ACS and evoSTS
// auth servers, say) replays without complaint, so such changes need the
// same care without this test's help.
//
// The vN- files are the same runs recorded at version N of the change
// "setup-local-cloud-steps" (v0-: before it, DefaultVersion; v1-: cloud
// steps as local activities, HybridflowStep published with state changes
// only; the files without a prefix: version 2, a step's on-prem writes in
// one activity; started with SetupStartAttributes, so without the first
// upsert the older files still have), and replay through that version's
// branch. Re-record the current branch with (the e2e tests write the
// files when the variable is set):
//
//	HYBRIDFLOW_RECORD_HISTORIES=1 go test ./internal/e2e/ -run E2E -count=1
//	go test ./workflows/ -run Replay
//
// and commit testdata/histories, after renaming the files they replace
// to the old version's prefix; keep the vN- files while a workflow started
// at that version may still run.
// currentShape is the version of "setup-local-cloud-steps" new runs take.
const currentShape = 2

func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded histories in testdata/histories (see this test's comment to record them)")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			if fi, err := os.Stat(f); err != nil || fi.Size() == 0 {
				t.Fatalf("history %s is empty or unreadable: %v", f, err)
			}
			// Each branch of the versioned change must stay covered.
			want := currentShape
			if v, _, ok := strings.Cut(filepath.Base(f), "-"); ok && len(v) == 2 && v[0] == 'v' && v[1] >= '0' && v[1] <= '9' {
				want = int(v[1] - '0')
			}
			if got := changeVersions(t, f)["setup-local-cloud-steps"]; got != want {
				t.Fatalf("history %s: setup-local-cloud-steps version %d; want %d (0: no marker)", f, got, want)
			}
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflow(workflows.Setup)
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatalf("replaying %s against the current workflow code: %v", f, err)
			}
		})
	}
}

// changeVersions reads the workflow.GetVersion markers of a recorded history.
func changeVersions(t *testing.T, file string) map[string]int {
	t.Helper()
	r, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h, err := client.HistoryFromJSON(r, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatalf("parse %s: %v", file, err)
	}
	dc := converter.GetDefaultDataConverter()
	out := map[string]int{}
	for _, ev := range h.GetEvents() {
		m := ev.GetMarkerRecordedEventAttributes()
		if m.GetMarkerName() != "Version" {
			continue
		}
		var id string
		var v int
		if err := dc.FromPayloads(m.GetDetails()["change-id"], &id); err != nil {
			t.Fatalf("%s: version marker change-id: %v", file, err)
		}
		if err := dc.FromPayloads(m.GetDetails()["version"], &v); err != nil {
			t.Fatalf("%s: version marker version: %v", file, err)
		}
		out[id] = v
	}
	return out
}

// currentRenewalShape is the version of "renewal-mode-rule-and-server-check"
// new renewals take.
const currentRenewalShape = 1

// TestReplayRecordedRenewalHistories replays testdata/histories/renewal:
// real renewals on the dev server (a scheduled renewal of a dedicated-app
// tenant: create, stage, upload, a timer, publish, verify, clean up),
// recorded by internal/renewaltest with HYBRIDFLOW_RECORD_HISTORIES=1. The
// v0- file was recorded before "renewal-mode-rule-and-server-check" (mode
// detected inline, no server check before publishing) and replays through
// that branch; the file without a prefix is the current one.
func TestReplayRecordedRenewalHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "renewal", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("want a recorded renewal history of each version in testdata/histories/renewal, found %v", files)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			want := currentRenewalShape
			if v, _, ok := strings.Cut(filepath.Base(f), "-"); ok && len(v) == 2 && v[0] == 'v' && v[1] >= '0' && v[1] <= '9' {
				want = int(v[1] - '0')
			}
			if got := changeVersions(t, f)["renewal-mode-rule-and-server-check"]; got != want {
				t.Fatalf("history %s: renewal-mode-rule-and-server-check version %d; want %d (0: no marker)", f, got, want)
			}
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflow(workflows.Renewal)
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatalf("replaying %s against the current workflow code: %v", f, err)
			}
		})
	}
}
