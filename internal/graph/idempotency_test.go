package graph_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/graph"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// lostReply is a gateway in front of the simulator that lets the first
// request matching method and path suffix through, so the service applies
// it, and then answers the client with status instead of the service's
// reply: the 503/504 of a gateway that gave up waiting. It counts the
// matching requests that reached the service.
type lostReply struct {
	next         http.RoundTripper
	method, path string
	status       int
	mu           sync.Mutex
	sent         int
}

func (l *lostReply) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != l.method || !strings.HasSuffix(r.URL.Path, l.path) {
		return l.next.RoundTrip(r)
	}
	l.mu.Lock()
	l.sent++
	first := l.sent == 1
	l.mu.Unlock()
	resp, err := l.next.RoundTrip(r)
	if err != nil || !first {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	h := http.Header{"Content-Type": {"application/json"}, "Retry-After": {"1"}}
	body := `{"error":{"code":"UnknownError","message":"gateway timeout"}}`
	return &http.Response{StatusCode: l.status, Status: http.StatusText(l.status), Header: h, Body: io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)), Request: r, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}, nil
}

func (l *lostReply) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent
}

// A POST is never sent twice by the client: when its reply is lost (a
// gateway's 503 or 504 after the service created the object), sending it
// again would create a second application; for a service principal or an
// app role assignment it would turn the lost success into a conflict. The
// error says the outcome is unknown (Server), for the caller to read back.
func TestCreatesAreNotRetriedAfterALostReply(t *testing.T) {
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusGatewayTimeout} {
		e := start(t)
		gw := func(method, path string) (*lostReply, *graph.Client) {
			l := &lostReply{next: e.srv.Transport(), method: method, path: path, status: status}
			return l, e.client(t, tenantGlobal, func(o *graph.Options) { o.HTTPClient = &http.Client{Transport: l} })
		}
		plain := e.client(t, tenantGlobal)

		l, c := gw(http.MethodPost, "/applications")
		_, err := c.CreateApplication(ctx(t), "lost-reply-app", "AzureADMyOrg", nil)
		if l.count() != 1 || graph.KindOf(err) != graph.Server {
			t.Errorf("%d: POST applications sent %d time(s), error %v; want once, a server error", status, l.count(), err)
		}
		apps := 0
		e.w.View(tenantGlobal, func(tn *sim.Tenant) {
			for _, a := range tn.Entra.Applications {
				if a.DisplayName == "lost-reply-app" {
					apps++
				}
			}
		})
		if apps != 1 {
			t.Fatalf("%d: %d applications named lost-reply-app; want exactly the one the lost POST created", status, apps)
		}
		app, err := plain.ApplicationByDisplayName(ctx(t), "lost-reply-app")
		if err != nil {
			t.Fatal(err)
		}

		l, c = gw(http.MethodPost, "/servicePrincipals")
		_, err = c.CreateServicePrincipal(ctx(t), app.AppID)
		if l.count() != 1 || graph.KindOf(err) != graph.Server {
			t.Errorf("%d: POST servicePrincipals sent %d time(s), error %v; want once, a server error", status, l.count(), err)
		}
		sp, err := plain.ServicePrincipalByAppIDKey(ctx(t), app.AppID)
		if err != nil {
			t.Fatalf("%d: the service principal the lost POST made, read by its appId: %v", status, err)
		}
		fp, err := plain.LookupServicePrincipal(ctx(t), cloud.FirstPartyAppID)
		if err != nil {
			t.Fatal(err)
		}

		l, c = gw(http.MethodPost, "/appRoleAssignments")
		_, err = c.AssignAppRole(ctx(t), sp.ID, fp.ID, fullAccess)
		if l.count() != 1 || graph.KindOf(err) != graph.Server {
			t.Errorf("%d: POST appRoleAssignments sent %d time(s), error %v; want once, a server error", status, l.count(), err)
		}
		a, err := plain.FindAppRoleAssignment(ctx(t), sp.ID, fp.ID, fullAccess)
		if err != nil || a.ID == "" {
			t.Fatalf("%d: the assignment the lost POST made, read back: %+v, %v", status, a, err)
		}
	}
}

