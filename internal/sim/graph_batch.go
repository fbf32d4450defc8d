package sim

// JSON batching of the simulated Graph: POST /v1.0/$batch with up to 20
// requests, answered 200 with one {id, status, headers, body} per request
// (https://learn.microsoft.com/graph/json-batching). Each request is served
// by graphHandler.run, exactly as if it had come on its own, so a batch
// cannot answer differently from the individual requests.
//
// Counting: a batch is ONE Graph request in World counters (the point of
// batching): a write when any request in it changed the model, else a read.
//
// Faults: the batch is decided once as a whole, with the operation "POST
// $batch" and path "/$batch" (latency delays it; throttle, 5xx and fail
// answer the whole batch; drop closes the connection; apply_then_drop runs
// the whole batch and then closes the connection), then once per request
// in it, with the method, path and operation a direct request would have
// ("GET servicePrincipals"): latency delays that request; throttle, 5xx
// and fail become that request's status (429/503 carry Retry-After in its
// headers, as Graph does); drop closes the whole batch's connection,
// because one connection carries them all (requests served before it stay
// served); apply_then_drop serves that request and then closes the
// connection (the requests after it do not run).
//
// Requests run one after another in the order sent, which honours
// dependsOn; a request whose dependency failed is answered 424 without
// running.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// graphMaxBatch is Graph's limit of requests in one batch.
const graphMaxBatch = 20

// graphBatchRequest is one request of a batch.
type graphBatchRequest struct {
	ID        string            `json:"id"`
	Method    string            `json:"method"`
	URL       string            `json:"url"`
	Headers   map[string]string `json:"headers,omitempty"`
	Body      json.RawMessage   `json:"body,omitempty"`
	DependsOn []string          `json:"dependsOn,omitempty"`
}

// graphBatchResponse is one answer in a batch response.
type graphBatchResponse struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body,omitempty"`
}

func (h *graphHandler) serveBatch(rw http.ResponseWriter, r *http.Request, reqID, tenantID string) {
	f := h.w.DecideRequest(FaultRequest{Protocol: ProtoGraph, Method: r.Method, Path: "/$batch", Operation: r.Method + " $batch", Tenant: tenantID})
	NoteFault(r.Context(), f)
	if !graphSleep(r, f.Delay) {
		return
	}
	switch f.Kind {
	case "":
	case FaultApplyThenDrop:
		h.serveBatchRequests(newDiscardResponse(), r, reqID, tenantID)
		dropConnection(rw)
		return
	default:
		h.w.CountRequest(ProtoGraph, tenantID, false)
		h.fault(rw, reqID, f)
		return
	}
	h.serveBatchRequests(rw, r, reqID, tenantID)
}

// serveBatchRequests serves a batch after its fault decision.
func (h *graphHandler) serveBatchRequests(rw http.ResponseWriter, r *http.Request, reqID, tenantID string) {
	if r.Method != http.MethodPost {
		h.w.CountRequest(ProtoGraph, tenantID, false)
		graphWriteError(rw, reqID, graphErrf(http.StatusMethodNotAllowed, GraphCodeBadRequest, "Specified HTTP method is not allowed for the request target."))
		return
	}
	reqs, e := graphReadBatch(r)
	if e != nil {
		h.w.CountRequest(ProtoGraph, tenantID, false)
		graphWriteError(rw, reqID, e)
		return
	}
	base := graphBase(r)
	status := make(map[string]int, len(reqs))
	out := make([]graphBatchResponse, 0, len(reqs))
	wrote := false
	for _, q := range reqs {
		resp, w, drop := h.batchItem(r, tenantID, base, q, status)
		wrote = wrote || w
		if drop {
			h.w.CountRequest(ProtoGraph, tenantID, wrote)
			dropConnection(rw)
			return
		}
		status[q.ID] = resp.Status
		out = append(out, resp)
	}
	h.w.CountRequest(ProtoGraph, tenantID, wrote)
	serveJSON(rw, http.StatusOK, map[string]any{"responses": out})
}

