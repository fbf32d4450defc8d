package graph_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/certs"
	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/graph"
	"github.com/hybridflow/hybridflow/internal/sim"
)

const dedicatedName = "ExchangeServerApp-5e1f0000-0000-4000-8000-0000000000aa"

// dedicated creates the dedicated application, its service principal and
// the consent with the client's individual calls.
func dedicated(t *testing.T, c *graph.Client) (*graph.Application, *graph.ServicePrincipal) {
	t.Helper()
	rra := []graph.RequiredResourceAccess{{ResourceAppID: cloud.FirstPartyAppID, ResourceAccess: []graph.ResourceAccess{{ID: fullAccess, Type: "Role"}}}}
	app, err := c.CreateApplication(ctx(t), dedicatedName, "AzureADMyOrg", rra)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := c.CreateServicePrincipal(ctx(t), app.AppID)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := c.ServicePrincipalByAppID(ctx(t), cloud.FirstPartyAppID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AssignAppRole(ctx(t), sp.ID, fp.ID, fullAccess); err != nil {
		t.Fatal(err)
	}
	return app, sp
}

func graphReads(e *env, tenant string) int64 {
	if tc := e.w.Stats().ByTenant[strings.ToLower(tenant)]; tc != nil {
		return tc.GraphReads
	}
	return 0
}

// individually reads what ReadEntraState reads, one call at a time (the
// way discovery read before batching).
func individually(t *testing.T, c *graph.Client, name string) *graph.EntraState {
	t.Helper()
	st := &graph.EntraState{}
	fp, err := c.ServicePrincipalByAppID(ctx(t), cloud.FirstPartyAppID)
	if err != nil && !graph.IsNotFound(err) {
		t.Fatal(err)
	}
	st.FirstParty = fp
	if app, err := c.ApplicationByDisplayName(ctx(t), name); err == nil {
		st.Application = app
		if sp, err := c.ServicePrincipalByAppID(ctx(t), app.AppID); err == nil {
			st.ApplicationSP = sp
			if st.Assignments, err = c.AppRoleAssignments(ctx(t), sp.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	ds, err := c.Domains(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	st.Domains = ds
	return st
}

// sameState compares what discovery uses of the two reads.
func sameState(t *testing.T, batched, single *graph.EntraState) {
	t.Helper()
	if (batched.FirstParty == nil) != (single.FirstParty == nil) {
		t.Fatalf("first party: batched %+v, individually %+v", batched.FirstParty, single.FirstParty)
	}
	if b, s := batched.FirstParty, single.FirstParty; b != nil {
		if b.ID != s.ID || b.AppID != s.AppID || !reflect.DeepEqual(b.KeyCredentials, s.KeyCredentials) || !reflect.DeepEqual(b.ServicePrincipalNames, s.ServicePrincipalNames) {
			t.Errorf("first party: batched %+v\nindividually %+v", b, s)
		}
	}
	if (batched.Application == nil) != (single.Application == nil) {
		t.Fatalf("application: batched %+v, individually %+v", batched.Application, single.Application)
	}
	if b, s := batched.Application, single.Application; b != nil {
		if b.ID != s.ID || b.AppID != s.AppID || b.DisplayName != s.DisplayName || !reflect.DeepEqual(b.KeyCredentials, s.KeyCredentials) || !reflect.DeepEqual(b.RequiredResourceAccess, s.RequiredResourceAccess) {
			t.Errorf("application: batched %+v\nindividually %+v", b, s)
		}
	}
	if (batched.ApplicationSP == nil) != (single.ApplicationSP == nil) || (batched.ApplicationSP != nil && batched.ApplicationSP.ID != single.ApplicationSP.ID) {
		t.Errorf("application's service principal: batched %+v, individually %+v", batched.ApplicationSP, single.ApplicationSP)
	}
	if !reflect.DeepEqual(batched.Assignments, single.Assignments) {
		t.Errorf("assignments: batched %+v\nindividually %+v", batched.Assignments, single.Assignments)
	}
	if len(batched.Domains) != len(single.Domains) {
		t.Fatalf("domains: batched %+v, individually %+v", batched.Domains, single.Domains)
	}
	for i := range batched.Domains {
		if b, s := batched.Domains[i], single.Domains[i]; b.ID != s.ID || b.IsVerified != s.IsVerified {
			t.Errorf("domain %d: batched %+v, individually %+v", i, b, s)
		}
	}
}

// TestReadEntraStateIsOneRequestWithTheIndividualReadsData: one batch,
// plus one batch of single-object $select=keyCredentials reads when the
// first-party service principal or the application has keys (Graph sends
// the certificates only to that read; shared/reference/graph-entities.tsv
// NOTE "keyCredential.key read-back"), and the same data as the individual
// reads, certificates included. Once the client knows the first-party
// service principal's object ID, that read rides in the first batch: the
// later reads are one request each, with the same data.
func TestReadEntraStateIsOneRequestWithTheIndividualReadsData(t *testing.T) {
	e := start(t)
	c := e.client(t, tenantChina) // a foreign and an expired key on the first-party SP
	app, sp := dedicated(t, c)
	// A service principal of another application under the same name must
	// not be taken for the dedicated one.
	e.w.Update(tenantChina, func(tn *sim.Tenant) {
		tn.Entra.ServicePrincipals = append(tn.Entra.ServicePrincipals, &sim.ServicePrincipal{
			ID: "decoy000-0000-4000-8000-000000000000", AppID: "decoy000-0000-4000-8000-0000000000ff", DisplayName: dedicatedName})
	})
	for i, tc := range []struct{ name, app string }{{"dedicated app", dedicatedName}, {"no such app", "ExchangeServerApp-none"}, {"no name", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			before := graphReads(e, tenantChina)
			st, err := c.ReadEntraState(ctx(t), cloud.FirstPartyAppID, tc.app)
			if err != nil {
				t.Fatal(err)
			}
			want, what := 1, "one batch (the service principal known)"
			if i == 0 {
				want, what = 2, "the discovery batch and the key batch"
			}
			if got := graphReads(e, tenantChina) - before; got != int64(want) || st.Requests != want {
				t.Fatalf("%d Graph reads, %d requests; want %s", got, st.Requests, what)
			}
			single := individually(t, c, tc.app)
			if tc.app == "" {
				single.Application, single.ApplicationSP, single.Assignments = nil, nil, nil
			}
			sameState(t, st, single)
			if len(st.FirstParty.KeyCredentials) != 2 || len(st.FirstParty.KeyCredentials[0].Key) == 0 || len(st.FirstParty.KeyCredentials[1].Key) == 0 {
				t.Errorf("first-party keys without their bytes: %+v", st.FirstParty.KeyCredentials)
			}
			if tc.app == dedicatedName && (st.Application.ID != app.ID || st.ApplicationSP.ID != sp.ID || len(st.Assignments) != 1) {
				t.Errorf("dedicated: %+v %+v %+v", st.Application, st.ApplicationSP, st.Assignments)
			}
		})
	}
}

// TestReadEntraStateWithAStaleServicePrincipal: the first-party service
// principal deleted and made again under another object ID after the
// client learnt the first: the read in the first batch finds nothing
// (404), the keys are read afterwards as for an unknown object, and the
// next read knows the new ID.
func TestReadEntraStateWithAStaleServicePrincipal(t *testing.T) {
	e := start(t)
	c := e.client(t, tenantChina) // keys on the first-party SP
	read := func(want int) *graph.EntraState {
		t.Helper()
		before := graphReads(e, tenantChina)
		st, err := c.ReadEntraState(ctx(t), cloud.FirstPartyAppID, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := graphReads(e, tenantChina) - before; got != int64(want) || st.Requests != want {
			t.Fatalf("%d Graph reads, %d requests; want %d", got, st.Requests, want)
		}
		if st.FirstParty == nil || len(st.FirstParty.KeyCredentials) != 2 || len(st.FirstParty.KeyCredentials[0].Key) == 0 {
			t.Fatalf("first-party keys without their certificates: %+v", st.FirstParty)
		}
		return st
	}
	old := read(2).FirstParty.ID
	read(1)
	const renewed = "5e1f0000-0000-4000-8000-00000000f00d"
	e.w.Update(tenantChina, func(tn *sim.Tenant) {
		for _, sp := range tn.Entra.ServicePrincipals {
			if sp.ID == old {
				sp.ID = renewed
			}
		}
	})
	if st := read(2); st.FirstParty.ID != renewed {
		t.Fatalf("first party %s, want %s", st.FirstParty.ID, renewed)
	}
	read(1)
}

// TestReadEntraStateSkipsTheCertificatesOfAConvergedApplication: an
// application that holds every auth certificate, each key identified by
// its thumbprint as customKeyIdentifier, costs no second read; the keys
// then carry no certificate (shared/reference/graph-entities.tsv NOTE
// "keyCredential.key read-back") and are known by their identifiers
// (NOTE "customKeyIdentifier" and "customKeyIdentifier wire form": Graph's
// default for a certificate key, and how Microsoft's scripts match keys).
// Anything short of that reads the certificates as before.
func TestReadEntraStateSkipsTheCertificatesOfAConvergedApplication(t *testing.T) {
	e := start(t)
	c := e.client(t, tenantGlobal) // no keys on the first-party SP
	app, _ := dedicated(t, c)
	der := authCertDER(t, e.w, tenantGlobal)
	tp := certs.Thumbprint(der)
	key, err := graph.CertificateKey(der, "hybridflow")
	if err != nil {
		t.Fatal(err)
	}
	keys := []graph.KeyCredential{key}
	if err := c.UpdateApplication(ctx(t), app.ID, graph.ApplicationPatch{KeyCredentials: &keys}); err != nil {
		t.Fatal(err)
	}
	const other = "0123456789ABCDEF0123456789ABCDEF01234567"
	read := func(t *testing.T, want int, thumbprints ...string) *graph.EntraState {
		t.Helper()
		before := graphReads(e, tenantGlobal)
		st, err := c.ReadEntraState(ctx(t), cloud.FirstPartyAppID, dedicatedName, thumbprints...)
		if err != nil {
			t.Fatal(err)
		}
		if got := graphReads(e, tenantGlobal) - before; got != int64(want) || st.Requests != want {
			t.Fatalf("%d Graph reads, %d requests; want %d", got, st.Requests, want)
		}
		if st.Application == nil || len(st.Application.KeyCredentials) != 1 || st.Application.KeyCredentials[0].Thumbprint() != tp {
			t.Fatalf("application keys: %+v, want the one of %s", st.Application, tp)
		}
		return st
	}
	t.Run("holds every auth certificate", func(t *testing.T) {
		st := read(t, 1, strings.ToLower(tp))
		if k := st.Application.KeyCredentials[0]; len(k.Key) != 0 {
			t.Errorf("certificate read anyway: %d bytes", len(k.Key))
		}
	})
	for _, tc := range []struct {
		name        string
		thumbprints []string
	}{{"lacks the next certificate", []string{tp, other}}, {"no auth certificate named", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			if k := read(t, 2, tc.thumbprints...).Application.KeyCredentials[0]; len(k.Key) == 0 {
				t.Error("keys without their certificates")
			}
		})
	}
	t.Run("an identifier that is no thumbprint", func(t *testing.T) {
		e.w.Update(tenantGlobal, func(tn *sim.Tenant) {
			for _, a := range tn.Entra.Applications {
				if a.ID == app.ID {
					a.KeyCredentials = append(a.KeyCredentials, sim.KeyCredential{KeyID: "9d6a0000-0000-4000-8000-000000000001",
						CustomKeyIdentifier: "b3RoZXI=", Type: "AsymmetricX509Cert", Usage: "Verify",
						StartDateTime: a.KeyCredentials[0].StartDateTime, EndDateTime: a.KeyCredentials[0].EndDateTime, Key: a.KeyCredentials[0].Key})
				}
			}
		})
		before := graphReads(e, tenantGlobal)
		st, err := c.ReadEntraState(ctx(t), cloud.FirstPartyAppID, dedicatedName, tp)
		if err != nil {
			t.Fatal(err)
		}
		if got := graphReads(e, tenantGlobal) - before; got != 2 || len(st.Application.KeyCredentials) != 2 || len(st.Application.KeyCredentials[1].Key) == 0 {
			t.Fatalf("%d Graph reads, keys %+v; want the certificates read", got, st.Application.KeyCredentials)
		}
	})
}

func TestReadEntraStateRareCasesReadMore(t *testing.T) {
	e := start(t)
	c := e.client(t, tenantGlobal)
	_, sp := dedicated(t, c)
	fp := firstPartySP(t, e.w, tenantGlobal)
	e.w.Update(tenantGlobal, func(tn *sim.Tenant) {
		// More domains than a page, a renamed dedicated service principal
		// and more assignments than Graph expands (the consent last).
		for i := range 120 {
			tn.Entra.Domains = append(tn.Entra.Domains, sim.Domain{ID: fmt.Sprintf("d%03d.example.com", i), IsVerified: i%2 == 0})
		}
		var consent *sim.AppRoleAssignment
		for _, s := range tn.Entra.ServicePrincipals {
			if s.ID == sp.ID {
				s.DisplayName = "renamed"
			}
		}
		for i, a := range tn.Entra.AppRoleAssignments {
			if a.PrincipalID == sp.ID {
				consent = a
				tn.Entra.AppRoleAssignments = append(tn.Entra.AppRoleAssignments[:i], tn.Entra.AppRoleAssignments[i+1:]...)
				break
			}
		}
		for i := range 25 {
			tn.Entra.AppRoleAssignments = append(tn.Entra.AppRoleAssignments, &sim.AppRoleAssignment{
				ID: fmt.Sprintf("other%02d", i), PrincipalID: sp.ID, ResourceID: fp.ID, AppRoleID: "00000000-0000-4000-8000-0000000000" + fmt.Sprintf("%02d", i)})
		}
		tn.Entra.AppRoleAssignments = append(tn.Entra.AppRoleAssignments, consent)
	})
	before := graphReads(e, tenantGlobal)
	st, err := c.ReadEntraState(ctx(t), cloud.FirstPartyAppID, dedicatedName)
	if err != nil {
		t.Fatal(err)
	}
	// The batch, the domains' second page, the appId lookup for the renamed
	// service principal, and its assignments listed (not expanded there).
	if got := graphReads(e, tenantGlobal) - before; got != 4 || st.Requests != 4 {
		t.Fatalf("%d Graph reads, %d requests; want 4", got, st.Requests)
	}
	sameState(t, st, individually(t, c, dedicatedName))
	if len(st.Assignments) != 26 || len(st.Domains) < 120 {
		t.Fatalf("%d assignments, %d domains", len(st.Assignments), len(st.Domains))
	}

	// Named right again: the expansion has 20, which cannot prove the
	// consent missing, so the assignments are listed.
	e.w.Update(tenantGlobal, func(tn *sim.Tenant) {
		for _, s := range tn.Entra.ServicePrincipals {
			if s.ID == sp.ID {
				s.DisplayName = dedicatedName
			}
		}
	})
	before = graphReads(e, tenantGlobal)
	if st, err = c.ReadEntraState(ctx(t), cloud.FirstPartyAppID, dedicatedName); err != nil {
		t.Fatal(err)
	}
	if got := graphReads(e, tenantGlobal) - before; got != 3 || len(st.Assignments) != 26 {
		t.Fatalf("%d Graph reads (want batch, domain page, assignments), %d assignments", got, len(st.Assignments))
	}
}

func TestReadEntraStateInnerThrottleWaitsThenSucceeds(t *testing.T) {
	e := start(t)
	e.w.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoGraph, Operation: "GET applications", Tenant: tenantGlobal, Kind: sim.FaultThrottle, FailFirstN: 1, RetryAfter: time.Second}})
	c := e.client(t, tenantGlobal)
	began := time.Now()
	st, err := c.ReadEntraState(ctx(t), cloud.FirstPartyAppID, dedicatedName)
	took := time.Since(began)
	if err != nil || st.FirstParty == nil || len(st.Domains) == 0 {
		t.Fatalf("%+v, %v", st, err)
	}
	if took < 950*time.Millisecond || took > 5*time.Second {
		t.Fatalf("took %s, want about the 1 s Retry-After", took)
	}
	if got := e.w.FaultsFired()[sim.FaultThrottle]; got != 1 {
		t.Fatalf("throttles fired %d", got)
	}
	if reads := graphReads(e, tenantGlobal); reads != 2 || st.Requests != 2 {
		t.Fatalf("graph reads %d, requests %d; want the batch and the retry of its throttled request", reads, st.Requests)
	}
}

func TestReadEntraStateErrors(t *testing.T) {
	e := start(t)
	cases := []struct {
		name   string
		rule   sim.FaultRule
		mod    func(*graph.Options)
		kind   graph.Kind
		status int
		op     string
		after  time.Duration
	}{
		{"inner 429 beyond the budget", sim.FaultRule{Operation: "GET domains", Kind: sim.FaultThrottle, Rate: 1, RetryAfter: 7 * time.Second},
			func(o *graph.Options) { o.MaxRetryWait = 2 * time.Second }, graph.Throttled, 429, "Domains", 7 * time.Second},
		{"inner 503 with retries off", sim.FaultRule{Operation: "GET servicePrincipals", Kind: sim.FaultServer, Rate: 1, RetryAfter: 3 * time.Second},
			func(o *graph.Options) { o.MaxRetries = -1 }, graph.Server, 503, "ServicePrincipalByAppID", 3 * time.Second},
		{"inner 403", sim.FaultRule{Operation: "GET applications", Kind: sim.FaultFail, ErrorType: "403", Rate: 1},
			nil, graph.Forbidden, 403, "ApplicationByDisplayName", 0},
		{"whole batch 429", sim.FaultRule{Operation: "POST $batch", Kind: sim.FaultThrottle, Rate: 1, RetryAfter: 7 * time.Second},
			func(o *graph.Options) { o.MaxRetryWait = 2 * time.Second }, graph.Throttled, 429, "Batch", 7 * time.Second},
		{"whole batch 403", sim.FaultRule{Operation: "POST $batch", Kind: sim.FaultFail, ErrorType: "403", Rate: 1},
			nil, graph.Forbidden, 403, "Batch", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.rule.Protocol = sim.ProtoGraph
			e.w.SetFaults([]sim.FaultRule{tc.rule})
			var mods []func(*graph.Options)
			if tc.mod != nil {
				mods = append(mods, tc.mod)
			}
			began := time.Now()
			_, err := e.client(t, tenantGlobal, mods...).ReadEntraState(ctx(t), cloud.FirstPartyAppID, dedicatedName)
			if time.Since(began) > 2*time.Second {
				t.Fatalf("waited %s inside the call", time.Since(began))
			}
			var ge *graph.Error
			if !errors.As(err, &ge) || ge.Kind != tc.kind || ge.Status != tc.status || ge.Op != tc.op || ge.RetryAfter != tc.after || ge.Code == "" {
				t.Fatalf("got %#v", err)
			}
			if ge.Retryable() != (tc.kind == graph.Throttled || tc.kind == graph.Server) {
				t.Fatalf("retryable %v for %s", ge.Retryable(), tc.kind)
			}
		})
	}
}

