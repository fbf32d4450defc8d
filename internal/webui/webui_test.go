package webui_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/codec"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/devserver"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/internal/workerhost"
	"github.com/hybridflow/hybridflow/workflows"
)

const (
	// ShotsEnv names the directory the screenshots go to (default
	// internal/webui/testdata/out, which git ignores).
	ShotsEnv = "HYBRIDFLOW_WEBUI_SHOTS"
	// DocsEnv=1 also copies the screenshots to docs/img for the README.
	DocsEnv = "HYBRIDFLOW_WEBUI_DOCS"
	// ChromiumEnv names the browser (default /usr/bin/chromium, Debian's
	// package, which `make browser` installs).
	ChromiumEnv = "HYBRIDFLOW_CHROMIUM"
	// CLIEnv names a hybridflow binary to use instead of building one.
	CLIEnv = "HYBRIDFLOW_WEBUI_CLI"
	// CodecEndpointEnv=off starts the dev server without the codec endpoint
	// (to see the test fail as an operator without it would).
	CodecEndpointEnv = "HYBRIDFLOW_WEBUI_CODEC_ENDPOINT"
)

// TestWebUIShowsDecodedSetupAndPausedTenants runs a rollout of the small
// world (one tenant pauses for a missing Exchange role, as Demo 6 does in
// the README's walk-through) with every payload encrypted by the codec,
// then opens the dev server's Web UI, started with the codec endpoint of
// `hybridflow codec-server`, in headless Chromium: the paused setup's page
// shows its input decoded (the tenant's initial domain) and its summary,
// and the paused-tenants query lists exactly the paused tenant.
func TestWebUIShowsDecodedSetupAndPausedTenants(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: dev server, Web UI and headless Chromium")
	}
	browser := chromiumPath(t)
	root, err := devserver.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	temporalCLI, err := devserver.CLIPath()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	shots := shotsDir(t, root)
	began := time.Now()
	mark := func(what string) { t.Logf("%s at %s", what, time.Since(began).Round(100*time.Millisecond)) }

	// Keys as an operator would give them: HYBRIDFLOW_CODEC_KEYS naming an
	// environment variable that holds a random 32-byte key.
	k := make([]byte, codec.KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{config.EnvCodecKeys: "k1=env:HF_WEBUI_CODEC_KEY", "HF_WEBUI_CODEC_KEY": base64.StdEncoding.EncodeToString(k)}
	getenv := func(n string) string { return env[n] }

	hybridflow := os.Getenv(CLIEnv)
	if hybridflow == "" {
		hybridflow = buildStarter(t, root)
	}
	mark("hybridflow built")
	frontend, uiPort, codecPort := freePort(t), freePort(t), freePort(t)
	uiBase := fmt.Sprintf("http://127.0.0.1:%d", uiPort)
	codecURL := startCodecServer(t, ctx, hybridflow, env, codecPort, uiPort)

	// The dev server with its Web UI, pointed at the codec server.
	devArgs := append(devserver.SearchAttributeFlags(), "--dynamic-config-value",
		fmt.Sprintf("matching.longPollExpirationInterval=%q", devserver.LongPoll.String()))
	if os.Getenv(CodecEndpointEnv) != "off" {
		devArgs = append(devArgs, "--ui-codec-endpoint", codecURL)
	}
	devLogPath := filepath.Join(shots, "devserver.log")
	devLog, err := os.Create(devLogPath)
	if err != nil {
		t.Fatal(err)
	}
	defer devLog.Close()
	var srv *testsuite.DevServer
	// A free port can be taken by another test process between freePort
	// and the server's bind ("address already in use"): try another.
	for try := 1; ; try++ {
		srv, err = testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
			ExistingPath:  temporalCLI,
			ClientOptions: &client.Options{HostPort: fmt.Sprintf("127.0.0.1:%d", frontend), Namespace: "default"},
			EnableUI:      true,
			UIPort:        strconv.Itoa(uiPort),
			LogLevel:      "warn",
			ExtraArgs:     devArgs,
			Stdout:        devLog,
			Stderr:        devLog,
		})
		if err == nil {
			break
		}
		logged, _ := os.ReadFile(devLogPath)
		if try == 3 || !strings.Contains(string(logged), fmt.Sprintf("127.0.0.1:%d: bind: address already in use", frontend)) {
			t.Fatal(err)
		}
		t.Logf("dev server start %d: port %d was taken; trying another", try, frontend)
		frontend = freePort(t)
	}
	defer func() { _ = srv.Stop() }()
	env["HYBRIDFLOW_TEMPORAL_ADDRESS"] = srv.FrontendHostPort()
	mark("codec server and dev server up")

	// The small world; its first tenant's first on-prem connector is
	// refused for a missing role, as Demo 6's is in the demo world.
	world, err := sim.Load(filepath.Join(root, "configs", "sim", "small.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	inv := world.Inventory()
	paused := inv.Tenants[0]
	world.SetFaults(append(world.Faults(), sim.FaultRule{Protocol: "shell", Operation: "New-IntraOrganizationConnector", Tenant: paused.ID,
		Kind: "fail", FailFirstN: 1, ErrorType: "System.UnauthorizedAccessException",
		Message: "Access is denied: the account running hybridflow needs the Organization Management role to create IntraOrganizationConnectors."}))

	// A worker as hybridflow-worker builds one from a configuration with
	// the codec keys (in-process here: the point is the UI).
	cfg, err := config.ParseWorkerConfig("", nil, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Temporal.Codec == nil {
		t.Fatal("the worker configuration has no codec: every payload would travel in clear")
	}
	c, err := temporalx.Dial(ctx, cfg.Temporal, zap.NewNop(), getenv)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	be, err := backend.NewSimulated(ctx, world, zap.NewNop(), backend.SimOptions{DirectShell: true})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	roles := []config.Role{{Kind: config.RoleCloud}}
	for _, tn := range inv.Tenants {
		if r := (config.Role{Kind: config.RoleOnPrem, Site: tn.Site}); !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	h, err := workerhost.Start(c, roles, workerhost.ForBackend(be, "webui-test"), zap.NewNop(), workerhost.Options{Identity: "webui-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()

	// The rollout, started by the CLI as the README does.
	invPath := filepath.Join(t.TempDir(), "inventory.webui.yaml")
	writeInventory(t, invPath, inv.Tenants)
	if out, err := runCLI(ctx, hybridflow, env, "rollout", "-f", invPath, "--concurrency", "3", "--verify-deadline", "2m"); err != nil {
		t.Fatalf("hybridflow rollout: %v\n%s", err, out)
	}
	others := map[string]bool{}
	for _, tn := range inv.Tenants[1:] {
		others[workflows.SetupWorkflowID(tn.ID)] = true
	}
	pausedID := workflows.SetupWorkflowID(paused.ID)
	pausedRun := waitSettled(t, ctx, c, pausedID, others)
	mark("rollout settled")

	// The summaries are payloads: encrypted in the history, decoded by
	// the codec server as the Web UI asks it.
	checkUserMetadata(t, ctx, srv.FrontendHostPort(), codecURL, uiBase, pausedID, pausedRun, paused)

	// The Web UI in headless Chromium.
	bctx, bcancel := startBrowser(t, ctx, browser, shots)
	defer bcancel()
	mark("Chromium started")

	setupURL := fmt.Sprintf("%s/namespaces/default/workflows/%s/%s/history", uiBase, url.PathEscape(pausedID), pausedRun)
	// The input as the worker decodes it: the JSON the page must show.
	wantInput := fmt.Sprintf("%q", paused.InitialDomain)
	text := pageText(t, bctx, setupURL, filepath.Join(shots, "webui-setup.png"), 1500, func(s string) bool {
		return strings.Contains(s, "initial_domain") && strings.Contains(s, paused.InitialDomain) &&
			strings.Contains(s, workflows.TenantSummary(paused))
	})
	if !strings.Contains(text, "initial_domain") || !strings.Contains(text, wantInput) {
		t.Errorf("the setup page does not show the decoded input with the tenant's domain %s (codec endpoint %s); page text:\n%s", wantInput, codecURL, clip(text))
	}
	if !strings.Contains(text, workflows.TenantSummary(paused)) {
		t.Errorf("the setup page does not show its decoded summary %q; page text:\n%s", workflows.TenantSummary(paused), clip(text))
	}

	// The User Metadata tab: the summary and every event's summary, the
	// documented steps in order, decoded through the codec server.
	stepSummary := workflows.SetupStepSummary(string(plan.StepIOCOnPrem))
	metaURL := strings.TrimSuffix(setupURL, "/history") + "/user-metadata"
	text = pageText(t, bctx, metaURL, filepath.Join(shots, "webui-steps.png"), 1450, func(s string) bool {
		return strings.Contains(s, stepSummary) && strings.Contains(s, workflows.TenantSummary(paused))
	})
	for _, want := range []string{workflows.TenantSummary(paused), workflows.SetupStepSummary("discover"),
		workflows.SetupStepSummary(string(plan.StepAuthServers)), stepSummary} {
		if !strings.Contains(text, want) {
			t.Errorf("the setup's User Metadata tab does not show %q; page text:\n%s", want, clip(text))
		}
	}

	listURL := uiBase + "/namespaces/default/workflows?query=" + url.QueryEscape(`HybridflowState="paused"`)
	text = pageText(t, bctx, listURL, filepath.Join(shots, "webui-paused.png"), 520, func(s string) bool {
		return strings.Contains(s, pausedID)
	})
	mark("pages read")
	if !strings.Contains(text, pausedID) {
		t.Errorf("the paused-tenants query does not list %s; page text:\n%s", pausedID, clip(text))
	}
	for id := range others {
		if strings.Contains(text, id) {
			t.Errorf("the paused-tenants query lists %s, which did not pause; page text:\n%s", id, clip(text))
		}
	}
	if os.Getenv(DocsEnv) == "1" && !t.Failed() {
		for _, name := range []string{"webui-setup.png", "webui-steps.png", "webui-paused.png"} {
			copyFile(t, filepath.Join(shots, name), filepath.Join(root, "docs", "img", name))
		}
	}
	t.Logf("screenshots in %s", shots)
}

// chromiumPath is the browser, or a skip naming how to install it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv(ChromiumEnv)
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no Chromium at %s (%v): `make browser` installs Debian's chromium package (apt-get install chromium chromium-driver); %s names another", p, err, ChromiumEnv)
	}
	return p
}

func shotsDir(t *testing.T, root string) string {
	t.Helper()
	dir := os.Getenv(ShotsEnv)
	if dir == "" {
		dir = filepath.Join(root, "internal", "webui", "testdata", "out")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// buildStarter builds the hybridflow CLI as make build does.
func buildStarter(t *testing.T, root string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "hybridflow")
	cmd := exec.Command("go", "build", "-o", out, "./starter")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./starter: %v\n%s", err, b)
	}
	return out
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// cliEnv is the environment of the CLI: only what the test gives it, so
// the shell's HYBRIDFLOW_* variables cannot change what it does.
func cliEnv(env map[string]string) []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

func runCLI(ctx context.Context, bin string, env map[string]string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = cliEnv(env)
	b, err := cmd.CombinedOutput()
	return string(b), err
}

// startCodecServer runs `hybridflow codec-server` on loopback for the Web
// UI's origin and returns its URL once it listens.
func startCodecServer(t *testing.T, ctx context.Context, bin string, env map[string]string, port, uiPort int) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, "codec-server", "--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--ui-origin", fmt.Sprintf("http://127.0.0.1:%d", uiPort), "--ui-origin", fmt.Sprintf("http://localhost:%d", uiPort))
	cmd.Env = cliEnv(env)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		re := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				ready <- m[1]
			}
		}
		close(ready)
	}()
	select {
	case u, ok := <-ready:
		if !ok {
			t.Fatalf("hybridflow codec-server exited: %s", errb.String())
		}
		return u
	case <-time.After(30 * time.Second):
		t.Fatalf("hybridflow codec-server did not listen in 30s: %s", errb.String())
	}
	return ""
}

