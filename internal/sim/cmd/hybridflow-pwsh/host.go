package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hybridflow/hybridflow/internal/sim/pshostrelay"
)

// GatewayEnv names the simulator's PowerShell gateway for the session
// modes that run on the Exchange or Lync server itself (local-snapin,
// lync, skype, none): there is no connection URI in the config line then,
// so the site's shell.env has to say where the simulated server is.
const GatewayEnv = "HYBRIDFLOW_SIM_PSHOST"

// upgradeProtocol is the gateway's HTTP Upgrade token.
const upgradeProtocol = "hybridflow-pshost/1"

// The host protocol as bootstrap.ps1 writes it (internal/exchange/shell's
// Ready and exchange.Error, field for field; a test pins them), from the
// relay package, which links only the standard library, so that the
// stand-in does not link the client.
const protocolVersion = pshostrelay.ProtocolVersion

type readyLine = pshostrelay.ReadyLine
type wireError = pshostrelay.WireError

// Error types the stand-in reports in a ready:false line: the ones
// PowerShell raises for the same failure.
const (
	typeTransport     = "System.Management.Automation.Remoting.PSRemotingTransportException"
	typeRuntime       = "System.Management.Automation.RuntimeException"
	typeArgument      = "System.ArgumentException"
	typePSArgument    = "System.Management.Automation.PSArgumentException"
	typeFileNotFound  = "System.IO.FileNotFoundException"
	typeHostProtocol  = "HybridFlow.HostProtocolException"
	remoteTroubleshot = " For more information, see the about_Remote_Troubleshooting Help topic."
)

// sessionConfig is the config line's payload (shell.SessionConfig).
type sessionConfig struct {
	Mode          string `json:"mode"`
	ConnectionURI string `json:"connectionUri"`
}

// errHostCrashed: the gateway dropped the session; the stand-in exits as
// a crashed host would.
var errHostCrashed = errors.New("the simulator dropped the PowerShell session")

// dialTimeout bounds the TCP connect to the gateway.
const dialTimeout = 10 * time.Second

// host is bootstrap.ps1 played against the simulator: the config line,
// session setup at the gateway, the ready line, then one request line and
// one reply line in lockstep until stdin ends.
type host struct {
	in     *bufio.Reader
	out    io.Writer
	stderr io.Writer
	getenv func(string) (string, bool)
}

// run returns the process's exit status.
func (h *host) run() int {
	cfgLine, err := pshostrelay.ReadLine(h.in)
	if errors.Is(err, io.EOF) {
		return exitOK // the script's "exit 0" when no config line comes
	}
	if err != nil {
		fmt.Fprintf(h.stderr, "hybridflow-pwsh: reading the config line: %v\n", err)
		return exitScriptFailed
	}
	var cl struct {
		Config *sessionConfig `json:"config"`
	}
	if err := json.Unmarshal(cfgLine, &cl); err != nil {
		return h.notReady(typeArgument, "NotSpecified", "Invalid JSON primitive in the config line: %v", err)
	}
	if cl.Config == nil {
		// Initialize-Session $null: no mode matches.
		return h.notReady(typeRuntime, "OperationStopped", "unknown session mode ''")
	}
	gateway, e := h.gatewayFor(*cl.Config)
	if e != nil {
		return h.fail(e)
	}
	conn, server, e := h.open(gateway, cl.Config.Mode)
	if e != nil {
		return h.fail(e)
	}
	defer conn.Close()

	// The gateway reads the config line itself, exactly as sent.
	if _, err := conn.Write(append(cfgLine, '\n')); err != nil {
		return h.crashed("sending the config line: %v", err)
	}
	ready, err := pshostrelay.ReadLine(server)
	if err != nil {
		return h.crashed("before the ready line: %v", err)
	}
	if err := h.emit(ready); err != nil {
		return exitScriptFailed
	}
	var r readyLine
	if json.Unmarshal(ready, &r) != nil || !r.Ready {
		return exitScriptFailed // the script exits 1 after a failed setup
	}
	// As the script does: input is read one line ahead, and a remote
	// session's command runs as a job while the script watches its input;
	// the end of input then stops the command, no reply is written, and
	// the script leaves through its finally, which removes the session.
	// A local command runs in the script's own thread: nothing watches
	// the input until it is done.
	remote := cl.Config.Mode == "remote"
	done := make(chan struct{})
	defer close(done)
	input := readAhead(h.in, done)
	replies := readAhead(server, done)
	var early []lineResult // lines the client sent while a call ran
	for {
		var in lineResult
		if len(early) > 0 {
			in, early = early[0], early[1:]
		} else {
			in = <-input
		}
		if errors.Is(in.err, io.EOF) {
			// End of input is the client's goodbye; the script's finally
			// removes a remote session on the way out.
			if remote {
				h.removeSession(conn)
			}
			return exitOK
		}
		if in.err != nil {
			fmt.Fprintf(h.stderr, "hybridflow-pwsh: reading a request: %v\n", in.err)
			return exitScriptFailed
		}
		if len(bytes.TrimSpace(in.line)) == 0 {
			continue
		}
		if _, err := conn.Write(append(in.line, '\n')); err != nil {
			return h.crashed("sending a request: %v", err)
		}
		sent := time.Now()
		var watch <-chan lineResult
		if remote {
			watch = input
		}
		var reply lineResult
		var poll <-chan time.Time // the script's next look at its input
	wait:
		for {
			select {
			case reply = <-replies:
				break wait
			case next := <-watch:
				// Seen by the script at its next look, after a wait for
				// the job that ends early when the command is done.
				early = append(early, next)
				watch = nil
				if next.err == nil {
					watch = input // an early line waits its turn
					continue
				}
				elapsed := time.Since(sent)
				poll = time.After((elapsed/jobPoll+1)*jobPoll - elapsed)
			case <-poll:
				// The client gave up on the call: the script stops the
				// command (Stop-Job) and leaves without a reply, its
				// finally removing the session.
				h.removeSession(conn)
				return exitOK
			}
		}
		if reply.err != nil {
			return h.crashed("waiting for a reply: %v", reply.err)
		}
		if err := h.emit(reply.line); err != nil {
			return exitScriptFailed
		}
	}
}

