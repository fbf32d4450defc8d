package graph

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
)

// Kind classifies a Graph failure by what a caller should do about it.
type Kind int

const (
	// Unknown is an error the client could not classify; treat as not retryable.
	Unknown Kind = iota
	// NotFound: the object does not exist (404, or a filter matched nothing).
	NotFound
	// Forbidden: the app lacks a permission or the tenant refuses it (403).
	Forbidden
	// Conflict: the object or assignment already exists (409, duplicate
	// app role assignment, an SPN used by another service principal).
	Conflict
	// Throttled: 429 after the in-call retries; RetryAfter says when to retry.
	Throttled
	// Invalid: the request was refused as malformed or invalid (400).
	Invalid
	// Unauthorized: no valid token (401) or the credential could not get one.
	Unauthorized
	// Server: 5xx, a dropped connection or a timeout; retryable.
	Server
	// Ambiguous: a lookup by a non-unique name found several objects.
	Ambiguous
	// PageLimit: a list kept answering with another @odata.nextLink past
	// the client's page cap; asking again would page just as long.
	PageLimit
)

var kindNames = [...]string{"unknown", "not-found", "forbidden", "conflict", "throttled", "invalid", "unauthorized", "server", "ambiguous", "page-limit"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Sentinels for errors.Is: errors.Is(err, graph.ErrNotFound) holds for
// every *Error of Kind NotFound.
var (
	ErrNotFound     = errors.New("graph: not found")
	ErrForbidden    = errors.New("graph: forbidden")
	ErrConflict     = errors.New("graph: conflict")
	ErrThrottled    = errors.New("graph: throttled")
	ErrInvalid      = errors.New("graph: invalid request")
	ErrUnauthorized = errors.New("graph: unauthorized")
	ErrServer       = errors.New("graph: server error")
	ErrAmbiguous    = errors.New("graph: ambiguous")
)

var kindSentinels = map[Kind]error{
	NotFound: ErrNotFound, Forbidden: ErrForbidden, Conflict: ErrConflict, Throttled: ErrThrottled,
	Invalid: ErrInvalid, Unauthorized: ErrUnauthorized, Server: ErrServer, Ambiguous: ErrAmbiguous,
}

// Error is a failed Graph operation.
type Error struct {
	Op        string // the client method, e.g. "UpdateServicePrincipal"
	Status    int    // HTTP status; 0 when no response arrived
	Code      string // Graph error code, e.g. Request_ResourceNotFound
	Message   string
	RequestID string
	// RetryAfter is the server's Retry-After (429/503); the activity layer
	// hands it to Temporal as the next retry delay.
	RetryAfter time.Duration
	Kind       Kind
	Err        error // the underlying SDK, credential or transport error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "graph %s: %s", e.Op, e.Kind)
	if e.Status != 0 {
		fmt.Fprintf(&b, " (%d", e.Status)
		if e.Code != "" {
			b.WriteString(" " + e.Code)
		}
		b.WriteString(")")
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	} else if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " [retry after %s]", e.RetryAfter)
	}
	if e.RequestID != "" {
		b.WriteString(" [request-id " + e.RequestID + "]")
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches the Kind's sentinel.
func (e *Error) Is(target error) bool {
	s, ok := kindSentinels[e.Kind]
	return ok && s == target
}

// Retryable reports whether trying again later can succeed.
func (e *Error) Retryable() bool { return e.Kind == Throttled || e.Kind == Server }

// KindOf returns the Kind of a *Error in err's chain, or Unknown.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Unknown
}

// IsNotFound and friends test an error's Kind.
func IsNotFound(err error) bool     { return KindOf(err) == NotFound }
func IsForbidden(err error) bool    { return KindOf(err) == Forbidden }
func IsConflict(err error) bool     { return KindOf(err) == Conflict }
func IsThrottled(err error) bool    { return KindOf(err) == Throttled }
func IsInvalid(err error) bool      { return KindOf(err) == Invalid }
func IsUnauthorized(err error) bool { return KindOf(err) == Unauthorized }

// IsRetryable reports whether err is a Graph error worth retrying later.
func IsRetryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable()
}

