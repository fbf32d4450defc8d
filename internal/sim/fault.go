package sim

import (
	"math/rand"
	"strings"
	"sync"
	"time"
)

// Protocols a fault rule can target.
const (
	ProtoGraph = "graph"
	ProtoEXO   = "exo"
	ProtoShell = "shell" // on-prem Exchange and Lync PowerShell host
)

// Fault kinds.
const (
	FaultLatency  = "latency"  // delay only
	FaultThrottle = "throttle" // 429 (Graph/EXO) with Retry-After; shell: a throttling error type
	FaultServer   = "5xx"      // 503 (Graph/EXO); shell: a transient server error type
	FaultDrop     = "drop"     // connection closed without a reply; shell: host process exits
	FaultFail     = "fail"     // a cmdlet/request error of ErrorType
)

// FaultRule injects one kind of misbehaviour. A rule matches a request when
// Protocol matches, Operation is empty or equals the operation (Graph: "GET
// servicePrincipals", "PATCH servicePrincipals", ...; EXO and shell: the
// cmdlet name), and Tenant is empty or equals the tenant ID. It then fires
// with probability Rate, or for the first FailFirstN matching requests per
// tenant when FailFirstN > 0 (deterministic, for "a cmdlet failing N times").
type FaultRule struct {
	Protocol   string   `yaml:"protocol"`
	Operation  string   `yaml:"operation,omitempty"`
	Tenant     string   `yaml:"tenant,omitempty"`
	Tenants    []string `yaml:"tenants,omitempty"`
	Kind       string   `yaml:"kind"`
	Rate       float64  `yaml:"rate,omitempty"`
	FailFirstN int      `yaml:"fail_first_n,omitempty"`
	// SkipFirstN lets that many matching requests per tenant through
	// before FailFirstN counts (the second of two creates failing).
	SkipFirstN int           `yaml:"skip_first_n,omitempty"`
	Latency    time.Duration `yaml:"latency,omitempty"`
	Jitter     time.Duration `yaml:"jitter,omitempty"`
	RetryAfter time.Duration `yaml:"retry_after,omitempty"`
	ErrorType  string        `yaml:"error_type,omitempty"`
	Message    string        `yaml:"message,omitempty"`
}

// Fault is what a protocol server must do for one request: sleep Delay,
// then, if Kind is not empty, misbehave instead of answering.
type Fault struct {
	Delay      time.Duration
	Kind       string
	RetryAfter time.Duration
	ErrorType  string
	Message    string
}

type injector struct {
	mu    sync.Mutex
	rng   *rand.Rand
	rules []FaultRule
	hits  map[string]int // rule index + tenant -> matching requests seen
	fired map[string]int // kind -> count, for reports
}

func newInjector(seed int64, rules []FaultRule) *injector {
	return &injector{rng: rand.New(rand.NewSource(seed)), rules: rules, hits: map[string]int{}, fired: map[string]int{}}
}

// SetFaults replaces the fault rules (tests add faults to a loaded world).
func (w *World) SetFaults(rules []FaultRule) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.Faults = rules
	w.faults = newInjector(w.Seed, rules)
}

// Decide returns the fault for one request. Every protocol server calls it
// once per request before touching the model; latencies of all matching
// rules add up, and the first matching misbehaviour wins.
func (w *World) Decide(protocol, operation, tenantID string) Fault {
	w.mu.Lock()
	in := w.faults
	if in == nil {
		in = newInjector(w.Seed, w.Faults)
		w.faults = in
	}
	w.mu.Unlock()
	return in.decide(protocol, operation, tenantID)
}

// FaultsFired reports how many faults of each kind were injected.
func (w *World) FaultsFired() map[string]int {
	w.mu.Lock()
	in := w.faults
	w.mu.Unlock()
	out := map[string]int{}
	if in == nil {
		return out
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for k, v := range in.fired {
		out[k] = v
	}
	return out
}

func (in *injector) decide(protocol, operation, tenantID string) Fault {
	in.mu.Lock()
	defer in.mu.Unlock()
	var f Fault
	for i, r := range in.rules {
		if r.Protocol != protocol || (r.Operation != "" && !strings.EqualFold(r.Operation, operation)) {
			continue
		}
		if r.Tenant != "" && !strings.EqualFold(r.Tenant, tenantID) {
			continue
		}
		if len(r.Tenants) > 0 && !containsFold(r.Tenants, tenantID) {
			continue
		}
		fire := false
		if r.FailFirstN > 0 {
			key := string(rune(i)) + "|" + strings.ToLower(tenantID)
			in.hits[key]++
			n := in.hits[key] - r.SkipFirstN
			fire = n > 0 && n <= r.FailFirstN
		} else {
			fire = r.Rate >= 1 || (r.Rate > 0 && in.rng.Float64() < r.Rate)
		}
		if r.Latency > 0 || r.Jitter > 0 {
			d := r.Latency
			if r.Jitter > 0 {
				d += time.Duration(in.rng.Int63n(int64(2*r.Jitter))) - r.Jitter
			}
			if d > 0 && (r.Kind == FaultLatency || fire) {
				f.Delay += d
			}
		}
		if !fire || r.Kind == FaultLatency || f.Kind != "" {
			continue
		}
		f.Kind, f.RetryAfter, f.ErrorType, f.Message = r.Kind, r.RetryAfter, r.ErrorType, r.Message
		in.fired[r.Kind]++
	}
	return f
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
