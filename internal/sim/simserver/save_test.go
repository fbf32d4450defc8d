package simserver_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/sim/simserver"
)

// configs/sim/small.yaml's application of tenants 1 and 3.
const (
	app1 = "10efd87f-32b8-422d-a811-ccdb11863dd4"
	app3 = "7f410071-44f8-4359-952b-18abe8d386bf"
)

// graphRename renames an application through Graph (PATCH displayName)
// and returns the status.
func graphRename(t *testing.T, c *http.Client, s *simserver.Server, tok, app, name string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPatch, s.BaseURL()+"/v1.0/applications/"+app, strings.NewReader(`{"displayName":"`+name+`"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Errorf("PATCH applications/%s: %v", app, err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func appName(w *sim.World, tenant, app string) string {
	var name string
	w.View(tenant, func(tn *sim.Tenant) {
		for _, a := range tn.Entra.Applications {
			if a != nil && a.ID == app {
				name = a.DisplayName
			}
		}
	})
	return name
}

// TestSaveToKeepsTheWorldAcrossARestart: a simulator started with SaveTo
// writes, when it is closed (what serve does on SIGTERM), the world with
// the changes made through Graph and the admin API, including a Graph
// write still being served when Close began; serving that file again
// goes on from it.
func TestSaveToKeepsTheWorldAcrossARestart(t *testing.T) {
	path, _ := smallWorldFile(t)
	saved := filepath.Join(t.TempDir(), "not-yet", "world.yaml")
	stateDir := t.TempDir()
	s := start(t, simserver.Options{WorldFile: path, SaveTo: saved, StateDir: stateDir})
	c := httpsClient(t, s)
	a := admin(t, s)
	secret := clientSecret(t, s)
	if _, err := os.Stat(saved); err == nil {
		t.Fatal("the world was saved before Close")
	}

	// A Graph write.
	tok1, status, _ := token(t, c, s, "small1.onmicrosoft.com", "7e57c11e-0000-4000-8000-000000000001", secret, graphScope(t, "global"))
	if status != http.StatusOK {
		t.Fatalf("token %d", status)
	}
	if st := graphRename(t, c, s, tok1, app1, "Renamed through Graph"); st/100 != 2 {
		t.Fatalf("rename: %d", st)
	}
	// An admin API change: a fault rule, which holds the next write to
	// tenant 3's applications for two seconds.
	if _, err := a.AddFaults(ctx(t), []byte("- protocol: graph\n  kind: latency\n  method: PATCH\n  path: /applications/\n  tenant: "+tenant3+"\n  latency: 2s\n")); err != nil {
		t.Fatal(err)
	}
	tok3, status, _ := token(t, c, s, tenant3, "7e57c11e-0000-4000-8000-000000000001", secret, graphScope(t, "gcchigh"))
	if status != http.StatusOK {
		t.Fatalf("token %d", status)
	}
	inFlight := make(chan int, 1)
	go func() { inFlight <- graphRename(t, c, s, tok3, app3, "Renamed while stopping") }()
	for deadline := time.Now().Add(20 * time.Second); s.World().FaultsFired()[sim.FaultLatency] == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the held write never reached the simulator")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Close, as serve does on SIGTERM: the held write is answered first.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if st := <-inFlight; st/100 != 2 {
		t.Fatalf("the write in flight at Close: %d", st)
	}
	fi, err := os.Stat(saved)
	if err != nil {
		t.Fatalf("no saved world: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("saved world mode %v, want 0600", fi.Mode().Perm())
	}
	data, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	w, err := sim.Load(saved)
	if err != nil {
		t.Fatalf("the saved world does not load: %v", err)
	}
	if got := appName(w, tenant1, app1); got != "Renamed through Graph" {
		t.Errorf("tenant 1's application in the saved world: %q", got)
	}
	if got := appName(w, tenant3, app3); got != "Renamed while stopping" {
		t.Errorf("tenant 3's application (written while Close drained): %q", got)
	}
	if f := w.Faults(); len(f) != 1 || f[0].Kind != sim.FaultLatency || f[0].Tenant != tenant3 {
		t.Errorf("fault rules in the saved world: %+v", f)
	}
	// The world file format: dump → load → dump is identical, and a world
	// running on the wall clock is saved without now:.
	if again, _ := w.Dump(); !bytes.Equal(again, data) {
		t.Fatalf("saved → load → dump: %s", firstDiff(data, again))
	}
	if _, pinned := w.PinnedNow(); pinned || bytes.Contains(data, []byte("\nnow:")) {
		t.Fatal("the saved world pins the clock, though the running one was on the wall clock")
	}

	// Served again (as make sim does), it is that world, and the next
	// Close saves it again.
	s2 := start(t, simserver.Options{WorldFile: saved, SaveTo: saved, StateDir: stateDir})
	got, err := admin(t, s2).Dump(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("the restarted simulator serves another world: %s", firstDiff(data, got))
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(saved); !bytes.Equal(again, data) {
		t.Fatalf("an unchanged world saved again differs: %s", firstDiff(data, again))
	}
}

// TestSaveToKeepsAnOperatorsPin: a clock pinned through the admin API is
// saved as now: (it is the operator's), with a warning that the file is
// refused once the wall clock has moved on.
func TestSaveToKeepsAnOperatorsPin(t *testing.T) {
	saved := filepath.Join(t.TempDir(), "world.yaml")
	core, logs := observer.New(zap.InfoLevel)
	s := start(t, simserver.Options{SaveTo: saved, Logger: zap.New(core)})
	pin := time.Now().UTC().Add(-30 * time.Second).Truncate(time.Second)
	if _, err := admin(t, s).SetClock(ctx(t), pin); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	w, err := sim.Load(saved)
	if err != nil {
		t.Fatal(err)
	}
	if got, pinned := w.PinnedNow(); !pinned || !got.Equal(pin) {
		t.Fatalf("saved clock %v (pinned %v), want %v", got, pinned, pin)
	}
	if n := logs.FilterMessageSnippet("pins the clock").Len(); n != 1 {
		t.Errorf("%d warnings about the pinned clock, want 1: %v", n, logs.All())
	}
	if n := logs.FilterMessage("world saved").FilterField(zap.String("path", saved)).Len(); n != 1 {
		t.Errorf("%d \"world saved\" log lines naming %s, want 1", n, saved)
	}
}

// TestSaveToRefusals: a SaveTo that cannot be written is refused at
// Start, naming the field, before the state directory is written; a Start
// that fails (here: a world pinned far from the wall clock) leaves a saved
// world alone.
func TestSaveToRefusals(t *testing.T) {
	stateDir := filepath.Join(t.TempDir(), "state")
	_, err := simserver.Start(context.Background(), simserver.Options{World: smallWorld(t), StateDir: stateDir, SaveTo: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "SaveTo") || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("SaveTo a directory: %v", err)
	}
	if _, err := os.Stat(stateDir); err == nil {
		t.Fatal("the state directory was written before SaveTo was refused")
	}

	saved := filepath.Join(t.TempDir(), "world.yaml")
	const before = "tenants: []\n"
	if err := os.WriteFile(saved, []byte(before), 0o600); err != nil {
		t.Fatal(err)
	}
	far := smallWorld(t)
	far.SetPinnedNow(time.Now().Add(-time.Hour))
	if _, err := simserver.Start(context.Background(), simserver.Options{World: far, StateDir: stateDir, SaveTo: saved}); err == nil || !strings.Contains(err.Error(), "now: ") {
		t.Fatalf("far-pinned world: %v", err)
	}
	if got, _ := os.ReadFile(saved); string(got) != before {
		t.Fatalf("a failed start rewrote the saved world:\n%.200s", got)
	}
	// A start that fails later, when it cannot listen (the address is
	// taken), leaves it alone too.
	busy := start(t, simserver.Options{})
	addr := strings.TrimPrefix(busy.BaseURL(), "https://")
	if _, err := simserver.Start(context.Background(), simserver.Options{World: smallWorld(t), StateDir: stateDir, SaveTo: saved, Addr: addr}); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("start on a taken address: %v", err)
	}
	if got, _ := os.ReadFile(saved); string(got) != before {
		t.Fatalf("a failed start rewrote the saved world:\n%.200s", got)
	}
}
