package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hybridflow/hybridflow/internal/cloud"
)

// WorkerConfig is how a worker or the operator CLI reaches Temporal and the
// systems it drives. Paths (TLS files, the simulated world, file:
// references) are used as written, that is relative to the working
// directory, so that a config in configs/ can name configs/sim/demo.yaml
// when run from the repository root.
type WorkerConfig struct {
	// File is the path the config was read from ("" for defaults only).
	File     string
	Temporal TemporalConfig
	// Roles are the task queues this worker serves; never empty.
	Roles    []Role
	LogLevel string // debug | info | warn | error
	// Simulate, when set, makes the worker serve a simulated world on
	// loopback instead of reaching Microsoft 365 and Exchange.
	Simulate *SimulateConfig
	// Credentials by name; tenants refer to them by that name.
	Credentials map[string]Credential
	// OnPremSites and LyncSites are onprem.sites and lync.sites: how to
	// reach PowerShell at each site this worker may serve.
	OnPremSites    map[string]SiteConfig
	LyncSites      map[string]SiteConfig
	MetricsAddress string // listen address for metrics; "" = off
	// Pollers are each worker's concurrent task polls; 0 = the
	// worker's default (workerhost.DefaultWorkflowTaskPollers / ...ActivityTaskPollers).
	Pollers Pollers
	// Endpoints, when set, replace the cloud's Entra authority, Graph and
	// Exchange Online endpoints (nil: each tenant's cloud decides).
	Endpoints *EndpointsConfig
	// InventoryDir is inventory.dir: the only directory the worker reads
	// inventory files from (a rollout of more than a page of tenants
	// names its file). "" means the worker reads none.
	InventoryDir string
	// ExchangeOnlineHosts are the Exchange Online hosts a target may name
	// (an inventory's overrides.exchange_online_host) besides the hosts of
	// the clouds the product knows; lower case.
	ExchangeOnlineHosts []string
}

// EndpointsConfig is the endpoints block: the service endpoints a real
// worker talks to instead of the ones its tenants' clouds name, for a
// private endpoint or a stand-in of the Microsoft services. The three URLs
// go together; tokens are still requested for the cloud's scopes.
type EndpointsConfig struct {
	// AuthorityHost is the Entra authority tokens are requested from,
	// e.g. https://login.microsoftonline.com/.
	AuthorityHost string
	// Graph is the Graph root with its version, e.g.
	// https://graph.microsoft.com/v1.0.
	Graph string
	// ExchangeOnline is the Exchange Online root the admin API paths are
	// appended to, e.g. https://outlook.office365.com.
	ExchangeOnline string
	// CAFile is a PEM file of extra CA certificates trusted, besides the
	// system roots, for these endpoints only ("" = system roots only).
	CAFile string
}

// Pollers is the pollers block: how many polls each worker keeps open.
type Pollers struct {
	WorkflowTasks int
	ActivityTasks int
}

// MaxPollers bounds pollers.*: each poll is an open long-poll request to
// the frontend, and past a few dozen they only add load.
const MaxPollers = 100

// TemporalConfig is the Temporal client connection.
type TemporalConfig struct {
	Address   string // host:port
	Namespace string
	Identity  string // "" = the SDK's default (pid@host)
	// TLS is nil for a plaintext connection (the local dev server). The SDK
	// turns TLS on by itself when APIKey is set.
	TLS *TLSConfig
	// APIKey is a credential reference (env:NAME or file:PATH), "" for none;
	// resolve it with ResolveSecret.
	APIKey string
	// Codec, when set, encrypts every payload (codec.go); nil = plaintext.
	Codec *CodecConfig
	// RequireEncryption is temporal.require_encryption: the worker decodes
	// only payloads sealed by the codec, so a payload written without the
	// keys (a forged workflow input, signal or activity argument) is
	// refused. It needs Codec; the loader copies it into Codec.Required.
	RequireEncryption bool
	// GRPCCompression is auto ("" too), gzip or none: see
	// temporalx.Compression.
	GRPCCompression string
}

// GRPCCompressions are temporal.grpc_compression's values.
var GRPCCompressions = []string{"auto", "gzip", "none"}

func grpcCompressionMsg(s string) string {
	if contains(GRPCCompressions, s) {
		return ""
	}
	return fmt.Sprintf("unknown gRPC compression %q (valid: %s)", s, strings.Join(GRPCCompressions, ", "))
}

// TLSConfig is TLS or mTLS to Temporal. All fields are optional: an empty
// block means TLS with the system roots.
type TLSConfig struct {
	CAFile     string
	CertFile   string // with KeyFile: client certificate for mTLS
	KeyFile    string
	ServerName string
}

// SimulateConfig selects the simulated world.
type SimulateConfig struct {
	World string // path of the world YAML
	Seed  int64
}

// SiteConfig is one on-premises (Exchange or Lync) site.
type SiteConfig struct {
	Shell ShellConfig
}

