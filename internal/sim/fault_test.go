package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/exchange"
)

// TestFaultMatchers checks, one matcher per row, which requests a rule
// applies to: method, path prefix, cmdlet prefix, operation, tenant and
// tenants, and that every matcher a rule sets must match.
func TestFaultMatchers(t *testing.T) {
	graph := func(method, path, op string) FaultRequest {
		return FaultRequest{Protocol: ProtoGraph, Method: method, Path: path, Operation: method + " " + op, Tenant: "t1"}
	}
	exo := func(cmdlet string) FaultRequest {
		return FaultRequest{Protocol: ProtoEXO, Method: "POST", Operation: cmdlet, Cmdlet: cmdlet, Tenant: "t1"}
	}
	cases := []struct {
		name string
		rule FaultRule
		req  FaultRequest
		want bool
	}{
		{"method matches", FaultRule{Protocol: ProtoGraph, Method: "PATCH"}, graph("PATCH", "/servicePrincipals/x", "servicePrincipals"), true},
		{"method matches in any case", FaultRule{Protocol: ProtoGraph, Method: "patch"}, graph("PATCH", "/servicePrincipals/x", "servicePrincipals"), true},
		{"another method does not", FaultRule{Protocol: ProtoGraph, Method: "PATCH"}, graph("GET", "/servicePrincipals/x", "servicePrincipals"), false},
		{"path prefix matches the path with ids", FaultRule{Protocol: ProtoGraph, Path: "/servicePrincipals/"}, graph("PATCH", "/servicePrincipals/x", "servicePrincipals"), true},
		{"path prefix ignores case", FaultRule{Protocol: ProtoGraph, Path: "/serviceprincipals/"}, graph("PATCH", "/servicePrincipals/x", "servicePrincipals"), true},
		{"path prefix with a slash leaves the collection out", FaultRule{Protocol: ProtoGraph, Path: "/servicePrincipals/"}, graph("GET", "/servicePrincipals", "servicePrincipals"), false},
		{"path prefix of another collection", FaultRule{Protocol: ProtoGraph, Path: "/applications"}, graph("GET", "/servicePrincipals", "servicePrincipals"), false},
		{"cmdlet prefix by verb", FaultRule{Protocol: ProtoEXO, Cmdlet: "New-"}, exo("New-IntraOrganizationConnector"), true},
		{"cmdlet prefix ignores case", FaultRule{Protocol: ProtoEXO, Cmdlet: "new-intra"}, exo("New-IntraOrganizationConnector"), true},
		{"cmdlet prefix of another verb", FaultRule{Protocol: ProtoEXO, Cmdlet: "New-"}, exo("Get-IntraOrganizationConnector"), false},
		{"cmdlet prefix longer than the name", FaultRule{Protocol: ProtoShell, Cmdlet: "Set-AuthServer"}, shellReq("Set-AuthServerX", "t1"), true},
		{"cmdlet prefix on the shell", FaultRule{Protocol: ProtoShell, Cmdlet: "Set-AuthServer"}, shellReq("Set-AuthConfig", "t1"), false},
		{"operation stays exact", FaultRule{Protocol: ProtoShell, Operation: "Set-Auth"}, shellReq("Set-AuthConfig", "t1"), false},
		{"operation exact match", FaultRule{Protocol: ProtoShell, Operation: "set-authconfig"}, shellReq("Set-AuthConfig", "t1"), true},
		{"protocol must match", FaultRule{Protocol: ProtoEXO, Cmdlet: "Set-"}, shellReq("Set-AuthConfig", "t1"), false},
		{"tenant", FaultRule{Protocol: ProtoShell, Tenant: "T1"}, shellReq("Get-AuthConfig", "t1"), true},
		{"another tenant", FaultRule{Protocol: ProtoShell, Tenant: "t2"}, shellReq("Get-AuthConfig", "t1"), false},
		{"tenants", FaultRule{Protocol: ProtoShell, Tenants: []string{"t2", "t1"}}, shellReq("Get-AuthConfig", "t1"), true},
		{"not among tenants", FaultRule{Protocol: ProtoShell, Tenants: []string{"t2", "t3"}}, shellReq("Get-AuthConfig", "t1"), false},
		{"all matchers together", FaultRule{Protocol: ProtoGraph, Method: "PATCH", Path: "/servicePrincipals/", Operation: "PATCH servicePrincipals", Tenant: "t1"}, graph("PATCH", "/servicePrincipals/x", "servicePrincipals"), true},
		{"all matchers but one", FaultRule{Protocol: ProtoGraph, Method: "PATCH", Path: "/applications/", Tenant: "t1"}, graph("PATCH", "/servicePrincipals/x", "servicePrincipals"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.rule
			r.Kind, r.Rate = FaultFail, 1
			w := &World{}
			w.SetFaults([]FaultRule{r})
			if got := w.DecideRequest(tc.req).Kind == FaultFail; got != tc.want {
				t.Fatalf("fired %v, want %v", got, tc.want)
			}
		})
	}
}