func writeInventory(t *testing.T, path string, ts []config.Tenant) {
	t.Helper()
	var b strings.Builder
	b.WriteString("tenants:\n")
	for _, tn := range ts {
		fmt.Fprintf(&b, "  - id: %s\n    display_name: %s\n    cloud: %s\n    initial_domain: %s\n    site: %s\n", tn.ID, tn.DisplayName, tn.Cloud, tn.InitialDomain, tn.Site)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitSettled waits until the paused tenant's setup is paused (in
// visibility, where the Web UI's query looks) and every other setup has
// completed, and returns the paused setup's run ID.
func waitSettled(t *testing.T, ctx context.Context, c client.Client, pausedID string, others map[string]bool) string {
	t.Helper()
	var last string
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: `WorkflowType = "Setup"`, PageSize: 100})
		if err == nil {
			run, done := "", 0
			var states []string
			for _, e := range resp.GetExecutions() {
				id := e.GetExecution().GetWorkflowId()
				state := keyword(e.GetSearchAttributes(), workflows.SAState.GetName())
				states = append(states, id+"="+e.GetStatus().String()+"/"+state)
				if id == pausedID && e.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && state == workflows.StatePaused {
					run = e.GetExecution().GetRunId()
				}
				if others[id] && e.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED && state == workflows.StateVerified {
					done++
				}
			}
			last = strings.Join(states, ", ")
			if run != "" && done == len(others) {
				return run
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the rollout did not settle with %s paused and the others verified: %s (%v)", pausedID, last, err)
		case <-time.After(time.Second):
		}
	}
}