// ShellConfig starts the long-lived PowerShell host of a site.
type ShellConfig struct {
	// Command is the argv of the PowerShell host. One argument holds
	// ScriptPlaceholder, which the worker replaces with the path of a
	// private copy of the bootstrap script (run with -File): standard
	// input carries the host protocol, so the script cannot travel there.
	Command []string
	// Session is SessionLocalSnapin or SessionRemote.
	Session string
	// ConnectionURI is the remote PowerShell endpoint, set only for
	// SessionRemote. http is allowed because Exchange remote PowerShell over
	// Kerberos is normally served on http and encrypted by Kerberos itself.
	ConnectionURI string
	// CallTimeout bounds one cmdlet call.
	CallTimeout time.Duration
	// StartTimeout bounds starting the host up to its ready line, session
	// set-up included (Import-PSSession takes a while).
	StartTimeout time.Duration
	// Env is added to the host's environment, which otherwise holds only
	// the operating system's variables PowerShell needs (never the
	// worker's own, which carry secrets). Plain values only; a name the
	// minimal environment has is overridden.
	Env map[string]string
	// PoolSize is how many hosts (each with its own session) the site may
	// run at once, 1 to MaxShellPoolSize; a call finding them all busy
	// waits for one.
	PoolSize int
}

// Shell session kinds.
const (
	SessionLocalSnapin = "local-snapin"
	SessionRemote      = "remote"
)

// Credential is a named way for a worker to obtain tokens. It carries
// references only; Secret, Certificate and CertificatePassword are resolved
// with ResolveSecret when the credential is used.
type Credential struct {
	Name                string
	Kind                CredentialKind
	ClientID            string // application (client) id
	Secret              string // reference, client-secret only
	Certificate         string // reference to PEM or PKCS#12, client-certificate only
	CertificatePassword string // reference, optional, client-certificate only
	// Clouds, when set, are the only clouds (canonical names) whose
	// tenants may use this credential: an Entra application is registered
	// in one cloud instance and signs in to that instance's tenants only.
	Clouds []string
}

// CredentialKind mirrors the azidentity credential types.
type CredentialKind string

// Credential kinds.
const (
	CredentialClientSecret      CredentialKind = "client-secret"
	CredentialClientCertificate CredentialKind = "client-certificate"
	CredentialManagedIdentity   CredentialKind = "managed-identity"
	CredentialWorkloadIdentity  CredentialKind = "workload-identity"
	CredentialAzureCLI          CredentialKind = "azure-cli"
)

var credentialKinds = []string{
	string(CredentialClientSecret), string(CredentialClientCertificate), string(CredentialManagedIdentity),
	string(CredentialWorkloadIdentity), string(CredentialAzureCLI),
}

// RoleKind is the kind of task queue a worker serves.
type RoleKind string

// Role kinds.
const (
	RoleCloud  RoleKind = "cloud"  // workflows, Graph and Exchange Online activities
	RoleOnPrem RoleKind = "onprem" // on-prem Exchange activities of one site
	RoleLync   RoleKind = "lync"   // Lync/Skype activities of one site
)

// Role is one task queue a worker serves: cloud, onprem:<site> or
// lync:<site>.
type Role struct {
	Kind RoleKind
	Site string // "" for RoleCloud
}

// String returns the role in the syntax ParseRole reads.
func (r Role) String() string {
	if r.Site == "" {
		return string(r.Kind)
	}
	return string(r.Kind) + ":" + r.Site
}

// ParseRole reads cloud, onprem:<site> or lync:<site>.
func ParseRole(s string) (Role, error) {
	kind, site, hasSite := strings.Cut(s, ":")
	switch RoleKind(kind) {
	case RoleCloud:
		if hasSite {
			return Role{}, fmt.Errorf("role %q: the cloud role takes no site", s)
		}
		return Role{Kind: RoleCloud}, nil
	case RoleOnPrem, RoleLync:
		if !hasSite {
			return Role{}, fmt.Errorf("role %q needs a site: %s:<site>", s, kind)
		}
		if m := siteMsg(site); m != "" {
			return Role{}, fmt.Errorf("role %q: %s", s, m)
		}
		return Role{Kind: RoleKind(kind), Site: site}, nil
	}
	return Role{}, fmt.Errorf("%q is not a role (want cloud, onprem:<site> or lync:<site>)", s)
}

// Defaults for a worker config; an absent file means all of them.
const (
	DefaultTemporalAddress = "127.0.0.1:7233"
	DefaultNamespace       = "default"
	DefaultLogLevel        = "info"
	defaultCallTimeout     = 2 * time.Minute
	// DefaultStartTimeout is shell.start_timeout's default; it equals the
	// shell package's own default (a test keeps them equal).
	DefaultStartTimeout = 2 * time.Minute
	defaultSeed         = 1
)

// A site's shell.pool_size: its default, and its bound (each host holds a
// remote session, and Exchange limits one account's concurrent sessions).
const (
	DefaultShellPoolSize = 1
	MaxShellPoolSize     = 8
)

// StepStartToClose bounds one attempt of an on-prem or Lync step activity
// (the workflows' default start-to-close timeout). It lives here so that
// the config can be checked against it: a site's start_timeout plus
// call_timeout must fit in one attempt, or Temporal would time the
// attempt out while the shell still waits for its host.
const StepStartToClose = 5 * time.Minute

