package sim

// The simulated PowerShell host. The real client (internal/exchange/shell)
// spawns a host process and speaks JSON lines with it; to test exactly
// that code, the simulator ships a host program too:
//
//	shell.Shell --stdin/stdout--> RunHost (a relay process) --TCP loopback--> ServeShell --> World.Invoke
//
// The relay stands where powershell.exe and bootstrap.ps1 stand in
// production. It does not interpret requests: it forwards each line to the
// simulator and each reply back, so parameters arrive in the cmdlet engine
// exactly as the client encoded them. A "host_crash" (or "drop") fault
// makes the server close the connection, and the relay then exits
// mid-call with status 3: the client sees its host die, as it would when
// powershell.exe crashes. "apply_then_drop" does the same after the cmdlet
// ran, so the change is made and its reply lost.
//
// Between relay and server the protocol is the host protocol itself, after
// one hello line from the relay:
//
//	relay -> server  {"hello":{"side":"onprem","tenant":"<id>","pid":123},"config":{...client's config line...}}
//	server -> relay  {"ready":true,"version":1,"session":"..."}   (or ready:false with an error)
//	then one request line, one reply line, in lockstep.
//
// A host with a remote session ends it with one more line, the
// bootstrap's Remove-PSSession:
//
//	host -> server  {"remove":true}
//
// which the server accepts at any time, also while a cmdlet of the session
// is still running (that cmdlet is stopped, as removing a session stops
// its pipelines). The server counts each site's sessions (SessionCounts):
// a remote session whose connection ends without that line is orphaned, as
// a real Exchange server keeps a session whose client went away until it
// expires; a cmdlet still running in it runs to its end.
//
// The stand-alone simulator (package simserver) reaches the same session
// another way: its remote PowerShell gateway upgrades an HTTP request for
// a site's endpoint, attributes the connection to the site's tenant and
// hands it to HostServer.ServeConn. There the client's own config line
// comes first, as the bootstrap script reads it, and is checked as the
// script would; from the ready line on, both ways run the one session
// loop (shellServer.session).

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/exchange/shell"
	"github.com/hybridflow/hybridflow/internal/sim/pshostrelay"
)

// HostEnv makes a binary act as a simulated host: the value is
// "connect,side,tenant" (e.g. "127.0.0.1:4711,onprem,<tenant id>"), and
// MaybeRunHost, called first thing in main (or from a test file's init),
// then runs the relay instead of the program.
const HostEnv = pshostrelay.HostEnv

// ErrHostDropped is RunHost's error when the simulator dropped the
// connection (a "drop" fault): the relay must exit like a crashed host.
var ErrHostDropped = pshostrelay.ErrHostDropped

// SimHostBinary is the relay-only program (cmd/hybridflow-simhost) that
// HostCommand prefers when it sits beside the running executable, as the
// Makefile builds it into bin/ with hybridflow-worker and rolloutbench.
const SimHostBinary = "hybridflow-simhost"

// HostCommand returns the argv and extra environment that make a process a
// simulated host for one organisation: hybridflow-simhost when it sits
// beside the current executable (it starts in about a millisecond; the
// world keeps a host per tenant, and re-executing a large program costs
// ~14 ms of CPU each), otherwise the current executable itself, which
// must then call MaybeRunHost before doing anything else (test binaries,
// go run).
func HostCommand(connect string, side Side, tenantID string) (argv, env []string, err error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, fmt.Errorf("sim: host command: %w", err)
	}
	if strings.Contains(connect, ",") || strings.Contains(tenantID, ",") {
		return nil, nil, fmt.Errorf("sim: host command: address %q or tenant %q contains a comma", connect, tenantID)
	}
	return []string{hostProgram(exe)}, []string{fmt.Sprintf("%s=%s,%s,%s", HostEnv, connect, side, tenantID)}, nil
}

// hostProgram is SimHostBinary beside exe (symlinks resolved) when it is
// an executable file, else exe.
func hostProgram(exe string) string {
	if p, err := filepath.EvalSymlinks(exe); err == nil {
		exe = p
	}
	relay := filepath.Join(filepath.Dir(exe), SimHostBinary)
	if fi, err := os.Stat(relay); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
		return relay
	}
	return exe
}

// ParseHostSpec splits a HostEnv value.
func ParseHostSpec(spec string) (connect string, side Side, tenantID string, err error) {
	c, s, t, err := pshostrelay.ParseHostSpec(spec)
	return c, Side(s), t, err
}

