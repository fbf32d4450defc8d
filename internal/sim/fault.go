package sim

import (
	"fmt"
	"math/rand"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Protocols a fault rule can target.
const (
	ProtoGraph = "graph"
	ProtoEXO   = "exo"
	ProtoShell = "shell" // on-prem Exchange and Lync PowerShell host
	// ProtoToken (the Entra token endpoint) is declared with the request
	// log, which labels requests with the same names.
)

// Fault kinds.
const (
	FaultLatency  = "latency"  // delay only
	FaultThrottle = "throttle" // 429 (HTTP) with Retry-After; shell: a throttling error type
	FaultServer   = "5xx"      // Status, default 503 (HTTP); shell: a transient server error type
	FaultDrop     = "drop"     // connection closed without a reply, nothing applied; shell: as host_crash
	FaultFail     = "fail"     // a cmdlet/request error of ErrorType
	// FaultHostCrash (shell only): the PowerShell host dies before the
	// cmdlet runs. The server closes the host's connection, so the relay
	// (or stand-in) exits with status 3 as a crashed powershell.exe would.
	FaultHostCrash = "host_crash"
	// FaultApplyThenDrop: the request is served in full (the world
	// changes) and then the reply is lost: the HTTP connection is closed
	// without a response, the PowerShell host dies after the cmdlet ran.
	FaultApplyThenDrop = "apply_then_drop"
)

// FaultRule injects one kind of misbehaviour. A rule matches a request
// when every matcher it sets matches:
//
//   - Protocol (required): graph, exo, shell or token.
//   - Operation: the request's operation name, exactly (case-insensitive):
//     Graph "<METHOD> <path without ids>" ("PATCH servicePrincipals",
//     "POST servicePrincipals/appRoleAssignments", "POST $batch"); EXO and
//     shell the cmdlet name; token "POST token".
//   - Method: the HTTP method (graph, exo, token; EXO's InvokeCommand and
//     the token endpoint are POST).
//   - Path: a prefix (case-insensitive) of the request path, for Graph the
//     path after /v1.0 with its ids ("/applications", "/servicePrincipals/"),
//     for token "/oauth2/v2.0/token".
//   - Cmdlet: a prefix (case-insensitive) of the cmdlet name (exo, shell):
//     "New-" or "Set-AuthServer".
//   - Tenant, Tenants: the tenant ID is that one, or one of those.
//
// A matching rule fires for the FailFirstN matching requests per tenant
// that follow the first SkipFirstN (deterministic, for "a cmdlet failing N
// times"), or else with probability Rate. A latency rule with neither
// delays every matching request.
type FaultRule struct {
	Protocol  string   `yaml:"protocol"`
	Operation string   `yaml:"operation,omitempty"`
	Method    string   `yaml:"method,omitempty"`
	Path      string   `yaml:"path,omitempty"`
	Cmdlet    string   `yaml:"cmdlet,omitempty"`
	Tenant    string   `yaml:"tenant,omitempty"`
	Tenants   []string `yaml:"tenants,omitempty"`
	Kind      string   `yaml:"kind"`
	// Status is the HTTP status of a 5xx fault (500..599, default 503).
	Status     int     `yaml:"status,omitempty"`
	Rate       float64 `yaml:"rate,omitempty"`
	FailFirstN int     `yaml:"fail_first_n,omitempty"`
	// SkipFirstN lets that many matching requests per tenant through
	// before FailFirstN counts (the second of two creates failing).
	SkipFirstN int           `yaml:"skip_first_n,omitempty"`
	Latency    time.Duration `yaml:"latency,omitempty"`
	Jitter     time.Duration `yaml:"jitter,omitempty"`
	RetryAfter time.Duration `yaml:"retry_after,omitempty"`
	ErrorType  string        `yaml:"error_type,omitempty"`
	Message    string        `yaml:"message,omitempty"`
}

// FaultRequest describes one request to the fault rules. Protocol servers
// fill what their protocol has: Graph method, path (after /v1.0, with ids)
// and operation; EXO method, operation and cmdlet (both the cmdlet name);
// shell operation and cmdlet; token method, path and operation.
type FaultRequest struct {
	Protocol  string
	Method    string
	Path      string
	Operation string
	Cmdlet    string
	Tenant    string
}

// Fault is what a protocol server must do for one request: sleep Delay,
// then, if Kind is not empty, misbehave instead of answering (or, for
// FaultApplyThenDrop, answer into the void and then close the connection).
type Fault struct {
	Delay      time.Duration
	Kind       string
	Status     int // FaultServer: the HTTP status, 0 for the default 503
	RetryAfter time.Duration
	ErrorType  string
	Message    string
}

// Crash reports whether the fault ends the PowerShell host before the
// cmdlet runs (host_crash, and drop, which on the host means the same).
func (f Fault) Crash() bool { return f.Kind == FaultDrop || f.Kind == FaultHostCrash }

// ServerStatus is the HTTP status of a 5xx fault.
func (f Fault) ServerStatus() int {
	if f.Status >= 500 && f.Status <= 599 {
		return f.Status
	}
	return http.StatusServiceUnavailable
}

type injector struct {
	mu    sync.Mutex
	rng   *rand.Rand
	rules []FaultRule
	hits  map[string]int // rule index + tenant -> matching requests seen
	fired map[string]int // kind -> count, for reports
	// firedBy counts by protocol and kind (FiredKey), so that fault
	// windows open at once can each tell their own faults.
	firedBy map[string]int
}

func newInjector(seed int64, rules []FaultRule) *injector {
	return &injector{rng: rand.New(rand.NewSource(seed)), rules: slices.Clone(rules), hits: map[string]int{}, fired: map[string]int{}, firedBy: map[string]int{}}
}

// SetFaults replaces the fault rules and starts counting afresh: "first N"
// progress and FaultsFired start from zero (tests add faults to a loaded
// world). The rules are not validated; AddFaults is the checked way in.
func (w *World) SetFaults(rules []FaultRule) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.FaultRules = rules
	w.faults = newInjector(w.Seed, rules)
}

