// Package graph is hybridflow's Microsoft Graph client: the handful of
// Entra operations the setup steps need (the first-party service
// principal's keys and names, the dedicated application, its service
// principal and consent), on top of msgraph-sdk-go and an azidentity
// credential, with plain Go types in and out and errors classified into
// *Error kinds the activities can act on. The same code talks to real
// Graph in every cloud and to the simulator (internal/sim), which only
// changes the base URL, the token authority and the CA the transport
// trusts.
//
// Graph semantics callers must respect (docs/microsoft-behaviour.md,
// "Graph key credentials"): a PATCH of keyCredentials or
// servicePrincipalNames replaces the whole collection, so read, merge and
// send everything you keep. Graph returns a key's certificate bytes only
// when one object is read with $select=keyCredentials, never in a list or
// $filter answer, so every read here that returns keys makes that read
// after finding the object (readKeys). customKeyIdentifier travels as the
// base64 text Graph keeps and goes back unchanged.
package graph

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/google/uuid"
	abs "github.com/microsoft/kiota-abstractions-go"
	khttp "github.com/microsoft/kiota-http-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	azauth "github.com/microsoftgraph/msgraph-sdk-go-core/authentication"
	"github.com/microsoftgraph/msgraph-sdk-go/applications"
	"github.com/microsoftgraph/msgraph-sdk-go/applicationswithuniquename"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/serviceprincipals"
	"github.com/microsoftgraph/msgraph-sdk-go/serviceprincipalswithappid"

	"github.com/hybridflow/hybridflow/internal/cloud"
)

// Defaults of Options.
const (
	DefaultMaxRetries   = 3
	DefaultMaxRetryWait = 30 * time.Second
	// DefaultMaxPages bounds how many pages of one list the client reads:
	// at Graph's smallest default page (100) that is 100,000 objects,
	// far more than a tenant has of anything the client lists.
	DefaultMaxPages = 1000
	defaultTimeout  = 100 * time.Second
)

// DefaultDuplicateAssignmentPhrases is how Graph words a duplicate app role
// assignment (unconfirmed: Microsoft does not document the wording); see
// Options.DuplicateAssignmentPhrases.
var DefaultDuplicateAssignmentPhrases = []string{"Permission being assigned already exists"}

// Options configures New.
type Options struct {
	// Cloud gives the Graph host and the token scope (required).
	Cloud cloud.Profile
	// TenantID is the directory the client works in (required).
	TenantID string
	// Credential obtains tokens for Cloud.GraphScope() (required); see NewCredential.
	Credential azcore.TokenCredential
	// BaseURL overrides Cloud.GraphBaseURL(), e.g. the simulator's
	// https://127.0.0.1:<port>/v1.0. Tokens are sent to its host only.
	BaseURL string
	// HTTPClient supplies the transport (e.g. one trusting the simulator's
	// CA) and the overall timeout; its own middleware is not used. Nil uses
	// the default transport and a 100 s timeout.
	HTTPClient *http.Client
	// MaxRetries bounds the in-call retries of 429/503/504 (Kiota's retry
	// handler, honouring Retry-After). 0 means DefaultMaxRetries; negative
	// disables in-call retries.
	MaxRetries int
	// MaxRetryWait bounds the total time one call may spend waiting for
	// Retry-After. A longer wait is not slept inside the call: the
	// Throttled error carries RetryAfter so the activity layer can hand it
	// to Temporal as the next retry delay. 0 means DefaultMaxRetryWait.
	MaxRetryWait time.Duration
	// DuplicateAssignmentPhrases recognise a duplicate app role assignment
	// in a 400's message; nil means DefaultDuplicateAssignmentPhrases. When
	// none matches, AssignAppRole still detects the duplicate by reading the
	// assignments back, so a changed wording is not fatal.
	DuplicateAssignmentPhrases []string
	// MaxPages bounds the pages of one list the client follows through
	// @odata.nextLink; past it the call fails instead of paging for ever.
	// 0 means DefaultMaxPages.
	MaxPages int
}

// Client performs Graph operations for one tenant. It is safe for
// concurrent use.
type Client struct {
	sdk      *msgraphsdk.GraphServiceClient
	adapter  *msgraphsdk.GraphRequestAdapter
	tenantID string
	dupText  []string
	// The in-call retry budget, also applied to the requests inside a
	// JSON batch (which Kiota's retry handler cannot see).
	maxRetries   int
	maxRetryWait time.Duration
	// maxPages bounds the pages of one list (Options.MaxPages).
	maxPages int
	// spIDs maps an application's appId to the object ID of its service
	// principal in this tenant, as ReadEntraState last found it: knowing
	// it, the next discovery reads that object's keys with their
	// certificates in its first batch (see ReadEntraState).
	mu    sync.Mutex
	spIDs map[string]string
}