// MaybeRunHost runs the relay and exits the process when HostEnv is set;
// otherwise it returns at once. Exit status: 0 when the client closed
// stdin, 3 when the simulator dropped the host, 2 on a bad setup.
func MaybeRunHost() { pshostrelay.MaybeRun() }

// RunHost is the relay: the host protocol on stdin/stdout, forwarded to
// the simulator's shell server at connect. It returns nil when stdin ends
// (the client's goodbye) and ErrHostDropped when the server drops it.
func RunHost(stdin io.Reader, stdout io.Writer, connect string, side Side, tenantID string) error {
	return pshostrelay.RunHost(stdin, stdout, connect, string(side), tenantID)
}

// relayHello is the relay's first line to the server.
type relayHello = pshostrelay.Hello

func relayReadLine(r *bufio.Reader) ([]byte, error) { return pshostrelay.ReadLine(r) }

// ServeShell serves the relay side of the host protocol on l until l is
// closed (then it returns nil after closing every connection). Each
// request goes through World.Decide (faults) and World.Invoke (the cmdlet
// engine) and is counted once, as one host round trip.
func ServeShell(l net.Listener, w *World) error {
	srv := newShellServer(w, nil)
	for {
		c, err := l.Accept()
		if err != nil {
			srv.shutdown()
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("sim: shell server: %w", err)
		}
		if !srv.track(c) {
			continue
		}
		go func() {
			defer srv.untrack(c)
			srv.serveRelay(c)
		}()
	}
}

// HostServer serves the host protocol on connections another server has
// already set up and attributed to a tenant: the stand-alone simulator's
// remote PowerShell gateway upgrades an HTTP request and hands the
// connection over. After the client's config line it is the same session
// as ServeShell's: setup, ready line, then one request line and one reply
// line in lockstep.
type HostServer struct{ s *shellServer }

// HostSession says whom a gateway connection is for.
type HostSession struct {
	Side   Side   // OnPrem or Lync
	Tenant string // tenant ID
	Site   string // the site the endpoint named, for the request log
	PID    int    // the host process's ID, for the session name
}

// NewHostServer serves w's tenants; log (may be nil) records every round trip.
func NewHostServer(w *World, log *RequestLog) *HostServer {
	return &HostServer{s: newShellServer(w, log)}
}

// ServeConn runs one session on c, reading through r (which may hold bytes
// already read from c), until the client closes, the session fails or
// Close is called. It closes c.
func (h *HostServer) ServeConn(c net.Conn, r *bufio.Reader, sess HostSession) {
	if !h.s.track(c) {
		return
	}
	defer h.s.untrack(c)
	h.s.serveGateway(c, r, sess)
}

// Close ends every session and waits for them.
func (h *HostServer) Close() { h.s.shutdown() }

// SessionCounts is what the server saw of one site's PowerShell sessions
// (sessions that reached their ready line).
type SessionCounts struct {
	Open   int `json:"open"`   // open now
	Peak   int `json:"peak"`   // most open at once
	Opened int `json:"opened"` // in all
	// Removed: remote sessions their host removed ({"remove":true}).
	Removed int `json:"removed"`
	// Orphaned: remote sessions whose host went away without removing
	// them; a real server keeps such a session until it expires.
	Orphaned int `json:"orphaned"`
	// Closed: local sessions (snap-in, module, none), which end with
	// their host and leave nothing on the server.
	Closed int `json:"closed"`
}

// SessionCounts returns the counts by side and site as the world spells
// the site: "onprem:site-2", "lync:site-a".
func (h *HostServer) SessionCounts() map[string]SessionCounts { return h.s.sessionCounts() }

// siteKey is the SessionCounts key of a tenant's session on side (the
// tenant ID when the world gives it no site there).
func (s *shellServer) siteKey(side Side, tenant string) string {
	site := tenant
	s.w.View(tenant, func(t *Tenant) {
		switch {
		case side == Lync && t.Lync != nil && t.Lync.Site != "":
			site = t.Lync.Site
		case side == OnPrem && t.Site != "":
			site = t.Site
		}
	})
	return string(side) + ":" + site
}

type shellServer struct {
	w        *World
	log      *RequestLog
	quit     chan struct{}
	mu       sync.Mutex
	closed   bool
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
	sessions atomic.Int64
	counts   map[string]*SessionCounts // by site; guarded by mu
}

