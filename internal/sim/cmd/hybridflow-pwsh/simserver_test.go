package main

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/exchange/shell"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/sim/simserver"
)

// configs/sim/small.yaml: tenant 2 is alone at site-2; tenants 1 and 3
// share site-1.
const smallTenant2 = "22222222-2222-4222-8222-000000000002"

// startSimulator serves configs/sim/small.yaml (its clock released to the
// wall clock, which the stand-alone simulator requires).
func startSimulator(t *testing.T) *simserver.Server {
	t.Helper()
	w, err := sim.Load(filepath.Join("..", "..", "..", "..", "configs", "sim", "small.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	w.SetPinnedNow(time.Time{})
	s, err := simserver.Start(context.Background(), simserver.Options{World: w, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func authServerNames(rows []exchange.Row) []string {
	var out []string
	for _, r := range rows {
		if n, ok := r["Name"].(string); ok {
			out = append(out, n)
		}
	}
	return out
}

// TestAgainstTheSimulatorsGateway: the worker's shell client, the product's
// default command line, the stand-in and the stand-alone simulator's
// gateway together: reads come from the simulated world and writes change
// it, for a local session (the gateway named by the environment) and a
// remote one (the gateway is the connection URI).
func TestAgainstTheSimulatorsGateway(t *testing.T) {
	bin := standIn(t)
	srv := startSimulator(t)
	argv := withExe(shell.DefaultArgv(), bin)
	var want []string
	srv.World().View(smallTenant2, func(tn *sim.Tenant) {
		for _, a := range tn.OnPrem.AuthServers {
			want = append(want, a.Name)
		}
	})
	if len(want) == 0 {
		t.Fatal("the world's site-2 organisation has no auth servers to read")
	}
	ctx := context.Background()

	local := clientFor(t, argv, []string{GatewayEnv + "=" + srv.GatewayURL() + "/PowerShell/site-2"}, shell.SessionConfig{Mode: shell.ModeLocalSnapin})
	rows, err := local.Run(ctx, exchange.Command{Cmdlet: "Get-AuthServer"})
	if err != nil {
		t.Fatal(err)
	}
	if got := authServerNames(rows); !slices.Equal(got, want) {
		t.Fatalf("Get-AuthServer through the stand-in: %v, world has %v", got, want)
	}
	if _, err := local.Run(ctx, exchange.Command{Cmdlet: "Set-AuthServer", Parameters: map[string]any{"Identity": want[0], "Enabled": false}}); err != nil {
		t.Fatal(err)
	}
	srv.World().View(smallTenant2, func(tn *sim.Tenant) {
		if tn.OnPrem.AuthServers[0].Enabled {
			t.Error("Set-AuthServer through the stand-in did not reach the world")
		}
	})

	remote := clientFor(t, argv, nil, shell.SessionConfig{Mode: shell.ModeRemote, ConnectionURI: srv.GatewayURL() + "/PowerShell/site-2/"})
	rows, err = remote.Run(ctx, exchange.Command{Cmdlet: "Get-AuthServer", Parameters: map[string]any{"Identity": want[0]}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0]["Enabled"] != false {
		t.Fatalf("remote Get-AuthServer %s: %v", want[0], rows)
	}

	// A site the world does not have, and one two tenants share: the
	// gateway's reason reaches the worker in the start error.
	for site, reason := range map[string]string{"site-9": `site "site-9"`, "site-1": "exactly one"} {
		s := clientFor(t, argv, []string{GatewayEnv + "=" + srv.GatewayURL() + "/PowerShell/" + site}, shell.SessionConfig{Mode: shell.ModeLocalSnapin})
		_, err := s.Run(ctx, exchange.Command{Cmdlet: "Get-AuthServer"})
		if !exchange.HasType(err, "System.Management.Automation.Remoting.PSRemotingTransportException") || !strings.Contains(err.Error(), reason) {
			t.Errorf("%s: %v", site, err)
		}
	}
}
