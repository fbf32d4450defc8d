package pshostrelay

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/exchange/shell"
)

// TestWireMatchesClient: the relay's local copies of the wire types encode
// and decode byte for byte as the client's, so a relay that does not link
// the client still speaks its protocol.
func TestWireMatchesClient(t *testing.T) {
	if ProtocolVersion != shell.ProtocolVersion || typeProtocol != shell.TypeProtocol {
		t.Fatalf("protocol %d %q, client %d %q", ProtocolVersion, typeProtocol, shell.ProtocolVersion, shell.TypeProtocol)
	}
	cases := []struct {
		name   string
		local  ReadyLine
		client shell.Ready
	}{
		{"ready", ReadyLine{Ready: true, Version: 1, Session: "sim-onprem-7-1"},
			shell.Ready{Ready: true, Version: 1, Session: "sim-onprem-7-1"}},
		{"refused", ReadyLine{Version: 1, Error: &WireError{Type: typeProtocol, Message: "m <&> \u2028", Category: "OpenError"}},
			shell.Ready{Version: 1, Error: &exchange.Error{Type: shell.TypeProtocol, Message: "m <&> \u2028", Category: "OpenError"}}},
		{"cmdlet error", ReadyLine{Version: 1, Error: &WireError{Cmdlet: "Get-X", Type: "T", Message: ""}},
			shell.Ready{Version: 1, Error: &exchange.Error{Cmdlet: "Get-X", Type: "T", Message: ""}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := json.Marshal(c.local)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(c.client)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("relay encodes\n%s\nclient encodes\n%s", got, want)
			}
			var back ReadyLine
			if err := json.Unmarshal(want, &back); err != nil {
				t.Fatal(err)
			}
			if again, _ := json.Marshal(back); !bytes.Equal(again, want) {
				t.Fatalf("client line decoded by the relay re-encodes as %s", again)
			}
		})
	}
}

// TestRelayLinksOnlyStdlib: the point of the relay binary is its start-up
// cost, which grows with every package it links and initialises.
func TestRelayLinksOnlyStdlib(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool")
	}
	const cmd = "github.com/hybridflow/hybridflow/internal/sim/cmd/hybridflow-simhost"
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", cmd).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != cmd && p != "github.com/hybridflow/hybridflow/internal/sim/pshostrelay" {
			t.Errorf("the relay binary links %s", p)
		}
	}
}
