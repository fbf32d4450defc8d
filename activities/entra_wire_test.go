package activities

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/certs"
	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/graph"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// patchRecorder is the transport under the real Graph client: it keeps
// every PATCH body exactly as it went on the wire (un-gzipped).
type patchRecorder struct {
	base    http.RoundTripper
	mu      sync.Mutex
	patches [][]byte
}

func (p *patchRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPatch && r.Body != nil {
		raw, err := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(raw))
		body := raw
		if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
			zr, err := gzip.NewReader(bytes.NewReader(raw))
			if err != nil {
				return nil, err
			}
			if body, err = io.ReadAll(zr); err != nil {
				return nil, err
			}
		}
		p.mu.Lock()
		p.patches = append(p.patches, body)
		p.mu.Unlock()
	}
	return p.base.RoundTrip(r)
}

func (p *patchRecorder) take() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.patches
	p.patches = nil
	return out
}

type oneClient struct{ c *graph.Client }

func (o oneClient) Graph(Target) (*graph.Client, error) { return o.c, nil }

// wireIdentifiers is keyId → customKeyIdentifier of a PATCH body, each the
// exact JSON string sent.
func wireIdentifiers(t *testing.T, body []byte) map[string]string {
	t.Helper()
	var b struct {
		KeyCredentials []struct {
			KeyID string  `json:"keyId"`
			CKI   *string `json:"customKeyIdentifier"`
		} `json:"keyCredentials"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("PATCH body %s: %v", body, err)
	}
	out := map[string]string{}
	for _, k := range b.KeyCredentials {
		if k.CKI == nil {
			out[k.KeyID] = "<absent>"
		} else {
			out[k.KeyID] = *k.CKI
		}
	}
	return out
}

// TestProductPatchesLeaveForeignIdentifiersByteIdentical is the product's
// side of shared/reference/graph-entities.tsv NOTE "customKeyIdentifier
// wire form" and NOTE "re-sent keys as CSS sends them": with the real
// Graph client (msgraph-sdk-go) against the simulated Graph, every PATCH
// the product makes to keyCredentials (the legacy upload, the dedicated
// application's upload, the legacy clean-up and its undo) sends each
// foreign key's customKeyIdentifier as exactly the string Graph held:
// base64 of random bytes as other applications set, the portal's hex
// thumbprint string, the same in lower case, base64 of text. Graph's
// stored values are unchanged afterwards too.
func TestProductPatchesLeaveForeignIdentifiersByteIdentical(t *testing.T) {
	w, err := sim.Load(filepath.Join("..", "configs", "sim", "small.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv, err := sim.Start(ctx, w, sim.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	tenant := entraSmall2 // already a partner key and an expired Exchange auth certificate
	var cloudName string
	w.View(tenant, func(tn *sim.Tenant) { cloudName = tn.Cloud })
	rec := &patchRecorder{base: srv.Transport()}
	c, err := graph.New(graph.Options{Cloud: cloud.MustLookup(cloudName), TenantID: tenant, Credential: sim.StaticCredential(tenant),
		BaseURL: srv.GraphURL(), HTTPClient: &http.Client{Transport: rec, Timeout: 30 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	a := &Entra{Clients: oneClient{c}, Now: w.Now}
	tg := Target{TenantID: tenant, Cloud: cloudName}

	nb, na := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2029, 6, 1, 0, 0, 0, 0, time.UTC)
	foreign := map[string]string{} // keyId → identifier Graph holds
	plant := func(keys *[]sim.KeyCredential, serial int64, cki string) {
		cert := sim.NewCertificate("Another Application", serial, nb, na)
		id := fmt.Sprintf("0c1d0000-0000-4000-8000-%012d", 9000+serial)
		*keys = append(*keys, sim.KeyCredential{KeyID: id, CustomKeyIdentifier: cki, DisplayName: "uploaded elsewhere",
			Type: "AsymmetricX509Cert", Usage: "Verify", StartDateTime: nb, EndDateTime: na, Key: cert.DER})
		foreign[id] = cki
	}
	portal := sim.NewCertificate("Contoso Portal Upload", 9200, nb, na)
	w.Update(tenant, func(tn *sim.Tenant) {
		for _, sp := range tn.Entra.ServicePrincipals {
			if sp.AppID != cloud.FirstPartyAppID {
				continue
			}
			for _, k := range sp.KeyCredentials {
				if !plan.IsExchangeAuthCertificate(k.Key) {
					foreign[k.KeyID] = k.CustomKeyIdentifier
				}
			}
			plant(&sp.KeyCredentials, 1, "3q2+7wABAgMEBQYHCAkKCw==")
			plant(&sp.KeyCredentials, 2, "dGVzdA==")
			sp.KeyCredentials = append(sp.KeyCredentials, sim.KeyCredential{KeyID: "0c1d0000-0000-4000-8000-000000009200",
				CustomKeyIdentifier: certs.Thumbprint(portal.DER), DisplayName: "CN=Contoso Portal Upload", Type: "AsymmetricX509Cert", Usage: "Verify",
				StartDateTime: nb, EndDateTime: na, Key: portal.DER})
			foreign["0c1d0000-0000-4000-8000-000000009200"] = certs.Thumbprint(portal.DER)
			plant(&sp.KeyCredentials, 3, strings.ToLower(certs.Thumbprint(sim.NewCertificate("x", 3, nb, na).DER)))
		}
	})
	checkPatches := func(step string, want int) {
		t.Helper()
		ps := rec.take()
		if len(ps) != want {
			t.Fatalf("%s: %d PATCHes, want %d", step, len(ps), want)
		}
		for _, p := range ps {
			sent := wireIdentifiers(t, p)
			for id, cki := range foreign {
				got, ok := sent[id]
				if !ok {
					continue // not on this object
				}
				if got != cki {
					t.Errorf("%s: foreign key %s went out with customKeyIdentifier %q; Graph holds %q", step, id, got, cki)
				}
			}
		}
	}

	var cert *sim.ExchangeCertificate
	w.View(tenant, func(tn *sim.Tenant) { cert = tn.OnPrem.Certificates[0] })
	ours := authCertKey(AuthCertificate{Thumbprint: cert.Thumbprint, NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, DER: cert.DER})

	// Legacy upload: our key joins the first-party principal's keys.
	r, err := a.EnsureFirstPartyServicePrincipal(ctx, FirstPartyInput{Target: tg, Keys: []plan.Key{ours}})
	if err != nil || r.Outcome != Updated {
		t.Fatalf("legacy upload: %+v, %v", r, err)
	}
	checkPatches("legacy upload", 1)

	// The dedicated application, with a key another tool put there.
	app, err := a.EnsureDedicatedApplication(ctx, DedicatedAppInput{Target: tg, Name: entraApp})
	if err != nil {
		t.Fatal(err)
	}
	rec.take()
	w.Update(tenant, func(tn *sim.Tenant) {
		for _, x := range tn.Entra.Applications {
			if x.ID == app.ObjectID {
				plant(&x.KeyCredentials, 4, "AAECAwQFBgcICQ==")
			}
		}
	})
	if r, err := a.EnsureApplicationKeys(ctx, AppKeysInput{Target: tg, AppID: app.AppID, Name: entraApp, Keys: []plan.Key{ours}}); err != nil || r.Outcome != Updated {
		t.Fatalf("application upload: %+v, %v", r, err)
	}
	checkPatches("application upload", 1)

	// The legacy clean-up, then its undo.
	rm, err := a.RemoveLegacyKeys(ctx, RemoveLegacyKeysInput{Target: tg, Thumbprints: []string{ours.Thumbprint}})
	if err != nil || rm.Outcome != Removed || len(rm.Undo) != 1 {
		t.Fatalf("clean-up: %+v, %v", rm, err)
	}
	checkPatches("legacy clean-up", 1)
	if err := a.UndoEntra(ctx, UndoInput{Target: tg, Record: rm.Undo[0]}); err != nil {
		t.Fatal(err)
	}
	ps := rec.take()
	if len(ps) != 1 {
		t.Fatalf("undo: %d PATCHes", len(ps))
	}
	if got := wireIdentifiers(t, ps[0]); got[rm.Undo[0].Keys[0].KeyID] != ours.Thumbprint {
		t.Errorf("our key restored with customKeyIdentifier %q, want %q as Graph had it", got[rm.Undo[0].Keys[0].KeyID], ours.Thumbprint)
	}
	rec.patches = ps
	checkPatches("undo of the clean-up", 1)

	// Graph holds what it held.
	w.View(tenant, func(tn *sim.Tenant) {
		seen := 0
		for _, sp := range tn.Entra.ServicePrincipals {
			for _, k := range sp.KeyCredentials {
				if cki, ok := foreign[k.KeyID]; ok {
					seen++
					if k.CustomKeyIdentifier != cki {
						t.Errorf("key %s stored as %q, was %q", k.KeyID, k.CustomKeyIdentifier, cki)
					}
				}
			}
		}
		for _, x := range tn.Entra.Applications {
			for _, k := range x.KeyCredentials {
				if cki, ok := foreign[k.KeyID]; ok {
					seen++
					if k.CustomKeyIdentifier != cki {
						t.Errorf("key %s stored as %q, was %q", k.KeyID, k.CustomKeyIdentifier, cki)
					}
				}
			}
		}
		if seen != len(foreign) {
			t.Errorf("%d of %d foreign keys left", seen, len(foreign))
		}
	})
}

// TestRemoveLegacyKeysJudgesEachKeysCertificate: the clean-up reads the
// first-party principal's keys with their certificates and takes off every
// Exchange auth certificate, the one the organisation lists and one
// uploaded in an earlier year that it no longer lists; a partner's key,
// even expired, and a key whose identifier merely names our thumbprint
// stay exactly as they were. With ResetAll (an operator's explicit
// choice, Microsoft's -ResetFirstPartyServicePrincipalKeyCredentials)
// every key goes, and the undo puts every one back.
func TestRemoveLegacyKeysJudgesEachKeysCertificate(t *testing.T) {
	e := newEntraTest(t)
	tg := e.target(t, entraSmall1)
	ours := e.authKey(t, entraSmall1)
	if r := e.step(t, e.a.EnsureFirstPartyServicePrincipal, FirstPartyInput{Target: tg, Keys: []plan.Key{ours}}); r.Outcome != Updated {
		t.Fatalf("legacy upload: %+v", r)
	}
	nb := time.Date(2022, 3, 1, 0, 0, 0, 0, time.UTC)
	earlier := sim.NewCertificate(sim.AuthCertificateSubject, 7001, nb, nb.AddDate(5, 0, 0))
	expiredPartner := sim.NewCertificate("Fabrikam SAML", 7002, nb, nb.AddDate(1, 0, 0))
	liar := sim.NewCertificate("Woodgrove Sync", 7003, nb, nb.AddDate(6, 0, 0))
	planted := map[string]string{}
	e.w.Update(entraSmall1, func(tn *sim.Tenant) {
		for _, sp := range tn.Entra.ServicePrincipals {
			if sp.AppID != cloud.FirstPartyAppID {
				continue
			}
			for i, c := range []*sim.ExchangeCertificate{earlier, expiredPartner, liar} {
				cki := []string{certs.Thumbprint(c.DER), "q83vEjRWeJCrze8SNFZ4kA==", ours.Thumbprint}[i]
				id := fmt.Sprintf("7e570000-0000-4000-8000-%012d", i)
				sp.KeyCredentials = append(sp.KeyCredentials, sim.KeyCredential{KeyID: id, CustomKeyIdentifier: cki, DisplayName: c.Subject,
					Type: "AsymmetricX509Cert", Usage: "Verify", StartDateTime: c.NotBefore, EndDateTime: c.NotAfter, Key: c.DER})
				planted[id] = cki
			}
		}
	})
	fpKeys := func() []sim.KeyCredential {
		var out []sim.KeyCredential
		e.w.View(entraSmall1, func(tn *sim.Tenant) {
			for _, sp := range tn.Entra.ServicePrincipals {
				if sp.AppID == cloud.FirstPartyAppID {
					out = append(out, sp.KeyCredentials...)
				}
			}
		})
		return out
	}
	before := fpKeys()
	r := e.step(t, e.a.RemoveLegacyKeys, RemoveLegacyKeysInput{Target: tg, Thumbprints: []string{ours.Thumbprint}})
	after := fpKeys()
	var left []string
	for _, k := range after {
		left = append(left, k.KeyID)
		if cki, ok := planted[k.KeyID]; ok && k.CustomKeyIdentifier != cki {
			t.Errorf("key %s stored as %q, was %q", k.KeyID, k.CustomKeyIdentifier, cki)
		}
	}
	if r.Outcome != Removed || !slices.Equal(left, []string{"7e570000-0000-4000-8000-000000000001", "7e570000-0000-4000-8000-000000000002"}) {
		t.Fatalf("%s: %s; left %v", r.Outcome, r.Detail, left)
	}
	if len(r.Undo) != 1 || len(r.Undo[0].Keys) != 2 {
		t.Fatalf("undo %+v", r.Undo)
	}

	// The reset: every key goes; the undo restores them all as they were.
	if err := e.a.UndoEntra(context.Background(), UndoInput{Target: tg, Record: r.Undo[0]}); err != nil {
		t.Fatal(err)
	}
	reset := e.step(t, e.a.RemoveLegacyKeys, RemoveLegacyKeysInput{Target: tg, ResetAll: true})
	if n := len(fpKeys()); reset.Outcome != Removed || n != 0 || len(reset.Undo) != 1 || len(reset.Undo[0].Keys) != len(before) {
		t.Fatalf("reset: %s %s, %d keys left, undo %+v", reset.Outcome, reset.Detail, n, reset.Undo)
	}
	if err := e.a.UndoEntra(context.Background(), UndoInput{Target: tg, Record: reset.Undo[0]}); err != nil {
		t.Fatal(err)
	}
	restored := fpKeys()
	if len(restored) != len(before) {
		t.Fatalf("after the reset's undo: %d keys, want %d", len(restored), len(before))
	}
	// Restored keys come back after those still there, so compare by keyId.
	byID := map[string]sim.KeyCredential{}
	for _, k := range restored {
		byID[k.KeyID] = k
	}
	for _, b := range before {
		r, ok := byID[b.KeyID]
		if !ok || r.CustomKeyIdentifier != b.CustomKeyIdentifier || !bytes.Equal(r.Key, b.Key) || !r.EndDateTime.Equal(b.EndDateTime) {
			t.Errorf("key %s (identifier %q) restored as %q (found %v)", b.KeyID, b.CustomKeyIdentifier, r.CustomKeyIdentifier, ok)
		}
	}
}
