// Package bench measures a rollout through the real dev server and worker
// against two baselines that call the same activity code without Temporal:
// a sequential script and a concurrent one with the same concurrency (the
// floor for a latency profile). It generates the simulated world, injects
// the latency profile as sim fault rules, runs the three, and writes the
// report and chart under bench/results.
package bench

import (
	"fmt"
	"time"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// Latency is one system's simulated response time: Mean ± Jitter, uniform.
type Latency struct {
	Mean   time.Duration `json:"mean"`
	Jitter time.Duration `json:"jitter"`
}

func (l Latency) String() string { return fmt.Sprintf("%s±%s", l.Mean, l.Jitter) }

// Profile shapes the simulated systems like the real ones, scaled down.
type Profile struct {
	OnPrem Latency `json:"onprem_cmdlet"`
	Graph  Latency `json:"graph"`
	EXO    Latency `json:"exchange_online"`
	// ThrottleRate of Graph and Exchange Online requests answer 429 with
	// RetryAfter; ServerErrorRate answer 503.
	ThrottleRate    float64       `json:"throttle_rate"`
	ServerErrorRate float64       `json:"server_error_rate"`
	RetryAfter      time.Duration `json:"retry_after"`
}

// DefaultProfile is the default: on-prem cmdlet 40 ms, Graph 15 ms,
// Exchange Online 30 ms, about 1% 429 (Retry-After 1 s scaled down to
// 100 ms like the latencies) and 0.5% 503.
func DefaultProfile() Profile {
	return Profile{
		OnPrem:       Latency{40 * time.Millisecond, 10 * time.Millisecond},
		Graph:        Latency{15 * time.Millisecond, 5 * time.Millisecond},
		EXO:          Latency{30 * time.Millisecond, 10 * time.Millisecond},
		ThrottleRate: 0.01, ServerErrorRate: 0.005, RetryAfter: 100 * time.Millisecond,
	}
}

func (p Profile) String() string {
	return fmt.Sprintf("on-prem cmdlet %s, Graph %s, Exchange Online %s, %.1f%% 429 (Retry-After %s), %.1f%% 503",
		p.OnPrem, p.Graph, p.EXO, p.ThrottleRate*100, p.RetryAfter, p.ServerErrorRate*100)
}

// Rules turns the profile into sim fault rules: a latency rule per
// protocol (a PowerShell-host round trip is one batch of cmdlets, delayed
// once) and throttle / server-error rules with rates.
func (p Profile) Rules() []sim.FaultRule {
	var rules []sim.FaultRule
	for _, x := range []struct {
		proto string
		l     Latency
	}{{sim.ProtoShell, p.OnPrem}, {sim.ProtoGraph, p.Graph}, {sim.ProtoEXO, p.EXO}} {
		if x.l.Mean > 0 || x.l.Jitter > 0 {
			rules = append(rules, sim.FaultRule{Protocol: x.proto, Kind: sim.FaultLatency, Rate: 1, Latency: x.l.Mean, Jitter: x.l.Jitter})
		}
	}
	// 429 and 503 are HTTP answers: Graph and Exchange Online only. The
	// on-prem shell's transient failures (throttling, crashed hosts) are
	// the chaos suite's subject (internal/chaos), not the profile's.
	for _, proto := range []string{sim.ProtoGraph, sim.ProtoEXO} {
		if p.ThrottleRate > 0 {
			rules = append(rules, sim.FaultRule{Protocol: proto, Kind: sim.FaultThrottle, Rate: p.ThrottleRate, RetryAfter: p.RetryAfter,
				Message: "benchmark profile: throttled"})
		}
		if p.ServerErrorRate > 0 {
			rules = append(rules, sim.FaultRule{Protocol: proto, Kind: sim.FaultServer, Rate: p.ServerErrorRate,
				Message: "benchmark profile: service unavailable"})
		}
	}
	return rules
}

// WorldSpec is the generated population every runner starts from.
func WorldSpec(n int) sim.GenerateSpec {
	return sim.GenerateSpec{
		Tenants: n, Prefix: "bench",
		// A mix like a provider's estate: some old-build tenants, which
		// stay on the first-party path only in GCC High (where it is not
		// blocked; elsewhere old builds are generated mixed and run the
		// dedicated application), some with a pre-2013-SP1 server, some
		// half configured by hand or with other apps' keys. Half the
		// tenants are in GCC High so that both modes are measured.
		OldBuilds: 0.2, LegacyServers: 0.1, HalfConfigured: 0.2, ForeignKeys: 0.1, ExpiredKeys: 0.1, HCWNames: 0.05,
		Clouds: []string{"global", "gcchigh"},
	}
}

// NewWorld generates n fresh tenants with seed and the profile's fault
// rules. The same n and seed give the same tenants, so every runner starts
// from an identical world. Every generated tenant can verify: old builds
// are legacy only in GCC High and DoD, and mixed builds (the dedicated
// application) where the shared first-party path is blocked.
func NewWorld(n int, seed int64, p Profile) (*sim.World, error) {
	ts, err := sim.GenerateTenants(WorldSpec(n), seed, time.Time{})
	if err != nil {
		return nil, err
	}
	return &sim.World{Seed: seed, Tenants: ts, FaultRules: p.Rules()}, nil
}

// legacyTenants are the tenants mode auto keeps on the first-party path
// (every server below the dedicated-app build).
func legacyTenants(w *sim.World) map[string]bool {
	out := map[string]bool{}
	for _, t := range w.Tenants {
		old := true
		for _, s := range t.OnPrem.Servers {
			if s.Version == sim.GenModernBuild {
				old = false
			}
		}
		out[t.ID] = old
	}
	return out
}

// inventory is the operator's inventory for the world.
func inventory(w *sim.World) []config.Tenant { return w.Inventory().Tenants }