// New builds a client. It makes no request.
func New(opts Options) (*Client, error) {
	switch {
	case opts.Credential == nil:
		return nil, errors.New("graph: new client: no credential")
	case opts.TenantID == "":
		return nil, errors.New("graph: new client: no tenant ID")
	case opts.Cloud.GraphHost == "":
		return nil, errors.New("graph: new client: no cloud profile")
	}
	base := strings.TrimSuffix(opts.BaseURL, "/")
	if base == "" {
		base = opts.Cloud.GraphBaseURL()
	}
	u, err := url.Parse(base)
	if err != nil || u.Hostname() == "" {
		return nil, fmt.Errorf("graph: new client: base URL %q is not an absolute URL", base)
	}
	// The token is for the cloud's Graph resource even when the base URL
	// points elsewhere (the simulator checks that audience), and it is only
	// attached to requests for the base URL's host.
	auth, err := azauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(
		opts.Credential, []string{opts.Cloud.GraphScope()}, []string{u.Hostname()})
	if err != nil {
		return nil, fmt.Errorf("graph: new client: %w", err)
	}
	parent := http.RoundTripper(http.DefaultTransport)
	timeout := defaultTimeout
	if opts.HTTPClient != nil {
		if opts.HTTPClient.Transport != nil {
			parent = opts.HTTPClient.Transport
		}
		if opts.HTTPClient.Timeout > 0 {
			timeout = opts.HTTPClient.Timeout
		}
	}
	clientOpts := msgraphsdk.GetDefaultClientOptions()
	// The order is fixed (Kiota's default builds it from a map). Kiota's
	// compression handler is left out: it gzips every request body, which
	// for these few-kilobyte JSON bodies costs about 0.4 ms of CPU and
	// 0.8 MB of allocation each and saves nothing worth having; Graph
	// takes plain bodies, and Go's transport still asks for compressed
	// answers and unpacks them.
	middleware := []khttp.Middleware{
		msgraphcore.NewGraphTelemetryHandler(&clientOpts),
		khttp.NewUserAgentHandler(),
		khttp.NewParametersNameDecodingHandler(),
		khttp.NewRetryHandlerWithOptions(retryOptions(opts.MaxRetries, opts.MaxRetryWait)),
		khttp.NewRedirectHandler(),
		khttp.NewHeadersInspectionHandler(),
		freshBodyHandler{},
	}
	httpClient := &http.Client{
		Transport: khttp.NewCustomTransportWithParentTransport(parent, middleware...),
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // the redirect middleware decides
		},
	}
	adapter, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, httpClient)
	if err != nil {
		return nil, fmt.Errorf("graph: new client: %w", err)
	}
	adapter.SetBaseUrl(base)
	dup := opts.DuplicateAssignmentPhrases
	if dup == nil {
		dup = DefaultDuplicateAssignmentPhrases
	}
	maxRetries, maxWait := opts.MaxRetries, opts.MaxRetryWait
	if maxRetries == 0 {
		maxRetries = DefaultMaxRetries
	}
	if maxWait <= 0 {
		maxWait = DefaultMaxRetryWait
	}
	maxPages := opts.MaxPages
	if maxPages <= 0 {
		maxPages = DefaultMaxPages
	}
	return &Client{sdk: msgraphsdk.NewGraphServiceClient(adapter), adapter: adapter, tenantID: opts.TenantID, dupText: dup,
		maxRetries: maxRetries, maxRetryWait: maxWait, maxPages: maxPages}, nil
}

// tooManyPages is the error of a list that has read maxPages pages and is
// offered another: a service that keeps answering with a nextLink is
// broken or hostile, and following it would never end. Not retryable.
func tooManyPages(op string, maxPages int) error {
	return &Error{Op: op, Kind: PageLimit, Message: fmt.Sprintf("gave up after %d pages: the service keeps answering with another @odata.nextLink", maxPages)}
}

// TenantID is the tenant the client was built for.
func (c *Client) TenantID() string { return c.tenantID }

// retryOptions configures Kiota's retry handler: at most maxRetries
// retries, only while the waits add up to no more than maxWait, and only
// of requests that sending twice cannot do more than sending once
// (repeatable).
func retryOptions(maxRetries int, maxWait time.Duration) khttp.RetryHandlerOptions {
	if maxRetries == 0 {
		maxRetries = DefaultMaxRetries
	}
	if maxWait <= 0 {
		maxWait = DefaultMaxRetryWait
	}
	return khttp.RetryHandlerOptions{
		MaxRetries:   max(maxRetries, 1),
		DelaySeconds: backoffSeconds,
		ShouldRetry: func(waited time.Duration, attempt int, req *http.Request, resp *http.Response) bool {
			if maxRetries < 0 || !repeatable(req) {
				return false
			}
			return waited+retryDelay(attempt, resp.Header.Get("Retry-After")) <= maxWait
		},
	}
}

// repeatable reports whether the retry handler may send a request again
// after a 429, 503 or 504. A 503 or 504 may come from a gateway after the
// service applied the request, so only requests whose repetition changes
// nothing more are repeated: reads, DELETE (a second one finds nothing),
// and PATCH, which in this client either replaces whole collections with
// the same value or is the upsert, idempotent by its key (and sent once
// anyway, see UpsertApplication). A POST creates an object each time it is
// applied, or turns a lost success into a conflict, so it is never
// repeated blindly: the caller reads back by key. The one POST that is
// repeated is a JSON batch, which this client fills with reads only
// (sendBatch refuses anything else).
func repeatable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodPatch:
		return true
	case http.MethodPost:
		return strings.HasSuffix(req.URL.Path, "/$batch")
	}
	return false
}

// noRetry is a per-request override of the retry handler: the request is
// sent once.
func noRetry() *khttp.RetryHandlerOptions {
	return &khttp.RetryHandlerOptions{MaxRetries: 1, ShouldRetry: func(time.Duration, int, *http.Request, *http.Response) bool { return false }}
}

// backoffSeconds is Kiota's exponential back-off base without Retry-After.
const backoffSeconds = 3

