package config

import (
	"bytes"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The seed corpora live in testdata/fuzz/Fuzz*/ (the broken inventories of
// starter/testdata and the table tests' inputs among them); the example
// and demo files are added here so they stay current.

// checkProblems holds what every parse failure must look like: a Problems
// error whose every entry names the file and either a line inside the
// input or a field path, with a message.
func checkProblems(t *testing.T, file string, data []byte, err error) {
	t.Helper()
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error is %T, not Problems: %v", err, err)
	}
	if len(ps) == 0 {
		t.Fatal("empty Problems returned as an error")
	}
	// YAML breaks lines at CR LF, LF, CR, NEL, LS and PS.
	norm := bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	lines := 1
	for _, br := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
		lines += bytes.Count(norm, []byte(br))
	}
	for _, p := range ps {
		if p.File != file {
			t.Errorf("problem names file %q, want %q: %v", p.File, file, p)
		}
		if p.Message == "" {
			t.Errorf("problem without a message: %#v", p)
		}
		if p.Line == 0 && p.Field == "" {
			t.Errorf("problem names neither a line nor a field: %v", p)
		}
		if p.Line < 0 || (p.Line > lines && p.File != "environment") {
			t.Errorf("problem at line %d of a %d-line input: %v", p.Line, lines, p)
		}
		if p.Line > 0 && !strings.HasPrefix(p.Error(), file+":"+strconv.Itoa(p.Line)+": ") {
			t.Errorf("problem does not print as FILE:LINE: %q", p.Error())
		}
	}
}

func addFiles(f *testing.F, pattern string) {
	paths, err := filepath.Glob(pattern)
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzParseInventory: any bytes either parse into an inventory whose every
// value passes the field validators and which, written back out as YAML,
// parses to the same inventory; or fail with problems that point at a
// line or a field. Never a panic.
func FuzzParseInventory(f *testing.F) {
	addFiles(f, "../../configs/inventory.*.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		const file = "inv.yaml"
		inv, err := ParseInventory(file, data)
		if err != nil {
			if inv != nil {
				t.Fatal("an inventory returned together with an error")
			}
			checkProblems(t, file, data, err)
			return
		}
		if len(inv.Tenants) == 0 {
			t.Fatal("accepted an inventory without tenants")
		}
		for _, tn := range inv.Tenants {
			for what, msg := range map[string]string{
				"id": guidMsg(tn.ID), "initial_domain": domainMsg(tn.InitialDomain), "site": siteMsg(tn.Site),
			} {
				if msg != "" {
					t.Fatalf("accepted tenant with bad %s: %s", what, msg)
				}
			}
			if tn.ID != strings.ToLower(tn.ID) || tn.InitialDomain != strings.ToLower(tn.InitialDomain) {
				t.Fatalf("not normalised: %+v", tn)
			}
		}
		out, err := yaml.Marshal(inv)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseInventory(file, out)
		if err != nil {
			t.Fatalf("the inventory written back does not parse:\n%s\n%v", out, err)
		}
		if !reflect.DeepEqual(again, inv) {
			t.Fatalf("re-parse differs:\n%+v\n%+v", inv, again)
		}
	})
}

// workerEnv are the environment overrides the worker config reads; the
// fuzzer sets one of them (or none) to a value of its choosing.
var workerEnv = []string{
	"HYBRIDFLOW_LOG_LEVEL", "HYBRIDFLOW_METRICS_ADDRESS", "HYBRIDFLOW_ROLES", "HYBRIDFLOW_SIMULATE_WORLD",
	"HYBRIDFLOW_TEMPORAL_ADDRESS", "HYBRIDFLOW_TEMPORAL_IDENTITY", "HYBRIDFLOW_TEMPORAL_NAMESPACE",
	"HYBRIDFLOW_TEMPORAL_TLS_CA_FILE", "HYBRIDFLOW_TEMPORAL_TLS_CERT_FILE", "HYBRIDFLOW_TEMPORAL_TLS_KEY_FILE",
	"HYBRIDFLOW_TEMPORAL_TLS_SERVER_NAME", "HYBRIDFLOW_CODEC_ACTIVE", "HYBRIDFLOW_CODEC_KEYS",
}

// FuzzParseWorkerConfig: the same contract for the worker config, with one
// environment override; a config that parses is the same when parsed
// again and has what a worker needs to start.
func FuzzParseWorkerConfig(f *testing.F) {
	for _, p := range []string{"../../configs/worker.example.yaml", "../../configs/worker.dev.yaml", "../../configs/worker.compose.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(255), "")
		f.Add(b, uint8(2), "cloud,onprem:site-a")
	}
	f.Fuzz(func(t *testing.T, data []byte, env uint8, value string) {
		const file = "worker.yaml"
		getenv := func(k string) string {
			if int(env) < len(workerEnv) && k == workerEnv[env] {
				return value
			}
			return ""
		}
		cfg, err := ParseWorkerConfig(file, data, getenv)
		if err != nil {
			if cfg != nil {
				t.Fatal("a config returned together with an error")
			}
			var ps Problems
			if errors.As(err, &ps) {
				// Problems from the environment name the variable.
				for i, p := range ps {
					if p.File == "environment" && !strings.HasPrefix(p.Field, "HYBRIDFLOW_") {
						t.Fatalf("environment problem without the variable: %v", p)
					}
					if p.File == "environment" {
						ps[i].File = file
					}
				}
				err = ps
			}
			checkProblems(t, file, data, err)
			return
		}
		if len(cfg.Roles) == 0 {
			t.Fatal("accepted a config without roles")
		}
		if m := hostPortMsg(cfg.Temporal.Address, false); m != "" {
			t.Fatalf("accepted a bad temporal address: %s", m)
		}
		for name, c := range cfg.Credentials {
			if !contains(credentialKinds, string(c.Kind)) || nameMsg(name) != "" {
				t.Fatalf("accepted credential %q: %+v", name, c)
			}
			for _, ref := range []string{c.Secret, c.Certificate, c.CertificatePassword} {
				if ref != "" && refMsg(ref) != "" {
					t.Fatalf("accepted credential %q with a literal secret", name)
				}
			}
		}
		again, err := ParseWorkerConfig(file, data, getenv)
		if err != nil || !reflect.DeepEqual(again, cfg) {
			t.Fatalf("second parse differs: %v\n%+v\n%+v", err, cfg, again)
		}
	})
}

