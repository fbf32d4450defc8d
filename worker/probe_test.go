package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/devserver"
	"github.com/hybridflow/hybridflow/internal/exchange/shell"
	"github.com/hybridflow/hybridflow/internal/metrics"
)

// probeHostEnv names a control file when this test binary is started as a
// site's PowerShell host; it reaches the host only through the site's
// shell.env, since the host gets a minimal environment.
const probeHostEnv = "HF_WORKER_TEST_PSHOST"

func init() {
	if ctl, ok := os.LookupEnv(probeHostEnv); ok {
		os.Exit(probeHost(ctl))
	}
}

// probeHost is a stand-in PowerShell host started with -File <script>:
// it checks it was handed the bootstrap, reads the config line, then does
// what its control file says when it starts: "ready" answers the ready
// line and waits for the client to close stdin; "silent" never answers.
func probeHost(ctl string) int {
	if len(os.Args) != 3 || os.Args[1] != "-File" {
		fmt.Fprintf(os.Stderr, "want -File <script>, got %q\n", os.Args[1:])
		return 2
	}
	if b, err := os.ReadFile(os.Args[2]); err != nil || !bytes.Equal(b, shell.Script()) {
		fmt.Fprintf(os.Stderr, "%s is not the bootstrap script (%v)\n", os.Args[2], err)
		return 2
	}
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadBytes('\n'); err != nil {
		return 2
	}
	mode, err := os.ReadFile(ctl)
	if err != nil {
		return 2
	}
	if strings.TrimSpace(string(mode)) == "ready" {
		fmt.Printf(`{"ready":true,"version":%d,"session":"probe-%d"}`+"\n", shell.ProtocolVersion, os.Getpid())
	}
	_, _ = io.Copy(io.Discard, in)
	return 0
}

// healthyTemporal is a Temporal client whose health check passes, so that
// /readyz depends on the start probe alone.
type healthyTemporal struct{ client.Client }

func (healthyTemporal) CheckHealth(context.Context, *client.CheckHealthRequest) (*client.CheckHealthResponse, error) {
	return &client.CheckHealthResponse{}, nil
}

