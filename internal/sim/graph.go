package sim

// The simulated Microsoft Graph v1.0: the part of it hybridflow calls, with
// Graph's documented semantics (docs/microsoft-behaviour.md): whole-collection
// PATCH; a key's certificate bytes only on a single-object read with
// $select=keyCredentials, never in a list; customKeyIdentifier kept and
// served as the base64 text of its bytes, defaulting to the hex thumbprint;
// PATCHes with keys Graph would refuse answered 400; Graph-shaped errors;
// Retry-After on 429/503. msgraph-sdk-go talks to it unchanged;
// internal/graph's contract tests are the proof.
//
// Fault injection: each authenticated request is decided once
// (World.DecideRequest) with protocol "graph", its method, its path after
// /v1.0 ("/servicePrincipals/<id>") and the operation "<METHOD> <path
// without ids>", e.g. "GET servicePrincipals", "PATCH servicePrincipals",
// "POST servicePrincipals/appRoleAssignments", "GET domains"; a JSON batch
// ("POST $batch", path "/$batch") is decided once as a whole and then once
// per request in it (graph_batch.go). A "fail" rule's error_type is
// "<status>[ <code>]" (e.g. "403" or "404 Request_ResourceNotFound"); a
// missing status means 500 and a missing code the usual code for the
// status. "drop" closes the connection before the request is served;
// "apply_then_drop" serves it (the model changes) into a discarding
// ResponseWriter and then closes the connection, so the client gets no
// reply to a write that happened.

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hybridflow/hybridflow/internal/cloud"
)

// graphMaxBody bounds request bodies; a keyCredentials PATCH with a few
// certificates is a few kilobytes.
const graphMaxBody = 1 << 20

// Graph error codes the simulator answers with.
const (
	GraphCodeBadRequest       = "Request_BadRequest"
	GraphCodeNotFound         = "Request_ResourceNotFound"
	GraphCodeUnsupportedQuery = "Request_UnsupportedQuery"
	GraphCodeDenied           = "Authorization_RequestDenied"
	GraphCodeInvalidToken     = "InvalidAuthenticationToken"
	GraphCodeConflict         = "Request_MultipleObjectsWithSameKeyValue"
	GraphCodeThrottled        = "TooManyRequests"
	GraphCodeUnavailable      = "ServiceUnavailable"
	GraphCodeInternal         = "InternalServerError"
	// GraphMsgDuplicateAssignment is what POST appRoleAssignments answers
	// for an assignment that exists (the wording is not documented by
	// Microsoft; unconfirmed).
	GraphMsgDuplicateAssignment = "Permission being assigned already exists on the object"
)

// graphError is an error response: status, Graph code, message and, for
// 429/503, the Retry-After delay.
type graphError struct {
	status     int
	code       string
	message    string
	retryAfter time.Duration
}

func (e *graphError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.message) }

