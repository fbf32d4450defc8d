package simserver

// The admin API, under /_sim/ on the HTTPS server. Every request needs the
// bearer token of StateDir/admin-token (owner-readable only), so another
// local user cannot rewrite the world, and comes from loopback.
//
//	GET    /_sim/world            the world as YAML, in the world file format
//	PUT    /_sim/world            replace the world's contents with a YAML world
//	POST   /_sim/reset            reload the world file (or the world given at start)
//	GET    /_sim/requests?since=N the request log after record N (JSON)
//	GET    /_sim/clock            the simulator's now, and whether it is pinned
//	PUT    /_sim/clock            {"wall":true} or {"now":"<RFC 3339>"}
//	GET    /_sim/faults           the fault rules (YAML list)
//	POST   /_sim/faults           add fault rules (YAML list, or a document with faults:)
//	DELETE /_sim/faults           remove every fault rule
//	GET    /_sim/sessions         PowerShell gateway sessions by site (JSON)

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/hybridflow/hybridflow/internal/sim"
)

// maxWorldBytes bounds a PUT world body.
const maxWorldBytes = 256 << 20

// RequestsPage is GET /_sim/requests' answer.
type RequestsPage struct {
	Requests []sim.RequestRecord `json:"requests"`
	// Last is the newest record's number: pass it as since next time.
	Last uint64 `json:"last"`
	// Lost counts records after since that the bounded log forgot.
	Lost uint64 `json:"lost,omitempty"`
}

func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_sim/world", s.getWorld)
	mux.HandleFunc("PUT /_sim/world", s.putWorld)
	mux.HandleFunc("POST /_sim/reset", s.resetWorld)
	mux.HandleFunc("GET /_sim/requests", s.getRequests)
	mux.HandleFunc("GET /_sim/clock", s.getClock)
	mux.HandleFunc("PUT /_sim/clock", s.putClock)
	mux.HandleFunc("GET /_sim/faults", s.getFaults)
	mux.HandleFunc("POST /_sim/faults", s.addFaults)
	mux.HandleFunc("DELETE /_sim/faults", s.clearFaults)
	mux.HandleFunc("GET /_sim/sessions", func(rw http.ResponseWriter, _ *http.Request) { writeJSON(rw, http.StatusOK, s.HostSessions()) })
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !fromLoopback(r) {
			adminError(rw, http.StatusForbidden, "the admin API answers loopback clients only")
			return
		}
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(s.admin)) != 1 {
			rw.Header().Set("WWW-Authenticate", `Bearer realm="hybridflow-sim"`)
			adminError(rw, http.StatusUnauthorized, "the admin API needs Authorization: Bearer <the token in %s>", s.AdminTokenFile())
			return
		}
		mux.ServeHTTP(rw, r)
	})
}

func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *Server) getWorld(rw http.ResponseWriter, _ *http.Request) {
	data, err := s.world.Dump()
	if err != nil {
		adminError(rw, http.StatusInternalServerError, "%v", err)
		return
	}
	writeYAMLBytes(rw, data)
}

func (s *Server) putWorld(rw http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxWorldBytes))
	if err != nil {
		adminError(rw, http.StatusRequestEntityTooLarge, "read world: %v", err)
		return
	}
	w, err := sim.Parse("PUT /_sim/world", data)
	if err != nil {
		adminError(rw, http.StatusBadRequest, "%v", err)
		return
	}
	if status, err := s.replace(w, "PUT /_sim/world"); err != nil {
		adminError(rw, status, "%v", err)
		return
	}
	s.writeSummary(rw)
}

func (s *Server) resetWorld(rw http.ResponseWriter, _ *http.Request) {
	var w *sim.World
	var err error
	if s.worldFile != "" {
		w, err = sim.Load(s.worldFile)
	} else {
		w, err = sim.Parse("the world given at start", s.original)
	}
	if err != nil {
		adminError(rw, http.StatusBadRequest, "reset: %v", err)
		return
	}
	if status, err := s.replace(w, "reset: "+s.worldName()); err != nil {
		adminError(rw, status, "%v", err)
		return
	}
	s.writeSummary(rw)
}

// replace checks w's clock and makes it the live world's contents.
func (s *Server) replace(w *sim.World, what string) (int, error) {
	s.worldMu.Lock()
	defer s.worldMu.Unlock()
	if err := checkClock(w, time.Now()); err != nil {
		return http.StatusConflict, fmt.Errorf("%s: %w", what, err)
	}
	s.world.Replace(w)
	s.logger.Info("world replaced", zap.String("by", what), zap.Int("tenants", len(s.world.Inventory().Tenants)))
	return 0, nil
}

func (s *Server) writeSummary(rw http.ResponseWriter) {
	writeJSON(rw, http.StatusOK, map[string]any{"tenants": len(s.world.Inventory().Tenants)})
}

