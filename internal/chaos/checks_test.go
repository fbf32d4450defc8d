package chaos_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/chaos"
	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/e2e"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// The suite passing means something only if its checks fail on the damage
// they look for: each is shown a planted violation here.

func TestOverlapsCatchPlantedConcurrentAttempts(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	x := func(wf, run, typ string, attempt int32, worker int, from, to float64) chaos.Execution {
		return chaos.Execution{Worker: worker, WorkflowID: wf, RunID: run, ActivityID: "5", Type: typ, Attempt: attempt, Start: at(from), End: at(to)}
	}
	tests := []struct {
		name  string
		execs []chaos.Execution
		want  int
	}{
		{"retry after the first attempt ended", []chaos.Execution{x("s/a", "r1", "EnsureAuthServers", 1, 1, 0, 2), x("s/a", "r1", "EnsureAuthServers", 2, 2, 2.5, 3)}, 0},
		{"retry while a killed worker's attempt still ran", []chaos.Execution{x("s/a", "r1", "EnsureAuthServers", 1, 1, 0, 20), x("s/a", "r1", "EnsureAuthServers", 2, 2, 15, 16)}, 1},
		{"two runs of one tenant on the same step", []chaos.Execution{x("s/a", "r1", "EnsureKeys", 1, 1, 0, 2), x("s/a", "r2", "EnsureKeys", 1, 1, 1, 3)}, 1},
		{"different steps of one tenant at once", []chaos.Execution{x("s/a", "r1", "DiscoverOnPrem", 1, 1, 0, 2), x("s/a", "r1", "DiscoverOnline", 1, 1, 0, 2)}, 0},
		{"the same step of two tenants at once", []chaos.Execution{x("s/a", "r1", "EnsureKeys", 1, 1, 0, 2), x("s/b", "r9", "EnsureKeys", 1, 1, 0, 2)}, 0},
		{"three at once", []chaos.Execution{x("s/a", "r1", "EnsureKeys", 1, 1, 0, 9), x("s/a", "r1", "EnsureKeys", 2, 2, 1, 9), x("s/a", "r1", "EnsureKeys", 3, 3, 2, 9)}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := chaos.Overlaps(tc.execs)
			if len(got) != tc.want {
				t.Fatalf("got %d overlap(s), want %d: %q", len(got), tc.want, got)
			}
		})
	}
}

func TestRunOverlapsCatchPlantedSecondRun(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	run := func(id, r string, from, to int) chaos.Run {
		x := chaos.Run{WorkflowID: id, RunID: r, Start: t0.Add(time.Duration(from) * time.Second)}
		if to >= 0 {
			x.Close = t0.Add(time.Duration(to) * time.Second)
		}
		return x
	}
	tests := []struct {
		name string
		runs []chaos.Run
		want int
	}{
		{"one run per tenant", []chaos.Run{run("s/a", "1", 0, 5), run("s/b", "2", 0, 5)}, 0},
		{"a retry run after the first closed", []chaos.Run{run("s/a", "1", 0, 5), run("s/a", "2", 6, 9)}, 0},
		{"a second run while the first is open", []chaos.Run{run("s/a", "1", 0, -1), run("s/a", "2", 6, 9)}, 1},
		{"a second run inside the first", []chaos.Run{run("s/a", "2", 2, 3), run("s/a", "1", 0, 5)}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := chaos.RunOverlaps(tc.runs); len(got) != tc.want {
				t.Fatalf("got %d, want %d: %q", len(got), tc.want, got)
			}
		})
	}
}

// plantWorld is a small generated world with foreign keys, HCW-named auth
// servers and hand-made connectors to damage.
func plantWorld(t *testing.T) *sim.World {
	t.Helper()
	return newWorld(t, 12, 77)
}

func firstPartySP(tn *sim.Tenant) *sim.ServicePrincipal {
	for _, sp := range tn.Entra.ServicePrincipals {
		if strings.EqualFold(sp.AppID, cloud.FirstPartyAppID) {
			return sp
		}
	}
	return nil
}

