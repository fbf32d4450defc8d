//go:build linux

package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/hybridflow/hybridflow/internal/devserver"
	"github.com/hybridflow/hybridflow/internal/logging"
	"github.com/hybridflow/hybridflow/workflows"
)

// Options for Start.
type Options struct {
	// Dir holds the state: PostgreSQL's data directory, its password,
	// both processes' logs and (Detach) the server's PID file. It is
	// created if missing; a directory that already holds a cluster is
	// started again as it is (its password and data kept). Every
	// directory above it must be searchable by PGUser.
	Dir string
	// Ports; zero fields are picked free (keep them fixed for a cluster
	// whose clients must find it again after a restart of this program).
	Ports Ports
	// Namespace to create with the search attributes; default "default".
	Namespace string
	// ConfigDir holds hybridflow.yaml and dynamicconfig.yaml; default the
	// repository's deploy/temporal.
	ConfigDir string
	// BinDir holds temporal-server and temporal-sql-tool; default the
	// repository's bin/.
	BinDir string
	// PGBinDir holds initdb, postgres and pg_isready; default
	// $HYBRIDFLOW_PG_BIN, else the newest /usr/lib/postgresql/*/bin.
	PGBinDir string
	// PGUser runs PostgreSQL when this process is root (created if
	// missing); default DefaultPGUser. Ignored when not root.
	PGUser string
	// LogLevel of the server; default the configuration's (warn).
	LogLevel string
	// Detach starts both processes in sessions of their own that outlive
	// this one (make cluster); Stop still stops them. Otherwise they are
	// children, killed when this process dies.
	Detach bool
	// Progress, when set, receives a line per step.
	Progress io.Writer
}

// Cluster is a running PostgreSQL and Temporal server.
type Cluster struct {
	o        Options
	bins     binaries
	password string
	cred     *syscall.Credential
	hostPort string

	mu     sync.Mutex
	pg     *proc
	server *proc
}

// proc is one started process: waited on in the background unless
// detached.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

type binaries struct {
	server, sqlTool, pgBin string
}

// Start brings the cluster up: PostgreSQL (initdb on first use), the
// databases and schemas, the server, the namespace and the search
// attributes; it returns once a client can use the namespace.
func Start(ctx context.Context, o Options) (_ *Cluster, err error) {
	if o.Dir == "" {
		return nil, errors.New("cluster: Options.Dir is required")
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if o.PGUser == "" {
		o.PGUser = DefaultPGUser
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	o.Dir = dir
	bins, err := findBinaries(o)
	if err != nil {
		return nil, err
	}
	if o.ConfigDir == "" {
		root, err := devserver.RepoRoot()
		if err != nil {
			return nil, err
		}
		o.ConfigDir = filepath.Join(root, "deploy", "temporal")
	}
	if o.ConfigDir, err = filepath.Abs(o.ConfigDir); err != nil {
		return nil, err
	}
	for _, f := range []string{Environment + ".yaml", "dynamicconfig.yaml"} {
		if _, err := os.Stat(filepath.Join(o.ConfigDir, f)); err != nil {
			return nil, fmt.Errorf("cluster: the server configuration: %w", err)
		}
	}
	for _, p := range o.Ports.fields() {
		if *p == 0 {
			if *p, err = freePort(); err != nil {
				return nil, err
			}
		}
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	c := &Cluster{o: o, bins: bins, hostPort: net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Ports.Frontend))}
	if os.Geteuid() == 0 {
		if c.cred, err = ensureUser(o.PGUser); err != nil {
			return nil, err
		}
		// The data directory's parent is entered by PostgreSQL's user.
		if err := os.Chmod(o.Dir, 0o755); err != nil {
			return nil, err
		}
	}
	if c.password, err = readOrCreatePassword(filepath.Join(o.Dir, passwordFile)); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = c.Stop()
		}
	}()
	if err := c.initdb(ctx); err != nil {
		return nil, err
	}
	if err := c.StartPostgres(ctx); err != nil {
		return nil, err
	}
	if err := c.schemas(ctx); err != nil {
		return nil, err
	}
	if err := c.StartServer(ctx); err != nil {
		return nil, err
	}
	if err := c.namespace(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// HostPort is the frontend's address; it does not change across restarts.
func (c *Cluster) HostPort() string { return c.hostPort }

// Namespace is the namespace Start created.
func (c *Cluster) Namespace() string { return c.o.Namespace }

// Dir is the state directory (absolute).
func (c *Cluster) Dir() string { return c.o.Dir }

// Ports are the cluster's ports, free ones filled in.
func (c *Cluster) Ports() Ports { return c.o.Ports }

// ServerPID and PostgresPID are the running processes' IDs (0: not running).
func (c *Cluster) ServerPID() int { return c.pid(func() *proc { return c.server }) }

// PostgresPID is the postmaster's process ID (0: not running).
func (c *Cluster) PostgresPID() int { return c.pid(func() *proc { return c.pg }) }

func (c *Cluster) pid(f func() *proc) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := f(); p != nil {
		return p.cmd.Process.Pid
	}
	return 0
}

