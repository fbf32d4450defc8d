// Package online runs Exchange Online cmdlets over the admin REST endpoint
// the ExchangeOnlineManagement v3 module uses (docs/microsoft-behaviour.md,
// "Exchange Online cmdlets over REST"):
//
//	POST https://<host>/adminapi/beta/<tenantId>/InvokeCommand
//	{"CmdletInput":{"CmdletName":"Get-IntraOrganizationConnector","Parameters":{}}}
//
// Microsoft does not document this endpoint, so everything that depends on
// its shape lives in this one small client. Errors are classified by the
// .NET TypeName inside the envelope's Context detail, never by English
// text. Every error the client returns fits exchange.Retryable:
//
//   - a cmdlet that ran and failed: *exchange.Error, Type = TypeName;
//   - 429/503 still refused after the client's own bounded retries:
//     *ThrottledError, carrying Retry-After for Temporal's NextRetryDelay;
//   - 401/403: *AccessDeniedError (not retryable);
//   - any other refusal: *ProtocolError (retryable only for 5xx);
//   - transport failures and token acquisition failures: wrapped Go errors
//     (retryable; the activity's check-then-act makes repeating safe).
package online

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/exchange"
)

// AnchorMailboxPrefix + tenant ID is the X-AnchorMailbox public callers send.
const AnchorMailboxPrefix = "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@"

// TypeProtocol classifies replies that are neither a cmdlet outcome nor a
// throttling or permission refusal (a malformed request, an unknown
// route): a bug or a service change, not something a retry fixes.
const TypeProtocol = "HybridFlow.ExchangeOnlineProtocolException"

// Defaults for Options.
const (
	DefaultMaxAttempts  = 4
	DefaultMaxRetryWait = 30 * time.Second
	DefaultRetryBackoff = time.Second
	DefaultMaxPages     = 1000
	maxReplyBytes       = 32 << 20
)

// Options configure a Client. Cloud, TenantID and Credential are required.
type Options struct {
	// Cloud supplies the Exchange Online host and token scope.
	Cloud    cloud.Profile
	TenantID string
	// Credential issues tokens for Cloud.ExchangeOnlineScope(). Caching is
	// its job (azidentity credentials cache per scope and tenant); the
	// client asks for a token on every request.
	Credential azcore.TokenCredential
	// BaseURL replaces https://<Cloud.ExchangeOnlineHost> (the simulator:
	// https://127.0.0.1:<port>). The token scope stays the cloud's.
	BaseURL string
	// HTTPClient defaults to a client with a 2-minute timeout; the
	// simulator passes one that trusts its CA.
	HTTPClient *http.Client
	Logger     *zap.Logger
	// MaxAttempts bounds tries per request when the service answers 429 or
	// 503 (default DefaultMaxAttempts, 1 disables in-client retries).
	MaxAttempts int
	// MaxRetryWait is the longest single wait the client sits out itself.
	// A longer Retry-After is returned at once as *ThrottledError so the
	// activity can let Temporal wait instead of holding a worker slot.
	MaxRetryWait time.Duration
	// RetryBackoff is the first wait when a 429/503 has no Retry-After;
	// it doubles per attempt.
	RetryBackoff time.Duration
	// MaxPages guards against a service that never stops paging.
	MaxPages int
}

// Client runs cmdlets against one tenant's Exchange Online organisation.
// It is safe for concurrent use.
type Client struct {
	opts     Options
	endpoint string
	base     *url.URL
	scope    string
	http     *http.Client
	log      *zap.Logger
}

var _ exchange.Runner = (*Client)(nil)

