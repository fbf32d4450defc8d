package sim

// Entities of the simulated Graph: their JSON shapes, the validation of
// what clients send, and the operations on them. Callers hold w.mu.

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hybridflow/hybridflow/internal/certs"
	"github.com/hybridflow/hybridflow/internal/cloud"
)

const (
	graphKeyTypeX509     = "AsymmetricX509Cert"
	graphKeyUsageVerify  = "Verify"
	graphMaxKeyName      = 90
	graphCreatedByClient = "client"
)

var (
	graphSPSelectable = []string{"id", "appId", "displayName", "appDisplayName", "servicePrincipalNames", "keyCredentials",
		"appRoles", "accountEnabled", "servicePrincipalType", "passwordCredentials", "tags"}
	graphSPFilterable = []string{"id", "appId", "displayName"}
	// graphSPExpandable: the one navigation property discovery expands
	// (Graph lists at most graphMaxExpanded related directory objects).
	graphSPExpandable  = []string{"appRoleAssignments"}
	graphAppSelectable = []string{"id", "appId", "uniqueName", "displayName", "signInAudience", "requiredResourceAccess", "keyCredentials",
		"passwordCredentials", "identifierUris", "tags"}
	graphAppFilterable          = []string{"id", "appId", "displayName"}
	graphAppWritable            = []string{"displayName", "signInAudience", "requiredResourceAccess", "keyCredentials", "tags"}
	graphAssignmentSelectable   = []string{"id", "appRoleId", "principalId", "principalType", "principalDisplayName", "resourceId", "resourceDisplayName"}
	graphDomainSelectable       = []string{"id", "isDefault", "isInitial", "isVerified", "isAdminManaged", "authenticationType", "supportedServices"}
	graphOrganizationSelectable = []string{"id", "displayName", "verifiedDomains", "tenantType", "countryLetterCode"}
	graphSignInAudiences        = []string{"AzureADMyOrg", "AzureADMultipleOrgs", "AzureADandPersonalMicrosoftAccount", "PersonalMicrosoftAccount"}
)

// --- JSON shapes -----------------------------------------------------------

// graphKeyJSON shows a key credential. key is null unless withKey: Graph
// fills it in only for a single object read with $select=keyCredentials
// (graphKeysWanted). customKeyIdentifier is served as stored, the base64
// text of its bytes (for certificates usually the hex thumbprint).
func graphKeyJSON(k KeyCredential, withKey bool) map[string]any {
	var key any
	if withKey && len(k.Key) > 0 {
		key = base64.StdEncoding.EncodeToString(k.Key)
	}
	var cki any
	if k.CustomKeyIdentifier != "" {
		cki = k.CustomKeyIdentifier
	}
	return map[string]any{
		"customKeyIdentifier": cki,
		"displayName":         k.DisplayName,
		"endDateTime":         k.EndDateTime.UTC(),
		"key":                 key,
		"keyId":               k.KeyID,
		"startDateTime":       k.StartDateTime.UTC(),
		"type":                k.Type,
		"usage":               k.Usage,
	}
}

func graphKeysJSON(ks []KeyCredential, withKey bool) []any {
	out := make([]any, 0, len(ks))
	for _, k := range ks {
		out = append(out, graphKeyJSON(k, withKey))
	}
	return out
}

func graphSPJSON(sp *ServicePrincipal, withKey bool) map[string]any {
	roles := make([]any, 0, len(sp.AppRoles))
	for _, r := range sp.AppRoles {
		roles = append(roles, map[string]any{
			"allowedMemberTypes": []string{"Application"}, "description": r.Value, "displayName": r.Value,
			"id": r.ID, "isEnabled": true, "origin": "Application", "value": r.Value,
		})
	}
	return map[string]any{
		"id":                    sp.ID,
		"appId":                 sp.AppID,
		"displayName":           sp.DisplayName,
		"appDisplayName":        sp.DisplayName,
		"servicePrincipalNames": nonNil(sp.ServicePrincipalNames),
		"keyCredentials":        graphKeysJSON(sp.KeyCredentials, withKey),
		"appRoles":              roles,
		"accountEnabled":        true,
		"servicePrincipalType":  "Application",
		"passwordCredentials":   []any{},
		"tags":                  nonNil(sp.Tags),
	}
}

