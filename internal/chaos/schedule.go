// Package chaos drives a rollout of generated tenants through worker
// kills, Temporal dev server crashes, throttling, server errors, dropped
// connections, crashing PowerShell hosts, writes whose reply is lost,
// cmdlets that hang past the worker's call timeout and renewals started
// for tenants whose setup is running, and holds what checks the outcome:
// the seeded schedule of those events, the fault windows, the detector of
// executions that overlapped, the world invariants, and the run's summary. The suite itself is chaos_test.go (`make chaos`, and a
// shorter run in `make test`): the workers run the production backend
// against the stand-alone simulator.
package chaos

import (
	"fmt"
	"math/rand"
	"slices"
	"sort"
	"time"

	"github.com/hybridflow/hybridflow/internal/sim"
)

// Event kinds.
const (
	KillWorker    = "kill-worker"    // the worker vanishes (SIGKILL-like) and a new incarnation starts
	RestartServer = "restart-server" // the dev server is SIGKILLed and started again on its SQLite file
	FaultsOn      = "faults-on"      // a fault window opens
	FaultsOff     = "faults-off"     // and closes
	// StartRenewals starts Count renewals, as an operator does (a renewal
	// schedule, triggered now), each for a tenant whose setup holds the
	// tenant's write lock at that moment.
	StartRenewals = "start-renewals"
)

// Event is one thing the harness does to the system. It fires once At
// tenants have ended (verified, failed or paused): progress, not the wall
// clock, so every event lands mid-rollout however fast the machine is.
type Event struct {
	At     int
	Kind   string
	Window string        // FaultsOn / FaultsOff: which window
	Down   time.Duration // KillWorker / RestartServer: how long the part stays dead
	Count  int           // StartRenewals: how many
}

func (e Event) String() string {
	s := fmt.Sprintf("at %d ended: %s", e.At, e.Kind)
	if e.Window != "" {
		s += " " + e.Window
	}
	if e.Down > 0 {
		s += fmt.Sprintf(" (down %s)", e.Down)
	}
	if e.Count > 0 {
		s += fmt.Sprintf(" (%d)", e.Count)
	}
	return s
}

// Size is how hard one run shakes the system.
type Size struct {
	Name           string
	Tenants        int
	Concurrency    int
	WorkerKills    int
	ServerRestarts int
	// Renewals started during the rollout (about one tenant in ten).
	Renewals int
	// RenewalsAmidKills lets renewals start before the last worker kill.
	// A renewal's step has no start-to-close option of its own: one that
	// was running on a killed worker is retried only after the on-prem
	// default (config.StepStartToClose, 5 minutes), which the short run
	// cannot afford, so there the renewals start after the last kill.
	RenewalsAmidKills bool
}

// Short runs inside `make test`; Full is `make chaos`.
var (
	Short = Size{Name: "short", Tenants: 20, Concurrency: 8, WorkerKills: 2, ServerRestarts: 1, Renewals: 3}
	Full  = Size{Name: "full", Tenants: 300, Concurrency: 30, WorkerKills: 8, ServerRestarts: 2, Renewals: 30, RenewalsAmidKills: true}
)

// CallTimeout is the chaos worker's shell.call_timeout: a cmdlet with no
// reply by then has its host told to stop it and remove its remote
// session, and a new host serves the next call. HangFor is how long a
// hung cmdlet keeps quiet (the hung-cmdlets window): well past the
// timeout, so only the worker's cancelling ends it early; a session the
// worker failed to remove would run the cmdlet after HangFor, late.
const (
	CallTimeout = 4 * time.Second
	HangFor     = time.Minute
)

// RenewalWrites says whether the i-th renewal the suite starts (from 0)
// is asked to renew (two in three), or only to read and find nothing due.
func RenewalWrites(i int) bool { return i%3 != 2 }

