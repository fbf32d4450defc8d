package chaos

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hybridflow/hybridflow/internal/sim"
)

// Summary is what one chaos run measured; String prints it for the log
// and the README.
type Summary struct {
	Size     Size
	Seed     int64
	Tenants  int
	Verified int            // at the end, after operator retries
	States   map[string]int // end states as the rollout counted them
	Paused   []string       // paused while the chaos ran, with step, error type and message
	Retried  int            // paused tenants an operator retry sent on
	// ContinuedAsNew: rollout runs handed over mid-chaos.
	ContinuedAsNew int
	WorkerKills    int
	// ServerRestarts and how long the server was unreachable in all.
	ServerRestarts int
	ServerDown     time.Duration
	Faults         map[string]map[string]int // window -> kind -> fired
	Executions     int                       // activity attempts the workers ran
	FailedAttempts int                       // of which returned an error
	CutByKill      int                       // of which were in flight when their worker was killed
	Checks         []string                  // invariant checks run
	Violations     []string
	Wall           time.Duration

	// The production path: the backend kind every worker incarnation
	// ran, and what the stand-alone simulator was asked, by protocol
	// (graph, exo, token, shell), read from its request log.
	Backend  string
	Requests map[string]int
	// HostSessions are the PowerShell host connections the simulator's
	// remote PowerShell gateway accepted, at HostSites distinct sites.
	HostSessions, HostSites int
	// RequestsUnseen: requests the bounded request log forgot before the
	// suite read them (0: every request was counted).
	RequestsUnseen uint64
	// RepliesLostBy counts the apply-then-drop faults by request, as the
	// request log names them.
	RepliesLostBy map[string]int
	// PeakRSS is the test process's peak resident set (workers, backend,
	// simulator; 0 where not measured); ChildPeakRSS the largest of its
	// ended children (dev server incarnations, PowerShell stand-ins).
	PeakRSS, ChildPeakRSS int64

	// DuplicateObjects: objects or items the run made twice (Duplicates).
	DuplicateObjects int
	// Foreign: what ForeignLost guarded and found.
	Foreign Foreign
	// Staged: the keys renewals staged (StagedKeysLost).
	Staged Staged

	// HangsCancelled: hung cmdlets (the hung-cmdlets window) whose remote
	// session the worker removed after its call timeout, so the cmdlet
	// never ran; HangLongest is the longest such a cmdlet waited.
	// HangsRanLate: hung cmdlets that ran after HangFor in a session
	// nobody removed.
	HangsCancelled, HangsRanLate int
	HangLongest                  time.Duration
	// HangsTimedOut: of HangsCancelled, those the call timeout ended (the
	// others ended with their worker's shutdown). HostsReplaced: of
	// HangsCancelled, those after which a new host opened a session at
	// the same site.
	HangsTimedOut, HostsReplaced int
	// Sessions totals the simulator's remote PowerShell session counts
	// over every site, read after the last worker incarnation closed.
	Sessions sim.SessionCounts
	// HostDeaths: PowerShell hosts the fault injector killed (host_crash,
	// drop, apply_then_drop on the shell); each leaves its remote session
	// orphaned, as a crashed powershell.exe does.
	HostDeaths int

	// Renewals: every renewal the suite started, as it ended.
	Renewals []Renewal
	// WriterOverlaps: activity attempts of a tenant's setup and of its
	// renewal that ran at the same time (the tenant lock forbids it).
	WriterOverlaps int
}

// Hangs is how many cmdlets the hung-cmdlets window held.
func (s Summary) Hangs() int { return s.Faults[HungWindow][sim.FaultLatency] }

// RenewalCounts: started, asked to renew, completed (renewed or found
// nothing due), paused at least once with TenantBusy, TenantBusy pauses
// in all, failed, still open at the end.
func (s Summary) RenewalCounts() (started, writing, completed, busy, busyPauses, failed, open int) {
	for _, r := range s.Renewals {
		started++
		if r.Writes {
			writing++
		}
		if r.Busy > 0 {
			busy++
			busyPauses += r.Busy
		}
		switch {
		case r.Open:
			open++
		case r.Err != "":
			failed++
		default:
			completed++
		}
	}
	return
}

// HostCrashes is how many PowerShell host processes the fault injector
// made exit before their cmdlet ran (the host-crashes window).
func (s Summary) HostCrashes() int { return s.Faults["host-crashes"][sim.FaultHostCrash] }

// RepliesLost is how many writes were applied and their reply lost (the
// apply-then-drop windows), of which HostRepliesLost on PowerShell hosts,
// each of which then exited.
func (s Summary) RepliesLost() int { return s.FaultsByKind()[sim.FaultApplyThenDrop] }

// HostRepliesLost: apply-then-drop faults on PowerShell hosts.
func (s Summary) HostRepliesLost() int {
	return s.Faults["host-apply-then-drop"][sim.FaultApplyThenDrop]
}

// FaultsByKind totals the faults over all windows.
func (s Summary) FaultsByKind() map[string]int {
	out := map[string]int{}
	for _, kinds := range s.Faults {
		for k, n := range kinds {
			out[k] += n
		}
	}
	return out
}