// ScriptPlaceholder in a shell command is replaced by the bootstrap
// script's path; it equals the shell package's placeholder (a test keeps
// them equal, so this package need not import the shell).
const ScriptPlaceholder = "{script}"

// defaultShellCommand is Windows PowerShell because the Exchange and Lync
// management snap-ins/modules are built for it; pwsh works with remote
// sessions. The script runs with -File, the way PowerShell runs a script
// file, so standard input stays free for the host protocol.
var defaultShellCommand = []string{"powershell.exe", "-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-File", ScriptPlaceholder}

// shellCommandMsg says why an argv cannot start the PowerShell host, or "".
// The bootstrap must be given as a script file: with -Command PowerShell
// reads the protocol's JSON lines from standard input as source text, and
// -EncodedCommand puts the script on the command line, where it is
// bounded in length and alarms endpoint protection.
func shellCommandMsg(argv []string) string {
	for _, a := range argv[1:] {
		if inlineScriptSwitch(a) {
			return fmt.Sprintf("argument %q makes PowerShell read its script inline or from standard input; run the bootstrap with -File %s instead", a, ScriptPlaceholder)
		}
	}
	n := 0
	for _, a := range argv {
		n += strings.Count(a, ScriptPlaceholder)
	}
	switch {
	case n == 0:
		return fmt.Sprintf("no %s placeholder: the bootstrap script would never reach PowerShell; end the command with -File %s", ScriptPlaceholder, ScriptPlaceholder)
	case n > 1:
		return fmt.Sprintf("%s appears %d times; give it once, after -File", ScriptPlaceholder, n)
	}
	return ""
}

// inlineScriptSwitch reports whether a PowerShell argument is -Command or
// -EncodedCommand under any of the spellings powershell.exe and pwsh
// accept: a leading -, -- or /, any unambiguous prefix, and the short
// aliases -c, -e and -ec.
func inlineScriptSwitch(arg string) bool {
	a := strings.ToLower(arg)
	switch {
	case strings.HasPrefix(a, "--"):
		a = a[2:]
	case strings.HasPrefix(a, "-"), strings.HasPrefix(a, "/"):
		a = a[1:]
	default:
		return false
	}
	if i := strings.IndexByte(a, ':'); i >= 0 {
		a = a[:i]
	}
	if a == "" {
		return false
	}
	if a == "c" || a == "e" || a == "ec" {
		return true
	}
	return (len(a) >= 2 && strings.HasPrefix("command", a)) || (len(a) >= 2 && strings.HasPrefix("encodedcommand", a))
}

var logLevels = []string{"debug", "info", "warn", "error"}

