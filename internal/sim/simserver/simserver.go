// Package simserver is the stand-alone simulator: one simulated world
// served on loopback the way the product meets Microsoft's services in
// production, so that the worker an operator deploys (its real backend,
// credentials, endpoints and PowerShell command line) can run against it,
// and the world outlives the worker.
//
//   - HTTPS (a CA of its own, written to the state directory): Graph at
//     /v1.0, the Entra token endpoint at /{tenant}/oauth2/v2.0/token
//     (one client secret, accepted for any client ID), Exchange Online's
//     InvokeCommand at /adminapi/, and the admin API at /_sim/.
//   - Plain HTTP: the remote PowerShell gateway. A PowerShell stand-in
//     sends POST /PowerShell/<site> (on-prem Exchange) or
//     /OcsPowerShell/<site> (Lync) with "Upgrade: hybridflow-pshost/1";
//     after "101 Switching Protocols" the connection carries the host
//     protocol exactly as between the shell client and the bootstrap
//     script.
//
// The state directory holds what clients need: ca.pem, client-secret,
// admin-token and state.json (written once both servers listen, removed on
// Close).
//
// With Options.SaveTo, Close keeps the world: it stops taking requests,
// lets the ones being served finish, and writes the world in the world-file
// format, so that a later Start with that file as WorldFile goes on where
// this one stopped.
package simserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/sim"
)

// Files in the state directory.
const (
	StateFileName        = "state.json"
	CAFileName           = "ca.pem"
	ClientSecretFileName = "client-secret"
	AdminTokenFileName   = "admin-token"
)

// Default listen addresses of the hybridflow-sim binary (Start's default
// is a free port).
const (
	DefaultListen  = "127.0.0.1:7480"
	DefaultGateway = "127.0.0.1:7481"
)

// Options configure Start.
type Options struct {
	// WorldFile is the YAML world to serve; reset reloads it.
	WorldFile string
	// World is served instead of WorldFile when WorldFile is empty; reset
	// restores the contents it had at Start.
	World *sim.World
	// Addr (HTTPS) and GatewayAddr (plain HTTP) are loopback listen
	// addresses; default 127.0.0.1:0.
	Addr, GatewayAddr string
	// StateDir receives ca.pem, client-secret, admin-token and state.json.
	// Empty means a temporary directory, removed on Close.
	StateDir string
	// ClientSecret is the secret the token endpoint accepts for any client
	// ID. Empty means the one already in StateDir/client-secret, or a new
	// random one.
	ClientSecret string
	// RequestLogSize bounds the request log (0: sim.DefaultRequestLogSize).
	RequestLogSize int
	// Logger receives the servers' events; nil discards them.
	Logger *zap.Logger
	// SaveTo, when set, is the file Close writes the world to, in the
	// world-file format (as GET /_sim/world serves it), after both servers
	// have stopped taking requests and those being served have finished
	// (at most DrainTimeout). The file is replaced atomically and readable
	// by its owner only. Start checks that it can be written there.
	SaveTo string
}

// DrainTimeout bounds how long Close waits for the requests being served
// when it saves the world (Options.SaveTo); make stop waits twice as long
// before it kills the simulator.
const DrainTimeout = 10 * time.Second

