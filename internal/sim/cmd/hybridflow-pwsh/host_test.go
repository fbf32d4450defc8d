package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/exchange/shell"
	"github.com/hybridflow/hybridflow/internal/exchange/shell/bootstrapps1"
)

// runStandIn runs the stand-in in-process with the product's default
// command line, env as its environment and stdin as its input lines.
func runStandIn(t *testing.T, env map[string]string, stdin ...string) (code int, out []string, stderr string) {
	t.Helper()
	script := writeScript(t, "bootstrap.ps1", bootstrapps1.Script())
	args := []string{"-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-File", script}
	var o, e bytes.Buffer
	in := strings.Join(stdin, "\n")
	if len(stdin) > 0 {
		in += "\n"
	}
	code = run(args, strings.NewReader(in), &o, &e, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	for _, l := range strings.Split(strings.TrimSuffix(o.String(), "\n"), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return code, out, e.String()
}

func decodeReady(t *testing.T, line string) shell.Ready {
	t.Helper()
	var r shell.Ready
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("ready line %q: %v", line, err)
	}
	return r
}

// TestRelaysThroughGateway: the config line reaches the gateway verbatim
// over an upgraded connection to the endpoint HYBRIDFLOW_SIM_PSHOST names,
// and requests and replies travel one for one, blank lines skipped as
// bootstrap.ps1 skips them.
func TestRelaysThroughGateway(t *testing.T) {
	g := newFakeGateway(t)
	cfg := `{"config": {"mode":"local-snapin"}}`
	req1 := `{"id":1,"cmdlet":"Get-AuthServer","parameters":{"Identity":"x'; Remove-Item C:\\ -Recurse; '"}}`
	req2 := `{"id":2,"cmdlet":"Get-AuthConfig"}`
	code, out, stderr := runStandIn(t, map[string]string{GatewayEnv: g.URL("/PowerShell/site%201")}, cfg, req1, "", "   ", req2)
	if code != exitOK {
		t.Fatalf("status %d, stderr %s", code, stderr)
	}
	s := g.Sessions()
	if len(s) != 1 {
		t.Fatalf("%d gateway sessions", len(s))
	}
	got := s[0]
	want := gatewaySession{Method: "POST", Path: "/PowerShell/site%201", Upgrade: "hybridflow-pshost/1", Connection: "Upgrade",
		PID: strconv.Itoa(os.Getpid()), Config: cfg, Requests: []string{req1, req2}}
	if got.Method != want.Method || got.Path != want.Path || got.Upgrade != want.Upgrade || got.Connection != want.Connection ||
		got.PID != want.PID || got.Config != want.Config || strings.Join(got.Requests, "|") != strings.Join(want.Requests, "|") {
		t.Fatalf("gateway saw\n%+v\nwant\n%+v", got, want)
	}
	if len(out) != 3 {
		t.Fatalf("stdout %q", out)
	}
	if r := decodeReady(t, out[0]); !r.Ready || r.Version != 1 || r.Session != "fake-"+want.PID+"-"+want.Path {
		t.Fatalf("ready line %q", out[0])
	}
	var reply shell.Reply
	if err := json.Unmarshal([]byte(out[1]), &reply); err != nil || reply.ID != 1 || len(reply.Rows) != 1 ||
		reply.Rows[0]["parameters"].(map[string]any)["Identity"] != "x'; Remove-Item C:\\ -Recurse; '" {
		t.Fatalf("first reply %q (%v)", out[1], err)
	}
	if err := json.Unmarshal([]byte(out[2]), &reply); err != nil || reply.ID != 2 || reply.Rows[0]["cmdlet"] != "Get-AuthConfig" {
		t.Fatalf("second reply %q (%v)", out[2], err)
	}
}

// TestRemoteSessionUsesConnectionURI: a remote session's connectionUri is
// the endpoint, whatever the environment says.
func TestRemoteSessionUsesConnectionURI(t *testing.T) {
	g := newFakeGateway(t)
	cfg := `{"config":{"mode":"remote","connectionUri":"` + g.URL("/PowerShell/site-2") + `"}}`
	code, out, stderr := runStandIn(t, map[string]string{GatewayEnv: g.URL("/PowerShell/elsewhere")}, cfg, `{"id":1,"cmdlet":"Get-AuthServer"}`)
	if code != exitOK || len(out) != 2 {
		t.Fatalf("status %d, stdout %q, stderr %s", code, out, stderr)
	}
	if s := g.Sessions(); len(s) != 1 || s[0].Path != "/PowerShell/site-2" || s[0].Config != cfg {
		t.Fatalf("gateway sessions %+v", s)
	}
}

// TestSessionSetupFailures: each way session setup fails ends in one
// ready:false line in the protocol's error shape and status 1, as the
// script's catch around Initialize-Session does. Without the gateway
// variable the local modes fail as they would on a machine without
// Exchange or Lync: Add-PSSnapin's PSArgumentException, Import-Module's
// FileNotFoundException (Microsoft Learn: Add-PSSnapin, Import-Module).
func TestSessionSetupFailures(t *testing.T) {
	g := newFakeGateway(t)
	g404 := newFakeGateway(t)
	g404.refuseStatus, g404.refuseBody = "404 Not Found", "no on-premises Exchange site \"site-9\" in the world\nsecond line\n"
	gNotReady := newFakeGateway(t)
	gNotReady.notReady = true
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String() + "/PowerShell/site-1"
	closed.Close()

	cases := []struct {
		name     string
		env      map[string]string
		cfg      string
		typ      string
		category string
		msg      []string
		gateway  *fakeGateway // must have seen exactly one session
	}{
		{"local-snapin without the gateway", nil, `{"config":{"mode":"local-snapin"}}`,
			"System.Management.Automation.PSArgumentException", "InvalidArgument",
			[]string{"The Windows PowerShell snap-in 'Microsoft.Exchange.Management.PowerShell.SnapIn' is not installed on this computer.", "needs HYBRIDFLOW_SIM_PSHOST"}, nil},
		{"lync without the gateway", map[string]string{GatewayEnv: " "}, `{"config":{"mode":"lync"}}`,
			"System.IO.FileNotFoundException", "ResourceUnavailable",
			[]string{"The specified module 'Lync' was not loaded", "needs HYBRIDFLOW_SIM_PSHOST"}, nil},
		{"skype without the gateway", nil, `{"config":{"mode":"skype"}}`,
			"System.IO.FileNotFoundException", "ResourceUnavailable",
			[]string{"The specified module 'SkypeForBusiness' was not loaded"}, nil},
		{"none without the gateway", nil, `{"config":{"mode":"none"}}`,
			shell.TypeProtocol, "OpenError", []string{"needs HYBRIDFLOW_SIM_PSHOST"}, nil},
		{"gateway variable not a URL", map[string]string{GatewayEnv: "127.0.0.1:7481"}, `{"config":{"mode":"local-snapin"}}`,
			"System.Management.Automation.PSArgumentException", "InvalidArgument", []string{`HYBRIDFLOW_SIM_PSHOST="127.0.0.1:7481" is not an http:// URL`}, nil},
		{"unknown mode", nil, `{"config":{"mode":"exchange"}}`,
			"System.Management.Automation.RuntimeException", "OperationStopped", []string{"unknown session mode 'exchange'"}, nil},
		{"no config object", nil, `{"hello":{}}`,
			"System.Management.Automation.RuntimeException", "OperationStopped", []string{"unknown session mode ''"}, nil},
		{"not JSON", nil, `config: none`, "System.ArgumentException", "NotSpecified", []string{"Invalid JSON primitive"}, nil},
		{"remote without a URI", nil, `{"config":{"mode":"remote"}}`,
			"System.Management.Automation.RuntimeException", "OperationStopped", []string{"remote mode needs an absolute connectionUri"}, nil},
		{"remote over https", nil, `{"config":{"mode":"remote","connectionUri":"https://ex01.contoso.com/PowerShell/"}}`,
			"System.Management.Automation.Remoting.PSRemotingTransportException", "OpenError",
			[]string{"Connecting to remote server ex01.contoso.com failed", "plain HTTP"}, nil},
		{"nothing listening", map[string]string{GatewayEnv: closedURL}, `{"config":{"mode":"local-snapin"}}`,
			"System.Management.Automation.Remoting.PSRemotingTransportException", "OpenError",
			[]string{"did not open a local-snapin session", "connection refused"}, nil},
		{"gateway refuses the site", map[string]string{GatewayEnv: g404.URL("/PowerShell/site-9")}, `{"config":{"mode":"local-snapin"}}`,
			"System.Management.Automation.Remoting.PSRemotingTransportException", "OpenError",
			[]string{`answered 404 Not Found: no on-premises Exchange site "site-9" in the world.`}, g404},
		{"gateway refuses a remote session", nil, `{"config":{"mode":"remote","connectionUri":"` + g404.URL("/PowerShell/site-9") + `"}}`,
			"System.Management.Automation.Remoting.PSRemotingTransportException", "OpenError",
			[]string{"Connecting to remote server 127.0.0.1 failed with the following error message : the gateway answered 404 Not Found: no on-premises", "about_Remote_Troubleshooting"}, nil},
		{"server's own ready:false", map[string]string{GatewayEnv: gNotReady.URL("/PowerShell/site-1")}, `{"config":{"mode":"local-snapin"}}`,
			"System.Management.Automation.Remoting.PSRemotingTransportException", "OpenError",
			[]string{"no on-premises organisation for tenant t1"}, gNotReady},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before int
			if c.gateway != nil {
				before = len(c.gateway.Sessions())
			}
			code, out, stderr := runStandIn(t, c.env, c.cfg, `{"id":1,"cmdlet":"Get-AuthServer"}`)
			if code != exitScriptFailed || len(out) != 1 {
				t.Fatalf("status %d, stdout %q, stderr %s", code, out, stderr)
			}
			r := decodeReady(t, out[0])
			if r.Ready || r.Version != 1 || r.Error == nil || r.Error.Type != c.typ || r.Error.Category != c.category {
				t.Fatalf("ready line %s", out[0])
			}
			for _, m := range c.msg {
				if !strings.Contains(r.Error.Message, m) {
					t.Errorf("message %q lacks %q", r.Error.Message, m)
				}
			}
			if c.gateway != nil && len(c.gateway.Sessions()) != before+1 {
				t.Fatalf("the gateway saw %d sessions, want %d", len(c.gateway.Sessions()), before+1)
			}
		})
	}
	if s := g.Sessions(); len(s) != 0 {
		t.Fatalf("an unused gateway saw %+v", s)
	}
}