// namespaceRE is deliberately looser than any one deployment's rule (Temporal
// Cloud uses name.account); it only keeps out what cannot be a namespace.
var namespaceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$`)

func namespaceMsg(s string) string {
	if namespaceRE.MatchString(s) {
		return ""
	}
	return fmt.Sprintf("%q is not a namespace name (letters, digits, dots, hyphens, underscores)", s)
}

func logLevelMsg(s string) string {
	if contains(logLevels, s) {
		return ""
	}
	return fmt.Sprintf("unknown log level %q (valid: %s)", s, strings.Join(logLevels, ", "))
}

// LoadWorkerConfig reads and validates a worker config, then applies the
// HYBRIDFLOW_* environment overrides looked up with getenv (nil means
// os.Getenv). path "" means no file: defaults plus environment.
func LoadWorkerConfig(path string, getenv func(string) string) (*WorkerConfig, error) {
	var data []byte
	if path != "" {
		var err error
		if data, err = readCapped(path, MaxWorkerConfigBytes, workerWhat, workerHint); err != nil {
			if errors.As(err, new(Problems)) {
				return nil, err
			}
			return nil, fmt.Errorf("read worker config: %w", err)
		}
	}
	return ParseWorkerConfig(path, data, getenv)
}

// ParseWorkerConfig validates worker config YAML (empty data = defaults) and
// applies the environment overrides (getenv nil means os.Getenv). file is
// used only in problem messages. On any problem it returns nil and a
// Problems error.
func ParseWorkerConfig(file string, data []byte, getenv func(string) string) (*WorkerConfig, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	d := &decoder{file: file}
	cfg := &WorkerConfig{
		File:        file,
		Temporal:    TemporalConfig{Address: DefaultTemporalAddress, Namespace: DefaultNamespace},
		Roles:       []Role{{Kind: RoleCloud}},
		LogLevel:    DefaultLogLevel,
		Credentials: map[string]Credential{},
		OnPremSites: map[string]SiteConfig{},
		LyncSites:   map[string]SiteConfig{},
	}
	// where remembers the source of values that cross-checks complain
	// about, since the environment may have replaced them.
	where := map[string]Problem{}
	if !d.sizeOK(data, MaxWorkerConfigBytes, workerWhat, workerHint) {
		return nil, d.err()
	}
	if root := d.parse(data); root != nil {
		if !d.guard(root, maxWorkerString) {
			return nil, d.err()
		}
		d.worker(field{node: root}, cfg, where)
	}
	d.applyEnv(cfg, getenv, where)
	d.crossCheck(cfg, where)
	if err := d.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func (d *decoder) at(f field) Problem { return Problem{File: d.file, Line: f.line(), Field: f.path} }

func (d *decoder) worker(root field, cfg *WorkerConfig, where map[string]Problem) {
	fs, ok := d.mapping(root, "temporal", "roles", "log_level", "simulate", "credentials", "onprem", "lync", "metrics_address", "pollers", "endpoints",
		"inventory", "exchange_online_hosts")
	if !ok {
		return
	}
	d.temporal(fs.get("temporal"), &cfg.Temporal, where)

	if rf := fs.get("roles"); rf.present() {
		where["roles"] = d.at(rf)
		items := d.list(rf)
		if rf.node.Kind == yaml.SequenceNode && len(rf.node.Content) == 0 {
			d.errf(rf, "no roles; list at least one (cloud, onprem:<site>, lync:<site>)")
		}
		var roles []Role
		seen := map[Role]int{}
		for _, item := range items {
			s, ok := d.optional(item)
			if !ok {
				continue
			}
			r, err := ParseRole(s)
			if err != nil {
				d.errf(item, "%v", err)
				continue
			}
			if line, dup := seen[r]; dup {
				d.errf(item, "role %s listed twice (first at line %d)", r, line)
				continue
			}
			seen[r] = item.line()
			where["role:"+r.String()] = d.at(item)
			roles = append(roles, r)
		}
		if len(roles) > 0 {
			cfg.Roles = roles
		}
	}

	if lf := fs.get("log_level"); lf.present() {
		if v, ok := d.optional(lf); ok && d.check(lf, logLevelMsg(v)) {
			cfg.LogLevel = v
		}
	}

	// "simulate:" with nothing under it is kept as a request to simulate,
	// so that the missing world is reported rather than silently ignored.
	if sf := fs.get("simulate"); sf.node != nil {
		sim := &SimulateConfig{Seed: defaultSeed}
		if ss, ok := d.mapping(sf, "world", "seed"); ok || !sf.present() {
			if v, ok := d.required(ss.get("world")); ok {
				sim.World = v
			}
			if seed, ok := d.int64(ss.get("seed")); ok {
				sim.Seed = seed
			}
		}
		cfg.Simulate = sim
	}

	for _, e := range d.mapEntries(fs.get("credentials")) {
		if !d.check(e.key, nameMsg(e.name)) {
			continue
		}
		if c, ok := d.credential(e.val); ok {
			c.Name = e.name
			cfg.Credentials[e.name] = c
		}
	}

	d.sites(fs.get("onprem"), cfg.OnPremSites)
	d.sites(fs.get("lync"), cfg.LyncSites)

	if mf := fs.get("metrics_address"); mf.present() {
		if v, ok := d.optional(mf); ok && d.check(mf, hostPortMsg(v, true)) {
			cfg.MetricsAddress = v
		}
	}

	if ps, ok := d.mapping(fs.get("pollers"), "workflow_tasks", "activity_tasks"); ok {
		cfg.Pollers.WorkflowTasks = d.pollerCount(ps.get("workflow_tasks"), MinWorkflowTaskPollers)
		cfg.Pollers.ActivityTasks = d.pollerCount(ps.get("activity_tasks"), 1)
	}

	if ef := fs.get("endpoints"); ef.node != nil {
		where["endpoints"] = d.at(ef)
		cfg.Endpoints = d.endpoints(ef)
	}

	if is, ok := d.mapping(fs.get("inventory"), "dir"); ok {
		df := is.get("dir")
		if v, ok := d.required(df); ok && d.check(df, inventoryDirMsg(v)) {
			cfg.InventoryDir = v
		}
	}

	hf := fs.get("exchange_online_hosts")
	seenHost := map[string]int{}
	for _, item := range d.list(hf) {
		v, ok := d.optional(item)
		if !ok || !d.check(item, domainMsg(v)) {
			continue
		}
		v = strings.ToLower(v)
		if line, dup := seenHost[v]; dup {
			d.errf(item, "host %s listed twice (first at line %d)", v, line)
			continue
		}
		seenHost[v] = item.line()
		cfg.ExchangeOnlineHosts = append(cfg.ExchangeOnlineHosts, v)
	}
}

// inventoryDirMsg says why inventory.dir cannot be the directory rollouts
// read inventories from, or "". The root of a file system would confine
// nothing.
func inventoryDirMsg(s string) string {
	switch {
	case strings.TrimSpace(s) == "":
		return "empty path; give the directory the worker may read inventory files from"
	case strings.ContainsRune(s, 0):
		return "contains a NUL character"
	}
	if c := filepath.Clean(s); c == filepath.VolumeName(c)+string(filepath.Separator) || c == "/" {
		return fmt.Sprintf("%q is the root of the file system, which confines nothing; give the directory that holds the inventories", s)
	}
	return ""
}

// boolean decodes a YAML boolean (true / false).
func (d *decoder) boolean(f field) (bool, bool) {
	if !f.present() {
		return false, false
	}
	if f.node.Kind != yaml.ScalarNode || f.node.Tag != "!!bool" {
		d.errf(f, "must be true or false")
		return false, false
	}
	v, err := strconv.ParseBool(f.node.Value)
	if err != nil {
		// YAML 1.1 spellings (yes, on) that yaml.v3 tags as booleans.
		d.errf(f, "must be true or false")
		return false, false
	}
	return v, true
}

// endpoints decodes the endpoints block. The three URLs go together: a
// worker with only some of them replaced would send a tenant's tokens to
// one place and its requests to another.
func (d *decoder) endpoints(f field) *EndpointsConfig {
	e := &EndpointsConfig{}
	fs, ok := d.mapping(f, "authority_host", "graph", "exchange_online", "ca_file")
	if !ok {
		if !f.present() {
			d.errf(f, "empty endpoints block; give authority_host, graph and exchange_online, or leave endpoints out")
		}
		return e
	}
	urls := []struct {
		key string
		dst *string
	}{{"authority_host", &e.AuthorityHost}, {"graph", &e.Graph}, {"exchange_online", &e.ExchangeOnline}}
	var given, missing []string
	for _, u := range urls {
		uf := fs.get(u.key)
		if !uf.present() {
			missing = append(missing, u.key)
			continue
		}
		given = append(given, u.key)
		if v, ok := d.optional(uf); ok && d.check(uf, urlMsg(v, "https")) {
			*u.dst = v
		}
	}
	if len(given) > 0 {
		for _, m := range missing {
			d.errf(fs.get(m), "required with %s: the endpoints authority_host, graph and exchange_online are replaced together or not at all", strings.Join(given, " and "))
		}
	}
	cf := fs.get("ca_file")
	if v, ok := d.optional(cf); ok {
		switch {
		case strings.TrimSpace(v) == "":
			d.errf(cf, "empty path; leave ca_file out to trust the system roots only")
		case len(given) == 0:
			d.errf(cf, "only used with authority_host, graph and exchange_online, which are missing")
		default:
			e.CAFile = v
		}
	} else if len(given) == 0 && !cf.present() {
		d.errf(f, "give authority_host, graph and exchange_online, or leave endpoints out")
	}
	return e
}

// MinWorkflowTaskPollers is the fewest workflow task polls the Temporal Go
// SDK accepts: one of them serves the worker's sticky queue, so worker.New
// panics when given 1.
const MinWorkflowTaskPollers = 2

// pollerCount decodes one pollers.* value; absent is 0 (the default).
func (d *decoder) pollerCount(f field, lowest int64) int {
	v, ok := d.int64(f)
	if !ok {
		return 0
	}
	if v < lowest || v > MaxPollers {
		d.errf(f, "must be between %d and %d (absent: the worker's default)", lowest, MaxPollers)
		return 0
	}
	return int(v)
}

func (d *decoder) temporal(f field, t *TemporalConfig, where map[string]Problem) {
	fs, ok := d.mapping(f, "address", "namespace", "identity", "tls", "api_key", "codec", "grpc_compression", "require_encryption")
	if !ok {
		return
	}
	if af := fs.get("address"); af.present() {
		if v, ok := d.optional(af); ok && d.check(af, hostPortMsg(v, false)) {
			t.Address = v
		}
	}
	if nf := fs.get("namespace"); nf.present() {
		if v, ok := d.optional(nf); ok && d.check(nf, namespaceMsg(v)) {
			t.Namespace = v
		}
	}
	if v, ok := d.optional(fs.get("identity")); ok {
		t.Identity = v
	}
	// "tls:" with nothing under it still means "use TLS".
	if tf := fs.get("tls"); tf.node != nil {
		t.TLS = &TLSConfig{}
		where["temporal.tls"] = d.at(tf)
		if ts, ok := d.mapping(tf, "ca_file", "cert_file", "key_file", "server_name"); ok {
			t.TLS.CAFile, _ = d.optional(ts.get("ca_file"))
			t.TLS.CertFile, _ = d.optional(ts.get("cert_file"))
			t.TLS.KeyFile, _ = d.optional(ts.get("key_file"))
			sn := ts.get("server_name")
			if v, ok := d.optional(sn); ok && d.check(sn, hostMsg(v)) {
				t.TLS.ServerName = v
			}
		}
	}
	kf := fs.get("api_key")
	if v, ok := d.optional(kf); ok && d.check(kf, refMsg(v)) {
		t.APIKey = v
	}
	t.Codec = d.codec(fs.get("codec"))
	if rf := fs.get("require_encryption"); rf.present() {
		where["temporal.require_encryption"] = d.at(rf)
		t.RequireEncryption, _ = d.boolean(rf)
	}
	if cf := fs.get("grpc_compression"); cf.present() {
		if v, ok := d.optional(cf); ok && d.check(cf, grpcCompressionMsg(v)) {
			t.GRPCCompression = v
		}
	}
}

func (d *decoder) credential(f field) (Credential, bool) {
	var c Credential
	fs, ok := d.mapping(f, "kind", "client_id", "secret", "certificate", "certificate_password", "clouds")
	if !ok {
		if !f.present() {
			d.errf(f, "must be a mapping with at least kind")
		}
		return c, false
	}
	valid := true
	kf := fs.get("kind")
	if v, ok := d.required(kf); !ok {
		valid = false
	} else if !contains(credentialKinds, v) {
		d.errf(kf, "unknown credential kind %q (valid: %s)", v, strings.Join(credentialKinds, ", "))
		valid = false
	} else {
		c.Kind = CredentialKind(v)
	}
	idf := fs.get("client_id")
	if v, ok := d.optional(idf); ok {
		if d.check(idf, guidMsg(v)) {
			c.ClientID = strings.ToLower(v)
		} else {
			valid = false
		}
	}
	ref := func(key string, dst *string) field {
		rf := fs.get(key)
		if v, ok := d.optional(rf); ok {
			if d.check(rf, refMsg(v)) {
				*dst = v
			} else {
				valid = false
			}
		}
		return rf
	}
	sf := ref("secret", &c.Secret)
	cf := ref("certificate", &c.Certificate)
	pf := ref("certificate_password", &c.CertificatePassword)
	clf := fs.get("clouds")
	if clf.present() && clf.node.Kind == yaml.SequenceNode && len(clf.node.Content) == 0 {
		d.errf(clf, "empty list; name the clouds whose tenants use this credential, or leave clouds out")
		valid = false
	}
	for _, item := range d.list(clf) {
		v, ok := d.optional(item)
		if !ok {
			valid = false
			continue
		}
		p, err := cloud.Lookup(v)
		if err != nil {
			d.errf(item, "unknown cloud %q (valid: %s; alias 21vianet = china)", v, strings.Join(cloud.Names(), ", "))
			valid = false
			continue
		}
		if slices.Contains(c.Clouds, string(p.Name)) {
			d.errf(item, "cloud %s listed twice", p.Name)
			valid = false
			continue
		}
		c.Clouds = append(c.Clouds, string(p.Name))
	}
	if c.Kind == "" {
		return c, false
	}

	// Which settings each kind needs follows the azidentity constructors;
	// a setting a kind ignores is reported because it usually means the
	// wrong kind was chosen.
	need := func(f field, what string) {
		if !f.present() {
			d.errf(f, "required for kind %s (%s)", c.Kind, what)
			valid = false
		}
	}
	forbid := func(f field) {
		if f.present() {
			d.errf(f, "not used by kind %s; remove it or change kind", c.Kind)
			valid = false
		}
	}
	switch c.Kind {
	case CredentialClientSecret:
		need(idf, "the application id")
		need(sf, "a reference such as env:HF_SECRET")
		forbid(cf)
		forbid(pf)
	case CredentialClientCertificate:
		need(idf, "the application id")
		need(cf, "a reference such as file:/path/cert.pem")
		forbid(sf)
	case CredentialWorkloadIdentity:
		need(idf, "the application id")
		forbid(sf)
		forbid(cf)
		forbid(pf)
	case CredentialManagedIdentity:
		// client_id is optional: it selects a user-assigned identity.
		forbid(sf)
		forbid(cf)
		forbid(pf)
	case CredentialAzureCLI:
		forbid(idf)
		forbid(sf)
		forbid(cf)
		forbid(pf)
	}
	return c, valid
}

func (d *decoder) sites(f field, into map[string]SiteConfig) {
	fs, ok := d.mapping(f, "sites")
	if !ok {
		return
	}
	for _, e := range d.mapEntries(fs.get("sites")) {
		if !d.check(e.key, siteMsg(e.name)) {
			continue
		}
		sc := SiteConfig{Shell: ShellConfig{
			Command:      append([]string(nil), defaultShellCommand...),
			Session:      SessionLocalSnapin,
			CallTimeout:  defaultCallTimeout,
			StartTimeout: DefaultStartTimeout,
			PoolSize:     DefaultShellPoolSize,
		}}
		ss, _ := d.mapping(e.val, "shell")
		d.shell(ss.get("shell"), &sc.Shell)
		into[e.name] = sc
	}
}

func (d *decoder) shell(f field, sh *ShellConfig) {
	fs, ok := d.mapping(f, "command", "session", "connection_uri", "call_timeout", "start_timeout", "env", "pool_size")
	if !ok {
		return
	}
	if cf := fs.get("command"); cf.present() {
		var argv []string
		for _, item := range d.list(cf) {
			v, ok := d.optional(item)
			switch {
			case ok && v != "":
				argv = append(argv, v)
			case ok || !item.present():
				d.errf(item, "empty argument")
			}
		}
		if cf.node.Kind == yaml.SequenceNode && len(cf.node.Content) == 0 {
			d.errf(cf, "empty command; give the PowerShell host's argv or leave command out")
		}
		if len(argv) > 0 && d.check(cf, shellCommandMsg(argv)) {
			sh.Command = argv
		}
	}
	sf := fs.get("session")
	if v, ok := d.optional(sf); ok {
		if v == SessionLocalSnapin || v == SessionRemote {
			sh.Session = v
		} else {
			d.errf(sf, "unknown session %q (valid: %s, %s)", v, SessionLocalSnapin, SessionRemote)
		}
	}
	uf := fs.get("connection_uri")
	if v, ok := d.optional(uf); ok && d.check(uf, urlMsg(v, "http", "https")) {
		sh.ConnectionURI = v
	}
	switch {
	case sh.Session == SessionRemote && !uf.present():
		d.errf(uf, "required when session is remote")
	case sh.Session == SessionLocalSnapin && uf.present():
		d.errf(uf, "only used when session is remote")
	}
	tf := fs.get("call_timeout")
	callOK := true
	if v, ok := d.optional(tf); ok {
		if callOK = d.check(tf, durationMsg(v)); callOK {
			sh.CallTimeout, _ = time.ParseDuration(v)
		}
	}
	stf := fs.get("start_timeout")
	startOK := true
	if v, ok := d.optional(stf); ok {
		if startOK = d.check(stf, durationMsg(v)); startOK {
			sh.StartTimeout, _ = time.ParseDuration(v)
		}
	}
	// A step's attempt may have to start the host before its call, and
	// Temporal ends the attempt at StepStartToClose whatever the shell is
	// doing: both waits must fit, or a slow start is reported as a
	// timed-out step instead of the shell's own, clearer error.
	if callOK && startOK && sh.StartTimeout+sh.CallTimeout > StepStartToClose {
		at := tf
		if !tf.present() {
			at = stf
		}
		d.errf(at, "start_timeout (%s) plus call_timeout (%s) is %s, more than the %s one attempt of an on-prem or Lync step may take; lower them so their sum is at most %s",
			sh.StartTimeout, sh.CallTimeout, sh.StartTimeout+sh.CallTimeout, StepStartToClose, StepStartToClose)
	}
	sh.Env = d.hostEnv(fs.get("env"))
	if pf := fs.get("pool_size"); pf.present() {
		if v, ok := d.int64(pf); ok {
			if v < 1 || v > MaxShellPoolSize {
				d.errf(pf, "must be between 1 and %d (hosts, each with its own PowerShell session, the site may run at once)", MaxShellPoolSize)
			} else {
				sh.PoolSize = int(v)
			}
		}
	}
}

// hostEnvNameRE is what the shell's env accepts as a variable name: the
// portable letters, digits and underscores, plus parentheses for Windows'
// own names such as ProgramFiles(x86).
var hostEnvNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_()]{0,254}$`)