// Server is a running stand-alone simulator.
type Server struct {
	world    *sim.World
	https    *sim.Servers
	hosts    *sim.HostServer
	gateway  *http.Server
	gwURL    string
	log      *sim.RequestLog
	logger   *zap.Logger
	stateDir string
	tempDir  bool
	admin    string // the admin bearer token
	state    State

	// original is what reset restores: the world file's path, or the
	// dump of Options.World taken at Start.
	worldFile string
	original  []byte
	worldMu   sync.Mutex // serialises loads, resets and clock changes

	// saveTo is Options.SaveTo made absolute; started says Start
	// succeeded, so a failed Start never overwrites a saved world.
	saveTo  string
	started bool

	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// State is state.json: where a running simulator is and what clients need.
type State struct {
	BaseURL          string `json:"base_url"`
	GatewayURL       string `json:"gateway_url"`
	CAFile           string `json:"ca_file"`
	ClientSecretFile string `json:"client_secret_file"`
	AdminTokenFile   string `json:"admin_token_file"`
	PID              int    `json:"pid"`
	WorldFile        string `json:"world_file,omitempty"`
}

// Start loads the world, checks its clock against the wall clock, writes
// the state directory and serves until ctx ends or Close is called.
func Start(ctx context.Context, opts Options) (_ *Server, err error) {
	logger := opts.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	s := &Server{logger: logger, done: make(chan struct{})}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()

	switch {
	case opts.WorldFile != "":
		abs, err := filepath.Abs(opts.WorldFile)
		if err != nil {
			return nil, fmt.Errorf("simserver: world file: %w", err)
		}
		w, err := sim.Load(abs)
		if err != nil {
			return nil, fmt.Errorf("simserver: %w", err)
		}
		s.world, s.worldFile = w, abs
	case opts.World != nil:
		data, err := opts.World.Dump()
		if err != nil {
			return nil, fmt.Errorf("simserver: %w", err)
		}
		s.world, s.original = opts.World, data
	default:
		return nil, errors.New("simserver: no world: set Options.WorldFile or Options.World")
	}
	if err := checkClock(s.world, time.Now()); err != nil {
		return nil, fmt.Errorf("simserver: world %s: %w", s.worldName(), err)
	}
	addr, err := loopbackAddr("Addr", opts.Addr)
	if err != nil {
		return nil, err
	}
	gwAddr, err := loopbackAddr("GatewayAddr", opts.GatewayAddr)
	if err != nil {
		return nil, err
	}
	if opts.SaveTo != "" {
		if s.saveTo, err = checkSaveTo(opts.SaveTo); err != nil {
			return nil, err
		}
	}

	if err := s.prepareStateDir(opts.StateDir); err != nil {
		return nil, err
	}
	secret, err := s.clientSecret(opts.ClientSecret)
	if err != nil {
		return nil, err
	}
	s.admin = randomToken()
	if err := writeFile(s.path(AdminTokenFileName), []byte(s.admin), 0o600); err != nil {
		return nil, fmt.Errorf("simserver: admin token: %w", err)
	}

	s.log = sim.NewRequestLog(opts.RequestLogSize)
	s.https, err = sim.Start(context.WithoutCancel(ctx), s.world, sim.ServerOptions{
		Addr:       addr,
		AnySecret:  secret,
		ErrorLog:   debugLog(logger.Named("https")),
		RequestLog: s.log,
		Admin:      s.adminHandler(),
	})
	if err != nil {
		return nil, fmt.Errorf("simserver: %w", err)
	}
	if err := writeFile(s.path(CAFileName), s.https.CAPEM(), 0o644); err != nil {
		return nil, fmt.Errorf("simserver: CA file: %w", err)
	}

	s.hosts = sim.NewHostServer(s.world, s.log)
	gl, err := net.Listen("tcp", gwAddr)
	if err != nil {
		return nil, fmt.Errorf("simserver: gateway: %w", err)
	}
	s.gwURL = "http://" + gl.Addr().String()
	s.gateway = &http.Server{
		Handler:           s.gatewayHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          debugLog(logger.Named("gateway")),
	}
	go func() { _ = s.gateway.Serve(gl) }()

	s.state = State{
		BaseURL:          s.https.BaseURL,
		GatewayURL:       s.gwURL,
		CAFile:           s.path(CAFileName),
		ClientSecretFile: s.path(ClientSecretFileName),
		AdminTokenFile:   s.path(AdminTokenFileName),
		PID:              os.Getpid(),
		WorldFile:        s.worldFile,
	}
	b, _ := json.MarshalIndent(s.state, "", "  ")
	if err := writeFile(s.path(StateFileName), append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("simserver: state file: %w", err)
	}
	go func() {
		select {
		case <-ctx.Done():
			_ = s.Close()
		case <-s.done:
		}
	}()
	s.started = true
	fields := []zap.Field{zap.String("base_url", s.state.BaseURL), zap.String("gateway_url", s.gwURL),
		zap.String("state_dir", s.stateDir), zap.String("world", s.worldName())}
	if s.saveTo != "" {
		fields = append(fields, zap.String("save_on_exit", s.saveTo))
	}
	logger.Info("simulator listening", fields...)
	return s, nil
}

// BaseURL is https://127.0.0.1:port: Graph is BaseURL+"/v1.0", the
// authority host BaseURL+"/", Exchange Online BaseURL.
func (s *Server) BaseURL() string { return s.https.BaseURL }

// GatewayURL is the remote PowerShell gateway, http://127.0.0.1:port.
func (s *Server) GatewayURL() string { return s.gwURL }

// CAFile is the PEM file of the CA the HTTPS certificate chains to.
func (s *Server) CAFile() string { return s.path(CAFileName) }

// ClientSecretFile holds the secret the token endpoint accepts.
func (s *Server) ClientSecretFile() string { return s.path(ClientSecretFileName) }

// AdminTokenFile holds the admin API's bearer token.
func (s *Server) AdminTokenFile() string { return s.path(AdminTokenFileName) }

// StateDir is the state directory (absolute).
func (s *Server) StateDir() string { return s.stateDir }

// State is what state.json says.
func (s *Server) State() State { return s.state }

// World is the live world. Loads and resets replace its contents, never
// the object.
func (s *Server) World() *sim.World { return s.world }

// Requests is the request log.
func (s *Server) Requests() *sim.RequestLog { return s.log }

// HostSessions counts the gateway's PowerShell sessions by side and site
// ("onprem:site-2", "lync:site-a"): open, peak, and how they ended
// (removed, orphaned, closed).
func (s *Server) HostSessions() map[string]sim.SessionCounts { return s.hosts.SessionCounts() }

// HTTPClient trusts the simulator's CA (and nothing else).
func (s *Server) HTTPClient() *http.Client { return s.https.Client }

// Done is closed once the server has been closed.
func (s *Server) Done() <-chan struct{} { return s.done }

// Close stops both servers, ends host sessions and removes state.json and
// the admin token (and a temporary state directory). With Options.SaveTo
// it first lets the requests being served finish and then, once nothing
// can change the world any more, writes the world to that file.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		saving := s.saveTo != "" && s.started
		if saving {
			errs = append(errs, s.drain())
		}
		if s.gateway != nil {
			errs = append(errs, s.gateway.Close())
		}
		if s.hosts != nil {
			s.hosts.Close()
		}
		if s.https != nil {
			errs = append(errs, s.https.Close())
		}
		if saving {
			errs = append(errs, s.save())
		}
		if s.stateDir != "" {
			if s.state.PID != 0 {
				errs = append(errs, removeIfExists(s.path(StateFileName)))
			}
			errs = append(errs, removeIfExists(s.path(AdminTokenFileName)))
			if s.tempDir {
				errs = append(errs, os.RemoveAll(s.stateDir))
			}
		}
		s.closeErr = errors.Join(errs...)
		close(s.done)
		if s.https != nil {
			s.logger.Info("simulator stopped")
		}
	})
	return s.closeErr
}

