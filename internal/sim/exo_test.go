package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/exchange"
)

// These tests pin the wire shape of the simulated endpoint with raw HTTP;
// internal/exchange/online tests the real client against it.

func exoTestServer(t *testing.T, w *World) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(NewEXOHandler(w))
	t.Cleanup(srv.Close)
	return srv
}

type exoTestReq struct {
	method, path, token, anchor, body string
}

func exoTestDefaults(tenant, cmdlet string, params map[string]any) exoTestReq {
	b, _ := json.Marshal(map[string]any{"CmdletInput": map[string]any{"CmdletName": cmdlet, "Parameters": params}})
	return exoTestReq{
		method: http.MethodPost, path: "/adminapi/beta/" + tenant + "/InvokeCommand",
		token: "Bearer " + exoTestToken(tenant, "https://outlook.office365.com/.default", time.Now()), anchor: exoAnchorPrefix + tenant, body: string(b),
	}
}

func exoTestToken(tenant, scope string, now time.Time) string {
	tok, _ := IssueToken(tenant, scope, now)
	return tok
}

func exoTestDo(t *testing.T, srv *httptest.Server, r exoTestReq) (*http.Response, map[string]any) {
	t.Helper()
	url := r.path
	if !strings.HasPrefix(url, "https://") {
		url = srv.URL + url
	}
	req, err := http.NewRequest(r.method, url, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if r.token != "" {
		req.Header.Set("Authorization", r.token)
	}
	if r.anchor != "" {
		req.Header.Set("X-AnchorMailbox", r.anchor)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("reply is not JSON (%d): %q", resp.StatusCode, raw)
	}
	return resp, body
}

func TestEXOErrorEnvelope(t *testing.T) {
	w := onlineTestWorld()
	srv := exoTestServer(t, w)
	resp, body := exoTestDo(t, srv, exoTestDefaults(onlineTestTenantID, "Get-IntraOrganizationConnector", map[string]any{"Identity": "nope"}))
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d", resp.StatusCode)
	}
	e := body["error"].(map[string]any)
	details := e["details"].([]any)
	if e["code"] == "" || len(details) != 1 {
		t.Fatalf("envelope %v", body)
	}
	d := details[0].(map[string]any)
	var ctx map[string]string
	if d["code"] != "Context" || json.Unmarshal([]byte(d["message"].(string)), &ctx) != nil {
		t.Fatalf("Context detail %v", d)
	}
	if ctx["TypeName"] != exchange.TypeNotFound || !strings.Contains(ctx["Message"], "nope") {
		t.Fatalf("Context %v", ctx)
	}
	// The human message carries the type too, as Exchange Online's does,
	// but clients must read TypeName; nothing else is contractual.
	if !strings.Contains(e["message"].(string), "|"+exchange.TypeNotFound+"|") {
		t.Fatalf("message %q", e["message"])
	}
}

