package sim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// ServerOptions configures Start.
type ServerOptions struct {
	// Addr is the listen address; default 127.0.0.1:0 (a free port).
	Addr string
	// ClientSecrets maps client ID → secret for the token endpoint. Nil
	// accepts any non-empty secret (the grant is still recorded, without
	// the secret).
	ClientSecrets map[string]string
	// AnySecret, when not empty, is a client secret the token endpoint
	// accepts for any client ID that ClientSecrets does not name (the
	// stand-alone simulator's one credential); other secrets are refused.
	AnySecret string
	// ErrorLog receives the HTTP server's own errors (TLS handshakes from
	// clients that do not trust the CA, ...). Nil discards them.
	ErrorLog *log.Logger
	// RequestLog, when set, records every Graph, Exchange Online and token
	// request.
	RequestLog *RequestLog
	// Admin, when set, serves every path under AdminPrefix; those requests
	// are not recorded in RequestLog.
	Admin http.Handler
}

// AdminPrefix is where ServerOptions.Admin is mounted.
const AdminPrefix = "/_sim/"

// Servers is the simulator's one HTTPS endpoint on loopback: the Entra
// token endpoint at /{tenant}/oauth2/v2.0/token, Graph at /v1.0 and every
// handler registered in extraHandlers (Exchange Online's InvokeCommand at
// /adminapi/ from exo.go).
type Servers struct {
	World *World
	// BaseURL is https://127.0.0.1:<port>, without a trailing slash.
	BaseURL string
	CA      *CA
	// Client trusts CA and nothing else.
	Client *http.Client

	srv    *http.Server
	tokens *tokenService
	done   chan struct{}
	once   sync.Once
	err    error
}

// GraphURL is the Graph v1.0 root to give a Graph client as its base URL.
func (s *Servers) GraphURL() string { return s.BaseURL + "/v1.0" }

// AuthorityHost is what azidentity's cloud configuration takes as
// ActiveDirectoryAuthorityHost.
func (s *Servers) AuthorityHost() string { return s.BaseURL + "/" }

// CAPEM is the CA certificate in PEM, for clients configured by file.
func (s *Servers) CAPEM() []byte { return s.CA.PEM }

// CAPool is the CA as a certificate pool for tls.Config.RootCAs.
func (s *Servers) CAPool() *x509.CertPool { return s.CA.Pool }

// Transport is a new transport trusting the CA, for clients that build
// their own middleware chain around it (the Graph client does).
func (s *Servers) Transport() *http.Transport {
	return &http.Transport{
		TLSClientConfig:     s.CA.ClientTLSConfig(),
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}
}

// TokenGrants lists the tokens the token endpoint issued.
func (s *Servers) TokenGrants() []TokenGrant { return s.tokens.Grants() }

// Start serves w over HTTPS until ctx ends or Close is called.
func Start(ctx context.Context, w *World, opts ServerOptions) (*Servers, error) {
	if w == nil {
		return nil, errors.New("sim: start: nil world")
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ca, err := NewCA()
	if err != nil {
		return nil, fmt.Errorf("sim: start: %w", err)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("sim: start: listen address %q: %w", addr, err)
	}
	names := []string{"localhost", "127.0.0.1", "::1"}
	if host != "" && !containsFold(names, host) {
		names = append(names, host)
	}
	cert, err := ca.ServerCertificate(names...)
	if err != nil {
		return nil, fmt.Errorf("sim: start: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sim: start: %w", err)
	}
	errLog := opts.ErrorLog
	if errLog == nil {
		errLog = log.New(io.Discard, "", 0)
	}
	s := &Servers{
		World:   w,
		BaseURL: "https://" + ln.Addr().String(),
		CA:      ca,
		tokens:  newTokenService(w, opts.ClientSecrets),
		done:    make(chan struct{}),
	}
	s.tokens.anySecret = opts.AnySecret
	s.Client = &http.Client{Transport: s.Transport(), Timeout: time.Minute}
	var handler http.Handler = newSimMux(w, s.tokens)
	if opts.RequestLog != nil {
		handler = logHTTP(opts.RequestLog, s.tokens, handler)
	}
	if opts.Admin != nil {
		handler = withAdmin(opts.Admin, handler)
	}
	s.srv = &http.Server{
		Handler:           handler,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          errLog,
	}
	go func() { _ = s.srv.ServeTLS(ln, "", "") }()
	go func() {
		select {
		case <-ctx.Done():
			_ = s.Close()
		case <-s.done:
		}
	}()
	return s, nil
}

// Shutdown stops accepting connections and waits until the requests being
// served have been answered and their connections are idle, or ctx ends;
// then it closes what is left, as Close does. A handler still running when
// ctx ends is not stopped: it may change the world afterwards.
func (s *Servers) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	return errors.Join(err, s.Close())
}

// Close stops the server and drops open connections.
func (s *Servers) Close() error {
	s.once.Do(func() {
		close(s.done)
		s.err = s.srv.Close()
		s.Client.CloseIdleConnections()
	})
	return s.err
}

// withAdmin sends requests under AdminPrefix to admin, the rest to next.
func withAdmin(admin, next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, AdminPrefix) {
			admin.ServeHTTP(rw, r)
			return
		}
		next.ServeHTTP(rw, r)
	})
}

// simMux routes by path prefix: registered extra handlers (longest prefix
// first), Graph, then the token service for everything else. http.ServeMux
// cannot express this: "/v1.0/" and "/{tenant}/oauth2/v2.0/token" overlap.
type simMux struct {
	prefixes []string
	extra    map[string]http.Handler
	graph    http.Handler
	tokens   http.Handler
}

func newSimMux(w *World, tokens *tokenService) *simMux {
	m := &simMux{extra: map[string]http.Handler{}, graph: NewGraphHandler(w), tokens: tokens}
	for prefix, f := range extraHandlers {
		m.prefixes = append(m.prefixes, prefix)
		m.extra[prefix] = f(w)
	}
	sort.Slice(m.prefixes, func(i, j int) bool { return len(m.prefixes[i]) > len(m.prefixes[j]) })
	return m
}

func (m *simMux) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	for _, p := range m.prefixes {
		if strings.HasPrefix(r.URL.Path, p) {
			m.extra[p].ServeHTTP(rw, r)
			return
		}
	}
	if strings.HasPrefix(r.URL.Path, "/v1.0/") {
		m.graph.ServeHTTP(rw, r)
		return
	}
	m.tokens.ServeHTTP(rw, r)
}