// drain stops both servers taking requests and waits, until DrainTimeout
// has passed, for those being served: HTTPS requests (Graph, the token
// endpoint, Exchange Online, the admin API) until they are answered,
// PowerShell sessions until the cmdlet each is running has returned (their
// connections are closed; a session's cmdlets run one at a time). Past the
// timeout it says so and the world is saved as it is.
func (s *Server) drain() error {
	ctx, cancel := context.WithTimeout(context.Background(), DrainTimeout)
	defer cancel()
	var gwErr, httpsErr error
	if s.gateway != nil {
		gwErr = s.gateway.Shutdown(ctx)
	}
	if s.hosts != nil {
		s.hosts.Close()
	}
	if s.https != nil {
		httpsErr = s.https.Shutdown(ctx)
	}
	var errs []error
	for _, err := range []error{gwErr, httpsErr} {
		if errors.Is(err, context.DeadlineExceeded) {
			s.logger.Warn("requests were still being served when the drain timeout ran out; the world is saved as it is now",
				zap.Duration("timeout", DrainTimeout))
			continue
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// save writes the world to saveTo. The clock is pinned in the file only
// when it is pinned in the world (the world file's now:, or a pin set
// through the admin API); Start refuses such a file once the wall clock
// has moved more than ClockTolerance away, so that is logged as a warning.
func (s *Server) save() error {
	data, err := s.world.Dump()
	if err != nil {
		return fmt.Errorf("simserver: save the world: %w", err)
	}
	if err := writeFile(s.saveTo, data, 0o600); err != nil {
		s.logger.Error("world not saved", zap.String("path", s.saveTo), zap.Error(err))
		return fmt.Errorf("simserver: save the world to %s: %w", s.saveTo, err)
	}
	if pinned, ok := s.world.PinnedNow(); ok {
		s.logger.Warn("the saved world pins the clock (now:): a start later than "+ClockTolerance.String()+" after it refuses the file; "+
			"release the clock (hybridflow-sim clock --wall) before stopping, or remove now: from the file",
			zap.String("path", s.saveTo), zap.Time("now", pinned))
	}
	s.logger.Info("world saved", zap.String("path", s.saveTo), zap.Int("tenants", len(s.world.Inventory().Tenants)), zap.Int("bytes", len(data)))
	return nil
}

// checkSaveTo makes the SaveTo path absolute and checks, before anything
// is served, that a file can be written there: the directory exists (it is
// created, owner only, if not) and takes a new file, and the path is not a
// directory.
func checkSaveTo(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("simserver: SaveTo %q: %w", path, err)
	}
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		return "", fmt.Errorf("simserver: SaveTo %s is a directory; give the file to write the world to", abs)
	}
	dir := filepath.Dir(abs)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("simserver: SaveTo %s: %w", abs, err)
	}
	probe, err := os.CreateTemp(dir, "."+filepath.Base(abs)+".*")
	if err != nil {
		return "", fmt.Errorf("simserver: SaveTo %s: cannot write in %s: %w", abs, dir, err)
	}
	_ = probe.Close()
	_ = os.Remove(probe.Name())
	return abs, nil
}

