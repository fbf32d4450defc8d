package sim

// The simulated Exchange Online admin REST endpoint, the way the
// ExchangeOnlineManagement module calls it:
//
//	POST /adminapi/beta/{tenantId}/InvokeCommand
//	Authorization: Bearer <simulator token for the tenant and https://<EXO host>/.default>
//	X-AnchorMailbox: APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@<tenantId>
//	{"CmdletInput":{"CmdletName":"Get-IntraOrganizationConnector","Parameters":{}}}
//
// It answers {"@odata.context", "value", "@odata.nextLink", "@adminapi.warnings"}
// and cmdlet failures as HTTP 400 with the error envelope whose Context
// detail carries {"Message","TypeName"}. Everything after authentication
// goes through World.DecideRequest (faults: protocol "exo", method POST,
// the cmdlet as operation and cmdlet) and World.InvokeWithWarnings (the
// cmdlet engine), so the REST client is tested against the same semantics
// as the PowerShell host. "drop" closes the connection before the cmdlet
// runs; "apply_then_drop" runs it and then closes the connection.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/exchange"
)

const (
	// exoAnchorPrefix is what public callers send as X-AnchorMailbox. The
	// client spells it independently, so a typo there fails the tests.
	exoAnchorPrefix = "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@"
	// exoDefaultPageSize mirrors Exchange Online's default page of 1000 rows.
	exoDefaultPageSize = 1000
	// exoPageTTL bounds how long an unread continuation is kept; it is
	// judged by the wall clock because simulated clocks may stand still.
	exoPageTTL      = 10 * time.Minute
	exoMaxBodyBytes = 1 << 20
)

func init() {
	extraHandlers["/adminapi/"] = func(w *World) http.Handler { return NewEXOHandler(w) }
}

// NewEXOHandler serves InvokeCommand for every tenant of w.
func NewEXOHandler(w *World) http.Handler {
	return &exoHandler{w: w, pages: map[string]*exoContinuation{}}
}

type exoHandler struct {
	w     *World
	mu    sync.Mutex
	pages map[string]*exoContinuation
}

// exoContinuation holds a result that did not fit in one page. Pages are
// addressed by offset, so fetching the same nextLink twice (a client retry
// after a lost reply) returns the same rows.
type exoContinuation struct {
	tenant  string
	cmdlet  string
	rows    []exchange.Row
	expires time.Time
}

type exoRequest struct {
	CmdletInput struct {
		CmdletName string         `json:"CmdletName"`
		Parameters map[string]any `json:"Parameters"`
	} `json:"CmdletInput"`
}

type exoReply struct {
	Context  string         `json:"@odata.context"`
	Warnings []string       `json:"@adminapi.warnings,omitempty"`
	Value    []exchange.Row `json:"value"`
	NextLink string         `json:"@odata.nextLink,omitempty"`
}

type exoErrorEnvelope struct {
	Error exoErrorBody `json:"error"`
}

type exoErrorBody struct {
	Code    string           `json:"code"`
	Message string           `json:"message"`
	Details []exoErrorDetail `json:"details,omitempty"`
}

type exoErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// exoErrorContext is the JSON inside the "Context" detail's message.
type exoErrorContext struct {
	Message  string `json:"Message"`
	TypeName string `json:"TypeName"`
}