// OutcomeUnknown reports whether err leaves a write's outcome unknown: no
// reply arrived (a dropped connection, a timeout) or the reply was a 5xx,
// which a gateway may send after the service applied the request. The
// caller reads the object back by key before deciding anything. A 429 is
// not such an error: a throttled request was refused, not served.
func OutcomeUnknown(err error) bool { return KindOf(err) == Server }

// RetryAfter is the server's requested delay carried by err, or 0.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// Graph error codes that decide a Kind regardless of the status.
const (
	codeNotFound  = "Request_ResourceNotFound"
	codeDuplicate = "Request_MultipleObjectsWithSameKeyValue"
)

// classify maps an error from the SDK, the credential or the transport to
// *Error. Context cancellation passes through unchanged in the chain so
// that callers see context.Canceled / DeadlineExceeded.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("graph %s: %w", op, err)
	}
	e := &Error{Op: op, Err: err}
	var odata *odataerrors.ODataError
	var api *abs.ApiError
	var authFailed *azidentity.AuthenticationFailedError
	switch {
	case errors.As(err, &odata):
		e.Status = odata.GetStatusCode()
		if main := odata.GetErrorEscaped(); main != nil {
			e.Code = deref(main.GetCode())
			e.Message = deref(main.GetMessage())
			if inner := main.GetInnerError(); inner != nil {
				e.RequestID = deref(inner.GetRequestId())
			}
		}
		if e.Message == "" {
			// Never fall back to ODataError.Error(): without an "error"
			// object in the body (a bare {} reply) it dereferences nil.
			e.Message = "error reply without a message"
			if t := http.StatusText(e.Status); t != "" {
				e.Message = t + " without a message"
			}
		}
		e.RetryAfter = retryAfterHeader(odata.GetResponseHeaders())
		e.Kind = kindForStatus(e.Status, e.Code)
	case errors.As(err, &api):
		e.Status = api.ResponseStatusCode
		e.Message = api.Message
		e.RetryAfter = retryAfterHeader(api.ResponseHeaders)
		e.Kind = kindForStatus(e.Status, "")
	case errors.As(err, &authFailed):
		// The token endpoint refused the credential (4xx) or failed (5xx).
		e.Kind = Unauthorized
		if authFailed.RawResponse != nil {
			e.Status = authFailed.RawResponse.StatusCode
			if e.Status >= 500 || e.Status == 429 {
				e.Kind = Server
			}
		}
	case isTransport(err):
		e.Kind = Server
	default:
		e.Kind = Unknown
	}
	return e
}

func kindForStatus(status int, code string) Kind {
	switch {
	case strings.EqualFold(code, codeNotFound):
		return NotFound
	case strings.EqualFold(code, codeDuplicate):
		return Conflict
	}
	switch {
	case status == 400 || status == 405 || status == 413 || status == 422:
		return Invalid
	case status == 401:
		return Unauthorized
	case status == 403:
		return Forbidden
	case status == 404:
		return NotFound
	case status == 409 || status == 412:
		return Conflict
	case status == 429:
		return Throttled
	case status >= 500:
		return Server
	}
	return Unknown
}

// isTransport recognises failures below HTTP: dropped connections, resets,
// timeouts, TLS and DNS errors.
func isTransport(err error) bool {
	var ue *url.Error
	var ne net.Error
	return errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, net.ErrClosed)
}

func retryAfterHeader(h *abs.ResponseHeaders) time.Duration {
	if h == nil {
		return 0
	}
	for _, k := range h.ListKeys() {
		if !strings.EqualFold(k, "Retry-After") {
			continue
		}
		for _, v := range h.Get(k) {
			return parseRetryAfter(v, time.Now())
		}
	}
	return 0
}

// parseRetryAfter reads delta-seconds or an HTTP date.
// maxRetryAfter caps a Retry-After (as the Exchange Online client does).
const maxRetryAfter = 24 * time.Hour

func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 {
		// A huge value would overflow into a negative wait; nobody waits a day.
		return time.Duration(min(secs, maxRetryAfter.Seconds()) * float64(time.Second))
	}
	if t, err := time.Parse(time.RFC1123, v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
