// Package shell drives on-prem Exchange and Lync through one long-lived
// PowerShell host process per organisation, speaking JSON lines with the
// embedded bootstrap.ps1 (see the protocol at the top of that file).
//
// The host is started lazily on the first call and kept: creating an
// Exchange remote session costs seconds, a cmdlet milliseconds. Calls are
// serialised on the one process because a PowerShell runspace runs one
// pipeline at a time; a Pool runs several hosts for one site when asked.
// A stuck call is timed out by stopping the host: its input is closed,
// which makes the bootstrap stop the running command and remove its remote
// session on the way out, and it is killed only if it has not left after a
// grace period (a killed host's session would stay on the Exchange server
// until it expires). A host that dies is replaced on the next call. Errors
// are *exchange.Error wherever a caller has to decide (retry, treat as
// done, give up).
package shell

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/exchange/shell/bootstrapps1"
)

// bootstrapScript is the script every host runs; the bytes live in package
// bootstrapps1 so the simulator's PowerShell stand-in checks against the
// same copy.
var bootstrapScript = bootstrapps1.Script()

// Script returns the bootstrap script the host runs (for operators who
// want to review or sign it).
func Script() []byte { return bytes.Clone(bootstrapScript) }

// ScriptPlaceholder in Options.Argv is replaced by the path of a private
// copy of bootstrap.ps1. The script travels as a file rather than on stdin
// (-Command -) or inline (-EncodedCommand): with -Command - PowerShell
// itself reads stdin line by line and would compete with the script for the
// protocol; -EncodedCommand is bounded by the command-line length and is a
// classic endpoint-protection alarm. A file leaves stdin to the protocol.
const ScriptPlaceholder = "{script}"

// Session modes: how the bootstrap makes the cmdlets available.
const (
	ModeNone        = "none"         // already there (the simulator, a pre-loaded host)
	ModeLocalSnapin = "local-snapin" // Add-PSSnapin on an Exchange server
	ModeRemote      = "remote"       // New-PSSession to ConnectionURI with Kerberos, Import-PSSession
	ModeLync        = "lync"         // Import-Module Lync (Lync Server 2013)
	ModeSkype       = "skype"        // Import-Module SkypeForBusiness
)

// SessionConfig is sent to the host as its first input line.
type SessionConfig struct {
	Mode          string `json:"mode"`
	ConnectionURI string `json:"connectionUri,omitempty"` // remote mode, e.g. http://ex01.contoso.com/PowerShell/
}

// Validate checks a session config before any process is started.
func (c SessionConfig) Validate() error {
	switch c.Mode {
	case ModeNone, ModeLocalSnapin, ModeLync, ModeSkype:
		return nil
	case ModeRemote:
		if !strings.HasPrefix(c.ConnectionURI, "http://") && !strings.HasPrefix(c.ConnectionURI, "https://") {
			return fmt.Errorf("shell: remote session needs an http(s) connection URI, got %q", c.ConnectionURI)
		}
		return nil
	}
	return fmt.Errorf("shell: unknown session mode %q", c.Mode)
}

// Defaults.
const (
	DefaultCallTimeout  = 2 * time.Minute
	DefaultStartTimeout = 2 * time.Minute
	// DefaultStopGrace is how long a host asked to stop may take to leave
	// on its own (stopping its command and removing its remote session on
	// the way out) before it is killed.
	DefaultStopGrace = 10 * time.Second
	// maxLineBytes bounds one reply; a host that prints more is broken.
	maxLineBytes = 64 << 20
	stderrTail   = 2048
)

