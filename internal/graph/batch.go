package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	abs "github.com/microsoft/kiota-abstractions-go"
	absser "github.com/microsoft/kiota-abstractions-go/serialization"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/applications"
	"github.com/microsoftgraph/msgraph-sdk-go/domains"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
	"github.com/microsoftgraph/msgraph-sdk-go/serviceprincipals"
)

func init() {
	// Without a mapping the SDK reports a failed $batch POST as a bare
	// ApiError; with it, as the ODataError (code, message, request-id) that
	// classify reads for every other call. Registering twice only errs.
	_ = msgraphcore.RegisterError(msgraphcore.BatchRequestErrorRegistryKey, abs.ErrorMappings{
		"4XX": odataerrors.CreateODataErrorFromDiscriminatorValue,
		"5XX": odataerrors.CreateODataErrorFromDiscriminatorValue,
	})
}

// EntraState is the Entra half of discovery: what ReadEntraState reads.
type EntraState struct {
	// FirstParty is the service principal of the first-party application
	// (keys with their certificates, and SPNs), nil when the tenant has none.
	FirstParty *ServicePrincipal
	// Application is the one application with the requested display name
	// (keys with their certificates), nil when there is none or no name
	// was asked for.
	Application *Application
	// ApplicationSP is Application's service principal, matched by appId
	// (a display name proves nothing), nil when it has none. Its keys are
	// not read.
	ApplicationSP *ServicePrincipal
	// Assignments are ApplicationSP's app role assignments; read only when
	// FirstParty exists, since consent is a grant on it.
	Assignments []AppRoleAssignment
	Domains     []Domain
	// Requests is how many HTTP requests the read made: 1, plus one for
	// the key read when the first-party service principal (not yet known
	// to the client) or the application has keys whose certificates are
	// needed, plus one per retried batch, followed nextLink or fallback
	// read (the transport's own retries of a whole batch not counted).
	Requests int
}

// Selections of the discovery batch: only what plan.Observed needs.
// keyCredentials is selected where keys matter, to learn whether there are
// any; a list answer never carries their certificates, which readEntraKeys
// fetches afterwards.
var (
	discoverFirstPartySelect = []string{"id", "appId", "keyCredentials", "servicePrincipalNames"}
	discoverAppSelect        = []string{"id", "appId", "displayName", "keyCredentials", "requiredResourceAccess"}
	discoverAppSPSelect      = []string{"id", "appId", "displayName"}
	discoverDomainSelect     = []string{"id", "isVerified"}
)

// maxExpandedAssignments is how many related directory objects Graph
// inlines for one $expand, with no nextLink for the rest.
const maxExpandedAssignments = 20