func TestReadEntraStateWholeBatch503IsRetriedInCall(t *testing.T) {
	e := start(t)
	e.w.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoGraph, Operation: "POST $batch", Kind: sim.FaultServer, FailFirstN: 1, RetryAfter: time.Second}})
	c := e.client(t, tenantGlobal)
	st, err := c.ReadEntraState(ctx(t), cloud.FirstPartyAppID, dedicatedName)
	if err != nil || st.FirstParty == nil || len(st.Domains) != 3 {
		t.Fatalf("%+v, %v", st, err)
	}
	// Kiota's retry handler re-sent the whole batch (with its body).
	if reads := graphReads(e, tenantGlobal); reads != 2 || e.w.FaultsFired()[sim.FaultServer] != 1 {
		t.Fatalf("graph reads %d, faults %v", reads, e.w.FaultsFired())
	}
}

// recordBatches is a transport that keeps the request URLs of every
// $batch it carries.
type recordBatches struct {
	next http.RoundTripper
	urls *[]string
}

func (r recordBatches) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, "/$batch") && req.Body != nil {
		data, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(data))
		rd := io.Reader(bytes.NewReader(data))
		if req.Header.Get("Content-Encoding") == "gzip" {
			if gz, err := gzip.NewReader(rd); err == nil {
				rd = gz
			}
		}
		var b struct {
			Requests []struct{ URL string } `json:"requests"`
		}
		_ = json.NewDecoder(rd).Decode(&b)
		for _, q := range b.Requests {
			*r.urls = append(*r.urls, q.URL)
		}
	}
	return r.next.RoundTrip(req)
}