func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chaos %s (seed %d): %d tenants at concurrency %d in %s\n", s.Size.Name, s.Seed, s.Tenants, s.Size.Concurrency, s.Wall.Round(time.Second))
	fmt.Fprintf(&b, "  verified %d of %d; end states %s; the rollout continued as new %d time(s)\n", s.Verified, s.Tenants, kv(s.States), s.ContinuedAsNew)
	fmt.Fprintf(&b, "  paused with a reason while the chaos ran: %d (all sent on by an operator retry: %d)\n", len(s.Paused), s.Retried)
	for _, p := range s.Paused {
		fmt.Fprintf(&b, "    %s\n", p)
	}
	fmt.Fprintf(&b, "  worker kills %d; dev server restarts %d (down %s in all)\n", s.WorkerKills, s.ServerRestarts, s.ServerDown.Round(100*time.Millisecond))
	fmt.Fprintf(&b, "  faults fired %s; PowerShell host crashes %d; writes applied with the reply lost %d (%d of them on PowerShell hosts, which then exited)\n",
		kv(s.FaultsByKind()), s.HostCrashes(), s.RepliesLost(), s.HostRepliesLost())
	for _, w := range WindowNames() {
		fmt.Fprintf(&b, "    window %-22s %s\n", w, kv(s.Faults[w]))
	}
	if len(s.RepliesLostBy) > 0 {
		fmt.Fprintf(&b, "    replies lost by request: %s\n", kvSep(s.RepliesLostBy, "; "))
	}
	fmt.Fprintf(&b, "  activity attempts %d (%d failed, %d in flight when their worker was killed)\n", s.Executions, s.FailedAttempts, s.CutByKill)
	fmt.Fprintf(&b, "  backend %s; simulator requests %s (%d unseen); PowerShell host sessions through the gateway %d at %d sites\n",
		s.Backend, kv(s.Requests), s.RequestsUnseen, s.HostSessions, s.HostSites)
	fmt.Fprintf(&b, "  hung cmdlets %d (no reply for %s; call timeout %s): cancelled by the worker %d (%d at the call timeout, the others at a worker's shutdown; the session removed, the cmdlet never ran; longest wait %s), a new host at the site afterwards %d, ran late in a session left behind %d\n",
		s.Hangs(), HangFor, CallTimeout, s.HangsCancelled, s.HangsTimedOut, s.HangLongest.Round(100*time.Millisecond), s.HostsReplaced, s.HangsRanLate)
	fmt.Fprintf(&b, "  remote PowerShell sessions: opened %d, removed %d, orphaned %d (host deaths injected %d), still open %d\n",
		s.Sessions.Opened, s.Sessions.Removed, s.Sessions.Orphaned, s.HostDeaths, s.Sessions.Open)
	started, writing, completed, busy, busyPauses, failed, open := s.RenewalCounts()
	late := 0
	for _, r := range s.Renewals {
		if r.AfterSetup {
			late++
		}
	}
	fmt.Fprintf(&b, "  renewals started %d (%d asked to renew; %d while their tenant's setup held the lock, %d after it had ended): completed %d, paused with TenantBusy %d (%d pause(s), each sent on by an operator retry), failed %d, still open %d\n",
		started, writing, started-late, late, completed, busy, busyPauses, failed, open)
	ends := map[string]int{}
	for _, r := range s.Renewals {
		ends[r.State]++
		for _, p := range r.Paused {
			fmt.Fprintf(&b, "    renewal %s paused: %s\n", r.Tenant, p)
		}
		if r.Err != "" {
			fmt.Fprintf(&b, "    renewal %s failed: %s\n", r.Tenant, r.Err)
		}
	}
	if len(ends) > 0 {
		fmt.Fprintf(&b, "    renewal end states %s; setup and renewal steps of one tenant at once %d\n", kv(ends), s.WriterOverlaps)
	}
	fmt.Fprintf(&b, "  duplicate objects %d; foreign objects guarded %d, lost or changed %d (expired keys of other applications left out of a rewritten collection %d); keys staged by renewals %d, lost %d (excused by the renewal's reason %d)\n",
		s.DuplicateObjects, s.Foreign.Guarded, len(s.Foreign.Lost), s.Foreign.ExpiredDropped, s.Staged.Keys, len(s.Staged.Lost), len(s.Staged.Excused))
	for _, e := range s.Staged.Excused {
		fmt.Fprintf(&b, "    %s\n", e)
	}
	if s.PeakRSS > 0 {
		fmt.Fprintf(&b, "  peak RSS: test process %d MiB; largest ended child %d MiB\n", s.PeakRSS>>20, s.ChildPeakRSS>>20)
	}
	fmt.Fprintf(&b, "  invariant checks %d (%s); violations %d\n", len(s.Checks), strings.Join(s.Checks, ", "), len(s.Violations))
	for _, v := range s.Violations {
		fmt.Fprintf(&b, "    VIOLATION %s\n", v)
	}
	return b.String()
}

func kv(m map[string]int) string { return kvSep(m, " ") }

func kvSep(m map[string]int, sep string) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, sep)
}