func (s *Server) worldName() string {
	if s.worldFile != "" {
		return s.worldFile
	}
	return "(given by the caller)"
}

func (s *Server) path(name string) string {
	if s.stateDir == "" {
		return ""
	}
	return filepath.Join(s.stateDir, name)
}

// prepareStateDir creates the directory (owner only) and refuses one a
// running simulator still uses.
func (s *Server) prepareStateDir(dir string) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "hybridflow-sim-")
		if err != nil {
			return fmt.Errorf("simserver: state directory: %w", err)
		}
		s.stateDir, s.tempDir = d, true
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("simserver: state directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return fmt.Errorf("simserver: state directory: %w", err)
	}
	if st, err := readStateFile(filepath.Join(abs, StateFileName)); err == nil && processAlive(st.PID) {
		return fmt.Errorf("simserver: state directory %s is in use by a running simulator (pid %d, %s); stop it or choose another --state-dir", abs, st.PID, st.BaseURL)
	}
	s.stateDir = abs
	return nil
}

// clientSecret is the given secret, else the one a previous run left
// (a worker configured with the file keeps working across restarts), else
// a new one; it is (re)written owner-readable only.
func (s *Server) clientSecret(given string) (string, error) {
	secret := strings.TrimSpace(given)
	if secret == "" {
		if b, err := os.ReadFile(s.path(ClientSecretFileName)); err == nil {
			secret = strings.TrimSpace(string(b))
		}
	}
	if secret == "" {
		secret = randomToken()
	}
	if err := writeFile(s.path(ClientSecretFileName), []byte(secret), 0o600); err != nil {
		return "", fmt.Errorf("simserver: client secret: %w", err)
	}
	return secret, nil
}

// loopbackAddr defaults an address to a free loopback port and refuses
// others: the admin API and the token endpoint are for this machine only.
func loopbackAddr(field, addr string) (string, error) {
	if addr == "" {
		return "127.0.0.1:0", nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("simserver: %s %q: %w", field, addr, err)
	}
	if host == "localhost" {
		return addr, nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("simserver: %s %q: the simulator listens on loopback only (127.0.0.1, ::1 or localhost)", field, addr)
	}
	return addr, nil
}

// debugLog is a standard logger for an http.Server's own errors (mostly
// TLS handshakes of clients that do not trust the CA), at debug level.
func debugLog(z *zap.Logger) *log.Logger {
	l, err := zap.NewStdLogAt(z, zap.DebugLevel)
	if err != nil {
		return log.New(io.Discard, "", 0)
	}
	return l
}

func randomToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// writeFile replaces path atomically with data and mode.
func writeFile(path string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	_, werr := tmp.Write(data)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr, os.Chmod(name, mode)); err != nil {
		_ = os.Remove(name)
		return err
	}
	if err := os.Rename(name, path); err != nil {
		_ = os.Remove(name)
		return err
	}
	return nil
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// processAlive reports whether a process with pid exists.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	return p.Signal(syscall.Signal(0)) == nil
}

func readStateFile(path string) (State, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return State{}, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}
