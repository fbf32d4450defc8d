// Package backend builds the per-tenant clients the activities use: real
// Microsoft Graph, Exchange Online and PowerShell hosts, or the same clients
// pointed at the simulated world on loopback. "simulate" swaps endpoints
// and credentials, never code paths: the activities cannot tell.
package backend

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/exchange/online"
	"github.com/hybridflow/hybridflow/internal/exchange/shell"
	"github.com/hybridflow/hybridflow/internal/graph"
	"github.com/hybridflow/hybridflow/internal/metrics"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// Target names the tenant (and its sites) a client is for (the type
// activities receive: see package contract).
type Target = contract.Target

// Backend hands out cached clients per tenant and site.
type Backend struct {
	kind   string
	logger *zap.Logger

	mu     sync.Mutex
	graphs map[string]*graph.Client
	exos   map[string]*online.Client

	credential func(t Target, p cloud.Profile) (azcore.TokenCredential, error)
	graphBase  func(p cloud.Profile) string
	exoBase    func(p cloud.Profile) string
	httpClient *http.Client
	shells     *shell.Pool
	shellKey   func(side sim.Side, t Target) string

	direct *sim.World // non-nil: in-process shell runners

	// Sim is the simulated world and its servers (nil for real backends).
	Sim     *Simulation
	closers []func()
}

// Simulation is what a simulated backend runs.
type Simulation struct {
	World     *sim.World
	Servers   *sim.Servers
	ShellAddr string
}

// Kind is "simulated" or "real".
func (b *Backend) Kind() string { return b.kind }

// MaxShells bounds live PowerShell host processes per worker.
const MaxShells = 64

// SimOptions tune a simulated backend.
type SimOptions struct {
	// DirectShell runs on-prem and Lync cmdlets in-process (sim.DirectRunner)
	// instead of spawning PowerShell-host relay processes; for workflow
	// tests, where the real host protocol is not what is under test.
	DirectShell bool
	// Credentials, when set, makes the backend authenticate as a real one
	// does: the tenant's credential from the worker config is resolved
	// (env:/file: references) and used with azidentity against the
	// simulator's Entra token endpoint, which then accepts only
	// ClientSecrets (nil: any non-empty secret). Nil keeps
	// sim.StaticCredential, which mints tokens without a token endpoint.
	// For tests about authentication and secret handling.
	Credentials *SimCredentials
}

// SimCredentials is what SimOptions.Credentials needs.
type SimCredentials struct {
	Config        *config.WorkerConfig
	Getenv        func(string) string
	ClientSecrets map[string]string
}

