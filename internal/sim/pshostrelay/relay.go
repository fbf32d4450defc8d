// Package pshostrelay is the simulated PowerShell host's relay: the
// process the real shell client (internal/exchange/shell) spawns in place
// of powershell.exe, forwarding each JSON line to the simulator's shell
// server over loopback (internal/sim ServeShell) and each reply back.
//
// It lives apart from package sim and imports only the standard library,
// so that a binary which is nothing but the relay (cmd/hybridflow-simhost)
// starts in about a millisecond: a simulated world keeps one host per
// tenant, and re-executing a large program as each relay cost ~14 ms of
// CPU in package initialisation and page faults alone. For the same
// reason the few wire fields it writes itself are declared here rather
// than imported from internal/exchange/shell (which links zap and
// os/exec); a test pins them to the client's encoding.
package pshostrelay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// HostEnv makes a binary act as a simulated host: the value is
// "connect,side,tenant" (e.g. "127.0.0.1:4711,onprem,<tenant id>"), and
// MaybeRun (sim.MaybeRunHost), called first thing in main (or from a
// test file's init), then runs the relay instead of the program.
const HostEnv = "HYBRIDFLOW_SIM_HOST"

// ErrHostDropped is RunHost's error when the simulator dropped the
// connection (a "drop" fault): the relay must exit like a crashed host.
var ErrHostDropped = errors.New("sim: the simulator dropped the connection (simulated host crash)")

// Sides a simulated host serves (sim.OnPrem, sim.Lync).
const (
	SideOnPrem = "onprem"
	SideLync   = "lync"
)

// ParseHostSpec splits a HostEnv value.
func ParseHostSpec(spec string) (connect, side, tenantID string, err error) {
	parts := strings.SplitN(spec, ",", 3)
	if len(parts) != 3 || parts[0] == "" || parts[2] == "" {
		return "", "", "", fmt.Errorf("sim: %s=%q: want connect,side,tenant", HostEnv, spec)
	}
	if parts[1] != SideOnPrem && parts[1] != SideLync {
		return "", "", "", fmt.Errorf("sim: %s=%q: side must be %s or %s", HostEnv, spec, SideOnPrem, SideLync)
	}
	return parts[0], parts[1], parts[2], nil
}

// MaybeRun runs the relay and exits the process when HostEnv is set;
// otherwise it returns at once. Exit status: 0 when the client closed
// stdin, 3 when the simulator dropped the host, 2 on a bad setup.
func MaybeRun() {
	spec, ok := os.LookupEnv(HostEnv)
	if !ok {
		return
	}
	connect, side, tenant, err := ParseHostSpec(spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := RunHost(os.Stdin, os.Stdout, connect, side, tenant); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if errors.Is(err, ErrHostDropped) {
			os.Exit(3)
		}
		os.Exit(2)
	}
	os.Exit(0)
}

// The host protocol as the relay writes it: shell.ProtocolVersion,
// shell.TypeProtocol, shell.Ready and exchange.Error, field for field
// (TestWireMatchesClient). The PowerShell stand-in (cmd/hybridflow-pwsh)
// writes the same lines with these declarations.
const typeProtocol = "HybridFlow.HostProtocolException"

// ProtocolVersion is the host protocol's version in ready lines.
const ProtocolVersion = 1

// ReadyLine is a host's first output line.
type ReadyLine struct {
	Ready   bool       `json:"ready"`
	Version int        `json:"version"`
	Session string     `json:"session,omitempty"`
	Error   *WireError `json:"error,omitempty"`
}

// WireError is an error as the host protocol carries it.
type WireError struct {
	Cmdlet   string `json:"cmdlet,omitempty"`
	Type     string `json:"type"`
	Message  string `json:"message"`
	Category string `json:"category,omitempty"`
}

// Hello is the relay's first line to the server.
type Hello struct {
	Hello struct {
		Side   string `json:"side"`
		Tenant string `json:"tenant"`
		PID    int    `json:"pid"`
	} `json:"hello"`
	Config json.RawMessage `json:"config,omitempty"`
}

// RunHost is the relay: the host protocol on stdin/stdout, forwarded to
// the simulator's shell server at connect. It returns nil when stdin ends
// (the client's goodbye) and ErrHostDropped when the server drops it.
func RunHost(stdin io.Reader, stdout io.Writer, connect, side, tenantID string) error {
	in := bufio.NewReader(stdin)
	out := bufio.NewWriter(stdout)
	emit := func(line []byte) error {
		if _, err := out.Write(append(line, '\n')); err != nil {
			return err
		}
		return out.Flush()
	}
	notReady := func(typ, format string, args ...any) error {
		msg := fmt.Sprintf(format, args...)
		b, _ := json.Marshal(ReadyLine{Ready: false, Version: ProtocolVersion, Error: &WireError{Type: typ, Message: msg, Category: "OpenError"}})
		_ = emit(b)
		return errors.New("sim host: " + msg)
	}

	first, err := ReadLine(in)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return fmt.Errorf("sim host: read config: %w", err)
	}
	var cfg struct {
		Config json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(first, &cfg); err != nil || len(cfg.Config) == 0 {
		return notReady(typeProtocol, "the first input line must be {\"config\":{...}}")
	}

	conn, err := net.DialTimeout("tcp", connect, 5*time.Second)
	if err != nil {
		return notReady("System.Management.Automation.Remoting.PSRemotingTransportException", "Connecting to remote server %s failed: %v", connect, err)
	}
	defer conn.Close()
	var hello Hello
	hello.Hello.Side, hello.Hello.Tenant, hello.Hello.PID = side, tenantID, os.Getpid()
	hello.Config = cfg.Config
	hb, err := json.Marshal(hello)
	if err != nil {
		return fmt.Errorf("sim host: encode hello: %w", err)
	}
	if _, err := conn.Write(append(hb, '\n')); err != nil {
		return fmt.Errorf("%w: %v", ErrHostDropped, err)
	}
	server := bufio.NewReader(conn)
	ready, err := ReadLine(server)
	if err != nil {
		return fmt.Errorf("%w: before ready: %v", ErrHostDropped, err)
	}
	if err := emit(ready); err != nil {
		return fmt.Errorf("sim host: write ready: %w", err)
	}
	var r ReadyLine
	if json.Unmarshal(ready, &r) != nil || !r.Ready {
		return errors.New("sim host: session setup refused by the simulator")
	}

	for {
		line, err := ReadLine(in)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("sim host: read request: %w", err)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if _, err := conn.Write(append(line, '\n')); err != nil {
			return fmt.Errorf("%w: %v", ErrHostDropped, err)
		}
		reply, err := ReadLine(server)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrHostDropped, err)
		}
		if err := emit(reply); err != nil {
			return fmt.Errorf("sim host: write reply: %w", err)
		}
	}
}

// MaxLine bounds one line; the client's own bound is larger.
const MaxLine = 32 << 20

// ReadLine reads one line without its terminator; a final line
// without a newline still counts, EOF alone is io.EOF.
func ReadLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxLine {
			return nil, fmt.Errorf("line longer than %d bytes", MaxLine)
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == nil:
			return bytes.TrimRight(line, "\r\n"), nil
		case errors.Is(err, io.EOF) && len(line) > 0:
			return line, nil
		default:
			return nil, err
		}
	}
}
