package sim

// OData query options of the simulated Graph: $filter (eq and startswith
// joined by "and", on the properties the real service can filter by),
// $select, $expand (of the navigation properties an entity allows), $top
// and server-driven paging with $skiptoken. Anything else
// is refused with Request_UnsupportedQuery rather than silently ignored,
// so a client relying on an option the simulator does not model notices.

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

const (
	graphDefaultPageSize = 100
	graphMaxPageSize     = 999
	// graphMaxExpanded is how many related directory objects Graph inlines
	// for one $expand (a documented limit, with no nextLink for the rest).
	graphMaxExpanded = 20
)

// graphClause is one filter condition: prop eq 'value' or
// startswith(prop,'value').
type graphClause struct {
	fn, prop, value string
}

// graphParseFilter parses the $filter subset the simulator supports.
func graphParseFilter(s string) ([]graphClause, *graphError) {
	toks, err := graphTokenize(s)
	if err != nil {
		return nil, err
	}
	bad := func() *graphError {
		return graphErrf(http.StatusBadRequest, GraphCodeUnsupportedQuery, "Invalid filter clause: '%s'.", s)
	}
	var out []graphClause
	i := 0
	for {
		switch {
		case i+2 < len(toks) && toks[i+1].text == "eq" && !toks[i].quoted && toks[i+2].quoted:
			out = append(out, graphClause{fn: "eq", prop: toks[i].text, value: toks[i+2].text})
			i += 3
		case i+5 < len(toks) && strings.EqualFold(toks[i].text, "startswith") && toks[i+1].text == "(" &&
			!toks[i+2].quoted && toks[i+3].text == "," && toks[i+4].quoted && toks[i+5].text == ")":
			out = append(out, graphClause{fn: "startswith", prop: toks[i+2].text, value: toks[i+4].text})
			i += 6
		default:
			return nil, bad()
		}
		if i == len(toks) {
			return out, nil
		}
		if !strings.EqualFold(toks[i].text, "and") || i+1 == len(toks) {
			return nil, bad()
		}
		i++
	}
}

type graphToken struct {
	text   string
	quoted bool
}

func graphTokenize(s string) ([]graphToken, *graphError) {
	var toks []graphToken
	rs := []rune(s)
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			i++
		case r == '(' || r == ')' || r == ',':
			toks = append(toks, graphToken{text: string(r)})
			i++
		case r == '\'':
			var b strings.Builder
			i++
			closed := false
			for i < len(rs) {
				if rs[i] == '\'' {
					if i+1 < len(rs) && rs[i+1] == '\'' { // '' is an escaped quote
						b.WriteRune('\'')
						i += 2
						continue
					}
					i++
					closed = true
					break
				}
				b.WriteRune(rs[i])
				i++
			}
			if !closed {
				return nil, graphErrf(http.StatusBadRequest, GraphCodeUnsupportedQuery, "Invalid filter clause: unterminated string literal in '%s'.", s)
			}
			toks = append(toks, graphToken{text: b.String(), quoted: true})
		default:
			j := i
			for j < len(rs) && !unicode.IsSpace(rs[j]) && !strings.ContainsRune("(),'", rs[j]) {
				j++
			}
			toks = append(toks, graphToken{text: string(rs[i:j])})
			i = j
		}
	}
	return toks, nil
}

// graphQuery is a list or item request's parsed query options.
type graphQuery struct {
	filter   []graphClause
	selected []string // nil: the default property set
	expanded []string // $expand'ed navigation properties
	top      int
	skip     int
}

// keysWanted reports whether a single-object read is the one Graph answers
// with the keys' certificate bytes: $select=keyCredentials. Microsoft
// documents exactly that form (GET applications/{id}?$select=keyCredentials,
// GET servicePrincipals/{id}?$select=keyCredentials) and says key is null
// in every other read, so the simulator serves key for that form only and
// a client that counts on any other read getting key fails here first.
// Callers use it for single objects only: lists never carry key.
func (q graphQuery) keysWanted() bool {
	return len(q.selected) == 1 && strings.EqualFold(q.selected[0], "keyCredentials")
}

// expands reports whether the navigation property prop was $expanded.
func (q graphQuery) expands(prop string) bool {
	return slices.ContainsFunc(q.expanded, func(s string) bool { return strings.EqualFold(s, prop) })
}