func TestBatchURLsLookLikeDirectOnes(t *testing.T) {
	e := start(t)
	var seen []string
	c := e.client(t, tenantGlobal, func(o *graph.Options) {
		o.HTTPClient = &http.Client{Transport: recordBatches{next: e.srv.Transport(), urls: &seen}, Timeout: 30 * time.Second}
	})
	// A quote in the name must survive the batch's URL handling.
	st, err := c.ReadEntraState(ctx(t), cloud.FirstPartyAppID, "it's")
	if err != nil || st.Application != nil || st.FirstParty == nil {
		t.Fatalf("%+v %v", st, err)
	}
	if len(seen) != 4 {
		t.Fatalf("urls %v", seen)
	}
	for _, u := range seen {
		if strings.Contains(u, "%24") || !strings.Contains(u, "?$") || strings.Contains(u, "v1.0") || !strings.HasPrefix(u, "/") {
			t.Errorf("batch url %q", u)
		}
	}
	t.Logf("batch urls: %q", seen)
}

// plainBodies is a transport that counts requests with a body and those
// among them sent compressed.
type plainBodies struct {
	next            http.RoundTripper
	bodies, encoded *int
}

func (p plainBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		*p.bodies++
		if req.Header.Get("Content-Encoding") != "" {
			*p.encoded++
		}
	}
	return p.next.RoundTrip(req)
}

