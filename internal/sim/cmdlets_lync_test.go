package sim

import (
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/exchange"
)

var lyncNewEXOProvider = onpremCmd("New-CsHostingProvider", "Identity", "Exchange Online", "Enabled", true, "EnabledSharedAddressSpace", true,
	"HostsOCSUsers", false, "ProxyFqdn", "exap.um.outlook.com", "IsLocal", false, "VerificationLevel", "UseSourceVerification")

func TestLyncCmdlets(t *testing.T) {
	runOnPremCases(t, []onpremCase{
		{name: "access edge", side: Lync, cmd: onpremCmd("Get-CsAccessEdgeConfiguration"), check: func(t *testing.T, _ *World, _ *Tenant, rows []exchange.Row) {
			if len(rows) != 1 || rows[0]["Identity"] != "Global" || rows[0]["AllowFederatedUsers"] != false {
				t.Fatalf("%v", rows)
			}
		}},
		{name: "allow federated users", side: Lync, cmd: onpremCmd("Set-CsAccessEdgeConfiguration", "AllowFederatedUsers", true), check: func(t *testing.T, _ *World, ten *Tenant, _ []exchange.Row) {
			if !ten.Lync.AllowFederatedUsers || ten.Lync.Replicas[0].UpToDate {
				t.Fatalf("allow=%v replica up to date=%v", ten.Lync.AllowFederatedUsers, ten.Lync.Replicas[0].UpToDate)
			}
			if ten.Behaviour.PendingPropagation != 0 {
				t.Fatal("a Lync change restarted Exchange's OAuth propagation delay")
			}
		}},
		{name: "allow federated users unchanged", side: Lync, cmd: onpremCmd("Set-CsAccessEdgeConfiguration", "AllowFederatedUsers", false)},
		{name: "new hosting provider", side: Lync, cmd: lyncNewEXOProvider, check: func(t *testing.T, _ *World, ten *Tenant, rows []exchange.Row) {
			hp := ten.Lync.HostingProviders[0]
			want := HostingProvider{Identity: "Exchange Online", Enabled: true, EnabledSharedAddressSpace: true, ProxyFqdn: "exap.um.outlook.com", VerificationLevel: "UseSourceVerification"}
			if *hp != want || rows[0]["ProxyFqdn"] != "exap.um.outlook.com" {
				t.Fatalf("%+v", hp)
			}
		}},
		{name: "duplicate hosting provider", side: Lync, setup: []exchange.Command{lyncNewEXOProvider}, cmd: lyncNewEXOProvider, errType: exchange.TypeAlreadyExists},
		{name: "bad verification level", side: Lync, cmd: onpremCmd("New-CsHostingProvider", "Identity", "x", "Enabled", true, "EnabledSharedAddressSpace", true, "HostsOCSUsers", false, "ProxyFqdn", "a.example.com", "VerificationLevel", "Trusting"), errType: exchange.TypeParameterBinding},
		{name: "proxy is a URL", side: Lync, cmd: onpremCmd("New-CsHostingProvider", "Identity", "x", "Enabled", true, "EnabledSharedAddressSpace", true, "HostsOCSUsers", false, "ProxyFqdn", "https://exap.um.outlook.com/"), errType: exchange.TypeParameterBinding},
		{name: "proxy cannot change in place", side: Lync, setup: []exchange.Command{lyncNewEXOProvider},
			cmd: onpremCmd("Set-CsHostingProvider", "Identity", "Exchange Online", "ProxyFqdn", "exap.um.partner.outlook.cn"), errType: exchange.TypeParameterBinding, msg: "ProxyFqdn"},
		{name: "set verification level", side: Lync, setup: []exchange.Command{lyncNewEXOProvider},
			cmd: onpremCmd("Set-CsHostingProvider", "Identity", "exchange online", "VerificationLevel", "AlwaysVerifiable"), check: func(t *testing.T, _ *World, ten *Tenant, _ []exchange.Row) {
				if ten.Lync.HostingProviders[0].VerificationLevel != "AlwaysVerifiable" {
					t.Fatal("not set")
				}
			}},
		{name: "set unchanged", side: Lync, setup: []exchange.Command{lyncNewEXOProvider}, cmd: onpremCmd("Set-CsHostingProvider", "Identity", "Exchange Online", "Enabled", true)},
		{name: "set missing", side: Lync, cmd: onpremCmd("Set-CsHostingProvider", "Identity", "Exchange Online", "Enabled", true), errType: exchange.TypeNotFound},
		{name: "remove", side: Lync, setup: []exchange.Command{lyncNewEXOProvider}, cmd: onpremCmd("Remove-CsHostingProvider", "Identity", "Exchange Online")},
		{name: "remove missing", side: Lync, cmd: onpremCmd("Remove-CsHostingProvider", "Identity", "Exchange Online"), errType: exchange.TypeNotFound},
		{name: "get unknown identity is empty", side: Lync, cmd: onpremCmd("Get-CsHostingProvider", "Identity", "nobody"), check: func(t *testing.T, _ *World, _ *Tenant, rows []exchange.Row) {
			if len(rows) != 0 {
				t.Fatalf("%v", rows)
			}
		}},
		{name: "external access policies", side: Lync, cmd: onpremCmd("Get-CsExternalAccessPolicy", "Identity", "tag:remoteusers"), check: func(t *testing.T, _ *World, _ *Tenant, rows []exchange.Row) {
			if len(rows) != 1 || rows[0]["EnableOutsideAccess"] != true {
				t.Fatalf("%v", rows)
			}
		}},
		{name: "no Lync deployment", side: Lync, tenant: ShellTestGov, cmd: onpremCmd("Get-CsHostingProvider"), errType: "System.Management.Automation.CommandNotFoundException"},
		{name: "unknown parameter", side: Lync, cmd: onpremCmd("Get-CsAccessEdgeConfiguration", "Scope", "x"), errType: exchange.TypeParameterBinding},
	})
}

