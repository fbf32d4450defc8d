package sim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

func TestTokenRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name, tenant, scope, aud string
	}{
		{"GUID tenant, Graph", smallGlobal, "https://graph.microsoft.com/.default", "https://graph.microsoft.com"},
		{"domain tenant, Exchange Online", "contoso.onmicrosoft.com", "https://outlook.office365.com/.default", "https://outlook.office365.com"},
		{"resource without /.default", "t", "https://Graph.Microsoft.US/", "https://graph.microsoft.us"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, issued := IssueToken(tc.tenant, tc.scope, now)
			got, err := ParseToken(s, now.Add(time.Minute))
			if err != nil || got != issued || got.TenantID != tc.tenant || got.Audience != tc.aud || !got.Expires.Equal(now.Add(TokenLifetime)) {
				t.Fatalf("%+v %v", got, err)
			}
			// exo.go reads the tenant as everything between "simtok." and the last dot.
			rest := strings.TrimPrefix(s, "simtok.")
			if rest[:strings.LastIndexByte(rest, '.')] != tc.tenant {
				t.Fatalf("token %q does not carry the tenant where exo.go looks", s)
			}
			if _, err := ParseToken(s, now.Add(TokenLifetime)); !errors.Is(err, ErrTokenExpired) {
				t.Fatalf("at expiry: %v", err)
			}
		})
	}
	for _, bad := range []string{"", "simtok", "simtok.t", "simtok.t.!!!", "simtok..YWJj", "Bearer x", "simtok.t." + "MTIz"} {
		if _, err := ParseToken(bad, now); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestStaticCredential(t *testing.T) {
	c := StaticCredential(smallChina)
	tok, err := c.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://microsoftgraph.chinacloudapi.cn/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseToken(tok.Token, time.Now())
	if err != nil || got.TenantID != smallChina || got.Audience != "https://microsoftgraph.chinacloudapi.cn" || tok.ExpiresOn.Before(time.Now().Add(50*time.Minute)) {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := c.GetToken(context.Background(), policy.TokenRequestOptions{}); err == nil {
		t.Fatal("no scope accepted")
	}
}

type tokenReply struct {
	status int
	body   map[string]any
}

func postToken(t *testing.T, s *Servers, tenant string, form url.Values, basic ...string) tokenReply {
	t.Helper()
	req, _ := http.NewRequest("POST", s.BaseURL+"/"+tenant+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		req.SetBasicAuth(basic[0], basic[1])
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("token endpoint answered %s", raw)
	}
	return tokenReply{resp.StatusCode, body}
}

func TestTokenEndpoint(t *testing.T) {
	const client, secret = "c11e0000-0000-4000-8000-000000000001", "correct horse"
	graphScope := "https://microsoftgraph.chinacloudapi.cn/.default"
	form := func(kv ...string) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}, "client_id": {client}, "client_secret": {secret}, "scope": {graphScope + " openid profile offline_access"}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}
	cases := []struct {
		name    string
		secrets map[string]string
		tenant  string
		form    url.Values
		basic   []string
		status  int
		aadsts  string
		method  string
	}{
		{"secret", map[string]string{client: secret}, smallChina, form(), nil, 200, "", "client_secret"},
		{"any secret when none configured", nil, smallChina, form("client_secret", "whatever"), nil, 200, "", "client_secret"},
		{"basic authentication", map[string]string{client: secret}, smallChina, form("client_secret", ""), []string{client, secret}, 200, "", "client_secret_basic"},
		{"tenant by domain", nil, "small2.partner.onmschina.cn", form(), nil, 200, "", "client_secret"},
		{"client assertion", nil, smallChina, form("client_secret", "", "client_assertion", "a.b.c", "client_assertion_type", jwtBearerAssertion), nil, 200, "", "client_assertion"},
		{"wrong secret", map[string]string{client: secret}, smallChina, form("client_secret", "wrong"), nil, 401, "AADSTS7000215", ""},
		{"unknown client", map[string]string{"someone-else": secret}, smallChina, form(), nil, 400, "AADSTS700016", ""},
		{"no credential", nil, smallChina, form("client_secret", ""), nil, 401, "AADSTS7000216", ""},
		{"malformed assertion", nil, smallChina, form("client_secret", "", "client_assertion", "nope", "client_assertion_type", jwtBearerAssertion), nil, 400, "AADSTS50027", ""},
		{"no client id", nil, smallChina, form("client_id", ""), nil, 400, "AADSTS900144", ""},
		{"other grant", nil, smallChina, form("grant_type", "password"), nil, 400, "AADSTS70003", ""},
		{"scope without /.default", nil, smallChina, form("scope", "https://graph.microsoft.com/User.Read"), nil, 400, "AADSTS1002012", ""},
		{"two resources", nil, smallChina, form("scope", graphScope+" https://outlook.office365.com/.default"), nil, 400, "AADSTS1002012", ""},
		{"unknown tenant", nil, "nowhere.onmicrosoft.com", form(), nil, 400, "AADSTS90002", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, err := Load(smallWorldPath)
			if err != nil {
				t.Fatal(err)
			}
			s, err := Start(context.Background(), w, ServerOptions{ClientSecrets: tc.secrets})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			r := postToken(t, s, tc.tenant, tc.form, tc.basic...)
			if r.status != tc.status {
				t.Fatalf("status %d: %v", r.status, r.body)
			}
			grants := s.TokenGrants()
			if tc.status != 200 {
				if desc, _ := r.body["error_description"].(string); !strings.HasPrefix(desc, tc.aadsts+":") {
					t.Fatalf("error_description %q", desc)
				}
				if len(grants) != 0 {
					t.Fatal("a refused request was recorded as a grant")
				}
				return
			}
			tok, err := ParseToken(r.body["access_token"].(string), time.Now())
			if err != nil || tok.TenantID != smallChina || tok.Audience != "https://microsoftgraph.chinacloudapi.cn" {
				t.Fatalf("token %+v %v", tok, err)
			}
			if r.body["token_type"] != "Bearer" || r.body["expires_in"].(float64) < 3500 {
				t.Fatalf("%v", r.body)
			}
			if len(grants) != 1 || grants[0].Method != tc.method || grants[0].TenantID != smallChina || grants[0].Scope != graphScope {
				t.Fatalf("grants %+v", grants)
			}
			if blob, _ := json.Marshal(grants); strings.Contains(string(blob), secret) || strings.Contains(string(blob), "whatever") {
				t.Fatal("the secret was recorded")
			}
		})
	}
}