// ReadEntraState reads, in ONE Graph JSON batch (POST /$batch), the
// first-party service principal of firstPartyAppID, the application named
// appName (skipped when empty), the service principals of that name with
// their app role assignments expanded, and the tenant's domains. The
// dedicated service principal's ID is not known up front, hence the lookup
// by name; it is then matched to the application by appId.
//
// Keys: Graph sends a key's certificate bytes only to a single-object read
// with $select=keyCredentials, so a second batch reads them that way (one
// more round trip) for:
//   - the first-party service principal, whenever it has keys: on that
//     shared object the plan tells an Exchange auth certificate from
//     another application's key by the certificate itself;
//   - the application, when it has keys but not yet every one of
//     authThumbprints (the organisation's auth certificates), identified
//     by each key's customKeyIdentifier. Graph gives a certificate key
//     its thumbprint there when the uploader sends none, hybridflow sends
//     it, and Microsoft's own scripts match the dedicated application's
//     keys by it. An application that holds them all is one the keys step
//     leaves alone, and reading its certificates would change nothing;
//     one that lacks one is written, and its keys are read with their
//     certificates here (and again by the step, before its PATCH).
//
// The first-party service principal's object ID, once a discovery has
// found it, is remembered by the client (one per tenant in a worker): the
// next discovery adds that object's single-object key read to its first
// batch, so a converged tenant costs one request. It is used only when the
// list finds the same object; otherwise (first discovery, object deleted
// and made again) the keys are read afterwards as above.
//
// A few honest extra requests remain for the rare cases one batch cannot
// settle: a nextLink on any list, an application whose service principal
// is not found under its name (read by appId instead), and 20 expanded
// assignments (Graph's inline limit) without the consent being among them.
//
// Requests inside the batch that answer 429/503/504 are sent again (as a
// smaller batch) after their Retry-After, within the same MaxRetries and
// MaxRetryWait budget as any other call; past it the error is Throttled or
// Server with RetryAfter set. Errors report the read that failed as Op,
// e.g. "ApplicationByDisplayName".
func (c *Client) ReadEntraState(ctx context.Context, firstPartyAppID, appName string, authThumbprints ...string) (*EntraState, error) {
	fpFilter := "appId eq " + odataQuote(firstPartyAppID)
	steps := []batchStep{{op: "ServicePrincipalByAppID", info: func() (*abs.RequestInformation, error) {
		return c.sdk.ServicePrincipals().ToGetRequestInformation(ctx, &serviceprincipals.ServicePrincipalsRequestBuilderGetRequestConfiguration{
			QueryParameters: &serviceprincipals.ServicePrincipalsRequestBuilderGetQueryParameters{Filter: &fpFilter, Select: discoverFirstPartySelect}})
	}}}
	const stepFirstParty, stepDomains = 0, 1
	steps = append(steps, batchStep{op: "Domains", info: func() (*abs.RequestInformation, error) {
		return c.sdk.Domains().ToGetRequestInformation(ctx, &domains.DomainsRequestBuilderGetRequestConfiguration{
			QueryParameters: &domains.DomainsRequestBuilderGetQueryParameters{Select: discoverDomainSelect}})
	}})
	const stepApp, stepAppSP = 2, 3
	if appName != "" {
		nameFilter := "displayName eq " + odataQuote(appName)
		steps = append(steps,
			batchStep{op: "ApplicationByDisplayName", info: func() (*abs.RequestInformation, error) {
				return c.sdk.Applications().ToGetRequestInformation(ctx, &applications.ApplicationsRequestBuilderGetRequestConfiguration{
					QueryParameters: &applications.ApplicationsRequestBuilderGetQueryParameters{Filter: &nameFilter, Select: discoverAppSelect}})
			}},
			batchStep{op: "ServicePrincipalsByDisplayName", info: func() (*abs.RequestInformation, error) {
				return c.sdk.ServicePrincipals().ToGetRequestInformation(ctx, &serviceprincipals.ServicePrincipalsRequestBuilderGetRequestConfiguration{
					QueryParameters: &serviceprincipals.ServicePrincipalsRequestBuilderGetQueryParameters{
						Filter: &nameFilter, Select: discoverAppSPSelect, Expand: []string{"appRoleAssignments"}}})
			}})
	}
	required := len(steps)
	knownID := c.knownServicePrincipal(firstPartyAppID)
	if knownID != "" {
		steps = append(steps, c.keysStep(ctx, "ServicePrincipalKeys", knownID))
	}
	st := &EntraState{}
	if err := c.sendBatch(ctx, steps, &st.Requests); err != nil {
		return nil, err
	}
	// Report failures in the order the individual reads used to happen.
	for _, i := range []int{stepFirstParty, stepApp, stepAppSP, stepDomains} {
		if i < required && steps[i].err != nil {
			return nil, steps[i].err
		}
	}

	nextSPs := func(u string) (models.ServicePrincipalCollectionResponseable, error) {
		return c.sdk.ServicePrincipals().WithUrl(u).Get(ctx, nil)
	}
	fps, err := decodeList(steps[stepFirstParty], models.CreateServicePrincipalCollectionResponseFromDiscriminatorValue, nextSPs, &st.Requests, c.maxPages)
	if err != nil {
		return nil, err
	}
	switch len(fps) {
	case 0:
	case 1:
		st.FirstParty = fromSDKServicePrincipal(fps[0])
	default:
		return nil, &Error{Op: steps[stepFirstParty].op, Kind: Ambiguous, Message: fmt.Sprintf("%d service principals for appId %s", len(fps), firstPartyAppID)}
	}
	// The batch read the keys of the object the list found.
	fp := st.FirstParty
	fpKeysRead := fp != nil && knownID != "" && strings.EqualFold(fp.ID, knownID) && steps[required].err == nil
	if fpKeysRead && len(fp.KeyCredentials) > 0 {
		if fp.KeyCredentials, err = decodeKeys(steps[required]); err != nil {
			return nil, err
		}
	}
	c.learnServicePrincipal(firstPartyAppID, st.FirstParty)

	ds, err := decodeList(steps[stepDomains], models.CreateDomainCollectionResponseFromDiscriminatorValue,
		func(u string) (models.DomainCollectionResponseable, error) {
			return c.sdk.Domains().WithUrl(u).Get(ctx, nil)
		}, &st.Requests, c.maxPages)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		st.Domains = append(st.Domains, Domain{ID: deref(d.GetId()), IsDefault: derefBool(d.GetIsDefault()), IsInitial: derefBool(d.GetIsInitial()), IsVerified: derefBool(d.GetIsVerified())})
	}

	if appName != "" {
		if err := c.readEntraApplication(ctx, st, steps, appName, nextSPs); err != nil {
			return nil, err
		}
	}
	if err := c.readEntraKeys(ctx, st, !fpKeysRead, authThumbprints); err != nil {
		return nil, err
	}
	return st, nil
}

