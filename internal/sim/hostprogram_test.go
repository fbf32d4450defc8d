package sim

import (
	"os"
	"path/filepath"
	"testing"
)

// TestHostProgram: the relay-only binary beside the executable is used
// when it is an executable file; otherwise the executable itself (a test
// binary, go run). A symlinked executable finds the relay beside its
// target.
func TestHostProgram(t *testing.T) {
	bin := t.TempDir()
	exe := filepath.Join(bin, "hybridflow-worker")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := hostProgram(exe); got != exe {
		t.Fatalf("no relay beside it: %s, want %s", got, exe)
	}
	relay := filepath.Join(bin, SimHostBinary)
	if err := os.WriteFile(relay, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := hostProgram(exe); got != exe {
		t.Fatalf("relay not executable: %s, want %s", got, exe)
	}
	if err := os.Chmod(relay, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := hostProgram(exe); got != relay {
		t.Fatalf("relay beside it: %s, want %s", got, relay)
	}
	link := filepath.Join(t.TempDir(), "worker")
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	if got := hostProgram(link); got != relay {
		t.Fatalf("through a symlink: %s, want %s", got, relay)
	}
}
