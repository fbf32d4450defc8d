package sim

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/certs"
	"github.com/hybridflow/hybridflow/internal/cloud"
)

// Tenants of configs/sim/small.yaml.
const (
	smallGlobal = "22222222-2222-4222-8222-000000000001"
	smallChina  = "22222222-2222-4222-8222-000000000002"
	smallGCCH   = "22222222-2222-4222-8222-000000000003"
)

type graphEnv struct {
	w *World
	s *Servers
}

func startGraphEnv(t *testing.T) *graphEnv {
	t.Helper()
	w, err := Load(smallWorldPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := Start(ctx, w, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &graphEnv{w: w, s: s}
}

// token is a valid Graph token for a tenant of the world.
func (g *graphEnv) token(t *testing.T, tenant string) string {
	t.Helper()
	c := "global"
	g.w.View(tenant, func(tn *Tenant) { c = tn.Cloud })
	tok, _ := IssueToken(tenant, cloud.MustLookup(c).GraphScope(), time.Now())
	return tok
}

type graphResp struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func (r graphResp) errCode() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func (r graphResp) errMessage() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

func (r graphResp) values() []map[string]any {
	vs, _ := r.body["value"].([]any)
	out := make([]map[string]any, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.(map[string]any))
	}
	return out
}

// do sends a request; body is JSON-encoded unless it is []byte.
func (g *graphEnv) do(t *testing.T, token, method, path string, body any, hdr ...string) graphResp {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	target := path
	if !strings.HasPrefix(path, "https://") {
		target = g.s.BaseURL + path
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := g.s.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := graphResp{status: resp.StatusCode, header: resp.Header, raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			t.Fatalf("%s %s: body is not JSON: %s", method, path, raw)
		}
	}
	return out
}

func (g *graphEnv) firstParty(t *testing.T, tenant string) ServicePrincipal {
	t.Helper()
	var sp ServicePrincipal
	g.w.View(tenant, func(tn *Tenant) {
		for _, s := range tn.Entra.ServicePrincipals {
			if s.AppID == cloud.FirstPartyAppID {
				sp = *s
				sp.KeyCredentials = append([]KeyCredential(nil), s.KeyCredentials...)
				sp.ServicePrincipalNames = append([]string(nil), s.ServicePrincipalNames...)
			}
		}
	})
	if sp.ID == "" {
		t.Fatal("no first-party service principal")
	}
	return sp
}

func (g *graphEnv) authCert(t *testing.T, tenant string) *ExchangeCertificate {
	t.Helper()
	var c *ExchangeCertificate
	g.w.View(tenant, func(tn *Tenant) { c = tn.OnPrem.Certificates[0] })
	return c
}

func TestGraphAuthentication(t *testing.T) {
	g := startGraphEnv(t)
	global := cloud.MustLookup("global")
	expired, _ := IssueToken(smallGlobal, global.GraphScope(), time.Now().Add(-2*time.Hour))
	exoAudience, _ := IssueToken(smallGlobal, global.ExchangeOnlineScope(), time.Now())
	chinaWithGlobalScope, _ := IssueToken(smallChina, global.GraphScope(), time.Now())
	stranger, _ := IssueToken("99999999-9999-4999-8999-999999999999", global.GraphScope(), time.Now())
	cases := []struct {
		name   string
		token  string
		status int
		code   string
		msg    string
	}{
		{"no token", "", 401, "InvalidAuthenticationToken", "Access token is empty."},
		{"not a simulator token", "eyJ0eXAi.abc.def", 401, "InvalidAuthenticationToken", "not well formed"},
		{"expired", expired, 401, "InvalidAuthenticationToken", "expired"},
		{"Exchange Online audience", exoAudience, 401, "InvalidAuthenticationToken", "Invalid audience"},
		{"another cloud's Graph", chinaWithGlobalScope, 401, "InvalidAuthenticationToken", "Invalid audience"},
		{"unknown tenant", stranger, 403, "Authorization_RequestDenied", "Insufficient privileges"},
		{"valid", g.token(t, smallChina), 200, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := g.do(t, tc.token, "GET", "/v1.0/domains", nil)
			if r.status != tc.status || r.errCode() != tc.code || !strings.Contains(r.errMessage(), tc.msg) {
				t.Fatalf("got %d %s %q", r.status, r.errCode(), r.errMessage())
			}
			if r.header.Get("request-id") == "" {
				t.Fatal("no request-id header")
			}
			if tc.status >= 400 {
				inner := r.body["error"].(map[string]any)["innerError"].(map[string]any)
				if inner["request-id"] != r.header.Get("request-id") || inner["date"] == "" {
					t.Fatalf("innerError %v", inner)
				}
			}
		})
	}
	if st := g.w.Stats(); st.GraphReads != 1 {
		t.Fatalf("only authenticated requests are counted, got %d reads", st.GraphReads)
	}
}

