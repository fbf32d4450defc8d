package config

import "strings"

// The cloud list and domain suffixes below are a stand-in until package
// internal/cloud exists; it will own them (cloud.Lookup, cloud.Names). Only
// validCloud, cloudNames and domainSuffixes read them, so switching is a
// one-line change in each.

// knownClouds are the canonical cloud names; cloudAliases maps accepted
// alternative spellings to them.
var (
	knownClouds  = []string{"global", "gcc", "gcchigh", "dod", "china"}
	cloudAliases = map[string]string{"21vianet": "china"}
)

// validCloud reports whether name is a cloud (or alias) Lookup will accept.
// Later: _, err := cloud.Lookup(name); return err == nil.
func validCloud(name string) bool {
	return contains(knownClouds, canonicalCloud(name))
}

// cloudNames lists the names to suggest in "unknown cloud" problems.
// Later: append(cloud.Names(), "21vianet").
func cloudNames() []string {
	return append(append([]string(nil), knownClouds...), sortedKeys(cloudAliases)...)
}

func canonicalCloud(name string) string {
	name = strings.ToLower(name)
	if c, ok := cloudAliases[name]; ok {
		return c
	}
	return name
}

// suffixes are the DNS suffixes Microsoft gives a tenant's initial
// (<name>.onmicrosoft.com) and hybrid mail routing (<name>.mail.onmicrosoft.com)
// domains in each cloud (FACTS §4).
type suffixes struct{ initial, routing string }

var cloudSuffixes = map[string]suffixes{
	"global":  {"onmicrosoft.com", "mail.onmicrosoft.com"},
	"gcc":     {"onmicrosoft.com", "mail.onmicrosoft.com"},
	"gcchigh": {"onmicrosoft.us", "mail.onmicrosoft.us"},
	"dod":     {"onmicrosoft.us", "mail.onmicrosoft.us"},
	"china":   {"partner.onmschina.cn", "partner.mail.onmschina.cn"},
}

// domainSuffixes returns the suffixes of a valid cloud name or alias.
// Later: from cloud.Lookup(name)'s profile.
func domainSuffixes(cloud string) (suffixes, bool) {
	s, ok := cloudSuffixes[canonicalCloud(cloud)]
	return s, ok
}
