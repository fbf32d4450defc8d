package backend

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
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
		t.observeStatus(system, op, resp.StatusCode, resp.Header.Get("Retry-After"), d)
	default:
		t.m.ObserveCall(system, op, d, nil)
		if system == metrics.SystemGraph && op == batchOperation {
			t.observeBatch(req, resp)
		}
	}
	return resp, err
}

func (t *instrumentedTransport) observeStatus(system, op string, status int, ra string, d time.Duration) {
	t.m.ObserveCallError(system, op, "http_"+strconv.Itoa(status), d)
	if status == http.StatusTooManyRequests || (status == http.StatusServiceUnavailable && ra != "") {
		t.m.ObserveThrottle(system, retryAfter(ra, time.Now()))
	}
}

// batchOperation is how classifyRequest names a Graph JSON batch.
const batchOperation = "POST $batch"

// observeBatch reports the failed requests inside a successful JSON batch:
// Graph answers a batch 200 and puts each request's 429 or 403 in its own
// response, so without this the throttling that discovery meets (it reads
// Entra in one batch) would be invisible. Each inner failure counts under
// its own operation ("GET servicePrincipals"), without a latency of its
// own: the batch's round trip is the only one there is.
func (t *instrumentedTransport) observeBatch(req *http.Request, resp *http.Response) {
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return // the client reads the same error from the body it gets
	}
	var out struct {
		Responses []struct {
			ID      string            `json:"id"`
			Status  int               `json:"status"`
			Headers map[string]string `json:"headers"`
		} `json:"responses"`
	}
	if json.Unmarshal(body, &out) != nil {
		return
	}
	ops := batchRequestOperations(req)
	for _, r := range out.Responses {
		if r.Status < 400 {
			continue
		}
		op, ok := ops[r.ID]
		if !ok {
			op = batchOperation
		}
		var ra string
		for k, v := range r.Headers {
			if strings.EqualFold(k, "Retry-After") {
				ra = v
			}
		}
		t.m.ObserveError(metrics.SystemGraph, op, "http_"+strconv.Itoa(r.Status))
		if r.Status == http.StatusTooManyRequests || (r.Status == http.StatusServiceUnavailable && ra != "") {
			t.m.ObserveThrottle(metrics.SystemGraph, retryAfter(ra, time.Now()))
		}
	}
}

// batchRequestOperations maps the IDs of a batch's requests to operation
// labels, reading the request body again (GetBody; the compression
// middleware may have gzipped it). Nil when the body cannot be had.
func batchRequestOperations(req *http.Request) map[string]string {
	if req.GetBody == nil {
		return nil
	}
	rc, err := req.GetBody()
	if err != nil {
		return nil
	}
	defer rc.Close()
	var r io.Reader = rc
	if strings.EqualFold(req.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(rc)
		if err != nil {
			return nil
		}
		r = zr
	}
	var in struct {
		Requests []struct {
			ID     string `json:"id"`
			Method string `json:"method"`
			URL    string `json:"url"`
		} `json:"requests"`
	}
	if json.NewDecoder(r).Decode(&in) != nil {
		return nil
	}
	ops := make(map[string]string, len(in.Requests))
	for _, x := range in.Requests {
		u, err := url.Parse(x.URL)
		if err != nil {
			continue
		}
		_, op := classifyRequest(&http.Request{Method: strings.ToUpper(x.Method), URL: u})
		ops[x.ID] = op
	}
	return ops
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