func graphAppJSON(a *Application, withKey bool) map[string]any {
	rra := make([]any, 0, len(a.RequiredResourceAccess))
	for _, r := range a.RequiredResourceAccess {
		acc := make([]any, 0, len(r.ResourceAccess))
		for _, x := range r.ResourceAccess {
			acc = append(acc, map[string]any{"id": x.ID, "type": x.Type})
		}
		rra = append(rra, map[string]any{"resourceAppId": r.ResourceAppID, "resourceAccess": acc})
	}
	var unique any
	if a.UniqueName != "" {
		unique = a.UniqueName
	}
	return map[string]any{
		"id":                     a.ID,
		"appId":                  a.AppID,
		"uniqueName":             unique,
		"displayName":            a.DisplayName,
		"signInAudience":         a.SignInAudience,
		"requiredResourceAccess": rra,
		"keyCredentials":         graphKeysJSON(a.KeyCredentials, withKey),
		"passwordCredentials":    []any{},
		"identifierUris":         []any{},
		"tags":                   nonNil(a.Tags),
	}
}

func (c *graphCall) assignmentJSON(a *AppRoleAssignment) map[string]any {
	out := map[string]any{
		"id": a.ID, "appRoleId": a.AppRoleID, "principalId": a.PrincipalID, "principalType": "ServicePrincipal",
		"resourceId": a.ResourceID, "principalDisplayName": nil, "resourceDisplayName": nil,
	}
	if p := c.findSP(a.PrincipalID); p != nil {
		out["principalDisplayName"] = p.DisplayName
	}
	if r := c.findSP(a.ResourceID); r != nil {
		out["resourceDisplayName"] = r.DisplayName
	}
	return out
}

func graphDomainJSON(d Domain) map[string]any {
	services := []string{}
	if d.IsVerified {
		services = []string{"Email", "OfficeCommunicationsOnline"}
	}
	return map[string]any{
		"id": d.ID, "isDefault": d.IsDefault, "isInitial": d.IsInitial, "isVerified": d.IsVerified,
		"isAdminManaged": true, "authenticationType": "Managed", "supportedServices": services,
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// --- decoding what clients send ----------------------------------------------

// graphCheckKeys refuses properties an operation does not take. OData
// annotations (@odata.type, which msgraph-sdk-go sends) are ignored.
func graphCheckKeys(body map[string]json.RawMessage, resource string, writable, readOnly []string) *graphError {
	for k := range body {
		switch {
		case strings.HasPrefix(k, "@odata."):
		case slices.Contains(writable, k):
		case slices.Contains(readOnly, k):
			return graphBadRequest("Property '%s' is read-only and cannot be set.", k)
		default:
			return graphBadRequest("Invalid property '%s' for resource '%s'.", k, resource)
		}
	}
	return nil
}

// graphString reads an optional string property; null counts as absent.
func graphString(body map[string]json.RawMessage, prop, resource string) (string, bool, *graphError) {
	raw, ok := body[prop]
	if !ok || string(raw) == "null" {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, graphInvalidProperty(prop, resource)
	}
	return s, true, nil
}

func graphTime(body map[string]json.RawMessage, prop, resource string) (time.Time, bool, *graphError) {
	s, ok, err := graphString(body, prop, resource)
	if err != nil || !ok {
		return time.Time{}, false, err
	}
	t, perr := time.Parse(time.RFC3339Nano, s)
	if perr != nil {
		return time.Time{}, false, graphInvalidProperty(prop, resource)
	}
	return t.UTC(), true, nil
}

// graphIsGUID reports whether s is a GUID in its usual 8-4-4-4-12 form.
func graphIsGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
				return false
			}
		}
	}
	return true
}