// Faults returns a copy of the current fault rules.
func (w *World) Faults() []FaultRule {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]FaultRule, len(w.FaultRules))
	for i, r := range w.FaultRules {
		r.Tenants = slices.Clone(r.Tenants)
		out[i] = r
	}
	return out
}

// AddFaults validates rules and appends them after the current ones; when
// one is invalid none is added and the error names the rule and field.
// Rules already there keep their "first N" progress, and FaultsFired keeps
// counting.
func (w *World) AddFaults(rules []FaultRule) error {
	for i, r := range rules {
		if err := r.check(); err != nil {
			return fmt.Errorf("fault %d: %w", i, err)
		}
	}
	add := make([]FaultRule, len(rules))
	for i, r := range rules {
		r.Tenants = slices.Clone(r.Tenants)
		add[i] = r
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	in := w.injectorLocked()
	w.FaultRules = append(slices.Clip(w.FaultRules), add...)
	in.mu.Lock()
	in.rules = append(in.rules, add...)
	in.mu.Unlock()
	return nil
}

// ClearFaults removes every fault rule. FaultsFired keeps what was counted.
func (w *World) ClearFaults() {
	w.mu.Lock()
	defer w.mu.Unlock()
	in := w.injectorLocked()
	w.FaultRules = nil
	in.mu.Lock()
	in.rules = nil
	in.hits = map[string]int{}
	in.mu.Unlock()
}

// injectorLocked returns the injector, creating it for a world built in
// code; w.mu is held.
func (w *World) injectorLocked() *injector {
	if w.faults == nil {
		w.faults = newInjector(w.Seed, w.FaultRules)
	}
	return w.faults
}

// Decide returns the fault for one request named only by protocol,
// operation and tenant; for EXO and the shell the operation is the cmdlet.
// See DecideRequest.
func (w *World) Decide(protocol, operation, tenantID string) Fault {
	req := FaultRequest{Protocol: protocol, Operation: operation, Tenant: tenantID}
	if protocol == ProtoEXO || protocol == ProtoShell {
		req.Cmdlet = operation
	}
	return w.DecideRequest(req)
}

// DecideRequest returns the fault for one request. Every protocol server
// calls it once per request before touching the model; latencies of all
// matching rules add up, and the first matching misbehaviour wins.
func (w *World) DecideRequest(req FaultRequest) Fault {
	w.mu.Lock()
	in := w.injectorLocked()
	w.mu.Unlock()
	return in.decide(req)
}

// FaultsFired reports how many faults of each kind were injected (latency
// counts the requests it delayed).
func (w *World) FaultsFired() map[string]int {
	return w.faultCounts(func(in *injector) map[string]int { return in.fired })
}

// faultCounts copies one of the injector's counters.
func (w *World) faultCounts(counter func(*injector) map[string]int) map[string]int {
	w.mu.Lock()
	in := w.faults
	w.mu.Unlock()
	out := map[string]int{}
	if in == nil {
		return out
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for k, v := range counter(in) {
		out[k] = v
	}
	return out
}

// FiredKey names a protocol and fault kind in FaultsFiredBy.
func FiredKey(protocol, kind string) string { return protocol + " " + kind }

// FaultsFiredBy reports how many faults were injected by protocol and
// kind, keyed by FiredKey (latency counts the requests it delayed).
func (w *World) FaultsFiredBy() map[string]int {
	return w.faultCounts(func(in *injector) map[string]int { return in.firedBy })
}

// matches reports whether r applies to req (firing aside).
func (r FaultRule) matches(req FaultRequest) bool {
	switch {
	case r.Protocol != req.Protocol:
		return false
	case r.Operation != "" && !strings.EqualFold(r.Operation, req.Operation):
		return false
	case r.Method != "" && !strings.EqualFold(r.Method, req.Method):
		return false
	case r.Path != "" && !hasPrefixFold(req.Path, r.Path):
		return false
	case r.Cmdlet != "" && !hasPrefixFold(req.Cmdlet, r.Cmdlet):
		return false
	case r.Tenant != "" && !strings.EqualFold(r.Tenant, req.Tenant):
		return false
	case len(r.Tenants) > 0 && !containsFold(r.Tenants, req.Tenant):
		return false
	}
	return true
}

func (in *injector) decide(req FaultRequest) Fault {
	in.mu.Lock()
	defer in.mu.Unlock()
	var f Fault
	for i, r := range in.rules {
		if !r.matches(req) {
			continue
		}
		var fire bool
		switch {
		case r.FailFirstN > 0:
			key := string(rune(i)) + "|" + strings.ToLower(req.Tenant)
			in.hits[key]++
			n := in.hits[key] - r.SkipFirstN
			fire = n > 0 && n <= r.FailFirstN
		case r.Rate > 0:
			fire = r.Rate >= 1 || in.rng.Float64() < r.Rate
		default:
			// Only a latency rule gets here (check refuses others): it
			// delays every matching request.
			fire = r.Kind == FaultLatency
		}
		if r.Latency > 0 || r.Jitter > 0 {
			d := r.Latency
			if r.Jitter > 0 {
				d += time.Duration(in.rng.Int63n(int64(2*r.Jitter))) - r.Jitter
			}
			if d > 0 && fire {
				f.Delay += d
				if r.Kind == FaultLatency {
					in.fired[FaultLatency]++
					in.firedBy[FiredKey(req.Protocol, FaultLatency)]++
				}
			}
		}
		if !fire || r.Kind == FaultLatency || f.Kind != "" {
			continue
		}
		f.Kind, f.Status, f.RetryAfter, f.ErrorType, f.Message = r.Kind, r.Status, r.RetryAfter, r.ErrorType, r.Message
		in.fired[r.Kind]++
		in.firedBy[FiredKey(req.Protocol, r.Kind)]++
	}
	return f
}

func hasPrefixFold(s, prefix string) bool {
	return strings.HasPrefix(strings.ToLower(s), strings.ToLower(prefix))
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// discardResponse is the ResponseWriter an apply-then-drop request is
// served into: the handler runs in full, its reply goes nowhere.
type discardResponse struct{ h http.Header }

func newDiscardResponse() *discardResponse { return &discardResponse{h: http.Header{}} }

func (d *discardResponse) Header() http.Header         { return d.h }
func (d *discardResponse) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardResponse) WriteHeader(int)             {}

// dropConnection closes the connection without an answer. HTTP/1
// connections are hijacked and closed; HTTP/2 cannot be hijacked, so the
// stream is reset instead, which clients see the same way (no response).
func dropConnection(rw http.ResponseWriter) {
	if hj, ok := rw.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// tokenFault applies a token-endpoint fault: it waits the delay and
// answers a throttle, 5xx or fail, or drops the connection. It reports
// whether the request goes on to be served (no fault, latency, or
// apply_then_drop, whose dropping is the caller's).
func tokenFault(rw http.ResponseWriter, r *http.Request, f Fault) bool {
	NoteFault(r.Context(), f)
	if !graphSleep(r, f.Delay) {
		return false
	}
	switch f.Kind {
	case "", FaultLatency, FaultApplyThenDrop:
		return true
	case FaultDrop:
		dropConnection(rw)
	case FaultThrottle:
		rw.Header().Set("Retry-After", strconv.Itoa(int(graphRetryAfter(f.RetryAfter)/time.Second)))
		tokenFaultError(rw, http.StatusTooManyRequests, "temporarily_unavailable", f.Message, "The server is too busy to handle the request; retry after the time in Retry-After.")
	case FaultServer:
		if f.RetryAfter > 0 {
			rw.Header().Set("Retry-After", strconv.Itoa(int(graphRetryAfter(f.RetryAfter)/time.Second)))
		}
		tokenFaultError(rw, f.ServerStatus(), "temporarily_unavailable", f.Message, "The server is temporarily unable to handle the request.")
	default: // fail: error_type is "[<status> ]<OAuth error code>"
		status, code := http.StatusBadRequest, strings.TrimSpace(f.ErrorType)
		first, rest, _ := strings.Cut(code, " ")
		if n, err := strconv.Atoi(first); err == nil && n >= 400 && n <= 599 {
			status, code = n, strings.TrimSpace(rest)
		}
		if code == "" {
			code = "invalid_request"
		}
		tokenFaultError(rw, status, code, f.Message, "Injected failure.")
	}
	return false
}

// tokenFaultError is an OAuth 2.0 error body ({"error","error_description"}).
// It carries no AADSTS number: which one Entra sends for these conditions
// is not modelled.
func tokenFaultError(rw http.ResponseWriter, status int, code, msg, def string) {
	if msg == "" {
		msg = def
	}
	serveJSON(rw, status, map[string]any{"error": code, "error_description": msg})
}
