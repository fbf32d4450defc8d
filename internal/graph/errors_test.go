package graph

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
)

func odataErr(status int, code, msg string, retryAfter string) error {
	main := odataerrors.NewMainError()
	main.SetCode(&code)
	main.SetMessage(&msg)
	inner := odataerrors.NewInnerError()
	rid := "req-1"
	inner.SetRequestId(&rid)
	main.SetInnerError(inner)
	e := odataerrors.NewODataError()
	e.SetErrorEscaped(main)
	e.SetStatusCode(status)
	h := abs.NewResponseHeaders()
	if retryAfter != "" {
		h.Add("Retry-After", retryAfter)
	}
	e.SetResponseHeaders(h)
	return e
}

func TestClassify(t *testing.T) {
	cases := []struct {
		name       string
		err        error
		kind       Kind
		status     int
		retryAfter time.Duration
		sentinel   error
	}{
		{"404", odataErr(404, "Request_ResourceNotFound", "gone", ""), NotFound, 404, 0, ErrNotFound},
		{"not-found code on 400", odataErr(400, "Request_ResourceNotFound", "ref", ""), NotFound, 400, 0, ErrNotFound},
		{"400", odataErr(400, "Request_BadRequest", "bad", ""), Invalid, 400, 0, ErrInvalid},
		{"401", odataErr(401, "InvalidAuthenticationToken", "expired", ""), Unauthorized, 401, 0, ErrUnauthorized},
		{"403", odataErr(403, "Authorization_RequestDenied", "no", ""), Forbidden, 403, 0, ErrForbidden},
		{"409", odataErr(409, "Request_MultipleObjectsWithSameKeyValue", "dup", ""), Conflict, 409, 0, ErrConflict},
		{"duplicate code on 400", odataErr(400, "Request_MultipleObjectsWithSameKeyValue", "dup", ""), Conflict, 400, 0, ErrConflict},
		{"429", odataErr(429, "TooManyRequests", "slow down", "12"), Throttled, 429, 12 * time.Second, ErrThrottled},
		{"503", odataErr(503, "ServiceUnavailable", "later", "3"), Server, 503, 3 * time.Second, ErrServer},
		{"500", odataErr(500, "generalException", "oops", ""), Server, 500, 0, ErrServer},
		{"api error without body", &abs.ApiError{ResponseStatusCode: 429, ResponseHeaders: func() *abs.ResponseHeaders {
			h := abs.NewResponseHeaders()
			h.Add("retry-after", "5")
			return h
		}()}, Throttled, 429, 5 * time.Second, ErrThrottled},
		{"dropped connection", &url.Error{Op: "Get", URL: "https://x", Err: errors.New("EOF")}, Server, 0, 0, ErrServer},
		{"net timeout", &net.OpError{Op: "dial", Err: errors.New("i/o timeout")}, Server, 0, 0, ErrServer},
		{"token refused", &azidentity.AuthenticationFailedError{RawResponse: &http.Response{StatusCode: 401}}, Unauthorized, 401, 0, ErrUnauthorized},
		{"token endpoint down", &azidentity.AuthenticationFailedError{RawResponse: &http.Response{StatusCode: 503}}, Server, 503, 0, ErrServer},
		{"wrapped", fmt.Errorf("adapter: %w", odataErr(403, "Authorization_RequestDenied", "no", "")), Forbidden, 403, 0, ErrForbidden},
		{"something else", errors.New("???"), Unknown, 0, 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := classify("Op", tc.err)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("not *Error: %v", err)
			}
			if e.Kind != tc.kind || e.Status != tc.status || e.RetryAfter != tc.retryAfter || e.Op != "Op" {
				t.Fatalf("got kind %s status %d retry %s", e.Kind, e.Status, e.RetryAfter)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Fatalf("errors.Is(%v) is false", tc.sentinel)
			}
			for _, other := range []error{ErrNotFound, ErrForbidden, ErrConflict, ErrThrottled, ErrInvalid, ErrUnauthorized, ErrServer, ErrAmbiguous} {
				if other != tc.sentinel && errors.Is(err, other) {
					t.Fatalf("also matches %v", other)
				}
			}
			if !errors.Is(err, tc.err) {
				t.Fatal("the original error is not in the chain")
			}
			if e.Retryable() != (tc.kind == Throttled || tc.kind == Server) {
				t.Fatal("Retryable disagrees with the kind")
			}
		})
	}
	if err := classify("Op", nil); err != nil {
		t.Fatal("nil must stay nil")
	}
	for _, c := range []error{context.Canceled, context.DeadlineExceeded} {
		err := classify("Op", fmt.Errorf("send: %w", c))
		var e *Error
		if errors.As(err, &e) || !errors.Is(err, c) {
			t.Fatalf("%v must pass through as itself, got %v", c, err)
		}
	}
}