// decodeKeyCredentials validates a keyCredentials collection as Graph does
// for certificates: only keyCredential's own properties; every entry
// carries its key (base64 DER that parses as X.509) because Graph cannot
// keep a key it is not sent; type AsymmetricX509Cert and usage Verify;
// customKeyIdentifier, an Edm.Binary, must be base64 text (the hex
// thumbprint is); displayName at most 90 characters. The identifier is
// kept as the base64 of the bytes it decodes to, which for what clients
// send is the very string they sent. Missing keyId, customKeyIdentifier
// (the hex thumbprint), displayName (the subject) and validity (the
// certificate's) are filled in.
func (c *graphCall) decodeKeyCredentials(raw json.RawMessage) ([]KeyCredential, *graphError) {
	const res = "KeyCredential"
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || items == nil {
		return nil, graphInvalidProperty("keyCredentials", c.entity)
	}
	out := make([]KeyCredential, 0, len(items))
	ids := map[string]bool{}
	for _, it := range items {
		if it == nil {
			return nil, graphInvalidProperty("keyCredentials", c.entity)
		}
		if e := graphCheckKeys(it, res, []string{"customKeyIdentifier", "displayName", "endDateTime", "key", "keyId", "startDateTime", "type", "usage"}, nil); e != nil {
			return nil, e
		}
		keyB64, ok, e := graphString(it, "key", res)
		if e != nil || !ok || keyB64 == "" {
			return nil, graphInvalidProperty("key", res)
		}
		der, err := base64.StdEncoding.DecodeString(keyB64)
		if err != nil {
			return nil, graphInvalidProperty("key", res)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, graphInvalidProperty("key", res)
		}
		k := KeyCredential{Key: der, Type: graphKeyTypeX509, Usage: graphKeyUsageVerify}
		if v, ok, e := graphString(it, "type", res); e != nil || (ok && v != graphKeyTypeX509) {
			return nil, graphInvalidProperty("type", res)
		}
		if v, ok, e := graphString(it, "usage", res); e != nil || (ok && v != graphKeyUsageVerify) {
			return nil, graphInvalidProperty("usage", res)
		}
		if v, ok, e := graphString(it, "keyId", res); e != nil || (ok && !graphIsGUID(v)) {
			return nil, graphInvalidProperty("keyId", res)
		} else if ok {
			k.KeyID = strings.ToLower(v)
		} else {
			k.KeyID = c.newID()
		}
		if ids[k.KeyID] {
			return nil, graphBadRequest("Key credential keyId '%s' appears more than once.", k.KeyID)
		}
		ids[k.KeyID] = true
		if v, ok, e := graphString(it, "customKeyIdentifier", res); e != nil {
			return nil, e
		} else if ok {
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil || len(b) == 0 {
				return nil, graphInvalidProperty("customKeyIdentifier", res)
			}
			k.CustomKeyIdentifier = base64.StdEncoding.EncodeToString(b)
		} else {
			k.CustomKeyIdentifier = certs.Thumbprint(der)
		}
		if v, ok, e := graphString(it, "displayName", res); e != nil {
			return nil, e
		} else if ok {
			k.DisplayName = v
		} else {
			k.DisplayName = cert.Subject.String()
		}
		if len([]rune(k.DisplayName)) > graphMaxKeyName {
			return nil, graphInvalidProperty("displayName", res)
		}
		var e2 *graphError
		if k.StartDateTime, ok, e2 = graphTime(it, "startDateTime", res); e2 != nil {
			return nil, e2
		} else if !ok {
			k.StartDateTime = cert.NotBefore.UTC()
		}
		if k.EndDateTime, ok, e2 = graphTime(it, "endDateTime", res); e2 != nil {
			return nil, e2
		} else if !ok {
			k.EndDateTime = cert.NotAfter.UTC()
		}
		if !k.EndDateTime.After(k.StartDateTime) {
			return nil, graphInvalidProperty("endDateTime", res)
		}
		out = append(out, k)
	}
	return out, nil
}

// graphWireBinary reports whether s is an Edm.Binary value as Graph
// serves it: non-empty base64 text that encoding its bytes gives back.
func graphWireBinary(s string) bool {
	b, err := base64.StdEncoding.DecodeString(s)
	return err == nil && len(b) > 0 && base64.StdEncoding.EncodeToString(b) == s
}

// decodeTags sets *into from the body's tags, when it has them.
func (c *graphCall) decodeTags(body map[string]json.RawMessage, into *[]string) *graphError {
	raw, ok := body["tags"]
	if !ok {
		return nil
	}
	tags, e := c.decodeStrings(raw, "tags")
	if e != nil {
		return e
	}
	*into = tags
	return nil
}

