package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/sim/simserver"
)

// goTool is the go command that runs this test.
func goTool(t *testing.T) string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		t.Skip("no go command to build the binary with")
	}
	return p
}

// TestBinaryServesDumpsListsAndStops builds hybridflow-sim, serves a world
// in the background, reads it back with dump and the request log with
// requests, changes it with load, and stops it with SIGTERM, which writes
// the changed world to the --save-on-exit file.
func TestBinaryServesDumpsListsAndStops(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "hybridflow-sim")
	if out, err := exec.Command(goTool(t), "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	w, err := sim.Load(filepath.Join("..", "..", "..", "..", "configs", "sim", "small.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	w.SetPinnedNow(time.Time{})
	world, err := w.Dump()
	if err != nil {
		t.Fatal(err)
	}
	worldFile := filepath.Join(dir, "world.yaml")
	if err := os.WriteFile(worldFile, world, 0o644); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(dir, "state")
	saved := filepath.Join(stateDir, "world.yaml")

	cli := func(args ...string) (string, string, error) {
		cmd := exec.Command(bin, append(args, "--state-dir", stateDir)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	if _, stderr, err := cli("dump"); err == nil || !strings.Contains(stderr, "no simulator running") || !strings.Contains(stderr, "hybridflow-sim serve --world FILE") {
		t.Fatalf("dump before serve: %v: %s", err, stderr)
	}

	var serveErr syncBuffer
	serve := exec.Command(bin, "serve", "--world", worldFile, "--state-dir", stateDir, "--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:0", "--log-json", "--save-on-exit", saved)
	serve.Stderr = &serveErr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	// exited is closed when serve has exited, with its error in waitErr.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = serve.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = serve.Process.Kill()
			<-exited
		}
	})

	var st simserver.State
	for deadline := time.Now().Add(30 * time.Second); ; {
		if st, err = simserver.ReadState(stateDir); err == nil {
			break
		}
		select {
		case <-exited:
			t.Fatalf("serve exited: %v\n%s", waitErr, serveErr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no state.json: %v\n%s", err, serveErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.PID != serve.Process.Pid {
		t.Fatalf("state.json pid %d, serve is %d", st.PID, serve.Process.Pid)
	}
	// One request for the log: a plain POST, refused as no upgrade.
	resp, err := http.Post(st.GatewayURL+"/PowerShell/site-404", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("gateway: %s", resp.Status)
	}

	out, stderr, err := cli("dump")
	if err != nil {
		t.Fatalf("dump: %v: %s", err, stderr)
	}
	if out != string(world) {
		t.Fatal("dump is not the served world file")
	}
	out, stderr, err = cli("requests", "--json")
	if err != nil {
		t.Fatalf("requests: %v: %s", err, stderr)
	}
	var rec sim.RequestRecord
	if err := json.Unmarshal([]byte(out), &rec); err != nil || rec.Seq != 1 || rec.Path != "/PowerShell/site-404" || rec.Status != http.StatusUpgradeRequired {
		t.Fatalf("requests: %q (%v)", out, err)
	}

	// A change through the admin API (load), for the save on exit to keep.
	w.Update("22222222-2222-4222-8222-000000000002", func(tn *sim.Tenant) { tn.DisplayName = "Renamed before SIGTERM" })
	edited, err := w.Dump()
	if err != nil {
		t.Fatal(err)
	}
	editedFile := filepath.Join(dir, "edited.yaml")
	if err := os.WriteFile(editedFile, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := cli("load", editedFile); err != nil {
		t.Fatalf("load: %v: %s", err, stderr)
	}
	if _, err := os.Stat(saved); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the world was saved before SIGTERM: %v", err)
	}

	if err := serve.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("serve after SIGTERM: %v\n%s", waitErr, serveErr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
	if _, err := os.Stat(filepath.Join(stateDir, simserver.StateFileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("state.json after a clean exit: %v", err)
	}
	if !strings.Contains(serveErr.String(), `"simulator listening"`) || !strings.Contains(serveErr.String(), `"simulator stopped"`) ||
		!strings.Contains(serveErr.String(), `"world saved"`) {
		t.Errorf("serve's log:\n%s", serveErr.String())
	}
	got, err := os.ReadFile(saved)
	if err != nil {
		t.Fatalf("no world saved on SIGTERM: %v", err)
	}
	if !bytes.Equal(got, edited) {
		t.Fatalf("the saved world is not the world as loaded before SIGTERM:\n%.300s", got)
	}
	if fi, err := os.Stat(saved); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("saved world: %v, %v", fi, err)
	}
}

// syncBuffer is a bytes.Buffer the serve process's output is copied into
// while the test may read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