// TestLyncReplication walks the replication wait: the site's internal
// server (fe01, the shell's machine) sees a new hosting provider in its
// local store only once its own replica is up to date.
func TestLyncReplication(t *testing.T) {
	w := NewShellTestWorld()
	run := func(c exchange.Command) []exchange.Row {
		t.Helper()
		rows, err := w.Invoke(Lync, ShellTestTenant, c)
		if err != nil {
			t.Fatalf("%s: %v", c.Cmdlet, err)
		}
		return rows
	}
	status := func() (fe, edge bool) {
		rows := run(onpremCmd("Get-CsManagementStoreReplicationStatus"))
		return rows[0]["UpToDate"].(bool), rows[1]["UpToDate"].(bool)
	}
	localProviders := func() int { return len(run(onpremCmd("Get-CsHostingProvider", "LocalStore", true))) }

	run(lyncNewEXOProvider)
	if n := localProviders(); n != 0 {
		t.Fatalf("the local store has %d providers before replication", n)
	}
	// fe01 lags 2 reads, edge01 0 reads.
	for i, want := range [][2]bool{{false, true}, {false, true}, {true, true}} {
		fe, edge := status()
		if fe != want[0] || edge != want[1] {
			t.Fatalf("read %d: fe01=%v edge01=%v, want %v", i+1, fe, edge, want)
		}
		if got := localProviders(); (got == 1) != want[0] {
			t.Fatalf("read %d: fe01's local store has %d providers", i+1, got)
		}
	}
	if len(run(onpremCmd("Get-CsManagementStoreReplicationStatus", "ReplicaFqdn", "EDGE01.contoso.com"))) != 1 {
		t.Fatal("-ReplicaFqdn does not filter")
	}
	// The local store holds a copy: changing the CMS again does not reach it early.
	run(onpremCmd("Set-CsHostingProvider", "Identity", "Exchange Online", "Enabled", false))
	if rows := run(onpremCmd("Get-CsHostingProvider", "LocalStore", true)); rows[0]["Enabled"] != true {
		t.Fatal("the local store shares state with the CMS")
	}

	// A replica that never catches up keeps its store on the old state.
	w.Update(ShellTestTenant, func(ten *Tenant) { ten.Lync.Replicas[0].LagChecks = -1 })
	run(onpremCmd("Remove-CsHostingProvider", "Identity", "Exchange Online"))
	for i := 0; i < 5; i++ {
		if fe, _ := status(); fe {
			t.Fatal("a replica with LagChecks -1 caught up")
		}
	}
	if localProviders() != 1 {
		t.Fatal("the local store changed without replication")
	}
}