// TestFaultFiring checks when a matching rule fires: rate (a fraction of
// requests, reproducible from the seed), first N per tenant, and a latency
// rule with a rate delaying only the requests it fires for.
func TestFaultFiring(t *testing.T) {
	count := func(rule FaultRule, n int, kind func(Fault) bool) int {
		w := &World{Seed: 7}
		w.SetFaults([]FaultRule{rule})
		fired := 0
		for i := 0; i < n; i++ {
			if kind(w.DecideRequest(shellReq("Get-AuthConfig", "t1"))) {
				fired++
			}
		}
		return fired
	}
	isFail := func(f Fault) bool { return f.Kind == FaultFail }
	if n := count(FaultRule{Protocol: ProtoShell, Kind: FaultFail, Rate: 0.25}, 400, isFail); n < 60 || n > 140 {
		t.Fatalf("rate 0.25 fired %d of 400", n)
	}
	if a, b := count(FaultRule{Protocol: ProtoShell, Kind: FaultFail, Rate: 0.25}, 400, isFail), count(FaultRule{Protocol: ProtoShell, Kind: FaultFail, Rate: 0.25}, 400, isFail); a != b {
		t.Fatalf("same seed, %d and %d fired", a, b)
	}
	if n := count(FaultRule{Protocol: ProtoShell, Kind: FaultFail, FailFirstN: 3}, 10, isFail); n != 3 {
		t.Fatalf("first 3 fired %d", n)
	}
	delayed := func(f Fault) bool { return f.Delay > 0 && f.Kind == "" }
	if n := count(FaultRule{Protocol: ProtoShell, Kind: FaultLatency, Latency: time.Second, Rate: 0.25}, 400, delayed); n < 60 || n > 140 {
		t.Fatalf("latency at rate 0.25 delayed %d of 400", n)
	}
	if n := count(FaultRule{Protocol: ProtoShell, Kind: FaultLatency, Latency: time.Second}, 10, delayed); n != 10 {
		t.Fatalf("latency without rate delayed %d of 10", n)
	}
	if n := count(FaultRule{Protocol: ProtoShell, Kind: FaultLatency, Latency: time.Second, FailFirstN: 2, SkipFirstN: 1}, 10, delayed); n != 2 {
		t.Fatalf("latency for the 2 after the first delayed %d", n)
	}
}