func newShellServer(w *World, log *RequestLog) *shellServer {
	return &shellServer{w: w, log: log, quit: make(chan struct{}), conns: map[net.Conn]struct{}{}, counts: map[string]*SessionCounts{}}
}

func (s *shellServer) sessionCounts() map[string]SessionCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]SessionCounts, len(s.counts))
	for k, c := range s.counts {
		out[k] = *c
	}
	return out
}

// countSession records a session's start (end false) or its end, and how
// it ended.
func (s *shellServer) countSession(key string, end bool, how func(*SessionCounts) *int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counts[key]
	if c == nil {
		c = &SessionCounts{}
		s.counts[key] = c
	}
	if !end {
		c.Open++
		c.Opened++
		c.Peak = max(c.Peak, c.Open)
		return
	}
	c.Open--
	*how(c)++
}

// track registers a connection being served; after shutdown it closes c
// and returns false instead.
func (s *shellServer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = c.Close()
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *shellServer) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	_ = c.Close()
	s.wg.Done()
}

func (s *shellServer) shutdown() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return
	}
	s.closed = true
	close(s.quit)
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// sleep waits d unless the server shuts down or stop is closed first.
func (s *shellServer) sleep(d time.Duration, stop <-chan struct{}) bool {
	select {
	case <-stop:
		return false
	default:
	}
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.quit:
		return false
	case <-stop:
		return false
	}
}

// firstLineTimeout bounds the wait for a session's first line.
const firstLineTimeout = 10 * time.Second

// sendLine writes v as one protocol line.
func sendLine(c net.Conn, v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(shell.Reply{Error: &exchange.Error{Type: shell.TypeProtocol, Message: "sim: encode reply: " + err.Error()}})
	}
	_, err = c.Write(append(b, '\n'))
	return err == nil
}

func notReady(e *exchange.Error) shell.Ready {
	return shell.Ready{Version: shell.ProtocolVersion, Error: e}
}

// serveRelay reads the relay's hello line, which names side and tenant,
// and runs the session.
func (s *shellServer) serveRelay(c net.Conn) {
	r := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(firstLineTimeout))
	line, err := relayReadLine(r)
	if err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	var hello relayHello
	if err := json.Unmarshal(line, &hello); err != nil {
		sendLine(c, notReady(&exchange.Error{Type: shell.TypeProtocol, Message: "sim: malformed hello"}))
		return
	}
	var cfg shell.SessionConfig
	_ = json.Unmarshal(hello.Config, &cfg)
	s.session(c, r, HostSession{Side: Side(hello.Hello.Side), Tenant: hello.Hello.Tenant, PID: hello.Hello.PID}, cfg.Mode == shell.ModeRemote)
}

// serveGateway reads the client's own config line, as the bootstrap script
// does, refuses one it could not act on, and runs the session.
func (s *shellServer) serveGateway(c net.Conn, r *bufio.Reader, sess HostSession) {
	_ = c.SetReadDeadline(time.Now().Add(firstLineTimeout))
	line, err := relayReadLine(r)
	if err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	mode, e := checkConfigLine(line, sess.Side)
	if e != nil {
		sendLine(c, notReady(e))
		return
	}
	s.session(c, r, sess, mode == shell.ModeRemote)
}

// checkConfigLine accepts {"config":{"mode":...}} with a mode the endpoint
// can set up: Exchange's (none, local-snapin, remote) for on-prem Exchange,
// Lync's (none, lync, skype) for Lync, and returns the mode.
func checkConfigLine(line []byte, side Side) (string, *exchange.Error) {
	var cl struct {
		Config *shell.SessionConfig `json:"config"`
	}
	if err := json.Unmarshal(line, &cl); err != nil || cl.Config == nil {
		return "", &exchange.Error{Type: shell.TypeProtocol, Message: `sim: the first line must be {"config":{...}}`, Category: "OpenError"}
	}
	if err := cl.Config.Validate(); err != nil {
		return "", &exchange.Error{Type: shell.TypeProtocol, Message: "sim: " + err.Error(), Category: "OpenError"}
	}
	fits := cl.Config.Mode == shell.ModeNone
	switch side {
	case OnPrem:
		fits = fits || cl.Config.Mode == shell.ModeLocalSnapin || cl.Config.Mode == shell.ModeRemote
	case Lync:
		fits = fits || cl.Config.Mode == shell.ModeLync || cl.Config.Mode == shell.ModeSkype
	}
	if !fits {
		return "", &exchange.Error{Type: shell.TypeProtocol, Message: fmt.Sprintf("sim: session mode %q does not set up a %s session", cl.Config.Mode, side), Category: "OpenError"}
	}
	return cl.Config.Mode, nil
}