// retryDelay is how long the attempt-th retry waits: the server's
// Retry-After when it sent one, else Kiota's back-off (rounded up a
// second, so the budget check errs on the side of not sleeping).
func retryDelay(attempt int, retryAfter string) time.Duration {
	if retryAfter != "" {
		return parseRetryAfter(retryAfter, time.Now())
	}
	return time.Duration(backoffSeconds<<attempt)*time.Second + time.Second
}

var (
	// keyCredentials is selected so that the answer says whether the
	// object has keys (their certificate bytes come from readKeys).
	spSelect  = []string{"id", "appId", "displayName", "keyCredentials", "servicePrincipalNames", "appRoles", "tags"}
	appSelect = []string{"id", "appId", "uniqueName", "displayName", "signInAudience", "requiredResourceAccess", "keyCredentials", "tags"}
	// spRefSelect is for lookups that need no keys.
	spRefSelect = []string{"id", "appId", "displayName", "servicePrincipalNames", "appRoles", "tags"}
	// keySelect is the one read Graph answers with the keys' certificate
	// bytes: a single object with exactly $select=keyCredentials.
	keySelect = []string{"keyCredentials"}
)

// readKeys replaces keys read from a list, a $filter or an ordinary item
// read (where Graph leaves key null) with the same object's keys read with
// $select=keyCredentials, which carry the certificates. An object without
// keys costs no request.
func (c *Client) readKeys(ctx context.Context, op, kind, id string, listed []KeyCredential) ([]KeyCredential, error) {
	if len(listed) == 0 {
		return listed, nil
	}
	switch kind {
	case "servicePrincipal":
		sp, err := c.sdk.ServicePrincipals().ByServicePrincipalId(id).Get(ctx, &serviceprincipals.ServicePrincipalItemRequestBuilderGetRequestConfiguration{
			QueryParameters: &serviceprincipals.ServicePrincipalItemRequestBuilderGetQueryParameters{Select: keySelect},
		})
		if err := replied(op, sp, err); err != nil {
			return nil, err
		}
		return fromSDKKeys(sp.GetKeyCredentials()), nil
	case "application":
		a, err := c.sdk.Applications().ByApplicationId(id).Get(ctx, &applications.ApplicationItemRequestBuilderGetRequestConfiguration{
			QueryParameters: &applications.ApplicationItemRequestBuilderGetQueryParameters{Select: keySelect},
		})
		if err := replied(op, a, err); err != nil {
			return nil, err
		}
		return fromSDKKeys(a.GetKeyCredentials()), nil
	}
	return nil, invalidf(op, "no key read for %s objects", kind)
}

// odataQuote escapes a string literal for $filter.
func odataQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func invalidf(op, format string, args ...any) error {
	return &Error{Op: op, Kind: Invalid, Message: fmt.Sprintf(format, args...)}
}

// --- service principals -----------------------------------------------------

// ServicePrincipalByAppID finds the tenant's service principal of an
// application, keys included with their certificates (a second read when
// it has keys). NotFound when the tenant has none.
func (c *Client) ServicePrincipalByAppID(ctx context.Context, appID string) (*ServicePrincipal, error) {
	const op = "ServicePrincipalByAppID"
	sp, err := c.servicePrincipalByAppID(ctx, op, appID, spSelect)
	if err != nil {
		return nil, err
	}
	if sp.KeyCredentials, err = c.readKeys(ctx, op, "servicePrincipal", sp.ID, sp.KeyCredentials); err != nil {
		return nil, err
	}
	return sp, nil
}

// LookupServicePrincipal finds the tenant's service principal of an
// application in one request, without its keys (KeyCredentials is nil):
// for callers that need its ID, names or roles only.
func (c *Client) LookupServicePrincipal(ctx context.Context, appID string) (*ServicePrincipal, error) {
	return c.servicePrincipalByAppID(ctx, "LookupServicePrincipal", appID, spRefSelect)
}

// ServicePrincipalByAppIDKey reads the tenant's service principal of an
// application by its alternate key, appId
// (GET /servicePrincipals(appId='…')), without its keys: one object
// addressed by key, not a $filter over the directory's query index, so it
// is the read that finds a service principal just created. NotFound when
// the tenant has none.
func (c *Client) ServicePrincipalByAppIDKey(ctx context.Context, appID string) (*ServicePrincipal, error) {
	const op = "ServicePrincipalByAppIDKey"
	if !validKey(appID) {
		return nil, invalidf(op, "appId %q is not a key Graph can address", appID)
	}
	key := odataKey(appID)
	sp, err := c.sdk.ServicePrincipalsWithAppId(&key).Get(ctx, &serviceprincipalswithappid.ServicePrincipalsWithAppIdRequestBuilderGetRequestConfiguration{
		QueryParameters: &serviceprincipalswithappid.ServicePrincipalsWithAppIdRequestBuilderGetQueryParameters{Select: spRefSelect},
	})
	if err := replied(op, sp, err); err != nil {
		return nil, err
	}
	return fromSDKServicePrincipal(sp), nil
}