func (s *Server) getRequests(rw http.ResponseWriter, r *http.Request) {
	var since uint64
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			adminError(rw, http.StatusBadRequest, "since %q is not a record number", v)
			return
		}
		since = n
	}
	recs, last, lost := s.log.Since(since)
	if recs == nil {
		recs = []sim.RequestRecord{}
	}
	writeJSON(rw, http.StatusOK, RequestsPage{Requests: recs, Last: last, Lost: lost})
}

func (s *Server) clock() Clock {
	_, pinned := s.world.PinnedNow()
	return Clock{Now: s.world.CurrentTime().UTC(), Pinned: pinned, Wall: time.Now().UTC()}
}

func (s *Server) getClock(rw http.ResponseWriter, _ *http.Request) {
	writeJSON(rw, http.StatusOK, s.clock())
}

func (s *Server) putClock(rw http.ResponseWriter, r *http.Request) {
	var c ClockChange
	dec := json.NewDecoder(http.MaxBytesReader(rw, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		adminError(rw, http.StatusBadRequest, `clock: the body must be {"wall":true} or {"now":"<RFC 3339 time>"}: %v`, err)
		return
	}
	if c.Wall == (c.Now != nil) {
		adminError(rw, http.StatusBadRequest, `clock: give exactly one of "wall": true and "now"`)
		return
	}
	s.worldMu.Lock()
	if c.Wall {
		s.world.SetPinnedNow(time.Time{})
	} else {
		if err := checkPinned(*c.Now, time.Now(), hintClock); err != nil {
			s.worldMu.Unlock()
			adminError(rw, http.StatusConflict, "clock: %v", err)
			return
		}
		s.world.SetPinnedNow(c.Now.UTC())
	}
	s.worldMu.Unlock()
	writeJSON(rw, http.StatusOK, s.clock())
}

func (s *Server) getFaults(rw http.ResponseWriter, _ *http.Request) {
	rules := s.world.Faults()
	if rules == nil {
		rules = []sim.FaultRule{}
	}
	data, err := yaml.Marshal(rules)
	if err != nil {
		adminError(rw, http.StatusInternalServerError, "faults: %v", err)
		return
	}
	writeYAMLBytes(rw, data)
}

func (s *Server) addFaults(rw http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, 1<<20))
	if err != nil {
		adminError(rw, http.StatusRequestEntityTooLarge, "read faults: %v", err)
		return
	}
	rules, err := ParseFaults(data)
	if err != nil {
		adminError(rw, http.StatusBadRequest, "%v", err)
		return
	}
	if err := s.world.AddFaults(rules); err != nil {
		adminError(rw, http.StatusBadRequest, "faults: %v", err)
		return
	}
	s.logger.Info("fault rules added", zap.Int("rules", len(rules)))
	s.getFaults(rw, r)
}

func (s *Server) clearFaults(rw http.ResponseWriter, _ *http.Request) {
	s.world.ClearFaults()
	s.logger.Info("fault rules cleared")
	rw.WriteHeader(http.StatusNoContent)
}

// ParseFaults reads fault rules as YAML: a list of rules, or a document
// whose faults: holds the list (a world file's own section). Unknown
// fields are errors.
func ParseFaults(data []byte) ([]sim.FaultRule, error) {
	var probe yaml.Node
	if err := yaml.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("faults: %w", err)
	}
	if len(probe.Content) == 0 {
		return nil, errors.New("faults: empty document; give a list of rules")
	}
	var rules []sim.FaultRule
	decode := func(out any) error {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		return dec.Decode(out)
	}
	switch probe.Content[0].Kind {
	case yaml.SequenceNode:
		if err := decode(&rules); err != nil {
			return nil, fmt.Errorf("faults: %w", err)
		}
	case yaml.MappingNode:
		var doc struct {
			Faults []sim.FaultRule `yaml:"faults"`
		}
		if err := decode(&doc); err != nil {
			return nil, fmt.Errorf("faults: %w", err)
		}
		rules = doc.Faults
	default:
		return nil, errors.New("faults: give a list of rules, or a document with faults:")
	}
	if len(rules) == 0 {
		return nil, errors.New("faults: no rules given")
	}
	return rules, nil
}

func adminError(rw http.ResponseWriter, status int, format string, args ...any) {
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("X-Content-Type-Options", "nosniff")
	rw.WriteHeader(status)
	msg := fmt.Sprintf(format, args...)
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	_, _ = io.WriteString(rw, msg)
}

func writeJSON(rw http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		adminError(rw, http.StatusInternalServerError, "encode: %v", err)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	_, _ = rw.Write(append(b, '\n'))
}

func writeYAMLBytes(rw http.ResponseWriter, data []byte) {
	rw.Header().Set("Content-Type", "application/yaml")
	rw.Header().Set("Content-Length", strconv.Itoa(len(data)))
	rw.WriteHeader(http.StatusOK)
	_, _ = rw.Write(data)
}