// TestGatewayDropIsACrash: a gateway that drops the session mid-call
// (a host-crash fault) makes the stand-in exit 3 with nothing more on
// stdout, as a crashed PowerShell would.
func TestGatewayDropIsACrash(t *testing.T) {
	g := newFakeGateway(t)
	g.dropAfter = 2
	code, out, stderr := runStandIn(t, map[string]string{GatewayEnv: g.URL("/OcsPowerShell/lync-1")},
		`{"config":{"mode":"lync"}}`, `{"id":1,"cmdlet":"Get-CsHostingProvider"}`, `{"id":2,"cmdlet":"Get-CsHostingProvider"}`, `{"id":3,"cmdlet":"Get-CsHostingProvider"}`)
	if code != exitHostCrashed || len(out) != 2 || !strings.Contains(stderr, "dropped the PowerShell session") {
		t.Fatalf("status %d, stdout %q, stderr %s", code, out, stderr)
	}
	if s := g.Sessions(); len(s) != 1 || len(s[0].Requests) != 2 {
		t.Fatalf("gateway sessions %+v", s)
	}
}

// TestNoConfigLine: a client that closes stdin at once gets a clean exit,
// as the script's "exit 0" gives, and no gateway session.
func TestNoConfigLine(t *testing.T) {
	g := newFakeGateway(t)
	code, out, _ := runStandIn(t, map[string]string{GatewayEnv: g.URL("/PowerShell/site-1")})
	if code != exitOK || len(out) != 0 || len(g.Sessions()) != 0 {
		t.Fatalf("status %d, stdout %q, sessions %d", code, out, len(g.Sessions()))
	}
}