func (c *Client) servicePrincipalByAppID(ctx context.Context, op, appID string, sel []string) (*ServicePrincipal, error) {
	filter := "appId eq " + odataQuote(appID)
	resp, err := c.sdk.ServicePrincipals().Get(ctx, &serviceprincipals.ServicePrincipalsRequestBuilderGetRequestConfiguration{
		QueryParameters: &serviceprincipals.ServicePrincipalsRequestBuilderGetQueryParameters{Filter: &filter, Select: sel},
	})
	if err := replied(op, resp, err); err != nil {
		return nil, err
	}
	var found []models.ServicePrincipalable
	for pages := 1; ; pages++ {
		found = append(found, resp.GetValue()...)
		next := resp.GetOdataNextLink()
		if next == nil || *next == "" {
			break
		}
		if pages >= c.maxPages {
			return nil, tooManyPages(op, c.maxPages)
		}
		if resp, err = c.sdk.ServicePrincipals().WithUrl(*next).Get(ctx, nil); err != nil || resp == nil {
			return nil, replied(op, resp, err)
		}
	}
	switch len(found) {
	case 0:
		return nil, &Error{Op: op, Kind: NotFound, Message: fmt.Sprintf("no service principal for appId %s in tenant %s", appID, c.tenantID)}
	case 1:
		return fromSDKServicePrincipal(found[0]), nil
	}
	return nil, &Error{Op: op, Kind: Ambiguous, Message: fmt.Sprintf("%d service principals for appId %s", len(found), appID)}
}

// ServicePrincipalByID reads a service principal by object ID, keys
// included with their certificates (a second read when it has keys).
func (c *Client) ServicePrincipalByID(ctx context.Context, id string) (*ServicePrincipal, error) {
	const op = "ServicePrincipalByID"
	resp, err := c.sdk.ServicePrincipals().ByServicePrincipalId(id).Get(ctx, &serviceprincipals.ServicePrincipalItemRequestBuilderGetRequestConfiguration{
		QueryParameters: &serviceprincipals.ServicePrincipalItemRequestBuilderGetQueryParameters{Select: spSelect},
	})
	if err := replied(op, resp, err); err != nil {
		return nil, err
	}
	sp := fromSDKServicePrincipal(resp)
	if sp.KeyCredentials, err = c.readKeys(ctx, op, "servicePrincipal", sp.ID, sp.KeyCredentials); err != nil {
		return nil, err
	}
	return sp, nil
}

// UpdateServicePrincipal sends one PATCH with whichever collections p
// sets, each replacing the server's collection. A Patch that sets nothing
// sends nothing.
func (c *Client) UpdateServicePrincipal(ctx context.Context, id string, p Patch) error {
	const op = "UpdateServicePrincipal"
	if p.KeyCredentials == nil && p.ServicePrincipalNames == nil {
		return nil
	}
	body := models.NewServicePrincipal()
	if p.KeyCredentials != nil {
		keys, err := toSDKKeys(op, *p.KeyCredentials)
		if err != nil {
			return err
		}
		body.SetKeyCredentials(keys)
	}
	if p.ServicePrincipalNames != nil {
		// Non-nil even when empty: an empty list is a real request to clear.
		body.SetServicePrincipalNames(append([]string{}, *p.ServicePrincipalNames...))
	}
	_, err := c.sdk.ServicePrincipals().ByServicePrincipalId(id).Patch(ctx, body, nil)
	return classify(op, err)
}

// CreateServicePrincipal instantiates an application in the tenant,
// with tags when given. Conflict when it already has one.
func (c *Client) CreateServicePrincipal(ctx context.Context, appID string, tags ...string) (*ServicePrincipal, error) {
	body := models.NewServicePrincipal()
	body.SetAppId(&appID)
	if len(tags) > 0 {
		body.SetTags(tags)
	}
	sp, err := c.sdk.ServicePrincipals().Post(ctx, body, nil)
	if err := replied("CreateServicePrincipal", sp, err); err != nil {
		return nil, err
	}
	return fromSDKServicePrincipal(sp), nil
}

// DeleteServicePrincipal removes a service principal (undo of CreateServicePrincipal).
func (c *Client) DeleteServicePrincipal(ctx context.Context, id string) error {
	return classify("DeleteServicePrincipal", c.sdk.ServicePrincipals().ByServicePrincipalId(id).Delete(ctx, nil))
}

// --- app role assignments ------------------------------------------------------

// AppRoleAssignments lists the app roles granted to a service principal.
func (c *Client) AppRoleAssignments(ctx context.Context, spID string) ([]AppRoleAssignment, error) {
	const op = "AppRoleAssignments"
	b := c.sdk.ServicePrincipals().ByServicePrincipalId(spID).AppRoleAssignments()
	resp, err := b.Get(ctx, nil)
	if err := replied(op, resp, err); err != nil {
		return nil, err
	}
	var out []AppRoleAssignment
	for pages := 1; ; pages++ {
		for _, a := range resp.GetValue() {
			out = append(out, fromSDKAssignment(a))
		}
		next := resp.GetOdataNextLink()
		if next == nil || *next == "" {
			return out, nil
		}
		if pages >= c.maxPages {
			return nil, tooManyPages(op, c.maxPages)
		}
		if resp, err = b.WithUrl(*next).Get(ctx, nil); err != nil || resp == nil {
			return nil, replied(op, resp, err)
		}
	}
}

// FindAppRoleAssignment reads back the assignment of app role appRoleID of
// resource resourceID to principalID: the three together identify it, as
// Graph refuses a second identical assignment. NotFound when there is none.
func (c *Client) FindAppRoleAssignment(ctx context.Context, principalID, resourceID, appRoleID string) (*AppRoleAssignment, error) {
	have, err := c.AppRoleAssignments(ctx, principalID)
	if err != nil {
		return nil, err
	}
	for _, a := range have {
		if strings.EqualFold(a.ResourceID, resourceID) && strings.EqualFold(a.AppRoleID, appRoleID) {
			return &a, nil
		}
	}
	return nil, &Error{Op: "FindAppRoleAssignment", Kind: NotFound,
		Message: fmt.Sprintf("no assignment of app role %s of %s to %s", appRoleID, resourceID, principalID)}
}