// parseQuery validates the request's query options against an entity's
// filterable, selectable and expandable properties.
func (c *graphCall) parseQuery(entity string, filterable, selectable, expandable []string, list bool) (graphQuery, *graphError) {
	q := graphQuery{top: graphDefaultPageSize}
	for k := range c.query {
		switch k {
		case "$filter", "$top", "$skiptoken":
			if !list {
				return q, graphErrf(http.StatusBadRequest, GraphCodeUnsupportedQuery, "Query option '%s' is not allowed on a single %s.", k, entity)
			}
		case "$select":
		case "$expand":
			if len(expandable) == 0 {
				return q, graphErrf(http.StatusBadRequest, GraphCodeUnsupportedQuery, "Query option '%s' is not supported by the simulator for %s.", k, entity)
			}
		default:
			if strings.HasPrefix(k, "$") {
				return q, graphErrf(http.StatusBadRequest, GraphCodeUnsupportedQuery, "Query option '%s' is not supported by the simulator.", k)
			}
		}
	}
	if f := c.query.Get("$filter"); f != "" {
		clauses, err := graphParseFilter(f)
		if err != nil {
			return q, err
		}
		for _, cl := range clauses {
			if !slices.Contains(filterable, cl.prop) {
				return q, graphErrf(http.StatusBadRequest, GraphCodeUnsupportedQuery,
					"Unsupported or invalid query filter clause specified for property '%s' of resource '%s'.", cl.prop, entity)
			}
		}
		q.filter = clauses
	}
	if s := c.query.Get("$select"); s != "" {
		for _, p := range strings.Split(s, ",") {
			p = strings.TrimSpace(p)
			if !slices.Contains(selectable, p) {
				return q, graphBadRequest("Could not find a property named '%s' on type 'microsoft.graph.%s'.", p, entity)
			}
			q.selected = append(q.selected, p)
		}
	}
	if x := c.query.Get("$expand"); x != "" {
		for _, p := range strings.Split(x, ",") {
			p = strings.TrimSpace(p)
			if !slices.Contains(expandable, p) {
				return q, graphBadRequest("Could not find a navigation property named '%s' on type 'microsoft.graph.%s'.", p, entity)
			}
			q.expanded = append(q.expanded, p)
		}
	}
	if t := c.query.Get("$top"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 || n > graphMaxPageSize {
			return q, graphBadRequest("Invalid page size specified: '%s'. Must be between 1 and %d inclusive.", t, graphMaxPageSize)
		}
		q.top = n
	}
	if s := c.query.Get("$skiptoken"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return q, graphBadRequest("Invalid $skiptoken '%s'.", s)
		}
		q.skip = n
	}
	return q, nil
}

// matches applies the filter to an object's string properties.
func (q graphQuery) matches(props map[string]string) bool {
	for _, cl := range q.filter {
		v := props[cl.prop]
		switch cl.fn {
		case "eq":
			if !strings.EqualFold(v, cl.value) {
				return false
			}
		case "startswith":
			if !strings.HasPrefix(strings.ToLower(v), strings.ToLower(cl.value)) {
				return false
			}
		}
	}
	return true
}

// project keeps the selected properties of an entity (all when nothing
// was selected) and the expanded navigation properties.
func (q graphQuery) project(obj map[string]any) map[string]any {
	if q.selected == nil {
		return obj
	}
	out := make(map[string]any, len(q.selected)+len(q.expanded))
	for _, p := range append(slices.Clone(q.selected), q.expanded...) {
		if v, ok := obj[p]; ok {
			out[p] = v
		}
	}
	return out
}

// page answers one page of a collection with an @odata.nextLink when more
// remain; the link repeats the request's options with a $skiptoken.
func (c *graphCall) page(set string, q graphQuery, items []map[string]any) graphReply {
	end := min(q.skip+q.top, len(items))
	start := min(q.skip, len(items))
	vals := make([]any, 0, end-start)
	for _, it := range items[start:end] {
		vals = append(vals, q.project(it))
	}
	body := map[string]any{"@odata.context": c.base + "/$metadata#" + set, "value": vals}
	if end < len(items) {
		nq := url.Values{}
		for k, v := range c.query {
			nq[k] = v
		}
		nq.Set("$skiptoken", strconv.Itoa(end))
		body["@odata.nextLink"] = c.base + "/" + strings.Join(c.segs, "/") + "?" + nq.Encode()
	}
	return graphReply{status: http.StatusOK, body: body}
}

// item answers one entity.
func (c *graphCall) item(set string, q graphQuery, obj map[string]any) graphReply {
	out := q.project(obj)
	body := make(map[string]any, len(out)+1)
	for k, v := range out {
		body[k] = v
	}
	body["@odata.context"] = c.base + "/$metadata#" + set + "/$entity"
	return graphReply{status: http.StatusOK, body: body}
}