// TestWireMatchesClient: the stand-in's copies of the wire types encode as
// the client's do.
func TestWireMatchesClient(t *testing.T) {
	if protocolVersion != shell.ProtocolVersion || typeHostProtocol != shell.TypeProtocol {
		t.Fatalf("protocol %d %q, client %d %q", protocolVersion, typeHostProtocol, shell.ProtocolVersion, shell.TypeProtocol)
	}
	local := readyLine{Version: 1, Error: &wireError{Cmdlet: "c", Type: "T", Message: "m <&> \u2028", Category: "OpenError"}}
	client := shell.Ready{Version: 1, Error: &exchange.Error{Cmdlet: "c", Type: "T", Message: "m <&> \u2028", Category: "OpenError"}}
	a, _ := json.Marshal(local)
	b, _ := json.Marshal(client)
	if !bytes.Equal(a, b) {
		t.Fatalf("stand-in encodes %s, client %s", a, b)
	}
	var back sessionConfig
	cfg, _ := json.Marshal(shell.ConfigLine{Config: shell.SessionConfig{Mode: shell.ModeRemote, ConnectionURI: "http://h/PowerShell/s"}})
	var cl struct{ Config sessionConfig }
	if err := json.Unmarshal(cfg, &cl); err != nil {
		t.Fatal(err)
	}
	back = cl.Config
	if back.Mode != shell.ModeRemote || back.ConnectionURI != "http://h/PowerShell/s" {
		t.Fatalf("config line %s decodes as %+v", cfg, back)
	}
}