// decodeStrings reads a collection of non-empty, distinct strings.
func (c *graphCall) decodeStrings(raw json.RawMessage, prop string) ([]string, *graphError) {
	var vs []string
	if err := json.Unmarshal(raw, &vs); err != nil || vs == nil {
		return nil, graphInvalidProperty(prop, c.entity)
	}
	seen := map[string]bool{}
	for _, v := range vs {
		l := strings.ToLower(strings.TrimSpace(v))
		if l == "" || seen[l] {
			return nil, graphInvalidProperty(prop, c.entity)
		}
		seen[l] = true
	}
	return vs, nil
}

func (c *graphCall) decodeRequiredResourceAccess(raw json.RawMessage) ([]RequiredResourceAccess, *graphError) {
	type access struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	type rra struct {
		ResourceAppID  string   `json:"resourceAppId"`
		ResourceAccess []access `json:"resourceAccess"`
	}
	var in []rra
	if err := json.Unmarshal(raw, &in); err != nil || in == nil {
		return nil, graphInvalidProperty("requiredResourceAccess", c.entity)
	}
	out := make([]RequiredResourceAccess, 0, len(in))
	for _, r := range in {
		if !graphIsGUID(r.ResourceAppID) {
			return nil, graphInvalidProperty("resourceAppId", "RequiredResourceAccess")
		}
		x := RequiredResourceAccess{ResourceAppID: strings.ToLower(r.ResourceAppID)}
		for _, a := range r.ResourceAccess {
			if !graphIsGUID(a.ID) || (a.Type != "Role" && a.Type != "Scope") {
				return nil, graphInvalidProperty("resourceAccess", "RequiredResourceAccess")
			}
			x.ResourceAccess = append(x.ResourceAccess, ResourceAccess{ID: strings.ToLower(a.ID), Type: a.Type})
		}
		out = append(out, x)
	}
	return out, nil
}

// --- lookups -------------------------------------------------------------------

func (c *graphCall) findSP(id string) *ServicePrincipal {
	for _, sp := range c.t.Entra.ServicePrincipals {
		if strings.EqualFold(sp.ID, id) {
			return sp
		}
	}
	return nil
}

func (c *graphCall) findSPByAppID(appID string) *ServicePrincipal {
	for _, sp := range c.t.Entra.ServicePrincipals {
		if strings.EqualFold(sp.AppID, appID) {
			return sp
		}
	}
	return nil
}

func (c *graphCall) findApp(id string) *Application {
	for _, a := range c.t.Entra.Applications {
		if strings.EqualFold(a.ID, id) {
			return a
		}
	}
	return nil
}

// spnConflict finds an SPN another service principal of the tenant already
// has: Entra keeps them unique per tenant.
func (c *graphCall) spnConflict(self *ServicePrincipal, spns []string) *graphError {
	for _, sp := range c.t.Entra.ServicePrincipals {
		if sp == self {
			continue
		}
		for _, have := range sp.ServicePrincipalNames {
			for _, want := range spns {
				if strings.EqualFold(have, want) {
					return graphErrf(http.StatusConflict, GraphCodeConflict,
						"The service principal cannot be created, updated, or restored because the service principal name %s is already in use.", want)
				}
			}
		}
	}
	return nil
}

// --- service principals ----------------------------------------------------------

func (c *graphCall) listServicePrincipals() (graphReply, *graphError) {
	c.entity = "servicePrincipal"
	q, e := c.parseQuery(c.entity, graphSPFilterable, graphSPSelectable, graphSPExpandable, true)
	if e != nil {
		return graphReply{}, e
	}
	var items []map[string]any
	for _, sp := range c.t.Entra.ServicePrincipals {
		if q.matches(map[string]string{"id": sp.ID, "appId": sp.AppID, "displayName": sp.DisplayName}) {
			// A list never carries the keys' certificates, $select or not.
			items = append(items, c.expandSP(q, sp, graphSPJSON(sp, false)))
		}
	}
	return c.page("servicePrincipals", q, items), nil
}

// expandSP adds the $expanded appRoleAssignments to a service principal's
// JSON. Like Graph for directory objects, it inlines at most
// graphMaxExpanded of them and gives no link to the rest: a caller that
// sees that many must list them to be sure.
func (c *graphCall) expandSP(q graphQuery, sp *ServicePrincipal, obj map[string]any) map[string]any {
	if !q.expands("appRoleAssignments") {
		return obj
	}
	as := make([]any, 0)
	for _, a := range c.t.Entra.AppRoleAssignments {
		if strings.EqualFold(a.PrincipalID, sp.ID) && len(as) < graphMaxExpanded {
			as = append(as, c.assignmentJSON(a))
		}
	}
	obj["appRoleAssignments"] = as
	return obj
}