// TestFaultAPI checks the admin API's operations: AddFaults validates
// (nothing added when one rule is bad, the error naming rule and field),
// appends while rules already there keep their first-N progress and
// FaultsFired keeps counting, Faults returns a copy, ClearFaults removes
// every rule but keeps the counts.
func TestFaultAPI(t *testing.T) {
	w := &World{}
	w.SetFaults([]FaultRule{{Protocol: ProtoShell, Cmdlet: "New-", Kind: FaultFail, FailFirstN: 1}})
	if w.DecideRequest(shellReq("New-AuthServer", "t1")).Kind != FaultFail {
		t.Fatal("first rule did not fire")
	}
	err := w.AddFaults([]FaultRule{
		{Protocol: ProtoShell, Cmdlet: "Set-", Kind: FaultThrottle, Rate: 1},
		{Protocol: ProtoShell, Method: "POST", Kind: FaultThrottle, Rate: 1},
	})
	if err == nil || !strings.Contains(err.Error(), "fault 1") || !strings.Contains(err.Error(), "method") {
		t.Fatalf("bad rule: %v", err)
	}
	if len(w.Faults()) != 1 {
		t.Fatalf("a refused AddFaults added rules: %+v", w.Faults())
	}
	if err := w.AddFaults([]FaultRule{{Protocol: ProtoShell, Cmdlet: "Set-", Kind: FaultThrottle, Rate: 1, Tenants: []string{"t1"}}}); err != nil {
		t.Fatal(err)
	}
	if f := w.DecideRequest(shellReq("New-AuthServer", "t1")); f.Kind != "" {
		t.Fatalf("the first rule started counting again: %+v", f)
	}
	if f := w.DecideRequest(shellReq("Set-AuthServer", "t1")); f.Kind != FaultThrottle {
		t.Fatalf("added rule: %+v", f)
	}
	got := w.Faults()
	if len(got) != 2 || got[1].Cmdlet != "Set-" {
		t.Fatalf("faults %+v", got)
	}
	got[1].Cmdlet, got[1].Tenants[0] = "Get-", "t9"
	if again := w.Faults(); again[1].Cmdlet != "Set-" || again[1].Tenants[0] != "t1" {
		t.Fatalf("Faults is not a copy: %+v", again)
	}
	if fired := w.FaultsFired(); fired[FaultFail] != 1 || fired[FaultThrottle] != 1 {
		t.Fatalf("fired %v", fired)
	}
	w.ClearFaults()
	if len(w.Faults()) != 0 || w.DecideRequest(shellReq("Set-AuthServer", "t1")).Kind != "" {
		t.Fatal("rules left after ClearFaults")
	}
	if fired := w.FaultsFired(); fired[FaultFail] != 1 || fired[FaultThrottle] != 1 {
		t.Fatalf("ClearFaults lost the counts: %v", fired)
	}
	// A rule added after clearing starts its own first-N count.
	if err := w.AddFaults([]FaultRule{{Protocol: ProtoShell, Cmdlet: "New-", Kind: FaultFail, FailFirstN: 1}}); err != nil {
		t.Fatal(err)
	}
	if w.DecideRequest(shellReq("New-AuthServer", "t1")).Kind != FaultFail {
		t.Fatal("a rule added after ClearFaults inherited old progress")
	}
}

