package simserver_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/sim/simserver"
)

// configs/sim/small.yaml: tenant 1 (global) and tenant 3 (gcchigh) share
// site-1, tenant 2 (china) is alone at site-2.
const (
	tenant1 = "22222222-2222-4222-8222-000000000001"
	tenant2 = "22222222-2222-4222-8222-000000000002"
	tenant3 = "22222222-2222-4222-8222-000000000003"
)

// smallWorld is configs/sim/small.yaml with its clock released to the wall
// clock (the file pins a date for other tests, which the stand-alone
// simulator refuses).
func smallWorld(t *testing.T) *sim.World {
	t.Helper()
	w, err := sim.Load(filepath.Join("..", "..", "..", "configs", "sim", "small.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	w.SetPinnedNow(time.Time{})
	return w
}

// smallWorldFile writes smallWorld to a file (for reset).
func smallWorldFile(t *testing.T) (string, []byte) {
	t.Helper()
	data, err := smallWorld(t).Dump()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "world.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func start(t *testing.T, opts simserver.Options) *simserver.Server {
	t.Helper()
	if opts.WorldFile == "" && opts.World == nil {
		opts.World = smallWorld(t)
	}
	if opts.StateDir == "" {
		opts.StateDir = t.TempDir()
	}
	s, err := simserver.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// httpsClient trusts exactly the CA in the server's CA file, as a client
// configured with that file would.
func httpsClient(t *testing.T, s *simserver.Server) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(s.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("CA file holds no certificate")
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

func admin(t *testing.T, s *simserver.Server) *simserver.Client {
	t.Helper()
	c, err := simserver.Dial(s.StateDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// token gets an app-only token from the simulator's token endpoint.
func token(t *testing.T, c *http.Client, s *simserver.Server, tenant, clientID, secret, scope string) (string, int, string) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}, "scope": {scope}}
	resp, err := c.PostForm(s.BaseURL()+"/"+tenant+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.AccessToken, resp.StatusCode, body.Error
}

func clientSecret(t *testing.T, s *simserver.Server) string {
	t.Helper()
	b, err := os.ReadFile(s.ClientSecretFile())
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func graphGet(t *testing.T, c *http.Client, s *simserver.Server, tok, path string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.BaseURL()+"/v1.0/"+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func graphScope(t *testing.T, cloudName string) string {
	return cloud.MustLookup(cloudName).GraphScope()
}

func TestGraphAndTokenOverHTTPSTrustingTheCAFile(t *testing.T) {
	s := start(t, simserver.Options{})
	c := httpsClient(t, s)
	secret := clientSecret(t, s)
	if len(secret) < 32 {
		t.Fatalf("client secret %q is too short to be random", secret)
	}
	// Any client ID with the one secret.
	for _, clientID := range []string{"7e57c11e-0000-4000-8000-000000000001", "7e57c11e-0000-4000-8000-000000000099"} {
		tok, status, e := token(t, c, s, tenant2, clientID, secret, graphScope(t, "china"))
		if status != http.StatusOK || tok == "" {
			t.Fatalf("client %s: token status %d %s", clientID, status, e)
		}
		status, body := graphGet(t, c, s, tok, "domains")
		if status != http.StatusOK || !strings.Contains(string(body), "small2.partner.onmschina.cn") {
			t.Fatalf("domains: %d %s", status, body)
		}
	}
	// Another secret is refused.
	if _, status, e := token(t, c, s, tenant2, "7e57c11e-0000-4000-8000-000000000001", secret+"x", graphScope(t, "china")); status != http.StatusUnauthorized || e != "invalid_client" {
		t.Fatalf("wrong secret: %d %s", status, e)
	}
	// A client that does not trust the CA file cannot talk to it.
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get(s.BaseURL() + "/v1.0/domains"); err == nil {
		t.Fatal("a client with the system roots reached the simulator")
	}
}

func TestStateDirectory(t *testing.T) {
	dir := t.TempDir()
	s := start(t, simserver.Options{StateDir: dir})
	for _, name := range []string{simserver.ClientSecretFileName, simserver.AdminTokenFileName} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	st, err := simserver.ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.BaseURL != s.BaseURL() || st.GatewayURL != s.GatewayURL() || st.CAFile != s.CAFile() ||
		st.ClientSecretFile != s.ClientSecretFile() || st.PID != os.Getpid() {
		t.Fatalf("state %+v", st)
	}
	// A second simulator may not take over a directory in use.
	if _, err := simserver.Start(context.Background(), simserver.Options{World: smallWorld(t), StateDir: dir}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second start: %v", err)
	}
	secret := clientSecret(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := simserver.ReadState(dir); !errors.Is(err, simserver.ErrNotRunning) || !strings.Contains(err.Error(), "hybridflow-sim serve --world FILE") {
		t.Fatalf("after close: %v", err)
	}
	// A restart keeps the client secret, so a worker configured with the
	// file keeps authenticating.
	s2 := start(t, simserver.Options{StateDir: dir})
	if got := clientSecret(t, s2); got != secret {
		t.Fatalf("secret changed across restart: %q → %q", secret, got)
	}
}

func TestStartRefusesNonLoopback(t *testing.T) {
	_, err := simserver.Start(context.Background(), simserver.Options{World: smallWorld(t), StateDir: t.TempDir(), Addr: "0.0.0.0:0"})
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("got %v", err)
	}
}

// gatewayDial opens a raw connection and sends an upgrade request for
// path; it returns the response and a reader positioned after it.
func gatewayDial(t *testing.T, s *simserver.Server, method, path string, header map[string]string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	u, _ := url.Parse(s.GatewayURL())
	c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, u.Host)
	if header == nil {
		header = map[string]string{"Connection": "Upgrade", "Upgrade": simserver.UpgradeProtocol, simserver.PIDHeader: "4242"}
	}
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, r, resp
}

// hostSession upgrades, sends the config line and reads the ready line.
func hostSession(t *testing.T, s *simserver.Server, path, mode string) (net.Conn, *bufio.Reader, map[string]any) {
	t.Helper()
	c, r, resp := gatewayDial(t, s, http.MethodPost, path, nil)
	if resp.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(resp.Header.Get("Upgrade"), simserver.UpgradeProtocol) {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("upgrade %s: %s %s", path, resp.Status, b)
	}
	cfg := map[string]any{"config": map[string]any{"mode": mode, "connectionUri": s.GatewayURL() + path}}
	return c, r, call(t, c, r, cfg)
}

// call writes one line and reads one line.
func call(t *testing.T, c net.Conn, r *bufio.Reader, v any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(v)
	if _, err := c.Write(append(b, '\n')); err != nil {
		t.Fatal(err)
	}
	line, err := r.ReadBytes('\n')
	if err != nil {
		t.Fatalf("read reply to %s: %v", b, err)
	}
	var out map[string]any
	if err := json.Unmarshal(line, &out); err != nil {
		t.Fatalf("reply %s: %v", line, err)
	}
	return out
}

func rowNames(t *testing.T, reply map[string]any) []string {
	t.Helper()
	if reply["error"] != nil {
		t.Fatalf("cmdlet error: %v", reply["error"])
	}
	rows, _ := reply["rows"].([]any)
	var names []string
	for _, r := range rows {
		m, _ := r.(map[string]any)
		if n, ok := m["Name"].(string); ok {
			names = append(names, n)
		} else if n, ok := m["Identity"].(string); ok {
			names = append(names, n)
		}
	}
	return names
}

func worldAuthServers(w *sim.World, tenant string) []string {
	var names []string
	w.View(tenant, func(t *sim.Tenant) {
		for _, a := range t.OnPrem.AuthServers {
			names = append(names, a.Name)
		}
	})
	return names
}

func TestGatewayServesTheSitesHost(t *testing.T) {
	s := start(t, simserver.Options{})
	// The site segment is case-insensitive, like the endpoint name.
	c, r, ready := hostSession(t, s, "/powershell/SITE-2", "remote")
	if ready["ready"] != true || ready["version"] != float64(1) || !strings.Contains(fmt.Sprint(ready["session"]), "4242") {
		t.Fatalf("ready line %v", ready)
	}
	got := rowNames(t, call(t, c, r, map[string]any{"id": 1, "cmdlet": "Get-AuthServer"}))
	want := worldAuthServers(s.World(), tenant2)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("Get-AuthServer: %v, world has %v", got, want)
	}
	// A write changes the live world.
	reply := call(t, c, r, map[string]any{"id": 2, "cmdlet": "Set-AuthServer", "parameters": map[string]any{"Identity": want[0], "Enabled": false}})
	if reply["error"] != nil {
		t.Fatalf("Set-AuthServer: %v", reply["error"])
	}
	s.World().View(tenant2, func(tn *sim.Tenant) {
		if tn.OnPrem.AuthServers[0].Enabled {
			t.Error("Set-AuthServer did not reach the world")
		}
	})
}

func TestGatewayServesLyncBySite(t *testing.T) {
	w := smallWorld(t)
	w.Update(tenant2, func(tn *sim.Tenant) {
		tn.Lync = &sim.LyncDeployment{Site: "pool-7", HostingProviders: []*sim.HostingProvider{{Identity: "Exchange Online", ProxyFqdn: "exap.um.outlook.com"}}}
	})
	s := start(t, simserver.Options{World: w})
	c, r, ready := hostSession(t, s, "/OcsPowerShell/pool-7", "lync")
	if ready["ready"] != true {
		t.Fatalf("ready %v", ready)
	}
	if got := rowNames(t, call(t, c, r, map[string]any{"id": 1, "cmdlet": "Get-CsHostingProvider"})); !slices.Equal(got, []string{"Exchange Online"}) {
		t.Fatalf("Get-CsHostingProvider: %v", got)
	}
	// site-2 has no Lync deployment.
	_, _, resp := gatewayDial(t, s, http.MethodPost, "/OcsPowerShell/site-2", nil)
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), "Lync deployment") {
		t.Fatalf("lync at site-2: %s %s", resp.Status, b)
	}
}

func TestGatewayRefusals(t *testing.T) {
	s := start(t, simserver.Options{})
	upgrade := map[string]string{"Connection": "Upgrade", "Upgrade": simserver.UpgradeProtocol}
	for _, tc := range []struct {
		name, method, path string
		header             map[string]string
		status             int
		reason             []string
	}{
		{"unknown site", "POST", "/PowerShell/site-9", upgrade, 404, []string{`site "site-9"`, "no tenant"}},
		{"shared site", "POST", "/PowerShell/site-1", upgrade, 409, []string{tenant1, tenant3, "exactly one"}},
		{"bad path", "POST", "/Autodiscover/site-2", upgrade, 404, []string{"/PowerShell/<site>"}},
		{"no site", "POST", "/PowerShell/", upgrade, 404, []string{"/PowerShell/<site>"}},
		{"GET", "GET", "/PowerShell/site-2", upgrade, 405, []string{"POST"}},
		{"no upgrade", "POST", "/PowerShell/site-2", map[string]string{"X-A": "b"}, 426, []string{simserver.UpgradeProtocol}},
		{"bad pid", "POST", "/PowerShell/site-2", map[string]string{"Connection": "Upgrade", "Upgrade": simserver.UpgradeProtocol, simserver.PIDHeader: "x"}, 400, []string{simserver.PIDHeader}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, resp := gatewayDial(t, s, tc.method, tc.path, tc.header)
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %s, want %d: %s", resp.Status, tc.status, b)
			}
			if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) != 1 {
				t.Errorf("reason is not one line: %q", b)
			}
			for _, want := range tc.reason {
				if !strings.Contains(string(b), want) {
					t.Errorf("reason %q does not mention %q", b, want)
				}
			}
		})
	}
	// A config line the session cannot be set up from: ready false.
	c, r, resp := gatewayDial(t, s, http.MethodPost, "/PowerShell/site-2", nil)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatal(resp.Status)
	}
	if ready := call(t, c, r, map[string]any{"config": map[string]any{"mode": "lync"}}); ready["ready"] != false || !strings.Contains(fmt.Sprint(ready["error"]), "lync") {
		t.Fatalf("lync mode on the Exchange endpoint: %v", ready)
	}
	c, r, _ = gatewayDial(t, s, http.MethodPost, "/PowerShell/site-2", nil)
	if ready := call(t, c, r, map[string]any{"hello": 1}); ready["ready"] != false {
		t.Fatalf("no config line: %v", ready)
	}
}