// Options configure one host.
type Options struct {
	// Argv is the host command line; ScriptPlaceholder is replaced by the
	// bootstrap's path. Empty means DefaultArgv().
	Argv []string
	// Env (NAME=value) is added to the host's environment, which holds
	// only the operating system's variables PowerShell needs, never the
	// worker's own (see env.go); an entry replaces a variable of the same
	// name.
	Env []string
	// Session says how the host sets its session up.
	Session SessionConfig
	// CallTimeout bounds one call (default 2m); StartTimeout bounds start
	// up to the ready line (default 2m: Import-PSSession is slow).
	CallTimeout  time.Duration
	StartTimeout time.Duration
	// StopGrace is how long a host asked to stop (Close, an idle host, a
	// timed-out or cancelled call) may take to leave before it is killed
	// (default DefaultStopGrace).
	StopGrace time.Duration
	// PoolSize is how many hosts a Pool runs at once for this key
	// (default 1); New ignores it.
	PoolSize int
	// Logger gets cmdlet names, durations and error types; never parameter
	// values, which may be secrets.
	Logger *zap.Logger
	// Name labels logs and errors (site or tenant).
	Name string
}

// DefaultArgv runs the bootstrap with Windows PowerShell 5.1 on Windows
// (the Exchange snap-in and the Lync module load only there) and pwsh
// elsewhere. -ExecutionPolicy Bypass covers machines whose local policy
// blocks unsigned scripts; a Group Policy AllSigned still wins, and then
// the script (Script()) must be signed and run from a fixed path instead.
func DefaultArgv() []string {
	exe := "pwsh"
	if runtime.GOOS == "windows" {
		exe = "powershell.exe"
	}
	return []string{exe, "-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-File", ScriptPlaceholder}
}

// ErrClosed is returned by calls on a closed Shell.
var ErrClosed = errors.New("shell: closed")

// Shell is one organisation's PowerShell host. It implements
// exchange.Runner; it is safe for concurrent use, and calls run one at a
// time in arrival order of the slot.
type Shell struct {
	opts Options
	log  *zap.Logger

	slot     chan struct{} // capacity 1: holding it means owning the host for one call
	nextID   atomic.Uint64
	inflight atomic.Int32 // callers inside Run/RunBatch, waiting or running
	lastUsed atomic.Int64 // unix nanoseconds

	mu        sync.Mutex
	proc      *process
	closed    bool
	stopping  sync.WaitGroup // hosts being stopped after a timed-out or cancelled call
	stoppingN atomic.Int32   // how many
	retiring  *process       // a host given up on under the slot; guarded by the slot
}

var _ exchange.Runner = (*Shell)(nil)

// New returns a Shell; no process starts until the first call.
func New(opts Options) *Shell {
	if len(opts.Argv) == 0 {
		opts.Argv = DefaultArgv()
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	if opts.StopGrace <= 0 {
		opts.StopGrace = DefaultStopGrace
	}
	if opts.Session.Mode == "" {
		opts.Session.Mode = ModeNone
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	s := &Shell{opts: opts, log: log.With(zap.String("host", opts.Name)), slot: make(chan struct{}, 1)}
	s.lastUsed.Store(time.Now().UnixNano())
	return s
}

// Run runs one allow-listed cmdlet.
func (s *Shell) Run(ctx context.Context, cmd exchange.Command) ([]exchange.Row, error) {
	if !exchange.Allowed(cmd.Cmdlet) {
		return nil, notAllowed(cmd.Cmdlet)
	}
	id := s.nextID.Add(1)
	line, err := encodeRequest(id, &cmd, nil)
	if err != nil {
		return nil, err
	}
	rep, err := s.roundTrip(ctx, cmd.Cmdlet, id, line)
	if err != nil {
		return nil, err
	}
	if rep.Results != nil {
		return nil, s.confused(cmd.Cmdlet, "host answered a single command with batch results")
	}
	if rep.Error != nil {
		e := *rep.Error
		e.Cmdlet = cmd.Cmdlet
		return nil, &e
	}
	return rep.Rows, nil
}

// RunBatch runs several commands in one round trip; each Result carries its
// own command's rows or error.
func (s *Shell) RunBatch(ctx context.Context, cmds []exchange.Command) ([]exchange.Result, error) {
	if len(cmds) == 0 {
		return nil, nil
	}
	for _, c := range cmds {
		if !exchange.Allowed(c.Cmdlet) {
			return nil, notAllowed(c.Cmdlet)
		}
	}
	label := cmdletLabel(cmds)
	id := s.nextID.Add(1)
	line, err := encodeRequest(id, nil, cmds)
	if err != nil {
		return nil, err
	}
	rep, err := s.roundTrip(ctx, label, id, line)
	if err != nil {
		return nil, err
	}
	if len(rep.Results) != len(cmds) {
		return nil, s.confused(label, "host answered %d commands with %d results", len(cmds), len(rep.Results))
	}
	for i := range rep.Results {
		if e := rep.Results[i].Error; e != nil {
			ce := *e
			ce.Cmdlet = cmds[i].Cmdlet
			rep.Results[i].Error = &ce
		}
	}
	return rep.Results, nil
}

// Close stops the host: it gets the stop grace to finish a call in flight
// and remove its remote session, then it is killed. Close also waits for
// hosts still stopping after a timed-out call. Later calls fail with
// ErrClosed.
func (s *Shell) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.stopping.Wait()
		return nil
	}
	s.closed = true
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		p.shutdown(s.opts.StopGrace)
		s.log.Info("host stopped", zap.Int("pid", p.pid))
	}
	s.stopping.Wait()
	return nil
}