func TestErrorMessageCarriesContext(t *testing.T) {
	err := classify("UpdateServicePrincipal", odataErr(429, "TooManyRequests", "slow down", "4"))
	want := "graph UpdateServicePrincipal: throttled (429 TooManyRequests): slow down [retry after 4s] [request-id req-1]"
	if err.Error() != want {
		t.Fatalf("got  %q\nwant %q", err.Error(), want)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"1":                             time.Second,
		"0":                             0,
		"1.5":                           1500 * time.Millisecond,
		"Sun, 01 Nov 2026 12:00:30 GMT": 30 * time.Second,
		"Sun, 01 Nov 2026 11:00:00 GMT": 0,
		"soon":                          0,
		"-3":                            0,
	}
	for in, want := range cases {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
	}
}

func TestRetryOptionsBudget(t *testing.T) {
	resp := func(ra string) *http.Response {
		r := &http.Response{Header: http.Header{}}
		if ra != "" {
			r.Header.Set("Retry-After", ra)
		}
		return r
	}
	o := retryOptions(0, 10*time.Second)
	if o.MaxRetries != DefaultMaxRetries {
		t.Fatalf("max retries %d", o.MaxRetries)
	}
	cases := []struct {
		waited time.Duration
		ra     string
		want   bool
	}{
		{0, "1", true},
		{0, "10", true},
		{0, "11", false},
		{9 * time.Second, "1", true},
		{9 * time.Second, "2", false},
		{0, "", true},                // back-off 3 s + jitter
		{7 * time.Second, "", false}, // 7 + 4 > 10
	}
	req := func(method, path string) *http.Request {
		r, err := http.NewRequest(method, "https://graph.microsoft.com/v1.0"+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	get := req(http.MethodGet, "/servicePrincipals")
	for _, c := range cases {
		if got := o.ShouldRetry(c.waited, 0, get, resp(c.ra)); got != c.want {
			t.Errorf("waited %s, Retry-After %q: %v", c.waited, c.ra, got)
		}
	}
	if retryOptions(-1, 0).ShouldRetry(0, 0, get, resp("1")) {
		t.Fatal("negative MaxRetries must disable retries")
	}
	// Only requests that cannot do more when sent twice are repeated.
	for _, c := range []struct {
		method, path string
		want         bool
	}{
		{http.MethodGet, "/applications", true},
		{http.MethodPatch, "/applications/1", true},
		{http.MethodDelete, "/servicePrincipals/1", true},
		{http.MethodPost, "/$batch", true},
		{http.MethodPost, "/applications", false},
		{http.MethodPost, "/servicePrincipals", false},
		{http.MethodPost, "/servicePrincipals/1/appRoleAssignments", false},
	} {
		if got := o.ShouldRetry(0, 0, req(c.method, c.path), resp("1")); got != c.want {
			t.Errorf("%s %s retried: %v, want %v", c.method, c.path, got, c.want)
		}
	}
}
