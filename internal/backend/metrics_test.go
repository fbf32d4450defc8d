package backend

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/graph"
	"github.com/hybridflow/hybridflow/internal/metrics"
)

func TestClassifyRequest(t *testing.T) {
	for _, tc := range []struct {
		method, url, cmdlet string
		system, op          string
	}{
		{"GET", "https://graph.microsoft.com/v1.0/servicePrincipals?$filter=appId%20eq%20'00000002-0000-0ff1-ce00-000000000000'", "", metrics.SystemGraph, "GET servicePrincipals"},
		{"PATCH", "https://graph.microsoft.us/v1.0/servicePrincipals/8e7c3c2e-8c54-4c2f-a6a3-1f4b0d1e2f3a", "", metrics.SystemGraph, "PATCH servicePrincipals"},
		{"POST", "https://127.0.0.1:4443/v1.0/servicePrincipals/abc/appRoleAssignments", "", metrics.SystemGraph, "POST servicePrincipals/appRoleAssignments"},
		{"DELETE", "https://graph.microsoft.com/v1.0/servicePrincipals/abc/appRoleAssignments/def", "", metrics.SystemGraph, "DELETE servicePrincipals/appRoleAssignments"},
		{"GET", "https://graph.microsoft.com/beta/applications(appId='x')", "", metrics.SystemGraph, "GET applications"},
		{"POST", "https://outlook.office365.com/adminapi/beta/t1/InvokeCommand", "New-IntraOrganizationConnector", metrics.SystemExchangeOnline, "New-IntraOrganizationConnector"},
		{"POST", "https://outlook.office365.com/adminapi/beta/t1/InvokeCommand", "", metrics.SystemExchangeOnline, "InvokeCommand"},
		{"POST", "https://login.microsoftonline.com/t1/oauth2/v2.0/token", "", "entra_token", "POST token"},
	} {
		req := httptest.NewRequest(tc.method, tc.url, nil)
		if tc.cmdlet != "" {
			req.Header.Set("X-CmdletName", tc.cmdlet)
		}
		if s, op := classifyRequest(req); s != tc.system || op != tc.op {
			t.Errorf("%s %s = %s %q, want %s %q", tc.method, tc.url, s, op, tc.system, tc.op)
		}
	}
}