func (c *graphCall) getServicePrincipal(id string) (graphReply, *graphError) {
	c.entity = "servicePrincipal"
	q, e := c.parseQuery(c.entity, nil, graphSPSelectable, graphSPExpandable, false)
	if e != nil {
		return graphReply{}, e
	}
	sp := c.findSP(id)
	if sp == nil {
		return graphReply{}, graphNotFound(id)
	}
	return c.item("servicePrincipals", q, c.expandSP(q, sp, graphSPJSON(sp, q.keysWanted() && !c.byKey))), nil
}

// wellKnownSP describes the first-party service principals Graph can
// instantiate in any tenant by appId.
func (c *graphCall) wellKnownSP(appID string) *ServicePrincipal {
	p, err := cloud.Lookup(c.t.Cloud)
	if err != nil {
		return nil
	}
	switch strings.ToLower(appID) {
	case cloud.FirstPartyAppID:
		return &ServicePrincipal{AppID: cloud.FirstPartyAppID, DisplayName: genFirstPartyDisplayName,
			ServicePrincipalNames: []string{cloud.FirstPartyAppID, cloud.FirstPartyAppID + "/" + p.ExchangeOnlineHost, "https://" + p.ExchangeOnlineHost + "/"},
			AppRoles:              []AppRole{{ID: genRoleFullAccessAsApp, Value: "full_access_as_app"}, {ID: genRoleManageAsApp, Value: "Exchange.ManageAsApp"}}}
	case genGraphAppID:
		return &ServicePrincipal{AppID: genGraphAppID, DisplayName: genGraphDisplayName,
			ServicePrincipalNames: []string{genGraphAppID, "https://" + p.GraphHost + "/"},
			AppRoles:              []AppRole{{ID: genRoleAppReadWriteAll, Value: "Application.ReadWrite.All"}, {ID: genRoleDomainReadAll, Value: "Domain.Read.All"}}}
	}
	return nil
}

func (c *graphCall) createServicePrincipal(body map[string]json.RawMessage) (graphReply, *graphError) {
	c.entity = "servicePrincipal"
	if e := graphCheckKeys(body, c.entity, []string{"appId", "accountEnabled", "tags"}, []string{"id"}); e != nil {
		return graphReply{}, e
	}
	appID, ok, e := graphString(body, "appId", c.entity)
	if e != nil || !ok || !graphIsGUID(appID) {
		return graphReply{}, graphInvalidProperty("appId", c.entity)
	}
	appID = strings.ToLower(appID)
	if c.findSPByAppID(appID) != nil {
		return graphReply{}, graphErrf(http.StatusConflict, GraphCodeConflict,
			"The service principal cannot be created, updated, or restored because the service principal name %s is already in use.", appID)
	}
	sp := c.wellKnownSP(appID)
	if sp == nil {
		for _, a := range c.t.Entra.Applications {
			if strings.EqualFold(a.AppID, appID) {
				sp = &ServicePrincipal{AppID: appID, DisplayName: a.DisplayName, ServicePrincipalNames: []string{appID}}
				break
			}
		}
	}
	if sp == nil {
		return graphReply{}, graphBadRequest("The appId '%s' of the service principal does not reference a valid application object.", appID)
	}
	if e := c.spnConflict(nil, sp.ServicePrincipalNames); e != nil {
		return graphReply{}, e
	}
	if e := c.decodeTags(body, &sp.Tags); e != nil {
		return graphReply{}, e
	}
	sp.ID = c.newID()
	sp.CreatedBy = graphCreatedByClient
	c.t.Entra.ServicePrincipals = append(c.t.Entra.ServicePrincipals, sp)
	c.wrote = true
	obj := graphSPJSON(sp, false)
	obj["@odata.context"] = c.base + "/$metadata#servicePrincipals/$entity"
	return graphReply{status: http.StatusCreated, body: obj}, nil
}

