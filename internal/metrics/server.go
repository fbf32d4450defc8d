package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Paths the worker's metrics listener serves.
const (
	PathMetrics = "/metrics"
	PathHealthz = "/healthz" // liveness: the process serves HTTP
	PathReadyz  = "/readyz"  // readiness: workers polling and Temporal answering
)

// ServerOptions configure Serve.
type ServerOptions struct {
	// Check runs on every /readyz once the workers are started, e.g. a
	// Temporal health check; nil means none.
	Check func(ctx context.Context) error
	// CheckTimeout bounds Check (default 3s).
	CheckTimeout time.Duration
}

// Server is the worker's observability listener.
type Server struct {
	m     *Metrics
	srv   *http.Server
	ln    net.Listener
	ready atomic.Bool
	o     ServerOptions
	done  chan error
}

// Serve listens on addr (host:port; ":0" picks a port) and serves
// /metrics, /healthz and /readyz until Shutdown.
func Serve(addr string, m *Metrics, o ServerOptions) (*Server, error) {
	if o.CheckTimeout == 0 {
		o.CheckTimeout = 3 * time.Second
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	s := &Server{m: m, ln: ln, o: o, done: make(chan error, 1)}
	mux := http.NewServeMux()
	mux.Handle("GET "+PathMetrics, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("GET "+PathHealthz, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET "+PathReadyz, s.readyz)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// SetReady marks the workers started (true) or stopping (false).
func (s *Server) SetReady(ready bool) {
	s.ready.Store(ready)
	s.m.SetReady(ready)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		http.Error(w, "not ready: workers not started", http.StatusServiceUnavailable)
		return
	}
	if s.o.Check != nil {
		ctx, cancel := context.WithTimeout(r.Context(), s.o.CheckTimeout)
		defer cancel()
		if err := s.o.Check(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	_, _ = fmt.Fprintln(w, "ready")
}

// Shutdown stops serving, letting a scrape in progress finish.
func (s *Server) Shutdown(ctx context.Context) error {
	s.SetReady(false)
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