func TestDumpLoadDumpIsIdentical(t *testing.T) {
	s := start(t, simserver.Options{})
	a := admin(t, s)
	// A pinned clock and fault rules are part of the world file too.
	if _, err := a.SetClock(ctx(t), time.Now().UTC().Truncate(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddFaults(ctx(t), []byte("- protocol: exo\n  kind: 5xx\n  cmdlet: Set-\n  rate: 0.5\n")); err != nil {
		t.Fatal(err)
	}
	d1, err := a.Dump(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(d1), "\nnow: ") || !strings.Contains(string(d1), "kind: 5xx") {
		t.Fatalf("the dump lacks the clock or the faults:\n%.400s", d1)
	}
	// Loading it into a world without them must bring them back.
	if err := a.ClearFaults(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WallClock(ctx(t)); err != nil {
		t.Fatal(err)
	}
	w, err := sim.Parse("dump", d1)
	if err != nil {
		t.Fatalf("the dump does not load: %v", err)
	}
	if d, _ := w.Dump(); !bytes.Equal(d, d1) {
		t.Fatal("Parse(dump).Dump() differs from the dump")
	}
	if err := a.Load(ctx(t), d1); err != nil {
		t.Fatal(err)
	}
	d2, err := a.Dump(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d1, d2) {
		t.Fatalf("dump → load → dump changed the world:\n%s", firstDiff(d1, d2))
	}
}

func firstDiff(a, b []byte) string {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < len(la) && i < len(lb); i++ {
		if la[i] != lb[i] {
			return fmt.Sprintf("line %d: %q vs %q", i+1, la[i], lb[i])
		}
	}
	return fmt.Sprintf("lengths %d vs %d lines", len(la), len(lb))
}

func TestPutWorldReplacesTheLiveWorld(t *testing.T) {
	s := start(t, simserver.Options{})
	live := s.World()
	a := admin(t, s)
	// The session opened before the load keeps serving, from the new
	// contents.
	c, r, _ := hostSession(t, s, "/PowerShell/site-2", "none")
	d, err := a.Dump(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	w, err := sim.Parse("edit", d)
	if err != nil {
		t.Fatal(err)
	}
	w.Update(tenant2, func(tn *sim.Tenant) {
		tn.DisplayName = "Renamed Two"
		tn.OnPrem.AuthServers[0].Name = "Renamed ACS"
	})
	edited, _ := w.Dump()
	if err := a.Load(ctx(t), edited); err != nil {
		t.Fatal(err)
	}
	if s.World() != live {
		t.Fatal("the load replaced the *World")
	}
	got, err := a.Dump(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, edited) || !strings.Contains(string(got), "display_name: Renamed Two") {
		t.Fatalf("GET world after PUT: %s", firstDiff(got, edited))
	}
	if names := rowNames(t, call(t, c, r, map[string]any{"id": 1, "cmdlet": "Get-AuthServer"})); len(names) == 0 || names[0] != "Renamed ACS" {
		t.Fatalf("host after load: %v", names)
	}
	// A world that does not parse is refused with the reason and changes nothing.
	err = a.Load(ctx(t), []byte("tenants:\n  - id: x\n    bogus: 1\n"))
	var ae *simserver.AdminError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Message, "bogus") {
		t.Fatalf("bad world: %v", err)
	}
	if after, _ := a.Dump(ctx(t)); !bytes.Equal(after, edited) {
		t.Fatal("a refused load changed the world")
	}
}

func TestResetReloadsTheWorldFile(t *testing.T) {
	path, original := smallWorldFile(t)
	s := start(t, simserver.Options{WorldFile: path})
	a := admin(t, s)
	w, _ := sim.Parse("edit", original)
	w.Update(tenant2, func(tn *sim.Tenant) { tn.DisplayName = "Changed" })
	edited, _ := w.Dump()
	if err := a.Load(ctx(t), edited); err != nil {
		t.Fatal(err)
	}
	if err := a.Reset(ctx(t)); err != nil {
		t.Fatal(err)
	}
	got, _ := a.Dump(ctx(t))
	if !bytes.Equal(got, original) {
		t.Fatalf("reset: %s", firstDiff(got, original))
	}
	// Started from a World, reset restores what it held at start.
	s2 := start(t, simserver.Options{})
	a2 := admin(t, s2)
	before, _ := a2.Dump(ctx(t))
	s2.World().Update(tenant1, func(tn *sim.Tenant) { tn.DisplayName = "Changed" })
	if err := a2.Reset(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got, _ := a2.Dump(ctx(t)); !bytes.Equal(got, before) {
		t.Fatalf("reset of a given world: %s", firstDiff(got, before))
	}
}

func TestRequestLogListsCallsInOrderWithTenants(t *testing.T) {
	s := start(t, simserver.Options{})
	c := httpsClient(t, s)
	a := admin(t, s)
	secret := clientSecret(t, s)

	tok, status, _ := token(t, c, s, "small2.partner.onmschina.cn", "7e57c11e-0000-4000-8000-000000000001", secret, graphScope(t, "china"))
	if status != http.StatusOK {
		t.Fatalf("token %d", status)
	}
	if st, _ := graphGet(t, c, s, tok, "domains"); st != http.StatusOK {
		t.Fatalf("domains %d", st)
	}
	// Exchange Online, with a token for its audience.
	exoTok, _, _ := token(t, c, s, tenant2, "7e57c11e-0000-4000-8000-000000000001", secret, cloud.MustLookup("china").ExchangeOnlineScope())
	req, _ := http.NewRequest(http.MethodPost, s.BaseURL()+"/adminapi/beta/"+tenant2+"/InvokeCommand",
		strings.NewReader(`{"CmdletInput":{"CmdletName":"Get-AcceptedDomain","Parameters":{}}}`))
	req.Header.Set("Authorization", "Bearer "+exoTok)
	req.Header.Set("X-AnchorMailbox", "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@"+tenant2)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "small2.example.com") {
		t.Fatalf("InvokeCommand: %s %s", resp.Status, b)
	}
	// A fault, through the admin API: the next Graph read is throttled.
	if _, err := a.AddFaults(ctx(t), []byte("- protocol: graph\n  kind: throttle\n  fail_first_n: 1\n")); err != nil {
		t.Fatal(err)
	}
	if st, _ := graphGet(t, c, s, tok, "domains"); st != http.StatusTooManyRequests {
		t.Fatalf("throttled read: %d", st)
	}
	if err := a.ClearFaults(ctx(t)); err != nil {
		t.Fatal(err)
	}
	hc, hr, _ := hostSession(t, s, "/PowerShell/site-2", "none")
	call(t, hc, hr, map[string]any{"id": 1, "batch": []any{map[string]any{"cmdlet": "Get-AuthServer"}, map[string]any{"cmdlet": "Get-AuthConfig"}}})
	call(t, hc, hr, map[string]any{"id": 2, "cmdlet": "Get-NoSuchThing"})
	_, _, refused := gatewayDial(t, s, http.MethodPost, "/PowerShell/site-1", nil)
	refused.Body.Close()

	page, err := a.Requests(ctx(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ proto, method, what, tenant, fault string }
	var got []row
	for i, rec := range page.Requests {
		if rec.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i, rec.Seq)
		}
		what := rec.Path
		if rec.Cmdlet != "" {
			what = rec.Cmdlet
		}
		got = append(got, row{rec.Protocol, rec.Method, what, rec.Tenant, rec.Fault})
	}
	want := []row{
		{"token", "POST", "/small2.partner.onmschina.cn/oauth2/v2.0/token", tenant2, ""},
		{"graph", "GET", "/v1.0/domains", tenant2, ""},
		{"token", "POST", "/" + tenant2 + "/oauth2/v2.0/token", tenant2, ""},
		{"exo", "POST", "Get-AcceptedDomain", tenant2, ""},
		{"graph", "GET", "/v1.0/domains", tenant2, "throttle"},
		{"shell", "POST", "/PowerShell/site-2", tenant2, ""},
		{"shell", "batch", "Get-AuthServer,Get-AuthConfig", tenant2, ""},
		{"shell", "invoke", "Get-NoSuchThing", tenant2, ""},
		{"shell", "POST", "/PowerShell/site-1", "", ""},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("request log:\n got %v\nwant %v", got, want)
	}
	recs := page.Requests
	if recs[4].Status != http.StatusTooManyRequests || recs[4].OK || !recs[1].OK || recs[3].Status != http.StatusOK {
		t.Errorf("statuses: %+v", recs)
	}
	if recs[7].OK || recs[7].Error == "" || !recs[6].OK || recs[8].Status != http.StatusConflict {
		t.Errorf("host records: %+v %+v %+v", recs[6], recs[7], recs[8])
	}
	// since skips what was read.
	next, err := a.Requests(ctx(t), page.Last-2)
	if err != nil {
		t.Fatal(err)
	}
	if len(next.Requests) != 2 || next.Requests[0].Seq != page.Last-1 {
		t.Fatalf("since %d: %+v", page.Last-2, next)
	}
}

func TestClockIsTheWallClockOrClose(t *testing.T) {
	// A world pinned far from the wall clock is refused at start, naming
	// the field and the difference.
	w := smallWorld(t)
	pinned := time.Now().UTC().Add(-33 * 24 * time.Hour).Truncate(time.Second)
	w.SetPinnedNow(pinned)
	_, err := simserver.Start(context.Background(), simserver.Options{World: w, StateDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "now: ") || !strings.Contains(err.Error(), "792h0m0s (33.0 days) behind") {
		t.Fatalf("pinned far back: %v", err)
	}

	s := start(t, simserver.Options{})
	a := admin(t, s)
	c, err := a.Clock(ctx(t))
	if err != nil || c.Pinned || time.Since(c.Now).Abs() > time.Minute {
		t.Fatalf("clock %+v, %v", c, err)
	}
	// Too far: 409 with the reason.
	_, err = a.SetClock(ctx(t), time.Now().Add(time.Hour))
	var ae *simserver.AdminError
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict || !strings.Contains(ae.Message, "now: ") || !strings.Contains(ae.Message, "ahead of the wall clock") {
		t.Fatalf("set clock an hour ahead: %v", err)
	}
	// Within the tolerance: pinned.
	near := time.Now().UTC().Add(30 * time.Second).Truncate(time.Second)
	if c, err = a.SetClock(ctx(t), near); err != nil || !c.Pinned || !c.Now.Equal(near) {
		t.Fatalf("set clock near: %+v, %v", c, err)
	}
	if got := s.World().CurrentTime(); !got.Equal(near) {
		t.Fatalf("world now %v, want %v", got, near)
	}
	// Unpin.
	if c, err = a.WallClock(ctx(t)); err != nil || c.Pinned || time.Since(c.Now).Abs() > time.Minute {
		t.Fatalf("wall clock: %+v, %v", c, err)
	}
	// A world loaded through the API is held to the same rule.
	far := smallWorld(t)
	far.SetPinnedNow(time.Now().Add(-10 * time.Minute))
	data, _ := far.Dump()
	if err := a.Load(ctx(t), data); !errors.As(err, &ae) || ae.Status != http.StatusConflict || !strings.Contains(ae.Message, "now: ") {
		t.Fatalf("load a far-pinned world: %v", err)
	}
	if _, p := s.World().PinnedNow(); p {
		t.Fatal("the refused world's clock was applied")
	}
}

func TestAdminAPINeedsTheToken(t *testing.T) {
	s := start(t, simserver.Options{})
	c := httpsClient(t, s)
	tok, err := os.ReadFile(s.AdminTokenFile())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, path, auth string
		want                     int
	}{
		{"no token", "GET", "/_sim/world", "", 401},
		{"wrong token", "GET", "/_sim/world", "Bearer nope", 401},
		{"no token, write", "PUT", "/_sim/clock", "", 401},
		{"no token, faults", "DELETE", "/_sim/faults", "", 401},
		{"token", "GET", "/_sim/world", "Bearer " + string(tok), 200},
		{"token, unknown endpoint", "GET", "/_sim/nothing", "Bearer " + string(tok), 404},
		{"token, wrong method", "POST", "/_sim/world", "Bearer " + string(tok), 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, s.BaseURL()+tc.path, strings.NewReader(`{"wall":true}`))
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("%s %s: %s, want %d", tc.method, tc.path, resp.Status, tc.want)
			}
		})
	}
	// Admin calls are not in the request log.
	if page, err := admin(t, s).Requests(ctx(t), 0); err != nil || len(page.Requests) != 0 {
		t.Fatalf("request log %+v, %v", page, err)
	}
}