// hostEnv decodes shell.env. Values are passed to the host as written, so
// a secret reference is refused rather than resolved: the host runs
// operator-supplied PowerShell modules and must not hold the worker's
// secrets. Names are compared case-insensitively because Windows does.
func (d *decoder) hostEnv(f field) map[string]string {
	entries := d.mapEntries(f)
	if len(entries) == 0 {
		return nil
	}
	env := map[string]string{}
	firstAt := map[string]entry{}
	for _, e := range entries {
		if !hostEnvNameRE.MatchString(e.name) {
			d.errf(e.key, "%q is not an environment variable name (letters, digits, underscores; parentheses as in ProgramFiles(x86))", e.name)
			continue
		}
		if prev, dup := firstAt[strings.ToUpper(e.name)]; dup {
			d.errf(e.key, "%q repeats %q (line %d): environment variable names are case-insensitive on Windows", e.name, prev.name, prev.key.line())
			continue
		}
		firstAt[strings.ToUpper(e.name)] = e
		if !e.val.present() {
			d.errf(e.val, "needs a value (write \"\" for an empty one)")
			continue
		}
		v, ok := d.optional(e.val)
		if !ok {
			continue
		}
		if strings.HasPrefix(v, "env:") || strings.HasPrefix(v, "file:") {
			// The value is not shown: it names where a secret is kept.
			d.errf(e.val, "looks like a secret reference (env: or file:); the PowerShell host must not receive secrets, so shell.env takes plain values only")
			continue
		}
		if strings.ContainsRune(v, 0) {
			d.errf(e.val, "contains a NUL character")
			continue
		}
		env[e.name] = v
	}
	return env
}