// TestFaultRuleCheckNamesTheField checks that every invalid fault rule
// is refused with its field named, in the world file (with its line) and
// through AddFaults, and that rules using every new field load.
func TestFaultRuleCheckNamesTheField(t *testing.T) {
	bad := []struct {
		rule  string
		field string
	}{
		{"protocol: ldap\n    kind: fail\n    rate: 1", "protocol"},
		{"protocol: graph\n    kind: explode\n    rate: 1", "kind"},
		{"protocol: graph\n    kind: host_crash\n    rate: 1", "kind host_crash"},
		{"protocol: shell\n    method: POST\n    kind: fail\n    rate: 1", "method"},
		{"protocol: exo\n    method: GET\n    kind: fail\n    rate: 1", "method"},
		{"protocol: graph\n    method: FETCH\n    kind: fail\n    rate: 1", "method"},
		{"protocol: exo\n    path: /adminapi\n    kind: fail\n    rate: 1", "path"},
		{"protocol: graph\n    path: applications\n    kind: fail\n    rate: 1", "path"},
		{"protocol: graph\n    cmdlet: New-\n    kind: fail\n    rate: 1", "cmdlet"},
		{"protocol: graph\n    kind: throttle\n    status: 502\n    rate: 1", "status"},
		{"protocol: graph\n    kind: 5xx\n    status: 404\n    rate: 1", "status"},
		{"protocol: graph\n    kind: fail\n    rate: 2", "rate"},
		{"protocol: graph\n    kind: fail\n    fail_first_n: -1", "fail_first_n"},
		{"protocol: graph\n    kind: latency\n    latency: -1s", "latency"},
		{"protocol: graph\n    kind: fail\n    skip_first_n: 1\n    rate: 1", "skip_first_n"},
		{"protocol: graph\n    kind: latency", "latency"},
		{"protocol: graph\n    kind: apply_then_drop", "rate or fail_first_n"},
	}
	for _, tc := range bad {
		doc := "faults:\n  - " + tc.rule + "\ntenants: []\n"
		_, err := Parse("w.yaml", []byte(doc))
		if err == nil || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), "w.yaml:2: fault 0") {
			t.Errorf("%q: %v", tc.rule, err)
		}
		w := &World{}
		var rules []FaultRule
		if err := yaml.Unmarshal([]byte("- "+strings.ReplaceAll(tc.rule, "\n    ", "\n  ")), &rules); err != nil || len(rules) != 1 {
			t.Fatalf("%q: %v", tc.rule, err)
		}
		if err := w.AddFaults(rules); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("AddFaults %q: %v", tc.rule, err)
		}
	}
	good := `faults:
  - protocol: graph
    method: PATCH
    path: /servicePrincipals/
    kind: apply_then_drop
    fail_first_n: 1
  - protocol: exo
    cmdlet: New-
    method: post
    kind: 5xx
    status: 502
    rate: 0.5
  - protocol: shell
    cmdlet: Set-AuthServer
    tenants: [t1]
    kind: host_crash
    fail_first_n: 1
    skip_first_n: 2
  - protocol: shell
    operation: New-AuthServer
    kind: drop
    rate: 1
  - protocol: token
    path: /oauth2/
    kind: throttle
    retry_after: 2s
    rate: 0.1
  - protocol: graph
    kind: latency
    latency: 10ms
    rate: 0.5
tenants: []
`
	w, err := Parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if f := w.Faults(); len(f) != 6 || f[0].Path != "/servicePrincipals/" || f[1].Status != 502 || f[2].Cmdlet != "Set-AuthServer" || f[4].Protocol != ProtoToken {
		t.Fatalf("%+v", f)
	}
	// A dump reads back to the same rules.
	out, err := w.Dump()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("dump.yaml", out)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := w.Faults(), back.Faults(); !reflect.DeepEqual(a, b) || !reflect.DeepEqual(a[1], FaultRule{Protocol: ProtoEXO, Cmdlet: "New-", Method: "post", Kind: FaultServer, Status: 502, Rate: 0.5}) {
		t.Fatalf("dumped %+v, read back %+v", a, b)
	}
}

// graphNoReply sends a request and asserts the connection closed without
// an HTTP response.
func graphNoReply(t *testing.T, g *graphEnv, method, path string, body any) {
	t.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, g.s.BaseURL+path, bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+g.token(t, smallChina))
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.s.Client.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("%s %s: got HTTP %d, want no reply", method, path, resp.StatusCode)
	}
}

// TestGraphFaultMatchersAndStatus checks over loopback that Graph requests
// are matched by method and path prefix (the path after /v1.0, ids
// included) and that a 5xx rule answers its own status: 502 for the
// matching PATCH, nothing for a GET of the same object or a PATCH of
// another collection.
func TestGraphFaultMatchersAndStatus(t *testing.T) {
	g := startGraphEnv(t)
	sp := g.firstParty(t, smallChina)
	g.w.SetFaults([]FaultRule{{Protocol: ProtoGraph, Method: "PATCH", Path: "/servicePrincipals/", Kind: FaultServer, Status: 502, Rate: 1}})
	tok := g.token(t, smallChina)
	if r := g.do(t, tok, "GET", "/v1.0/servicePrincipals/"+sp.ID, nil); r.status != 200 {
		t.Fatalf("GET: %d %s", r.status, r.raw)
	}
	body := map[string]any{"keyCredentials": []any{keyJSON(g.authCert(t, smallChina).DER, nil)}}
	r := g.do(t, tok, "PATCH", "/v1.0/servicePrincipals/"+sp.ID, body)
	if r.status != 502 || r.errCode() != GraphCodeInternal || r.header.Get("Retry-After") != "" {
		t.Fatalf("PATCH: %d %s Retry-After %q", r.status, r.raw, r.header.Get("Retry-After"))
	}
	if len(g.firstParty(t, smallChina).KeyCredentials) != len(sp.KeyCredentials) {
		t.Fatal("a 5xx request changed the world")
	}
	created := g.do(t, tok, "POST", "/v1.0/applications", map[string]any{"displayName": "app"})
	if created.status != 201 {
		t.Fatalf("POST applications: %d %s", created.status, created.raw)
	}
	if r := g.do(t, tok, "PATCH", "/v1.0/applications/"+created.body["id"].(string), map[string]any{"displayName": "renamed"}); r.status != 204 {
		t.Fatalf("PATCH applications: %d %s", r.status, r.raw)
	}
	// Default 5xx status: 503 with Retry-After.
	g.w.SetFaults([]FaultRule{{Protocol: ProtoGraph, Path: "/domains", Kind: FaultServer, Rate: 1}})
	if r := g.do(t, tok, "GET", "/v1.0/domains", nil); r.status != 503 || r.errCode() != GraphCodeUnavailable || r.header.Get("Retry-After") != "1" {
		t.Fatalf("default 5xx: %d %s Retry-After %q", r.status, r.raw, r.header.Get("Retry-After"))
	}
}