// Windows are the fault windows, by name. The schedule gives each a slice
// of the rollout, one after the other; a window that has injected nothing
// by the end of its slice stays open (on a track of its own) until it
// has, so windows may overlap. Each window's faults are its own all the
// same: no two windows share a protocol and fault kind (a test holds it),
// and the simulator counts by both (World.FaultsFiredBy, read through
// Fired).
//
// The apply-then-drop windows lose the reply of writes the simulator has
// applied: a Graph or Exchange Online write whose connection closes after
// the change was made, and a PowerShell host that dies after its cmdlet
// ran. The product's retry then meets its own earlier write, which is what
// the duplicate and nothing-lost checks judge.
var Windows = map[string][]sim.FaultRule{
	"throttle": {
		{Protocol: sim.ProtoGraph, Kind: sim.FaultThrottle, Rate: 0.2, RetryAfter: time.Second},
		{Protocol: sim.ProtoEXO, Kind: sim.FaultThrottle, Rate: 0.2, RetryAfter: time.Second},
	},
	"server-errors": {
		{Protocol: sim.ProtoGraph, Kind: sim.FaultServer, Status: 503, Rate: 0.15},
		{Protocol: sim.ProtoEXO, Kind: sim.FaultServer, Status: 503, Rate: 0.15},
	},
	"dropped-connections": {
		{Protocol: sim.ProtoGraph, Kind: sim.FaultDrop, Rate: 0.1},
		{Protocol: sim.ProtoEXO, Kind: sim.FaultDrop, Rate: 0.1},
	},
	"host-crashes": {
		{Protocol: sim.ProtoShell, Kind: sim.FaultHostCrash, Rate: 0.08},
	},
	"cloud-apply-then-drop": cloudWritesLost(0.25),
	"host-apply-then-drop":  hostWritesLost(0.25),
	// A cmdlet that does not answer: the simulator holds the reply for
	// HangFor and runs the cmdlet only then, unless the remote session is
	// removed first (a removed session's pending cmdlet never runs).
	HungWindow: hung(0.2),
}

// hung: every on-prem write cmdlet and Test-OAuthConnectivity holds its
// reply for HangFor, at rate. Writes are where a hang matters (a write
// whose session the worker leaves behind runs late, after the retry);
// the reads are left out because discovery sends fifteen in one batch,
// which would hang nearly every time.
func hung(rate float64) []sim.FaultRule {
	var out []sim.FaultRule
	for _, v := range append(slices.Clone(HostWriteVerbs), "Test-") {
		out = append(out, sim.FaultRule{Protocol: sim.ProtoShell, Cmdlet: v, Kind: sim.FaultLatency, Latency: HangFor, Rate: rate})
	}
	return out
}

// HungWindow is the window of cmdlets that hang.
const HungWindow = "hung-cmdlets"

// HostWriteVerbs are the verbs of the on-prem cmdlets the product runs
// that change the organisation (every other one it runs is Get- or Test-).
var HostWriteVerbs = []string{"New-", "Set-", "Add-", "Remove-"}

// cloudWritesLost: every Graph write (POST, PATCH, DELETE) and every
// Exchange Online write cmdlet applied, its reply lost, at rate.
func cloudWritesLost(rate float64) []sim.FaultRule {
	var out []sim.FaultRule
	for _, m := range []string{"POST", "PATCH", "DELETE"} {
		out = append(out, sim.FaultRule{Protocol: sim.ProtoGraph, Method: m, Kind: sim.FaultApplyThenDrop, Rate: rate})
	}
	for _, v := range HostWriteVerbs {
		out = append(out, sim.FaultRule{Protocol: sim.ProtoEXO, Cmdlet: v, Kind: sim.FaultApplyThenDrop, Rate: rate})
	}
	return out
}

// hostWritesLost: every on-prem write cmdlet runs, then its PowerShell host
// dies before replying, at rate.
func hostWritesLost(rate float64) []sim.FaultRule {
	var out []sim.FaultRule
	for _, v := range HostWriteVerbs {
		out = append(out, sim.FaultRule{Protocol: sim.ProtoShell, Cmdlet: v, Kind: sim.FaultApplyThenDrop, Rate: rate})
	}
	return out
}