// AssignAppRole grants principalID the app role appRoleID of the resource
// service principal resourceID (admin consent for an application
// permission). An existing identical assignment is a Conflict error;
// whether that counts as done is the caller's decision.
func (c *Client) AssignAppRole(ctx context.Context, principalID, resourceID, appRoleID string) (*AppRoleAssignment, error) {
	const op = "AssignAppRole"
	var ids [3]uuid.UUID
	for i, s := range []string{principalID, resourceID, appRoleID} {
		u, err := uuid.Parse(s)
		if err != nil {
			return nil, invalidf(op, "%q is not a GUID", s)
		}
		ids[i] = u
	}
	body := models.NewAppRoleAssignment()
	body.SetPrincipalId(&ids[0])
	body.SetResourceId(&ids[1])
	body.SetAppRoleId(&ids[2])
	a, err := c.sdk.ServicePrincipals().ByServicePrincipalId(principalID).AppRoleAssignments().Post(ctx, body, nil)
	if err == nil {
		out := fromSDKAssignment(a)
		return &out, nil
	}
	e := classify(op, err)
	var ge *Error
	if errors.As(e, &ge) && ge.Kind == Invalid {
		if c.isDuplicateAssignment(ctx, ge, principalID, resourceID, appRoleID) {
			ge.Kind = Conflict
		}
	}
	return nil, e
}

// isDuplicateAssignment recognises Graph's 400 for an existing assignment
// by its wording or, failing that, by finding the assignment.
func (c *Client) isDuplicateAssignment(ctx context.Context, e *Error, principalID, resourceID, appRoleID string) bool {
	for _, p := range c.dupText {
		if p != "" && strings.Contains(strings.ToLower(e.Message), strings.ToLower(p)) {
			return true
		}
	}
	have, err := c.AppRoleAssignments(ctx, principalID)
	if err != nil {
		return false
	}
	for _, a := range have {
		if strings.EqualFold(a.ResourceID, resourceID) && strings.EqualFold(a.AppRoleID, appRoleID) {
			return true
		}
	}
	return false
}

// RemoveAppRoleAssignment revokes an assignment (undo of AssignAppRole).
func (c *Client) RemoveAppRoleAssignment(ctx context.Context, principalID, assignmentID string) error {
	err := c.sdk.ServicePrincipals().ByServicePrincipalId(principalID).AppRoleAssignments().ByAppRoleAssignmentId(assignmentID).Delete(ctx, nil)
	return classify("RemoveAppRoleAssignment", err)
}

// --- applications ------------------------------------------------------------------

// ApplicationByDisplayName finds the one application with this display
// name, keys included with their certificates (a second read when it has
// keys). NotFound when there is none; Ambiguous when several share the
// name, because picking one would be a guess.
func (c *Client) ApplicationByDisplayName(ctx context.Context, name string) (*Application, error) {
	const op = "ApplicationByDisplayName"
	filter := "displayName eq " + odataQuote(name)
	resp, err := c.sdk.Applications().Get(ctx, &applications.ApplicationsRequestBuilderGetRequestConfiguration{
		QueryParameters: &applications.ApplicationsRequestBuilderGetQueryParameters{Filter: &filter, Select: appSelect},
	})
	if err := replied(op, resp, err); err != nil {
		return nil, err
	}
	var found []models.Applicationable
	for pages := 1; ; pages++ {
		found = append(found, resp.GetValue()...)
		next := resp.GetOdataNextLink()
		if next == nil || *next == "" {
			break
		}
		if pages >= c.maxPages {
			return nil, tooManyPages(op, c.maxPages)
		}
		if resp, err = c.sdk.Applications().WithUrl(*next).Get(ctx, nil); err != nil || resp == nil {
			return nil, replied(op, resp, err)
		}
	}
	switch len(found) {
	case 0:
		return nil, &Error{Op: op, Kind: NotFound, Message: fmt.Sprintf("no application named %q in tenant %s", name, c.tenantID)}
	case 1:
		app := fromSDKApplication(found[0])
		if app.KeyCredentials, err = c.readKeys(ctx, op, "application", app.ID, app.KeyCredentials); err != nil {
			return nil, err
		}
		return app, nil
	}
	return nil, &Error{Op: op, Kind: Ambiguous, Message: fmt.Sprintf("%d applications are named %q", len(found), name)}
}

// ApplicationByID reads an application by object ID, keys included with
// their certificates (a second read when it has keys). Use it after
// CreateApplication: a $filter may not see a new object for a while.
func (c *Client) ApplicationByID(ctx context.Context, id string) (*Application, error) {
	const op = "ApplicationByID"
	resp, err := c.sdk.Applications().ByApplicationId(id).Get(ctx, &applications.ApplicationItemRequestBuilderGetRequestConfiguration{
		QueryParameters: &applications.ApplicationItemRequestBuilderGetQueryParameters{Select: appSelect},
	})
	if err := replied(op, resp, err); err != nil {
		return nil, err
	}
	app := fromSDKApplication(resp)
	if app.KeyCredentials, err = c.readKeys(ctx, op, "application", app.ID, app.KeyCredentials); err != nil {
		return nil, err
	}
	return app, nil
}

