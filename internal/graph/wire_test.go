package graph_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/certs"
	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/graph"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// wire records every request the client puts on the wire: method, URL and
// the body as sent (un-gzipped).
type wire struct {
	base http.RoundTripper
	mu   sync.Mutex
	reqs []sentRequest
}

type sentRequest struct {
	method, url string
	body        []byte
}

func (w *wire) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		raw, err := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(raw))
		body = raw
		if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
			zr, err := gzip.NewReader(bytes.NewReader(raw))
			if err != nil {
				return nil, err
			}
			if body, err = io.ReadAll(zr); err != nil {
				return nil, err
			}
		}
	}
	w.mu.Lock()
	w.reqs = append(w.reqs, sentRequest{r.Method, r.URL.String(), body})
	w.mu.Unlock()
	return w.base.RoundTrip(r)
}

func (w *wire) sent(method string) []sentRequest {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []sentRequest
	for _, r := range w.reqs {
		if r.method == method {
			out = append(out, r)
		}
	}
	return out
}

// sentKeys is the keyCredentials of a PATCH body as raw JSON values, so
// customKeyIdentifier is compared as the exact string on the wire.
func sentKeys(t *testing.T, body []byte) []map[string]json.RawMessage {
	t.Helper()
	var b struct {
		KeyCredentials []map[string]json.RawMessage `json:"keyCredentials"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("PATCH body %s: %v", body, err)
	}
	return b.KeyCredentials
}

func jsonString(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("%s is not a JSON string: %v", raw, err)
	}
	return s
}

// foreignKeys puts keys the way other tools leave them on the first-party
// service principal: identifiers that are base64 of arbitrary bytes (as
// other applications set), the hex thumbprint string a portal upload
// shows, the same in lower case, and bytes of text. It returns the stored
// identifier of every key by keyId.
func foreignKeys(t *testing.T, w *sim.World, tenant string) map[string]string {
	t.Helper()
	nb, na := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2029, 6, 1, 0, 0, 0, 0, time.UTC)
	portal := sim.NewCertificate("Contoso Portal Upload", 9101, nb, na)
	partner := sim.NewCertificate("Fabrikam Sync", 9102, nb, na)
	lower := sim.NewCertificate("Woodgrove Lower", 9103, nb, na)
	text := sim.NewCertificate("Tailspin Text", 9104, nb, na)
	add := []sim.KeyCredential{
		{KeyID: "0c1d0000-0000-4000-8000-000000009101", CustomKeyIdentifier: certs.Thumbprint(portal.DER), Key: portal.DER},
		{KeyID: "0c1d0000-0000-4000-8000-000000009102", CustomKeyIdentifier: "3q2+7wABAgMEBQYHCAkKCw==", Key: partner.DER},
		{KeyID: "0c1d0000-0000-4000-8000-000000009103", CustomKeyIdentifier: strings.ToLower(certs.Thumbprint(lower.DER)), Key: lower.DER},
		{KeyID: "0c1d0000-0000-4000-8000-000000009104", CustomKeyIdentifier: "dGVzdA==", Key: text.DER},
	}
	stored := map[string]string{}
	w.Update(tenant, func(tn *sim.Tenant) {
		for _, sp := range tn.Entra.ServicePrincipals {
			if sp.AppID != cloud.FirstPartyAppID {
				continue
			}
			for _, a := range add {
				sp.KeyCredentials = append(sp.KeyCredentials, sim.KeyCredential{KeyID: a.KeyID, CustomKeyIdentifier: a.CustomKeyIdentifier,
					DisplayName: "uploaded elsewhere", Type: "AsymmetricX509Cert", Usage: "Verify", StartDateTime: nb, EndDateTime: na, Key: a.Key})
			}
			for _, k := range sp.KeyCredentials {
				stored[k.KeyID] = k.CustomKeyIdentifier
			}
		}
	})
	return stored
}

// TestPatchSendsEveryKeysIdentifierBackByteForByte is the wire-format
// contract of shared/reference/graph-entities.tsv NOTE "customKeyIdentifier
// wire form" and NOTE "re-sent keys as CSS sends them": the real client
// (msgraph-sdk-go under this package) reads the first-party service
// principal's keys with the single-object $select=keyCredentials read
// (NOTE "keyCredential.key read-back"), and its PATCH carries every kept
// key's customKeyIdentifier as exactly the string Graph served, whatever
// bytes it encodes, while a new key carries its hex thumbprint.
func TestPatchSendsEveryKeysIdentifierBackByteForByte(t *testing.T) {
	e := start(t)
	before := foreignKeys(t, e.w, tenantChina)
	rec := &wire{base: e.srv.Transport()}
	c := e.client(t, tenantChina, func(o *graph.Options) { o.HTTPClient = &http.Client{Transport: rec, Timeout: 30 * time.Second} })

	sp, err := c.ServicePrincipalByAppID(ctx(t), cloud.FirstPartyAppID)
	if err != nil {
		t.Fatal(err)
	}
	keyRead := false
	for _, r := range rec.sent(http.MethodGet) {
		if strings.Contains(r.url, "/servicePrincipals/"+sp.ID+"?") && strings.Contains(r.url, "select=keyCredentials") && !strings.Contains(r.url, "%2C") && !strings.Contains(r.url, ",") {
			keyRead = true
		}
	}
	if !keyRead {
		t.Fatalf("keys were not read with the single-object $select=keyCredentials read: %+v", rec.sent(http.MethodGet))
	}
	for _, k := range sp.KeyCredentials {
		if len(k.Key) == 0 || k.CustomKeyIdentifier != before[k.KeyID] {
			t.Fatalf("key %s read as %q with %d DER bytes; Graph holds %q", k.KeyID, k.CustomKeyIdentifier, len(k.Key), before[k.KeyID])
		}
	}
	mine, err := graph.CertificateKey(authCertDER(t, e.w, tenantChina), "hybridflow")
	if err != nil {
		t.Fatal(err)
	}
	keys := append(append([]graph.KeyCredential{}, sp.KeyCredentials...), mine)
	if err := c.UpdateServicePrincipal(ctx(t), sp.ID, graph.Patch{KeyCredentials: &keys}); err != nil {
		t.Fatal(err)
	}
	patches := rec.sent(http.MethodPatch)
	if len(patches) != 1 {
		t.Fatalf("%d PATCHes", len(patches))
	}
	sent := sentKeys(t, patches[0].body)
	if len(sent) != len(before)+1 {
		t.Fatalf("PATCH carries %d keys, want %d", len(sent), len(before)+1)
	}
	for i, k := range sent {
		cki := jsonString(t, k["customKeyIdentifier"])
		if i == len(sent)-1 {
			if cki != certs.Thumbprint(mine.Key) {
				t.Errorf("new key sent with customKeyIdentifier %q, want the hex thumbprint", cki)
			}
			continue
		}
		id := jsonString(t, k["keyId"])
		if cki != before[id] {
			t.Errorf("key %s: customKeyIdentifier %q on the wire, Graph had %q", id, cki, before[id])
		}
	}
	after := firstPartySP(t, e.w, tenantChina)
	for _, k := range after.KeyCredentials {
		if want, ok := before[k.KeyID]; ok && k.CustomKeyIdentifier != want {
			t.Errorf("key %s stored as %q after the PATCH, was %q", k.KeyID, k.CustomKeyIdentifier, want)
		}
	}
}

// TestIdentifierThatCannotTravelUnchangedIsRefused: a key whose identifier
// would not reach Graph as the same string is refused before any request.
func TestIdentifierThatCannotTravelUnchangedIsRefused(t *testing.T) {
	e := start(t)
	rec := &wire{base: e.srv.Transport()}
	c := e.client(t, tenantGlobal, func(o *graph.Options) { o.HTTPClient = &http.Client{Transport: rec, Timeout: 30 * time.Second} })
	der := authCertDER(t, e.w, tenantGlobal)
	for _, cki := range []string{"not base64!", "bWluZR==", certs.Thumbprint(der)[:39]} {
		keys := []graph.KeyCredential{{Key: der, CustomKeyIdentifier: cki}}
		err := c.UpdateServicePrincipal(ctx(t), firstPartySP(t, e.w, tenantGlobal).ID, graph.Patch{KeyCredentials: &keys})
		if !graph.IsInvalid(err) || !strings.Contains(err.Error(), "customKeyIdentifier") {
			t.Errorf("%q: %v", cki, err)
		}
	}
	if n := len(rec.sent(http.MethodPatch)); n != 0 {
		t.Fatalf("%d PATCHes sent", n)
	}
}

// TestKeyThumbprintFromCertificateOrHexIdentifier: a key's thumbprint is
// its certificate's; without the certificate, the identifier when it is a
// hex thumbprint (any case), and nothing otherwise.
func TestKeyThumbprintFromCertificateOrHexIdentifier(t *testing.T) {
	der := sim.NewCertificate("x", 1, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)).DER
	tp := certs.Thumbprint(der)
	for _, tc := range []struct {
		k    graph.KeyCredential
		want string
	}{
		{graph.KeyCredential{Key: der, CustomKeyIdentifier: "dGVzdA=="}, tp},
		{graph.KeyCredential{Key: der, CustomKeyIdentifier: strings.Repeat("A", 40)}, tp},
		{graph.KeyCredential{CustomKeyIdentifier: strings.ToLower(tp)}, tp},
		{graph.KeyCredential{CustomKeyIdentifier: "dGVzdA=="}, ""},
		{graph.KeyCredential{}, ""},
	} {
		if got := tc.k.Thumbprint(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.k.CustomKeyIdentifier, got, tc.want)
		}
	}
}
