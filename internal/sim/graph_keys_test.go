package sim

import (
	"net/http"
	"testing"

	"github.com/hybridflow/hybridflow/internal/cloud"
)

// TestApplicationUpsertByUniqueName follows
// shared/reference/graph-entities.tsv, the NOTE row "upsert by uniqueName"
// (PATCH /applications(uniqueName='{uniqueName}') with Prefer:
// create-if-missing: 201 and the whole application when none has that
// uniqueName, 204 when it exists and was updated; without the header a
// plain update; the body must contain displayName), and the rows
// "application property uniqueName" and "application alternateKey
// uniqueName".
func TestApplicationUpsertByUniqueName(t *testing.T) {
	g := startGraphEnv(t)
	tok := g.token(t, smallGlobal)
	const key = "/v1.0/applications(uniqueName='hybridflow-test-1')"
	upsert := func(body map[string]any, prefer bool) graphResp {
		var hdr []string
		if prefer {
			hdr = []string{"Prefer", "create-if-missing"}
		}
		return g.do(t, tok, http.MethodPatch, key, body, hdr...)
	}
	count := func() (n int, app Application) {
		g.w.View(smallGlobal, func(tn *Tenant) {
			for _, a := range tn.Entra.Applications {
				if a.UniqueName == "hybridflow-test-1" {
					n, app = n+1, *a
				}
			}
		})
		return n, app
	}

	// Without the preference a missing application is not created.
	if r := upsert(map[string]any{"displayName": "upserted"}, false); r.status != http.StatusNotFound {
		t.Fatalf("PATCH by a missing uniqueName without Prefer: %d %s; want 404", r.status, r.raw)
	}
	// With it, the body must carry displayName.
	if r := upsert(map[string]any{"tags": []string{"x"}}, true); r.status != http.StatusBadRequest {
		t.Fatalf("upsert without displayName: %d %s; want 400", r.status, r.raw)
	}
	if n, _ := count(); n != 0 {
		t.Fatalf("%d applications after refused upserts; want none", n)
	}

	r := upsert(map[string]any{"displayName": "upserted", "tags": []string{"first"}}, true)
	if r.status != http.StatusCreated || r.body["uniqueName"] != "hybridflow-test-1" || r.body["id"] == "" || r.body["appId"] == "" || r.body["displayName"] != "upserted" {
		t.Fatalf("first upsert: %d %s; want 201 with the whole application", r.status, r.raw)
	}
	id := r.body["id"]
	r = upsert(map[string]any{"displayName": "upserted", "tags": []string{"second"}}, true)
	if r.status != http.StatusNoContent || len(r.raw) != 0 {
		t.Fatalf("second upsert: %d %s; want 204 without a body", r.status, r.raw)
	}
	n, app := count()
	if n != 1 || app.ID != id || len(app.Tags) != 1 || app.Tags[0] != "second" {
		t.Fatalf("after two upserts: %d application(s), %+v; want one, updated", n, app)
	}
	// Without the preference an existing one is updated.
	if r := upsert(map[string]any{"tags": []string{"third"}}, false); r.status != http.StatusNoContent {
		t.Fatalf("plain update by uniqueName: %d %s; want 204", r.status, r.raw)
	}

	// The alternate key reads the application; uniqueName is served.
	r = g.do(t, tok, http.MethodGet, key, nil)
	if r.status != http.StatusOK || r.body["id"] != id || r.body["uniqueName"] != "hybridflow-test-1" {
		t.Fatalf("GET by uniqueName: %d %s", r.status, r.raw)
	}
	if r := g.do(t, tok, http.MethodGet, "/v1.0/applications(uniqueName='nobody')", nil); r.status != http.StatusNotFound || r.errCode() != GraphCodeNotFound {
		t.Fatalf("GET by a missing uniqueName: %d %s; want 404 %s", r.status, r.raw, GraphCodeNotFound)
	}
	// uniqueName is set by the upsert only.
	if r := g.do(t, tok, http.MethodPatch, "/v1.0/applications/"+id.(string), map[string]any{"uniqueName": "other"}); r.status != http.StatusBadRequest {
		t.Fatalf("PATCH uniqueName: %d %s; want 400", r.status, r.raw)
	}
	if r := g.do(t, tok, http.MethodPost, "/v1.0/applications", map[string]any{"displayName": "x", "uniqueName": "other"}); r.status != http.StatusBadRequest {
		t.Fatalf("POST with uniqueName: %d %s; want 400", r.status, r.raw)
	}
	// A malformed key is refused, not taken for the collection.
	for _, p := range []string{"/v1.0/applications(uniqueName=hybridflow-test-1)", "/v1.0/applications(uniqueName='a'b')", "/v1.0/applications(displayName='upserted')"} {
		if r := g.do(t, tok, http.MethodGet, p, nil); r.status != http.StatusBadRequest {
			t.Errorf("GET %s: %d %s; want 400", p, r.status, r.raw)
		}
	}
}

// TestReadsByAlternateKey follows shared/reference/graph-entities.tsv, rows
// "servicePrincipal alternateKey appId" and "application alternateKey
// appId": the object is addressed by the key in its entity set's segment.
// The keys' certificate bytes are documented (NOTE "keyCredential.key
// read-back") for a read by id with $select=keyCredentials only, so a read
// by key does not carry them.
func TestReadsByAlternateKey(t *testing.T) {
	g := startGraphEnv(t)
	tok := g.token(t, smallChina) // its first-party service principal has keys
	fp := g.firstParty(t, smallChina)
	r := g.do(t, tok, http.MethodGet, "/v1.0/servicePrincipals(appId='"+cloud.FirstPartyAppID+"')", nil)
	if r.status != http.StatusOK || r.body["id"] != fp.ID {
		t.Fatalf("GET servicePrincipals(appId=…): %d %s; want %s", r.status, r.raw, fp.ID)
	}
	r = g.do(t, tok, http.MethodGet, "/v1.0/servicePrincipals(appId='"+cloud.FirstPartyAppID+"')?$select=keyCredentials", nil)
	keys, _ := r.body["keyCredentials"].([]any)
	if r.status != http.StatusOK || len(keys) == 0 {
		t.Fatalf("GET by key with $select=keyCredentials: %d %s", r.status, r.raw)
	}
	for _, k := range keys {
		if k.(map[string]any)["key"] != nil {
			t.Errorf("a read by alternate key carries a key's certificate: %v", k)
		}
	}
	if r := g.do(t, tok, http.MethodGet, "/v1.0/servicePrincipals(appId='0badf00d-0000-4000-8000-000000000000')", nil); r.status != http.StatusNotFound {
		t.Fatalf("GET a missing appId: %d %s; want 404", r.status, r.raw)
	}
	// A key segment is followed by the object's navigation properties.
	r = g.do(t, tok, http.MethodGet, "/v1.0/servicePrincipals(appId='"+cloud.FirstPartyAppID+"')/appRoleAssignments", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET servicePrincipals(appId=…)/appRoleAssignments: %d %s", r.status, r.raw)
	}
	if got := graphOperation([]string{"servicePrincipals(appId='x')", "appRoleAssignments"}); got != "servicePrincipals/appRoleAssignments" {
		t.Errorf("operation of a keyed path = %q", got)
	}
	if got := graphOperation([]string{"applications(uniqueName='x')"}); got != "applications" {
		t.Errorf("operation of the upsert = %q", got)
	}
	if got := graphOperation([]string{"servicePrincipals", "id", "appRoleAssignments", "id2"}); got != "servicePrincipals/appRoleAssignments" {
		t.Errorf("operation by ids = %q", got)
	}
}