// ApplicationByUniqueName reads the application whose uniqueName is
// uniqueName (GET /applications(uniqueName='…'), the alternate key), keys
// included with their certificates (a second read, by id, when it has
// keys). NotFound when there is none.
func (c *Client) ApplicationByUniqueName(ctx context.Context, uniqueName string) (*Application, error) {
	const op = "ApplicationByUniqueName"
	if !validKey(uniqueName) {
		return nil, invalidf(op, "uniqueName %q is not a key Graph can address", uniqueName)
	}
	key := odataKey(uniqueName)
	resp, err := c.sdk.ApplicationsWithUniqueName(&key).Get(ctx, &applicationswithuniquename.ApplicationsWithUniqueNameRequestBuilderGetRequestConfiguration{
		QueryParameters: &applicationswithuniquename.ApplicationsWithUniqueNameRequestBuilderGetQueryParameters{Select: appSelect},
	})
	if err := replied(op, resp, err); err != nil {
		return nil, err
	}
	app := fromSDKApplication(resp)
	if app.KeyCredentials, err = c.readKeys(ctx, op, "application", app.ID, app.KeyCredentials); err != nil {
		return nil, err
	}
	return app, nil
}

// preferCreateIfMissing turns a PATCH by uniqueName into Graph's upsert.
const preferCreateIfMissing = "create-if-missing"

// UpsertApplication creates the application with this uniqueName, or
// updates the one that has it: PATCH /applications(uniqueName='…') with
// "Prefer: create-if-missing". Graph answers 201 with the new application
// (created is true) or 204 when one had the uniqueName and was updated
// with the body (created is false, and the application is read back).
// Sending it twice cannot make two applications.
//
// The call is sent once, never retried inside it: its answer is what
// tells a new application from an existing one, and a retry after a lost
// 201 would be answered 204. An error of Kind Server means the outcome is
// unknown; read the application back by its uniqueName.
func (c *Client) UpsertApplication(ctx context.Context, uniqueName, name, signInAudience string, rra []RequiredResourceAccess, tags ...string) (app *Application, created bool, err error) {
	const op = "UpsertApplication"
	if !validKey(uniqueName) {
		return nil, false, invalidf(op, "uniqueName %q is not a key Graph can address", uniqueName)
	}
	if name == "" {
		return nil, false, invalidf(op, "an upsert must carry a displayName")
	}
	body := models.NewApplication()
	body.SetDisplayName(&name)
	if len(tags) > 0 {
		body.SetTags(tags)
	}
	if signInAudience != "" {
		body.SetSignInAudience(&signInAudience)
	}
	if rra != nil {
		r, err := toSDKRequiredResourceAccess(op, rra)
		if err != nil {
			return nil, false, err
		}
		body.SetRequiredResourceAccess(r)
	}
	headers := abs.NewRequestHeaders()
	headers.Add("Prefer", preferCreateIfMissing)
	key := odataKey(uniqueName)
	a, err := c.sdk.ApplicationsWithUniqueName(&key).Patch(ctx, body, &applicationswithuniquename.ApplicationsWithUniqueNameRequestBuilderPatchRequestConfiguration{
		Headers: headers,
		Options: []abs.RequestOption{noRetry()},
	})
	if err != nil {
		return nil, false, classify(op, err)
	}
	if a != nil {
		return fromSDKApplication(a), true, nil
	}
	// 204: it existed and was updated.
	app, err = c.ApplicationByUniqueName(ctx, uniqueName)
	if err != nil {
		return nil, false, err
	}
	return app, false, nil
}

