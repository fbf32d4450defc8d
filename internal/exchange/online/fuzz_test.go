package online

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/exchange"
)

type replyFunc func(*http.Request) (*http.Response, error)

func (f replyFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzInvokeReply feeds InvokeCommand replies of any status, body and
// Retry-After through the client's real decoding (page JSON, error
// envelope, Context detail, throttling) and holds it to its contract: no
// panic; success only on 2xx; every failure classified as the package doc
// says (429/503 throttled and retryable, 401/403 access denied and not,
// 5xx without a cmdlet outcome transient); error text valid UTF-8 (it
// becomes a Temporal failure message, a protobuf string) and bounded
// however large the body.
func FuzzInvokeReply(f *testing.F) {
	f.Add(uint16(200), []byte(`{"value":[{"Identity":"x","Enabled":true}],"@adminapi.warnings":["w"]}`), "")
	f.Add(uint16(200), []byte(`{"value":[],"@odata.nextLink":"https://evil.example/next"}`), "")
	f.Add(uint16(200), []byte(`{"value":[],"@odata.nextLink":"/adminapi/beta/t1/InvokeCommand?page=2"}`), "")
	f.Add(uint16(200), []byte(`{"value":{}}`), "")
	f.Add(uint16(400), []byte(`{"error":{"code":"BadRequest","message":"x","details":[{"code":"Context","message":"{\"Message\":\"The operation couldn't be performed because object 'x' couldn't be found.\",\"TypeName\":\"Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException\"}"}]}}`), "")
	f.Add(uint16(429), []byte(`{"error":{"code":"TooManyRequests","message":"slow down"}}`), "7")
	f.Add(uint16(503), []byte("<html>Service Unavailable</html>"), "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add(uint16(401), []byte(`{"error":{"code":"InvalidAuthenticationToken"}}`), "")
	f.Add(uint16(500), []byte(strings.Repeat("é", 400)), "NaN")
	f.Add(uint16(502), []byte("\xff\xfe bad \xc3"), "-1")
	f.Fuzz(func(t *testing.T, status uint16, body []byte, retryAfter string) {
		code := 200 + int(status)%400
		pages := 0
		rt := replyFunc(func(r *http.Request) (*http.Response, error) {
			pages++
			h := http.Header{"Content-Type": {"application/json"}}
			if retryAfter != "" {
				h.Set("Retry-After", retryAfter)
			}
			return &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
		})
		c := New(Options{Cloud: cloud.MustLookup("global"), TenantID: "t1", Credential: fixedCred{},
			HTTPClient: &http.Client{Transport: rt}, MaxAttempts: 1, MaxPages: 3, MaxRetryWait: time.Millisecond})
		reply, err := c.Invoke(context.Background(), exchange.Command{Cmdlet: "Get-IntraOrganizationConnector"})
		if err == nil {
			if code < 200 || code > 299 || reply == nil {
				t.Fatalf("HTTP %d accepted", code)
			}
			return
		}
		msg := err.Error()
		if !utf8.ValidString(msg) {
			t.Fatalf("error text is not UTF-8: %q", msg)
		}
		if len(msg) > 2048 {
			t.Fatalf("error text of %d bytes", len(msg))
		}
		var ce *exchange.Error
		if !errors.As(err, &ce) {
			t.Fatalf("HTTP %d: unclassified %T: %v", code, err, err)
		}
		var te *ThrottledError
		var ad *AccessDeniedError
		switch {
		case code == 429 || code == 503:
			if !errors.As(err, &te) || !exchange.Retryable(err) || te.RetryAfter < 0 {
				t.Fatalf("HTTP %d: %T %v, retryable %v", code, err, err, exchange.Retryable(err))
			}
		case code == 401 || code == 403:
			if !errors.As(err, &ad) || exchange.Retryable(err) {
				t.Fatalf("HTTP %d: %T %v, retryable %v", code, err, err, exchange.Retryable(err))
			}
		case code >= 500:
			// A Context detail is the cmdlet's own exception (it ran and
			// threw): its type decides, whatever the status. Only
			// replies without a cmdlet outcome are transient.
			if _, cmdletOutcome := err.(*exchange.Error); !cmdletOutcome && !exchange.Retryable(err) {
				t.Fatalf("HTTP %d not retryable: %v", code, err)
			}
		}
	})
}

// FuzzParseRetryAfter: never negative (a huge value once overflowed
// time.Duration) and never more than maxRetryAfter.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"7", "0.5", "-1", "NaN", "+Inf", "1e300", "Wed, 21 Oct 2015 07:28:00 GMT", " 3 ", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d := parseRetryAfter(v, now)
		if d < 0 || d > maxRetryAfter {
			t.Fatalf("parseRetryAfter(%q) = %s", v, d)
		}
	})
}