// NewSimulated serves w on loopback (HTTPS for Graph, Entra tokens and
// Exchange Online; JSON lines over TCP for the PowerShell-host relay) and
// returns a backend whose real clients talk to it. Host processes are this
// executable re-run as a relay (sim.HostCommand): the executable must call
// sim.MaybeRunHost first thing in main (or TestMain/init in tests).
func NewSimulated(ctx context.Context, w *sim.World, logger *zap.Logger, so SimOptions) (*Backend, error) {
	var secrets map[string]string
	if so.Credentials != nil {
		secrets = so.Credentials.ClientSecrets
	}
	srv, err := sim.Start(ctx, w, sim.ServerOptions{ClientSecrets: secrets})
	if err != nil {
		return nil, fmt.Errorf("start simulated Graph / Exchange Online: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("listen for simulated PowerShell hosts: %w", err)
	}
	go func() { _ = sim.ServeShell(l, w) }()
	addr := l.Addr().String()
	b := &Backend{
		kind: "simulated", logger: logger,
		Sim:        &Simulation{World: w, Servers: srv, ShellAddr: addr},
		httpClient: &http.Client{Transport: srv.Transport(), Timeout: 2 * time.Minute},
		credential: func(t Target, _ cloud.Profile) (azcore.TokenCredential, error) {
			return sim.StaticCredential(t.TenantID), nil
		},
		graphBase: func(cloud.Profile) string { return srv.GraphURL() },
		exoBase:   func(cloud.Profile) string { return srv.BaseURL },
		// The simulator holds one organisation per tenant, so hosts are per
		// tenant; a real site worker has one organisation per site.
		shellKey: func(side sim.Side, t Target) string { return string(side) + "," + t.TenantID },
	}
	b.shells = shell.NewPool(func(key string) shell.Options {
		side, tenant, _ := strings.Cut(key, ",")
		argv, env, err := sim.HostCommand(addr, sim.Side(side), tenant)
		if err != nil {
			logger.Error("simulated host command", zap.Error(err))
		}
		return shell.Options{Argv: argv, Env: env, Name: tenant, Logger: logger.Named("shell"),
			Session: shell.SessionConfig{Mode: "none"}, CallTimeout: time.Minute, StartTimeout: 30 * time.Second}
	}, MaxShells)
	if so.DirectShell {
		b.direct = w
	}
	if sc := so.Credentials; sc != nil {
		b.credential = func(t Target, _ cloud.Profile) (azcore.TokenCredential, error) {
			return configuredCredential(sc.Config, sc.Getenv, t, srv.AuthorityHost(), b.httpClient)
		}
	}
	b.closers = append(b.closers, func() { _ = l.Close() }, func() { _ = srv.Close() })
	return b, nil
}

// NewReal builds clients for real systems from the worker config. Its
// endpoints block, when set, replaces every tenant's Entra authority, Graph
// and Exchange Online endpoints, and its ca_file is trusted besides the
// system roots by this backend's HTTP client only.
func NewReal(cfg *config.WorkerConfig, logger *zap.Logger, getenv func(string) string) (*Backend, error) {
	b := &Backend{
		kind: "real", logger: logger,
		httpClient: &http.Client{Timeout: 2 * time.Minute},
		graphBase:  func(cloud.Profile) string { return "" },
		exoBase:    func(cloud.Profile) string { return "" },
		shellKey:   func(side sim.Side, t Target) string { return string(side) + "," + siteOf(side, t) },
	}
	authority := func(p cloud.Profile) string { return p.AuthorityURL() }
	// nil: azidentity's own transport, as before endpoints existed.
	var tokenClient *http.Client
	if e := cfg.Endpoints; e != nil {
		if e.CAFile != "" {
			tr, err := transportTrusting(e.CAFile)
			if err != nil {
				return nil, err
			}
			b.httpClient.Transport = tr
		}
		tokenClient = b.httpClient
		authority = func(cloud.Profile) string { return e.AuthorityHost }
		b.graphBase = func(cloud.Profile) string { return e.Graph }
		b.exoBase = func(cloud.Profile) string { return e.ExchangeOnline }
	}
	b.credential = func(t Target, p cloud.Profile) (azcore.TokenCredential, error) {
		return configuredCredential(cfg, getenv, t, authority(p), tokenClient)
	}
	b.shells = shell.NewPool(func(key string) shell.Options {
		side, site, _ := strings.Cut(key, ",")
		sites := cfg.OnPremSites
		if sim.Side(side) == sim.Lync {
			sites = cfg.LyncSites
		}
		sc := sites[site].Shell
		mode := sc.Session
		if sim.Side(side) == sim.Lync {
			mode = "lync"
		}
		// PoolSize bounds the site's hosts, and so its PowerShell sessions,
		// per call: a call waits for a free host, whichever activity it
		// comes from (see OnPrem).
		return shell.Options{Argv: sc.Command, Env: envList(sc.Env), Name: site, Logger: logger.Named("shell"),
			CallTimeout: sc.CallTimeout, StartTimeout: sc.StartTimeout, PoolSize: sc.PoolSize,
			Session: shell.SessionConfig{Mode: mode, ConnectionURI: sc.ConnectionURI}}
	}, MaxShells)
	return b, nil
}

// transportTrusting is an HTTP transport that trusts the system roots and
// the CA certificates of a PEM file.
func transportTrusting(caFile string) (*http.Transport, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("endpoints.ca_file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		// No system pool to extend (some platforms): the file alone.
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("endpoints.ca_file: %s holds no PEM certificate", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return tr, nil
}

// envList turns a site's shell.env into NAME=value entries, sorted so the
// host's environment does not depend on map order.
func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// StartHost starts the PowerShell host of one of the worker's on-prem or
// Lync roles, as the role's activities would, and waits for its ready line
// (at most the site's start timeout); the host stays up for them. It is
// the worker's start probe, for real backends only: a simulated world's
// hosts are per tenant, not per site.
func (b *Backend) StartHost(ctx context.Context, r config.Role) error {
	if b.kind != "real" {
		return fmt.Errorf("start host for %s: only a real backend has per-site hosts", r)
	}
	var side sim.Side
	switch r.Kind {
	case config.RoleOnPrem:
		side = sim.OnPrem
	case config.RoleLync:
		side = sim.Lync
	default:
		return fmt.Errorf("start host for %s: the role has no PowerShell host", r)
	}
	return b.shells.Get(string(side) + "," + r.Site).Start(ctx)
}

// configuredCredential resolves the tenant's credential (t.Credential, or
// "default") from the worker config; secrets are read from their
// references here, at use, and go nowhere but azidentity. hc nil means
// azidentity's own transport.
func configuredCredential(cfg *config.WorkerConfig, getenv func(string) string, t Target, authority string, hc *http.Client) (azcore.TokenCredential, error) {
	name := t.Credential
	if name == "" {
		name = "default"
	}
	c, ok := cfg.Credentials[name]
	if !ok {
		return nil, fmt.Errorf("tenant %s names credential %q, which the worker config does not define", t.TenantID, name)
	}
	o := graph.CredentialOptions{Kind: graph.CredentialKind(c.Kind), TenantID: t.TenantID, ClientID: c.ClientID, AuthorityHost: authority, HTTPClient: hc}
	var err error
	if c.Secret != "" {
		if o.Secret, err = config.ResolveSecret(c.Secret, getenv); err != nil {
			return nil, fmt.Errorf("credential %s: %w", name, err)
		}
	}
	if c.Certificate != "" {
		if o.Certificate, err = config.ResolveSecretBytes(c.Certificate, getenv); err != nil {
			return nil, fmt.Errorf("credential %s: %w", name, err)
		}
	}
	if c.CertificatePassword != "" {
		if o.CertificatePassword, err = config.ResolveSecret(c.CertificatePassword, getenv); err != nil {
			return nil, fmt.Errorf("credential %s: %w", name, err)
		}
	}
	return graph.NewCredential(o)
}

func siteOf(side sim.Side, t Target) string {
	if side == sim.Lync {
		return t.LyncSite
	}
	return t.Site
}

func profile(t Target) (cloud.Profile, error) {
	p, err := cloud.Lookup(t.Cloud)
	if err != nil {
		return p, err
	}
	if t.ExchangeOnlineHost != "" {
		p.ExchangeOnlineHost = t.ExchangeOnlineHost
	}
	return p, nil
}

// Graph returns the tenant's Graph client.
func (b *Backend) Graph(t Target) (*graph.Client, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := b.graphs[t.TenantID]; c != nil {
		return c, nil
	}
	p, err := profile(t)
	if err != nil {
		return nil, err
	}
	cred, err := b.credential(t, p)
	if err != nil {
		return nil, err
	}
	c, err := graph.New(graph.Options{Cloud: p, TenantID: t.TenantID, Credential: cred, BaseURL: b.graphBase(p), HTTPClient: b.httpClient})
	if err != nil {
		return nil, err
	}
	if b.graphs == nil {
		b.graphs = map[string]*graph.Client{}
	}
	b.graphs[t.TenantID] = c
	return c, nil
}

// ExchangeOnline returns the tenant's Exchange Online cmdlet runner.
func (b *Backend) ExchangeOnline(t Target) (exchange.Runner, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := b.exos[t.TenantID]; c != nil {
		return c, nil
	}
	p, err := profile(t)
	if err != nil {
		return nil, err
	}
	cred, err := b.credential(t, p)
	if err != nil {
		return nil, err
	}
	c := online.New(online.Options{Cloud: p, TenantID: t.TenantID, Credential: cred, BaseURL: b.exoBase(p), HTTPClient: b.httpClient, Logger: b.logger.Named("exo")})
	if b.exos == nil {
		b.exos = map[string]*online.Client{}
	}
	b.exos[t.TenantID] = c
	return c, nil
}

// OnPrem returns the PowerShell hosts for the tenant's on-prem Exchange:
// the site's shell.pool_size hosts, each call on a free one. The bound is
// per call, not per activity: every session the site's Exchange servers
// see is a host, so at most pool_size calls and sessions run at once
// however many of the site's activities the worker runs, and an activity
// holds no host while it waits between calls (a Lync replication wait, a
// retry's back-off), so it does not block the site or the worker's health
// probe meanwhile.
func (b *Backend) OnPrem(t Target) exchange.Runner {
	if b.direct != nil {
		return InstrumentRunner(metrics.Default, metrics.SystemPowerShell, sim.DirectRunner{W: b.direct, Side: sim.OnPrem, Tenant: t.TenantID})
	}
	return InstrumentRunner(metrics.Default, metrics.SystemPowerShell, b.shells.Get(b.shellKey(sim.OnPrem, t)))
}

// Lync returns the PowerShell hosts for the tenant's Lync deployment (as
// OnPrem, for the Lync site).
func (b *Backend) Lync(t Target) exchange.Runner {
	if b.direct != nil {
		return InstrumentRunner(metrics.Default, metrics.SystemLync, sim.DirectRunner{W: b.direct, Side: sim.Lync, Tenant: t.TenantID})
	}
	return InstrumentRunner(metrics.Default, metrics.SystemLync, b.shells.Get(b.shellKey(sim.Lync, t)))
}

// Close stops host processes and simulated servers.
func (b *Backend) Close() {
	if b.shells != nil {
		b.shells.Close()
	}
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}