// jobPoll is how long the script waits for a remote command's job before
// it looks at its input again (Receive-RemoteJob's WaitOne(200)).
const jobPoll = 200 * time.Millisecond

// lineResult is one line read, or the error that ended the reading.
type lineResult struct {
	line []byte
	err  error
}

// readAhead reads lines aside, as the script's pending ReadLineAsync does:
// each line, then the error (io.EOF at the end of input) that ended the
// reading. It stops when done is closed.
func readAhead(r *bufio.Reader, done <-chan struct{}) <-chan lineResult {
	ch := make(chan lineResult)
	go func() {
		for {
			l, err := pshostrelay.ReadLine(r)
			select {
			case ch <- lineResult{line: l, err: err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// gatewayFor finds where the session is set up: a remote session's
// connection URI is the gateway endpoint itself; the local modes need the
// environment to say, or they fail as they would on a machine without
// Exchange or Lync.
func (h *host) gatewayFor(c sessionConfig) (*url.URL, *wireError) {
	if c.Mode == "remote" {
		u, err := url.Parse(c.ConnectionURI)
		if err != nil || !u.IsAbs() || u.Host == "" {
			return nil, &wireError{Type: typeRuntime, Message: "remote mode needs an absolute connectionUri", Category: "OperationStopped"}
		}
		if !strings.EqualFold(u.Scheme, "http") {
			return nil, &wireError{Type: typeTransport, Category: "OpenError",
				Message: fmt.Sprintf("Connecting to remote server %s failed with the following error message : the PowerShell stand-in reaches the simulator's gateway over plain HTTP, and the connection URI is %s.%s", u.Hostname(), c.ConnectionURI, remoteTroubleshot)}
		}
		return u, nil
	}
	var missing *wireError
	switch c.Mode {
	case "local-snapin":
		missing = &wireError{Type: typePSArgument, Category: "InvalidArgument",
			Message: "The Windows PowerShell snap-in 'Microsoft.Exchange.Management.PowerShell.SnapIn' is not installed on this computer."}
	case "lync":
		missing = &wireError{Type: typeFileNotFound, Category: "ResourceUnavailable",
			Message: "The specified module 'Lync' was not loaded because no valid module file was found in any module directory."}
	case "skype":
		missing = &wireError{Type: typeFileNotFound, Category: "ResourceUnavailable",
			Message: "The specified module 'SkypeForBusiness' was not loaded because no valid module file was found in any module directory."}
	case "none":
		missing = &wireError{Type: typeHostProtocol, Category: "OpenError",
			Message: "Session mode none expects the cmdlets to be loaded already, and this host has none."}
	default:
		return nil, &wireError{Type: typeRuntime, Message: fmt.Sprintf("unknown session mode '%s'", c.Mode), Category: "OperationStopped"}
	}
	v, ok := h.getenv(GatewayEnv)
	if !ok || strings.TrimSpace(v) == "" {
		missing.Message += fmt.Sprintf(" (the PowerShell stand-in needs %s to reach the simulator)", GatewayEnv)
		return nil, missing
	}
	u, err := url.Parse(strings.TrimSpace(v))
	if err != nil || !strings.EqualFold(u.Scheme, "http") || u.Host == "" {
		missing.Message += fmt.Sprintf(" (the PowerShell stand-in's %s=%q is not an http:// URL of the simulator's gateway)", GatewayEnv, v)
		return nil, missing
	}
	return u, nil
}

// open connects to the gateway and upgrades the connection to the host
// protocol. It returns the reader to use for the server's lines (it may
// already hold some).
func (h *host) open(u *url.URL, mode string) (net.Conn, *bufio.Reader, *wireError) {
	refused := func(format string, args ...any) *wireError {
		why := fmt.Sprintf(format, args...)
		if mode == "remote" {
			return &wireError{Type: typeTransport, Category: "OpenError",
				Message: fmt.Sprintf("Connecting to remote server %s failed with the following error message : %s.%s", u.Hostname(), why, remoteTroubleshot)}
		}
		return &wireError{Type: typeTransport, Category: "OpenError",
			Message: fmt.Sprintf("The simulator's PowerShell gateway at %s (from %s) did not open a %s session: %s.", u.Redacted(), GatewayEnv, mode, why)}
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(u.Hostname(), port), dialTimeout)
	if err != nil {
		return nil, nil, refused("%v", err)
	}
	target := u.EscapedPath()
	if target == "" {
		target = "/"
	}
	req := "POST " + target + " HTTP/1.1\r\n" +
		"Host: " + u.Host + "\r\n" +
		"Connection: Upgrade\r\n" +
		"Upgrade: " + upgradeProtocol + "\r\n" +
		"X-Hybridflow-Pid: " + strconv.Itoa(os.Getpid()) + "\r\n" +
		"Content-Length: 0\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, nil, refused("sending the session request: %v", err)
	}
	br := bufio.NewReader(conn)
	tp := textproto.NewReader(br)
	status, err := tp.ReadLine()
	if err != nil {
		conn.Close()
		return nil, nil, refused("the gateway closed the connection without answering (%v)", err)
	}
	proto, rest, _ := strings.Cut(status, " ")
	codeText, reason, _ := strings.Cut(rest, " ")
	code, err := strconv.Atoi(codeText)
	if !strings.HasPrefix(proto, "HTTP/1.") || err != nil {
		conn.Close()
		return nil, nil, refused("the gateway answered %q, not HTTP", status)
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil {
		conn.Close()
		return nil, nil, refused("reading the gateway's answer: %v", err)
	}
	if code != 101 {
		body := readBody(br, hdr)
		conn.Close()
		msg := fmt.Sprintf("the gateway answered %d %s", code, reason)
		if line := firstLine(body); line != "" {
			msg += ": " + line
		}
		return nil, nil, refused("%s", msg)
	}
	if !strings.EqualFold(hdr.Get("Upgrade"), upgradeProtocol) || !headerHasToken(hdr.Values("Connection"), "upgrade") {
		conn.Close()
		return nil, nil, refused("the gateway switched to %q, not %s", hdr.Get("Upgrade"), upgradeProtocol)
	}
	return conn, br, nil
}

// maxReason bounds how much of a refusal's body is read.
const maxReason = 4096

func readBody(br *bufio.Reader, hdr textproto.MIMEHeader) []byte {
	var r io.Reader = br
	if n, err := strconv.Atoi(hdr.Get("Content-Length")); err == nil && n >= 0 {
		r = io.LimitReader(br, int64(n))
	}
	b, _ := io.ReadAll(io.LimitReader(r, maxReason))
	return b
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return s
}

func headerHasToken(values []string, token string) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// removeLine is the script's Remove-PSSession, as the gateway takes it.
var removeLine = []byte(`{"remove":true}` + "\n")

// removeSession removes the remote session (Remove-PSSession with
// -ErrorAction SilentlyContinue: a failure is not reported).
func (h *host) removeSession(conn net.Conn) {
	_, _ = conn.Write(removeLine)
}

func (h *host) emit(line []byte) error {
	_, err := h.out.Write(append(line, '\n'))
	if err != nil {
		fmt.Fprintf(h.stderr, "hybridflow-pwsh: writing to stdout: %v\n", err)
	}
	return err
}

// fail writes a ready:false line, as the script's catch around session
// setup does, and returns its exit status.
func (h *host) fail(e *wireError) int {
	b, err := json.Marshal(readyLine{Ready: false, Version: protocolVersion, Error: e})
	if err == nil {
		_ = h.emit(b)
	}
	return exitScriptFailed
}

func (h *host) notReady(typ, category, format string, args ...any) int {
	return h.fail(&wireError{Type: typ, Message: fmt.Sprintf(format, args...), Category: category})
}

func (h *host) crashed(format string, args ...any) int {
	fmt.Fprintf(h.stderr, "hybridflow-pwsh: %v: %s\n", errHostCrashed, fmt.Sprintf(format, args...))
	return exitHostCrashed
}
