package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/hybridflow/hybridflow/internal/exchange"
)

func TestErrorType(t *testing.T) {
	RegisterErrorClassifier(func(err error) string {
		if strings.Contains(err.Error(), "custom") {
			return "custom_kind"
		}
		return ""
	})
	dnsErr := &net.DNSError{Err: "no such host", Name: "graph.microsoft.com", IsTimeout: true}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{&exchange.Error{Type: exchange.TypeThrottled, Message: "busy contoso.com"}, "Throttled"},
		{fmt.Errorf("wrapped: %w", &exchange.Error{Type: exchange.TypeAlreadyExists}), "ADObjectAlreadyExistsException"},
		{temporal.NewNonRetryableApplicationError("no", "MissingPermission", nil), "MissingPermission"},
		{errors.New("a custom failure"), "custom_kind"},
		{fmt.Errorf("call: %w", context.DeadlineExceeded), "timeout"},
		{context.Canceled, "canceled"},
		{dnsErr, "timeout"},
		{&net.OpError{Op: "dial", Err: errors.New("refused")}, "network"},
		{errors.New("mail.contoso.com said no"), "other"},
	} {
		if got := ErrorType(tc.err); got != tc.want {
			t.Errorf("ErrorType(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestObserve(t *testing.T) {
	m := New()
	m.ObserveCall(SystemGraph, "GET servicePrincipals", 20*time.Millisecond, nil)
	m.ObserveCall(SystemPowerShell, "New-AuthServer", time.Second, &exchange.Error{Type: exchange.TypeAuthMetadata})
	m.ObserveError(SystemPowerShell, "Get-AuthConfig", "Throttled")
	m.ObserveThrottle(SystemGraph, 2*time.Second)
	m.ObserveThrottle(SystemPowerShell, 0)
	m.ObserveStep("EnsureAuthServers", "created", time.Second)
	m.ObserveStep("EnsureAuthServers", OutcomeFailed, time.Second)

	if n := testutil.ToFloat64(m.steps.WithLabelValues("EnsureAuthServers", "created")); n != 1 {
		t.Errorf("steps created = %v", n)
	}
	if n := testutil.ToFloat64(m.callErrors.WithLabelValues(SystemPowerShell, "New-AuthServer", "AuthMetadataClientException")); n != 1 {
		t.Errorf("call errors = %v", n)
	}
	if n := testutil.CollectAndCount(m.callDuration); n != 2 {
		t.Errorf("%d call series, want 2 (ObserveError adds no latency)", n)
	}
	if n := testutil.ToFloat64(m.throttled.WithLabelValues(SystemPowerShell)); n != 1 {
		t.Errorf("throttled = %v", n)
	}
	if n := testutil.CollectAndCount(m.throttleWait); n != 1 {
		t.Errorf("%d throttle-wait series, want only graph's (powershell gave no wait)", n)
	}
	// Labels are bounded and printable.
	m.ObserveCall(SystemGraph, strings.Repeat("x", 500)+"\n", time.Millisecond, nil)
	if err := testutil.CollectAndCompare(m.ready, strings.NewReader("# HELP hybridflow_worker_ready 1 once every worker of this process polls its task queue, 0 before and while stopping.\n# TYPE hybridflow_worker_ready gauge\nhybridflow_worker_ready 0\n")); err != nil {
		t.Error(err)
	}
}

func TestOutcomeOf(t *testing.T) {
	type stepResult struct{ Outcome string }
	type named string
	type withNamed struct{ Outcome named }
	for _, tc := range []struct {
		res  any
		want string
	}{
		{stepResult{Outcome: "created"}, "created"},
		{&stepResult{Outcome: "unchanged"}, "unchanged"},
		{withNamed{Outcome: "updated"}, "updated"},
		{stepResult{}, OutcomeCompleted},
		{(*stepResult)(nil), OutcomeCompleted},
		{nil, OutcomeCompleted},
		{"a string", OutcomeCompleted},
		{struct{ Outcome int }{3}, OutcomeCompleted},
	} {
		if got := outcomeOf(tc.res); got != tc.want {
			t.Errorf("outcomeOf(%#v) = %q, want %q", tc.res, got, tc.want)
		}
	}
}

type fakeCounter struct {
	queries []string
	fail    string
}

func (f *fakeCounter) CountWorkflow(_ context.Context, req *workflowservice.CountWorkflowExecutionsRequest) (*workflowservice.CountWorkflowExecutionsResponse, error) {
	f.queries = append(f.queries, req.Query)
	if f.fail != "" && strings.Contains(req.Query, f.fail) {
		return nil, errors.New("visibility unavailable")
	}
	n := int64(0)
	switch {
	case strings.Contains(req.Query, "'paused'"):
		n = 3
	case strings.Contains(req.Query, "'verified'"):
		n = 7
	}
	return &workflowservice.CountWorkflowExecutionsResponse{Count: n}, nil
}

func TestTenantStates(t *testing.T) {
	m := New()
	fc := &fakeCounter{fail: "'failed'"}
	if err := m.RegisterTenantStates(TenantStates{Client: fc, Namespace: "default", WorkflowType: "Setup", StateAttribute: "HybridflowState",
		Open: []string{"running", "paused"}, Closed: []string{"verified", "failed"}, CacheFor: time.Hour}); err != nil {
		t.Fatal(err)
	}
	want := `# HELP hybridflow_tenants Setup executions (one per tenant run) by the state in their HybridflowState search attribute: open states count running executions, closed states closed ones within retention.
# TYPE hybridflow_tenants gauge
hybridflow_tenants{state="paused"} 3
hybridflow_tenants{state="running"} 0
hybridflow_tenants{state="verified"} 7
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), NameTenants); err != nil {
		t.Fatal(err)
	}
	if len(fc.queries) != 4 {
		t.Fatalf("queries %v", fc.queries)
	}
	if q := fc.queries[1]; q != "WorkflowType = 'Setup' AND HybridflowState = 'paused' AND ExecutionStatus = 'Running'" {
		t.Errorf("open query %q", q)
	}
	if q := fc.queries[2]; q != "WorkflowType = 'Setup' AND HybridflowState = 'verified' AND ExecutionStatus != 'Running'" {
		t.Errorf("closed query %q", q)
	}
	// Cached: a second scrape asks nothing; the failed state is counted as an error, not guessed.
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), NameTenants); err != nil {
		t.Fatal(err)
	}
	if len(fc.queries) != 4 {
		t.Fatalf("not cached: %d queries", len(fc.queries))
	}
	if n, _ := testutil.GatherAndCount(m.Registry(), NameTenantsErrors); n != 1 {
		t.Fatalf("error counter series %d", n)
	}
}

func TestServer(t *testing.T) {
	m := New()
	healthy := errors.New("temporal unreachable")
	s, err := Serve("127.0.0.1:0", m, ServerOptions{Check: func(context.Context) error { return healthy }})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(PathHealthz); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, body := get(PathReadyz); code != 503 || !strings.Contains(body, "workers not started") {
		t.Fatalf("readyz before start: %d %s", code, body)
	}
	s.SetReady(true)
	if code, body := get(PathReadyz); code != 503 || !strings.Contains(body, "temporal unreachable") {
		t.Fatalf("readyz with Temporal down: %d %s", code, body)
	}
	healthy = nil
	if code, _ := get(PathReadyz); code != 200 {
		t.Fatalf("readyz ready: %d", code)
	}
	m.ObserveStep("EnsureAuthServers", "created", time.Millisecond)
	code, body := get(PathMetrics)
	if code != 200 || !strings.Contains(body, `hybridflow_steps_total{outcome="created",step="EnsureAuthServers"} 1`) ||
		!strings.Contains(body, "hybridflow_worker_ready 1") || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("metrics %d:\n%s", code, body)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + s.Addr() + PathHealthz); err == nil {
		t.Fatal("still serving after Shutdown")
	}
}

func TestTemporalHandler(t *testing.T) {
	m := New()
	h, closer := m.TemporalHandler(nil)
	h.WithTags(map[string]string{"namespace": "default"}).Counter("temporal_request").Inc(2)
	h.Timer("temporal_activity_execution_latency").Record(30 * time.Millisecond)
	_ = closer.Close() // flushes
	body := gatherText(t, m)
	for _, want := range []string{`temporal_request_total{namespace="default"} 2`, "temporal_activity_execution_latency_seconds_bucket"} {
		if !strings.Contains(body, want) {
			t.Errorf("no %q in\n%s", want, body)
		}
	}
}

func gatherText(t *testing.T, m *Metrics) string {
	t.Helper()
	s, err := Serve("127.0.0.1:0", m, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	resp, err := http.Get("http://" + s.Addr() + PathMetrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
