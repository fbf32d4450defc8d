package online

// Edge cases the simulator does not produce, against stub servers.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/exchange"
)

type fixedCred struct{ err error }

func (c fixedCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "t", ExpiresOn: time.Now().Add(time.Hour)}, c.err
}

// stub serves every request with h and counts them.
func stub(t *testing.T, h func(n int, w http.ResponseWriter, r *http.Request)) (*Client, *int32, *httptest.Server) {
	t.Helper()
	var n int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(int(atomic.AddInt32(&n, 1)), w, r)
	}))
	t.Cleanup(srv.Close)
	c := New(Options{Cloud: cloud.MustLookup("global"), TenantID: "t1", Credential: fixedCred{}, BaseURL: srv.URL + "/",
		HTTPClient: srv.Client(), RetryBackoff: time.Millisecond, MaxPages: 3})
	return c, &n, srv
}

func TestRequestShape(t *testing.T) {
	var got *http.Request
	var body map[string]any
	c, _, _ := stub(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		got = r.Clone(context.Background())
		raw, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(raw, &body)
		_, _ = io.WriteString(w, `{"value":[]}`)
	})
	if _, err := c.Run(context.Background(), exchange.Command{Cmdlet: "Get-IntraOrganizationConnector", Parameters: map[string]any{"Identity": "x"}}); err != nil {
		t.Fatal(err)
	}
	if got.Method != http.MethodPost || got.URL.Path != "/adminapi/beta/t1/InvokeCommand" {
		t.Fatalf("%s %s", got.Method, got.URL.Path)
	}
	for h, want := range map[string]string{
		"Authorization":   "Bearer t",
		"X-AnchorMailbox": "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@t1",
		"Content-Type":    "application/json",
	} {
		if got.Header.Get(h) != want {
			t.Errorf("%s = %q, want %q", h, got.Header.Get(h), want)
		}
	}
	in, _ := body["CmdletInput"].(map[string]any)
	if in["CmdletName"] != "Get-IntraOrganizationConnector" || in["Parameters"].(map[string]any)["Identity"] != "x" {
		t.Fatalf("body %v", body)
	}
}

func TestReplyClassification(t *testing.T) {
	withContext := func(typeName string) string {
		msg, _ := json.Marshal(map[string]string{"Message": "m", "TypeName": typeName})
		b, _ := json.Marshal(map[string]any{"error": map[string]any{"code": "BadRequest", "message": "ignored English",
			"details": []any{map[string]any{"code": "Other", "message": "x"}, map[string]any{"code": "Context", "message": string(msg)}}}})
		return string(b)
	}
	cases := []struct {
		name      string
		status    int
		body      string
		calls     int32
		check     func(error) bool
		retryable bool
	}{
		{"cmdlet error by TypeName", 400, withContext(exchange.TypeNotFound), 1, exchange.IsNotFound, false},
		{"cmdlet error with a 500 status", 500, withContext(exchange.TypeAuthMetadata), 1, func(err error) bool { return exchange.HasType(err, exchange.TypeAuthMetadata) }, true},
		{"400 without Context", 400, `{"error":{"code":"BadRequest","message":"bad anchor"}}`, 1, func(err error) bool {
			var pe *ProtocolError
			return errors.As(err, &pe) && pe.Code == "BadRequest" && exchange.HasType(err, TypeProtocol)
		}, false},
		{"Context that is not JSON", 400, `{"error":{"code":"X","message":"m","details":[{"code":"Context","message":"not json"}]}}`, 1, func(err error) bool {
			var pe *ProtocolError
			return errors.As(err, &pe)
		}, false},
		{"502 with an HTML body is not retried here", 502, `<html>bad gateway</html>`, 1, func(err error) bool {
			var pe *ProtocolError
			return errors.As(err, &pe) && pe.StatusCode == 502 && strings.Contains(pe.Message, "bad gateway")
		}, true},
		{"401 without a body", 401, ``, 1, func(err error) bool {
			var ad *AccessDeniedError
			return errors.As(err, &ad) && ad.StatusCode == 401
		}, false},
		{"200 that is not JSON", 200, `<html>`, 1, func(err error) bool {
			var pe *ProtocolError
			return errors.As(err, &pe)
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, n, _ := stub(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			_, err := c.Run(context.Background(), exchange.Command{Cmdlet: "Get-AuthServer"})
			if err == nil || !tc.check(err) {
				t.Fatalf("unexpected error %#v", err)
			}
			if exchange.Retryable(err) != tc.retryable {
				t.Fatalf("Retryable = %v, want %v (%v)", !tc.retryable, tc.retryable, err)
			}
			if *n != tc.calls {
				t.Fatalf("%d requests, want %d", *n, tc.calls)
			}
		})
	}
}

func TestNextLinkMustStayOnTheEndpoint(t *testing.T) {
	c, n, _ := stub(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"value":[{"a":1}],"@odata.nextLink":"https://evil.example/adminapi/beta/t1/InvokeCommand?$skiptoken=1"}`)
	})
	_, err := c.Run(context.Background(), exchange.Command{Cmdlet: "Get-AcceptedDomain"})
	var pe *ProtocolError
	if !errors.As(err, &pe) || !strings.Contains(pe.Message, "evil.example") || *n != 1 {
		t.Fatalf("want a refused nextLink after 1 request, got %v after %d", err, *n)
	}
}

func TestPagingIsBounded(t *testing.T) {
	var self string
	c, n, srv := stub(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"value":[],"@odata.nextLink":"`+self+`"}`)
	})
	self = srv.URL + "/adminapi/beta/t1/InvokeCommand?$skiptoken=loop"
	_, err := c.Run(context.Background(), exchange.Command{Cmdlet: "Get-AcceptedDomain"})
	var pe *ProtocolError
	if !errors.As(err, &pe) || *n != 3 {
		t.Fatalf("want a ProtocolError after MaxPages=3 requests, got %v after %d", err, *n)
	}
}