// applyEnv applies the HYBRIDFLOW_* overrides. Only the worker config is
// overridable: an inventory is data about tenants, not deployment, and must
// mean the same thing wherever it is read.
func (d *decoder) applyEnv(cfg *WorkerConfig, getenv func(string) string, where map[string]Problem) {
	env := func(name string, check func(string) string, apply func(string)) {
		v := getenv(name)
		if v == "" {
			return
		}
		if check != nil {
			if m := check(v); m != "" {
				d.probs = append(d.probs, Problem{File: "environment", Field: name, Message: m})
				return
			}
		}
		apply(v)
	}
	tls := func(set func(*TLSConfig, string)) func(string) {
		return func(v string) {
			if cfg.Temporal.TLS == nil {
				cfg.Temporal.TLS = &TLSConfig{}
			}
			if _, fromFile := where["temporal.tls"]; !fromFile {
				where["temporal.tls"] = Problem{File: "environment", Field: "HYBRIDFLOW_TEMPORAL_TLS_*"}
			}
			set(cfg.Temporal.TLS, v)
		}
	}
	env("HYBRIDFLOW_TEMPORAL_ADDRESS", func(v string) string { return hostPortMsg(v, false) },
		func(v string) { cfg.Temporal.Address = v })
	env("HYBRIDFLOW_TEMPORAL_NAMESPACE", namespaceMsg, func(v string) { cfg.Temporal.Namespace = v })
	env("HYBRIDFLOW_TEMPORAL_IDENTITY", nil, func(v string) { cfg.Temporal.Identity = v })
	env("HYBRIDFLOW_TEMPORAL_GRPC_COMPRESSION", grpcCompressionMsg, func(v string) { cfg.Temporal.GRPCCompression = v })
	env("HYBRIDFLOW_TEMPORAL_TLS_CA_FILE", nil, tls(func(t *TLSConfig, v string) { t.CAFile = v }))
	env("HYBRIDFLOW_TEMPORAL_TLS_CERT_FILE", nil, tls(func(t *TLSConfig, v string) { t.CertFile = v }))
	env("HYBRIDFLOW_TEMPORAL_TLS_KEY_FILE", nil, tls(func(t *TLSConfig, v string) { t.KeyFile = v }))
	env("HYBRIDFLOW_TEMPORAL_TLS_SERVER_NAME", hostMsg, tls(func(t *TLSConfig, v string) { t.ServerName = v }))
	env(EnvRequireEncryption, boolMsg, func(v string) {
		cfg.Temporal.RequireEncryption, _ = strconv.ParseBool(v)
		where["temporal.require_encryption"] = Problem{File: "environment", Field: EnvRequireEncryption}
	})
	env("HYBRIDFLOW_LOG_LEVEL", logLevelMsg, func(v string) { cfg.LogLevel = v })
	env("HYBRIDFLOW_METRICS_ADDRESS", func(v string) string { return hostPortMsg(v, true) },
		func(v string) { cfg.MetricsAddress = v })
	d.codecEnv(cfg, getenv)
	env("HYBRIDFLOW_SIMULATE_WORLD", nil, func(v string) {
		if cfg.Simulate == nil {
			cfg.Simulate = &SimulateConfig{Seed: defaultSeed}
		}
		cfg.Simulate.World = v
	})
	env("HYBRIDFLOW_ROLES", nil, func(v string) {
		roles, err := parseRoleList(v)
		if err != nil {
			d.probs = append(d.probs, Problem{File: "environment", Field: "HYBRIDFLOW_ROLES", Message: err.Error()})
			return
		}
		cfg.Roles = roles
		for k := range where {
			if strings.HasPrefix(k, "role:") {
				delete(where, k)
			}
		}
		where["roles"] = Problem{File: "environment", Field: "HYBRIDFLOW_ROLES"}
	})
}

