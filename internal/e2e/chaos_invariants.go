package e2e

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hybridflow/hybridflow/internal/sim"
)

// Duplicate is one certificate present more than once in one principal's
// keyCredentials, or one object the product created more than once.
type Duplicate struct {
	Tenant string
	Object string // e.g. `service principal "Office 365 Exchange Online" (00000002-...)`
	What   string // a key thumbprint or an object name
	Count  int
}

func (d Duplicate) String() string {
	return fmt.Sprintf("%s: %s holds %s %d times", d.Tenant, d.Object, d.What, d.Count)
}

// DuplicateThumbprints lists every certificate thumbprint that appears
// more than once in one application's or service principal's
// keyCredentials: a retried key upload that did not first re-read the
// collection adds the same certificate twice (a PATCH replaces the whole
// collection). It also lists
// applications hybridflow created with the same display name, and service
// principals of the same appId: a create retried after a lost reply.
// Pass a snapshot (World.Clone). Sorted, for stable reports.
func DuplicateThumbprints(w *sim.World) []Duplicate {
	var out []Duplicate
	for _, t := range w.Tenants {
		keys := func(object string, ks []sim.KeyCredential) {
			n := map[string]int{}
			for _, k := range ks {
				n[KeyThumbprint(k)]++
			}
			for tp, c := range n {
				if c > 1 {
					out = append(out, Duplicate{Tenant: t.ID, Object: object, What: "key " + tp, Count: c})
				}
			}
		}
		created := map[string]int{}
		for _, a := range t.Entra.Applications {
			keys(fmt.Sprintf("application %q (%s)", a.DisplayName, a.AppID), a.KeyCredentials)
			if a.CreatedBy != "" {
				created[strings.ToLower(a.DisplayName)]++
			}
		}
		for name, c := range created {
			if c > 1 {
				out = append(out, Duplicate{Tenant: t.ID, Object: "the directory", What: fmt.Sprintf("created application %q", name), Count: c})
			}
		}
		perApp := map[string]int{}
		for _, sp := range t.Entra.ServicePrincipals {
			keys(fmt.Sprintf("service principal %q (%s)", sp.DisplayName, sp.AppID), sp.KeyCredentials)
			perApp[strings.ToLower(sp.AppID)]++
		}
		for app, c := range perApp {
			if c > 1 {
				out = append(out, Duplicate{Tenant: t.ID, Object: "the directory", What: "service principal of appId " + app, Count: c})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// NewDuplicates is DuplicateThumbprints(after) less what before already
// had: a world may be seeded with a certificate twice, and the product is
// not asked to clean that up, only never to make it worse.
func NewDuplicates(before, after *sim.World) []string {
	had := map[string]int{}
	for _, d := range DuplicateThumbprints(before) {
		had[strings.ToLower(d.Tenant+"|"+d.Object+"|"+d.What)] = d.Count
	}
	var out []string
	for _, d := range DuplicateThumbprints(after) {
		if d.Count > had[strings.ToLower(d.Tenant+"|"+d.Object+"|"+d.What)] {
			out = append(out, d.String())
		}
	}
	return out
}