func graphErrf(status int, code, format string, args ...any) *graphError {
	return &graphError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func graphBadRequest(format string, args ...any) *graphError {
	return graphErrf(http.StatusBadRequest, GraphCodeBadRequest, format, args...)
}

func graphNotFound(id string) *graphError {
	return graphErrf(http.StatusNotFound, GraphCodeNotFound,
		"Resource '%s' does not exist or one of its queried reference-property objects are not present.", id)
}

func graphInvalidProperty(prop, resource string) *graphError {
	return graphBadRequest("Invalid value specified for property '%s' of resource '%s'.", prop, resource)
}

// graphReply is a successful response: status and a JSON body (nil for 204).
type graphReply struct {
	status int
	body   any
}

// NewGraphHandler serves /v1.0/... for every tenant of w; the bearer token
// says which tenant a request is for.
func NewGraphHandler(w *World) http.Handler {
	return &graphHandler{w: w, rng: rand.New(rand.NewSource(splitmix(w.Seed ^ 0x4752415048)))}
}

type graphHandler struct {
	w *World
	// rng makes server-assigned IDs; guarded by w.mu like the model, so a
	// seeded world replays the same IDs for the same request order.
	rng *rand.Rand
}

// graphCall is one request being served.
type graphCall struct {
	h      *graphHandler
	method string
	t      *Tenant
	segs   []string // path segments after /v1.0
	query  url.Values
	base   string // https://host/v1.0
	prefer string // the Prefer header
	wrote  bool   // a state change happened
	entity string // for error messages
	// byKey: the object was addressed by an alternate key
	// (applications(uniqueName='…'), servicePrincipals(appId='…')).
	// Microsoft documents the keys' certificate bytes for a read by id
	// with $select=keyCredentials only, so such a read never carries them.
	byKey bool
}

func (h *graphHandler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	reqID := simRequestID()
	rw.Header().Set("request-id", reqID)
	if c := r.Header.Get("client-request-id"); c != "" {
		rw.Header().Set("client-request-id", c)
	} else {
		rw.Header().Set("client-request-id", reqID)
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1.0/")
	if !ok {
		graphWriteError(rw, reqID, graphBadRequest("Invalid version: the simulator serves only /v1.0."))
		return
	}
	segs := strings.Split(strings.Trim(rest, "/"), "/")

	tok, err := BearerToken(r)
	if err != nil {
		msg := "Access token validation failure. Invalid audience."
		switch {
		case errors.Is(err, ErrNoToken):
			msg = "Access token is empty."
		case errors.Is(err, ErrTokenExpired):
			msg = "Lifetime validation failed, the token is expired."
		case errors.Is(err, ErrBadToken):
			msg = "IDX14100: JWT is not well formed, there are no dots (.)."
		}
		rw.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
		graphWriteError(rw, reqID, graphErrf(http.StatusUnauthorized, GraphCodeInvalidToken, "%s", msg))
		return
	}
	if e := h.checkTenant(tok); e != nil {
		graphWriteError(rw, reqID, e)
		return
	}

	if len(segs) == 1 && segs[0] == "$batch" {
		h.serveBatch(rw, r, reqID, tok.TenantID)
		return
	}
	f := h.w.DecideRequest(FaultRequest{Protocol: ProtoGraph, Method: r.Method, Path: "/" + rest,
		Operation: r.Method + " " + graphOperation(segs), Tenant: tok.TenantID})
	NoteFault(r.Context(), f)
	if !graphSleep(r, f.Delay) {
		return
	}
	switch f.Kind {
	case "":
	case FaultApplyThenDrop:
		// Served in full, so the world changes, and the reply is lost.
		h.serveRequest(newDiscardResponse(), r, reqID, tok.TenantID, segs)
		dropConnection(rw)
		return
	default:
		// A faulted request changed nothing: it counts as a read.
		h.w.CountRequest(ProtoGraph, tok.TenantID, false)
		h.fault(rw, reqID, f)
		return
	}
	h.serveRequest(rw, r, reqID, tok.TenantID, segs)
}

// serveRequest serves one authenticated, non-batch request after the
// fault decision, and counts it.
func (h *graphHandler) serveRequest(rw http.ResponseWriter, r *http.Request, reqID, tenantID string, segs []string) {
	write := r.Method != http.MethodGet
	var body map[string]json.RawMessage
	if r.Method == http.MethodPost || r.Method == http.MethodPatch {
		var e *graphError
		if body, e = graphReadBody(r); e != nil {
			h.w.CountRequest(ProtoGraph, tenantID, false)
			graphWriteError(rw, reqID, e)
			return
		}
	}

	rep, out, gerr, wrote := h.run(tenantID, r.Method, graphBase(r), segs, r.URL.Query(), r.Header.Get("Prefer"), body)
	h.w.CountRequest(ProtoGraph, tenantID, write && wrote)
	switch {
	case gerr != nil:
		graphWriteError(rw, reqID, gerr)
	case out == nil:
		rw.WriteHeader(rep.status)
	default:
		rw.Header().Set("Content-Type", graphContentType)
		rw.Header().Set("Content-Length", strconv.Itoa(len(out)))
		rw.WriteHeader(rep.status)
		_, _ = rw.Write(out)
	}
}

// graphContentType is what Graph labels its JSON responses with.
const graphContentType = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"

// graphBase is the service root links in responses start with.
func graphBase(r *http.Request) string {
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	return scheme + "://" + r.Host + "/v1.0"
}

// run serves one request against the model under w.mu and returns the
// reply, its encoded body (nil for none) and whether the model changed.
// Direct requests and each request of a $batch go through it, so the two
// cannot differ in semantics; counting is the caller's (a batch is one
// request).
func (h *graphHandler) run(tenantID, method, base string, segs []string, query url.Values, prefer string, body map[string]json.RawMessage) (graphReply, []byte, *graphError, bool) {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	c := &graphCall{h: h, method: method, t: h.w.tenant(tenantID), segs: segs, query: query, base: base, prefer: prefer}
	if c.t == nil {
		// Removed from the world after checkTenant.
		return graphReply{}, nil, graphErrf(http.StatusForbidden, GraphCodeDenied, "Insufficient privileges to complete the operation."), false
	}
	rep, gerr := c.dispatch(body)
	wrote := c.wrote && gerr == nil
	if wrote {
		c.t.Behaviour.PendingPropagation = c.t.Behaviour.PropagationChecks
	}
	if gerr != nil || rep.body == nil {
		return rep, nil, gerr, wrote
	}
	out, err := json.Marshal(rep.body)
	if err != nil {
		return rep, nil, graphErrf(http.StatusInternalServerError, GraphCodeInternal, "encode response: %v", err), wrote
	}
	return rep, out, nil, wrote
}

// checkTenant refuses tokens for tenants the world does not have and
// tokens for another cloud's (or another service's) audience, which is how
// a client using the wrong cloud's scope fails against real Graph.
func (h *graphHandler) checkTenant(tok Token) *graphError {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	t := h.w.tenant(tok.TenantID)
	if t == nil {
		return graphErrf(http.StatusForbidden, GraphCodeDenied, "Insufficient privileges to complete the operation.")
	}
	p, err := cloud.Lookup(t.Cloud)
	if err != nil {
		return graphErrf(http.StatusInternalServerError, GraphCodeInternal, "tenant %s: %v", t.ID, err)
	}
	if want := AudienceOf(p.GraphScope()); tok.Audience != want {
		return graphErrf(http.StatusUnauthorized, GraphCodeInvalidToken,
			"Access token validation failure. Invalid audience. (token for %s, this is %s)", tok.Audience, want)
	}
	return nil
}

// graphOperation names a request for fault rules: the path with the
// object IDs and alternate keys left out
// (servicePrincipals/{id}/appRoleAssignments →
// servicePrincipals/appRoleAssignments; applications(uniqueName='x') →
// applications).
func graphOperation(segs []string) string {
	var names []string
	for i := 0; i < len(segs); i++ {
		set, _, keyed := strings.Cut(segs[i], "(")
		names = append(names, set)
		if !keyed {
			i++ // the next segment is the object's ID
		}
	}
	return strings.Join(names, "/")
}

func (h *graphHandler) fault(rw http.ResponseWriter, reqID string, f Fault) {
	if f.Kind == FaultDrop {
		dropConnection(rw)
		return
	}
	graphWriteError(rw, reqID, graphFaultError(f))
}

// graphFaultError is the error response of an injected throttle, 5xx
// (503 unless the rule names another 5xx status) or fail (a drop has
// none).
func graphFaultError(f Fault) *graphError {
	switch f.Kind {
	case FaultThrottle:
		ra := graphRetryAfter(f.RetryAfter)
		msg := f.Message
		if msg == "" {
			msg = fmt.Sprintf("Too many requests. Please retry after %d seconds.", int(ra/time.Second))
		}
		return &graphError{status: http.StatusTooManyRequests, code: GraphCodeThrottled, message: msg, retryAfter: ra}
	case FaultServer:
		msg := f.Message
		if msg == "" {
			msg = "The service is temporarily unavailable. Please retry."
		}
		status := f.ServerStatus()
		var ra time.Duration
		if status == http.StatusServiceUnavailable || f.RetryAfter > 0 {
			ra = graphRetryAfter(f.RetryAfter)
		}
		return &graphError{status: status, code: graphDefaultCode(status), message: msg, retryAfter: ra}
	}
	status, code := graphParseErrorType(f.ErrorType)
	msg := f.Message
	if msg == "" {
		msg = "Simulated failure (" + code + ")."
	}
	return graphErrf(status, code, "%s", msg)
}

// graphRetryAfter rounds up to whole seconds (the header carries seconds)
// and defaults to one second, as Graph never sends zero.
func graphRetryAfter(d time.Duration) time.Duration {
	if d <= 0 {
		return time.Second
	}
	return ((d + time.Second - 1) / time.Second) * time.Second
}

// graphParseErrorType reads a fail rule's error_type: "<status>[ <code>]".
func graphParseErrorType(s string) (int, string) {
	s = strings.TrimSpace(s)
	first, rest, _ := strings.Cut(s, " ")
	status, err := strconv.Atoi(first)
	if err != nil || status < 400 || status > 599 {
		status, rest = http.StatusInternalServerError, s
	}
	code := strings.TrimSpace(rest)
	if code == "" {
		code = graphDefaultCode(status)
	}
	return status, code
}

func graphDefaultCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return GraphCodeBadRequest
	case http.StatusUnauthorized:
		return GraphCodeInvalidToken
	case http.StatusForbidden:
		return GraphCodeDenied
	case http.StatusNotFound:
		return GraphCodeNotFound
	case http.StatusConflict:
		return GraphCodeConflict
	case http.StatusTooManyRequests:
		return GraphCodeThrottled
	case http.StatusServiceUnavailable:
		return GraphCodeUnavailable
	}
	return GraphCodeInternal
}