func TestPagesRepeatTheBodyAndKeepWarnings(t *testing.T) {
	var bodies []string
	var self string
	c, _, srv := stub(t, func(n int, w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(raw))
		if n == 1 {
			_, _ = io.WriteString(w, `{"@adminapi.warnings":["w1"],"value":[{"n":1}],"@odata.nextLink":"`+self+`"}`)
			return
		}
		_, _ = io.WriteString(w, `{"@adminapi.warnings":["w2"],"value":[{"n":2}]}`)
	})
	self = srv.URL + "/adminapi/beta/t1/InvokeCommand?$skiptoken=2"
	reply, err := c.Invoke(context.Background(), exchange.Command{Cmdlet: "Get-AcceptedDomain"})
	if err != nil {
		t.Fatal(err)
	}
	if len(reply.Rows) != 2 || strings.Join(reply.Warnings, ",") != "w1,w2" || len(bodies) != 2 || bodies[0] != bodies[1] {
		t.Fatalf("reply %+v bodies %q", reply, bodies)
	}
}

func TestRetryWaitHonoursCancellation(t *testing.T) {
	c, n, _ := stub(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "20")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Run(ctx, exchange.Command{Cmdlet: "Get-AcceptedDomain"})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second || *n != 1 {
		t.Fatalf("got %v after %s and %d requests", err, time.Since(start), *n)
	}
}

func TestTokenFailure(t *testing.T) {
	_, n, srv := stub(t, func(int, http.ResponseWriter, *http.Request) {})
	c := New(Options{Cloud: cloud.MustLookup("global"), TenantID: "t1", Credential: fixedCred{err: errors.New("AADSTS7000215: invalid client secret")},
		BaseURL: srv.URL, HTTPClient: srv.Client()})
	_, err := c.Run(context.Background(), exchange.Command{Cmdlet: "Get-AcceptedDomain"})
	if err == nil || !strings.Contains(err.Error(), "AADSTS7000215") || !strings.Contains(err.Error(), "https://outlook.office365.com/.default") || *n != 0 {
		t.Fatalf("got %v with %d requests", err, *n)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{" 1 ", time.Second},
		{"1.5", 1500 * time.Millisecond},
		{"0", 0},
		{"-4", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestNewValidatesOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"no tenant":     {Cloud: cloud.MustLookup("global"), Credential: fixedCred{}},
		"no credential": {Cloud: cloud.MustLookup("global"), TenantID: "t"},
		"no cloud":      {TenantID: "t", Credential: fixedCred{}},
		"bad base URL":  {Cloud: cloud.MustLookup("global"), TenantID: "t", Credential: fixedCred{}, BaseURL: "not a url"},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("want a panic")
				}
			}()
			New(o)
		})
	}
	c := New(Options{Cloud: cloud.MustLookup("china"), TenantID: "t/x", Credential: fixedCred{}})
	if c.endpoint != "https://partner.outlook.cn/adminapi/beta/t%2Fx/InvokeCommand" || c.scope != "https://partner.outlook.cn/.default" {
		t.Fatalf("endpoint %s scope %s", c.endpoint, c.scope)
	}
}

func TestBackoffDoublesAndStops(t *testing.T) {
	c := New(Options{Cloud: cloud.MustLookup("global"), TenantID: "t", Credential: fixedCred{}, RetryBackoff: time.Second, MaxRetryWait: 5 * time.Second})
	var got []time.Duration
	for a := 1; a <= 70; a++ {
		got = append(got, c.backoff(a))
	}
	if got[0] != time.Second || got[1] != 2*time.Second || got[2] != 4*time.Second || got[3] != 8*time.Second || got[69] != 8*time.Second {
		t.Fatalf("backoff %v", got[:5])
	}
}
