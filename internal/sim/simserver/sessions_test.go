package simserver_test

import (
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/sim/simserver"
)

// removeLine is the host's Remove-PSSession.
var removeLine = []byte(`{"remove":true}` + "\n")

func send(t *testing.T, c net.Conn, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if _, err := c.Write(append(b, '\n')); err != nil {
		t.Fatal(err)
	}
}

// sessionsAfter polls the admin API until ended sessions of key have
// ended, and returns key's counts.
func sessionsAfter(t *testing.T, s *simserver.Server, key string, ended int) sim.SessionCounts {
	t.Helper()
	a := admin(t, s)
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := a.Sessions(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		c := m[key]
		if c.Removed+c.Orphaned+c.Closed >= ended || time.Now().After(deadline) {
			return c
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func authServerEnabled(s *simserver.Server, name string) bool {
	on := false
	s.World().View(tenant2, func(tn *sim.Tenant) {
		for _, a := range tn.OnPrem.AuthServers {
			if a.Name == name {
				on = a.Enabled
			}
		}
	})
	return on
}

// TestGatewayCountsSessions: the gateway counts each site's sessions and
// how they end. A remote session stays on an Exchange server until
// Remove-PSSession removes it; a client that goes away without doing so
// leaves it until it expires, and a cmdlet running in it runs to its end
// (Microsoft Learn, "Connect to Exchange servers using remote PowerShell";
// docs/microsoft-behaviour.md, "Ending a remote PowerShell session"; the
// shared reference has no row for sessions):
//   - a remote session ended by {"remove":true} is removed;
//   - one removed while its (slow) Set-AuthServer has not run yet: removed,
//     and the change is never made (removing a session stops its
//     pipelines);
//   - one whose connection is cut during a slow Set-AuthServer: orphaned,
//     and the change is made when the cmdlet's time is up;
//   - a local session (snap-in) ends with its connection: closed.
func TestGatewayCountsSessions(t *testing.T) {
	s := start(t, simserver.Options{})
	name := worldAuthServers(s.World(), tenant2)[0]
	if !authServerEnabled(s, name) {
		t.Fatalf("world: auth server %s starts disabled", name)
	}
	const key = "onprem:site-2"
	const slow = 500 * time.Millisecond
	if err := s.World().AddFaults([]sim.FaultRule{{Protocol: sim.ProtoShell, Cmdlet: "Set-AuthServer", Tenant: tenant2, Kind: sim.FaultLatency, Latency: slow}}); err != nil {
		t.Fatal(err)
	}
	disable := map[string]any{"id": 7, "cmdlet": "Set-AuthServer", "parameters": map[string]any{"Identity": name, "Enabled": false}}

	// Removed between calls; two open at once before that.
	c1, r1, _ := hostSession(t, s, "/PowerShell/site-2", "remote")
	c2, _, _ := hostSession(t, s, "/PowerShell/SITE-2", "remote") // the site as the world spells it
	call(t, c1, r1, map[string]any{"id": 1, "cmdlet": "Get-AuthServer"})
	_, _ = c1.Write(removeLine)
	if c := sessionsAfter(t, s, key, 1); c.Removed != 1 || c.Open != 1 || c.Peak != 2 || c.Opened != 2 {
		t.Fatalf("after a remove: %+v", c)
	}
	// Removed during a slow write: it is stopped.
	send(t, c2, disable)
	time.Sleep(slow / 5)
	_, _ = c2.Write(removeLine)
	if c := sessionsAfter(t, s, key, 2); c.Removed != 2 || c.Open != 0 {
		t.Fatalf("after a remove during a call: %+v", c)
	}
	time.Sleep(slow)
	if !authServerEnabled(s, name) {
		t.Fatal("the write of a session removed before it ran was made")
	}

	// Cut during a slow write: orphaned, and the write is made.
	c3, _, _ := hostSession(t, s, "/PowerShell/site-2", "remote")
	send(t, c3, disable)
	time.Sleep(slow / 5)
	_ = c3.Close()
	if c := sessionsAfter(t, s, key, 3); c.Orphaned != 1 || c.Removed != 2 || c.Open != 0 {
		t.Fatalf("after a cut: %+v", c)
	}
	if authServerEnabled(s, name) {
		t.Fatal("the cut session's Set-AuthServer did not run to its end")
	}

	// A local session leaves nothing behind.
	c4, _, _ := hostSession(t, s, "/PowerShell/site-2", "local-snapin")
	_ = c4.Close()
	if c := sessionsAfter(t, s, key, 4); c.Closed != 1 || c.Orphaned != 1 || c.Removed != 2 || c.Opened != 4 || c.Open != 0 {
		t.Fatalf("after a local session: %+v", c)
	}
}
