package plan

import (
	"slices"
	"strings"
)

// SPNDecision is the servicePrincipalNames collection to write and why.
// Changed=false means the caller must not PATCH.
type SPNDecision struct {
	SPNs    []string `json:"spns"`
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"` // only UndoSPNs removes
	Changed bool     `json:"changed"`
	Reason  string   `json:"reason"`
}

// spnKey is the form two SPNs are compared in. Entra matches SPNs without
// regard to case, and https://mail.contoso.com and https://mail.contoso.com/
// name the same host authority (Microsoft's procedure writes the slash,
// admins often don't), so a union that told them apart would register both.
func spnKey(s string) string {
	k := strings.ToLower(strings.TrimSpace(s))
	if strings.HasPrefix(k, "https://") {
		k = strings.TrimRight(k, "/")
	}
	return k
}

// UnionSPNs adds the wanted names that are missing (step 5). It never
// removes anything: the first-party service principal is shared with every
// other hybrid feature and its names are not ours to tidy, duplicates
// included. Existing names keep their order; new ones follow, sorted, so
// the result does not depend on the order hosts were discovered in. Of
// several equivalent wanted spellings the smallest is written, for the same
// reason.
func UnionSPNs(existing, want []string) SPNDecision {
	have := make(map[string]bool, len(existing))
	for _, s := range existing {
		have[spnKey(s)] = true
	}
	fresh := map[string]string{}
	var already []string
	for _, w := range want {
		w = strings.TrimSpace(w)
		k := spnKey(w)
		if w == "" {
			continue
		}
		if have[k] {
			already = append(already, w)
			continue
		}
		if cur, ok := fresh[k]; !ok || w < cur {
			fresh[k] = w
		}
	}
	keys := make([]string, 0, len(fresh))
	for k := range fresh {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	added := make([]string, 0, len(keys))
	for _, k := range keys {
		added = append(added, fresh[k])
	}

	d := SPNDecision{SPNs: slices.Clone(existing), Changed: len(added) > 0}
	var parts []string
	if d.Changed {
		d.Added = added
		d.SPNs = append(d.SPNs, added...)
		parts = append(parts, countf(len(added), "name", "names")+" to add: "+strings.Join(added, ", "))
	}
	if len(already) > 0 {
		parts = append(parts, countf(len(dedupeFold(already)), "wanted name is", "wanted names are")+" already registered")
	}
	if !d.Changed {
		if len(already) == 0 {
			parts = append(parts, "no names wanted")
		}
		parts = append(parts, "nothing to write")
	}
	d.Reason = strings.Join(parts, "; ")
	return d
}

// UndoSPNs removes exactly the names a run added, compared as UnionSPNs
// compares them, and leaves every other name alone.
func UndoSPNs(current, added []string) SPNDecision {
	drop := make(map[string]bool, len(added))
	for _, a := range added {
		if k := spnKey(a); k != "" {
			drop[k] = true
		}
	}
	d := SPNDecision{SPNs: make([]string, 0, len(current))}
	for _, s := range current {
		if drop[spnKey(s)] {
			d.Removed = append(d.Removed, s)
			continue
		}
		d.SPNs = append(d.SPNs, s)
	}
	d.Changed = len(d.Removed) > 0
	if d.Changed {
		d.Reason = countf(len(d.Removed), "name", "names") + " this run added will be removed: " + strings.Join(d.Removed, ", ")
	} else {
		d.Reason = "none of the names this run added is still registered; nothing to write"
	}
	return d
}

func dedupeFold(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if k := spnKey(s); !seen[k] {
			seen[k] = true
			out = append(out, s)
		}
	}
	return out
}

// SPNDomains are the organisation's registered domains for deriving
// hostname authorities (cloud.Profile.SPNsForDomainHosts): the on-prem
// accepted domains and the SMTP domains the plan uses, lower-cased, sorted,
// wildcard accepted domains left out.
func SPNDomains(o Observed, smtp []string) []string {
	var out []string
	add := func(d string) {
		d = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
		if d != "" && !strings.Contains(d, "*") && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	for _, a := range o.AcceptedDomains {
		add(a.DomainName)
	}
	for _, s := range smtp {
		add(s)
	}
	slices.Sort(out)
	return out
}