func TestGraphQueries(t *testing.T) {
	g := startGraphEnv(t)
	tok := g.token(t, smallChina)
	fp := "/v1.0/servicePrincipals?$filter=" + url.QueryEscape("appId eq '"+cloud.FirstPartyAppID+"'")
	cases := []struct {
		name   string
		path   string
		status int
		code   string
		check  func(t *testing.T, r graphResp)
	}{
		{"filter appId", fp, 200, "", func(t *testing.T, r graphResp) {
			if v := r.values(); len(v) != 1 || v[0]["appId"] != cloud.FirstPartyAppID || v[0]["displayName"] != "Office 365 Exchange Online" {
				t.Fatalf("%v", v)
			}
		}},
		{"filter is case-insensitive on values", "/v1.0/servicePrincipals?$filter=" + url.QueryEscape("displayName eq 'microsoft graph'"), 200, "", func(t *testing.T, r graphResp) {
			if len(r.values()) != 1 {
				t.Fatalf("%v", r.values())
			}
		}},
		{"startswith", "/v1.0/servicePrincipals?$filter=" + url.QueryEscape("startswith(displayName,'Office')"), 200, "", func(t *testing.T, r graphResp) {
			if len(r.values()) != 1 {
				t.Fatalf("%v", r.values())
			}
		}},
		{"and", "/v1.0/servicePrincipals?$filter=" + url.QueryEscape("appId eq '"+cloud.FirstPartyAppID+"' and displayName eq 'nope'"), 200, "", func(t *testing.T, r graphResp) {
			if len(r.values()) != 0 {
				t.Fatalf("%v", r.values())
			}
		}},
		{"escaped quote", "/v1.0/applications?$filter=" + url.QueryEscape("displayName eq 'O''Brien'"), 200, "", nil},
		{"unsupported filter property", "/v1.0/servicePrincipals?$filter=" + url.QueryEscape("servicePrincipalNames eq 'x'"), 400, "Request_UnsupportedQuery", nil},
		{"malformed filter", "/v1.0/servicePrincipals?$filter=" + url.QueryEscape("appId eq"), 400, "Request_UnsupportedQuery", nil},
		{"unterminated literal", "/v1.0/servicePrincipals?$filter=" + url.QueryEscape("appId eq 'x"), 400, "Request_UnsupportedQuery", nil},
		{"unsupported option", "/v1.0/servicePrincipals?$orderby=displayName", 400, "Request_UnsupportedQuery", nil},
		{"select", fp + "&$select=id,appId", 200, "", func(t *testing.T, r graphResp) {
			v := r.values()[0]
			if len(v) != 2 || v["id"] == nil || v["appId"] == nil {
				t.Fatalf("%v", v)
			}
		}},
		{"select unknown property", fp + "&$select=id,secret", 400, "Request_BadRequest", nil},
		{"top and nextLink", "/v1.0/servicePrincipals?$top=2", 200, "", func(t *testing.T, r graphResp) {
			if len(r.values()) != 2 {
				t.Fatalf("%v", r.values())
			}
			next, _ := r.body["@odata.nextLink"].(string)
			r2 := g.do(t, tok, "GET", next, nil)
			if r2.status != 200 || len(r2.values()) != 1 || r2.body["@odata.nextLink"] != nil {
				t.Fatalf("second page %d %v", r2.status, r2.body)
			}
		}},
		{"top out of range", "/v1.0/servicePrincipals?$top=0", 400, "Request_BadRequest", nil},
		{"filter on an item", "/v1.0/servicePrincipals/x?$filter=" + url.QueryEscape("appId eq 'x'"), 400, "Request_UnsupportedQuery", nil},
		{"missing object", "/v1.0/servicePrincipals/0badf00d-0000-4000-8000-000000000000", 404, "Request_ResourceNotFound", nil},
		{"unknown segment", "/v1.0/users", 400, "Request_BadRequest", nil},
		{"domains", "/v1.0/domains", 200, "", func(t *testing.T, r graphResp) {
			v := r.values()
			if len(v) != 3 || v[0]["id"] != "small2.partner.onmschina.cn" || v[0]["isInitial"] != true || v[2]["isDefault"] != true {
				t.Fatalf("%v", v)
			}
		}},
		{"one domain", "/v1.0/domains/small2.example.com", 200, "", func(t *testing.T, r graphResp) {
			if r.body["isDefault"] != true {
				t.Fatalf("%v", r.body)
			}
		}},
		{"organization", "/v1.0/organization", 200, "", func(t *testing.T, r graphResp) {
			v := r.values()
			if len(v) != 1 || v[0]["id"] != smallChina || len(v[0]["verifiedDomains"].([]any)) != 3 || v[0]["countryLetterCode"] != "CN" {
				t.Fatalf("%v", v)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := g.do(t, tok, "GET", tc.path, nil)
			if r.status != tc.status || r.errCode() != tc.code {
				t.Fatalf("got %d %s: %s", r.status, r.errCode(), r.raw)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
	if r := g.do(t, tok, "DELETE", "/v1.0/domains", nil); r.status != 405 {
		t.Fatalf("DELETE domains: %d", r.status)
	}
}

// TestGraphKeyOnlyWhenSelected follows shared/reference/graph-entities.tsv
// NOTE "keyCredential.key read-back": key is served only to a single
// object read with $select=keyCredentials (the documented form); lists,
// $filter queries and reads without $select, or selecting more than
// keyCredentials, show key null. customKeyIdentifier is served as stored,
// the hex thumbprint text for these certificates (NOTE "customKeyIdentifier
// wire form").
func TestGraphKeyOnlyWhenSelected(t *testing.T) {
	g := startGraphEnv(t)
	tok := g.token(t, smallChina)
	sp := g.firstParty(t, smallChina)
	filter := url.QueryEscape("appId eq '" + cloud.FirstPartyAppID + "'")
	for _, tc := range []struct {
		path    string
		withKey bool
	}{
		{"/v1.0/servicePrincipals/" + sp.ID, false},
		{"/v1.0/servicePrincipals/" + sp.ID + "?$select=id,keyCredentials", false},
		{"/v1.0/servicePrincipals/" + sp.ID + "?$select=keyCredentials", true},
		{"/v1.0/servicePrincipals?$select=appId,keyCredentials", false},
		{"/v1.0/servicePrincipals?$select=keyCredentials", false},
		{"/v1.0/servicePrincipals?$filter=" + filter + "&$select=keyCredentials", false},
		{"/v1.0/servicePrincipals?$select=appId", false},
		{"/v1.0/servicePrincipals", false},
	} {
		r := g.do(t, tok, "GET", tc.path, nil)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", tc.path, r.status, r.raw)
		}
		obj := r.body
		if vs := r.values(); len(vs) > 0 {
			obj = vs[0]
			for _, v := range vs {
				if v["appId"] == cloud.FirstPartyAppID {
					obj = v
				}
			}
			if _, ok := obj["appId"]; !ok && len(vs) > 1 {
				// keyCredentials alone selected: find the SP by its keys.
				for _, v := range vs {
					if ks, _ := v["keyCredentials"].([]any); len(ks) == 2 {
						obj = v
					}
				}
			}
		}
		keys, _ := obj["keyCredentials"].([]any)
		if tc.path == "/v1.0/servicePrincipals?$select=appId" {
			if _, present := obj["keyCredentials"]; present {
				t.Fatalf("%s: keyCredentials not selected but present", tc.path)
			}
			continue
		}
		if len(keys) != 2 {
			t.Fatalf("%s: %d keys", tc.path, len(keys))
		}
		for i, k := range keys {
			km := k.(map[string]any)
			if cki, _ := km["customKeyIdentifier"].(string); cki != sp.KeyCredentials[i].CustomKeyIdentifier || !certs.ValidThumbprint(cki) {
				t.Fatalf("%s: customKeyIdentifier %q, stored %q", tc.path, cki, sp.KeyCredentials[i].CustomKeyIdentifier)
			}
			if !tc.withKey {
				if v, present := km["key"]; !present || v != nil {
					t.Fatalf("%s: key %d is %v, want null", tc.path, i, v)
				}
				continue
			}
			der, err := base64.StdEncoding.DecodeString(km["key"].(string))
			if err != nil || !bytes.Equal(der, sp.KeyCredentials[i].Key) {
				t.Fatalf("%s: key %d is not the DER", tc.path, i)
			}
			if !certs.SameThumbprint(km["customKeyIdentifier"].(string), certs.Thumbprint(der)) {
				t.Fatalf("%s: customKeyIdentifier is not the thumbprint", tc.path)
			}
		}
	}
}

// keyJSON is a keyCredential as a client sends it.
func keyJSON(der []byte, extra map[string]any) map[string]any {
	k := map[string]any{"key": base64.StdEncoding.EncodeToString(der), "type": "AsymmetricX509Cert", "usage": "Verify"}
	for n, v := range extra {
		if v == nil {
			delete(k, n)
		} else {
			k[n] = v
		}
	}
	return k
}

func TestGraphPatchServicePrincipal(t *testing.T) {
	otherCert := NewCertificate("Other", 4242, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	cases := []struct {
		name   string
		body   func(g *graphEnv, t *testing.T) any
		status int
		msg    string
		check  func(t *testing.T, g *graphEnv, before, after ServicePrincipal)
	}{
		// shared/reference/graph-entities.tsv NOTE "PATCH keyCredentials
		// semantics" (the collection is replaced) and NOTE
		// "keyCredential.customKeyIdentifier" / "customKeyIdentifier for
		// portal uploads" (absent: the thumbprint).
		{"one key replaces the collection, with Graph's defaults",
			func(g *graphEnv, t *testing.T) any {
				return map[string]any{"keyCredentials": []any{keyJSON(g.authCert(t, smallChina).DER, nil)}}
			}, 204, "",
			func(t *testing.T, g *graphEnv, before, after ServicePrincipal) {
				c := g.authCert(t, smallChina)
				if len(after.KeyCredentials) != 1 {
					t.Fatalf("%d keys", len(after.KeyCredentials))
				}
				k := after.KeyCredentials[0]
				if k.CustomKeyIdentifier != c.Thumbprint || !guidRE.MatchString(k.KeyID) || k.DisplayName != c.Subject ||
					!k.StartDateTime.Equal(c.NotBefore) || !k.EndDateTime.Equal(c.NotAfter) || !bytes.Equal(k.Key, c.DER) {
					t.Fatalf("%+v", k)
				}
				if strings.Join(after.ServicePrincipalNames, ",") != strings.Join(before.ServicePrincipalNames, ",") {
					t.Fatal("SPNs changed")
				}
			}},
		{"given fields are kept",
			func(g *graphEnv, t *testing.T) any {
				return map[string]any{"keyCredentials": []any{keyJSON(otherCert.DER, map[string]any{
					"keyId": "ABCDEF01-0000-4000-8000-000000000001", "customKeyIdentifier": base64.StdEncoding.EncodeToString([]byte("mine")),
					"displayName": "my key", "startDateTime": "2026-01-01T00:00:00Z", "endDateTime": "2027-01-01T00:00:00Z",
				})}}
			}, 204, "",
			func(t *testing.T, g *graphEnv, before, after ServicePrincipal) {
				k := after.KeyCredentials[0]
				if k.KeyID != "abcdef01-0000-4000-8000-000000000001" || k.CustomKeyIdentifier != "bWluZQ==" || k.DisplayName != "my key" ||
					k.StartDateTime.Year() != 2026 || k.EndDateTime.Year() != 2027 {
					t.Fatalf("%+v", k)
				}
			}},
		// shared/reference/graph-entities.tsv NOTE "customKeyIdentifier wire
		// form": the hex thumbprint text is what clients send and Graph
		// keeps; it is stored and served as that very string, any case.
		{"customKeyIdentifier as the hex thumbprint text is kept as sent",
			func(g *graphEnv, t *testing.T) any {
				return map[string]any{"keyCredentials": []any{keyJSON(otherCert.DER, map[string]any{
					"customKeyIdentifier": strings.ToLower(certs.Thumbprint(otherCert.DER))})}}
			}, 204, "",
			func(t *testing.T, g *graphEnv, before, after ServicePrincipal) {
				want := strings.ToLower(certs.Thumbprint(otherCert.DER))
				if k := after.KeyCredentials[0]; k.CustomKeyIdentifier != want {
					t.Fatalf("stored %q, sent %q", k.CustomKeyIdentifier, want)
				}
				r := g.do(t, g.token(t, smallChina), "GET", "/v1.0/servicePrincipals/"+after.ID+"?$select=keyCredentials", nil)
				served := r.body["keyCredentials"].([]any)[0].(map[string]any)["customKeyIdentifier"]
				if served != want {
					t.Fatalf("served %v, sent %q", served, want)
				}
			}},
		// NOTE "keyCredential.customKeyIdentifier": declared Edm.Binary, so
		// any base64 is an identifier (other applications' keys carry such
		// bytes); Graph keeps the bytes and serves their base64.
		{"customKeyIdentifier of other bytes is kept as their base64",
			func(g *graphEnv, t *testing.T) any {
				return map[string]any{"keyCredentials": []any{keyJSON(otherCert.DER, map[string]any{
					"customKeyIdentifier": "3q2+7wABAgP/"})}}
			}, 204, "",
			func(t *testing.T, _ *graphEnv, _, after ServicePrincipal) {
				if k := after.KeyCredentials[0]; k.CustomKeyIdentifier != "3q2+7wABAgP/" {
					t.Fatalf("stored %q", k.CustomKeyIdentifier)
				}
			}},
		{"customKeyIdentifier in non-canonical base64 is kept as Graph re-encodes its bytes",
			func(g *graphEnv, t *testing.T) any {
				return map[string]any{"keyCredentials": []any{keyJSON(otherCert.DER, map[string]any{"customKeyIdentifier": "bWluZR=="})}}
			}, 204, "",
			func(t *testing.T, _ *graphEnv, _, after ServicePrincipal) {
				if k := after.KeyCredentials[0]; k.CustomKeyIdentifier != "bWluZQ==" {
					t.Fatalf("stored %q", k.CustomKeyIdentifier)
				}
			}},
		// An Edm.Binary value that is not base64 is refused, the whole
		// PATCH with it (NOTE "keyCredential.customKeyIdentifier").
		{"customKeyIdentifier not base64", func(*graphEnv, *testing.T) any {
			return map[string]any{"keyCredentials": []any{keyJSON(otherCert.DER, map[string]any{"customKeyIdentifier": "thumbprint:52ED9B50"})}}
		}, 400, "'customKeyIdentifier'", nil},
		{"customKeyIdentifier of 39 hex digits is not base64", func(*graphEnv, *testing.T) any {
			return map[string]any{"keyCredentials": []any{keyJSON(otherCert.DER, map[string]any{"customKeyIdentifier": certs.Thumbprint(otherCert.DER)[:39]})}}
		}, 400, "'customKeyIdentifier'", nil},
		{"customKeyIdentifier not a string", func(*graphEnv, *testing.T) any {
			return []byte(`{"keyCredentials":[{"key":"` + base64.StdEncoding.EncodeToString(otherCert.DER) + `","type":"AsymmetricX509Cert","usage":"Verify","customKeyIdentifier":52}]}`)
		}, 400, "'customKeyIdentifier'", nil},
		{"customKeyIdentifier empty", func(*graphEnv, *testing.T) any {
			return map[string]any{"keyCredentials": []any{keyJSON(otherCert.DER, map[string]any{"customKeyIdentifier": ""})}}
		}, 400, "'customKeyIdentifier'", nil},
		{"retained keys re-sent as key/type/usage plus one",
			func(g *graphEnv, t *testing.T) any {
				sp := g.firstParty(t, smallChina)
				return map[string]any{"keyCredentials": []any{
					keyJSON(sp.KeyCredentials[0].Key, map[string]any{"keyId": sp.KeyCredentials[0].KeyID}),
					keyJSON(sp.KeyCredentials[1].Key, map[string]any{"keyId": sp.KeyCredentials[1].KeyID}),
					keyJSON(otherCert.DER, nil),
				}}
			}, 204, "",
			func(t *testing.T, g *graphEnv, before, after ServicePrincipal) {
				if len(after.KeyCredentials) != 3 || after.KeyCredentials[0].KeyID != before.KeyCredentials[0].KeyID ||
					after.KeyCredentials[1].CustomKeyIdentifier != before.KeyCredentials[1].CustomKeyIdentifier {
					t.Fatalf("%+v", after.KeyCredentials)
				}
			}},
		{"empty collection clears", func(*graphEnv, *testing.T) any { return map[string]any{"keyCredentials": []any{}} }, 204, "",
			func(t *testing.T, _ *graphEnv, _, after ServicePrincipal) {
				if len(after.KeyCredentials) != 0 {
					t.Fatal("keys left")
				}
			}},
		{"key left out", func(*graphEnv, *testing.T) any {
			return map[string]any{"keyCredentials": []any{keyJSON(otherCert.DER, map[string]any{"key": nil})}}
		}, 400, "'key'", nil},
		{"key null", func(*graphEnv, *testing.T) any {
			return []byte(`{"keyCredentials":[{"key":null,"type":"AsymmetricX509Cert","usage":"Verify"}]}`)
		}, 400, "'key'", nil},
		{"key not base64", func(*graphEnv, *testing.T) any {
			return map[string]any{"keyCredentials": []any{keyJSON(otherCert.DER, map[string]any{"key": "%%%"})}}
		}, 400, "'key'", nil},
		{"key not a certificate", func(*graphEnv, *testing.T) any {
			return map[string]any{"keyCredentials": []any{keyJSON([]byte("not a certificate"), nil)}}
		}, 400, "'key'", nil},
		{"display name of 91 characters", func(*graphEnv, *testing.T) any {
			return map[string]any{"keyCredentials": []any{keyJSON(otherCert.DER, map[string]any{"displayName": strings.Repeat("x", 91)})}}
		}, 400, "'displayName'", nil},
		{"display name of 90 characters", func(*graphEnv, *testing.T) any {
			return map[string]any{"keyCredentials": []any{keyJSON(otherCert.DER, map[string]any{"displayName": strings.Repeat("x", 90)})}}
		}, 204, "", nil},
		// NOTE "PATCH keyCredentials fields": type AsymmetricX509Cert and
		// usage Verify for certificates; anything else is refused.
		{"symmetric key", func(*graphEnv, *testing.T) any {
			return map[string]any{"keyCredentials": []any{keyJSON(otherCert.DER, map[string]any{"type": "Symmetric"})}}
		}, 400, "'type'", nil},
		{"sign usage", func(*graphEnv, *testing.T) any {
			return map[string]any{"keyCredentials": []any{keyJSON(otherCert.DER, map[string]any{"usage": "Sign"})}}
		}, 400, "'usage'", nil},
		{"keyId not a GUID", func(*graphEnv, *testing.T) any {
			return map[string]any{"keyCredentials": []any{keyJSON(otherCert.DER, map[string]any{"keyId": "k1"})}}
		}, 400, "'keyId'", nil},
		{"same keyId twice", func(*graphEnv, *testing.T) any {
			k := keyJSON(otherCert.DER, map[string]any{"keyId": "abcdef01-0000-4000-8000-000000000001"})
			return map[string]any{"keyCredentials": []any{k, k}}
		}, 400, "more than once", nil},
		{"end before start", func(*graphEnv, *testing.T) any {
			return map[string]any{"keyCredentials": []any{keyJSON(otherCert.DER, map[string]any{"startDateTime": "2027-01-01T00:00:00Z", "endDateTime": "2026-01-01T00:00:00Z"})}}
		}, 400, "'endDateTime'", nil},
		{"unknown key property", func(*graphEnv, *testing.T) any {
			return map[string]any{"keyCredentials": []any{keyJSON(otherCert.DER, map[string]any{"thumb": "x"})}}
		}, 400, "'thumb'", nil},
		{"SPNs replace the collection and leave keys", func(*graphEnv, *testing.T) any {
			return map[string]any{"servicePrincipalNames": []string{cloud.FirstPartyAppID, "00000002-0000-0ff1-ce00-000000000000/*.small2.example.com"}}
		}, 204, "", func(t *testing.T, _ *graphEnv, before, after ServicePrincipal) {
			if len(after.ServicePrincipalNames) != 2 || len(after.KeyCredentials) != len(before.KeyCredentials) {
				t.Fatalf("%+v", after)
			}
		}},
		{"empty SPN", func(*graphEnv, *testing.T) any { return map[string]any{"servicePrincipalNames": []string{" "}} }, 400, "servicePrincipalNames", nil},
		{"duplicate SPN", func(*graphEnv, *testing.T) any {
			return map[string]any{"servicePrincipalNames": []string{"https://a/", "HTTPS://A/"}}
		}, 400, "servicePrincipalNames", nil},
		{"SPN of another service principal", func(*graphEnv, *testing.T) any {
			return map[string]any{"servicePrincipalNames": []string{"https://microsoftgraph.chinacloudapi.cn/"}}
		}, 409, "already in use", nil},
		{"atomic: a bad SPN keeps the keys too", func(g *graphEnv, t *testing.T) any {
			return map[string]any{"keyCredentials": []any{}, "servicePrincipalNames": []string{""}}
		}, 400, "servicePrincipalNames", nil},
		{"read-only property", func(*graphEnv, *testing.T) any { return map[string]any{"appId": "x"} }, 400, "read-only", nil},
		{"unknown property", func(*graphEnv, *testing.T) any { return map[string]any{"colour": "red"} }, 400, "'colour'", nil},
		{"OData annotations are ignored", func(*graphEnv, *testing.T) any {
			return map[string]any{"@odata.type": "#microsoft.graph.servicePrincipal", "keyCredentials": []any{}}
		}, 204, "", nil},
		{"keyCredentials null", func(*graphEnv, *testing.T) any { return []byte(`{"keyCredentials":null}`) }, 400, "keyCredentials", nil},
		{"not JSON", func(*graphEnv, *testing.T) any { return []byte(`{"keyCredentials":`) }, 400, "Unable to read JSON", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := startGraphEnv(t)
			before := g.firstParty(t, smallChina)
			r := g.do(t, g.token(t, smallChina), "PATCH", "/v1.0/servicePrincipals/"+before.ID, tc.body(g, t))
			if r.status != tc.status || !strings.Contains(r.errMessage(), tc.msg) {
				t.Fatalf("got %d: %s", r.status, r.raw)
			}
			after := g.firstParty(t, smallChina)
			if tc.status >= 400 {
				if len(after.KeyCredentials) != len(before.KeyCredentials) || len(after.ServicePrincipalNames) != len(before.ServicePrincipalNames) {
					t.Fatal("a refused PATCH changed the service principal")
				}
				if st := g.w.Stats(); st.GraphWrites != 0 || st.GraphReads != 1 {
					t.Fatalf("a refused PATCH counted as %d writes, %d reads", st.GraphWrites, st.GraphReads)
				}
			} else if st := g.w.Stats(); st.GraphWrites != 1 {
				t.Fatalf("graph writes %d", st.GraphWrites)
			}
			if tc.check != nil {
				tc.check(t, g, before, after)
			}
		})
	}
}

func TestGraphAcceptsGzipBodies(t *testing.T) {
	g := startGraphEnv(t)
	sp := g.firstParty(t, smallChina)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte(`{"servicePrincipalNames":["` + cloud.FirstPartyAppID + `"]}`))
	_ = zw.Close()
	r := g.do(t, g.token(t, smallChina), "PATCH", "/v1.0/servicePrincipals/"+sp.ID, buf.Bytes(), "Content-Encoding", "gzip")
	if r.status != 204 || len(g.firstParty(t, smallChina).ServicePrincipalNames) != 1 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
}

func TestGraphWritesMarkCountAndResetPropagation(t *testing.T) {
	g := startGraphEnv(t)
	g.w.Update(smallGlobal, func(tn *Tenant) { tn.Behaviour.PropagationChecks = 3 })
	tok := g.token(t, smallGlobal)
	r := g.do(t, tok, "POST", "/v1.0/applications", map[string]any{"displayName": "ExchangeServerApp-x"})
	if r.status != 201 || r.body["appId"] == "" || r.body["signInAudience"] != "AzureADMyOrg" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	var createdBy string
	var pending int
	g.w.View(smallGlobal, func(tn *Tenant) {
		createdBy = tn.Entra.Applications[len(tn.Entra.Applications)-1].CreatedBy
		pending = tn.Behaviour.PendingPropagation
	})
	if createdBy != "client" || pending != 3 {
		t.Fatalf("created by %q, pending propagation %d", createdBy, pending)
	}
	tc := g.w.Stats().ByTenant[strings.ToLower(smallGlobal)]
	if tc.GraphWrites != 1 || tc.Writes != 1 || tc.GraphReads != 0 {
		t.Fatalf("counters %+v", *tc)
	}
	// A refused write changes nothing, propagation included.
	g.w.Update(smallGlobal, func(tn *Tenant) { tn.Behaviour.PendingPropagation = 0 })
	if r := g.do(t, tok, "POST", "/v1.0/applications", map[string]any{"displayName": "x", "signInAudience": "Everyone"}); r.status != 400 {
		t.Fatalf("bad audience: %d", r.status)
	}
	g.w.View(smallGlobal, func(tn *Tenant) { pending = tn.Behaviour.PendingPropagation })
	if tc := g.w.Stats().ByTenant[strings.ToLower(smallGlobal)]; tc.GraphWrites != 1 || tc.GraphReads != 1 || pending != 0 {
		t.Fatalf("after a refused write: %+v, pending %d", *tc, pending)
	}
}

func TestGraphServicePrincipalCreation(t *testing.T) {
	g := startGraphEnv(t)
	tok := g.token(t, smallGCCH)
	r := g.do(t, tok, "POST", "/v1.0/applications", map[string]any{"displayName": "app"})
	appID := r.body["appId"].(string)
	cases := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"for an application of the tenant", map[string]any{"appId": appID}, 201, ""},
		{"a second one", map[string]any{"appId": appID}, 409, "Request_MultipleObjectsWithSameKeyValue"},
		{"first-party that exists", map[string]any{"appId": cloud.FirstPartyAppID}, 409, "Request_MultipleObjectsWithSameKeyValue"},
		{"unknown application", map[string]any{"appId": "0badf00d-0000-4000-8000-000000000000"}, 400, "Request_BadRequest"},
		{"appId not a GUID", map[string]any{"appId": "x"}, 400, "Request_BadRequest"},
		{"no appId", map[string]any{}, 400, "Request_BadRequest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := g.do(t, tok, "POST", "/v1.0/servicePrincipals", tc.body)
			if r.status != tc.status || r.errCode() != tc.code {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			if r.status == 201 {
				spns, _ := r.body["servicePrincipalNames"].([]any)
				if r.body["appId"] != appID || r.body["displayName"] != "app" || len(spns) != 1 || spns[0] != appID {
					t.Fatalf("%v", r.body)
				}
			}
		})
	}
	// The first-party service principal can be re-instantiated after deletion.
	sp := g.firstParty(t, smallGCCH)
	if r := g.do(t, tok, "DELETE", "/v1.0/servicePrincipals/"+sp.ID, nil); r.status != 204 {
		t.Fatalf("delete: %d", r.status)
	}
	r = g.do(t, tok, "POST", "/v1.0/servicePrincipals", map[string]any{"appId": cloud.FirstPartyAppID})
	if r.status != 201 || len(r.body["appRoles"].([]any)) != 2 {
		t.Fatalf("recreate first party: %d %s", r.status, r.raw)
	}
}

func TestGraphAppRoleAssignments(t *testing.T) {
	g := startGraphEnv(t)
	tok := g.token(t, smallGlobal)
	app := g.do(t, tok, "POST", "/v1.0/applications", map[string]any{"displayName": "app"})
	sp := g.do(t, tok, "POST", "/v1.0/servicePrincipals", map[string]any{"appId": app.body["appId"]})
	spID := sp.body["id"].(string)
	exo := g.firstParty(t, smallGlobal)
	path := "/v1.0/servicePrincipals/" + spID + "/appRoleAssignments"
	body := func(principal, resource, role string) map[string]any {
		return map[string]any{"principalId": principal, "resourceId": resource, "appRoleId": role}
	}
	var assignmentID string
	steps := []struct {
		name   string
		method string
		path   string
		body   any
		status int
		msg    string
	}{
		{"grant", "POST", path, body(spID, exo.ID, genRoleFullAccessAsApp), 201, ""},
		{"grant again", "POST", path, body(spID, exo.ID, genRoleFullAccessAsApp), 400, GraphMsgDuplicateAssignment},
		{"role the resource lacks", "POST", path, body(spID, exo.ID, genRoleDomainReadAll), 400, "not found on application"},
		{"resource that does not exist", "POST", path, body(spID, "0badf00d-0000-4000-8000-000000000000", genRoleFullAccessAsApp), 404, "does not exist"},
		{"principal other than the URL's", "POST", path, body(exo.ID, exo.ID, genRoleFullAccessAsApp), 400, "does not match"},
		{"missing property", "POST", path, map[string]any{"principalId": spID}, 400, "'resourceId'"},
		{"principal that does not exist", "POST", "/v1.0/servicePrincipals/0badf00d-0000-4000-8000-000000000000/appRoleAssignments", body(spID, exo.ID, genRoleFullAccessAsApp), 404, ""},
		{"list", "GET", path, nil, 200, ""},
		{"revoke", "DELETE", "", nil, 204, ""},
		{"revoke again", "DELETE", "", nil, 404, ""},
	}
	for _, s := range steps {
		p := s.path
		if p == "" {
			p = path + "/" + assignmentID
		}
		r := g.do(t, tok, s.method, p, s.body)
		if r.status != s.status || !strings.Contains(r.errMessage(), s.msg) {
			t.Fatalf("%s: %d %s", s.name, r.status, r.raw)
		}
		switch s.name {
		case "grant":
			assignmentID = r.body["id"].(string)
			if r.body["resourceDisplayName"] != "Office 365 Exchange Online" || r.body["principalType"] != "ServicePrincipal" {
				t.Fatalf("grant: %v", r.body)
			}
		case "list":
			if v := r.values(); len(v) != 1 || v[0]["id"] != assignmentID || v[0]["appRoleId"] != genRoleFullAccessAsApp {
				t.Fatalf("list: %v", v)
			}
		}
	}
}

func TestGraphApplications(t *testing.T) {
	g := startGraphEnv(t)
	tok := g.token(t, smallGlobal)
	cases := []struct {
		name   string
		body   any
		status int
		msg    string
	}{
		{"no display name", map[string]any{"signInAudience": "AzureADMyOrg"}, 400, "'displayName'"},
		{"bad audience", map[string]any{"displayName": "a", "signInAudience": "Everyone"}, 400, "'signInAudience'"},
		{"bad resource app", map[string]any{"displayName": "a", "requiredResourceAccess": []any{map[string]any{"resourceAppId": "x", "resourceAccess": []any{}}}}, 400, "'resourceAppId'"},
		{"bad access type", map[string]any{"displayName": "a", "requiredResourceAccess": []any{map[string]any{"resourceAppId": cloud.FirstPartyAppID,
			"resourceAccess": []any{map[string]any{"id": genRoleFullAccessAsApp, "type": "Admin"}}}}}, 400, "'resourceAccess'"},
		{"appId is the server's", map[string]any{"displayName": "a", "appId": cloud.FirstPartyAppID}, 400, "read-only"},
		{"full", map[string]any{"displayName": "ExchangeServerApp-1", "signInAudience": "AzureADMyOrg",
			"requiredResourceAccess": []any{map[string]any{"resourceAppId": cloud.FirstPartyAppID,
				"resourceAccess": []any{map[string]any{"id": genRoleFullAccessAsApp, "type": "Role"}}}}}, 201, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := g.do(t, tok, "POST", "/v1.0/applications", tc.body)
			if r.status != tc.status || !strings.Contains(r.errMessage(), tc.msg) {
				t.Fatalf("%d %s", r.status, r.raw)
			}
		})
	}
	list := g.do(t, tok, "GET", "/v1.0/applications?$filter="+url.QueryEscape("displayName eq 'ExchangeServerApp-1'")+"&$select=id,appId,keyCredentials,requiredResourceAccess", nil)
	apps := list.values()
	if len(apps) != 1 {
		t.Fatalf("%s", list.raw)
	}
	id, appID := apps[0]["id"].(string), apps[0]["appId"].(string)
	cert := g.authCert(t, smallGlobal)
	if r := g.do(t, tok, "PATCH", "/v1.0/applications/"+id, map[string]any{"keyCredentials": []any{keyJSON(cert.DER, nil)}}); r.status != 204 {
		t.Fatalf("patch keys: %d %s", r.status, r.raw)
	}
	got := g.do(t, tok, "GET", "/v1.0/applications/"+id+"?$select=keyCredentials,requiredResourceAccess", nil)
	keys := got.body["keyCredentials"].([]any)
	if len(keys) != 1 || keys[0].(map[string]any)["key"] != nil || len(got.body["requiredResourceAccess"].([]any)) != 1 {
		t.Fatalf("after patch: %s", got.raw)
	}
	// The certificate comes only with $select=keyCredentials alone
	// (shared/reference/graph-entities.tsv NOTE "keyCredential.key read-back").
	got = g.do(t, tok, "GET", "/v1.0/applications/"+id+"?$select=keyCredentials", nil)
	if keys = got.body["keyCredentials"].([]any); len(keys) != 1 || keys[0].(map[string]any)["key"] != base64.StdEncoding.EncodeToString(cert.DER) {
		t.Fatalf("after patch, keys read: %s", got.raw)
	}
	// Deleting the application removes its service principal and that
	// principal's assignments.
	sp := g.do(t, tok, "POST", "/v1.0/servicePrincipals", map[string]any{"appId": appID})
	spID := sp.body["id"].(string)
	g.do(t, tok, "POST", "/v1.0/servicePrincipals/"+spID+"/appRoleAssignments", map[string]any{"principalId": spID, "resourceId": g.firstParty(t, smallGlobal).ID, "appRoleId": genRoleFullAccessAsApp})
	if r := g.do(t, tok, "DELETE", "/v1.0/applications/"+id, nil); r.status != 204 {
		t.Fatalf("delete: %d", r.status)
	}
	g.w.View(smallGlobal, func(tn *Tenant) {
		for _, s := range tn.Entra.ServicePrincipals {
			if s.ID == spID {
				t.Error("service principal survived its application")
			}
		}
		for _, a := range tn.Entra.AppRoleAssignments {
			if a.PrincipalID == spID {
				t.Error("assignment survived its principal")
			}
		}
	})
}