func keyword(sa *commonpb.SearchAttributes, name string) string {
	p := sa.GetIndexedFields()[name]
	if p == nil {
		return ""
	}
	var s string
	_ = json.Unmarshal(p.GetData(), &s)
	return s
}

// checkUserMetadata reads the paused setup's history without the codec,
// as the server stores it: its summary and every activity's summary are
// encrypted, and the codec server decodes them (asked as the Web UI asks)
// to the tenant's summary and the documented steps.
func checkUserMetadata(t *testing.T, ctx context.Context, hostPort, codecURL, uiOrigin, id, run string, tn config.Tenant) {
	t.Helper()
	raw, err := client.Dial(client.Options{HostPort: hostPort, Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var summaries []*commonpb.Payload
	var start *commonpb.Payload
	it := raw.GetWorkflowHistory(ctx, id, run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	scheduled := 0
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			start = ev.GetUserMetadata().GetSummary()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			scheduled++
			if s := ev.GetUserMetadata().GetSummary(); s != nil {
				summaries = append(summaries, s)
			} else {
				t.Errorf("activity %s (event %d) has no summary", ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName(), ev.GetEventId())
			}
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			if s := ev.GetUserMetadata().GetSummary(); s != nil {
				summaries = append(summaries, s)
			}
		}
	}
	if start == nil {
		t.Fatalf("%s started without a summary", id)
	}
	if scheduled == 0 {
		t.Fatalf("%s scheduled no activity", id)
	}
	for _, p := range append([]*commonpb.Payload{start}, summaries...) {
		if !codec.IsEncrypted(p) || bytes.Contains(p.GetData(), []byte(tn.InitialDomain)) || bytes.Contains(p.GetData(), []byte("Step ")) {
			t.Fatalf("a summary is stored in clear: %s", protojson.Format(p))
		}
	}
	decoded := decodeViaCodecServer(t, codecURL, uiOrigin, append([]*commonpb.Payload{start}, summaries...))
	if got, want := decoded[0], workflows.TenantSummary(tn); got != want {
		t.Errorf("decoded workflow summary = %q, want %q", got, want)
	}
	for _, want := range []string{workflows.SetupStepSummary("discover"), workflows.SetupStepSummary(string(plan.StepAuthServers)),
		workflows.SetupStepSummary(string(plan.StepIOCOnPrem))} {
		if !slices.Contains(decoded[1:], want) {
			t.Errorf("no activity of %s has the summary %q; decoded summaries: %q", id, want, decoded[1:])
		}
	}
}

// decodeViaCodecServer posts payloads to the codec server's /decode as the
// Web UI does (its origin, the namespace header) and returns each decoded
// payload as a string.
func decodeViaCodecServer(t *testing.T, codecURL, origin string, ps []*commonpb.Payload) []string {
	t.Helper()
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: ps})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, codecURL+"/decode", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", "default")
	req.Header.Set("Origin", origin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != origin {
		t.Fatalf("codec server /decode: %s (Access-Control-Allow-Origin %q): %s", resp.Status, resp.Header.Get("Access-Control-Allow-Origin"), b)
	}
	var out commonpb.Payloads
	if err := protojson.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	var ss []string
	for _, p := range out.GetPayloads() {
		var s string
		if err := json.Unmarshal(p.GetData(), &s); err != nil {
			t.Fatalf("decoded summary is not a JSON string: %s", p.GetData())
		}
		ss = append(ss, s)
	}
	if len(ss) != len(ps) {
		t.Fatalf("codec server decoded %d payloads of %d", len(ss), len(ps))
	}
	return ss
}

