//go:build linux

package realpath_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"gopkg.in/yaml.v3"

	"github.com/hybridflow/hybridflow/internal/codec"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/sim/simserver"
	"github.com/hybridflow/hybridflow/workflows"
)

// site is the on-prem site of the tests' tenant: the shipped example's
// remote-PowerShell site, whose shell section the worker runs as shipped.
const site = "site-b"

// --- the world ---

// world is a one-tenant world file and the world as written.
type world struct {
	file   string
	before *sim.World
	tenant *sim.Tenant
}

// newWorld writes a generated one-tenant world to dir: worldwide cloud,
// on-prem servers on current builds (so the setup runs the dedicated
// Exchange hybrid application), its organisation at site-b, and an
// unexpired key of another application on the first-party service
// principal, which nothing may remove. The clock is the wall clock, as
// the stand-alone simulator requires.
func newWorld(t *testing.T, dir string, seed int64, prefix string) world {
	t.Helper()
	ts, err := sim.GenerateTenants(sim.GenerateSpec{Tenants: 1, Prefix: prefix, ForeignKeys: 1}, seed, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ts[0].Site = site
	data, err := (&sim.World{Seed: seed, Tenants: ts}).Dump()
	if err != nil {
		t.Fatal(err)
	}
	w := world{file: filepath.Join(dir, "world.yaml")}
	if err := os.WriteFile(w.file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if w.before, err = sim.Parse(w.file, data); err != nil {
		t.Fatal(err)
	}
	w.tenant = w.before.Tenants[0]
	return w
}

// inventory writes the one-tenant inventory an operator would: identity,
// cloud, initial domain and site, the rest discovered.
func (w world) inventory(t *testing.T, dir string) string {
	t.Helper()
	tn := w.tenant
	data := fmt.Sprintf("tenants:\n  - id: %s\n    display_name: %q\n    cloud: %s\n    initial_domain: %s\n    site: %s\n",
		tn.ID, tn.DisplayName, tn.Cloud, tn.InitialDomain, tn.Site)
	path := filepath.Join(dir, "inventory.yaml")
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// --- the stand-alone simulator ---

type simulator struct {
	proc  *proc
	state simserver.State
	admin *simserver.Client
}

// startSimulator runs hybridflow-sim serve on free loopback ports with a
// state directory in dir, as make sim does, and connects to its admin API.
func startSimulator(t *testing.T, dir, worldFile string) *simulator {
	t.Helper()
	stateDir := filepath.Join(dir, "sim")
	p := start(t, dir, "hybridflow-sim", env.sim, "serve", "--world", worldFile,
		"--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:0", "--state-dir", stateDir, "--log-level", "warn")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if p.exited() {
			t.Fatalf("hybridflow-sim exited at start (%v):\n%s", p.err, p.output())
		}
		if _, err := os.Stat(filepath.Join(stateDir, simserver.StateFileName)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hybridflow-sim wrote no state.json in 30s:\n%s", p.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, err := simserver.ReadState(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := simserver.NewClient(st)
	if err != nil {
		t.Fatal(err)
	}
	return &simulator{proc: p, state: st, admin: c}
}

// dump is the simulator's world now, read through the admin API.
func (s *simulator) dump(t *testing.T) *sim.World {
	t.Helper()
	data, err := s.admin.Dump(context.Background())
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	w, err := sim.Parse("dump", data)
	if err != nil {
		t.Fatalf("the dump does not parse as a world: %v", err)
	}
	return w
}

// requests is the simulator's request log after record since.
func (s *simulator) requests(t *testing.T, since uint64) []sim.RequestRecord {
	t.Helper()
	page, err := s.admin.Requests(context.Background(), since)
	if err != nil {
		t.Fatalf("request log: %v", err)
	}
	if page.Lost > 0 {
		t.Fatalf("the request log forgot %d records", page.Lost)
	}
	return page.Requests
}

// --- the worker configuration, from the shipped example ---

// workerConfig is a worker config file and where its /readyz is.
type workerConfig struct {
	path    string
	metrics string // host:port
	// shell is onprem.sites.site-b.shell as written (YAML).
	shell string
}

// shippedExample is configs/worker.example.yaml as a YAML document.
func shippedExample(t *testing.T) *yaml.Node {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(env.root, "configs", "worker.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return &doc
}

// writeWorkerConfig derives the worker config of these tests from the
// shipped example, changing only what ties it to this machine: the
// Temporal address, the roles (the cloud and site-b), the endpoints
// (the simulator's, with its CA), the codec key (a file of this test's;
// the example requires encryption), the default credential's secret (the
// simulator's file), the metrics address, and in site-b's shell section
// the program (command[0]: the PowerShell stand-in instead of pwsh) and
// connection_uri (the simulator's remote PowerShell endpoint for site-b).
// The simulate block goes. editShell, when set, changes the shell
// section further (the old default command).
func writeWorkerConfig(t *testing.T, dir, name string, s *simulator, editShell func(shell *yaml.Node)) workerConfig {
	t.Helper()
	doc := shippedExample(t)
	root := doc.Content[0]

	set(t, get(t, root, "temporal"), "address", str(env.srv.FrontendHostPort()))
	if get(t, root, "temporal", "require_encryption").Value != "true" {
		t.Fatal("the shipped example does not require encryption")
	}
	exampleCodecKeyID(t)
	set(t, get(t, root, "temporal", "codec", "keys").Content[0], "key", str("file:"+codecKeyFile(t, dir)))
	set(t, root, "roles", seq("cloud", "onprem:"+site))
	del(t, root, "simulate")
	base := strings.TrimSuffix(s.state.BaseURL, "/")
	set(t, root, "endpoints", mapping(
		"authority_host", base+"/",
		"graph", base+"/v1.0",
		"exchange_online", base,
		"ca_file", s.state.CAFile,
	))
	cred := get(t, root, "credentials", "default")
	if k := get(t, cred, "kind").Value; k != "client-secret" {
		t.Fatalf("the shipped example's default credential is %s; the test expects client-secret", k)
	}
	set(t, cred, "secret", str("file:"+s.state.ClientSecretFile))
	metrics := freeAddr(t)
	set(t, root, "metrics_address", str(metrics))

	sh := get(t, root, "onprem", "sites", site, "shell")
	cmd := get(t, sh, "command")
	if cmd.Kind != yaml.SequenceNode || len(cmd.Content) == 0 {
		t.Fatalf("the shipped onprem.sites.%s.shell.command is not a list", site)
	}
	cmd.Content[0].Value = env.pwsh
	if get(t, sh, "session").Value != "remote" {
		t.Fatalf("the shipped onprem.sites.%s.shell.session is not remote", site)
	}
	set(t, sh, "connection_uri", str(strings.TrimSuffix(s.state.GatewayURL, "/")+"/PowerShell/"+site))
	if editShell != nil {
		editShell(sh)
	}

	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	shellYAML, err := yaml.Marshal(sh)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return workerConfig{path: path, metrics: metrics, shell: string(shellYAML)}
}

// codecKey is the payload encryption key of these tests' workers and CLI
// (the shipped example encrypts payloads and refuses unsealed ones), 32
// random bytes in base64, written to each test's directory as the file
// the example's temporal.codec key references.
var codecKey = sync.OnceValue(func() string {
	k := make([]byte, codec.KeySize)
	if _, err := rand.Read(k); err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(k)
})

// codecKeyFile writes codecKey to dir/codec.key (once) and returns its path.
func codecKeyFile(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "codec.key")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if err := os.WriteFile(path, []byte(codecKey()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// exampleCodecKeyID is the ID of the shipped example's one codec key.
func exampleCodecKeyID(t *testing.T) string {
	t.Helper()
	keys := get(t, shippedExample(t).Content[0], "temporal", "codec", "keys")
	if keys.Kind != yaml.SequenceNode || len(keys.Content) != 1 {
		t.Fatal("the shipped example's temporal.codec.keys is not a list of one key")
	}
	return get(t, keys.Content[0], "id").Value
}

// codecClient is the dev server's client with the tests' codec, to read
// what the workers wrote.
func codecClient(t *testing.T) client.Client {
	t.Helper()
	secret, err := base64.StdEncoding.DecodeString(codecKey())
	if err != nil {
		t.Fatal(err)
	}
	id := exampleCodecKeyID(t)
	cd, err := codec.New(id, []codec.Key{{ID: id, Secret: secret}})
	if err != nil {
		t.Fatal(err)
	}
	dc := codec.DataConverter(cd)
	c, err := client.NewClientFromExisting(env.srv.Client(), client.Options{DataConverter: dc, FailureConverter: codec.FailureConverter(dc)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// get walks mapping keys from n; a missing key fails the test.
func get(t *testing.T, n *yaml.Node, keys ...string) *yaml.Node {
	t.Helper()
	for _, k := range keys {
		v := lookup(n, k)
		if v == nil {
			t.Fatalf("the shipped example has no %q where the test expects it", k)
		}
		n = v
	}
	return n
}

func lookup(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// set replaces or adds key in mapping m.
func set(t *testing.T, m *yaml.Node, key string, v *yaml.Node) {
	t.Helper()
	if m.Kind != yaml.MappingNode {
		t.Fatalf("set %s: not a mapping", key)
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, str(key), v)
}

// del removes key from mapping m; it must be there.
func del(t *testing.T, m *yaml.Node, key string) {
	t.Helper()
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
	t.Fatalf("the shipped example has no %q to remove", key)
}

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func seq(items ...string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, s := range items {
		n.Content = append(n.Content, str(s))
	}
	return n
}

func mapping(kv ...string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for i := 0; i+1 < len(kv); i += 2 {
		n.Content = append(n.Content, str(kv[i]), str(kv[i+1]))
	}
	return n
}

// freeAddr is a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// --- the worker and the CLI ---

// startWorker runs hybridflow-worker --config cfg and waits for its
// /readyz, which answers 200 only once every site's PowerShell host has
// reached its ready line and the workers poll. It returns the time that
// took.
func startWorker(t *testing.T, dir, name string, cfg workerConfig) (*proc, time.Duration) {
	t.Helper()
	began := time.Now()
	p := start(t, dir, name, env.worker, "--config", cfg.path)
	url := "http://" + cfg.metrics + "/readyz"
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(90 * time.Second)
	last := "no answer"
	for {
		if p.exited() {
			t.Fatalf("%s exited before it was ready (%v):\n%s", name, p.err, p.output())
		}
		resp, err := hc.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, time.Since(began)
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 90s (last /readyz: %s):\n%s", name, last, p.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cli runs the hybridflow CLI against the dev server, with the workers'
// codec key, and returns its exit status and output.
func cli(t *testing.T, dir string, timeout time.Duration, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.cli, append([]string{"--address", env.srv.FrontendHostPort()}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(childEnv(dir), "HYBRIDFLOW_CODEC_KEYS="+exampleCodecKeyID(t)+"=file:"+codecKeyFile(t, dir))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case ctx.Err() != nil:
		t.Fatalf("hybridflow %s did not end within %s:\n%s", strings.Join(args, " "), timeout, out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	}
	t.Fatalf("hybridflow %s: %v\n%s", strings.Join(args, " "), err, out)
	return 0, ""
}

// setupResult is the tenant's finished setup workflow's result, read from
// Temporal; it fails the test unless the setup ended verified in the
// dedicated-application mode.
func setupResult(t *testing.T, tenantID string) workflows.SetupResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var res workflows.SetupResult
	if err := codecClient(t).GetWorkflow(ctx, workflows.SetupWorkflowID(tenantID), "").Get(ctx, &res); err != nil {
		t.Fatalf("setup of %s: %v", tenantID, err)
	}
	if res.State != workflows.StateVerified || res.Mode != string(plan.ModeDedicatedApp) {
		t.Fatalf("setup of %s ended %s in mode %s (%v); want verified, %s", tenantID, res.State, res.Mode, res.Verification, plan.ModeDedicatedApp)
	}
	return res
}

// endSetup terminates the tenant's setup if it is still running when the
// test ends, so that it leaves no work for another test's workers.
func endSetup(t *testing.T, tenantID string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = env.srv.Client().TerminateWorkflow(ctx, workflows.SetupWorkflowID(tenantID), "", "test ended")
	})
}