func graphWriteError(rw http.ResponseWriter, reqID string, e *graphError) {
	if e.retryAfter > 0 {
		rw.Header().Set("Retry-After", strconv.Itoa(int(e.retryAfter/time.Second)))
	}
	serveJSON(rw, e.status, graphErrorBody(e, reqID, rw.Header().Get("client-request-id")))
}

// graphErrorBody is Graph's error JSON.
func graphErrorBody(e *graphError, reqID, clientReqID string) map[string]any {
	return map[string]any{
		"error": map[string]any{
			"code":    e.code,
			"message": e.message,
			"innerError": map[string]any{
				"date":              time.Now().UTC().Format("2006-01-02T15:04:05"),
				"request-id":        reqID,
				"client-request-id": clientReqID,
			},
		},
	}
}

// graphReadBody decodes a JSON object body, gzip-compressed or not (the
// Kiota compression middleware gzips request bodies).
func graphReadBody(r *http.Request) (map[string]json.RawMessage, *graphError) {
	var rd io.Reader = io.LimitReader(r.Body, graphMaxBody+1)
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		gz, err := gzip.NewReader(rd)
		if err != nil {
			return nil, graphBadRequest("Unable to read the gzip-encoded request payload: %v", err)
		}
		defer gz.Close()
		rd = io.LimitReader(gz, graphMaxBody+1)
	}
	data, err := io.ReadAll(rd)
	if err != nil {
		return nil, graphBadRequest("Unable to read the request payload: %v", err)
	}
	if len(data) > graphMaxBody {
		return nil, graphErrf(http.StatusRequestEntityTooLarge, GraphCodeBadRequest, "The request payload is larger than %d bytes.", graphMaxBody)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(data, &body); err != nil || body == nil {
		return nil, graphBadRequest("Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
	}
	return body, nil
}

// dispatch routes a request to its operation. Callers hold w.mu.
func (c *graphCall) dispatch(body map[string]json.RawMessage) (graphReply, *graphError) {
	if strings.Contains(c.segs[0], "(") {
		return c.dispatchByKey(body)
	}
	m := c.method
	n := len(c.segs)
	notAllowed := graphErrf(http.StatusMethodNotAllowed, GraphCodeBadRequest, "Specified HTTP method is not allowed for the request target.")
	switch c.segs[0] {
	case "servicePrincipals":
		switch {
		case n == 1 && m == http.MethodGet:
			return c.listServicePrincipals()
		case n == 1 && m == http.MethodPost:
			return c.createServicePrincipal(body)
		case n == 2 && m == http.MethodGet:
			return c.getServicePrincipal(c.segs[1])
		case n == 2 && m == http.MethodPatch:
			return c.patchServicePrincipal(c.segs[1], body)
		case n == 2 && m == http.MethodDelete:
			return c.deleteServicePrincipal(c.segs[1])
		case n == 3 && c.segs[2] == "appRoleAssignments" && m == http.MethodGet:
			return c.listAppRoleAssignments(c.segs[1])
		case n == 3 && c.segs[2] == "appRoleAssignments" && m == http.MethodPost:
			return c.createAppRoleAssignment(c.segs[1], body)
		case n == 4 && c.segs[2] == "appRoleAssignments" && m == http.MethodDelete:
			return c.deleteAppRoleAssignment(c.segs[1], c.segs[3])
		case n <= 4 && (n < 3 || c.segs[2] == "appRoleAssignments"):
			return graphReply{}, notAllowed
		}
	case "applications":
		switch {
		case n == 1 && m == http.MethodGet:
			return c.listApplications()
		case n == 1 && m == http.MethodPost:
			return c.createApplication(body)
		case n == 2 && m == http.MethodGet:
			return c.getApplication(c.segs[1])
		case n == 2 && m == http.MethodPatch:
			return c.patchApplication(c.segs[1], body)
		case n == 2 && m == http.MethodDelete:
			return c.deleteApplication(c.segs[1])
		case n <= 2:
			return graphReply{}, notAllowed
		}
	case "domains":
		switch {
		case n == 1 && m == http.MethodGet:
			return c.listDomains()
		case n == 2 && m == http.MethodGet:
			return c.getDomain(c.segs[1])
		case n <= 2:
			return graphReply{}, notAllowed
		}
	case "organization":
		switch {
		case n == 1 && m == http.MethodGet:
			return c.listOrganization()
		case n <= 2:
			return graphReply{}, notAllowed
		}
	}
	return graphReply{}, graphBadRequest("Resource not found for the segment '%s'.", c.segs[len(c.segs)-1])
}

// newID is a server-assigned object ID. Callers hold w.mu.
func (c *graphCall) newID() string { return genGUID(c.h.rng) }