// TestStartProbeGatesReadiness runs the start probe of a real worker
// configuration with two sites: onprem:site-a's host answers ready, and
// lync:site-b's never does. /readyz answers 503 naming lync:site-b (and
// not onprem:site-a) while /healthz stays 200; each role's outcome is
// logged; once site-b's host answers, the background retry makes /readyz
// answer 200.
func TestStartProbeGatesReadiness(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctlA, ctlB := filepath.Join(dir, "site-a"), filepath.Join(dir, "site-b")
	for f, mode := range map[string]string{ctlA: "ready", ctlB: "silent"} {
		if err := os.WriteFile(f, []byte(mode), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	addr := freeAddr(t)
	cfg, err := config.ParseWorkerConfig("probe.yaml", fmt.Appendf(nil, `roles: [cloud, "onprem:site-a", "lync:site-b"]
metrics_address: %[1]s
onprem:
  sites:
    site-a:
      shell:
        command: [%[2]q, -File, "{script}"]
        start_timeout: 10s
        env: {%[3]s: %[4]q}
lync:
  sites:
    site-b:
      shell:
        command: [%[2]q, -File, "{script}"]
        start_timeout: 700ms
        env: {%[3]s: %[5]q}
`, addr, exe, probeHostEnv, ctlA, ctlB), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	logger := zap.New(core)
	be, err := backend.NewReal(cfg, logger, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	obs, err := startObservability(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer obs.close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	probe := startHostProbes(ctx, be.StartHost, cfg.Roles, logger, hostProbeRetry{min: 100 * time.Millisecond, max: 300 * time.Millisecond})
	defer probe.stop()
	obs.watchHosts(probe)
	obs.client = healthyTemporal{}
	obs.setReady(true)

	readyz := func() (int, string) {
		resp, err := http.Get("http://" + addr + metrics.PathReadyz)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	// Wait until site-a's host is up and site-b's first probe has failed.
	var code int
	var body string
	for {
		code, body = readyz()
		if !strings.Contains(body, "onprem:site-a") && strings.Contains(body, "not ready within 700ms") {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("readyz never settled on site-b alone: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "PowerShell host not ready for lync:site-b (") {
		t.Fatalf("/readyz = %d %q; want 503 naming lync:site-b", code, body)
	}
	t.Logf("/readyz while site-b's host is silent: %d %s", code, body)
	if c := get(t, "http://"+addr+metrics.PathHealthz); c != http.StatusOK {
		t.Fatalf("/healthz = %d while a host is missing; liveness must not depend on it", c)
	}
	if n := logs.FilterMessage("PowerShell host ready").FilterField(zap.Stringer("role", config.Role{Kind: config.RoleOnPrem, Site: "site-a"})).Len(); n != 1 {
		t.Errorf("%d ready logs for onprem:site-a, want 1", n)
	}
	if n := logs.FilterMessageSnippet("did not start").FilterField(zap.Stringer("role", config.Role{Kind: config.RoleLync, Site: "site-b"})).Len(); n < 1 {
		t.Errorf("no failure log for lync:site-b")
	}

	// The site's host comes good: the background retry notices.
	if err := os.WriteFile(ctlB, []byte("ready"), 0o600); err != nil {
		t.Fatal(err)
	}
	for {
		if code, body = readyz(); code == http.StatusOK {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("/readyz stayed %d %s after site-b's host became ready", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := logs.FilterMessage("PowerShell host ready").FilterField(zap.Stringer("role", config.Role{Kind: config.RoleLync, Site: "site-b"})).Len(); n != 1 {
		t.Errorf("%d ready logs for lync:site-b, want 1", n)
	}
	t.Logf("/readyz after the retry: %d %s", code, body)
}

// TestServeProbesSitesBeforeReady runs serve() itself, a real (not
// simulated) worker for one on-prem site against the dev server: its
// /readyz names the site while the site's host stays silent, and turns 200
// once the host answers.
func TestServeProbesSitesBeforeReady(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts the Temporal dev server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctl := filepath.Join(dir, "site-a")
	if err := os.WriteFile(ctl, []byte("silent"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cfgFile := filepath.Join(dir, "worker.yaml")
	if err := os.WriteFile(cfgFile, fmt.Appendf(nil, `temporal:
  address: %[1]s
roles: ["onprem:site-a"]
log_level: warn
metrics_address: %[2]s
onprem:
  sites:
    site-a:
      shell:
        command: [%[3]q, -File, "{script}"]
        start_timeout: 500ms
        env: {%[4]s: %[5]q}
`, srv.FrontendHostPort(), addr, exe, probeHostEnv, ctl), 0o600); err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- serve(wctx, options{configPath: cfgFile, identity: "worker@probe-test"}, func(string) string { return "" })
	}()
	defer func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("worker exited with %v", err)
		}
	}()

	url := "http://" + addr + metrics.PathReadyz
	var body string
	for {
		if resp, err := http.Get(url); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			if resp.StatusCode == http.StatusOK {
				t.Fatalf("/readyz answered 200 while site-a's host is silent")
			}
			if strings.Contains(body, "onprem:site-a (start: host") {
				break
			}
		}
		select {
		case err := <-served:
			t.Fatalf("worker exited: %v", err)
		case <-ctx.Done():
			t.Fatalf("/readyz never named the site: %q", body)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Logf("/readyz: %s", strings.TrimSpace(body))
	if err := os.WriteFile(ctl, []byte("ready"), 0o600); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	waitHTTP(t, ctx, served, url)
	t.Logf("ready %s after the host answers", time.Since(began).Round(time.Millisecond))
}

// --simulate replaces the backend after the config is read; with an
// endpoints block it would silently ignore the endpoints, so it is refused.
func TestSimulateFlagRefusesEndpoints(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "worker.yaml")
	if err := os.WriteFile(cfgFile, []byte(`endpoints:
  authority_host: https://127.0.0.1:7480/
  graph: https://127.0.0.1:7480/v1.0
  exchange_online: https://127.0.0.1:7480
`), 0o600); err != nil {
		t.Fatal(err)
	}
	err := serve(context.Background(), options{configPath: cfgFile, simulate: "configs/sim/demo.yaml"}, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "--simulate cannot be used with the config's endpoints block") {
		t.Fatalf("got %v", err)
	}
}