func TestGraphPaging(t *testing.T) {
	g := startGraphEnv(t)
	tok := g.token(t, smallGlobal)
	g.w.Update(smallGlobal, func(tn *Tenant) {
		for i := range 150 {
			tn.Entra.Applications = append(tn.Entra.Applications, &Application{ID: "a" + strings.Repeat("0", 3) + string(rune('a'+i%26)), AppID: "x", DisplayName: "bulk"})
		}
	})
	var total, pages int
	next := "/v1.0/applications?$filter=" + url.QueryEscape("displayName eq 'bulk'")
	for next != "" {
		r := g.do(t, tok, "GET", next, nil)
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		total += len(r.values())
		pages++
		next, _ = r.body["@odata.nextLink"].(string)
	}
	if total != 150 || pages != 2 {
		t.Fatalf("%d items over %d pages", total, pages)
	}
}

func TestGraphFaults(t *testing.T) {
	cases := []struct {
		name       string
		rule       FaultRule
		method     string
		path       string
		status     int
		code       string
		retryAfter string
		drop       bool
		minTime    time.Duration
	}{
		{"throttle rounds Retry-After up", FaultRule{Kind: FaultThrottle, Operation: "GET domains", Rate: 1, RetryAfter: 1500 * time.Millisecond}, "GET", "/v1.0/domains", 429, "TooManyRequests", "2", false, 0},
		{"throttle defaults to 1 s", FaultRule{Kind: FaultThrottle, Rate: 1}, "GET", "/v1.0/domains", 429, "TooManyRequests", "1", false, 0},
		{"5xx", FaultRule{Kind: FaultServer, Rate: 1, RetryAfter: 3 * time.Second}, "GET", "/v1.0/organization", 503, "ServiceUnavailable", "3", false, 0},
		{"fail with a status", FaultRule{Kind: FaultFail, Rate: 1, ErrorType: "403"}, "GET", "/v1.0/domains", 403, "Authorization_RequestDenied", "", false, 0},
		{"fail with status and code", FaultRule{Kind: FaultFail, Rate: 1, ErrorType: "404 Request_ResourceNotFound", Message: "gone"}, "GET", "/v1.0/domains", 404, "Request_ResourceNotFound", "", false, 0},
		{"fail without type", FaultRule{Kind: FaultFail, Rate: 1}, "GET", "/v1.0/domains", 500, "InternalServerError", "", false, 0},
		{"operation names leave out ids", FaultRule{Kind: FaultFail, Operation: "POST servicePrincipals/appRoleAssignments", Rate: 1, ErrorType: "409"}, "POST", "/v1.0/servicePrincipals/x/appRoleAssignments", 409, "Request_MultipleObjectsWithSameKeyValue", "", false, 0},
		{"other operations pass", FaultRule{Kind: FaultFail, Operation: "PATCH servicePrincipals", Rate: 1, ErrorType: "403"}, "GET", "/v1.0/domains", 200, "", "", false, 0},
		{"other tenants pass", FaultRule{Kind: FaultFail, Tenant: smallChina, Rate: 1, ErrorType: "403"}, "GET", "/v1.0/domains", 200, "", "", false, 0},
		{"latency", FaultRule{Kind: FaultLatency, Latency: 200 * time.Millisecond}, "GET", "/v1.0/domains", 200, "", "", false, 200 * time.Millisecond},
		{"drop", FaultRule{Kind: FaultDrop, Rate: 1}, "GET", "/v1.0/domains", 0, "", "", true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := startGraphEnv(t)
			tc.rule.Protocol = ProtoGraph
			g.w.SetFaults([]FaultRule{tc.rule})
			tok := g.token(t, smallGlobal)
			began := time.Now()
			if tc.drop {
				req, _ := http.NewRequest(tc.method, g.s.BaseURL+tc.path, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := g.s.Client.Do(req)
				if err == nil {
					resp.Body.Close()
					t.Fatalf("got a response %d to a dropped request", resp.StatusCode)
				}
				return
			}
			var body any
			if tc.method == "POST" {
				body = map[string]any{}
			}
			r := g.do(t, tok, tc.method, tc.path, body)
			if r.status != tc.status || r.errCode() != tc.code || r.header.Get("Retry-After") != tc.retryAfter {
				t.Fatalf("got %d %s Retry-After %q: %s", r.status, r.errCode(), r.header.Get("Retry-After"), r.raw)
			}
			if time.Since(began) < tc.minTime {
				t.Fatalf("answered after %s", time.Since(began))
			}
			if tc.rule.Message != "" && r.errMessage() != tc.rule.Message {
				t.Fatalf("message %q", r.errMessage())
			}
		})
	}
}