func TestInstrumentedTransport(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls == 1 {
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		_, _ = io.WriteString(w, `{"value":[]}`)
	}))
	defer srv.Close()
	m := metrics.New()
	b := &Backend{httpClient: &http.Client{Timeout: time.Minute}}
	orig := b.httpClient
	b.Instrument(m)
	if b.httpClient == orig || b.httpClient.Timeout != time.Minute {
		t.Fatal("Instrument must replace the client, keeping its settings")
	}
	for range 2 {
		resp, err := b.httpClient.Get(srv.URL + "/v1.0/domains")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// A transport failure.
	if _, err := b.httpClient.Get("http://127.0.0.1:1/v1.0/organization"); err == nil {
		t.Fatal("port 1 answered")
	}
	body := scrape(t, m)
	for _, want := range []string{
		`hybridflow_call_duration_seconds_count{operation="GET domains",system="graph"} 2`,
		`hybridflow_call_errors_total{error_type="http_429",operation="GET domains",system="graph"} 1`,
		`hybridflow_throttled_total{system="graph"} 1`,
		`hybridflow_throttle_wait_seconds_sum{system="graph"} 2`,
		`hybridflow_call_errors_total{error_type="network",operation="GET organization",system="graph"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %s", want)
		}
	}
}

type fakeRunner struct{ err error }

func (f fakeRunner) Run(context.Context, exchange.Command) ([]exchange.Row, error) {
	return []exchange.Row{{"Name": "x"}}, f.err
}

func (f fakeRunner) RunBatch(_ context.Context, cmds []exchange.Command) ([]exchange.Result, error) {
	out := make([]exchange.Result, len(cmds))
	out[1].Error = &exchange.Error{Type: exchange.TypeThrottled}
	return out, nil
}

func TestInstrumentRunner(t *testing.T) {
	m := metrics.New()
	ok := InstrumentRunner(m, metrics.SystemPowerShell, fakeRunner{})
	if _, err := ok.Run(context.Background(), exchange.Command{Cmdlet: "Get-AuthServer"}); err != nil {
		t.Fatal(err)
	}
	bad := InstrumentRunner(m, metrics.SystemPowerShell, fakeRunner{err: &exchange.Error{Type: exchange.TypeDuplicateIOCDomain, Message: "contoso.com is used"}})
	if _, err := bad.Run(context.Background(), exchange.Command{Cmdlet: "New-IntraOrganizationConnector"}); err == nil {
		t.Fatal("error lost")
	}
	if _, err := ok.RunBatch(context.Background(), []exchange.Command{{Cmdlet: "Get-AcceptedDomain"}, {Cmdlet: "Get-ExchangeServer"}}); err != nil {
		t.Fatal(err)
	}
	if InstrumentRunner(m, metrics.SystemLync, nil) != nil {
		t.Fatal("nil runner must stay nil")
	}
	body := scrape(t, m)
	for _, want := range []string{
		`hybridflow_call_duration_seconds_count{operation="Get-AuthServer",system="powershell"} 1`,
		`hybridflow_call_errors_total{error_type="DuplicateIntraOrganizationConnectorDomainException",operation="New-IntraOrganizationConnector",system="powershell"} 1`,
		`hybridflow_call_duration_seconds_count{operation="batch",system="powershell"} 1`,
		`hybridflow_call_errors_total{error_type="Throttled",operation="Get-ExchangeServer",system="powershell"} 1`,
		`hybridflow_throttled_total{system="powershell"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(body, "contoso") {
		t.Error("an error message leaked into a label")
	}
}

func TestGraphErrorsClassified(t *testing.T) {
	err := &graph.Error{Op: "UpdateServicePrincipal", Kind: graph.Forbidden, Err: errors.New("Authorization_RequestDenied")}
	if got := metrics.ErrorType(err); got != "graph_forbidden" {
		t.Fatalf("ErrorType = %q", got)
	}
}

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	s, err := metrics.Serve("127.0.0.1:0", m, metrics.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	resp, err := http.Get("http://" + s.Addr() + metrics.PathMetrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return buf.String()
}

// A JSON batch answers 200 and carries each request's failure inside; the
// inner 429 and 403 must count under their own operations, and the client
// must still read the whole body.
func TestInstrumentedTransportBatch(t *testing.T) {
	const reply = `{"responses":[` +
		`{"id":"1","status":200,"body":{"value":[]}},` +
		`{"id":"2","status":429,"headers":{"Retry-After":"3"},"body":{"error":{"code":"TooManyRequests"}}},` +
		`{"id":"3","status":403,"body":{"error":{"code":"Authorization_RequestDenied"}}}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, reply)
	}))
	defer srv.Close()
	m := metrics.New()
	b := &Backend{httpClient: &http.Client{Timeout: time.Minute}}
	b.Instrument(m)

	var zbody bytes.Buffer
	zw := gzip.NewWriter(&zbody)
	_, _ = io.WriteString(zw, `{"requests":[`+
		`{"id":"1","method":"GET","url":"/domains?$select=id"},`+
		`{"id":"2","method":"GET","url":"/servicePrincipals?$filter=appId eq '00000002-0000-0ff1-ce00-000000000000'"},`+
		`{"id":"3","method":"GET","url":"/applications?$filter=displayName eq 'x'"}]}`)
	_ = zw.Close()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1.0/$batch", bytes.NewReader(zbody.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := b.httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != reply {
		t.Fatalf("the client got %q, want the batch reply untouched", got)
	}
	body := scrape(t, m)
	for _, want := range []string{
		`hybridflow_call_duration_seconds_count{operation="POST _batch",system="graph"} 1`, // labels are clipped to [a-zA-Z0-9 _/-]
		`hybridflow_call_errors_total{error_type="http_429",operation="GET servicePrincipals",system="graph"} 1`,
		`hybridflow_call_errors_total{error_type="http_403",operation="GET applications",system="graph"} 1`,
		`hybridflow_throttled_total{system="graph"} 1`,
		`hybridflow_throttle_wait_seconds_sum{system="graph"} 3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %s", want)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
	if strings.Contains(body, `operation="GET domains"`) || strings.Contains(body, `duration_seconds_count{operation="GET servicePrincipals"`) {
		t.Error("an inner request got a latency or error of its own")
	}
}
