package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/cloud"
)

func batchURL(path string, params ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(params); i += 2 {
		q.Set(params[i], params[i+1])
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// batchAnswers sends a batch and indexes its answers by id.
func (g *graphEnv) batch(t *testing.T, tok string, reqs []map[string]any) (graphResp, map[string]map[string]any) {
	t.Helper()
	r := g.do(t, tok, "POST", "/v1.0/$batch", map[string]any{"requests": reqs})
	out := map[string]map[string]any{}
	rs, _ := r.body["responses"].([]any)
	for _, x := range rs {
		m := x.(map[string]any)
		out[m["id"].(string)] = m
	}
	return r, out
}

// stripVolatile drops what differs between any two answers (request ids,
// dates) so bodies can be compared.
func stripVolatile(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if k == "innerError" {
				continue
			}
			out[k] = stripVolatile(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = stripVolatile(e)
		}
		return out
	}
	return v
}

func (g *graphEnv) reads(tenant string) (reads, writes int64) {
	tc := g.w.Stats().ByTenant[strings.ToLower(tenant)]
	if tc == nil {
		return 0, 0
	}
	return tc.GraphReads, tc.GraphWrites
}

func TestGraphBatchAnswersAsDirectRequests(t *testing.T) {
	g := startGraphEnv(t)
	tok := g.token(t, smallGlobal)
	name := "ExchangeServerApp-batch"
	app := g.do(t, tok, "POST", "/v1.0/applications", map[string]any{"displayName": name})
	sp := g.do(t, tok, "POST", "/v1.0/servicePrincipals", map[string]any{"appId": app.body["appId"]})
	spID := sp.body["id"].(string)
	exo := g.firstParty(t, smallGlobal)
	if r := g.do(t, tok, "POST", "/v1.0/servicePrincipals/"+spID+"/appRoleAssignments",
		map[string]any{"principalId": spID, "resourceId": exo.ID, "appRoleId": genRoleFullAccessAsApp}); r.status != 201 {
		t.Fatalf("grant: %d %s", r.status, r.raw)
	}
	paths := []string{
		batchURL("/servicePrincipals", "$filter", "appId eq '"+cloud.FirstPartyAppID+"'", "$select", "id,appId,keyCredentials,servicePrincipalNames"),
		batchURL("/applications", "$filter", "displayName eq '"+name+"'", "$select", "id,appId,displayName,keyCredentials,requiredResourceAccess"),
		batchURL("/servicePrincipals", "$filter", "displayName eq '"+name+"'", "$select", "id,appId,displayName", "$expand", "appRoleAssignments"),
		batchURL("/domains", "$select", "id,isVerified"),
		batchURL("/servicePrincipals/0badf00d-0000-4000-8000-000000000000"),
		batchURL("/domains", "$orderby", "id"),
		batchURL("/servicePrincipals", "$expand", "owners"),
	}
	direct := make([]graphResp, len(paths))
	for i, p := range paths {
		direct[i] = g.do(t, tok, "GET", "/v1.0"+p, nil)
	}
	reads0, writes0 := g.reads(smallGlobal)
	var reqs []map[string]any
	for i, p := range paths {
		reqs = append(reqs, map[string]any{"id": fmt.Sprint(i + 1), "method": "GET", "url": p})
	}
	r, got := g.batch(t, tok, reqs)
	if r.status != 200 || len(got) != len(paths) {
		t.Fatalf("batch: %d %s", r.status, r.raw)
	}
	for i, p := range paths {
		a := got[fmt.Sprint(i+1)]
		if int(a["status"].(float64)) != direct[i].status {
			t.Errorf("%s: status %v in the batch, %d alone", p, a["status"], direct[i].status)
		}
		if !reflect.DeepEqual(stripVolatile(a["body"]), stripVolatile(direct[i].body)) {
			t.Errorf("%s: the batch answered\n%v\nalone\n%v", p, a["body"], direct[i].body)
		}
		if h, _ := a["headers"].(map[string]any); !strings.HasPrefix(fmt.Sprint(h["Content-Type"]), "application/json") {
			t.Errorf("%s: headers %v", p, h)
		}
	}
	// The expansion carries the grant.
	vals := direct[2].values()
	if len(vals) != 1 || len(vals[0]["appRoleAssignments"].([]any)) != 1 || vals[0]["keyCredentials"] != nil {
		t.Fatalf("expanded service principal %v", vals)
	}
	if reads, writes := g.reads(smallGlobal); reads-reads0 != 1 || writes != writes0 {
		t.Fatalf("the batch of %d counted %d read(s) and %d write(s); want one read", len(paths), reads-reads0, writes-writes0)
	}
}

func TestGraphBatchExpandsAtMostTwentyAssignments(t *testing.T) {
	g := startGraphEnv(t)
	tok := g.token(t, smallGlobal)
	exo := g.firstParty(t, smallGlobal)
	g.w.Update(smallGlobal, func(tn *Tenant) {
		for i := range 25 {
			tn.Entra.AppRoleAssignments = append(tn.Entra.AppRoleAssignments, &AppRoleAssignment{
				ID: fmt.Sprintf("a%02d", i), PrincipalID: exo.ID, ResourceID: exo.ID, AppRoleID: genRoleFullAccessAsApp})
		}
	})
	r := g.do(t, tok, "GET", "/v1.0/servicePrincipals/"+exo.ID+"?$select=id&$expand=appRoleAssignments", nil)
	if as, _ := r.body["appRoleAssignments"].([]any); r.status != 200 || len(as) != graphMaxExpanded {
		t.Fatalf("%d, %d expanded: %s", r.status, len(as), r.raw)
	}
	if r := g.do(t, tok, "GET", "/v1.0/applications?$expand=owners", nil); r.errCode() != GraphCodeUnsupportedQuery {
		t.Fatalf("$expand on applications: %d %s", r.status, r.raw)
	}
}

func TestGraphBatchWritesCountOnce(t *testing.T) {
	g := startGraphEnv(t)
	tok := g.token(t, smallGlobal)
	ct := map[string]any{"Content-Type": "application/json"}
	r, got := g.batch(t, tok, []map[string]any{
		{"id": "1", "method": "POST", "url": "/applications", "headers": ct, "body": map[string]any{"displayName": "one"}},
		{"id": "2", "method": "POST", "url": "/applications", "headers": ct, "body": map[string]any{"displayName": "two"}, "dependsOn": []string{"1"}},
		{"id": "3", "method": "POST", "url": "/applications", "body": map[string]any{"displayName": "no content type"}},
		{"id": "4", "method": "GET", "url": "/applications?$filter=displayName eq 'one'"},
	})
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	for id, want := range map[string]float64{"1": 201, "2": 201, "3": 400, "4": 200} {
		if got[id]["status"] != want {
			t.Errorf("request %s: %v", id, got[id])
		}
	}
	if b, _ := got["4"]["body"].(map[string]any); len(b["value"].([]any)) != 1 {
		t.Errorf("the read after the write in the same batch: %v", got["4"])
	}
	tc := g.w.Stats().ByTenant[strings.ToLower(smallGlobal)]
	if tc.GraphWrites != 1 || tc.GraphReads != 0 || tc.Writes != 1 {
		t.Fatalf("counters %+v; want the batch as one write", *tc)
	}
}

func TestGraphBatchValidation(t *testing.T) {
	g := startGraphEnv(t)
	tok := g.token(t, smallGlobal)
	get := func(id string) map[string]any { return map[string]any{"id": id, "method": "GET", "url": "/domains"} }
	var many []map[string]any
	for i := range graphMaxBatch + 1 {
		many = append(many, get(fmt.Sprint(i)))
	}
	cases := []struct {
		name string
		reqs []map[string]any
		msg  string
	}{
		{"too many", many, "exceeds the limit of 20"},
		{"none", []map[string]any{}, "no requests"},
		{"duplicate id", []map[string]any{get("1"), get("1")}, "duplicate request id"},
		{"absolute url", []map[string]any{{"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/domains"}}, "relative"},
		{"unknown dependency", []map[string]any{{"id": "1", "method": "GET", "url": "/domains", "dependsOn": []string{"9"}}}, "unknown request"},
	}
	for _, c := range cases {
		r := g.do(t, tok, "POST", "/v1.0/$batch", map[string]any{"requests": c.reqs})
		if r.status != 400 || !strings.Contains(r.errMessage(), c.msg) {
			t.Errorf("%s: %d %s", c.name, r.status, r.raw)
		}
	}
	// A failed dependency is not run.
	_, got := g.batch(t, tok, []map[string]any{
		{"id": "1", "method": "GET", "url": "/servicePrincipals/0badf00d-0000-4000-8000-000000000000"},
		{"id": "2", "method": "GET", "url": "/domains", "dependsOn": []string{"1"}},
	})
	if got["1"]["status"] != 404.0 || got["2"]["status"] != 424.0 {
		t.Fatalf("dependency: %v", got)
	}
	if r := g.do(t, "", "POST", "/v1.0/$batch", map[string]any{"requests": []map[string]any{get("1")}}); r.status != 401 {
		t.Fatalf("without a token: %d", r.status)
	}
}

func TestGraphBatchFaults(t *testing.T) {
	g := startGraphEnv(t)
	tok := g.token(t, smallGlobal)
	reqs := []map[string]any{
		{"id": "sp", "method": "GET", "url": "/servicePrincipals?$select=id"},
		{"id": "dom", "method": "GET", "url": "/domains"},
		{"id": "app", "method": "GET", "url": "/applications"},
	}
	g.w.SetFaults([]FaultRule{
		{Protocol: ProtoGraph, Operation: "GET domains", Kind: FaultThrottle, FailFirstN: 1, RetryAfter: 2 * time.Second},
		{Protocol: ProtoGraph, Operation: "GET applications", Kind: FaultFail, ErrorType: "403", FailFirstN: 1},
	})
	r, got := g.batch(t, tok, reqs)
	if r.status != 200 || got["sp"]["status"] != 200.0 || got["dom"]["status"] != 429.0 || got["app"]["status"] != 403.0 {
		t.Fatalf("inner faults: %d %s", r.status, r.raw)
	}
	if h := got["dom"]["headers"].(map[string]any); h["Retry-After"] != "2" {
		t.Fatalf("throttled answer's headers %v", h)
	}
	if e := got["app"]["body"].(map[string]any)["error"].(map[string]any); e["code"] != GraphCodeDenied {
		t.Fatalf("403 body %v", e)
	}
	// The rules fired once; now the same batch succeeds.
	if _, got := g.batch(t, tok, reqs); got["dom"]["status"] != 200.0 || got["app"]["status"] != 200.0 {
		t.Fatalf("second batch %v", got)
	}

	// A rule on the batch itself answers the whole batch.
	g.w.SetFaults([]FaultRule{{Protocol: ProtoGraph, Operation: "POST $batch", Kind: FaultServer, FailFirstN: 1, RetryAfter: time.Second}})
	reads0, _ := g.reads(smallGlobal)
	if r, _ := g.batch(t, tok, reqs); r.status != 503 || r.header.Get("Retry-After") != "1" {
		t.Fatalf("batch-level 503: %d %v %s", r.status, r.header, r.raw)
	}
	if reads, _ := g.reads(smallGlobal); reads-reads0 != 1 {
		t.Fatalf("a faulted batch counted %d reads", reads-reads0)
	}

	// A drop on one request drops the batch's connection.
	g.w.SetFaults([]FaultRule{{Protocol: ProtoGraph, Operation: "GET applications", Kind: FaultDrop, FailFirstN: 1}})
	body, _ := json.Marshal(map[string]any{"requests": reqs})
	req, err := http.NewRequest("POST", g.s.BaseURL+"/v1.0/$batch", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := g.s.Client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("dropped batch answered %d", resp.StatusCode)
	}
}
