package sim

// Alternate keys. Graph addresses an application by its uniqueName or
// appId, and a service principal by its appId, in the entity set's own
// segment (applications(uniqueName='…'), servicePrincipals(appId='…')),
// as well as by id; the metadata declares these keys. PATCH
// applications(uniqueName='…') with "Prefer: create-if-missing" is the
// upsert: it creates the application (201 and the whole object) when no
// application has that uniqueName, and otherwise updates it (204); without
// the preference it is a plain update. Its body must carry displayName.
// The uniqueName is set by the upsert that creates the application and is
// read-only afterwards.

import (
	"encoding/json"
	"net/http"
	"strings"
)

// graphPreferCreateIfMissing is the preference that turns a PATCH by
// uniqueName into an upsert.
const graphPreferCreateIfMissing = "create-if-missing"

// graphSplitKey reads "set(prop='value')": an OData string literal, in
// which a quote is written twice. A key without a property name
// (set('id')) is not one the simulator serves.
func graphSplitKey(seg string) (set, prop, value string, e *graphError) {
	open := strings.IndexByte(seg, '(')
	bad := graphBadRequest("Bad request: the key segment '%s' is not of the form set(property='value').", seg)
	if open <= 0 || !strings.HasSuffix(seg, ")") {
		return "", "", "", bad
	}
	set = seg[:open]
	prop, lit, ok := strings.Cut(seg[open+1:len(seg)-1], "=")
	prop, lit = strings.TrimSpace(prop), strings.TrimSpace(lit)
	if !ok || prop == "" || len(lit) < 2 || lit[0] != '\'' || lit[len(lit)-1] != '\'' {
		return "", "", "", bad
	}
	inner := lit[1 : len(lit)-1]
	if strings.Contains(strings.ReplaceAll(inner, "''", ""), "'") {
		return "", "", "", bad // a lone quote ends the literal early
	}
	value = strings.ReplaceAll(inner, "''", "'")
	if value == "" {
		return "", "", "", bad
	}
	return set, prop, value, nil
}

// graphPrefers reports whether a Prefer header asks for the preference.
func graphPrefers(header, pref string) bool {
	for _, p := range strings.Split(header, ",") {
		name, _, _ := strings.Cut(p, ";")
		if strings.EqualFold(strings.TrimSpace(name), pref) {
			return true
		}
	}
	return false
}

func (c *graphCall) findAppByKey(prop, value string) *Application {
	for _, a := range c.t.Entra.Applications {
		switch {
		case prop == "uniqueName" && a.UniqueName != "" && strings.EqualFold(a.UniqueName, value),
			prop == "appId" && strings.EqualFold(a.AppID, value):
			return a
		}
	}
	return nil
}

// dispatchByKey serves a request whose first segment names its object by
// an alternate key: the upsert, or any request by id once the key is
// resolved.
func (c *graphCall) dispatchByKey(body map[string]json.RawMessage) (graphReply, *graphError) {
	set, prop, value, e := graphSplitKey(c.segs[0])
	if e != nil {
		return graphReply{}, e
	}
	var id string
	switch {
	case set == "applications" && (prop == "uniqueName" || prop == "appId"):
		c.entity = "application"
		if a := c.findAppByKey(prop, value); a != nil {
			id = a.ID
		}
	case set == "servicePrincipals" && prop == "appId":
		c.entity = "servicePrincipal"
		if sp := c.findSPByAppID(value); sp != nil {
			id = sp.ID
		}
	default:
		return graphReply{}, graphBadRequest("'%s' is not an alternate key of '%s'.", prop, set)
	}
	if prop == "uniqueName" && len(c.segs) == 1 && c.method == http.MethodPatch && graphPrefers(c.prefer, graphPreferCreateIfMissing) {
		if _, ok, _ := graphString(body, "displayName", c.entity); !ok {
			return graphReply{}, graphInvalidProperty("displayName", c.entity)
		}
		if id == "" {
			return c.newApplication(body, value)
		}
	}
	if id == "" {
		return graphReply{}, graphNotFound(value)
	}
	c.byKey = true
	c.segs = append([]string{set, id}, c.segs[1:]...)
	return c.dispatch(body)
}