// TestLyncLocalStoreIsTheShellsMachine follows
// shared/reference/hybrid-facts.md (e), row "check on the Edge":
// Get-CsHostingProvider -LocalStore reads the local replica of the machine
// it runs on, so it proves something about the Edge Server only when run
// there. Through the site's shell (an internal server) it shows that
// server's replica, whatever the Edge has.
func TestLyncLocalStoreIsTheShellsMachine(t *testing.T) {
	w := NewShellTestWorld()
	w.Update(ShellTestTenant, func(ten *Tenant) {
		ten.Lync.Replicas[0].LagChecks = 0
		ten.Lync.Replicas[1].Role, ten.Lync.Replicas[1].LagChecks = LyncRoleEdge, -1 // the Edge never receives it
	})
	run := func(c exchange.Command) []exchange.Row {
		t.Helper()
		rows, err := w.Invoke(Lync, ShellTestTenant, c)
		if err != nil {
			t.Fatalf("%s: %v", c.Cmdlet, err)
		}
		return rows
	}
	run(lyncNewEXOProvider)
	for i := 0; i < 3; i++ {
		run(onpremCmd("Get-CsManagementStoreReplicationStatus"))
	}
	// Through the site's shell: fe01's replica has the provider...
	if rows := run(onpremCmd("Get-CsHostingProvider", "LocalStore", true)); len(rows) != 1 || rows[0]["ProxyFqdn"] != "exap.um.outlook.com" {
		t.Fatalf("-LocalStore on fe01: %v", rows)
	}
	// ...while the Edge Server's has not.
	w.View(ShellTestTenant, func(ten *Tenant) {
		if len(ten.Lync.EdgeLocalStore) != 0 {
			t.Fatalf("the Edge received a snapshot it never applied: %+v", ten.Lync.EdgeLocalStore)
		}
	})
	// A shell on the Edge Server itself reads the Edge's replica.
	w.Update(ShellTestTenant, func(ten *Tenant) { ten.Lync.Host = "EDGE01.contoso.com" })
	if rows := run(onpremCmd("Get-CsHostingProvider", "LocalStore", true)); len(rows) != 0 {
		t.Fatalf("-LocalStore on edge01: %v", rows)
	}
	// Once the Edge's agent works again it applies the pending snapshot.
	w.Update(ShellTestTenant, func(ten *Tenant) { ten.Lync.Replicas[1].LagChecks = 0 })
	run(onpremCmd("Get-CsManagementStoreReplicationStatus"))
	if rows := run(onpremCmd("Get-CsHostingProvider", "LocalStore", true)); len(rows) != 1 {
		t.Fatalf("the Edge did not apply the pending snapshot: %v", rows)
	}
}

// TestLyncReplicationStatusTimes follows shared/reference/hybrid-facts.md
// (e), row "check on an internal server" (one row per replica with
// UpToDate and LastUpdateCreation) and Microsoft's description of the
// cmdlet (the Master Replicator packages a snapshot of the change for each
// replica, whose agent applies it and reports back): until a change is
// packaged every replica still reports the previous snapshot, up to date;
// packaging stamps a later LastUpdateCreation and puts them out of date.
func TestLyncReplicationStatusTimes(t *testing.T) {
	w := NewShellTestWorld()
	w.Update(ShellTestTenant, func(ten *Tenant) {
		ten.Lync.SnapshotDelayChecks = 2
		ten.Lync.Replicas[0].LagChecks = 1
	})
	type st struct {
		up      bool
		created time.Time
	}
	status := func() (fe, edge st) {
		t.Helper()
		rows, err := w.Invoke(Lync, ShellTestTenant, onpremCmd("Get-CsManagementStoreReplicationStatus"))
		if err != nil || len(rows) != 2 {
			t.Fatalf("%v %v", rows, err)
		}
		get := func(r exchange.Row) st {
			at, perr := time.Parse(time.RFC3339Nano, r["LastUpdateCreation"].(string))
			if perr != nil {
				t.Fatal(perr)
			}
			return st{r["UpToDate"].(bool), at}
		}
		return get(rows[0]), get(rows[1])
	}
	fe0, edge0 := status()
	if !fe0.up || !edge0.up || !fe0.created.Before(w.Now()) {
		t.Fatalf("before the change: %+v %+v", fe0, edge0)
	}
	if _, err := w.Invoke(Lync, ShellTestTenant, lyncNewEXOProvider); err != nil {
		t.Fatal(err)
	}
	// Read 1: not packaged yet, the old snapshot looks current everywhere.
	if fe, edge := status(); !fe.up || !edge.up || !fe.created.Equal(fe0.created) {
		t.Fatalf("read 1: %+v %+v", fe, edge)
	}
	// Read 2 packages it: both out of date, with a later creation time.
	fe2, edge2 := status()
	if fe2.up || edge2.up || !fe2.created.After(fe0.created) || !edge2.created.Equal(fe2.created) {
		t.Fatalf("read 2: %+v %+v", fe2, edge2)
	}
	// Then each applies it after its own lag: edge01 at once, fe01 one read later.
	if fe, edge := status(); fe.up || !edge.up {
		t.Fatalf("read 3: %+v %+v", fe, edge)
	}
	if fe, edge := status(); !fe.up || !edge.up || !fe.created.Equal(fe2.created) {
		t.Fatalf("read 4: %+v %+v", fe, edge)
	}
	// A second change in a world whose clock stands still still gets a
	// later snapshot.
	if _, err := w.Invoke(Lync, ShellTestTenant, onpremCmd("Remove-CsHostingProvider", "Identity", "Exchange Online")); err != nil {
		t.Fatal(err)
	}
	status()
	if fe, _ := status(); !fe.created.After(fe2.created) {
		t.Fatalf("second snapshot %v is not after %v", fe.created, fe2.created)
	}
}