func (h *exoHandler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	tenantID, ok := exoTenantFromPath(r.URL.Path)
	if !ok {
		exoWriteError(rw, http.StatusNotFound, "NotFound", "No endpoint matches "+r.URL.Path+".")
		return
	}
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		exoWriteError(rw, http.StatusMethodNotAllowed, "MethodNotAllowed", "InvokeCommand accepts POST only.")
		return
	}
	if !h.authorize(rw, r, tenantID) {
		return
	}
	if anchor := r.Header.Get("X-AnchorMailbox"); !strings.EqualFold(anchor, exoAnchorPrefix+tenantID) {
		exoWriteError(rw, http.StatusBadRequest, "BadRequest", fmt.Sprintf("X-AnchorMailbox must be %s<tenantId>; got %q.", exoAnchorPrefix, anchor))
		return
	}

	var cmd exchange.Command
	var cont *exoContinuation
	offset := 0
	if skip := r.URL.Query().Get("$skiptoken"); skip != "" {
		cont, offset = h.continuation(skip, tenantID)
		if cont == nil {
			exoWriteError(rw, http.StatusBadRequest, "InvalidSkipToken", "The $skiptoken is unknown, expired or belongs to another tenant.")
			return
		}
		cmd.Cmdlet = cont.cmdlet
	} else {
		var req exoRequest
		dec := json.NewDecoder(http.MaxBytesReader(rw, r.Body, exoMaxBodyBytes))
		if err := dec.Decode(&req); err != nil || strings.TrimSpace(req.CmdletInput.CmdletName) == "" {
			exoWriteError(rw, http.StatusBadRequest, "BadRequest", "The request body must be {\"CmdletInput\":{\"CmdletName\":...,\"Parameters\":{...}}}.")
			return
		}
		cmd = exchange.Command{Cmdlet: req.CmdletInput.CmdletName, Parameters: req.CmdletInput.Parameters}
	}

	fault := h.w.DecideRequest(FaultRequest{Protocol: ProtoEXO, Method: r.Method, Operation: cmd.Cmdlet, Cmdlet: cmd.Cmdlet, Tenant: tenantID})
	NoteFault(r.Context(), fault)
	h.w.CountRequest(ProtoEXO, tenantID, cont == nil && exoIsWrite(cmd.Cmdlet))
	if fault.Delay > 0 {
		select {
		case <-time.After(fault.Delay):
		case <-r.Context().Done():
			return
		}
	}
	switch fault.Kind {
	case FaultThrottle:
		retry := fault.RetryAfter
		if retry <= 0 {
			retry = time.Second // Exchange Online always says when to come back
		}
		rw.Header().Set("Retry-After", exoSeconds(retry))
		exoWriteError(rw, http.StatusTooManyRequests, "TooManyRequests", "The request was throttled. Try again after the time in Retry-After.")
		return
	case FaultServer:
		if fault.RetryAfter > 0 {
			rw.Header().Set("Retry-After", exoSeconds(fault.RetryAfter))
		}
		status := fault.ServerStatus()
		if status == http.StatusServiceUnavailable {
			exoWriteError(rw, status, "ServiceUnavailable", "The service is temporarily unavailable.")
		} else {
			code := strings.ReplaceAll(http.StatusText(status), " ", "")
			if code == "" {
				code = "ServerError"
			}
			exoWriteError(rw, status, code, "The server could not complete the request.")
		}
		return
	case FaultDrop:
		dropConnection(rw)
		return
	case FaultApplyThenDrop:
		// The cmdlet runs (the world changes) and the reply is lost.
		h.answer(newDiscardResponse(), r, tenantID, cmd, cont, offset)
		dropConnection(rw)
		return
	case FaultFail:
		typ, msg := fault.ErrorType, fault.Message
		if typ == "" {
			typ = exchange.TypeTransient
		}
		if msg == "" {
			msg = "Injected failure."
		}
		exoWriteCmdletError(rw, &exchange.Error{Cmdlet: cmd.Cmdlet, Type: typ, Message: msg})
		return
	}

	h.answer(rw, r, tenantID, cmd, cont, offset)
}

// answer runs the cmdlet (or reads the continuation's page) and writes the
// reply, after the fault decision.
func (h *exoHandler) answer(rw http.ResponseWriter, r *http.Request, tenantID string, cmd exchange.Command, cont *exoContinuation, offset int) {
	if cont != nil {
		h.writePage(rw, r, tenantID, cont, offset, nil)
		return
	}
	rows, warnings, cerr := h.w.InvokeWithWarnings(Online, tenantID, cmd)
	if cerr != nil {
		exoWriteCmdletError(rw, cerr)
		return
	}
	if rows == nil {
		rows = []exchange.Row{}
	}
	h.writePage(rw, r, tenantID, &exoContinuation{tenant: tenantID, cmdlet: cmd.Cmdlet, rows: rows}, 0, warnings)
}

// authorize checks the bearer token (token.go): missing, malformed,
// expired or issued for another resource than this cloud's Exchange
// Online → 401 with a Bearer challenge, as Exchange Online answers; a
// token of another tenant, or a tenant the world does not have → 403.
func (h *exoHandler) authorize(rw http.ResponseWriter, r *http.Request, tenantID string) bool {
	unauthorized := func(msg string) bool {
		rw.Header().Set("WWW-Authenticate", `Bearer client_id="00000002-0000-0ff1-ce00-000000000000", token_types="app_asserted_user_v1 service_asserted_app_v1", error="invalid_token"`)
		exoWriteError(rw, http.StatusUnauthorized, "Unauthorized", msg)
		return false
	}
	tok, err := BearerToken(r)
	if err != nil {
		return unauthorized("The access token is invalid: " + err.Error() + ".")
	}
	if !strings.EqualFold(tok.TenantID, tenantID) {
		exoWriteError(rw, http.StatusForbidden, "Forbidden", fmt.Sprintf("The access token was issued for tenant %s, not %s.", tok.TenantID, tenantID))
		return false
	}
	var audience string
	var perr *exchange.Error
	if !h.w.View(tenantID, func(t *Tenant) {
		var p cloud.Profile
		if p, perr = oauthProfile(t); perr == nil {
			audience = AudienceOf(p.ExchangeOnlineScope())
		}
	}) {
		exoWriteError(rw, http.StatusForbidden, "Forbidden", "No Exchange Online organization exists for tenant "+tenantID+".")
		return false
	}
	if perr != nil {
		exoWriteError(rw, http.StatusInternalServerError, "InternalServerError", perr.Message)
		return false
	}
	if !strings.EqualFold(tok.Audience, audience) {
		return unauthorized(fmt.Sprintf("The access token's audience %q is not %q.", tok.Audience, audience))
	}
	return true
}