// Start starts the host, unless one is running, and waits for its ready
// line (at most the start timeout): a probe that the site's PowerShell can
// be started at all. The host stays up for the calls that follow.
func (s *Shell) Start(ctx context.Context) error {
	const label = "start"
	s.inflight.Add(1)
	defer func() {
		s.inflight.Add(-1)
		s.lastUsed.Store(time.Now().UnixNano())
	}()
	select {
	case s.slot <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("shell %s: %s: waiting for the host: %w", s.opts.Name, label, ctx.Err())
	}
	defer s.releaseSlot()
	_, err := s.host(ctx, label)
	return err
}

// Running reports whether a host process is up.
func (s *Shell) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil && !s.proc.exited()
}

// PID is the host's process ID, 0 when none is running.
func (s *Shell) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || s.proc.exited() {
		return 0
	}
	return s.proc.pid
}

// Session is the session ID the running host announced, "" when none.
func (s *Shell) Session() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return ""
	}
	return s.proc.session
}

func notAllowed(cmdlet string) *exchange.Error {
	return &exchange.Error{Cmdlet: cmdlet, Type: exchange.TypeCmdletNotAllowed, Message: fmt.Sprintf("cmdlet %q is not on the allow-list", cmdlet), Category: "PermissionDenied"}
}

// roundTrip sends one request line and waits for the reply with its id.
func (s *Shell) roundTrip(ctx context.Context, label string, id uint64, line []byte) (*Reply, error) {
	s.inflight.Add(1)
	defer func() {
		s.inflight.Add(-1)
		s.lastUsed.Store(time.Now().UnixNano())
	}()
	select {
	case s.slot <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("shell %s: %s: waiting for the host: %w", s.opts.Name, label, ctx.Err())
	}
	defer s.releaseSlot()

	p, err := s.host(ctx, label)
	if err != nil {
		if !errors.Is(err, ErrClosed) {
			s.log.Warn("host start failed", zap.String("cmdlet", label), zap.String("error_type", errorType(err)))
		}
		return nil, err
	}
	began := time.Now()
	rep, err := s.exchange(ctx, p, label, id, line)
	took := time.Since(began)
	switch {
	case err != nil:
		s.log.Warn("call failed", zap.String("cmdlet", label), zap.Uint64("id", id), zap.Duration("took", took), zap.String("error_type", errorType(err)))
	case rep.Error != nil:
		s.log.Debug("call", zap.String("cmdlet", label), zap.Uint64("id", id), zap.Duration("took", took), zap.String("error_type", exchange.ShortType(rep.Error.Type)))
	default:
		s.log.Debug("call", zap.String("cmdlet", label), zap.Uint64("id", id), zap.Duration("took", took))
	}
	return rep, err
}