// Fired is what window injected, by fault kind, out of the simulator's
// counts by protocol and kind (World.FaultsFiredBy).
func Fired(window string, by map[string]int) map[string]int {
	out := map[string]int{}
	seen := map[string]bool{}
	for _, r := range Windows[window] {
		k := sim.FiredKey(r.Protocol, r.Kind)
		if seen[k] {
			continue
		}
		seen[k] = true
		if by[k] > 0 {
			out[r.Kind] += by[k]
		}
	}
	return out
}

// WindowNames in a fixed order (map iteration is random).
func WindowNames() []string {
	out := make([]string, 0, len(Windows))
	for n := range Windows {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Plan derives the schedule from the seed: the same seed and size give the
// same events. Kills and restarts land between 10% and 85% of the tenants
// ended, at distinct points; the fault windows split 5%–75% into
// consecutive slices in a seeded order, so that the last one still finds
// tenants early enough in their setup to meet its faults (a window whose
// tenants are all verifying may inject nothing); the hung cmdlets are open
// alongside for the first third. Renewals start in batches of about five
// (at least two) between 15% and 70%, while setups run; without
// RenewalsAmidKills the kills keep to 10%–50% and the renewals come after
// the last of them.
func Plan(seed int64, s Size) []Event {
	r := rand.New(rand.NewSource(seed))
	n := s.Tenants
	used := map[int]bool{}
	point := func(lo, hi int) int {
		hi = max(lo, hi)
		for range 1000 {
			at := lo + r.Intn(hi-lo+1)
			if !used[at] {
				used[at] = true
				return at
			}
		}
		return lo + r.Intn(hi-lo+1) // a tiny rollout: points may repeat
	}
	lo, hi := max(1, n/10), max(2, n*85/100)
	killHi := hi
	if s.Renewals > 0 && !s.RenewalsAmidKills {
		killHi = max(lo, n/2)
	}
	var ev []Event
	lastKill := 0
	for range s.WorkerKills {
		at := point(lo, killHi)
		lastKill = max(lastKill, at)
		ev = append(ev, Event{At: at, Kind: KillWorker, Down: time.Duration(500+r.Intn(2500)) * time.Millisecond})
	}
	for range s.ServerRestarts {
		ev = append(ev, Event{At: point(lo, hi), Kind: RestartServer, Down: time.Duration(500+r.Intn(1500)) * time.Millisecond})
	}
	if s.Renewals > 0 {
		batches := min(s.Renewals, max(2, s.Renewals/5))
		from, to := max(1, n*15/100), max(2, n*70/100)
		if !s.RenewalsAmidKills {
			from = max(from, lastKill+1)
		}
		left := s.Renewals
		for b := range batches {
			count := left / (batches - b)
			left -= count
			ev = append(ev, Event{At: point(from, to), Kind: StartRenewals, Count: count})
		}
	}
	names := slices.DeleteFunc(WindowNames(), func(n string) bool { return n == HungWindow })
	r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	from, to := n*5/100, n*75/100
	// The hung cmdlets, alongside: from the first window for a third of
	// the windows' span.
	ev = append(ev, Event{At: from, Kind: FaultsOn, Window: HungWindow}, Event{At: from + max(1, (to-from)/3), Kind: FaultsOff, Window: HungWindow})
	slice := float64(to-from) / float64(len(names))
	for i, name := range names {
		on := from + int(float64(i)*slice)
		off := from + int(float64(i+1)*slice)
		if off <= on {
			off = on + 1
		}
		ev = append(ev, Event{At: on, Kind: FaultsOn, Window: name}, Event{At: off, Kind: FaultsOff, Window: name})
	}
	// Closing a window before opening the next keeps one open at a time.
	rank := map[string]int{FaultsOff: 0, KillWorker: 1, RestartServer: 2, FaultsOn: 3, StartRenewals: 4}
	sort.SliceStable(ev, func(i, j int) bool {
		if ev[i].At != ev[j].At {
			return ev[i].At < ev[j].At
		}
		return rank[ev[i].Kind] < rank[ev[j].Kind]
	})
	return ev
}
