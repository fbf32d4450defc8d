package cloud

import (
	"net/url"
	"sort"
	"strings"
)

// SPNsForHosts turns the host names of the on-prem HTTP endpoints (step 5)
// into the service principal names this cloud expects, sorted and without
// duplicates. Worldwide and US clouds register every host as https://host/;
// 21Vianet registers a wildcard authority per parent domain (seed 000), so
// mail.contoso.com and autodiscover.contoso.com collapse into one SPN.
func (p Profile) SPNsForHosts(hosts []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
		if h == "" {
			continue
		}
		var spn string
		switch p.SPNForm {
		case SPNWildcardAuthority:
			parent := h
			if i := strings.IndexByte(h, '.'); i > 0 && strings.Count(h, ".") >= 2 {
				parent = h[i+1:]
			}
			spn = FirstPartyAppID + "/*." + parent
		default:
			spn = "https://" + h + "/"
		}
		if !seen[spn] {
			seen[spn] = true
			out = append(out, spn)
		}
	}
	sort.Strings(out)
	return out
}

// HostOfURL returns the lower-cased host of an absolute URL, or "" when the
// URL has none; virtual-directory URLs feed SPNsForHosts through it.
func HostOfURL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}

// SPNCovers reports whether a registered SPN authorises requests to host in
// this cloud's form; Test-OAuthConnectivity fails with 401 when none does.
func SPNCovers(spn, host string) bool {
	spn = strings.ToLower(spn)
	host = strings.ToLower(host)
	if spn == "https://"+host+"/" || spn == "https://"+host {
		return true
	}
	if rest, ok := strings.CutPrefix(spn, FirstPartyAppID+"/"); ok {
		if suffix, ok := strings.CutPrefix(rest, "*."); ok {
			return strings.HasSuffix(host, "."+suffix)
		}
		return rest == host
	}
	return false
}