// writePage answers rows[offset:offset+pageSize] and, when rows remain,
// a nextLink that addresses the following page of the same continuation.
func (h *exoHandler) writePage(rw http.ResponseWriter, r *http.Request, tenantID string, cont *exoContinuation, offset int, warnings []string) {
	size := h.pageSize()
	end := min(offset+size, len(cont.rows))
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	base := scheme + "://" + r.Host + "/adminapi/beta/" + tenantID
	reply := exoReply{
		Context:  base + "/$metadata#Collection(Microsoft.Exchange.Admin.OData.Core.PSObject)",
		Warnings: warnings,
		Value:    cont.rows[offset:end],
	}
	if end < len(cont.rows) {
		id := h.storeContinuation(cont)
		reply.NextLink = base + "/InvokeCommand?$skiptoken=" + id + "." + strconv.Itoa(end)
	}
	exoWriteJSON(rw, http.StatusOK, reply)
}

func (h *exoHandler) pageSize() int {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	if h.w.EXOPageSize > 0 {
		return h.w.EXOPageSize
	}
	return exoDefaultPageSize
}

// storeContinuation keeps cont (once) and returns its ID; expired
// continuations are dropped on the way so the map cannot grow unbounded.
func (h *exoHandler) storeContinuation(cont *exoContinuation) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	for id, c := range h.pages {
		if c == cont {
			c.expires = now.Add(exoPageTTL)
			return id
		}
		if now.After(c.expires) {
			delete(h.pages, id)
		}
	}
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("sim: crypto/rand: " + err.Error())
	}
	id := hex.EncodeToString(b[:])
	cont.expires = now.Add(exoPageTTL)
	h.pages[id] = cont
	return id
}

// continuation resolves "<id>.<offset>" for a tenant.
func (h *exoHandler) continuation(token, tenantID string) (*exoContinuation, int) {
	id, off, ok := strings.Cut(token, ".")
	if !ok {
		return nil, 0
	}
	offset, err := strconv.Atoi(off)
	if err != nil || offset < 0 {
		return nil, 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.pages[id]
	if c == nil || time.Now().After(c.expires) || !strings.EqualFold(c.tenant, tenantID) || offset >= len(c.rows) {
		return nil, 0
	}
	return c, offset
}

// exoTenantFromPath extracts {tenantId} from /adminapi/beta/{tenantId}/InvokeCommand.
func exoTenantFromPath(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/adminapi/beta/")
	if !ok {
		return "", false
	}
	tenant, op, ok := strings.Cut(rest, "/")
	if !ok || tenant == "" || !strings.EqualFold(op, "InvokeCommand") {
		return "", false
	}
	return tenant, true
}

// exoIsWrite classifies a cmdlet by verb for the request counters.
func exoIsWrite(cmdlet string) bool {
	verb, _, _ := strings.Cut(strings.ToLower(cmdlet), "-")
	switch verb {
	case "get", "test":
		return false
	}
	return true
}

func exoSeconds(d time.Duration) string {
	return strconv.Itoa(int(math.Ceil(d.Seconds())))
}

func exoWriteJSON(rw http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error":{"code":"InternalServerError","message":"the simulator could not encode its reply"}}`)
	}
	rw.Header().Set("Content-Type", "application/json; odata.metadata=minimal")
	rw.WriteHeader(status)
	_, _ = rw.Write(body)
}

// exoWriteError answers a protocol-level error: no Context detail, since
// no cmdlet ran.
func exoWriteError(rw http.ResponseWriter, status int, code, message string) {
	exoWriteJSON(rw, status, exoErrorEnvelope{Error: exoErrorBody{Code: code, Message: message}})
}

// exoWriteCmdletError answers a cmdlet failure the way Exchange Online
// does: HTTP 400, a message of the form "<id>|<TypeName>|<text>" meant for
// humans, and the machine-readable TypeName inside the Context detail.
func exoWriteCmdletError(rw http.ResponseWriter, e *exchange.Error) {
	ctx, _ := json.Marshal(exoErrorContext{Message: e.Message, TypeName: e.Type})
	hsh := fnv.New32a()
	_, _ = hsh.Write([]byte(e.Type))
	id := fmt.Sprintf("Ex%06X", hsh.Sum32()&0xFFFFFF)
	exoWriteJSON(rw, http.StatusBadRequest, exoErrorEnvelope{Error: exoErrorBody{
		Code:    "BadRequest",
		Message: id + "|" + e.Type + "|" + e.Message,
		Details: []exoErrorDetail{{Code: "Context", Message: string(ctx)}},
	}})
}

// --- extraHandlers: declared here because server.go, which mounts the
// entries on the simulator's one HTTPS server (newSimMux), reads it
// without declaring it. Keep exactly one declaration in the package. ---

// extraHandlers maps a path prefix to a handler factory mounted by the
// simulator's HTTPS server next to Graph and the token endpoint.
var extraHandlers = map[string]func(*World) http.Handler{}