// readEntraKeys replaces the keys the discovery lists showed (without
// their certificates) with the same objects' keys read one by one with
// $select=keyCredentials, in one batch. Objects without keys need no read,
// nor an application that already holds every auth certificate (see
// ReadEntraState).
func (c *Client) readEntraKeys(ctx context.Context, st *EntraState, firstParty bool, authThumbprints []string) error {
	var steps []batchStep
	var sp, app int = -1, -1
	if fp := st.FirstParty; firstParty && fp != nil && len(fp.KeyCredentials) > 0 {
		sp = len(steps)
		steps = append(steps, c.keysStep(ctx, "ServicePrincipalKeys", fp.ID))
	}
	if a := st.Application; a != nil && len(a.KeyCredentials) > 0 && !holdsAll(a.KeyCredentials, authThumbprints) {
		id := a.ID
		app = len(steps)
		steps = append(steps, batchStep{op: "ApplicationKeys", info: func() (*abs.RequestInformation, error) {
			return c.sdk.Applications().ByApplicationId(id).ToGetRequestInformation(ctx, &applications.ApplicationItemRequestBuilderGetRequestConfiguration{
				QueryParameters: &applications.ApplicationItemRequestBuilderGetQueryParameters{Select: keySelect}})
		}})
	}
	if len(steps) == 0 {
		return nil
	}
	if err := c.sendBatch(ctx, steps, &st.Requests); err != nil {
		return err
	}
	for _, s := range steps {
		if s.err != nil {
			return s.err
		}
	}
	if sp >= 0 {
		keys, err := decodeKeys(steps[sp])
		if err != nil {
			return err
		}
		st.FirstParty.KeyCredentials = keys
	}
	if app >= 0 {
		v, err := decodeItem(steps[app], models.CreateApplicationFromDiscriminatorValue)
		if err != nil {
			return err
		}
		m, ok := v.(models.Applicationable)
		if !ok {
			return &Error{Op: steps[app].op, Kind: Unknown, Message: fmt.Sprintf("batch answer parsed as %T", v)}
		}
		st.Application.KeyCredentials = fromSDKKeys(m.GetKeyCredentials())
	}
	return nil
}