// TestGraphApplyThenDrop checks Graph's apply_then_drop on a plain
// request: a key PATCH of the first-party service principal gets no reply,
// yet the key is in the world; the same rule as drop leaves the world
// unchanged.
func TestGraphApplyThenDrop(t *testing.T) {
	for _, kind := range []string{FaultApplyThenDrop, FaultDrop} {
		t.Run(kind, func(t *testing.T) {
			g := startGraphEnv(t)
			sp := g.firstParty(t, smallChina)
			cert := g.authCert(t, smallChina)
			g.w.SetFaults([]FaultRule{{Protocol: ProtoGraph, Operation: "PATCH servicePrincipals", Kind: kind, FailFirstN: 1}})
			graphNoReply(t, g, "PATCH", "/v1.0/servicePrincipals/"+sp.ID, map[string]any{"keyCredentials": []any{keyJSON(cert.DER, nil)}})
			after := g.firstParty(t, smallChina)
			applied := len(after.KeyCredentials) == 1 && bytes.Equal(after.KeyCredentials[0].Key, cert.DER)
			if applied != (kind == FaultApplyThenDrop) {
				t.Fatalf("key in the world: %v, keys %d", applied, len(after.KeyCredentials))
			}
			if g.w.FaultsFired()[kind] != 1 {
				t.Fatalf("fired %v", g.w.FaultsFired())
			}
			if tc := g.w.Stats().ByTenant[strings.ToLower(smallChina)]; (tc.GraphWrites == 1) != applied {
				t.Fatalf("counters %+v", *tc)
			}
		})
	}
}

// TestGraphBatchApplyThenDrop checks apply_then_drop on a PATCH inside a
// $batch: the batch connection closes without a reply, the PATCH (and the
// request before it) happened, the request after it never ran; and on
// the batch as a whole ("POST $batch"): every request ran, no reply.
func TestGraphBatchApplyThenDrop(t *testing.T) {
	batch := func(g *graphEnv) (map[string]any, string) {
		sp := g.firstParty(t, smallChina)
		cert := g.authCert(t, smallChina)
		return map[string]any{"requests": []any{
			map[string]any{"id": "1", "method": "POST", "url": "/applications", "headers": map[string]string{"Content-Type": "application/json"}, "body": map[string]any{"displayName": "before"}},
			map[string]any{"id": "2", "method": "PATCH", "url": "/servicePrincipals/" + sp.ID, "headers": map[string]string{"Content-Type": "application/json"},
				"body": map[string]any{"keyCredentials": []any{keyJSON(cert.DER, nil)}}},
			map[string]any{"id": "3", "method": "POST", "url": "/applications", "headers": map[string]string{"Content-Type": "application/json"}, "body": map[string]any{"displayName": "after"}},
		}}, sp.ID
	}
	apps := func(g *graphEnv) map[string]bool {
		out := map[string]bool{}
		g.w.View(smallChina, func(tn *Tenant) {
			for _, a := range tn.Entra.Applications {
				out[a.DisplayName] = true
			}
		})
		return out
	}
	cases := []struct {
		name       string
		rule       FaultRule
		afterAlso  bool
		keyApplied bool
	}{
		{"a PATCH in the batch", FaultRule{Protocol: ProtoGraph, Method: "PATCH", Path: "/servicePrincipals/", Kind: FaultApplyThenDrop, Rate: 1}, false, true},
		{"the whole batch", FaultRule{Protocol: ProtoGraph, Operation: "POST $batch", Kind: FaultApplyThenDrop, Rate: 1}, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := startGraphEnv(t)
			body, _ := batch(g)
			g.w.SetFaults([]FaultRule{tc.rule})
			graphNoReply(t, g, "POST", "/v1.0/$batch", body)
			got := apps(g)
			if !got["before"] || got["after"] != tc.afterAlso {
				t.Fatalf("applications %v", got)
			}
			if after := g.firstParty(t, smallChina); len(after.KeyCredentials) != 1 || !bytes.Equal(after.KeyCredentials[0].Key, g.authCert(t, smallChina).DER) {
				t.Fatalf("key not applied: %d keys", len(after.KeyCredentials))
			}
		})
	}
}

