// Package histories reads and writes the recorded workflow histories in
// workflows/testdata/histories: real runs on the Temporal dev server that
// the replay test replays against the current workflow code. The tests
// that make those runs write them when RecordEnv is set (make histories);
// the replay test and the check that every registered workflow type has a
// recorded history read them.
package histories

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/hybridflow/hybridflow/internal/devserver"
)

// RecordEnv, set to anything, makes the recording tests write the
// histories of their runs.
const RecordEnv = "HYBRIDFLOW_RECORD_HISTORIES"

// Recording reports whether RecordEnv is set.
func Recording() bool { return os.Getenv(RecordEnv) != "" }

// Dir is the recorded histories' directory in the repository at root.
func Dir(root string) string { return filepath.Join(root, "workflows", "testdata", "histories") }

// Fetch reads a run's whole history from the server (runID "": the
// latest run of id).
func Fetch(ctx context.Context, c client.Client, id, runID string) (*historypb.History, error) {
	it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", id, err)
		}
		h.Events = append(h.Events, ev)
	}
	return h, nil
}

// Write writes h as <the histories directory>/<name>.json (name may hold
// a subdirectory: "lync/lync-converges") and returns the file's path.
// protojson varies its whitespace on purpose; the file is indented with
// encoding/json so that a re-recorded file differs only where the history
// does.
func Write(h *historypb.History, name string) (string, error) {
	root, err := devserver.RepoRoot()
	if err != nil {
		return "", err
	}
	raw, err := protojson.Marshal(h)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return "", err
	}
	path := filepath.Join(Dir(root), filepath.FromSlash(name)+".json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, append(buf.Bytes(), '\n'), 0o644)
}

// Record writes the run's history as Write does when RecordEnv is set,
// and returns the file's path ("" when not recording).
func Record(ctx context.Context, c client.Client, id, runID, name string) (string, error) {
	if !Recording() {
		return "", nil
	}
	h, err := Fetch(ctx, c, id, runID)
	if err != nil {
		return "", err
	}
	return Write(h, name)
}

// File is one recorded history.
type File struct {
	// Path is the file's path; Name its path below the histories
	// directory, with slashes and without .json ("lync/lync-converges").
	Path, Name string
	// Type is the workflow type the history is a run of.
	Type    string
	History *historypb.History
}

// Load reads every .json file below dir (sorted by name). A file that is
// not a history, or a history without its start event, is an error.
func Load(dir string) ([]File, error) {
	var out []File
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		f, err := Read(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		f.Name = strings.TrimSuffix(filepath.ToSlash(rel), ".json")
		out = append(out, f)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// Read reads one recorded history and the workflow type it is a run of.
func Read(path string) (File, error) {
	r, err := os.Open(path)
	if err != nil {
		return File{}, err
	}
	defer r.Close()
	h, err := client.HistoryFromJSON(r, client.HistoryJSONOptions{})
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", path, err)
	}
	evs := h.GetEvents()
	if len(evs) == 0 || evs[0].GetWorkflowExecutionStartedEventAttributes() == nil {
		return File{}, fmt.Errorf("%s: the history does not begin with the workflow's start", path)
	}
	typ := evs[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName()
	if typ == "" {
		return File{}, fmt.Errorf("%s: the start event names no workflow type", path)
	}
	return File{Path: path, Type: typ, History: h}, nil
}

// Versions reads the workflow.GetVersion markers of a history: change ID
// to the version the run took.
func Versions(h *historypb.History) (map[string]int, error) {
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
			return nil, fmt.Errorf("version marker change-id: %w", err)
		}
		if err := dc.FromPayloads(m.GetDetails()["version"], &v); err != nil {
			return nil, fmt.Errorf("version marker version: %w", err)
		}
		out[id] = v
	}
	return out, nil
}