// validKey refuses what cannot be an alternate key's value: empty, or
// with characters that are not plain text.
func validKey(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// odataKey is a key value as it goes between the quotes of
// set(key='…'): a quote in it is doubled (the SDK escapes nothing else
// of OData's).
func odataKey(s string) string { return strings.ReplaceAll(s, "'", "''") }

// CreateApplication registers an application.
func (c *Client) CreateApplication(ctx context.Context, name, signInAudience string, rra []RequiredResourceAccess, tags ...string) (*Application, error) {
	const op = "CreateApplication"
	body := models.NewApplication()
	body.SetDisplayName(&name)
	if len(tags) > 0 {
		body.SetTags(tags)
	}
	if signInAudience != "" {
		body.SetSignInAudience(&signInAudience)
	}
	if rra != nil {
		r, err := toSDKRequiredResourceAccess(op, rra)
		if err != nil {
			return nil, err
		}
		body.SetRequiredResourceAccess(r)
	}
	a, err := c.sdk.Applications().Post(ctx, body, nil)
	if err := replied(op, a, err); err != nil {
		return nil, err
	}
	return fromSDKApplication(a), nil
}

// UpdateApplication sends one PATCH with whichever collections p sets,
// each replacing the server's collection. A patch that sets nothing sends
// nothing.
func (c *Client) UpdateApplication(ctx context.Context, id string, p ApplicationPatch) error {
	const op = "UpdateApplication"
	if p.KeyCredentials == nil && p.RequiredResourceAccess == nil && p.Tags == nil {
		return nil
	}
	body := models.NewApplication()
	if p.Tags != nil {
		// Non-nil even when empty: an empty list clears the tags.
		body.SetTags(append([]string{}, *p.Tags...))
	}
	if p.KeyCredentials != nil {
		keys, err := toSDKKeys(op, *p.KeyCredentials)
		if err != nil {
			return err
		}
		body.SetKeyCredentials(keys)
	}
	if p.RequiredResourceAccess != nil {
		r, err := toSDKRequiredResourceAccess(op, *p.RequiredResourceAccess)
		if err != nil {
			return err
		}
		body.SetRequiredResourceAccess(r)
	}
	_, err := c.sdk.Applications().ByApplicationId(id).Patch(ctx, body, nil)
	return classify(op, err)
}

// DeleteApplication removes an application and its service principal
// (undo of CreateApplication).
func (c *Client) DeleteApplication(ctx context.Context, id string) error {
	return classify("DeleteApplication", c.sdk.Applications().ByApplicationId(id).Delete(ctx, nil))
}

// --- directory --------------------------------------------------------------------

// Domains lists the tenant's domains.
func (c *Client) Domains(ctx context.Context) ([]Domain, error) {
	const op = "Domains"
	resp, err := c.sdk.Domains().Get(ctx, nil)
	if err := replied(op, resp, err); err != nil {
		return nil, err
	}
	var out []Domain
	for pages := 1; ; pages++ {
		for _, d := range resp.GetValue() {
			out = append(out, Domain{ID: deref(d.GetId()), IsDefault: derefBool(d.GetIsDefault()), IsInitial: derefBool(d.GetIsInitial()), IsVerified: derefBool(d.GetIsVerified())})
		}
		next := resp.GetOdataNextLink()
		if next == nil || *next == "" {
			return out, nil
		}
		if pages >= c.maxPages {
			return nil, tooManyPages(op, c.maxPages)
		}
		if resp, err = c.sdk.Domains().WithUrl(*next).Get(ctx, nil); err != nil || resp == nil {
			return nil, replied(op, resp, err)
		}
	}
}

// Organization reads the tenant's organization object.
func (c *Client) Organization(ctx context.Context) (*Organization, error) {
	const op = "Organization"
	resp, err := c.sdk.Organization().Get(ctx, nil)
	if err := replied(op, resp, err); err != nil {
		return nil, err
	}
	vs := resp.GetValue()
	if len(vs) == 0 {
		return nil, &Error{Op: op, Kind: NotFound, Message: "no organization object"}
	}
	o := &Organization{ID: deref(vs[0].GetId()), DisplayName: deref(vs[0].GetDisplayName())}
	for _, d := range vs[0].GetVerifiedDomains() {
		o.VerifiedDomains = append(o.VerifiedDomains, VerifiedDomain{Name: deref(d.GetName()), IsDefault: derefBool(d.GetIsDefault()), IsInitial: derefBool(d.GetIsInitial())})
	}
	return o, nil
}

// --- conversions --------------------------------------------------------------------

func fromSDKServicePrincipal(sp models.ServicePrincipalable) *ServicePrincipal {
	out := &ServicePrincipal{
		ID:                    deref(sp.GetId()),
		AppID:                 deref(sp.GetAppId()),
		DisplayName:           deref(sp.GetDisplayName()),
		ServicePrincipalNames: sp.GetServicePrincipalNames(),
		KeyCredentials:        fromSDKKeys(sp.GetKeyCredentials()),
		Tags:                  sp.GetTags(),
	}
	for _, r := range sp.GetAppRoles() {
		out.AppRoles = append(out.AppRoles, AppRole{ID: uuidString(r.GetId()), Value: deref(r.GetValue())})
	}
	return out
}

func fromSDKApplication(a models.Applicationable) *Application {
	out := &Application{
		ID:             deref(a.GetId()),
		AppID:          deref(a.GetAppId()),
		UniqueName:     deref(a.GetUniqueName()),
		DisplayName:    deref(a.GetDisplayName()),
		SignInAudience: deref(a.GetSignInAudience()),
		KeyCredentials: fromSDKKeys(a.GetKeyCredentials()),
		Tags:           a.GetTags(),
	}
	for _, r := range a.GetRequiredResourceAccess() {
		x := RequiredResourceAccess{ResourceAppID: deref(r.GetResourceAppId())}
		for _, ra := range r.GetResourceAccess() {
			x.ResourceAccess = append(x.ResourceAccess, ResourceAccess{ID: uuidString(ra.GetId()), Type: deref(ra.GetTypeEscaped())})
		}
		out.RequiredResourceAccess = append(out.RequiredResourceAccess, x)
	}
	return out
}

func fromSDKAssignment(a models.AppRoleAssignmentable) AppRoleAssignment {
	return AppRoleAssignment{
		ID:          deref(a.GetId()),
		PrincipalID: uuidString(a.GetPrincipalId()),
		ResourceID:  uuidString(a.GetResourceId()),
		AppRoleID:   uuidString(a.GetAppRoleId()),
	}
}

func fromSDKKeys(ks []models.KeyCredentialable) []KeyCredential {
	if ks == nil {
		return nil
	}
	out := make([]KeyCredential, 0, len(ks))
	for _, k := range ks {
		kc := KeyCredential{
			KeyID:       uuidString(k.GetKeyId()),
			DisplayName: deref(k.GetDisplayName()),
			Type:        deref(k.GetTypeEscaped()),
			Usage:       deref(k.GetUsage()),
			Key:         k.GetKey(),
		}
		if b := k.GetCustomKeyIdentifier(); len(b) > 0 {
			// The SDK base64-decoded Graph's string; encoding the bytes
			// again gives that string back exactly.
			kc.CustomKeyIdentifier = base64.StdEncoding.EncodeToString(b)
		}
		if t := k.GetStartDateTime(); t != nil {
			kc.Start = t.UTC()
		}
		if t := k.GetEndDateTime(); t != nil {
			kc.End = t.UTC()
		}
		out = append(out, kc)
	}
	return out
}

// toSDKKeys converts keys for a PATCH. Every key must carry its DER:
// Graph replaces the collection and cannot keep a key it is not sent.
// Fields left zero are left out. customKeyIdentifier goes out as the very
// string it holds (the SDK base64-encodes the bytes it decodes to), so a
// key read from Graph is sent back with Graph's own value.
func toSDKKeys(op string, ks []KeyCredential) ([]models.KeyCredentialable, error) {
	out := make([]models.KeyCredentialable, 0, len(ks))
	for i, k := range ks {
		if len(k.Key) == 0 {
			return nil, invalidf(op, "keyCredentials[%d] (keyId %q) has no key bytes; read keys with keyCredentials selected before patching", i, k.KeyID)
		}
		m := models.NewKeyCredential()
		m.SetKey(k.Key)
		typ, usage := k.Type, k.Usage
		if typ == "" {
			typ = KeyTypeX509
		}
		if usage == "" {
			usage = KeyUsageVerify
		}
		m.SetTypeEscaped(&typ)
		m.SetUsage(&usage)
		if k.KeyID != "" {
			id, err := uuid.Parse(k.KeyID)
			if err != nil {
				return nil, invalidf(op, "keyCredentials[%d]: keyId %q is not a GUID", i, k.KeyID)
			}
			m.SetKeyId(&id)
		}
		if k.CustomKeyIdentifier != "" {
			b, err := identifierBytes(k.CustomKeyIdentifier)
			if err != nil {
				return nil, invalidf(op, "keyCredentials[%d] (keyId %q): customKeyIdentifier %q %v", i, k.KeyID, k.CustomKeyIdentifier, err)
			}
			m.SetCustomKeyIdentifier(b)
		}
		if k.DisplayName != "" {
			name := k.DisplayName
			m.SetDisplayName(&name)
		}
		if !k.Start.IsZero() {
			t := k.Start.UTC()
			m.SetStartDateTime(&t)
		}
		if !k.End.IsZero() {
			t := k.End.UTC()
			m.SetEndDateTime(&t)
		}
		out = append(out, m)
	}
	return out, nil
}

// identifierBytes is what the SDK must hold for customKeyIdentifier s to
// go on the wire as s: its base64 decoding. A string that does not come
// back unchanged from that round trip (not base64, or base64 in a form
// other than the one Graph writes) is refused rather than silently sent
// as a different value.
func identifierBytes(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, errors.New("is not base64 (a hex thumbprint of 40 digits is)")
	}
	if base64.StdEncoding.EncodeToString(b) != s {
		return nil, errors.New("would not reach Graph unchanged (not in canonical base64)")
	}
	return b, nil
}