// TestEXOFaultCmdletPrefixAndStatus checks over loopback that Exchange
// Online requests are matched by cmdlet prefix and method, and that a 5xx
// rule answers its status.
func TestEXOFaultCmdletPrefixAndStatus(t *testing.T) {
	w := onlineTestWorld()
	w.SetFaults([]FaultRule{{Protocol: ProtoEXO, Method: "POST", Cmdlet: "new-", Kind: FaultServer, Status: 500, Rate: 1}})
	srv := exoTestServer(t, w)
	if resp, body := exoTestDo(t, srv, exoTestDefaults(onlineTestTenantID, "Get-IntraOrganizationConnector", nil)); resp.StatusCode != 200 {
		t.Fatalf("Get: %d %v", resp.StatusCode, body)
	}
	params := map[string]any{"Name": "X", "DiscoveryEndpoint": "https://autodiscover.contoso.com/autodiscover/autodiscover.svc", "TargetAddressDomains": []any{"contoso.com"}}
	resp, body := exoTestDo(t, srv, exoTestDefaults(onlineTestTenantID, "New-IntraOrganizationConnector", params))
	if resp.StatusCode != 500 || body["error"].(map[string]any)["code"] != "InternalServerError" {
		t.Fatalf("New: %d %v", resp.StatusCode, body)
	}
	if n := exoConnectors(w); n != 1 {
		t.Fatalf("a 5xx request created a connector: %d", n)
	}
}

func exoConnectors(w *World) int {
	n := 0
	w.View(onlineTestTenantID, func(tn *Tenant) { n = len(tn.Online.IntraOrganizationConnectors) })
	return n
}

// TestEXOApplyThenDrop checks Exchange Online's apply_then_drop: the
// InvokeCommand of New-IntraOrganizationConnector gets no reply, yet the
// connector exists; drop, for contrast, creates nothing.
func TestEXOApplyThenDrop(t *testing.T) {
	for _, kind := range []string{FaultApplyThenDrop, FaultDrop} {
		t.Run(kind, func(t *testing.T) {
			w := onlineTestWorld()
			w.SetFaults([]FaultRule{{Protocol: ProtoEXO, Cmdlet: "New-IntraOrganizationConnector", Kind: kind, FailFirstN: 1}})
			srv := exoTestServer(t, w)
			params := map[string]any{"Name": "X", "DiscoveryEndpoint": "https://autodiscover.contoso.com/autodiscover/autodiscover.svc", "TargetAddressDomains": []any{"contoso.com"}}
			r := exoTestDefaults(onlineTestTenantID, "New-IntraOrganizationConnector", params)
			req, _ := http.NewRequest(r.method, srv.URL+r.path, strings.NewReader(r.body))
			req.Header.Set("Authorization", r.token)
			req.Header.Set("X-AnchorMailbox", r.anchor)
			if resp, err := srv.Client().Do(req); err == nil {
				resp.Body.Close()
				t.Fatalf("want no reply, got HTTP %d", resp.StatusCode)
			}
			if n, want := exoConnectors(w), map[bool]int{true: 2, false: 1}[kind == FaultApplyThenDrop]; n != want {
				t.Fatalf("%d connectors, want %d", n, want)
			}
			if w.FaultsFired()[kind] != 1 {
				t.Fatalf("fired %v", w.FaultsFired())
			}
		})
	}
}