func TestInvariantsCatchPlantedDamage(t *testing.T) {
	before := plantWorld(t)
	if lost := e2e.NothingLost(before, before.Clone()); len(lost) > 0 {
		t.Fatalf("an untouched world lost %q", lost)
	}
	if d := e2e.NewDuplicates(before, before.Clone()); len(d) > 0 {
		t.Fatalf("an untouched world has new duplicates %q", d)
	}
	// find tenants carrying what each damage needs
	var withKey, withAuth, withIOC *sim.Tenant
	for _, tn := range before.Tenants {
		if sp := firstPartySP(tn); sp != nil && len(sp.KeyCredentials) > 0 && withKey == nil {
			withKey = tn
		}
		if len(tn.OnPrem.AuthServers) > 0 && withAuth == nil {
			withAuth = tn
		}
		if len(tn.OnPrem.IntraOrganizationConnectors) > 0 && withIOC == nil {
			withIOC = tn
		}
	}
	if withKey == nil || withAuth == nil || withIOC == nil {
		t.Fatalf("the generated world lacks something to damage: key %v, auth server %v, connector %v", withKey != nil, withAuth != nil, withIOC != nil)
	}
	tenant := func(w *sim.World, id string) *sim.Tenant {
		for _, tn := range w.Tenants {
			if tn.ID == id {
				return tn
			}
		}
		t.Fatalf("no tenant %s", id)
		return nil
	}
	tests := []struct {
		name      string
		damage    func(w *sim.World)
		lost, dup string // substrings expected in a violation ("" = none expected)
	}{
		{"a foreign key dropped from the first-party SP", func(w *sim.World) {
			sp := firstPartySP(tenant(w, withKey.ID))
			sp.KeyCredentials = sp.KeyCredentials[:len(sp.KeyCredentials)-1]
		}, "lost unexpired key", ""},
		{"a key uploaded twice", func(w *sim.World) {
			sp := firstPartySP(tenant(w, withKey.ID))
			k := sp.KeyCredentials[0]
			k.KeyID = "00000000-0000-0000-0000-000000000001"
			sp.KeyCredentials = append(sp.KeyCredentials, k)
		}, "", "times"},
		{"an SPN removed", func(w *sim.World) {
			sp := firstPartySP(tenant(w, withKey.ID))
			sp.ServicePrincipalNames = sp.ServicePrincipalNames[1:]
		}, "", ""},
		{"an auth server the product did not create removed", func(w *sim.World) {
			tn := tenant(w, withAuth.ID)
			tn.OnPrem.AuthServers = tn.OnPrem.AuthServers[1:]
		}, "auth server", ""},
		{"a hand-made connector removed", func(w *sim.World) {
			tn := tenant(w, withIOC.ID)
			tn.OnPrem.IntraOrganizationConnectors = nil
		}, "", ""},
		{"an application created twice", func(w *sim.World) {
			tn := tenant(w, withKey.ID)
			tn.Entra.Applications = append(tn.Entra.Applications,
				&sim.Application{ID: "a1", AppID: "b1", DisplayName: "ExchangeServerApp-x", CreatedBy: "client"},
				&sim.Application{ID: "a2", AppID: "b2", DisplayName: "ExchangeServerApp-x", CreatedBy: "client"})
		}, "", "created application"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			after := before.Clone()
			tc.damage(after)
			lost := e2e.NothingLost(before, after)
			dups := e2e.NewDuplicates(before, after)
			if len(lost)+len(dups) == 0 {
				t.Fatal("the damage went unnoticed")
			}
			if tc.lost != "" && !strings.Contains(strings.Join(lost, "\n"), tc.lost) {
				t.Errorf("NothingLost = %q, want a line with %q", lost, tc.lost)
			}
			if tc.dup != "" && !strings.Contains(strings.Join(dups, "\n"), tc.dup) {
				t.Errorf("NewDuplicates = %q, want a line with %q", dups, tc.dup)
			}
		})
	}
	// A duplicate the world was seeded with is not the product's doing.
	seeded := before.Clone()
	sp := firstPartySP(tenant(seeded, withKey.ID))
	sp.KeyCredentials = append(sp.KeyCredentials, sp.KeyCredentials[0])
	if d := e2e.DuplicateThumbprints(seeded); len(d) != 1 || d[0].Count != 2 {
		t.Fatalf("DuplicateThumbprints = %v, want one key twice", d)
	}
	if d := e2e.NewDuplicates(seeded, seeded.Clone()); len(d) != 0 {
		t.Fatalf("a seeded duplicate was blamed on the run: %q", d)
	}
}

