package sim_test

import (
	"context"
	"strings"
	"testing"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// Fault kinds on the PowerShell host, through the real shell client and
// the relay process.

func authServers(w *sim.World) map[string]bool {
	out := map[string]bool{}
	w.View(sim.ShellTestTenant, func(tn *sim.Tenant) {
		for _, a := range tn.OnPrem.AuthServers {
			out[a.Name] = true
		}
	})
	return out
}

func newEvoSTS(name string) exchange.Command {
	return psCommand("New-AuthServer", "Name", name, "Type", "AzureAD",
		"AuthMetadataUrl", cloud.MustLookup("global").EvoSTSMetadataURL("contoso.onmicrosoft.com"))
}

// TestContractHostCrashFault checks kind host_crash: the host dies before
// the cmdlet runs (the relay exits with status 3, the client reports a
// retryable dead host), the world is unchanged, and the retry on a fresh
// host succeeds.
func TestContractHostCrashFault(t *testing.T) {
	w := sim.NewShellTestWorld()
	w.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoShell, Cmdlet: "New-Auth", Kind: sim.FaultHostCrash, FailFirstN: 1}})
	sh := psServe(t, w).shell(t, sim.OnPrem, sim.ShellTestTenant)
	_, err := sh.Run(context.Background(), newEvoSTS("evoSTS"))
	if !exchange.HasType(err, exchange.TypeHostDied) || !exchange.Retryable(err) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("want a retryable dead host with the relay's exit status 3, got %v", err)
	}
	if authServers(w)["evoSTS"] {
		t.Fatal("the cmdlet ran although the host crashed before it")
	}
	psRun(t, sh, newEvoSTS("evoSTS"))
	if !authServers(w)["evoSTS"] || w.FaultsFired()[sim.FaultHostCrash] != 1 {
		t.Fatalf("retry: %v, fired %v", authServers(w), w.FaultsFired())
	}
}

// TestContractApplyThenDropFault checks kind apply_then_drop on the host:
// the cmdlet runs (the auth server is in the world), then the host dies
// without replying (status 3); in a batch the commands after it never
// run; a retry on a fresh host meets the change (already exists).
func TestContractApplyThenDropFault(t *testing.T) {
	w := sim.NewShellTestWorld()
	w.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoShell, Operation: "New-AuthServer", Kind: sim.FaultApplyThenDrop, FailFirstN: 1}})
	sh := psServe(t, w).shell(t, sim.OnPrem, sim.ShellTestTenant)
	acs := psCommand("New-AuthServer", "Name", "WindowsAzureACS", "AuthMetadataUrl", cloud.MustLookup("global").ACSMetadataURL("contoso.onmicrosoft.com"))
	_, err := sh.RunBatch(context.Background(), []exchange.Command{newEvoSTS("evoSTS"), acs})
	if !exchange.HasType(err, exchange.TypeHostDied) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("want a dead host (exit status 3), got %v", err)
	}
	if got := authServers(w); !got["evoSTS"] || got["WindowsAzureACS"] {
		t.Fatalf("auth servers after the lost reply: %v (want evoSTS only)", got)
	}
	if w.FaultsFired()[sim.FaultApplyThenDrop] != 1 {
		t.Fatalf("fired %v", w.FaultsFired())
	}
	if _, err := sh.Run(context.Background(), newEvoSTS("evoSTS")); !exchange.HasType(err, exchange.TypeAlreadyExists) {
		t.Fatalf("retry of the applied cmdlet: %v", err)
	}
}

// TestContractCmdletPrefixFault checks that a shell rule's cmdlet prefix
// matches every cmdlet starting with it and no other: Set-* throttled,
// Get-* served.
func TestContractCmdletPrefixFault(t *testing.T) {
	w := sim.NewShellTestWorld()
	w.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoShell, Cmdlet: "set-", Kind: sim.FaultThrottle, Rate: 1}})
	sh := psServe(t, w).shell(t, sim.OnPrem, sim.ShellTestTenant)
	psRun(t, sh, psCommand("Get-AuthConfig"))
	for _, c := range []string{"Set-AuthConfig", "Set-PartnerApplication"} {
		if _, err := sh.Run(context.Background(), psCommand(c, "Identity", "x")); !exchange.HasType(err, exchange.TypeThrottled) {
			t.Fatalf("%s: %v", c, err)
		}
	}
	if n := w.FaultsFired()[sim.FaultThrottle]; n != 2 {
		t.Fatalf("throttled %d", n)
	}
}
