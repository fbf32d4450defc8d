package backend

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/graph"
	"github.com/hybridflow/hybridflow/internal/metrics"
)

// Call metrics for the backend's clients (internal/metrics).
//
// HTTP (Microsoft Graph and Exchange Online) is instrumented by Instrument,
// which the worker calls right after building the backend. PowerShell
// hosts (on-prem Exchange, Lync) are instrumented by InstrumentRunner,
// applied where OnPrem and Lync hand out their runners.

func init() {
	metrics.RegisterErrorClassifier(func(err error) string {
		var ge *graph.Error
		if errors.As(err, &ge) {
			return "graph_" + ge.Kind.String()
		}
		return ""
	})
}

// Instrument makes every HTTP request of the Graph and Exchange Online
// clients this backend builds report into m: latency, errors by HTTP
// status or transport failure, and throttling (429, or 503 with
// Retry-After) with the wait asked for. Each attempt counts, so the
// clients' own retries are visible. Call it before the first Graph or
// ExchangeOnline call: clients built earlier keep the old transport.
func (b *Backend) Instrument(m *metrics.Metrics) {
	b.mu.Lock()
	defer b.mu.Unlock()
	hc := &http.Client{}
	if b.httpClient != nil {
		*hc = *b.httpClient
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc.Transport = &instrumentedTransport{base: base, m: m}
	b.httpClient = hc
}

type instrumentedTransport struct {
	base http.RoundTripper
	m    *metrics.Metrics
}

// RoundTrip measures to the response headers (bodies are small JSON).
func (t *instrumentedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	system, op := classifyRequest(req)
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	d := time.Since(start)
	switch {
	case err != nil:
		t.m.ObserveCall(system, op, d, err)
	case resp.StatusCode >= 400:
		t.m.ObserveCallError(system, op, "http_"+strconv.Itoa(resp.StatusCode), d)
		ra := resp.Header.Get("Retry-After")
		if resp.StatusCode == http.StatusTooManyRequests || (resp.StatusCode == http.StatusServiceUnavailable && ra != "") {
			t.m.ObserveThrottle(system, retryAfter(ra, time.Now()))
		}
	default:
		t.m.ObserveCall(system, op, d, nil)
	}
	return resp, err
}

// classifyRequest names the system and a bounded operation: the cmdlet for
// Exchange Online (the client sends it in X-CmdletName), the method and
// collection path for Graph ("GET servicePrincipals", "POST
// servicePrincipals/appRoleAssignments") — object IDs never become labels.
func classifyRequest(req *http.Request) (system, op string) {
	path := req.URL.Path
	if strings.Contains(path, "/adminapi/") {
		op = req.Header.Get("X-CmdletName")
		if op == "" {
			op = "InvokeCommand"
		}
		return metrics.SystemExchangeOnline, op
	}
	if strings.Contains(path, "/oauth2/") {
		return "entra_token", req.Method + " token"
	}
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) > 0 && (segs[0] == "v1.0" || segs[0] == "beta") {
		segs = segs[1:]
	}
	var names []string
	for i, s := range segs {
		if i%2 == 0 {
			if j := strings.IndexByte(s, '('); j >= 0 { // servicePrincipals(appId='...')
				s = s[:j]
			}
			names = append(names, s)
		}
	}
	return metrics.SystemGraph, req.Method + " " + strings.Join(names, "/")
}

// retryAfter reads Retry-After in seconds or as an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// InstrumentRunner wraps a PowerShell host (or any exchange.Runner) so
// every cmdlet reports its latency, its failures by Exchange exception
// type, and throttling errors. system is metrics.SystemPowerShell or
// metrics.SystemLync.
func InstrumentRunner(m *metrics.Metrics, system string, r exchange.Runner) exchange.Runner {
	if r == nil {
		return nil
	}
	return &instrumentedRunner{r: r, m: m, system: system}
}

type instrumentedRunner struct {
	r      exchange.Runner
	m      *metrics.Metrics
	system string
}

func (i *instrumentedRunner) Run(ctx context.Context, cmd exchange.Command) ([]exchange.Row, error) {
	start := time.Now()
	rows, err := i.r.Run(ctx, cmd)
	i.m.ObserveCall(i.system, cmd.Cmdlet, time.Since(start), err)
	if exchange.HasType(err, exchange.TypeThrottled) {
		i.m.ObserveThrottle(i.system, 0)
	}
	return rows, err
}

// RunBatch records the round trip as operation "batch" and each failed
// command under its cmdlet.
func (i *instrumentedRunner) RunBatch(ctx context.Context, cmds []exchange.Command) ([]exchange.Result, error) {
	start := time.Now()
	res, err := i.r.RunBatch(ctx, cmds)
	d := time.Since(start)
	i.m.ObserveCall(i.system, "batch", d, err)
	for k, r := range res {
		if r.Error != nil && k < len(cmds) {
			i.m.ObserveError(i.system, cmds[k].Cmdlet, metrics.ErrorType(r.Error))
			if exchange.HasType(r.Error, exchange.TypeThrottled) {
				i.m.ObserveThrottle(i.system, 0)
			}
		}
	}
	return res, err
}