func errorType(err error) string {
	var e *exchange.Error
	if errors.As(err, &e) {
		return exchange.ShortType(e.Type)
	}
	return "transport"
}

// releaseSlot gives the slot back. When a host was given up on while the
// slot was held (s.retiring), the caller gets its answer now and the slot
// goes back only once that host has left, so that the next call's host
// never runs beside it.
func (s *Shell) releaseSlot() {
	p := s.retiring
	s.retiring = nil
	if p == nil {
		<-s.slot
		return
	}
	s.stopping.Add(1)
	s.stoppingN.Add(1)
	go func() {
		defer s.stopping.Done()
		defer func() { <-s.slot }()
		defer s.stoppingN.Add(-1)
		s.stop(p)
	}()
}

// retire forgets a host given up on (a timed-out or cancelled call or
// start); it is stopped when the slot is released. Callers hold the slot.
func (s *Shell) retire(p *process) {
	s.detach(p)
	s.retiring = p
}

// exchange sends one request and waits for its reply. A call given up on
// (timeout, cancelled context) retires the host.
func (s *Shell) exchange(ctx context.Context, p *process, label string, id uint64, line []byte) (*Reply, error) {
	timer := time.NewTimer(s.opts.CallTimeout)
	defer timer.Stop()
	// The write runs aside: a host that stops reading would otherwise block
	// the call past its timeout once the pipe buffer is full.
	written := make(chan error, 1)
	go func() {
		_, err := p.stdin.Write(append(line, '\n'))
		written <- err
	}()
	for {
		select {
		case err := <-written:
			written = nil
			if err != nil {
				// The host is gone or going; its stdout closing says how.
				s.log.Debug("request write failed", zap.String("cmdlet", label), zap.Error(err))
			}
		case l, ok := <-p.lines:
			if !ok {
				return nil, s.died(p, label, "during the call")
			}
			kind, rep, _, err := decodeLine(l)
			if errors.Is(err, errNotProtocol) {
				// Banners and Write-Host text share stdout; the content is
				// not logged because it may echo anything.
				s.log.Debug("skipped non-protocol host output", zap.Int("bytes", len(l)))
				continue
			}
			if err != nil {
				return nil, s.confused(label, "%v", err)
			}
			if kind != lineReply {
				return nil, s.confused(label, "host sent a second ready line")
			}
			if rep.ID != id {
				s.log.Warn("skipped reply to another request", zap.Uint64("want", id), zap.Uint64("got", rep.ID))
				continue
			}
			return rep, nil
		case <-timer.C:
			s.retire(p)
			return nil, &exchange.Error{Cmdlet: label, Type: exchange.TypeTimeout,
				Message: fmt.Sprintf("no reply within %s; host %d told to stop the call and remove its session (killed if still there after %s), a new host starts on the next call", s.opts.CallTimeout, p.pid, s.opts.StopGrace), Category: "OperationTimeout"}
		case <-ctx.Done():
			// The cmdlet may still be running in the host, and the host
			// runs one pipeline at a time: a fresh host is the only way to
			// give the next caller a predictable start.
			s.retire(p)
			return nil, fmt.Errorf("shell %s: %s: %w", s.opts.Name, label, ctx.Err())
		}
	}
}

// host returns the running host, starting one when there is none. Callers
// hold the slot, so at most one start is under way.
func (s *Shell) host(ctx context.Context, label string) (*process, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	p := s.proc
	if p != nil && p.exited() {
		s.proc, p = nil, nil
	}
	s.mu.Unlock()
	if p != nil {
		return p, nil
	}
	p, err := s.start(ctx, label)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		p.kill()
		return nil, ErrClosed
	}
	s.proc = p
	s.mu.Unlock()
	return p, nil
}

// discard forgets a host and kills it.
func (s *Shell) discard(p *process) {
	s.detach(p)
	p.kill()
}

// detach forgets a host, which the caller then stops.
func (s *Shell) detach(p *process) {
	s.mu.Lock()
	if s.proc == p {
		s.proc = nil
	}
	s.mu.Unlock()
}