// keysStep reads service principal id's keys with their certificates:
// a single-object read with $select=keyCredentials.
func (c *Client) keysStep(ctx context.Context, op, id string) batchStep {
	return batchStep{op: op, info: func() (*abs.RequestInformation, error) {
		return c.sdk.ServicePrincipals().ByServicePrincipalId(id).ToGetRequestInformation(ctx, &serviceprincipals.ServicePrincipalItemRequestBuilderGetRequestConfiguration{
			QueryParameters: &serviceprincipals.ServicePrincipalItemRequestBuilderGetQueryParameters{Select: keySelect}})
	}}
}

// decodeKeys parses the keys of a service principal's keysStep answer.
func decodeKeys(s batchStep) ([]KeyCredential, error) {
	v, err := decodeItem(s, models.CreateServicePrincipalFromDiscriminatorValue)
	if err != nil {
		return nil, err
	}
	m, ok := v.(models.ServicePrincipalable)
	if !ok {
		return nil, &Error{Op: s.op, Kind: Unknown, Message: fmt.Sprintf("batch answer parsed as %T", v)}
	}
	return fromSDKKeys(m.GetKeyCredentials()), nil
}

// knownServicePrincipal is the object ID of appID's service principal as
// the last discovery found it, "" when none did.
func (c *Client) knownServicePrincipal(appID string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.spIDs[strings.ToLower(appID)]
}

// learnServicePrincipal records (or, for nil, forgets) appID's service
// principal. An object ID never changes; one deleted and made again only
// costs the read the known ID would have saved.
func (c *Client) learnServicePrincipal(appID string, sp *ServicePrincipal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sp == nil {
		delete(c.spIDs, strings.ToLower(appID))
		return
	}
	if c.spIDs == nil {
		c.spIDs = map[string]string{}
	}
	c.spIDs[strings.ToLower(appID)] = sp.ID
}

// holdsAll reports whether keys, each identified by a thumbprint as its
// customKeyIdentifier, include every one of thumbprints (at least one).
// A key whose identifier is not a thumbprint makes it false: only its
// certificate can say what it is.
func holdsAll(keys []KeyCredential, thumbprints []string) bool {
	if len(thumbprints) == 0 {
		return false
	}
	held := make(map[string]bool, len(keys))
	for _, k := range keys {
		tp := IdentifierThumbprint(k.CustomKeyIdentifier)
		if tp == "" {
			return false
		}
		held[tp] = true
	}
	for _, tp := range thumbprints {
		if !held[IdentifierThumbprint(tp)] {
			return false
		}
	}
	return true
}

// decodeItem parses a step's single-object answer with the SDK's models.
func decodeItem(s batchStep, factory absser.ParsableFactory) (absser.Parsable, error) {
	node, err := absser.DefaultParseNodeFactoryInstance.GetRootParseNode("application/json", s.body)
	if err != nil {
		return nil, &Error{Op: s.op, Kind: Unknown, Message: "parse batch answer", Err: err}
	}
	v, err := node.GetObjectValue(factory)
	if err != nil || v == nil {
		return nil, &Error{Op: s.op, Kind: Unknown, Message: "parse batch answer", Err: err}
	}
	return v, nil
}