// patchServicePrincipal replaces each collection the body carries
// (keyCredentials, servicePrincipalNames) as a whole: Graph replaces a
// collection property with what a PATCH sends.
func (c *graphCall) patchServicePrincipal(id string, body map[string]json.RawMessage) (graphReply, *graphError) {
	c.entity = "servicePrincipal"
	sp := c.findSP(id)
	if sp == nil {
		return graphReply{}, graphNotFound(id)
	}
	if e := graphCheckKeys(body, c.entity, []string{"keyCredentials", "servicePrincipalNames", "displayName"}, graphSPSelectable); e != nil {
		return graphReply{}, e
	}
	var keys []KeyCredential
	var spns []string
	var e *graphError
	if raw, ok := body["keyCredentials"]; ok {
		if keys, e = c.decodeKeyCredentials(raw); e != nil {
			return graphReply{}, e
		}
	}
	if raw, ok := body["servicePrincipalNames"]; ok {
		if spns, e = c.decodeStrings(raw, "servicePrincipalNames"); e != nil {
			return graphReply{}, e
		}
		if e = c.spnConflict(sp, spns); e != nil {
			return graphReply{}, e
		}
	}
	name, hasName, e := graphString(body, "displayName", c.entity)
	if e != nil {
		return graphReply{}, e
	}
	// Validated as a whole before anything changes: a PATCH is atomic.
	if keys != nil {
		sp.KeyCredentials = keys
	}
	if spns != nil {
		sp.ServicePrincipalNames = spns
	}
	if hasName {
		sp.DisplayName = name
	}
	c.wrote = true
	return graphReply{status: http.StatusNoContent}, nil
}

func (c *graphCall) deleteServicePrincipal(id string) (graphReply, *graphError) {
	sp := c.findSP(id)
	if sp == nil {
		return graphReply{}, graphNotFound(id)
	}
	c.removeSP(sp)
	c.wrote = true
	return graphReply{status: http.StatusNoContent}, nil
}

// removeSP deletes a service principal and the app role assignments it
// gave or received, as Entra does.
func (c *graphCall) removeSP(sp *ServicePrincipal) {
	e := &c.t.Entra
	e.ServicePrincipals = slices.DeleteFunc(e.ServicePrincipals, func(x *ServicePrincipal) bool { return x == sp })
	e.AppRoleAssignments = slices.DeleteFunc(e.AppRoleAssignments, func(a *AppRoleAssignment) bool {
		return strings.EqualFold(a.PrincipalID, sp.ID) || strings.EqualFold(a.ResourceID, sp.ID)
	})
}

// --- app role assignments ------------------------------------------------------------

func (c *graphCall) listAppRoleAssignments(spID string) (graphReply, *graphError) {
	c.entity = "appRoleAssignment"
	q, e := c.parseQuery(c.entity, nil, graphAssignmentSelectable, nil, true)
	if e != nil {
		return graphReply{}, e
	}
	sp := c.findSP(spID)
	if sp == nil {
		return graphReply{}, graphNotFound(spID)
	}
	var items []map[string]any
	for _, a := range c.t.Entra.AppRoleAssignments {
		if strings.EqualFold(a.PrincipalID, sp.ID) {
			items = append(items, c.assignmentJSON(a))
		}
	}
	return c.page("servicePrincipals('"+sp.ID+"')/appRoleAssignments", q, items), nil
}

func (c *graphCall) createAppRoleAssignment(spID string, body map[string]json.RawMessage) (graphReply, *graphError) {
	c.entity = "appRoleAssignment"
	sp := c.findSP(spID)
	if sp == nil {
		return graphReply{}, graphNotFound(spID)
	}
	if e := graphCheckKeys(body, c.entity, []string{"principalId", "resourceId", "appRoleId"}, graphAssignmentSelectable); e != nil {
		return graphReply{}, e
	}
	var ids [3]string
	for i, prop := range []string{"principalId", "resourceId", "appRoleId"} {
		v, ok, e := graphString(body, prop, c.entity)
		if e != nil || !ok || !graphIsGUID(v) {
			return graphReply{}, graphInvalidProperty(prop, c.entity)
		}
		ids[i] = strings.ToLower(v)
	}
	principal, resourceID, roleID := ids[0], ids[1], ids[2]
	if !strings.EqualFold(principal, sp.ID) {
		return graphReply{}, graphBadRequest("The principalId '%s' does not match the service principal '%s' of the request URL.", principal, sp.ID)
	}
	res := c.findSP(resourceID)
	if res == nil {
		return graphReply{}, graphNotFound(resourceID)
	}
	if !slices.ContainsFunc(res.AppRoles, func(r AppRole) bool { return strings.EqualFold(r.ID, roleID) }) {
		return graphReply{}, graphBadRequest("Permission being assigned was not found on application '%s'.", res.AppID)
	}
	for _, a := range c.t.Entra.AppRoleAssignments {
		if strings.EqualFold(a.PrincipalID, principal) && strings.EqualFold(a.ResourceID, resourceID) && strings.EqualFold(a.AppRoleID, roleID) {
			return graphReply{}, graphBadRequest("%s", GraphMsgDuplicateAssignment)
		}
	}
	a := &AppRoleAssignment{ID: c.newID(), PrincipalID: sp.ID, ResourceID: res.ID, AppRoleID: roleID}
	c.t.Entra.AppRoleAssignments = append(c.t.Entra.AppRoleAssignments, a)
	c.wrote = true
	obj := c.assignmentJSON(a)
	obj["@odata.context"] = c.base + "/$metadata#servicePrincipals('" + sp.ID + "')/appRoleAssignments/$entity"
	return graphReply{status: http.StatusCreated, body: obj}, nil
}