func TestPlanIsSeededAndKeepsOneWindowOpen(t *testing.T) {
	for _, size := range []chaos.Size{chaos.Short, chaos.Full} {
		a, b := chaos.Plan(7, size), chaos.Plan(7, size)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%s: the same seed gave two schedules", size.Name)
		}
		if reflect.DeepEqual(a, chaos.Plan(8, size)) {
			t.Fatalf("%s: seeds 7 and 8 gave the same schedule", size.Name)
		}
		count := map[string]int{}
		open := ""
		prev, lastKill, renewals := 0, 0, 0
		hung := false
		for _, ev := range a {
			if ev.Kind == chaos.KillWorker {
				lastKill = max(lastKill, ev.At)
			}
		}
		for _, ev := range a {
			count[ev.Kind]++
			if ev.At < prev {
				t.Fatalf("%s: events out of order: %v", size.Name, a)
			}
			prev = ev.At
			if ev.At < 0 || ev.At >= size.Tenants {
				t.Fatalf("%s: %s outside the rollout (%d tenants)", size.Name, ev, size.Tenants)
			}
			switch ev.Kind {
			case chaos.StartRenewals:
				renewals += ev.Count
				if !size.RenewalsAmidKills && ev.At <= lastKill {
					t.Fatalf("%s: %s before the last worker kill", size.Name, ev)
				}
				if ev.At >= size.Tenants-size.Concurrency/2 {
					t.Fatalf("%s: %s when few setups still run", size.Name, ev)
				}
			case chaos.FaultsOn:
				if ev.Window == chaos.HungWindow {
					if hung {
						t.Fatalf("%s: %s twice", size.Name, ev)
					}
					hung = true
					continue
				}
				if open != "" {
					t.Fatalf("%s: %s while %s is open", size.Name, ev, open)
				}
				open = ev.Window
			case chaos.FaultsOff:
				if ev.Window == chaos.HungWindow {
					if !hung {
						t.Fatalf("%s: %s but it is not open", size.Name, ev)
					}
					hung = false
					continue
				}
				if open != ev.Window {
					t.Fatalf("%s: %s but %q is open", size.Name, ev, open)
				}
				open = ""
			}
		}
		if count[chaos.KillWorker] != size.WorkerKills || count[chaos.RestartServer] != size.ServerRestarts ||
			count[chaos.FaultsOn] != len(chaos.Windows) || open != "" || hung || renewals != size.Renewals || count[chaos.StartRenewals] < 2 {
			t.Fatalf("%s: %v, %d renewals", size.Name, count, renewals)
		}
	}
}

// Every window is a set of rules the simulator accepts (the suite adds
// them as its admin API does), and the apply-then-drop windows lose the
// replies of writes only: a read whose reply is lost changes nothing, so
// it would test nothing the dropped-connections window does not.
func TestWindowsAreValidAndLoseOnlyWrites(t *testing.T) {
	for _, name := range chaos.WindowNames() {
		rules := chaos.Windows[name]
		if len(rules) == 0 {
			t.Errorf("window %s has no rules", name)
		}
		if err := (&sim.World{}).AddFaults(rules); err != nil {
			t.Errorf("window %s: the simulator refuses it: %v", name, err)
		}
		for _, r := range rules {
			if r.Kind != sim.FaultApplyThenDrop {
				continue
			}
			verb, _, _ := strings.Cut(strings.ToLower(r.Cmdlet), "-")
			switch {
			case r.Protocol == sim.ProtoGraph && (r.Method == "" || strings.EqualFold(r.Method, "GET")):
				t.Errorf("window %s: Graph apply_then_drop rule %+v is not limited to writes", name, r)
			case r.Protocol != sim.ProtoGraph && (r.Cmdlet == "" || verb == "get" || verb == "test"):
				t.Errorf("window %s: %s apply_then_drop rule %+v is not limited to write cmdlets", name, r.Protocol, r)
			}
		}
	}
}

// A window held open past its slice overlaps the next one; each must
// still tell its own faults. No two windows share a protocol and fault
// kind, and Fired, fed by the simulator's own counts with every window
// open at once, gives each window exactly what its rules injected.
func TestWindowsTellTheirFaultsApartWhenOpenTogether(t *testing.T) {
	owner := map[string]string{}
	var all []sim.FaultRule
	for _, name := range chaos.WindowNames() {
		for _, r := range chaos.Windows[name] {
			k := sim.FiredKey(r.Protocol, r.Kind)
			if o, ok := owner[k]; ok && o != name {
				t.Errorf("windows %s and %s both inject %s: open together, their faults would mix", o, name, k)
			}
			owner[k] = name
			r.Rate = 0.3
			all = append(all, r)
		}
	}
	w := &sim.World{}
	if err := w.AddFaults(all); err != nil {
		t.Fatal(err)
	}
	// Requests each rule matches, many times over (the seeded rates let
	// every window fire beside the others); the first matching
	// misbehaviour wins, and a latency adds to it.
	want := map[string]map[string]int{}
	for range 40 {
		for _, name := range chaos.WindowNames() {
			for _, r := range chaos.Windows[name] {
				req := sim.FaultRequest{Protocol: r.Protocol, Method: r.Method, Cmdlet: r.Cmdlet + "Thing", Operation: r.Cmdlet + "Thing", Tenant: "t"}
				f := w.DecideRequest(req)
				var kinds []string
				if f.Delay > 0 {
					kinds = append(kinds, sim.FaultLatency)
				}
				if f.Kind != "" {
					kinds = append(kinds, f.Kind)
				}
				for _, kind := range kinds {
					o := owner[sim.FiredKey(r.Protocol, kind)]
					if want[o] == nil {
						want[o] = map[string]int{}
					}
					want[o][kind]++
				}
			}
		}
	}
	by := w.FaultsFiredBy()
	for _, name := range chaos.WindowNames() {
		got := chaos.Fired(name, by)
		if fmt.Sprint(got) != fmt.Sprint(want[name]) {
			t.Errorf("window %s: Fired says %v, the requests it answered were %v", name, got, want[name])
		}
		if len(got) == 0 {
			t.Errorf("window %s: nothing attributed to it", name)
		}
	}
}