// TestSessionEndMirrorsTheBootstrap: the stand-in ends a session the way
// bootstrap.ps1 does, and the script still does it that way.
//   - When stdin ends, a remote session is removed ({"remove":true}, the
//     script's Remove-PSSession in its finally); a local one just ends.
//   - When stdin ends while a remote session's command runs (the client
//     gave up on the call), the command is stopped, no reply is written
//     and the session is removed; a local command runs to its end, its
//     reply is written, and only then is the end of input seen.
func TestSessionEndMirrorsTheBootstrap(t *testing.T) {
	code := strings.ToLower(string(bootstrapps1.Script()))
	finally := strings.LastIndex(code, "finally {")
	for _, want := range []string{
		// The request loop reads ahead and watches the input during a
		// remote command run as a job, stopping it when the input ends.
		"$nextline = $in.readlineasync()",
		"$params['asjob'] = $true",
		"while (-not $job.finished.waitone(200)) {", // jobPoll
		"if (test-inputended) {",
		"stop-job -job $job",
		"if ($leaving) { break }",
	} {
		if !strings.Contains(code, want) {
			t.Errorf("bootstrap.ps1 no longer contains %q, which the stand-in plays", want)
		}
	}
	if finally < 0 || !strings.Contains(code[finally:], "remove-pssession -session $remotesession") {
		t.Error("bootstrap.ps1's last finally no longer removes the remote session")
	}

	const call = `{"id":1,"cmdlet":"Get-AuthConfig"}`
	for _, tc := range []struct {
		name    string
		mode    string
		slow    bool
		removed bool
		replies int
	}{
		{"remote, input ends between calls", "remote", false, true, 1},
		{"remote, input ends during a call", "remote", true, true, 0},
		{"local, input ends between calls", "local-snapin", false, false, 1},
		{"local, input ends during a call", "local-snapin", true, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newFakeGateway(t)
			if tc.slow {
				g.slow, g.slowFor = "Get-AuthConfig", 300*time.Millisecond
			}
			cfg := `{"config":{"mode":"` + tc.mode + `"}}`
			if tc.mode == "remote" {
				cfg = `{"config":{"mode":"remote","connectionUri":"` + g.URL("/PowerShell/site-2") + `"}}`
			}
			// stdin holds the call and then ends: during the call when
			// the gateway is slow to answer.
			status, out, stderr := runStandIn(t, map[string]string{GatewayEnv: g.URL("/PowerShell/site-2")}, cfg, call)
			if status != exitOK {
				t.Fatalf("status %d, stderr %s", status, stderr)
			}
			if len(out)-1 != tc.replies {
				t.Errorf("%d replies written, want %d: %q", len(out)-1, tc.replies, out)
			}
			s := g.Ended()
			if len(s) != 1 || len(s[0].Requests) != 1 || s[0].Removed != tc.removed {
				t.Fatalf("gateway sessions %+v; want one with the call, removed %v", s, tc.removed)
			}
		})
	}
}