// TestTokenFaults checks the token endpoint's faults over loopback:
// throttle (429, Retry-After, an OAuth error body), 5xx with its status,
// fail with "<status> <error>", path matching, and apply_then_drop (the
// grant is recorded, the client gets no reply).
func TestTokenFaults(t *testing.T) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"c1"}, "client_secret": {"s"}, "scope": {"https://microsoftgraph.chinacloudapi.cn/.default"}}
	start := func(t *testing.T, rule FaultRule) *Servers {
		w, err := Load(smallWorldPath)
		if err != nil {
			t.Fatal(err)
		}
		w.SetFaults([]FaultRule{rule})
		s, err := Start(context.Background(), w, ServerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	cases := []struct {
		name   string
		rule   FaultRule
		status int
		code   string
		retry  string
	}{
		{"throttle", FaultRule{Kind: FaultThrottle, RetryAfter: 3 * time.Second}, 429, "temporarily_unavailable", "3"},
		{"5xx with a status", FaultRule{Kind: FaultServer, Status: 504}, 504, "temporarily_unavailable", ""},
		{"fail", FaultRule{Kind: FaultFail, ErrorType: "401 invalid_client"}, 401, "invalid_client", ""},
		{"fail without a status", FaultRule{Kind: FaultFail, ErrorType: "invalid_client"}, 400, "invalid_client", ""},
		{"another path passes", FaultRule{Kind: FaultFail, Path: "/oauth2/v2.0/authorize"}, 200, "", ""},
		{"another tenant passes", FaultRule{Kind: FaultFail, Tenant: smallGlobal}, 200, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rule := tc.rule
			rule.Protocol, rule.Rate = ProtoToken, 1
			if err := rule.check(); err != nil {
				t.Fatal(err)
			}
			s := start(t, rule)
			req, _ := http.NewRequest("POST", s.BaseURL+"/"+smallChina+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := s.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tc.status || resp.Header.Get("Retry-After") != tc.retry || (tc.code != "" && body["error"] != tc.code) {
				t.Fatalf("%d Retry-After %q %v", resp.StatusCode, resp.Header.Get("Retry-After"), body)
			}
			if grants := len(s.TokenGrants()); grants != map[bool]int{true: 1, false: 0}[tc.status == 200] {
				t.Fatalf("%d grants", grants)
			}
		})
	}
	t.Run("apply_then_drop", func(t *testing.T) {
		s := start(t, FaultRule{Protocol: ProtoToken, Method: "POST", Path: "/oauth2/", Kind: FaultApplyThenDrop, Rate: 1})
		req, _ := http.NewRequest("POST", s.BaseURL+"/"+smallChina+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if resp, err := s.Client.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("want no reply, got HTTP %d", resp.StatusCode)
		}
		if g := s.TokenGrants(); len(g) != 1 || g[0].TenantID != smallChina {
			t.Fatalf("grants %+v", g)
		}
	})
}

// TestDirectRunnerCrashKinds checks the in-process runner workflow tests
// use: host_crash is a dead host and the cmdlet did not run;
// apply_then_drop is a dead host and the cmdlet ran.
func TestDirectRunnerCrashKinds(t *testing.T) {
	for _, kind := range []string{FaultHostCrash, FaultApplyThenDrop} {
		t.Run(kind, func(t *testing.T) {
			w := NewShellTestWorld()
			w.SetFaults([]FaultRule{{Protocol: ProtoShell, Cmdlet: "New-AuthServer", Kind: kind, FailFirstN: 1}})
			d := DirectRunner{W: w, Side: OnPrem, Tenant: ShellTestTenant}
			_, err := d.Run(context.Background(), exchange.Command{Cmdlet: "New-AuthServer", Parameters: map[string]any{
				"Name": "evoSTS", "Type": "AzureAD", "AuthMetadataUrl": cloud.MustLookup("global").EvoSTSMetadataURL("contoso.onmicrosoft.com")}})
			if !exchange.HasType(err, exchange.TypeHostDied) {
				t.Fatalf("got %v", err)
			}
			created := false
			w.View(ShellTestTenant, func(tn *Tenant) {
				for _, a := range tn.OnPrem.AuthServers {
					created = created || a.Name == "evoSTS"
				}
			})
			if created != (kind == FaultApplyThenDrop) {
				t.Fatalf("auth server created: %v", created)
			}
		})
	}
}