func (c *Cluster) logf(format string, args ...any) {
	if c.o.Progress != nil {
		fmt.Fprintf(c.o.Progress, "cluster: "+format+"\n", args...)
	}
}

// findBinaries locates the server, the SQL tool and PostgreSQL's programs.
func findBinaries(o Options) (binaries, error) {
	var b binaries
	binDir := o.BinDir
	if binDir == "" {
		root, err := devserver.RepoRoot()
		if err != nil {
			return b, err
		}
		binDir = filepath.Join(root, "bin")
	}
	b.server, b.sqlTool = filepath.Join(binDir, ServerBinary), filepath.Join(binDir, SQLToolBinary)
	for _, p := range []string{b.server, b.sqlTool} {
		if _, err := os.Stat(p); err != nil {
			return b, &MissingError{What: "the Temporal server " + ServerVersion + " (" + filepath.Base(p) + ")", Path: p, Hint: "run `make temporal-server` (make cluster and make test build it)"}
		}
	}
	pgBin, err := PGBinDir(o.PGBinDir)
	if err != nil {
		return b, err
	}
	b.pgBin = pgBin
	return b, nil
}

// MissingError says which program is not where it should be and how to
// build or install it.
type MissingError struct{ What, Path, Hint string }

func (e *MissingError) Error() string {
	return fmt.Sprintf("%s is not at %s: %s", e.What, e.Path, e.Hint)
}

// ServerBuilt reports whether bin/ holds the server and the SQL tool
// (nil) or what is missing.
func ServerBuilt() error {
	root, err := devserver.RepoRoot()
	if err != nil {
		return err
	}
	for _, name := range []string{ServerBinary, SQLToolBinary} {
		p := filepath.Join(root, "bin", name)
		if _, err := os.Stat(p); err != nil {
			return &MissingError{What: "the Temporal server " + ServerVersion + " (" + name + ")", Path: p, Hint: "run `make temporal-server` (make cluster and make test build it)"}
		}
	}
	return nil
}

// PGBinDir is dir if given, else $HYBRIDFLOW_PG_BIN, else the newest
// /usr/lib/postgresql/<version>/bin holding initdb.
func PGBinDir(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv("HYBRIDFLOW_PG_BIN")
	}
	if dir == "" {
		matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
		sort.Slice(matches, func(i, j int) bool { return pgMajor(matches[i]) > pgMajor(matches[j]) })
		if len(matches) > 0 {
			dir = filepath.Dir(matches[0])
		}
	}
	if dir == "" {
		return "", &MissingError{What: "PostgreSQL (initdb, postgres, pg_isready)", Path: "/usr/lib/postgresql/*/bin",
			Hint: "install it (`apt-get install postgresql`; make cluster and make test do) or set HYBRIDFLOW_PG_BIN"}
	}
	for _, name := range []string{"initdb", "postgres", "pg_isready"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return "", &MissingError{What: "PostgreSQL's " + name, Path: filepath.Join(dir, name), Hint: "install PostgreSQL's server package or set HYBRIDFLOW_PG_BIN"}
		}
	}
	return dir, nil
}

