package cloud

import (
	"net/url"
	"slices"
	"sort"
	"strings"
)

// SPNsForHosts is SPNsForDomainHosts without knowing the organisation's
// registered domains.
func (p Profile) SPNsForHosts(hosts []string) []string {
	return p.SPNsForDomainHosts(hosts, nil)
}

// SPNsForDomainHosts turns the host names of the on-prem HTTP endpoints
// (step 5) into the service principal names this cloud expects, sorted and
// without duplicates. Worldwide and US clouds register every host as
// https://host/.
//
// 21Vianet registers hostname authorities, <first-party app id>/<authority>,
// and recommends a wildcard per domain, so mail.contoso.com and
// autodiscover.contoso.com collapse into <app>/*.contoso.com. A wildcard
// does not cover the domain itself: a host that is one of the registered
// domains (contoso.com reached at its bare name) gets its own
// <app>/contoso.com beside the wildcard of its other hosts.
//
// registered are the organisation's own domains (accepted and SMTP
// domains). When given, a wildcard is only ever registered under one of
// them (*.contoso.com, *.eu.contoso.com for contoso.com); any other host
// gets an authority of its own, so that no wildcard ends up on a suffix the
// organisation does not own (*.co.uk). Without them (none given), a host
// of three labels or more gets the wildcard of its parent and a shorter
// one its own authority.
func (p Profile) SPNsForDomainHosts(hosts, registered []string) []string {
	var doms []string
	for _, d := range registered {
		if d = normHost(d); d != "" && !strings.Contains(d, "*") {
			doms = append(doms, d)
		}
	}
	seen := map[string]bool{}
	var out []string
	for _, h := range hosts {
		h = normHost(h)
		if h == "" {
			continue
		}
		var spn string
		switch p.SPNForm {
		case SPNWildcardAuthority:
			spn = FirstPartyAppID + "/" + authorityFor(h, doms, len(doms) > 0)
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

// authorityFor is the hostname authority that registers host: the
// wildcard of its parent domain, or the host itself where no wildcard may
// cover it (see SPNsForDomainHosts).
func authorityFor(host string, domains []string, known bool) string {
	parent, ok := parentDomain(host)
	switch {
	case !ok:
		return host
	case known && slices.Contains(domains, host):
		return host
	case known && !underAny(parent, domains):
		return host
	case !known && strings.Count(parent, ".") < 1:
		return host
	}
	return "*." + parent
}

// parentDomain is host without its first label, when that leaves a name.
func parentDomain(host string) (string, bool) {
	i := strings.IndexByte(host, '.')
	if i <= 0 || i == len(host)-1 {
		return "", false
	}
	return host[i+1:], true
}

// underAny reports whether name is one of domains or a subdomain of one.
func underAny(name string, domains []string) bool {
	for _, d := range domains {
		if name == d || strings.HasSuffix(name, "."+d) {
			return true
		}
	}
	return false
}

func normHost(h string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
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
// A wildcard authority *.contoso.com covers names under contoso.com, never
// contoso.com itself.
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