// TestRequestBodiesGoPlain: the client sends its request bodies (the
// discovery $batch, a PATCH of keys and names) as plain JSON, without a
// Content-Encoding: compressing bodies this small costs CPU for nothing.
func TestRequestBodiesGoPlain(t *testing.T) {
	e := start(t)
	var bodies, encoded int
	c := e.client(t, tenantGlobal, func(o *graph.Options) {
		o.HTTPClient = &http.Client{Transport: plainBodies{next: e.srv.Transport(), bodies: &bodies, encoded: &encoded}, Timeout: 30 * time.Second}
	})
	st, err := c.ReadEntraState(ctx(t), cloud.FirstPartyAppID, dedicatedName)
	if err != nil || st.FirstParty == nil {
		t.Fatalf("%+v %v", st, err)
	}
	sp := st.FirstParty
	names := append(slices.Clone(sp.ServicePrincipalNames), "https://plain.example.com/")
	if err := c.UpdateServicePrincipal(ctx(t), sp.ID, graph.Patch{ServicePrincipalNames: &names}); err != nil {
		t.Fatal(err)
	}
	if bodies < 2 || encoded != 0 {
		t.Fatalf("%d request bodies, %d of them with a Content-Encoding; want at least 2, none encoded", bodies, encoded)
	}
}