// Requests that can be repeated are still retried in the call: a read, a
// whole-collection PATCH, and the discovery batch (a POST that carries
// reads only).
func TestIdempotentRequestsAreRetriedAfterALostReply(t *testing.T) {
	e := start(t)
	for _, tc := range []struct {
		method, path string
		call         func(c *graph.Client) error
	}{
		{http.MethodGet, "/domains", func(c *graph.Client) error { _, err := c.Domains(ctx(t)); return err }},
		{http.MethodPost, "/$batch", func(c *graph.Client) error {
			_, err := c.ReadEntraState(ctx(t), cloud.FirstPartyAppID, "ExchangeServerApp-none")
			return err
		}},
		{http.MethodPatch, "/servicePrincipals/", func(c *graph.Client) error {
			sp, err := c.ServicePrincipalByAppID(ctx(t), cloud.FirstPartyAppID)
			if err != nil {
				return err
			}
			return c.UpdateServicePrincipal(ctx(t), sp.ID, graph.Patch{ServicePrincipalNames: &sp.ServicePrincipalNames})
		}},
	} {
		l := &lostReply{next: e.srv.Transport(), method: tc.method, path: tc.path, status: http.StatusServiceUnavailable}
		if tc.method == http.MethodPatch {
			l.path = "" // every PATCH
		}
		c := e.client(t, tenantGlobal, func(o *graph.Options) { o.HTTPClient = &http.Client{Transport: l} })
		if err := tc.call(c); err != nil || l.count() != 2 {
			t.Errorf("%s %s: %v after %d request(s); want success after a retry", tc.method, tc.path, err, l.count())
		}
	}
}

// The dedicated application is created by Graph's upsert, keyed by its
// uniqueName: a second upsert updates the one application (created false),
// a read by the key finds it, and a lost reply leaves one application that
// the read by key finds; the upsert itself is sent once.
func TestUpsertApplicationIsIdempotentByKey(t *testing.T) {
	e := start(t)
	c := e.client(t, tenantGlobal)
	const u = "hybridflow-upsert-o'test" // a quote travels doubled
	rra := []graph.RequiredResourceAccess{{ResourceAppID: cloud.FirstPartyAppID, ResourceAccess: []graph.ResourceAccess{{ID: fullAccess, Type: "Role"}}}}
	if _, err := c.ApplicationByUniqueName(ctx(t), u); !graph.IsNotFound(err) {
		t.Fatalf("before: %v; want not found", err)
	}
	first, created, err := c.UpsertApplication(ctx(t), u, "upserted", "AzureADMyOrg", rra, "tag-1")
	if err != nil || !created || first.UniqueName != u || first.AppID == "" || len(first.Tags) != 1 {
		t.Fatalf("first upsert: %+v created=%v %v", first, created, err)
	}
	again, created, err := c.UpsertApplication(ctx(t), u, "upserted", "AzureADMyOrg", rra, "tag-1")
	if err != nil || created || again.ID != first.ID || len(again.RequiredResourceAccess) != 1 {
		t.Fatalf("second upsert: %+v created=%v %v; want the same application, not created", again, created, err)
	}
	byKey, err := c.ApplicationByUniqueName(ctx(t), u)
	if err != nil || byKey.ID != first.ID || byKey.UniqueName != u {
		t.Fatalf("read by uniqueName: %+v %v", byKey, err)
	}

	const lost = "hybridflow-upsert-lost"
	l := &lostReply{next: e.srv.Transport(), method: http.MethodPatch, path: "applications(uniqueName='" + lost + "')", status: http.StatusGatewayTimeout}
	gc := e.client(t, tenantGlobal, func(o *graph.Options) { o.HTTPClient = &http.Client{Transport: l} })
	if _, _, err := gc.UpsertApplication(ctx(t), lost, "lost", "AzureADMyOrg", rra); graph.KindOf(err) != graph.Server || l.count() != 1 {
		t.Fatalf("upsert with a lost reply: %v after %d request(s); want a server error after one", err, l.count())
	}
	n := 0
	e.w.View(tenantGlobal, func(tn *sim.Tenant) {
		for _, a := range tn.Entra.Applications {
			if a.UniqueName == lost {
				n++
			}
		}
	})
	if got, err := c.ApplicationByUniqueName(ctx(t), lost); n != 1 || err != nil || got.DisplayName != "lost" {
		t.Fatalf("after the lost reply: %d application(s); read by key %+v %v", n, got, err)
	}
}
