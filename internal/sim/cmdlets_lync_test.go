package sim

import (
	"testing"

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

// TestLyncReplication walks seed 003's wait: the Edge sees a new hosting
// provider only after every replica reports up to date.
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
	edgeProviders := func() int { return len(run(onpremCmd("Get-CsHostingProvider", "LocalStore", true))) }

	run(lyncNewEXOProvider)
	if n := edgeProviders(); n != 0 {
		t.Fatalf("edge has %d providers before replication", n)
	}
	// fe01 lags 2 reads, edge01 0 reads.
	for i, want := range [][2]bool{{false, true}, {false, true}, {true, true}} {
		fe, edge := status()
		if fe != want[0] || edge != want[1] {
			t.Fatalf("read %d: fe01=%v edge01=%v, want %v", i+1, fe, edge, want)
		}
		if got := edgeProviders(); (got == 1) != (want[0] && want[1]) {
			t.Fatalf("read %d: edge has %d providers", i+1, got)
		}
	}
	if len(run(onpremCmd("Get-CsManagementStoreReplicationStatus", "ReplicaFqdn", "EDGE01.contoso.com"))) != 1 {
		t.Fatal("-ReplicaFqdn does not filter")
	}
	// The Edge holds a copy: changing the CMS again does not reach it early.
	run(onpremCmd("Set-CsHostingProvider", "Identity", "Exchange Online", "Enabled", false))
	if rows := run(onpremCmd("Get-CsHostingProvider", "LocalStore", true)); rows[0]["Enabled"] != true {
		t.Fatal("edge store shares state with the CMS")
	}

	// A replica that never catches up keeps the Edge on the old state.
	w.Update(ShellTestTenant, func(ten *Tenant) { ten.Lync.Replicas[0].LagChecks = -1 })
	run(onpremCmd("Remove-CsHostingProvider", "Identity", "Exchange Online"))
	for i := 0; i < 5; i++ {
		if fe, _ := status(); fe {
			t.Fatal("a replica with LagChecks -1 caught up")
		}
	}
	if edgeProviders() != 1 {
		t.Fatal("edge updated without replication")
	}
}