// session is the host protocol after the first line, whichever way the
// connection arrived: session setup, the ready line, then requests. remote
// says the host set up a remote session, which outlives a host that does
// not remove it.
func (s *shellServer) session(c net.Conn, r *bufio.Reader, sess HostSession, remote bool) {
	if e := s.setup(sess.Side, sess.Tenant); e != nil {
		sendLine(c, notReady(e))
		return
	}
	name := fmt.Sprintf("sim-%s-%d-%d", sess.Side, sess.PID, s.sessions.Add(1))
	if !sendLine(c, shell.Ready{Ready: true, Version: shell.ProtocolVersion, Session: name}) {
		return
	}
	key := s.siteKey(sess.Side, sess.Tenant)
	s.countSession(key, false, nil)
	done := make(chan struct{})
	defer close(done)
	in, removed := s.readRequests(r, done)
	defer func() {
		select {
		case <-removed:
			s.countSession(key, true, func(c *SessionCounts) *int { return &c.Removed })
		default:
			if remote {
				s.countSession(key, true, func(c *SessionCounts) *int { return &c.Orphaned })
			} else {
				s.countSession(key, true, func(c *SessionCounts) *int { return &c.Closed })
			}
		}
	}()
	for {
		var line []byte
		select {
		case l, ok := <-in:
			if !ok {
				return
			}
			line = l
		case <-removed:
			return
		}
		start := time.Now()
		var note *RequestNote
		if s.log != nil {
			note = &RequestNote{}
		}
		reply, drop := s.handle(sess.Side, sess.Tenant, line, note, removed)
		if s.log != nil {
			s.log.Add(shellRecord(sess.Tenant, sess.Site, line, reply, drop, note, start))
		}
		if drop {
			return
		}
		if !sendLine(c, reply) {
			return
		}
	}
}

// readRequests reads a session's lines aside, so that a remove line is
// seen while a cmdlet runs: request lines arrive on in (closed at the end
// of input), a remove line closes removed (and ends the reading). It
// stops when done is closed.
func (s *shellServer) readRequests(r *bufio.Reader, done <-chan struct{}) (in <-chan []byte, removed <-chan struct{}) {
	lines, rm := make(chan []byte), make(chan struct{})
	go func() {
		// removed is closed before in, so a reader finding in closed
		// knows whether the session was removed.
		defer close(lines)
		for {
			l, err := relayReadLine(r)
			if err != nil {
				return
			}
			if isRemoveLine(l) {
				close(rm)
				return
			}
			select {
			case lines <- l:
			case <-done:
				return
			case <-s.quit:
				return
			}
		}
	}()
	return lines, rm
}

// isRemoveLine reports a {"remove":true} line.
func isRemoveLine(l []byte) bool {
	var m struct {
		Remove bool `json:"remove"`
	}
	return json.Unmarshal(l, &m) == nil && m.Remove
}

// setup plays session setup: the organisation must exist, and a Lync
// session needs a Lync deployment (Import-Module would fail otherwise).
func (s *shellServer) setup(side Side, tenant string) *exchange.Error {
	if side != OnPrem && side != Lync {
		return &exchange.Error{Type: shell.TypeProtocol, Message: fmt.Sprintf("sim: side %q is not served by the PowerShell host", side), Category: "OpenError"}
	}
	hasLync := false
	if !s.w.View(tenant, func(t *Tenant) { hasLync = t.Lync != nil }) {
		return &exchange.Error{Type: "System.Management.Automation.Remoting.PSRemotingTransportException",
			Message: fmt.Sprintf("Connecting to remote server failed: no on-premises organisation for tenant %s.", tenant), Category: "OpenError"}
	}
	if side == Lync && !hasLync {
		return &exchange.Error{Type: "System.IO.FileNotFoundException",
			Message: "The specified module 'Lync' was not loaded because no valid module file was found in any module directory.", Category: "ResourceUnavailable"}
	}
	return nil
}