// TestWorldKeyIdentifierIsTheWireString: a world's custom_key_identifier
// is what Graph's JSON carries, base64 text (the hex thumbprint is such
// text; shared/reference/graph-entities.tsv NOTE "customKeyIdentifier wire
// form"), and loading refuses anything Graph could not serve, naming the
// field and its line.
func TestWorldKeyIdentifierIsTheWireString(t *testing.T) {
	world := func(cki string) []byte {
		return []byte(`tenants:
  - id: t1
    entra:
      service_principals:
        - id: sp1
          app_id: 00000002-0000-0ff1-ce00-000000000000
          display_name: Office 365 Exchange Online
          key_credentials:
            - key_id: 824bae1f-17f3-4602-b81b-7ad11f96b9f3
              custom_key_identifier: "` + cki + `"
              type: AsymmetricX509Cert
              usage: Verify
              start_date_time: 2025-11-01T00:00:00Z
              end_date_time: 2028-11-01T00:00:00Z
`)
	}
	for _, ok := range []string{"6252095F5888F10152BB985D2089A95E6D2E7235", "6252095f5888f10152bb985d2089a95e6d2e7235", "3q2+7wABAgP/", ""} {
		w, err := Parse("w.yaml", world(ok))
		if err != nil {
			t.Fatalf("%q: %v", ok, err)
		}
		if got := w.Tenants[0].Entra.ServicePrincipals[0].KeyCredentials[0].CustomKeyIdentifier; got != ok {
			t.Fatalf("%q loaded as %q", ok, got)
		}
	}
	for _, bad := range []string{"not base64!", "6252095F5888F10152BB985D2089A95E6D2E723", "bWluZR=="} {
		_, err := Parse("w.yaml", world(bad))
		if err == nil || !strings.Contains(err.Error(), "custom_key_identifier") || !strings.Contains(err.Error(), "w.yaml:10") {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}
