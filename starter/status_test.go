package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// lockedBuffer collects what the pseudo-terminal shows.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDemoWalkthroughUnderATerminal follows the README's walk-through on
// the demo world against the real dev server: rollout, `status --watch`
// on a pseudo-terminal (what a person sees: the bar, the counts and the
// paused tenant with its step and error), `list --state paused`, the bulk
// `retry --all-paused --error-type MissingPermission` that finishes the
// demo, `status --watch` again until every tenant is verified, then
// `verify` reporting no drift.
func TestDemoWalkthroughUnderATerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts the Temporal dev server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	world, err := sim.Load(filepath.Join("..", "configs", "sim", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := simWorker(t, ctx, world, false, "walkthrough")
	addr := "--address=" + srv.FrontendHostPort()
	cli := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(ctx, append(args, addr), &out, &errb, func(string) string { return "" })
		return code, out.String() + errb.String()
	}
	// watch runs `status --watch` with a pseudo-terminal as its stdout.
	watch := func() string {
		ptmx, tty, err := pty.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer ptmx.Close()
		var screen lockedBuffer
		done := make(chan struct{})
		go func() { _, _ = io.Copy(&screen, ptmx); close(done) }()
		var errb bytes.Buffer
		code := run(ctx, []string{"status", "inventory-demo", "--watch", addr}, tty, &errb, func(string) string { return "" })
		_ = tty.Close()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
		if code != 0 {
			t.Fatalf("status --watch exit %d: %s\n%s", code, errb.String(), screen.String())
		}
		return screen.String()
	}

	if code, out := cli("rollout", "-f", demoInventory, "--concurrency", "5"); code != 0 {
		t.Fatalf("rollout: %d %s", code, out)
	}
	screen := watch()
	// On a terminal the bar is redrawn in place with carriage returns.
	if !strings.Contains(screen, "\r\x1b[K") || !regexp.MustCompile(`\[#+\.*\] \d+/20`).MatchString(screen) {
		t.Fatalf("no redrawn progress bar on the terminal:\n%q", screen)
	}
	for _, want := range []string{"verified 19", "paused 1", "11111111-1111-4111-8111-000000000006", "ioc-onprem-to-online", "MissingPermission", "Needs attention", "hybridflow retry --all-paused"} {
		if !strings.Contains(screen, want) {
			t.Errorf("the terminal does not show %q:\n%s", want, screen)
		}
	}
	if code, out := cli("list", "--state", "paused"); code != 0 || !strings.Contains(out, "11111111-1111-4111-8111-000000000006") || strings.Count(out, "\n") != 2 {
		t.Errorf("list --state paused: exit %d\n%s", code, out)
	}
	if code, out := cli("retry", "--all-paused", "--error-type", "MissingPermission"); code != 0 || !strings.Contains(out, "retry sent to 11111111-1111-4111-8111-000000000006") {
		t.Fatalf("retry --all-paused: exit %d\n%s", code, out)
	}
	screen = watch()
	if !strings.Contains(screen, "verified      20") && !regexp.MustCompile(`verified\s+20`).MatchString(screen) {
		t.Fatalf("after the retry the summary should show 20 verified:\n%s", screen)
	}
	// Not a terminal: plain lines, no escape codes.
	if code, out := cli("status", "inventory-demo"); code != 0 || strings.Contains(out, "\x1b[") || !strings.Contains(out, "20/20") {
		t.Errorf("plain status: exit %d\n%q", code, out)
	}
	if code, out := cli("verify", "-f", demoInventory); code != 0 || !strings.Contains(out, "0 of 20 tenant(s) drifted") {
		t.Errorf("verify after the rollout: exit %d\n%s", code, out)
	}

	// A blocked step is drift although nothing would be written: an
	// administrator adds a setting override that disables the dedicated
	// application (shared/reference/hybrid-facts.md "Setting override":
	// an existing override for the section is left alone), so a setup
	// would pause at setting-override. verify exits 1 and names it.
	blockedID := ""
	for _, tn := range world.Inventory().Tenants {
		world.View(tn.ID, func(st *sim.Tenant) {
			if blockedID == "" && len(st.OnPrem.SettingOverrides) > 0 {
				blockedID = tn.ID
			}
		})
	}
	if blockedID == "" {
		t.Fatal("no demo tenant has a setting override after the rollout")
	}
	world.Update(blockedID, func(st *sim.Tenant) {
		st.OnPrem.SettingOverrides = append(st.OnPrem.SettingOverrides, &sim.SettingOverride{Name: "Keep first-party (admin)", Component: plan.OverrideComponent,
			Section: plan.OverrideSection, Parameters: []string{"Enabled=false"}})
	})
	code, out := cli("verify", "-f", demoInventory)
	row := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, blockedID) {
			row = l
		}
	}
	if code != 1 || !strings.Contains(out, "1 of 20 tenant(s) drifted, 1 of them blocked") ||
		!strings.HasSuffix(row, "blocked: 1 step(s) need an operator (setting-override; a setup would pause there); no step would write") {
		t.Errorf("verify with a blocked step: exit %d\n%s", code, out)
	}
}
