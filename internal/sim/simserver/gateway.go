package simserver

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/sim"
)

// UpgradeProtocol is the Upgrade token of a gateway request.
const UpgradeProtocol = "hybridflow-pshost/1"

// PIDHeader carries the PowerShell stand-in's process ID (optional).
const PIDHeader = "X-Hybridflow-Pid"

// Gateway endpoint prefixes: on-prem Exchange's remote PowerShell virtual
// directory and Lync Server's.
const (
	ExchangeEndpoint = "PowerShell"
	LyncEndpoint     = "OcsPowerShell"
)

// gatewayHandler upgrades POST /PowerShell/<site> and /OcsPowerShell/<site>
// to a host session for the one tenant at that site; anything else is
// refused with a 4xx and a one-line reason the stand-in can pass on.
func (s *Server) gatewayHandler() http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := sim.RequestRecord{Time: start.UTC(), Protocol: sim.ProtoShell, Method: r.Method, Path: r.URL.Path}
		refuse := func(status int, format string, args ...any) {
			msg := fmt.Sprintf(format, args...)
			rec.Duration, rec.Status, rec.Error = time.Since(start), status, msg
			s.log.Add(rec)
			s.logger.Warn("gateway refused a host", zap.String("path", r.URL.Path), zap.Int("status", status), zap.String("reason", msg))
			rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
			rw.Header().Set("Connection", "close")
			rw.WriteHeader(status)
			_, _ = fmt.Fprintln(rw, msg)
		}
		side, site, err := parseGatewayPath(r.URL.EscapedPath())
		if err != nil {
			refuse(http.StatusNotFound, "%v", err)
			return
		}
		rec.Site = site
		if r.Method != http.MethodPost {
			rw.Header().Set("Allow", http.MethodPost)
			refuse(http.StatusMethodNotAllowed, "the gateway accepts POST only, not %s", r.Method)
			return
		}
		if !headerHasToken(r.Header, "Connection", "upgrade") || !strings.EqualFold(strings.TrimSpace(r.Header.Get("Upgrade")), UpgradeProtocol) {
			rw.Header().Set("Upgrade", UpgradeProtocol)
			refuse(http.StatusUpgradeRequired, "the gateway needs Connection: Upgrade and Upgrade: %s", UpgradeProtocol)
			return
		}
		pid := 0
		if v := r.Header.Get(PIDHeader); v != "" {
			if pid, err = strconv.Atoi(v); err != nil || pid < 0 {
				refuse(http.StatusBadRequest, "%s %q is not a process ID", PIDHeader, v)
				return
			}
		}
		tenants := s.world.TenantsAtSite(site, side == sim.Lync)
		what := "an on-premises Exchange organisation"
		if side == sim.Lync {
			what = "a Lync deployment"
		}
		switch len(tenants) {
		case 0:
			refuse(http.StatusNotFound, "no tenant of the simulated world has %s at site %q", what, site)
			return
		case 1:
		default:
			refuse(http.StatusConflict, "site %q has %s for %d tenants (%s); a site's PowerShell host reaches one organisation, so the gateway serves only sites with exactly one",
				site, what, len(tenants), strings.Join(tenants, ", "))
			return
		}
		hj, ok := rw.(http.Hijacker)
		if !ok {
			refuse(http.StatusInternalServerError, "the connection cannot be upgraded")
			return
		}
		conn, brw, err := hj.Hijack()
		if err != nil {
			refuse(http.StatusInternalServerError, "upgrade: %v", err)
			return
		}
		_, err = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + UpgradeProtocol + "\r\n\r\n")
		if err == nil {
			err = brw.Flush()
		}
		if err != nil {
			_ = conn.Close()
			return
		}
		rec.Duration, rec.Status, rec.OK, rec.Tenant = time.Since(start), http.StatusSwitchingProtocols, true, tenants[0]
		s.log.Add(rec)
		s.logger.Info("host session", zap.String("side", string(side)), zap.String("site", site), zap.String("tenant", tenants[0]), zap.Int("pid", pid))
		s.hosts.ServeConn(conn, brw.Reader, sim.HostSession{Side: side, Tenant: tenants[0], Site: site, PID: pid})
	})
}

// parseGatewayPath reads /PowerShell/<site> or /OcsPowerShell/<site> (one
// trailing slash allowed; endpoint names case-insensitive; the site
// path-escaped).
func parseGatewayPath(escaped string) (sim.Side, string, error) {
	bad := fmt.Errorf("no PowerShell endpoint at %s: the gateway serves /%s/<site> (on-premises Exchange) and /%s/<site> (Lync)", escaped, ExchangeEndpoint, LyncEndpoint)
	segs := strings.Split(strings.TrimPrefix(escaped, "/"), "/")
	if len(segs) == 3 && segs[2] == "" {
		segs = segs[:2]
	}
	if len(segs) != 2 || segs[1] == "" {
		return "", "", bad
	}
	var side sim.Side
	switch {
	case strings.EqualFold(segs[0], ExchangeEndpoint):
		side = sim.OnPrem
	case strings.EqualFold(segs[0], LyncEndpoint):
		side = sim.Lync
	default:
		return "", "", bad
	}
	site, err := url.PathUnescape(segs[1])
	if err != nil || strings.TrimSpace(site) == "" {
		return "", "", fmt.Errorf("the site in %s is not a valid path segment", escaped)
	}
	return side, site, nil
}

// headerHasToken reports whether a comma-separated header lists token.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