// stop ends a host given up on: its input is closed, which the bootstrap
// takes as the order to stop the running command and leave, removing its
// remote session; after the stop grace it is killed.
func (s *Shell) stop(p *process) {
	if p.shutdown(s.opts.StopGrace) {
		s.log.Info("host stopped", zap.Int("pid", p.pid))
		return
	}
	s.log.Warn("host killed: it did not leave within the stop grace; a remote session it held stays on the server until it expires",
		zap.Int("pid", p.pid), zap.Duration("grace", s.opts.StopGrace))
}

// died reports a host that exited under a call: retryable, since the next
// call starts a fresh host.
func (s *Shell) died(p *process, label, when string) error {
	// Reap before killing, or the status would read "killed" instead of
	// the host's own exit code.
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
	}
	s.discard(p)
	status := "still exiting"
	if p.exited() {
		status = "exit status 0"
		if p.waitErr != nil {
			status = p.waitErr.Error()
		}
	}
	msg := fmt.Sprintf("host process %d exited %s (%s)", p.pid, when, status)
	if tail := p.stderr.String(); tail != "" {
		msg += "; stderr: " + tail
	}
	s.log.Warn("host died", zap.Int("pid", p.pid), zap.String("when", when), zap.String("status", status))
	return &exchange.Error{Cmdlet: label, Type: exchange.TypeHostDied, Message: msg, Category: "ConnectionError"}
}

// confused handles a host that broke the protocol: it cannot be trusted
// with the next call either.
func (s *Shell) confused(label, format string, args ...any) error {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		p.kill()
	}
	return protocolError(label, format, args...)
}

// start launches a host and waits for its ready line.
func (s *Shell) start(ctx context.Context, label string) (*process, error) {
	if err := s.opts.Session.Validate(); err != nil {
		return nil, &exchange.Error{Cmdlet: label, Type: exchange.TypeParameterBinding, Message: err.Error(), Category: "InvalidArgument"}
	}
	argv, dir, err := s.prepareArgv()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = hostEnvironment(os.Environ(), s.opts.Env)
	// Bounds Wait when a grandchild keeps the pipes open after the host exits.
	cmd.WaitDelay = 2 * time.Second
	p := &process{cmd: cmd, dir: dir, lines: make(chan []byte, 16), done: make(chan struct{}), abandoned: make(chan struct{}), stderr: &tailBuffer{max: stderrTail}}
	cmd.Stderr = p.stderr
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		p.cleanup()
		return nil, fmt.Errorf("shell %s: stdin pipe: %w", s.opts.Name, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		p.cleanup()
		return nil, fmt.Errorf("shell %s: stdout pipe: %w", s.opts.Name, err)
	}
	if err := cmd.Start(); err != nil {
		p.cleanup()
		return nil, fmt.Errorf("shell %s: start %s: %w", s.opts.Name, argv[0], err)
	}
	p.pid = cmd.Process.Pid
	go p.read(stdout)

	cfg, err := jsonLine(ConfigLine{Config: s.opts.Session})
	if err != nil {
		p.kill()
		return nil, err
	}
	// A host that dies before reading this is reported below as dying
	// before ready, with its stderr; the write error adds nothing.
	_, _ = p.stdin.Write(cfg)

	began := time.Now()
	timer := time.NewTimer(s.opts.StartTimeout)
	defer timer.Stop()
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				return nil, s.died(p, label, "before it was ready")
			}
			kind, _, ready, err := decodeLine(l)
			if errors.Is(err, errNotProtocol) {
				continue // banners, module load chatter
			}
			if err == nil && kind != lineReady {
				err = errors.New("host answered before it was ready")
			}
			if err != nil {
				p.kill()
				return nil, protocolError(label, "%v", err)
			}
			if ready.Version != ProtocolVersion {
				p.kill()
				return nil, protocolError(label, "host speaks protocol version %d, this client %d", ready.Version, ProtocolVersion)
			}
			if !ready.Ready {
				p.kill()
				e := exchange.Error{Cmdlet: label, Type: TypeProtocol, Message: "no reason given", Category: "OpenError"}
				if ready.Error != nil {
					e = *ready.Error
					e.Cmdlet = label
				}
				e.Message = fmt.Sprintf("session setup (%s) failed: %s", s.opts.Session.Mode, e.Message)
				s.log.Warn("host session setup failed", zap.Int("pid", p.pid), zap.String("mode", s.opts.Session.Mode), zap.String("error_type", exchange.ShortType(e.Type)))
				return nil, &e
			}
			p.session = ready.Session
			s.log.Info("host ready", zap.Int("pid", p.pid), zap.String("mode", s.opts.Session.Mode), zap.String("session", ready.Session), zap.Duration("took", time.Since(began)))
			return p, nil
		case <-timer.C:
			// Stopped, not killed: a session it may have opened by now
			// is removed if it gets ready within the stop grace.
			s.retiring = p
			return nil, &exchange.Error{Cmdlet: label, Type: exchange.TypeTimeout, Message: fmt.Sprintf("host %d not ready within %s", p.pid, s.opts.StartTimeout), Category: "OperationTimeout"}
		case <-ctx.Done():
			s.retiring = p
			return nil, fmt.Errorf("shell %s: %s: starting the host: %w", s.opts.Name, label, ctx.Err())
		}
	}
}