// handle answers one request line; drop means close the connection
// without a reply (the host crashed: kinds host_crash and drop before the
// cmdlet runs, apply_then_drop after it ran).
// note (may be nil) collects the faults injected, for the request log.
// stop closed means the session was removed: a cmdlet not yet run is
// not run.
func (s *shellServer) handle(side Side, tenant string, line []byte, note *RequestNote, stop <-chan struct{}) (reply any, drop bool) {
	var req shell.Request
	if err := json.Unmarshal(line, &req); err != nil {
		return shell.Reply{Error: &exchange.Error{Type: shell.TypeProtocol, Message: "sim: malformed request: " + err.Error(), Category: "ParserError"}}, false
	}
	single := req.Batch == nil
	cmds := req.Batch
	if single {
		if req.Cmdlet == "" {
			return shell.Reply{ID: req.ID, Error: &exchange.Error{Type: shell.TypeProtocol, Message: "sim: request has neither cmdlet nor batch", Category: "ParserError"}}, false
		}
		cmds = []exchange.Command{{Cmdlet: req.Cmdlet, Parameters: req.Parameters}}
	}
	write := false
	for _, c := range cmds {
		write = write || shellIsWrite(c.Cmdlet)
	}
	s.w.CountRequest(ProtoShell, tenant, write)

	results := make([]exchange.Result, len(cmds))
	for i, cmd := range cmds {
		f := s.w.Decide(ProtoShell, cmd.Cmdlet, tenant)
		if !s.sleep(f.Delay, stop) {
			// The session went while the cmdlet hung: a fault decided
			// for after the delay never took effect, so the log does
			// not name it.
			return nil, true
		}
		note.add(f.Kind)
		if f.Crash() {
			// The host dies before the cmdlet runs.
			return nil, true
		}
		if f.Kind == FaultApplyThenDrop {
			// The cmdlet runs, then the host dies before it can reply;
			// the batch's later commands never run.
			_, _ = s.w.Invoke(side, tenant, cmd)
			return nil, true
		}
		var rows []exchange.Row
		e := shellFault(cmd.Cmdlet, f)
		if e == nil {
			rows, e = s.w.Invoke(side, tenant, cmd)
		}
		if rows == nil {
			rows = []exchange.Row{}
		}
		results[i] = exchange.Result{Rows: rows, Error: e}
	}
	if single {
		return shellSingleReply{ID: req.ID, Rows: results[0].Rows, Error: results[0].Error}, false
	}
	return shellBatchReply{ID: req.ID, Results: results}, false
}

// Replies spell out rows and error (null) as bootstrap.ps1 does, rather
// than omitting empty members as shell.Reply's encoding would.
type shellSingleReply struct {
	ID    uint64          `json:"id"`
	Rows  []exchange.Row  `json:"rows"`
	Error *exchange.Error `json:"error"`
}

type shellBatchReply struct {
	ID      uint64            `json:"id"`
	Results []exchange.Result `json:"results"`
}

// shellFault turns an injected fault into the cmdlet error a host would
// report: throttling and server trouble as Exchange's transient AD errors
// (retryable), "fail" as the rule's own type.
func shellFault(cmdlet string, f Fault) *exchange.Error {
	switch f.Kind {
	case FaultThrottle:
		msg := "The server is busy (throttled)."
		if f.RetryAfter > 0 {
			msg = fmt.Sprintf("The server is busy (throttled). Try again after %d seconds.", int(f.RetryAfter.Round(time.Second)/time.Second))
		}
		return &exchange.Error{Cmdlet: cmdlet, Type: exchange.TypeThrottled, Message: msg, Category: "LimitsExceeded"}
	case FaultServer:
		return &exchange.Error{Cmdlet: cmdlet, Type: exchange.TypeTransient, Message: "Active Directory operation failed: the server is not operational.", Category: "NotSpecified"}
	case FaultFail:
		typ, msg := f.ErrorType, f.Message
		if typ == "" {
			typ = exchange.TypeTransient
		}
		if msg == "" {
			msg = "Injected failure."
		}
		return &exchange.Error{Cmdlet: cmdlet, Type: typ, Message: msg, Category: "NotSpecified"}
	}
	return nil
}

// shellIsWrite: Get-/Test- read, every other verb may change state.
func shellIsWrite(cmdlet string) bool {
	verb, _, _ := strings.Cut(strings.ToLower(cmdlet), "-")
	return verb != "get" && verb != "test"
}