func (c *graphCall) deleteAppRoleAssignment(spID, id string) (graphReply, *graphError) {
	e := &c.t.Entra
	i := slices.IndexFunc(e.AppRoleAssignments, func(a *AppRoleAssignment) bool {
		return strings.EqualFold(a.ID, id) && strings.EqualFold(a.PrincipalID, spID)
	})
	if i < 0 {
		return graphReply{}, graphNotFound(id)
	}
	e.AppRoleAssignments = slices.Delete(e.AppRoleAssignments, i, i+1)
	c.wrote = true
	return graphReply{status: http.StatusNoContent}, nil
}

// --- applications --------------------------------------------------------------------

func (c *graphCall) listApplications() (graphReply, *graphError) {
	c.entity = "application"
	q, e := c.parseQuery(c.entity, graphAppFilterable, graphAppSelectable, nil, true)
	if e != nil {
		return graphReply{}, e
	}
	var items []map[string]any
	for _, a := range c.t.Entra.Applications {
		if q.matches(map[string]string{"id": a.ID, "appId": a.AppID, "displayName": a.DisplayName}) {
			// A list never carries the keys' certificates, $select or not.
			items = append(items, graphAppJSON(a, false))
		}
	}
	return c.page("applications", q, items), nil
}

func (c *graphCall) getApplication(id string) (graphReply, *graphError) {
	c.entity = "application"
	q, e := c.parseQuery(c.entity, nil, graphAppSelectable, nil, false)
	if e != nil {
		return graphReply{}, e
	}
	a := c.findApp(id)
	if a == nil {
		return graphReply{}, graphNotFound(id)
	}
	return c.item("applications", q, graphAppJSON(a, q.keysWanted() && !c.byKey)), nil
}

// applyApplication validates and applies the writable properties of an
// application body; nothing changes unless all of them are valid.
func (c *graphCall) applyApplication(a *Application, body map[string]json.RawMessage) *graphError {
	next := *a
	if v, ok, e := graphString(body, "displayName", c.entity); e != nil {
		return e
	} else if ok {
		if strings.TrimSpace(v) == "" || len([]rune(v)) > 256 {
			return graphInvalidProperty("displayName", c.entity)
		}
		next.DisplayName = v
	}
	if v, ok, e := graphString(body, "signInAudience", c.entity); e != nil {
		return e
	} else if ok {
		if !slices.Contains(graphSignInAudiences, v) {
			return graphInvalidProperty("signInAudience", c.entity)
		}
		next.SignInAudience = v
	}
	if raw, ok := body["requiredResourceAccess"]; ok {
		rra, e := c.decodeRequiredResourceAccess(raw)
		if e != nil {
			return e
		}
		next.RequiredResourceAccess = rra
	}
	if raw, ok := body["keyCredentials"]; ok {
		keys, e := c.decodeKeyCredentials(raw)
		if e != nil {
			return e
		}
		next.KeyCredentials = keys
	}
	if e := c.decodeTags(body, &next.Tags); e != nil {
		return e
	}
	*a = next
	return nil
}

func (c *graphCall) createApplication(body map[string]json.RawMessage) (graphReply, *graphError) {
	return c.newApplication(body, "")
}