func TestEXORequestChecks(t *testing.T) {
	w := onlineTestWorld()
	srv := exoTestServer(t, w)
	ok := exoTestDefaults(onlineTestTenantID, "Get-OrganizationConfig", nil)
	other := "ffffffff-0000-4000-8000-000000000000"
	cases := []struct {
		name   string
		edit   func(r *exoTestReq)
		status int
		code   string
	}{
		{"valid", func(*exoTestReq) {}, 200, ""},
		{"no token", func(r *exoTestReq) { r.token = "" }, 401, "Unauthorized"},
		{"not a bearer token", func(r *exoTestReq) { r.token = "Basic dXNlcjpwYXNz" }, 401, "Unauthorized"},
		{"foreign token format", func(r *exoTestReq) { r.token = "Bearer eyJhbGciOi.x.y" }, 401, "Unauthorized"},
		{"expired token", func(r *exoTestReq) {
			r.token = "Bearer " + exoTestToken(onlineTestTenantID, "https://outlook.office365.com/.default", time.Now().Add(-2*TokenLifetime))
		}, 401, "Unauthorized"},
		{"Graph token", func(r *exoTestReq) {
			r.token = "Bearer " + exoTestToken(onlineTestTenantID, "https://graph.microsoft.com/.default", time.Now())
		}, 401, "Unauthorized"},
		{"another cloud's Exchange Online", func(r *exoTestReq) {
			r.token = "Bearer " + exoTestToken(onlineTestTenantID, "https://partner.outlook.cn/.default", time.Now())
		}, 401, "Unauthorized"},
		{"token for another tenant", func(r *exoTestReq) {
			r.token = "Bearer " + exoTestToken(other, "https://outlook.office365.com/.default", time.Now())
		}, 403, "Forbidden"},
		{"tenant the world lacks", func(r *exoTestReq) {
			*r = exoTestDefaults(other, "Get-OrganizationConfig", nil)
		}, 403, "Forbidden"},
		{"no anchor mailbox", func(r *exoTestReq) { r.anchor = "" }, 400, "BadRequest"},
		{"anchor of another tenant", func(r *exoTestReq) { r.anchor = exoAnchorPrefix + other }, 400, "BadRequest"},
		{"GET", func(r *exoTestReq) { r.method = http.MethodGet }, 405, "MethodNotAllowed"},
		{"unknown route", func(r *exoTestReq) { r.path = "/adminapi/beta/" + onlineTestTenantID + "/Other" }, 404, "NotFound"},
		{"body without a cmdlet", func(r *exoTestReq) { r.body = `{"CmdletInput":{}}` }, 400, "BadRequest"},
		{"body not JSON", func(r *exoTestReq) { r.body = `CmdletName=Get-OrganizationConfig` }, 400, "BadRequest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ok
			tc.edit(&r)
			resp, body := exoTestDo(t, srv, r)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tc.status, body)
			}
			if tc.code != "" {
				e, _ := body["error"].(map[string]any)
				if e == nil || e["code"] != tc.code || e["details"] != nil {
					t.Fatalf("want a protocol error %q without Context, got %v", tc.code, body)
				}
			}
			if tc.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
				t.Fatalf("401 without a Bearer challenge")
			}
		})
	}
	// Refused requests never reach the cmdlet engine or the counters.
	if got := w.Stats().EXOCalls; got != 1 {
		t.Fatalf("EXOCalls = %d, want only the valid request", got)
	}
}

func TestEXOPaging(t *testing.T) {
	w := onlineTestWorld()
	w.EXOPageSize = 2
	for i := range 4 {
		w.Tenants[0].Online.IntraOrganizationConnectors = append(w.Tenants[0].Online.IntraOrganizationConnectors,
			&IntraOrgConnector{Name: fmt.Sprintf("C%d", i), DiscoveryEndpoint: "https://x/", TargetAddressDomains: []string{fmt.Sprintf("d%d.example", i)}})
	}
	srv := exoTestServer(t, w)
	r := exoTestDefaults(onlineTestTenantID, "Get-IntraOrganizationConnector", nil)
	var names []string
	var links []string
	for page := 0; ; page++ {
		if page > 5 {
			t.Fatal("paging does not end")
		}
		resp, body := exoTestDo(t, srv, r)
		if resp.StatusCode != 200 {
			t.Fatalf("page %d: %d %v", page, resp.StatusCode, body)
		}
		if !strings.Contains(body["@odata.context"].(string), "/adminapi/beta/"+onlineTestTenantID+"/$metadata") {
			t.Fatalf("@odata.context %v", body["@odata.context"])
		}
		for _, row := range body["value"].([]any) {
			names = append(names, row.(map[string]any)["Name"].(string))
		}
		next, _ := body["@odata.nextLink"].(string)
		if next == "" {
			break
		}
		if !strings.HasPrefix(next, srv.URL+"/adminapi/beta/"+onlineTestTenantID+"/InvokeCommand?") {
			t.Fatalf("nextLink %q does not point back at the endpoint", next)
		}
		links = append(links, next)
		r.path = next
	}
	if want := "Existing C0 C1 C2 C3"; strings.Join(names, " ") != want || len(links) != 2 {
		t.Fatalf("rows %v over %d links, want %s over 2", names, len(links), want)
	}
	// A nextLink can be fetched again (a client retry after a lost reply).
	r.path = links[0]
	if _, body := exoTestDo(t, srv, r); len(body["value"].([]any)) != 2 || body["value"].([]any)[0].(map[string]any)["Name"] != "C1" {
		t.Fatalf("refetch %v", body)
	}
	// A continuation belongs to its tenant.
	w.mu.Lock()
	w.Tenants = append(w.Tenants, &Tenant{ID: "ffffffff-0000-4000-8000-000000000000", Cloud: "global"})
	w.reindex()
	w.mu.Unlock()
	stolen := exoTestDefaults("ffffffff-0000-4000-8000-000000000000", "Get-IntraOrganizationConnector", nil)
	stolen.path = strings.Replace(links[0], onlineTestTenantID, "ffffffff-0000-4000-8000-000000000000", 1)
	if resp, body := exoTestDo(t, srv, stolen); resp.StatusCode != 400 {
		t.Fatalf("another tenant's skiptoken: %d %v", resp.StatusCode, body)
	}
}

