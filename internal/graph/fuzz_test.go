package graph

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/hybridflow/hybridflow/internal/cloud"
)

type fuzzCred struct{}

func (fuzzCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "t", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

type fuzzReply func(*http.Request) (*http.Response, error)

func (f fuzzReply) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzErrorReply sends Graph error replies (400-599), and successes
// without a body, of any body and
// Retry-After through the SDK's error parsing and classify: never a
// panic; every reply is an *Error with the HTTP status and a Kind (the
// Graph code may sharpen it: not found, duplicate); Retry-After is never
// negative; the error text is UTF-8 (it becomes a protobuf string in a
// Temporal failure).
func FuzzErrorReply(f *testing.F) {
	f.Add(uint16(404), []byte(`{"error":{"code":"Request_ResourceNotFound","message":"Resource 'x' does not exist","innerError":{"request-id":"r1","date":"2026-01-01T00:00:00"}}}`), "")
	f.Add(uint16(400), []byte(`{"error":{"code":"Request_MultipleObjectsWithSameKeyValue","message":"dup"}}`), "")
	f.Add(uint16(429), []byte(`{"error":{"code":"TooManyRequests","message":"slow down"}}`), "12")
	f.Add(uint16(503), []byte(`<html>unavailable</html>`), "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add(uint16(401), []byte(``), "")
	f.Add(uint16(0), []byte(``), "") // 200 without a body
	f.Add(uint16(2), []byte(``), "") // 204
	f.Add(uint16(500), []byte("{\"error\":{\"code\":\"\xff\",\"message\":\"\xc3\"}}"), "")
	f.Fuzz(func(t *testing.T, status uint16, body []byte, retryAfter string) {
		// Error replies, and a success without a body (204, or 200 with
		// an empty body), for which the SDK returns (nil, nil): that must
		// be an error too, not a nil dereference.
		code := 400 + int(status)%200
		if len(body) == 0 && status%2 == 0 {
			code = []int{200, 204}[status/2%2]
		}
		rt := fuzzReply(func(r *http.Request) (*http.Response, error) {
			h := http.Header{"Content-Type": {"application/json"}}
			if retryAfter != "" {
				h.Set("Retry-After", retryAfter)
			}
			return &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(bytes.NewReader(body)), Request: r, ContentLength: int64(len(body))}, nil
		})
		c, err := New(Options{Cloud: cloud.MustLookup("global"), TenantID: "t1", Credential: fuzzCred{},
			HTTPClient: &http.Client{Transport: rt}, MaxRetries: -1, MaxRetryWait: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.ServicePrincipalByID(context.Background(), "sp1")
		if err == nil {
			t.Fatalf("HTTP %d accepted", code)
		}
		if !utf8.ValidString(err.Error()) {
			t.Fatalf("error text is not UTF-8: %q", err.Error())
		}
		var ge *Error
		if !errors.As(err, &ge) {
			t.Fatalf("HTTP %d: unclassified %T: %v", code, err, err)
		}
		if ge.RetryAfter < 0 {
			t.Fatalf("negative Retry-After %s from %q", ge.RetryAfter, retryAfter)
		}
		if code > 299 && ge.Status == code && ge.Kind != kindForStatus(code, ge.Code) {
			t.Fatalf("HTTP %d %s classified %s", code, ge.Code, ge.Kind)
		}
		if code >= 400 && ge.Status != code && ge.Status != 0 {
			t.Fatalf("HTTP %d reported as %d", code, ge.Status)
		}
	})
}