func TestOpenIDConfiguration(t *testing.T) {
	w, err := Load(smallWorldPath)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(context.Background(), w, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	get := func(path string) (int, map[string]any) {
		resp, err := s.Client.Get(s.BaseURL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	status, cfg := get("/small1.onmicrosoft.com/v2.0/.well-known/openid-configuration")
	if status != 200 || cfg["token_endpoint"] != s.BaseURL+"/small1.onmicrosoft.com/oauth2/v2.0/token" ||
		cfg["issuer"] != s.BaseURL+"/"+smallGlobal+"/v2.0" || cfg["authorization_endpoint"] == nil {
		t.Fatalf("%d %v", status, cfg)
	}
	if status, _ := get("/nowhere/v2.0/.well-known/openid-configuration"); status != 400 {
		t.Fatalf("unknown tenant: %d", status)
	}
	status, disc := get("/common/discovery/instance?api-version=1.1&authorization_endpoint=" + url.QueryEscape(s.BaseURL+"/"+smallGlobal+"/oauth2/v2.0/authorize"))
	if status != 200 || disc["tenant_discovery_endpoint"] != s.BaseURL+"/"+smallGlobal+"/v2.0/.well-known/openid-configuration" {
		t.Fatalf("%d %v", status, disc)
	}
	if status, _ := get("/" + smallGlobal + "/oauth2/v2.0/devicecode"); status != 404 {
		t.Fatalf("unknown endpoint: %d", status)
	}
}