func pgMajor(path string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return v
}

// ensureUser returns the credential of the unprivileged account name,
// creating it (a system account without a login shell or home) if it does
// not exist.
func ensureUser(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if !errors.As(err, &unknown) {
			return nil, fmt.Errorf("look up user %s: %w", name, err)
		}
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("create the unprivileged user %s for PostgreSQL: %v: %s", name, err, strings.TrimSpace(string(out)))
		}
		if u, err = user.Lookup(name); err != nil {
			return nil, fmt.Errorf("look up user %s after creating it: %w", name, err)
		}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	if uid == 0 {
		return nil, fmt.Errorf("user %s is root; PostgreSQL needs an unprivileged user", name)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// readOrCreatePassword returns the password in path, writing a new random
// one (0600) if the file does not exist.
func readOrCreatePassword(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		if pw := strings.TrimSpace(string(data)); pw != "" {
			return pw, nil
		}
		return "", fmt.Errorf("cluster: %s is empty", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	pw := hex.EncodeToString(b)
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", err
	}
	return pw, nil
}

func (c *Cluster) pgData() string { return filepath.Join(c.o.Dir, pgDataDir) }

// initdb creates PostgreSQL's data directory unless it exists: the
// superuser is DBUser with the cluster's password, TCP connections need
// that password (scram-sha-256), and only loopback is listened on.
func (c *Cluster) initdb(ctx context.Context) error {
	data := c.pgData()
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err == nil {
		return nil
	}
	c.logf("initdb %s", data)
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	// initdb reads the password from a file its user can read.
	pwFile := filepath.Join(c.o.Dir, "pg-initdb-password")
	if err := os.WriteFile(pwFile, []byte(c.password+"\n"), 0o600); err != nil {
		return err
	}
	defer os.Remove(pwFile)
	if c.cred != nil {
		for _, p := range []string{data, pwFile} {
			if err := os.Chown(p, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
				return err
			}
		}
	}
	cmd := exec.CommandContext(ctx, filepath.Join(c.bins.pgBin, "initdb"), "-D", data, "-U", DBUser, "--pwfile", pwFile,
		"--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C")
	cmd.Dir = c.o.Dir
	c.asPGUser(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		if c.cred != nil && strings.Contains(string(out), "Permission denied") {
			return fmt.Errorf("initdb as user %s: %v: %s (every directory above %s must be searchable by %s)", c.o.PGUser, err, lastLines(out, 5), c.o.Dir, c.o.PGUser)
		}
		return fmt.Errorf("initdb: %v: %s", err, lastLines(out, 10))
	}
	return nil
}

func (c *Cluster) asPGUser(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	if c.cred != nil {
		cmd.SysProcAttr.Credential = c.cred
	}
}

// StartPostgres starts PostgreSQL on its data directory and waits until it
// accepts connections. It is an error to start it while it runs.
func (c *Cluster) StartPostgres(ctx context.Context) error {
	args := []string{"-D", c.pgData(), "-p", strconv.Itoa(c.o.Ports.Postgres),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
		// Temporal's two stores hold 30 connections together; the server
		// restarted after a SIGKILL opens new ones before PostgreSQL has
		// noticed the old ones gone.
		"-c", "max_connections=200"}
	c.logf("postgres on 127.0.0.1:%d", c.o.Ports.Postgres)
	p, err := c.start(filepath.Join(c.bins.pgBin, "postgres"), args, nil, PostgresLog, true)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.pg != nil {
		c.mu.Unlock()
		c.kill(p, syscall.SIGKILL)
		return errors.New("cluster: PostgreSQL is already running")
	}
	c.pg = p
	c.mu.Unlock()
	return c.waitPostgres(ctx, p)
}

func (c *Cluster) waitPostgres(ctx context.Context, p *proc) error {
	isready := filepath.Join(c.bins.pgBin, "pg_isready")
	for {
		out, err := exec.CommandContext(ctx, isready, "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(c.o.Ports.Postgres), "-U", DBUser, "-d", "postgres").CombinedOutput()
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("cluster: PostgreSQL exited while starting: %s", c.tail(PostgresLog, 10))
		case <-ctx.Done():
			return fmt.Errorf("cluster: PostgreSQL at 127.0.0.1:%d not ready: %w (%s)", c.o.Ports.Postgres, ctx.Err(), strings.TrimSpace(string(out)))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// start runs a program with its output appended to logName in Dir.
func (c *Cluster) start(path string, args, env []string, logName string, asPG bool) (*proc, error) {
	log, err := os.OpenFile(filepath.Join(c.o.Dir, logName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = c.o.Dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	if c.o.Detach {
		cmd.SysProcAttr.Setsid = true
	} else {
		// A child dies with this process (a test that panics leaves
		// nothing listening).
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if asPG {
		c.asPGUser(cmd)
	}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{}), log: log}
	go func() {
		_ = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	return p, nil
}

// schemas creates both databases and brings their schemas to the server's
// version, as the compose stack's temporal-schema job does: safe to run on
// every start.
func (c *Cluster) schemas(ctx context.Context) error {
	c.logf("schemas (temporal-sql-tool)")
	base := []string{"--plugin", "postgres12", "--ep", "127.0.0.1", "-p", strconv.Itoa(c.o.Ports.Postgres), "-u", DBUser}
	env := []string{"SQL_PASSWORD=" + c.password}
	for _, db := range Databases {
		// The schemas are embedded in the tool (its versioned/ directory).
		dir := "postgresql/v12/temporal"
		if db == "temporal_visibility" {
			dir = "postgresql/v12/visibility"
		}
		for _, step := range [][]string{
			{"--db", db, "create-database"},
			{"--db", db, "setup-schema", "-v", "0.0"},
			{"--db", db, "update-schema", "--schema-name", dir},
		} {
			cmd := exec.CommandContext(ctx, c.bins.sqlTool, append(append([]string{}, base...), step...)...)
			cmd.Env = append(os.Environ(), env...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				return fmt.Errorf("temporal-sql-tool %s: %v: %s", strings.Join(step, " "), err, lastLines(out, 10))
			}
		}
	}
	return nil
}

// serverEnv is what the configuration template reads.
func (c *Cluster) serverEnv() []string {
	p := c.o.Ports
	env := []string{
		"TEMPORAL_DB_HOST=127.0.0.1",
		"TEMPORAL_DB_PORT=" + strconv.Itoa(p.Postgres),
		"TEMPORAL_DB_USER=" + DBUser,
		"TEMPORAL_DB_PASSWORD=" + c.password,
		"TEMPORAL_BIND_IP=127.0.0.1",
		"TEMPORAL_FRONTEND_PORT=" + strconv.Itoa(p.Frontend),
		"TEMPORAL_HISTORY_PORT=" + strconv.Itoa(p.History),
		"TEMPORAL_MATCHING_PORT=" + strconv.Itoa(p.Matching),
		"TEMPORAL_WORKER_PORT=" + strconv.Itoa(p.Worker),
		"TEMPORAL_FRONTEND_MEMBERSHIP_PORT=" + strconv.Itoa(p.FrontendMembership),
		"TEMPORAL_HISTORY_MEMBERSHIP_PORT=" + strconv.Itoa(p.HistoryMembership),
		"TEMPORAL_MATCHING_MEMBERSHIP_PORT=" + strconv.Itoa(p.MatchingMembership),
		"TEMPORAL_WORKER_MEMBERSHIP_PORT=" + strconv.Itoa(p.WorkerMembership),
		"TEMPORAL_DYNAMIC_CONFIG=" + filepath.Join(c.o.ConfigDir, "dynamicconfig.yaml"),
	}
	if c.o.LogLevel != "" {
		env = append(env, "TEMPORAL_LOG_LEVEL="+c.o.LogLevel)
	}
	return env
}

// StartServer starts the Temporal server and waits until its frontend
// answers (and, once the namespace exists, until the namespace can be
// described). It is an error to start it while it runs.
func (c *Cluster) StartServer(ctx context.Context) error {
	c.logf("temporal-server on %s", c.hostPort)
	p, err := c.start(c.bins.server, ServerArgs(c.o.ConfigDir), c.serverEnv(), ServerLog, false)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.server != nil {
		c.mu.Unlock()
		c.kill(p, syscall.SIGKILL)
		return errors.New("cluster: the server is already running")
	}
	c.server = p
	c.mu.Unlock()
	if c.o.Detach {
		if err := os.WriteFile(filepath.Join(c.o.Dir, PIDFile), []byte(strconv.Itoa(p.cmd.Process.Pid)+"\n"), 0o644); err != nil {
			return err
		}
	}
	return c.waitServer(ctx, p)
}

// waitServer dials until the frontend is healthy and the namespace (if it
// exists yet) can be described: right after a restart the frontend
// answers health checks before it can serve the namespace.
func (c *Cluster) waitServer(ctx context.Context, p *proc) error {
	var last error
	for {
		last = c.ping(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("cluster: the server exited while starting (last error: %v): %s", last, c.tail(ServerLog, 15))
		case <-ctx.Done():
			return fmt.Errorf("cluster: the server at %s is not ready: %w (last error: %v)", c.hostPort, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (c *Cluster) ping(ctx context.Context) error {
	cl, err := c.dial("")
	if err != nil {
		return err
	}
	defer cl.Close()
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := cl.CheckHealth(dctx, &client.CheckHealthRequest{}); err != nil {
		return err
	}
	_, err = cl.WorkflowService().DescribeNamespace(dctx, &workflowservice.DescribeNamespaceRequest{Namespace: c.o.Namespace})
	var nf *serviceerror.NamespaceNotFound
	if errors.As(err, &nf) {
		return nil // not created yet: Start creates it next
	}
	return err
}

func (c *Cluster) dial(namespace string) (client.Client, error) {
	if namespace == "" {
		namespace = c.o.Namespace
	}
	return client.Dial(client.Options{HostPort: c.hostPort, Namespace: namespace, Logger: logging.NewTemporal(zap.NewNop())})
}

// namespace registers the namespace unless it exists, adds the search
// attributes it lacks, and waits until both are visible.
func (c *Cluster) namespace(ctx context.Context) error {
	cl, err := c.dial("")
	if err != nil {
		return err
	}
	defer cl.Close()
	ns := c.o.Namespace
	ws := cl.WorkflowService()
	if _, err := ws.DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: ns}); err != nil {
		var nf *serviceerror.NamespaceNotFound
		if !errors.As(err, &nf) {
			return fmt.Errorf("describe namespace %s: %w", ns, err)
		}
		c.logf("namespace %s", ns)
		_, err := ws.RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{Namespace: ns,
			WorkflowExecutionRetentionPeriod: durationpb.New(Retention)})
		var exists *serviceerror.NamespaceAlreadyExists
		if err != nil && !errors.As(err, &exists) {
			return fmt.Errorf("register namespace %s: %w", ns, err)
		}
	}
	// A new namespace is served once every service's namespace cache has
	// refreshed.
	want := map[string]enumspb.IndexedValueType{}
	for name, typ := range workflows.SearchAttributes {
		want[name] = typ
	}
	added := false
	for {
		err := c.searchAttributes(ctx, cl, want, &added)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: namespace %s and its search attributes: %w (last error: %v)", ns, ctx.Err(), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (c *Cluster) searchAttributes(ctx context.Context, cl client.Client, want map[string]enumspb.IndexedValueType, added *bool) error {
	ops := cl.OperatorService()
	list, err := ops.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: c.o.Namespace})
	if err != nil {
		return err
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range want {
		got, ok := list.GetCustomAttributes()[name]
		switch {
		case !ok:
			missing[name] = typ
		case got != typ:
			return fmt.Errorf("search attribute %s is %v in namespace %s, hybridflow needs %v", name, got, c.o.Namespace, typ)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if *added {
		return fmt.Errorf("search attributes %v not listed yet", keys(missing))
	}
	c.logf("search attributes %v", keys(missing))
	if _, err := ops.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: c.o.Namespace, SearchAttributes: missing}); err != nil {
		var exists *serviceerror.AlreadyExists
		if !errors.As(err, &exists) {
			return fmt.Errorf("add search attributes: %w", err)
		}
	}
	*added = true
	return fmt.Errorf("search attributes %v just added", keys(missing))
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// KillServer SIGKILLs the server and waits until it is gone: no shutdown
// runs, as in a crash.
func (c *Cluster) KillServer() error {
	c.mu.Lock()
	p := c.server
	c.server = nil
	c.mu.Unlock()
	c.kill(p, syscall.SIGKILL)
	return nil
}

// CrashPostgres stops PostgreSQL in immediate mode (SIGQUIT to the
// postmaster: every process exits without a checkpoint, and the next start
// recovers from the write-ahead log, as after a crash) and waits until it
// is gone.
func (c *Cluster) CrashPostgres() error {
	c.mu.Lock()
	p := c.pg
	c.pg = nil
	c.mu.Unlock()
	c.kill(p, syscall.SIGQUIT)
	return nil
}

func (c *Cluster) kill(p *proc, sig syscall.Signal) {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	<-p.done
}

// stopGracefully signals p and waits up to grace, then kills it.
func (c *Cluster) stopGracefully(p *proc, sig syscall.Signal, grace time.Duration) {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Stop stops the server (interrupt, then kill after 15 s) and PostgreSQL
// (fast shutdown: clients disconnected, a checkpoint written).
func (c *Cluster) Stop() error {
	c.mu.Lock()
	srv, pg := c.server, c.pg
	c.server, c.pg = nil, nil
	c.mu.Unlock()
	c.stopGracefully(srv, syscall.SIGINT, 15*time.Second)
	_ = os.Remove(filepath.Join(c.o.Dir, PIDFile))
	c.stopGracefully(pg, syscall.SIGINT, 30*time.Second)
	return nil
}

// Release lets a detached cluster's processes run on after this program
// exits (make cluster); Stop is then `make stop`'s.
func (c *Cluster) Release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.server, c.pg = nil, nil
}

// PostgresVersion is what `postgres --version` says ("PostgreSQL 15.18"),
// or "PostgreSQL" if it cannot say.
func (c *Cluster) PostgresVersion() string {
	out, err := exec.Command(filepath.Join(c.bins.pgBin, "postgres"), "--version").Output()
	if err != nil {
		return "PostgreSQL"
	}
	// "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
	f := strings.Fields(string(out))
	if len(f) >= 3 {
		return "PostgreSQL " + f[2]
	}
	return "PostgreSQL"
}

// tail is the last n lines of a log in Dir, for error messages.
func (c *Cluster) tail(name string, n int) string {
	data, err := os.ReadFile(filepath.Join(c.o.Dir, name))
	if err != nil {
		return "(no " + name + ")"
	}
	return name + " (last lines):\n" + lastLines(data, n)
}

func lastLines(data []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// freePort finds a free loopback port below 32768: Temporal stores the
// membership ports in PostgreSQL as a smallint, and the kernel's
// ephemeral ports (what port 0 gives) lie above it.
func freePort() (int, error) {
	var b [2]byte
	for range 200 {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		port := 20000 + (int(b[0])<<8|int(b[1]))%12000
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		return port, nil
	}
	return 0, errors.New("cluster: no free port between 20000 and 32000")
}