// Independent reference checks: plain byte loops written from the rules
// (RFC 1123 host names, 8-4-4-4-12 GUIDs), not from the
// validators' code.

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func refGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	zero := true
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i]) {
				return false
			}
			zero = zero && s[i] == '0'
		}
	}
	return !zero
}

func refDNS(s string, minLabels int) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	if len(labels) < minLabels {
		return false
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	last := labels[len(labels)-1]
	for i := 0; i < len(last); i++ {
		if last[i] < '0' || last[i] > '9' {
			return true
		}
	}
	return false // an all-numeric top label: an IP address, not a name
}

// refSimpleHTTPS recognises the plain form every operator writes:
// https://<host name>[:port][/path of unreserved characters]. Every such
// URL must be accepted; the validator may accept more (queries, escapes,
// IP literals), which soundness checks below.
func refSimpleHTTPS(s string) bool {
	rest, ok := strings.CutPrefix(s, "https://")
	if !ok {
		return false
	}
	host, path, _ := strings.Cut(rest, "/")
	if h, port, found := strings.Cut(host, ":"); found {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' || port[0] == '+' {
			return false
		}
		host = h
	}
	if !refDNS(host, 1) {
		return false
	}
	for i := 0; i < len(path); i++ {
		c := path[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/", c) >= 0) {
			return false
		}
	}
	return true
}

// FuzzValidators: the GUID and DNS name / domain validators accept
// exactly what the reference checks accept (thumbprints: internal/certs); the https URL validator
// accepts every simple https URL and nothing with user info, another
// scheme, a fragment, a bad host or a bad port.
func FuzzValidators(f *testing.F) {
	for _, s := range []string{
		"11111111-1111-4111-8111-000000000001", "00000000-0000-0000-0000-000000000000", "{11111111-1111-4111-8111-000000000001}",
		"contoso.com", "mail.contoso.com", "contoso", "-a.com", "a-.com", "a..com", "contoso.com.", "1.2.3.4", "a.123",
		"a.11111111111111111111", "\u212aontoso.com", "xn--bcher-kva.example", strings.Repeat("a", 64) + ".com",
		"https://mail.contoso.com/EWS/Exchange.asmx", "https://user:pw@mail.contoso.com/", "http://mail.contoso.com/",
		"https://mail.contoso.com:443/", "https://mail.contoso.com:99999/", "https://mail.contoso.com/#frag",
		"HTTPS://MAIL.CONTOSO.COM/", "https://[::1]/", "https://10.0.0.1/owa", "https://mail.contoso.com/a b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := guidMsg(s) == "", refGUID(s); got != want {
			t.Errorf("guidMsg(%q) accepts=%v, reference %v (%s)", s, got, want, guidMsg(s))
		}
		for _, min := range []int{1, 2} {
			if got, want := dnsMsg(s, min) == "", refDNS(s, min); got != want {
				t.Errorf("dnsMsg(%q, %d) accepts=%v, reference %v (%s)", s, min, got, want, dnsMsg(s, min))
			}
		}
		if got := domainMsg(s) == ""; got != refDNS(s, 2) {
			t.Errorf("domainMsg(%q) accepts=%v", s, got)
		}
		msg := urlMsg(s, "https")
		if refSimpleHTTPS(s) && msg != "" {
			t.Errorf("urlMsg(%q) refused a simple https URL: %s", s, msg)
		}
		if msg != "" {
			// Refused; a password must not be echoed back.
			if u, err := url.Parse(s); err == nil && u.User != nil {
				if p, ok := u.User.Password(); ok && len(p) >= 6 && !strings.Contains(u.Redacted(), p) && strings.Contains(msg, p) {
					t.Errorf("urlMsg echoes the password of %q: %s", s, msg)
				}
			}
			return
		}
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("urlMsg accepted unparseable %q", s)
		}
		switch {
		case !strings.EqualFold(u.Scheme, "https"):
			t.Errorf("accepted scheme %q in %q", u.Scheme, s)
		case u.User != nil:
			t.Errorf("accepted user info in %q", s)
		case u.Fragment != "" || strings.Contains(s, "#") && u.RawFragment != "":
			t.Errorf("accepted a fragment in %q", s)
		case net.ParseIP(u.Hostname()) == nil && !refDNS(u.Hostname(), 1):
			t.Errorf("accepted host %q in %q", u.Hostname(), s)
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				t.Errorf("accepted port %q in %q", p, s)
			}
		}
	})
}