// prepareArgv writes the bootstrap to a private directory when the argv
// names it (writeScript), and substitutes its path.
func (s *Shell) prepareArgv() ([]string, string, error) {
	argv := append([]string(nil), s.opts.Argv...)
	dir, path := "", ""
	for i, a := range argv {
		if !strings.Contains(a, ScriptPlaceholder) {
			continue
		}
		if dir == "" {
			var err error
			if dir, path, err = writeScript(bootstrapScript); err != nil {
				return nil, "", fmt.Errorf("shell %s: %w", s.opts.Name, err)
			}
		}
		argv[i] = strings.ReplaceAll(a, ScriptPlaceholder, path)
	}
	return argv, dir, nil
}

func jsonLine(v any) ([]byte, error) {
	b, err := jsonMarshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// process is one running host.
type process struct {
	cmd       *exec.Cmd
	pid       int
	stdin     io.WriteCloser
	stderr    *tailBuffer
	dir       string
	session   string
	lines     chan []byte   // stdout lines; closed at end of output
	done      chan struct{} // closed once the process has been waited for
	abandoned chan struct{} // closed when nobody will read lines any more
	abandon   sync.Once
	waitErr   error
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// read delivers stdout lines until the host closes stdout, then reaps it.
func (p *process) read(stdout io.Reader) {
	br := bufio.NewReaderSize(stdout, 64<<10)
	for {
		line, err := readLine(br)
		if len(line) > 0 {
			select {
			case p.lines <- line:
			case <-p.abandoned:
			}
		}
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				p.kill()
			}
			break
		}
	}
	close(p.lines)
	p.waitErr = p.cmd.Wait()
	p.cleanup()
	close(p.done)
}

var errLineTooLong = errors.New("host output line too long")

func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > maxLineBytes {
			return nil, errLineTooLong
		}
		line = append(line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimRight(line, "\r\n"), err
	}
}

func (p *process) cleanup() {
	if p.dir != "" {
		_ = os.RemoveAll(p.dir)
	}
}

func (p *process) kill() {
	p.abandon.Do(func() { close(p.abandoned) })
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
}

// shutdown closes the host's input (the bootstrap's signal to leave) and
// kills it if it has not left after grace; it reports whether the host
// left on its own.
func (p *process) shutdown(grace time.Duration) bool {
	// Nobody reads the host's output any more: lines it still prints must
	// not hold up its exit.
	p.abandon.Do(func() { close(p.abandoned) })
	_ = p.stdin.Close()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
	}
	p.kill()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
	return false
}

// tailBuffer keeps the last max bytes written (the host's stderr), for
// error messages about a host that died.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}