// readEntraApplication completes st with the application named appName,
// its service principal and that one's assignments, from the discovery
// batch's answers (and the few extra reads described at ReadEntraState).
func (c *Client) readEntraApplication(ctx context.Context, st *EntraState, steps []batchStep, appName string,
	nextSPs func(string) (models.ServicePrincipalCollectionResponseable, error)) error {
	const stepApp, stepAppSP = 2, 3
	apps, err := decodeList(steps[stepApp], models.CreateApplicationCollectionResponseFromDiscriminatorValue,
		func(u string) (models.ApplicationCollectionResponseable, error) {
			return c.sdk.Applications().WithUrl(u).Get(ctx, nil)
		}, &st.Requests, c.maxPages)
	if err != nil {
		return err
	}
	switch len(apps) {
	case 0:
		return nil
	case 1:
		st.Application = fromSDKApplication(apps[0])
	default:
		return &Error{Op: steps[stepApp].op, Kind: Ambiguous, Message: fmt.Sprintf("%d applications are named %q", len(apps), appName)}
	}

	named, err := decodeList(steps[stepAppSP], models.CreateServicePrincipalCollectionResponseFromDiscriminatorValue, nextSPs, &st.Requests, c.maxPages)
	if err != nil {
		return err
	}
	var match []models.ServicePrincipalable
	for _, sp := range named {
		if strings.EqualFold(deref(sp.GetAppId()), st.Application.AppID) {
			match = append(match, sp)
		}
	}
	expanded := false
	switch len(match) {
	case 0:
		// Not under the application's name (renamed, or not created yet):
		// the appId lookup the batch could not make settles it.
		st.Requests++
		sp, err := c.LookupServicePrincipal(ctx, st.Application.AppID)
		switch {
		case IsNotFound(err):
			return nil
		case err != nil:
			return err
		}
		st.ApplicationSP = sp
	case 1:
		st.ApplicationSP = fromSDKServicePrincipal(match[0])
		for _, a := range match[0].GetAppRoleAssignments() {
			st.Assignments = append(st.Assignments, fromSDKAssignment(a))
		}
		expanded = len(st.Assignments) < maxExpandedAssignments
	default:
		return &Error{Op: steps[stepAppSP].op, Kind: Ambiguous, Message: fmt.Sprintf("%d service principals for appId %s", len(match), st.Application.AppID)}
	}
	if st.FirstParty == nil || expanded {
		return nil
	}
	st.Requests++
	if st.Assignments, err = c.AppRoleAssignments(ctx, st.ApplicationSP.ID); err != nil {
		return err
	}
	return nil
}

// collection is a Graph collection response page.
type collection[T any] interface {
	absser.Parsable
	GetValue() []T
	GetOdataNextLink() *string
}

// decodeList parses a step's answer with the SDK's models and follows
// @odata.nextLink with ordinary requests (rare: a tenant with more objects
// than a page holds), at most maxPages pages in all.
func decodeList[R collection[T], T any](s batchStep, factory absser.ParsableFactory, next func(string) (R, error), requests *int, maxPages int) ([]T, error) {
	node, err := absser.DefaultParseNodeFactoryInstance.GetRootParseNode("application/json", s.body)
	if err != nil {
		return nil, &Error{Op: s.op, Kind: Unknown, Message: "parse batch answer", Err: err}
	}
	v, err := node.GetObjectValue(factory)
	if err != nil {
		return nil, &Error{Op: s.op, Kind: Unknown, Message: "parse batch answer", Err: err}
	}
	page, ok := v.(R)
	if !ok {
		return nil, &Error{Op: s.op, Kind: Unknown, Message: fmt.Sprintf("batch answer parsed as %T", v)}
	}
	var out []T
	for pages := 1; ; pages++ {
		out = append(out, page.GetValue()...)
		link := page.GetOdataNextLink()
		if link == nil || *link == "" {
			return out, nil
		}
		if pages >= maxPages {
			return nil, tooManyPages(s.op, maxPages)
		}
		*requests++
		page, err = next(*link)
		if err := replied(s.op, page, err); err != nil {
			return nil, err
		}
	}
}

// batchStep is one request of a batch: how to build it and, once sent,
// its answer or its classified error.
type batchStep struct {
	op   string
	info func() (*abs.RequestInformation, error)
	// Set by sendBatch.
	status int32
	body   []byte
	err    error
}