// startBrowser starts headless Chromium with a new empty profile and no
// background traffic (this machine reaches only its own loopback).
func startBrowser(t *testing.T, ctx context.Context, path, shots string) (context.Context, context.CancelFunc) {
	t.Helper()
	logf, err := os.Create(filepath.Join(shots, "chromium.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = logf.Close() })
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1440, 1000),
		chromedp.CombinedOutput(logf),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		bcancel()
		acancel()
		t.Fatalf("start Chromium %s: %v (its output: %s)", path, err, logf.Name())
	}
	return bctx, func() { bcancel(); acancel() }
}

// pageTextJS is the page's text with that of its frames: the Web UI shows
// a workflow's summary and details, which may be Markdown, in a sandboxed
// frame of their own.
const pageTextJS = `(() => {
	const parts = [document.body ? document.body.innerText : ""];
	for (const f of document.querySelectorAll("iframe")) {
		let doc = null;
		try { doc = f.contentDocument; } catch (e) {}
		if (doc && doc.body) {
			parts.push(doc.body.innerText);
		} else if (f.srcdoc) {
			parts.push(new DOMParser().parseFromString(f.srcdoc, "text/html").body.innerText || "");
		}
	}
	return parts.join("\n");
})()`

// pageText opens u and polls the page's text until ok accepts it (or a
// two minutes pass), then saves a screenshot and returns the text.
func pageText(t *testing.T, ctx context.Context, u, shot string, height int64, ok func(string) bool) string {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1440, height), chromedp.Navigate(u)); err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
	var text string
	deadline := time.Now().Add(2 * time.Minute)
	for {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](pageTextJS))
		if err == nil {
			text = s
			if ok(text) {
				break
			}
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err := os.WriteFile(strings.TrimSuffix(shot, ".png")+".txt", []byte(text), 0o644); err != nil {
		t.Error(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot of %s: %v", u, err)
		return text
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Error(err)
	}
	return text
}

func clip(s string) string {
	if len(s) > 4000 {
		return s[:4000] + "…"
	}
	return s
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