// parseRoleList reads the comma-separated HYBRIDFLOW_ROLES, reporting every
// bad entry at once like the file does.
func parseRoleList(s string) ([]Role, error) {
	var roles []Role
	var errs []error
	seen := map[Role]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		r, err := ParseRole(part)
		switch {
		case err != nil:
			errs = append(errs, err)
		case seen[r]:
			errs = append(errs, fmt.Errorf("role %s listed twice", r))
		default:
			seen[r] = true
			roles = append(roles, r)
		}
	}
	if len(roles) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("no roles"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return roles, nil
}

func (d *decoder) crossCheck(cfg *WorkerConfig, where map[string]Problem) {
	report := func(key, format string, args ...any) {
		p, ok := where[key]
		if !ok {
			p = Problem{File: d.file, Field: key}
		}
		p.Message = fmt.Sprintf(format, args...)
		d.probs = append(d.probs, p)
	}
	// A simulated worker plays every site itself; a real one must know how
	// to start PowerShell for each site it serves, or it would accept
	// activities it can only fail.
	if cfg.Simulate == nil {
		for _, r := range cfg.Roles {
			var sites map[string]SiteConfig
			switch r.Kind {
			case RoleOnPrem:
				sites = cfg.OnPremSites
			case RoleLync:
				sites = cfg.LyncSites
			default:
				continue
			}
			if _, ok := sites[r.Site]; !ok {
				key := "role:" + r.String()
				if _, ok := where[key]; !ok {
					key = "roles"
				}
				report(key, "role %s has no %s.sites.%s entry (how to start PowerShell there); add one or use simulate", r, r.Kind, r.Site)
			}
		}
	}
	// The simulated world serves its own endpoints; a worker given both
	// would silently ignore one of them.
	if cfg.Simulate != nil && cfg.Endpoints != nil {
		report("endpoints", "cannot be used with simulate (the simulated world serves its own endpoints); remove one of them")
	}
	if t := cfg.Temporal.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		report("temporal.tls", "cert_file and key_file go together (mTLS needs both)")
	}
	// Refusing unsealed payloads needs the keys that seal them; checked
	// after the environment, which may supply the keys.
	if cfg.Temporal.RequireEncryption {
		if cfg.Temporal.Codec == nil {
			report("temporal.require_encryption", "is on, but no payload codec keys are configured: add temporal.codec (keys and active) or set %s, or turn require_encryption off", EnvCodecKeys)
		} else {
			cfg.Temporal.Codec.Required = true
		}
	}
}

// EnvRequireEncryption overrides temporal.require_encryption (true or false).
const EnvRequireEncryption = "HYBRIDFLOW_TEMPORAL_REQUIRE_ENCRYPTION"

func boolMsg(s string) string {
	if _, err := strconv.ParseBool(s); err != nil {
		return fmt.Sprintf("%q is not true or false", s)
	}
	return ""
}