// newApplication creates an application from a POST body or, with its
// uniqueName, from an upsert's.
func (c *graphCall) newApplication(body map[string]json.RawMessage, uniqueName string) (graphReply, *graphError) {
	c.entity = "application"
	if e := graphCheckKeys(body, c.entity, graphAppWritable, []string{"id", "appId", "uniqueName"}); e != nil {
		return graphReply{}, e
	}
	if _, ok, _ := graphString(body, "displayName", c.entity); !ok {
		return graphReply{}, graphInvalidProperty("displayName", c.entity)
	}
	a := &Application{SignInAudience: "AzureADMyOrg", UniqueName: uniqueName}
	if e := c.applyApplication(a, body); e != nil {
		return graphReply{}, e
	}
	a.ID, a.AppID, a.CreatedBy = c.newID(), c.newID(), graphCreatedByClient
	c.t.Entra.Applications = append(c.t.Entra.Applications, a)
	c.wrote = true
	obj := graphAppJSON(a, false)
	obj["@odata.context"] = c.base + "/$metadata#applications/$entity"
	return graphReply{status: http.StatusCreated, body: obj}, nil
}

func (c *graphCall) patchApplication(id string, body map[string]json.RawMessage) (graphReply, *graphError) {
	c.entity = "application"
	a := c.findApp(id)
	if a == nil {
		return graphReply{}, graphNotFound(id)
	}
	if e := graphCheckKeys(body, c.entity, graphAppWritable, graphAppSelectable); e != nil {
		return graphReply{}, e
	}
	if e := c.applyApplication(a, body); e != nil {
		return graphReply{}, e
	}
	c.wrote = true
	return graphReply{status: http.StatusNoContent}, nil
}

// deleteApplication removes the application and, as Entra does, its
// service principal in the tenant.
func (c *graphCall) deleteApplication(id string) (graphReply, *graphError) {
	a := c.findApp(id)
	if a == nil {
		return graphReply{}, graphNotFound(id)
	}
	c.t.Entra.Applications = slices.DeleteFunc(c.t.Entra.Applications, func(x *Application) bool { return x == a })
	if sp := c.findSPByAppID(a.AppID); sp != nil {
		c.removeSP(sp)
	}
	c.wrote = true
	return graphReply{status: http.StatusNoContent}, nil
}

// --- domains and organization ---------------------------------------------------------

func (c *graphCall) listDomains() (graphReply, *graphError) {
	c.entity = "domain"
	q, e := c.parseQuery(c.entity, nil, graphDomainSelectable, nil, true)
	if e != nil {
		return graphReply{}, e
	}
	items := make([]map[string]any, 0, len(c.t.Entra.Domains))
	for _, d := range c.t.Entra.Domains {
		items = append(items, graphDomainJSON(d))
	}
	return c.page("domains", q, items), nil
}

func (c *graphCall) getDomain(name string) (graphReply, *graphError) {
	c.entity = "domain"
	q, e := c.parseQuery(c.entity, nil, graphDomainSelectable, nil, false)
	if e != nil {
		return graphReply{}, e
	}
	for _, d := range c.t.Entra.Domains {
		if strings.EqualFold(d.ID, name) {
			return c.item("domains", q, graphDomainJSON(d)), nil
		}
	}
	return graphReply{}, graphNotFound(name)
}

func (c *graphCall) listOrganization() (graphReply, *graphError) {
	c.entity = "organization"
	q, e := c.parseQuery(c.entity, nil, graphOrganizationSelectable, nil, true)
	if e != nil {
		return graphReply{}, e
	}
	verified := []any{}
	for _, d := range c.t.Entra.Domains {
		if d.IsVerified {
			verified = append(verified, map[string]any{
				"name": d.ID, "isDefault": d.IsDefault, "isInitial": d.IsInitial,
				"type": "Managed", "capabilities": "Email, OfficeCommunicationsOnline",
			})
		}
	}
	country := "US"
	if c.t.Cloud == string(cloud.China) {
		country = "CN"
	}
	org := map[string]any{
		"id": c.t.ID, "displayName": c.t.DisplayName, "verifiedDomains": verified,
		"tenantType": "AAD", "countryLetterCode": country,
	}
	return c.page("organization", q, []map[string]any{org}), nil
}