// New builds a client. It panics on missing required options: they come
// from validated configuration, so a nil credential is a programming error.
func New(opts Options) *Client {
	if opts.TenantID == "" || opts.Credential == nil || opts.Cloud.ExchangeOnlineHost == "" {
		panic("online.New: Cloud, TenantID and Credential are required")
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.MaxRetryWait <= 0 {
		opts.MaxRetryWait = DefaultMaxRetryWait
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = DefaultRetryBackoff
	}
	if opts.MaxPages <= 0 {
		opts.MaxPages = DefaultMaxPages
	}
	baseURL := strings.TrimRight(opts.BaseURL, "/")
	if baseURL == "" {
		baseURL = "https://" + opts.Cloud.ExchangeOnlineHost
	}
	base, err := url.Parse(baseURL)
	if err != nil || base.Host == "" {
		panic(fmt.Sprintf("online.New: invalid BaseURL %q", opts.BaseURL))
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Minute}
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Client{
		opts:     opts,
		endpoint: baseURL + "/adminapi/beta/" + url.PathEscape(opts.TenantID) + "/InvokeCommand",
		base:     base,
		scope:    opts.Cloud.ExchangeOnlineScope(),
		http:     hc,
		log:      log.With(zap.String("tenant", opts.TenantID), zap.String("exo_host", base.Host)),
	}
}

// Reply is a cmdlet's complete output: every page's rows, and the
// warnings Exchange wrote (@adminapi.warnings) on any page.
type Reply struct {
	Rows     []exchange.Row
	Warnings []string
}

// Run implements exchange.Runner. Warnings are logged at warn level and
// otherwise dropped; callers that act on them use Invoke.
func (c *Client) Run(ctx context.Context, cmd exchange.Command) ([]exchange.Row, error) {
	reply, err := c.Invoke(ctx, cmd)
	if err != nil {
		return nil, err
	}
	for _, w := range reply.Warnings {
		c.log.Warn("exchange online warning", zap.String("cmdlet", cmd.Cmdlet), zap.String("warning", w))
	}
	return reply.Rows, nil
}

// RunBatch implements exchange.Runner. InvokeCommand has no batch form, so
// this is one request per command, in order. A cmdlet failure fails only
// its own Result; anything else (throttling that outlasted the retries,
// access denied, transport) stops the batch and is returned with the
// results gathered so far, since the remaining commands would meet the
// same condition.
func (c *Client) RunBatch(ctx context.Context, cmds []exchange.Command) ([]exchange.Result, error) {
	out := make([]exchange.Result, 0, len(cmds))
	for i, cmd := range cmds {
		rows, err := c.Run(ctx, cmd)
		if err != nil {
			if ce, ok := err.(*exchange.Error); ok { // bare *exchange.Error = the cmdlet ran and failed
				out = append(out, exchange.Result{Error: ce})
				continue
			}
			return out, fmt.Errorf("batch command %d of %d (%s): %w", i+1, len(cmds), cmd.Cmdlet, err)
		}
		if rows == nil {
			rows = []exchange.Row{}
		}
		out = append(out, exchange.Result{Rows: rows})
	}
	return out, nil
}

// Invoke runs one cmdlet and follows @odata.nextLink until the last page.
func (c *Client) Invoke(ctx context.Context, cmd exchange.Command) (*Reply, error) {
	if !exchange.Allowed(cmd.Cmdlet) {
		return nil, &exchange.Error{Cmdlet: cmd.Cmdlet, Type: exchange.TypeCmdletNotAllowed,
			Message: fmt.Sprintf("cmdlet %q is not on hybridflow's allow-list", cmd.Cmdlet), Category: "PermissionDenied"}
	}
	params := cmd.Parameters
	if params == nil {
		params = map[string]any{}
	}
	body, err := json.Marshal(map[string]any{"CmdletInput": map[string]any{"CmdletName": cmd.Cmdlet, "Parameters": params}})
	if err != nil {
		return nil, &exchange.Error{Cmdlet: cmd.Cmdlet, Type: exchange.TypeParameterBinding, Message: "parameters are not JSON-encodable: " + err.Error(), Category: "InvalidArgument"}
	}
	reply := &Reply{Rows: []exchange.Row{}}
	target := c.endpoint
	for page := 1; ; page++ {
		if page > c.opts.MaxPages {
			return nil, &ProtocolError{Cmdlet: cmd.Cmdlet, Message: fmt.Sprintf("more than %d pages; giving up", c.opts.MaxPages)}
		}
		p, err := c.post(ctx, cmd.Cmdlet, target, body)
		if err != nil {
			return nil, err
		}
		reply.Rows = append(reply.Rows, p.Value...)
		reply.Warnings = append(reply.Warnings, p.Warnings...)
		if p.NextLink == "" {
			c.log.Debug("exchange online cmdlet", zap.String("cmdlet", cmd.Cmdlet), zap.Int("rows", len(reply.Rows)), zap.Int("pages", page))
			return reply, nil
		}
		if target, err = c.sameOrigin(p.NextLink); err != nil {
			return nil, &ProtocolError{Cmdlet: cmd.Cmdlet, Message: err.Error()}
		}
	}
}

// sameOrigin refuses a nextLink that would carry the bearer token to
// another scheme or host than the one configured.
func (c *Client) sameOrigin(link string) (string, error) {
	u, err := url.Parse(link)
	if err != nil {
		return "", fmt.Errorf("invalid @odata.nextLink %q: %w", link, err)
	}
	if !u.IsAbs() {
		u = c.base.ResolveReference(u)
	}
	if !strings.EqualFold(u.Scheme, c.base.Scheme) || !strings.EqualFold(u.Host, c.base.Host) {
		return "", fmt.Errorf("@odata.nextLink %s leaves %s://%s; refusing to send the token there", u.Redacted(), c.base.Scheme, c.base.Host)
	}
	return u.String(), nil
}

type page struct {
	Value    []exchange.Row `json:"value"`
	NextLink string         `json:"@odata.nextLink"`
	Warnings []string       `json:"@adminapi.warnings"`
}

type envelope struct {
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Details []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"details"`
	} `json:"error"`
}

// post sends one page request, sitting out 429/503 replies up to
// MaxAttempts. The nextLink requests repeat the original body, as the
// PowerShell module does. Only 429 and 503 are retried here: the service
// did not run the cmdlet, so repeating a write is safe. A lost connection
// is not retried, because a write may or may not have happened; the
// activity re-reads and decides.
func (c *Client) post(ctx context.Context, cmdlet, target string, body []byte) (*page, error) {
	for attempt := 1; ; attempt++ {
		p, status, retryAfter, err := c.once(ctx, cmdlet, target, body)
		if err == nil {
			return p, nil
		}
		if status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable {
			return nil, err
		}
		wait := retryAfter
		if wait <= 0 {
			wait = c.backoff(attempt)
		}
		if attempt >= c.opts.MaxAttempts || wait > c.opts.MaxRetryWait {
			var te *ThrottledError
			if errors.As(err, &te) {
				te.Attempts = attempt
			}
			return nil, err
		}
		c.log.Info("exchange online asked to retry", zap.String("cmdlet", cmdlet), zap.Int("status", status),
			zap.Duration("wait", wait), zap.Int("attempt", attempt))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("exchange online %s: waiting %s to retry: %w", cmdlet, wait, ctx.Err())
		case <-t.C:
		}
	}
}

// backoff is the wait before retry n (1-based) when the service gave no
// Retry-After: RetryBackoff doubled per attempt, stopping just above
// MaxRetryWait so post gives up rather than overflowing.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.opts.RetryBackoff
	for i := 1; i < attempt && d <= c.opts.MaxRetryWait; i++ {
		d *= 2
	}
	return d
}

// once performs a single HTTP exchange and classifies its outcome. status
// and retryAfter are returned so post can decide about retrying.
func (c *Client) once(ctx context.Context, cmdlet, target string, body []byte) (*page, int, time.Duration, error) {
	tok, err := c.opts.Credential.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.scope}, TenantID: c.opts.TenantID})
	if err != nil {
		return nil, 0, 0, fmt.Errorf("exchange online %s: acquiring a token for %s: %w", cmdlet, c.scope, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("exchange online %s: building request: %w", cmdlet, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-AnchorMailbox", AnchorMailboxPrefix+c.opts.TenantID)
	req.Header.Set("X-CmdletName", cmdlet)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("exchange online %s: %w", cmdlet, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes+1))
	if err != nil {
		return nil, resp.StatusCode, 0, fmt.Errorf("exchange online %s: reading reply (HTTP %d): %w", cmdlet, resp.StatusCode, err)
	}
	if len(raw) > maxReplyBytes {
		return nil, resp.StatusCode, 0, &ProtocolError{Cmdlet: cmdlet, StatusCode: resp.StatusCode, Message: fmt.Sprintf("reply larger than %d bytes", maxReplyBytes)}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		var p page
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, resp.StatusCode, 0, &ProtocolError{Cmdlet: cmdlet, StatusCode: resp.StatusCode, Message: "undecodable reply: " + err.Error()}
		}
		return &p, resp.StatusCode, 0, nil
	}
	return nil, resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), classify(cmdlet, resp, raw)
}

// classify turns a non-2xx reply into the error kinds of the package doc.
func classify(cmdlet string, resp *http.Response, raw []byte) error {
	var env envelope
	_ = json.Unmarshal(raw, &env) // a body that is not an envelope still has a status
	code, msg := "", strings.TrimSpace(string(raw))
	if env.Error != nil {
		code, msg = env.Error.Code, env.Error.Message
	}
	// The message ends up in a Temporal failure, a protobuf string: it
	// must be UTF-8, also when a proxy answers with binary or the cut
	// falls inside a character.
	msg = strings.ToValidUTF8(msg, "\uFFFD")
	if len(msg) > 512 {
		cut := 512
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	status := resp.StatusCode
	switch {
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		return &ThrottledError{Cmdlet: cmdlet, StatusCode: status, Code: code, Message: msg,
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), Attempts: 1}
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return &AccessDeniedError{Cmdlet: cmdlet, StatusCode: status, Code: code, Message: msg, Challenge: resp.Header.Get("WWW-Authenticate")}
	}
	if env.Error != nil {
		for _, d := range env.Error.Details {
			if !strings.EqualFold(d.Code, "Context") {
				continue
			}
			var ctx struct {
				Message  string `json:"Message"`
				TypeName string `json:"TypeName"`
			}
			if err := json.Unmarshal([]byte(d.Message), &ctx); err == nil && ctx.TypeName != "" {
				return &exchange.Error{Cmdlet: cmdlet, Type: ctx.TypeName, Message: ctx.Message}
			}
		}
	}
	return &ProtocolError{Cmdlet: cmdlet, StatusCode: status, Code: code, Message: msg}
}

// maxRetryAfter caps what the service may ask for: a larger value (or one
// that would overflow time.Duration and turn negative) is a broken header,
// not a plan.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads delta-seconds or an HTTP date; 0 when absent or
// unreadable, at most maxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 || math.IsNaN(s) || math.IsInf(s, 0) {
			return 0
		}
		if s >= maxRetryAfter.Seconds() {
			return maxRetryAfter
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}

// ThrottledError: the service answered 429 or 503 for longer than the
// client was willing to wait. RetryAfter is the service's last
// Retry-After (0 when it gave none): the activity passes it to Temporal as
// NextRetryDelay.
type ThrottledError struct {
	Cmdlet     string
	StatusCode int
	Code       string
	Message    string
	RetryAfter time.Duration
	Attempts   int
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("exchange online %s: HTTP %d after %d attempt(s), retry after %s: %s", e.Cmdlet, e.StatusCode, e.Attempts, e.RetryAfter, e.Message)
}

// Unwrap classifies the error for exchange.Retryable: throttled (429) or
// transient (503), both retryable.
func (e *ThrottledError) Unwrap() error {
	typ := exchange.TypeThrottled
	if e.StatusCode != http.StatusTooManyRequests {
		typ = exchange.TypeTransient
	}
	return &exchange.Error{Cmdlet: e.Cmdlet, Type: typ, Message: e.Message}
}

// AccessDeniedError: 401 (the token was refused: wrong tenant, audience,
// expired credential) or 403 (the app lacks Exchange.ManageAsApp or an
// Exchange role). A person has to fix either; retrying does not help.
type AccessDeniedError struct {
	Cmdlet     string
	StatusCode int
	Code       string
	Message    string
	// Challenge is the WWW-Authenticate header of a 401, for diagnosis.
	Challenge string
}

func (e *AccessDeniedError) Error() string {
	return fmt.Sprintf("exchange online %s: access denied (HTTP %d %s): %s", e.Cmdlet, e.StatusCode, e.Code, e.Message)
}

// Unwrap classifies the error as exchange.TypeAccessDenied (not retryable).
func (e *AccessDeniedError) Unwrap() error {
	return &exchange.Error{Cmdlet: e.Cmdlet, Type: exchange.TypeAccessDenied, Message: e.Message, Category: "PermissionDenied"}
}

// ProtocolError: a reply that carries no cmdlet outcome and is neither
// throttling nor a permission problem. 5xx counts as transient.
type ProtocolError struct {
	Cmdlet     string
	StatusCode int // 0 when the reply itself was unusable
	Code       string
	Message    string
}

func (e *ProtocolError) Error() string {
	if e.StatusCode == 0 {
		return fmt.Sprintf("exchange online %s: %s", e.Cmdlet, e.Message)
	}
	return fmt.Sprintf("exchange online %s: HTTP %d %s: %s", e.Cmdlet, e.StatusCode, e.Code, e.Message)
}

// Unwrap classifies the error: transient for 5xx, TypeProtocol otherwise.
func (e *ProtocolError) Unwrap() error {
	typ := TypeProtocol
	if e.StatusCode >= 500 {
		typ = exchange.TypeTransient
	}
	return &exchange.Error{Cmdlet: e.Cmdlet, Type: typ, Message: e.Message}
}

// RetryAfter returns the delay the service asked for when err is (or
// wraps) a *ThrottledError.
func RetryAfter(err error) (time.Duration, bool) {
	var te *ThrottledError
	if errors.As(err, &te) {
		return te.RetryAfter, true
	}
	return 0, false
}
