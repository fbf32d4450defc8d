package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	commonpb "go.temporal.io/api/common/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/hybridflow/hybridflow/internal/codec"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/devserver"
	"github.com/hybridflow/hybridflow/internal/metrics"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/workflows"
)

// TestMain lets the simulated world's PowerShell hosts (this test binary
// re-run as a relay, sim.HostCommand) take over before the tests.
func TestMain(m *testing.M) {
	sim.MaybeRunHost()
	os.Exit(m.Run())
}

// TestWorkerEncryptedAndObserved runs the worker binary's own serve()
// against the real dev server with payload encryption and the metrics
// listener on, sets up one tenant of the small simulated world, and checks
// what production depends on:
//
//   - encryption: no raw history payload or failure message
//     carries the tenant's domain or any other clear text; a client with
//     the codec, and the codec server's HTTP endpoint, read it back;
//   - observability: the scrape has the product metrics
//     with plausible values and the SDK's, and the health endpoints answer.
func TestWorkerEncryptedAndObserved(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts the Temporal dev server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()

	// Two keys: k1 (old, in a file) and k2 (active, from the environment).
	dir := t.TempDir()
	newKey := func() string {
		b := make([]byte, codec.KeySize)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	k1File := filepath.Join(dir, "k1.key")
	if err := os.WriteFile(k1File, []byte(newKey()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HF_TEST_CODEC_K2": newKey()}
	getenv := func(k string) string { return env[k] }

	// The small world, with a Graph throttle (Retry-After 1s) and one
	// transient on-prem failure for tenant 1, so throttling metrics and an
	// activity failure (stored in history) appear.
	tenant := "22222222-2222-4222-8222-000000000001"
	const domain = "small1.onmicrosoft.com"
	world, err := os.ReadFile(filepath.Join("..", "configs", "sim", "small.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	world = append(world, fmt.Sprintf(`
faults:
  - protocol: graph
    operation: GET servicePrincipals
    tenant: %[1]s
    kind: throttle
    fail_first_n: 1
    retry_after: 1s
  - protocol: shell
    operation: Get-AuthConfig
    tenant: %[1]s
    kind: 5xx
    fail_first_n: 1
`, tenant)...)
	worldFile := filepath.Join(dir, "world.yaml")
	if err := os.WriteFile(worldFile, world, 0o600); err != nil {
		t.Fatal(err)
	}
	metricsAddr := freeAddr(t)
	cfgFile := filepath.Join(dir, "worker.yaml")
	if err := os.WriteFile(cfgFile, fmt.Appendf(nil, `temporal:
  address: %s
  namespace: default
  codec:
    active: k2
    keys:
      - id: k2
        key: env:HF_TEST_CODEC_K2
      - id: k1
        key: file:%s
roles: [cloud]
log_level: warn
simulate:
  world: %s
metrics_address: %s
`, srv.FrontendHostPort(), k1File, worldFile, metricsAddr), 0o600); err != nil {
		t.Fatal(err)
	}

	wctx, stopWorker := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- serve(wctx, options{configPath: cfgFile, identity: "worker@test"}, getenv) }()
	base := "http://" + metricsAddr
	start := time.Now()
	waitHTTP(t, ctx, served, base+metrics.PathReadyz)
	t.Logf("worker ready in %s", time.Since(start).Round(time.Millisecond))
	if code := get(t, base+metrics.PathHealthz); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}

	// The operator's side: the same config, so the same codec.
	cfg, err := config.LoadWorkerConfig(cfgFile, getenv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := temporalx.Dial(ctx, cfg.Temporal, nil, getenv)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w, err := sim.Load(worldFile)
	if err != nil {
		t.Fatal(err)
	}
	tn, _ := w.Inventory().LookupByID(tenant)
	in := workflows.InputFromTenant(tn, workflows.SetupOptions{Retry: workflows.RetryOptions{InitialInterval: 100 * time.Millisecond, MaximumInterval: time.Second, MaximumAttempts: 5}})
	wfID := workflows.SetupWorkflowID(tenant)
	start = time.Now()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wfID, TaskQueue: temporalx.CloudQueue, WorkflowExecutionTimeout: 3 * time.Minute}, workflows.Setup, in)
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.SetupResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("setup: %v", err)
	}
	if res.State != workflows.StateVerified {
		t.Fatalf("setup ended %s: %+v", res.State, res)
	}
	t.Logf("setup of %s verified in %s, %d writes", tenant, time.Since(start).Round(time.Millisecond), res.Writes)

	t.Run("history is ciphertext without the codec", func(t *testing.T) {
		plain, err := client.Dial(client.Options{HostPort: srv.FrontendHostPort(), Namespace: "default"})
		if err != nil {
			t.Fatal(err)
		}
		defer plain.Close()
		events := history(t, ctx, plain, wfID, run.GetRunID())
		var payloads, failures int
		var rawBytes int
		secrets := []string{domain, "small1", "Small 1", "onmicrosoft"}
		for _, e := range events {
			raw, err := proto.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			rawBytes += len(raw)
			for _, s := range secrets {
				if bytes.Contains(raw, []byte(s)) {
					t.Errorf("event %d (%s) carries %q in clear text", e.GetEventId(), e.GetEventType(), s)
				}
			}
			walk(e.ProtoReflect(), func(m proto.Message) {
				switch v := m.(type) {
				case *commonpb.Payload:
					payloads++
					if !codec.IsEncrypted(v) {
						t.Errorf("event %d (%s): payload with encoding %q is not encrypted", e.GetEventId(), e.GetEventType(), v.Metadata["encoding"])
					} else if id := string(v.Metadata[codec.MetadataKeyID]); id != "k2" {
						t.Errorf("event %d: sealed with %q, want the active key k2", e.GetEventId(), id)
					}
				case *failurepb.Failure:
					failures++
					if v.GetMessage() != "Encoded failure" || v.GetStackTrace() != "" {
						t.Errorf("event %d (%s): failure message in clear text: %q", e.GetEventId(), e.GetEventType(), v.GetMessage())
					}
				}
			})
		}
		if payloads < 10 || failures < 1 {
			t.Fatalf("only %d payloads and %d failures in %d events: the check saw too little", payloads, failures, len(events))
		}
		t.Logf("%d events (%d bytes): %d payloads all binary/encrypted with k2, %d failures encoded, no clear text", len(events), rawBytes, payloads, failures)

		// The codec server (what the Web UI calls) opens them.
		first := events[0].GetWorkflowExecutionStartedEventAttributes().GetInput()
		cdc, err := codec.FromConfig(cfg.Temporal.Codec, getenv)
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(codec.HTTPHandler(cdc, codec.HTTPOptions{AllowedOrigins: []string{"http://localhost:8233"}}))
		defer hs.Close()
		body, _ := protojson.Marshal(first)
		req, _ := http.NewRequest(http.MethodPost, hs.URL+"/decode", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Namespace", "default")
		req.Header.Set("Origin", "http://localhost:8233")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		var decoded commonpb.Payloads
		if err := protojson.Unmarshal(out, &decoded); err != nil || resp.StatusCode != 200 {
			t.Fatalf("codec server: %d %s %v", resp.StatusCode, out, err)
		}
		var viaServer workflows.SetupInput
		if err := converter.GetDefaultDataConverter().FromPayloads(&decoded, &viaServer); err != nil || viaServer.Tenant.InitialDomain != domain {
			t.Fatalf("codec server decoded %+v, %v", viaServer.Tenant, err)
		}
		t.Logf("codec server /decode: input.tenant.initial_domain = %s", viaServer.Tenant.InitialDomain)
	})

	t.Run("history is clear with the codec", func(t *testing.T) {
		events := history(t, ctx, c, wfID, run.GetRunID())
		var got workflows.SetupInput
		dc := codec.DataConverter(mustCodec(t, cfg, getenv))
		if err := dc.FromPayloads(events[0].GetWorkflowExecutionStartedEventAttributes().GetInput(), &got); err != nil {
			t.Fatal(err)
		}
		if got.Tenant.InitialDomain != domain {
			t.Fatalf("decoded initial domain %q", got.Tenant.InitialDomain)
		}
		// Without k2 the history cannot be read at all: rotation keeps old
		// keys, and a codec without the active one fails loudly.
		onlyK1 := *cfg.Temporal.Codec
		onlyK1.Active, onlyK1.Keys = "k1", onlyK1.Keys[1:]
		old, err := codec.FromConfig(&onlyK1, getenv)
		if err != nil {
			t.Fatal(err)
		}
		if err := codec.DataConverter(old).FromPayloads(events[0].GetWorkflowExecutionStartedEventAttributes().GetInput(), &got); err == nil || !strings.Contains(err.Error(), `"k2"`) {
			t.Fatalf("a codec without k2 read the history: %v", err)
		}
	})

	t.Run("metrics after the run", func(t *testing.T) {
		var fams map[string]*dto.MetricFamily
		deadline := time.Now().Add(60 * time.Second)
		for {
			fams = scrape(t, base+metrics.PathMetrics)
			// The tenants gauge comes from visibility, which lags a little,
			// and is cached for 15s.
			if value(fams, metrics.NameTenants, map[string]string{"state": workflows.StateVerified}) == 1 || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Second)
		}
		logFamilies(t, fams, "hybridflow_")

		if n := sum(fams, metrics.NameSteps, nil); n < 10 {
			t.Errorf("%s = %v, want at least the setup's steps", metrics.NameSteps, n)
		}
		if n := sum(fams, metrics.NameSteps, map[string]string{"outcome": "created"}); n < 1 {
			t.Errorf("no step created anything on a fresh tenant: %v", n)
		}
		if n := sum(fams, metrics.NameSteps, map[string]string{"step": "DiscoverOnPrem", "outcome": metrics.OutcomeFailed}); n != 1 {
			t.Errorf("the injected on-prem failure: %s{step=DiscoverOnPrem,outcome=failed} = %v, want 1", metrics.NameSteps, n)
		}
		for _, system := range []string{metrics.SystemGraph, metrics.SystemExchangeOnline} {
			count, buckets := histogram(fams, metrics.NameCallDuration, map[string]string{"system": system})
			if count < 1 || buckets < 1 {
				t.Errorf("%s{system=%s}: %d calls, %d populated finite buckets", metrics.NameCallDuration, system, count, buckets)
			}
		}
		if n := sum(fams, metrics.NameCallErrors, map[string]string{"system": metrics.SystemGraph, "error_type": "http_429"}); n != 1 {
			t.Errorf("%s{system=graph,error_type=http_429} = %v, want the 1 injected", metrics.NameCallErrors, n)
		}
		if n := sum(fams, metrics.NameThrottled, map[string]string{"system": metrics.SystemGraph}); n != 1 {
			t.Errorf("%s{system=graph} = %v, want 1", metrics.NameThrottled, n)
		}
		if count, _ := histogram(fams, metrics.NameThrottleWait, map[string]string{"system": metrics.SystemGraph}); count != 1 || histSum(fams, metrics.NameThrottleWait) < 1 {
			t.Errorf("%s: %d waits, %vs; want 1 wait of 1s", metrics.NameThrottleWait, count, histSum(fams, metrics.NameThrottleWait))
		}
		if n := value(fams, metrics.NameTenants, map[string]string{"state": workflows.StateVerified}); n != 1 {
			t.Errorf("%s{state=verified} = %v, want 1", metrics.NameTenants, n)
		}
		if n := value(fams, metrics.NameWorkerReady, nil); n != 1 {
			t.Errorf("%s = %v", metrics.NameWorkerReady, n)
		}
		// The SDK's own metrics, Prometheus-named.
		var sdk []string
		for name := range fams {
			if strings.HasPrefix(name, "temporal_") {
				sdk = append(sdk, name)
			}
		}
		sort.Strings(sdk)
		for _, want := range []string{"temporal_workflow_completed", "temporal_activity_execution_latency", "temporal_request"} {
			if !hasPrefix(sdk, want) {
				t.Errorf("no SDK metric %s*; have %v", want, sdk)
			}
		}
		t.Logf("%d SDK metric families, e.g. %v", len(sdk), sdk[:min(len(sdk), 6)])
	})

	stopWorker()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("worker exited with %v", err)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("worker did not stop")
	}
	if _, err := http.Get(base + metrics.PathHealthz); err == nil {
		t.Error("health endpoint still answers after the worker stopped")
	}
}

func mustCodec(t *testing.T, cfg *config.WorkerConfig, getenv func(string) string) *codec.Codec {
	t.Helper()
	c, err := codec.FromConfig(cfg.Temporal.Codec, getenv)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitHTTP polls url until it answers 200, failing early if the worker exits.
func waitHTTP(t *testing.T, ctx context.Context, served <-chan error, url string) {
	t.Helper()
	for {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case err := <-served:
			t.Fatalf("worker exited before ready: %v", err)
		case <-ctx.Done():
			t.Fatalf("%s never answered 200", url)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func history(t *testing.T, ctx context.Context, c client.Client, id, runID string) []*historypb.HistoryEvent {
	t.Helper()
	var out []*historypb.HistoryEvent
	it := c.GetWorkflowHistory(ctx, id, runID, false, 0)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		t.Fatal("empty history")
	}
	return out
}

// walk visits every Payload and Failure inside m, except search attributes
// (indexed by the server, never encrypted, and holding only the tenant ID,
// cloud, step and state).
func walk(m protoreflect.Message, visit func(proto.Message)) {
	switch v := m.Interface().(type) {
	case *commonpb.SearchAttributes:
		return
	case *commonpb.Payload:
		visit(v)
		return
	case *failurepb.Failure:
		visit(v)
	}
	m.Range(func(fd protoreflect.FieldDescriptor, val protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := val.List()
			for i := 0; i < l.Len(); i++ {
				walk(l.Get(i).Message(), visit)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			val.Map().Range(func(_ protoreflect.MapKey, v protoreflect.Value) bool {
				walk(v.Message(), visit)
				return true
			})
		case fd.Message() != nil && !fd.IsMap():
			walk(val.Message(), visit)
		}
		return true
	})
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

func matches(m *dto.Metric, labels map[string]string) bool {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for k, v := range labels {
		if have[k] != v {
			return false
		}
	}
	return true
}

func sum(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	var s float64
	for _, m := range fams[name].GetMetric() {
		if matches(m, labels) {
			s += m.GetCounter().GetValue()
		}
	}
	return s
}

func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	for _, m := range fams[name].GetMetric() {
		if matches(m, labels) {
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// histogram returns the observations of matching series and how many
// finite buckets hold any.
func histogram(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (count uint64, populated int) {
	for _, m := range fams[name].GetMetric() {
		if !matches(m, labels) {
			continue
		}
		count += m.GetHistogram().GetSampleCount()
		for _, b := range m.GetHistogram().GetBucket() {
			if b.GetCumulativeCount() > 0 {
				populated++
			}
		}
	}
	return count, populated
}

func histSum(fams map[string]*dto.MetricFamily, name string) float64 {
	var s float64
	for _, m := range fams[name].GetMetric() {
		s += m.GetHistogram().GetSampleSum()
	}
	return s
}

func hasPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func logFamilies(t *testing.T, fams map[string]*dto.MetricFamily, prefix string) {
	var names []string
	for n := range fams {
		if strings.HasPrefix(n, prefix) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		for _, m := range fams[n].GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			switch {
			case m.Counter != nil:
				t.Logf("%s{%s} %v", n, strings.Join(ls, ","), m.GetCounter().GetValue())
			case m.Gauge != nil:
				t.Logf("%s{%s} %v", n, strings.Join(ls, ","), m.GetGauge().GetValue())
			case m.Histogram != nil:
				t.Logf("%s{%s} count=%d sum=%.3fs", n, strings.Join(ls, ","), m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum())
			}
		}
	}
}