func TestFaultsThroughTheAdminAPI(t *testing.T) {
	s := start(t, simserver.Options{})
	a := admin(t, s)
	out, err := a.AddFaults(ctx(t), []byte("faults:\n  - protocol: shell\n    kind: host_crash\n    cmdlet: Set-AuthServer\n    fail_first_n: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "host_crash") || len(s.World().Faults()) != 1 {
		t.Fatalf("faults after add: %s", out)
	}
	if _, err := a.AddFaults(ctx(t), []byte("- protocol: smtp\n  kind: throttle\n  rate: 1\n")); err == nil || !strings.Contains(err.Error(), "protocol") {
		t.Fatalf("invalid rule: %v", err)
	}
	if _, err := a.AddFaults(ctx(t), []byte("- protocol: graph\n  kind: throttle\n  rate: 1\n  colour: red\n")); err == nil || !strings.Contains(err.Error(), "colour") {
		t.Fatalf("unknown field: %v", err)
	}
	// The crash reaches a gateway session: the connection closes.
	c, r, _ := hostSession(t, s, "/PowerShell/site-2", "none")
	b, _ := json.Marshal(map[string]any{"id": 1, "cmdlet": "Set-AuthServer", "parameters": map[string]any{"Identity": worldAuthServers(s.World(), tenant2)[0], "Enabled": false}})
	_, _ = c.Write(append(b, '\n'))
	if line, err := r.ReadBytes('\n'); !errors.Is(err, io.EOF) {
		t.Fatalf("after host_crash: %q, %v", line, err)
	}
	if err := a.ClearFaults(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Faults(ctx(t)); strings.TrimSpace(string(got)) != "[]" {
		t.Fatalf("faults after clear: %q", got)
	}
}