// sendBatch sends the steps as one JSON batch and fills in each step's
// answer. Steps answered 429/503/504 are sent again, alone in a smaller
// batch, after the longest Retry-After among them, while the client's
// retry budget allows; after that they keep their Throttled/Server error.
// The error returned is the batch's own (the POST failed as a whole).
func (c *Client) sendBatch(ctx context.Context, steps []batchStep, requests *int) error {
	const op = "Batch"
	pending := make([]int, len(steps))
	for i := range steps {
		pending[i] = i
	}
	var waited time.Duration
	for attempt := 0; ; attempt++ {
		batch := msgraphcore.NewBatchRequest(c.adapter)
		ids := make(map[string]int, len(pending))
		for _, i := range pending {
			info, err := steps[i].info()
			if err != nil {
				return invalidf(steps[i].op, "build batch request: %v", err)
			}
			if info.Method != abs.GET {
				// The whole batch is retried like a read (repeatable).
				return invalidf(steps[i].op, "a batch of this client carries reads only, not %s", info.Method.String())
			}
			item, err := batch.AddBatchRequestStep(*info)
			if err != nil {
				return invalidf(steps[i].op, "add batch request: %v", err)
			}
			u := decodeParamNames(deref(item.GetUrl()))
			item.SetUrl(&u)
			ids[deref(item.GetId())] = i
		}
		*requests++
		resp, err := batch.Send(ctx, c.adapter)
		if err := replied(op, resp, err); err != nil {
			return err
		}
		var again []int
		var delay time.Duration
		for id, i := range ids {
			item := resp.GetResponseById(id)
			if item == nil || item.GetStatus() == nil {
				return &Error{Op: steps[i].op, Kind: Server, Message: "the batch response has no answer for request " + id}
			}
			s := &steps[i]
			s.status, s.err = *item.GetStatus(), nil
			if s.body, err = json.Marshal(item.GetBody()); err != nil {
				return &Error{Op: s.op, Kind: Unknown, Message: "re-encode batch answer", Err: err}
			}
			if s.status < 400 {
				continue
			}
			s.err = batchItemError(s.op, s.status, item.GetHeaders(), s.body)
			if s.status == 429 || s.status == 503 || s.status == 504 {
				again = append(again, i)
				delay = max(delay, retryDelay(attempt, headerValue(item.GetHeaders(), "Retry-After")))
			}
		}
		if len(again) == 0 || c.maxRetries < 0 || attempt >= c.maxRetries || waited+delay > c.maxRetryWait {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return classify(op, ctx.Err())
		case <-t.C:
		}
		waited += delay
		// Keep the batch's request order (ids is a map).
		pending = pending[:0]
		for i := range steps {
			if slices.Contains(again, i) {
				pending = append(pending, i)
			}
		}
	}
}

// batchItemError turns a failed answer inside a batch into the *Error the
// same request would have produced on its own: kind from status and code,
// Retry-After from its headers.
func batchItemError(op string, status int32, headers map[string]string, body []byte) *Error {
	var b struct {
		Error struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			InnerError struct {
				RequestID string `json:"request-id"`
			} `json:"innerError"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &b) // an answer without a Graph error body still has its status
	e := &Error{Op: op, Status: int(status), Code: b.Error.Code, Message: b.Error.Message, RequestID: b.Error.InnerError.RequestID}
	if ra := headerValue(headers, "Retry-After"); ra != "" {
		e.RetryAfter = parseRetryAfter(ra, time.Now())
	}
	e.Kind = kindForStatus(e.Status, e.Code)
	return e
}

// decodeParamNames writes query option names as "$filter", not
// "%24filter": the batch item carries the URL as Kiota encoded it, without
// the parameter-name decoding middleware that shapes direct requests, and
// Graph should see the same URL either way.
func decodeParamNames(u string) string {
	path, query, ok := strings.Cut(u, "?")
	if !ok {
		return u
	}
	pairs := strings.Split(query, "&")
	for i, p := range pairs {
		name, value, hasValue := strings.Cut(p, "=")
		name = strings.ReplaceAll(name, "%24", "$")
		if hasValue {
			pairs[i] = name + "=" + value
		} else {
			pairs[i] = name
		}
	}
	return path + "?" + strings.Join(pairs, "&")
}

func headerValue(h map[string]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}