func toSDKRequiredResourceAccess(op string, rra []RequiredResourceAccess) ([]models.RequiredResourceAccessable, error) {
	out := make([]models.RequiredResourceAccessable, 0, len(rra))
	for _, r := range rra {
		m := models.NewRequiredResourceAccess()
		appID := r.ResourceAppID
		m.SetResourceAppId(&appID)
		acc := make([]models.ResourceAccessable, 0, len(r.ResourceAccess))
		for _, a := range r.ResourceAccess {
			id, err := uuid.Parse(a.ID)
			if err != nil {
				return nil, invalidf(op, "resource access id %q is not a GUID", a.ID)
			}
			x := models.NewResourceAccess()
			typ := a.Type
			x.SetId(&id)
			x.SetTypeEscaped(&typ)
			acc = append(acc, x)
		}
		m.SetResourceAccess(acc)
		out = append(out, m)
	}
	return out, nil
}

func uuidString(u *uuid.UUID) string {
	if u == nil {
		return ""
	}
	return u.String()
}

func derefBool(b *bool) bool { return b != nil && *b }

// freshBodyHandler gives every attempt of a request its own copy of the
// body. Kiota's retry handler rewinds the one body it has and sends it
// again, but when the server answers (429/503) before reading the body,
// the transport may still be consuming that body for the first attempt,
// and the retry goes out empty. It must be the innermost middleware.
type freshBodyHandler struct{}

// snapshotBody is a request body read once; retries seek it, attempts copy it.
type snapshotBody struct {
	*bytes.Reader
	data []byte
}

func (snapshotBody) Close() error { return nil }

func (freshBodyHandler) Intercept(p khttp.Pipeline, i int, req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return p.Next(req, i)
	}
	snap, ok := req.Body.(snapshotBody)
	if !ok {
		data, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read request body: %w", err)
		}
		snap = snapshotBody{Reader: bytes.NewReader(data), data: data}
		req.Body = snap
	}
	attempt := req.Clone(req.Context())
	attempt.Body = io.NopCloser(bytes.NewReader(snap.data))
	attempt.ContentLength = int64(len(snap.data))
	attempt.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(snap.data)), nil }
	return p.Next(attempt, i)
}

// replied classifies a call's error and refuses a success without a body:
// the Kiota adapter answers a 204, or a 200 with an empty body, with
// (nil, nil), which every caller would otherwise dereference.
func replied[T any](op string, v T, err error) error {
	if err != nil {
		return classify(op, err)
	}
	if any(v) == nil {
		return &Error{Op: op, Kind: Server, Message: "Graph answered success without a body"}
	}
	return nil
}
