package workflows_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
//	setup-legacy-21vianet              legacy first-party path in 21Vianet
//	setup-worker-restarts              worker stopped, then killed, mid-write; killed on a verification timer
//	setup-pause-retry                  a step pauses for an operator, who retries it
//	setup-pause-abort                  a step pauses, the operator aborts, compensation runs
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
// Before the first release, when no run can be in flight, re-record
// instead (the e2e tests write the files when the variable is set):
//
//	HYBRIDFLOW_RECORD_HISTORIES=1 go test ./internal/e2e/ -run E2E -count=1
//	go test ./workflows/ -run Replay
//
// and commit testdata/histories.
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
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflow(workflows.Setup)
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatalf("replaying %s against the current workflow code: %v", f, err)
			}
		})
	}
}