// graphReadBatch decodes and validates a batch body as Graph does before
// running any of it: 1–20 requests, unique ids, each with a method and a
// relative URL, dependencies naming requests of the batch.
func graphReadBatch(r *http.Request) ([]graphBatchRequest, *graphError) {
	body, e := graphReadBody(r)
	if e != nil {
		return nil, e
	}
	var reqs []graphBatchRequest
	if raw, ok := body["requests"]; !ok || json.Unmarshal(raw, &reqs) != nil {
		return nil, graphBadRequest("Invalid batch payload format: a 'requests' array is required.")
	}
	switch {
	case len(reqs) == 0:
		return nil, graphBadRequest("Invalid batch payload format: the batch has no requests.")
	case len(reqs) > graphMaxBatch:
		return nil, graphBadRequest("Number of requests in the batch (%d) exceeds the limit of %d.", len(reqs), graphMaxBatch)
	}
	ids := make(map[string]bool, len(reqs))
	for i, q := range reqs {
		switch {
		case q.ID == "":
			return nil, graphBadRequest("Invalid batch payload format: request %d has no id.", i)
		case ids[q.ID]:
			return nil, graphBadRequest("Invalid batch payload format: duplicate request id '%s'.", q.ID)
		case q.Method == "" || q.URL == "":
			return nil, graphBadRequest("Invalid batch payload format: request '%s' needs a method and a url.", q.ID)
		}
		if u, err := url.Parse(q.URL); err != nil || u.IsAbs() || u.Host != "" {
			return nil, graphBadRequest("Invalid batch payload format: request '%s' has url '%s'; it must be relative to the version, like '/users'.", q.ID, q.URL)
		}
		ids[q.ID] = true
	}
	for _, q := range reqs {
		for _, d := range q.DependsOn {
			if !ids[d] {
				return nil, graphBadRequest("Invalid batch payload format: request '%s' depends on unknown request '%s'.", q.ID, d)
			}
		}
	}
	return reqs, nil
}

// batchItem serves one request of a batch. It reports whether the model
// changed and whether the connection must be dropped (an injected drop, or
// an apply_then_drop after the request was served).
func (h *graphHandler) batchItem(r *http.Request, tenantID, base string, q graphBatchRequest, done map[string]int) (resp graphBatchResponse, wrote, drop bool) {
	for _, d := range q.DependsOn {
		if s, ok := done[d]; !ok || s >= 400 {
			return graphBatchFail(q.ID, graphErrf(http.StatusFailedDependency, "FailedDependency", "The request was not run because request '%s' it depends on failed or did not run first.", d))
		}
	}
	method := strings.ToUpper(q.Method)
	u, _ := url.Parse(q.URL) // validated by graphReadBatch
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	if segs[0] == "$batch" {
		return graphBatchFail(q.ID, graphBadRequest("A batch cannot contain another batch."))
	}
	f := h.w.DecideRequest(FaultRequest{Protocol: ProtoGraph, Method: method, Path: "/" + strings.TrimPrefix(u.Path, "/"),
		Operation: method + " " + graphOperation(segs), Tenant: tenantID})
	NoteFault(r.Context(), f)
	if !graphSleep(r, f.Delay) || f.Kind == FaultDrop {
		return graphBatchResponse{ID: q.ID}, false, true
	}
	switch f.Kind {
	case "":
	case FaultApplyThenDrop:
		resp, wrote, _ = h.batchRun(tenantID, base, method, segs, u, q)
		return resp, wrote, true
	default:
		return graphBatchFail(q.ID, graphFaultError(f))
	}
	return h.batchRun(tenantID, base, method, segs, u, q)
}

// graphBatchFail is a batch item's error answer.
func graphBatchFail(id string, e *graphError) (graphBatchResponse, bool, bool) {
	resp := graphBatchResponse{ID: id, Status: e.status, Headers: map[string]string{"Content-Type": graphContentType}}
	if e.retryAfter > 0 {
		resp.Headers["Retry-After"] = strconv.Itoa(int(e.retryAfter / time.Second))
	}
	resp.Body, _ = json.Marshal(graphErrorBody(e, simRequestID(), ""))
	return resp, false, false
}

// batchRun runs one batch request after its fault decision.
func (h *graphHandler) batchRun(tenantID, base, method string, segs []string, u *url.URL, q graphBatchRequest) (resp graphBatchResponse, wrote, drop bool) {
	resp.ID = q.ID
	fail := func(e *graphError) (graphBatchResponse, bool, bool) { return graphBatchFail(q.ID, e) }
	var body map[string]json.RawMessage
	if method == http.MethodPost || method == http.MethodPatch {
		if !graphHasContentType(q.Headers) {
			return fail(graphBadRequest("Write request id: %s does not contain Content-Type header or body.", q.ID))
		}
		if json.Unmarshal(q.Body, &body) != nil || body == nil {
			return fail(graphBadRequest("Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format."))
		}
	}
	rep, out, gerr, w := h.run(tenantID, method, base, segs, u.Query(), headerValue(q.Headers, "Prefer"), body)
	if gerr != nil {
		return fail(gerr)
	}
	resp.Status = rep.status
	if out != nil {
		resp.Headers = map[string]string{"Content-Type": graphContentType}
		resp.Body = out
	}
	return resp, method != http.MethodGet && w, false
}

func graphHasContentType(h map[string]string) bool {
	for k, v := range h {
		if strings.EqualFold(k, "Content-Type") && v != "" {
			return true
		}
	}
	return false
}

// graphSleep waits an injected delay; false when the client went away.
func graphSleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.Context().Done():
		return false
	case <-t.C:
		return true
	}
}

// headerValue is a batch request's header, whatever its case.
func headerValue(h map[string]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}