func TestEXOFaults(t *testing.T) {
	cases := []struct {
		name       string
		rule       FaultRule
		status     int
		retryAfter string
		typeName   string
	}{
		{"throttle with Retry-After", FaultRule{Kind: FaultThrottle, RetryAfter: 1500 * time.Millisecond}, 429, "2", ""},
		{"throttle defaults Retry-After", FaultRule{Kind: FaultThrottle}, 429, "1", ""},
		{"5xx with Retry-After", FaultRule{Kind: FaultServer, RetryAfter: 3 * time.Second}, 503, "3", ""},
		{"5xx without Retry-After", FaultRule{Kind: FaultServer}, 503, "", ""},
		{"fail with a type", FaultRule{Kind: FaultFail, ErrorType: exchange.TypeAuthMetadata, Message: "metadata unreachable"}, 400, "", exchange.TypeAuthMetadata},
		{"fail defaults to transient", FaultRule{Kind: FaultFail}, 400, "", exchange.TypeTransient},
		{"latency only", FaultRule{Kind: FaultLatency, Latency: 30 * time.Millisecond}, 200, "", ""},
		{"other cmdlet unaffected", FaultRule{Kind: FaultThrottle, Operation: "Get-AcceptedDomain"}, 200, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := onlineTestWorld()
			rule := tc.rule
			rule.Protocol = ProtoEXO
			if rule.Operation == "" {
				rule.Operation = "Get-OrganizationConfig"
			}
			rule.FailFirstN = 1
			w.SetFaults([]FaultRule{rule})
			srv := exoTestServer(t, w)
			start := time.Now()
			resp, body := exoTestDo(t, srv, exoTestDefaults(onlineTestTenantID, "Get-OrganizationConfig", nil))
			if resp.StatusCode != tc.status || resp.Header.Get("Retry-After") != tc.retryAfter {
				t.Fatalf("got %d Retry-After %q, want %d %q: %v", resp.StatusCode, resp.Header.Get("Retry-After"), tc.status, tc.retryAfter, body)
			}
			if tc.typeName != "" {
				var ctx map[string]string
				d := body["error"].(map[string]any)["details"].([]any)[0].(map[string]any)
				_ = json.Unmarshal([]byte(d["message"].(string)), &ctx)
				if ctx["TypeName"] != tc.typeName {
					t.Fatalf("TypeName %q, want %q", ctx["TypeName"], tc.typeName)
				}
			}
			if rule.Kind == FaultLatency && time.Since(start) < rule.Latency {
				t.Fatalf("latency not applied")
			}
			// FailFirstN = 1: the next request goes through.
			if resp, _ := exoTestDo(t, srv, exoTestDefaults(onlineTestTenantID, "Get-OrganizationConfig", nil)); resp.StatusCode != 200 {
				t.Fatalf("second request: %d", resp.StatusCode)
			}
		})
	}
}

func TestEXODropClosesTheConnection(t *testing.T) {
	w := onlineTestWorld()
	w.SetFaults([]FaultRule{{Protocol: ProtoEXO, Kind: FaultDrop, FailFirstN: 1}})
	srv := exoTestServer(t, w)
	r := exoTestDefaults(onlineTestTenantID, "Get-OrganizationConfig", nil)
	req, _ := http.NewRequest(r.method, srv.URL+r.path, strings.NewReader(r.body))
	req.Header.Set("Authorization", r.token)
	req.Header.Set("X-AnchorMailbox", r.anchor)
	if resp, err := srv.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("want a transport error, got HTTP %d", resp.StatusCode)
	}
	if w.FaultsFired()[FaultDrop] != 1 {
		t.Fatal("drop fault not recorded")
	}
}
