package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The validators below return "" for a good value and otherwise a message
// that names the value (except for credential references, which may be a
// pasted secret and are never echoed).

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func guidMsg(s string) string {
	if !guidRE.MatchString(s) {
		return fmt.Sprintf("%q is not a GUID (want 8-4-4-4-12 hexadecimal digits, e.g. 11111111-1111-4111-8111-000000000001)", s)
	}
	// The nil GUID is what an unfilled template or a zero value produces,
	// never a real tenant, application or organization.
	if strings.Trim(s, "0-") == "" {
		return fmt.Sprintf("%q is the nil GUID", s)
	}
	return ""
}

// dnsMsg checks a DNS host name with at least minLabels labels: labels of
// 1-63 letters, digits and hyphens, not starting or ending with a hyphen,
// 253 characters in all. A numeric last label is refused so that IP
// addresses are not mistaken for names.
func dnsMsg(s string, minLabels int) string {
	bad := func(why string) string { return fmt.Sprintf("%q is not a DNS name: %s", s, why) }
	switch {
	case s == "":
		return "is empty (want a DNS name such as contoso.com)"
	case strings.ContainsAny(s, " \t\r\n"):
		return bad("contains white space")
	case len(s) > 253:
		return bad("longer than 253 characters")
	case strings.HasSuffix(s, "."):
		return bad("remove the trailing dot")
	case strings.Contains(s, "://") || strings.Contains(s, "/"):
		return bad("give the host name only, without scheme or path")
	}
	labels := strings.Split(s, ".")
	if len(labels) < minLabels {
		return bad(fmt.Sprintf("needs at least %d labels separated by dots", minLabels))
	}
	for _, l := range labels {
		switch {
		case l == "":
			return bad("empty label (two dots in a row, or a leading dot)")
		case len(l) > 63:
			return bad(fmt.Sprintf("label %q is longer than 63 characters", l))
		case l[0] == '-' || l[len(l)-1] == '-':
			return bad(fmt.Sprintf("label %q starts or ends with a hyphen", l))
		}
		// Byte by byte: strings.ToLower would fold the Kelvin sign (U+212A)
		// into an ASCII k and let a non-ASCII name through.
		for i := 0; i < len(l); i++ {
			if c := l[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return bad(fmt.Sprintf("label %q may contain only letters, digits and hyphens", l))
			}
		}
	}
	// All digits, however many (strconv.Atoi fails on overflow and would
	// let a long numeric label pass).
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return bad("the last label is numeric (an IP address is not accepted here)")
	}
	return ""
}

func domainMsg(s string) string { return dnsMsg(s, 2) }

// hostMsg accepts what may follow a scheme or precede a port on a private
// network: a DNS name (single-label allowed) or an IP address.
func hostMsg(s string) string {
	if net.ParseIP(s) != nil {
		return ""
	}
	return dnsMsg(s, 1)
}

// siteRE is the site rule: a site names the task queues
// hybridflow-onprem-<site> and hybridflow-lync-<site>, so it is kept to
// characters every Temporal deployment and shell accepts unquoted.
var siteRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func siteMsg(s string) string {
	if siteRE.MatchString(s) {
		return ""
	}
	msg := fmt.Sprintf("%q is not a valid site name: use 1-63 lowercase letters, digits and hyphens, starting with a letter or digit (it becomes part of a Temporal task queue name)", s)
	if lower := strings.ToLower(s); lower != s && siteRE.MatchString(lower) {
		msg += fmt.Sprintf("; did you mean %q?", lower)
	}
	return msg
}

// nameRE is for names the operator chooses and other entries refer to
// (credentials).
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func nameMsg(s string) string {
	if nameRE.MatchString(s) {
		return ""
	}
	return fmt.Sprintf("%q is not a valid name: use up to 64 letters, digits, dots, hyphens and underscores, starting with a letter or digit", s)
}

// urlMsg checks an absolute URL with one of the given schemes, a host and no
// user info. Credentials in URLs end up in logs and workflow history, so user
// info is refused outright and redacted from the message.
func urlMsg(s string, schemes ...string) string {
	want := strings.Join(schemes, " or ")
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Sprintf("is not a URL (want an absolute %s URL)", want)
	}
	if u.User != nil {
		return fmt.Sprintf("%q must not contain user info; credentials belong in credential references", u.Redacted())
	}
	if !contains(schemes, strings.ToLower(u.Scheme)) {
		return fmt.Sprintf("%q must be an %s URL", s, want)
	}
	if u.Host == "" {
		return fmt.Sprintf("%q has no host", s)
	}
	if m := hostMsg(u.Hostname()); m != "" {
		return fmt.Sprintf("%q has a bad host: %s", s, m)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("%q: port must be a number from 1 to 65535", s)
		}
	}
	if u.Fragment != "" {
		return fmt.Sprintf("%q must not have a #fragment", s)
	}
	return ""
}

// hostPortMsg checks an address for dialing or listening. An empty host is
// allowed only for listen addresses (":9464" = all interfaces).
func hostPortMsg(s string, listen bool) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Sprintf("%q is not host:port", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Sprintf("%q: port must be a number from 1 to 65535", s)
	}
	if host == "" {
		if listen {
			return ""
		}
		return fmt.Sprintf("%q has no host", s)
	}
	if m := hostMsg(host); m != "" {
		return fmt.Sprintf("%q has a bad host: %s", s, m)
	}
	return ""
}

// emailLocalRE is the RFC 5322 dot-atom: what Exchange accepts in a primary
// SMTP address without quoting.
var emailLocalRE = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")

func emailMsg(s string) string {
	at := strings.LastIndex(s, "@")
	if at < 0 {
		return fmt.Sprintf("%q is not an email address (want user@domain)", s)
	}
	local, domain := s[:at], s[at+1:]
	if local == "" || len(local) > 64 || !emailLocalRE.MatchString(local) {
		return fmt.Sprintf("%q is not an email address: bad part before @", s)
	}
	if m := domainMsg(domain); m != "" {
		return fmt.Sprintf("%q is not an email address: %s", s, m)
	}
	return ""
}

func durationMsg(s string) string {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Sprintf("%q is not a duration (use a Go duration such as 90s or 2m)", s)
	}
	if d <= 0 {
		return fmt.Sprintf("%q must be positive", s)
	}
	return ""
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// refMsg checks a credential reference. The value is never quoted back: if it
// is not a reference it is most likely the secret itself.
func refMsg(s string) string {
	const want = "must be a credential reference env:NAME or file:PATH"
	switch {
	case strings.HasPrefix(s, "env:"):
		if !envNameRE.MatchString(s[len("env:"):]) {
			return want + " (the env: name must be letters, digits and underscores)"
		}
		return ""
	case strings.HasPrefix(s, "file:"):
		if strings.TrimSpace(s[len("file:"):]) == "" {
			return want + " (the file: path is empty)"
		}
		return ""
	}
	return want + "; literal secrets are not allowed in configuration files (value not shown)"
}
