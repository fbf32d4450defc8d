package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hybridflow/hybridflow/internal/cloud"
)

// problemsOf fails the test unless err is a Problems error.
func problemsOf(t *testing.T, err error) Problems {
	t.Helper()
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want a Problems error, got %T: %v", err, err)
	}
	return ps
}

// wantOne asserts that exactly one problem was found, at file:line on field,
// with a message containing msg.
func wantOne(t *testing.T, err error, file string, line int, fieldPath, msg string) Problem {
	t.Helper()
	ps := problemsOf(t, err)
	if len(ps) != 1 {
		t.Fatalf("want exactly 1 problem, got %d:\n%v", len(ps), ps)
	}
	p := ps[0]
	if p.File != file || p.Line != line || p.Field != fieldPath {
		t.Errorf("problem at %s:%d field %q, want %s:%d field %q\n%v", p.File, p.Line, p.Field, file, line, fieldPath, p)
	}
	if !strings.Contains(p.Message, msg) {
		t.Errorf("message %q does not contain %q", p.Message, msg)
	}
	return p
}

func TestParseInventoryBroken(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		line  int
		field string
		msg   string
	}{
		{
			name: "bad GUID",
			yaml: `tenants:
  - id: 6a1c-zz
    display_name: Contoso
    cloud: global
    initial_domain: contoso.onmicrosoft.com
    site: site-a
`,
			line: 2, field: "tenants[0].id", msg: `"6a1c-zz" is not a GUID`,
		},
		{
			name: "nil GUID",
			yaml: `tenants:
  - id: 00000000-0000-0000-0000-000000000000
    display_name: Contoso
    cloud: global
    initial_domain: contoso.onmicrosoft.com
    site: site-a
`,
			line: 2, field: "tenants[0].id", msg: "nil GUID",
		},
		{
			name: "unknown field",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: Contoso
    cloud: global
    initial_domain: contoso.onmicrosoft.com
    site: site-a
    colour: blue
`,
			line: 7, field: "tenants[0].colour", msg: "unknown field (known fields: id, display_name,",
		},
		{
			name: "unknown top-level key",
			yaml: `defaults:
  cloud: global
tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: Contoso
    cloud: global
    initial_domain: contoso.onmicrosoft.com
    site: site-a
`,
			line: 1, field: "defaults", msg: "unknown field (known fields: tenants)",
		},
		{
			name: "duplicate tenant id, other case",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-00000000000a
    display_name: Contoso
    cloud: global
    initial_domain: contoso.onmicrosoft.com
    site: site-a
  - id: 11111111-1111-4111-8111-00000000000A
    display_name: Contoso again
    cloud: global
    initial_domain: contoso2.onmicrosoft.com
    site: site-a
`,
			line: 7, field: "tenants[1].id", msg: "duplicate tenant id 11111111-1111-4111-8111-00000000000a (first at inventory.yaml:2, tenants[0].id)",
		},
		{
			name: "http URL where https is required",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: Contoso
    cloud: global
    initial_domain: contoso.onmicrosoft.com
    site: site-a
    overrides:
      onprem_autodiscover_url: http://autodiscover.contoso.com/autodiscover/autodiscover.svc
`,
			line: 8, field: "tenants[0].overrides.onprem_autodiscover_url", msg: "must be an https URL",
		},
		{
			name: "URL with user info is redacted",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: Contoso
    cloud: global
    initial_domain: contoso.onmicrosoft.com
    site: site-a
    overrides:
      onprem_ews_external_url: https://admin:Pa55word@mail.contoso.com/ews/exchange.asmx
`,
			line: 8, field: "tenants[0].overrides.onprem_ews_external_url", msg: "must not contain user info",
		},
		{
			name: "domain with a space",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: Contoso
    cloud: global
    initial_domain: contoso.onmicrosoft.com
    site: site-a
    smtp_domains:
      - contoso.com
      - "fabrikam .com"
`,
			line: 9, field: "tenants[0].smtp_domains[1]", msg: `"fabrikam .com" is not a DNS name: contains white space`,
		},
		{
			name: "single-label domain",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: Contoso
    cloud: global
    initial_domain: contoso.onmicrosoft.com
    site: site-a
    overrides: {exchange_online_host: outlook}
`,
			line: 7, field: "tenants[0].overrides.exchange_online_host", msg: "at least 2 labels",
		},
		{
			name: "the first-party path's status is set only where it is unconfirmed",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: Contoso
    cloud: global
    initial_domain: contoso.onmicrosoft.com
    site: site-a
    overrides: {legacy_first_party_blocked: false}
`,
			line: 7, field: "tenants[0].overrides.legacy_first_party_blocked", msg: "only a GCC tenant's first-party path status is unconfirmed",
		},
		{
			name: "the first-party path's status is a boolean",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: Contoso
    cloud: gcc
    initial_domain: contoso.onmicrosoft.com
    site: site-a
    overrides: {legacy_first_party_blocked: maybe}
`,
			line: 7, field: "tenants[0].overrides.legacy_first_party_blocked", msg: `"maybe": use true or false`,
		},
		{
			name: "unknown cloud lists the valid ones",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: Contoso
    cloud: azure
    initial_domain: contoso.onmicrosoft.com
    site: site-a
`,
			line: 4, field: "tenants[0].cloud", msg: `unknown cloud "azure" (valid: china, dod, gcc, gcchigh, global; alias 21vianet = china)`,
		},
		{
			name: "site with a slash",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: Contoso
    cloud: global
    initial_domain: contoso.onmicrosoft.com
    site: site/a
`,
			line: 6, field: "tenants[0].site", msg: `"site/a" is not a valid site name`,
		},
		{
			name: "site with uppercase",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: Contoso
    cloud: global
    initial_domain: contoso.onmicrosoft.com
    site: Site-A
`,
			line: 6, field: "tenants[0].site", msg: `did you mean "site-a"?`,
		},
		{
			name: "lync site longer than 63 characters",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: Contoso
    cloud: global
    initial_domain: contoso.onmicrosoft.com
    site: site-a
    lync_site: ` + strings.Repeat("a", 64) + `
`,
			line: 7, field: "tenants[0].lync_site", msg: "is not a valid site name",
		},
		{
			name: "bad mode",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: Contoso
    cloud: global
    initial_domain: contoso.onmicrosoft.com
    site: site-a
    mode: hybrid
`,
			line: 7, field: "tenants[0].mode", msg: `unknown mode "hybrid" (valid: auto, dedicated-app, legacy-first-party)`,
		},
		{
			name: "malformed YAML",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: Contoso
   cloud: global
    site: site-a
`,
			line: 4, field: "", msg: "malformed YAML: did not find expected '-' indicator",
		},
		{
			name: "unterminated quote",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: "Contoso
    cloud: global
`,
			line: 3, field: "", msg: "malformed YAML:",
		},
		{
			name: "wrong initial-domain suffix for the cloud",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: Contoso
    cloud: gcchigh
    initial_domain: contoso.onmicrosoft.com
    site: site-a
`,
			line: 5, field: "tenants[0].initial_domain", msg: `"contoso.onmicrosoft.com" is not a valid initial domain for cloud gcchigh (want <name>.onmicrosoft.us)`,
		},
		{
			name: "routing domain in place of the initial domain",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: Contoso
    cloud: global
    initial_domain: contoso.mail.onmicrosoft.com
    site: site-a
`,
			line: 5, field: "tenants[0].initial_domain", msg: "want <name>.onmicrosoft.com",
		},
		{
			name: "wrong routing-domain suffix for china",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: Contoso
    cloud: 21vianet
    initial_domain: contoso.partner.onmschina.cn
    routing_domain: contoso.mail.onmicrosoft.com
    site: site-a
`,
			line: 6, field: "tenants[0].routing_domain", msg: "want <name>.partner.mail.onmschina.cn",
		},
		{
			name: "initial domain among smtp domains",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: Contoso
    cloud: global
    initial_domain: contoso.onmicrosoft.com
    site: site-a
    smtp_domains: [contoso.com, contoso.onmicrosoft.com]
`,
			line: 7, field: "tenants[0].smtp_domains[1]", msg: "on-premises SMTP domains only",
		},
		{
			name: "bad email",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: Contoso
    cloud: global
    initial_domain: contoso.onmicrosoft.com
    site: site-a
    overrides:
      onprem_mailbox: admin.contoso.com
`,
			line: 8, field: "tenants[0].overrides.onprem_mailbox", msg: `"admin.contoso.com" is not an email address`,
		},
		{
			name: "empty tenants",
			yaml: `tenants: []
`,
			line: 1, field: "tenants", msg: "no tenants",
		},
		{
			name: "empty file",
			yaml: "# nothing yet\n",
			line: 1, field: "tenants", msg: "the inventory is empty",
		},
		{
			name: "required field missing points at the entry",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: Contoso
    cloud: global
    initial_domain: contoso.onmicrosoft.com
`,
			line: 2, field: "tenants[0].site", msg: "required",
		},
		{
			name: "field given twice",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: Contoso
    cloud: global
    initial_domain: contoso.onmicrosoft.com
    site: site-a
    site: site-b
`,
			line: 7, field: "tenants[0].site", msg: "given twice (first at line 6)",
		},
		{
			name: "list where a string belongs",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: [Contoso]
    cloud: global
    initial_domain: contoso.onmicrosoft.com
    site: site-a
`,
			line: 3, field: "tenants[0].display_name", msg: "must be a string",
		},
		{
			name: "string where a list belongs",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: Contoso
    cloud: global
    initial_domain: contoso.onmicrosoft.com
    site: site-a
    smtp_domains: contoso.com, fabrikam.com
`,
			line: 7, field: "tenants[0].smtp_domains", msg: "must be a list",
		},
		{
			name: "credential reference instead of a name",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: Contoso
    cloud: global
    initial_domain: contoso.onmicrosoft.com
    site: site-a
    credential: env:HF_SECRET
`,
			line: 7, field: "tenants[0].credential", msg: "not a reference",
		},
		{
			name: "second YAML document",
			yaml: `tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: Contoso
    cloud: global
    initial_domain: contoso.onmicrosoft.com
    site: site-a
---
tenants: []
`,
			line: 7, field: "", msg: "a second YAML document",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := ParseInventory("inventory.yaml", []byte(tc.yaml))
			if inv != nil {
				t.Errorf("want nil inventory on error, got %+v", inv)
			}
			wantOne(t, err, "inventory.yaml", tc.line, tc.field, tc.msg)
		})
	}
}

func TestParseInventoryReportsEveryProblem(t *testing.T) {
	data := `tenants:
  - id: not-a-guid
    display_name: Contoso
    cloud: global
    initial_domain: contoso.onmicrosoft.com
    site: Site-A
  - id: 11111111-1111-4111-8111-000000000002
    display_name: Fabrikam
    cloud: mars
    initial_domain: fabrikam.onmicrosoft.com
    site: site-b
    mode: fast
    overrides:
      onprem_autodiscover_url: http://autodiscover.fabrikam.com
      cloud_mailbox: nobody
  - id: 11111111-1111-4111-8111-000000000002
    cloud: dod
    initial_domain: tailspin.onmicrosoft.com
    site: site-c
    extra: 1
`
	_, err := ParseInventory("inv.yaml", []byte(data))
	ps := problemsOf(t, err)
	want := []struct {
		line  int
		field string
	}{
		{2, "tenants[0].id"},
		{6, "tenants[0].site"},
		{9, "tenants[1].cloud"},
		{12, "tenants[1].mode"},
		{14, "tenants[1].overrides.onprem_autodiscover_url"},
		{15, "tenants[1].overrides.cloud_mailbox"},
		{16, "tenants[2].display_name"}, // required: points at the entry
		{16, "tenants[2].id"},           // duplicate of tenants[1]
		{18, "tenants[2].initial_domain"},
		{20, "tenants[2].extra"},
	}
	if len(ps) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(ps), len(want), ps)
	}
	for i, w := range want {
		if ps[i].File != "inv.yaml" || ps[i].Line != w.line || ps[i].Field != w.field {
			t.Errorf("problem %d = %v, want inv.yaml:%d %s", i, ps[i], w.line, w.field)
		}
	}
	// The joined error is what "hybridflow validate" prints: one line each.
	if got := strings.Count(err.Error(), "\n") + 1; got != len(want) {
		t.Errorf("Error() has %d lines, want %d", got, len(want))
	}
}

func TestProblemFormat(t *testing.T) {
	p := Problem{File: "inventory.yaml", Line: 12, Field: "tenants[3].id", Message: `"6a1c-zz" is not a GUID`}
	if got, want := p.Error(), `inventory.yaml:12: tenants[3].id: "6a1c-zz" is not a GUID`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	env := Problem{File: "environment", Field: "HYBRIDFLOW_LOG_LEVEL", Message: "bad"}
	if got, want := env.Error(), "environment: HYBRIDFLOW_LOG_LEVEL: bad"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	ps := Problems{p, env}
	if got, want := ps.Error(), p.Error()+"\n"+env.Error(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParseInventoryGood(t *testing.T) {
	data := `tenants:
  - id: 11111111-1111-4111-8111-00000000000A
    display_name: Contoso
    cloud: 21Vianet
    initial_domain: Contoso.partner.onmschina.cn
    routing_domain: contoso.partner.mail.onmschina.cn
    smtp_domains: [Contoso.CN]
    site: site-a
    mode: Dedicated-App
    credential: default
    overrides:
      organization_guid: 22222222-2222-4222-8222-00000000000B
      onprem_autodiscover_url: https://autodiscover.contoso.cn/autodiscover/autodiscover.svc
      spn_hosts: [mail.contoso.cn]
      onprem_mailbox: first.last+test@contoso.cn
  - id: 11111111-1111-4111-8111-000000000002
    display_name: Fabrikam
    cloud: gcc
    initial_domain: fabrikam.onmicrosoft.com
    site: "1234"
`
	inv, err := ParseInventory("inv.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Tenants) != 2 {
		t.Fatalf("got %d tenants", len(inv.Tenants))
	}
	c := inv.Tenants[0]
	checks := map[string][2]string{
		"ID":               {c.ID, "11111111-1111-4111-8111-00000000000a"},
		"Cloud":            {c.Cloud, "china"},
		"InitialDomain":    {c.InitialDomain, "contoso.partner.onmschina.cn"},
		"SMTPDomains":      {strings.Join(c.SMTPDomains, ","), "contoso.cn"},
		"Mode":             {string(c.Mode()), string(ModeDedicatedApp)},
		"OrganizationGUID": {c.Overrides.OrganizationGUID, "22222222-2222-4222-8222-00000000000b"},
		"OnPremMailbox":    {c.Overrides.OnPremMailbox, "first.last+test@contoso.cn"},
		"Credential":       {c.Credential, "default"},
	}
	for name, v := range checks {
		if v[0] != v[1] {
			t.Errorf("%s = %q, want %q", name, v[0], v[1])
		}
	}
	if got := inv.Tenants[1].Mode(); got != ModeAuto {
		t.Errorf("default mode = %q, want auto", got)
	}
	if inv.Tenants[1].Site != "1234" {
		t.Errorf("numeric site = %q", inv.Tenants[1].Site)
	}

	if got, ok := inv.LookupByID("11111111-1111-4111-8111-00000000000A"); !ok || got.DisplayName != "Contoso" {
		t.Errorf("LookupByID upper case = %v, %v", got.DisplayName, ok)
	}
	if _, ok := inv.LookupByID("11111111-1111-4111-8111-999999999999"); ok {
		t.Error("LookupByID found a tenant that is not there")
	}
}

func TestLoadInventory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "inv.yaml")
	if err := os.WriteFile(path, []byte("tenants:\n  - id: nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadInventory(path)
	ps := problemsOf(t, err)
	if ps[0].File != path || ps[0].Line != 2 {
		t.Errorf("first problem %v, want %s:2", ps[0], path)
	}

	_, err = LoadInventory(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "read inventory: ") {
		t.Errorf("missing file: %v", err)
	}
}

func TestExampleFiles(t *testing.T) {
	inv, err := LoadInventory("../../configs/inventory.example.yaml")
	if err != nil {
		t.Fatalf("inventory example: %v", err)
	}
	clouds := map[string]bool{}
	for _, tn := range inv.Tenants {
		clouds[tn.Cloud] = true
	}
	for _, c := range cloud.Names() {
		if !clouds[c] {
			t.Errorf("inventory example has no tenant in cloud %s", c)
		}
	}

	// No environment: the example must be valid on its own.
	cfg, err := LoadWorkerConfig("../../configs/worker.example.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatalf("worker example: %v", err)
	}
	if cfg.Simulate == nil || len(cfg.Roles) != 5 || cfg.Credentials["default"].Kind != CredentialClientSecret {
		t.Errorf("worker example decoded unexpectedly: %+v", cfg)
	}
	if sh := cfg.OnPremSites["site-b"].Shell; sh.Session != SessionRemote || sh.CallTimeout.String() != "3m0s" {
		t.Errorf("site-b shell = %+v", sh)
	}
	// Every site named in the inventory example is served by the worker
	// example, so "make run" reaches every tenant.
	for _, tn := range inv.Tenants {
		if _, ok := cfg.OnPremSites[tn.Site]; !ok {
			t.Errorf("tenant %s: site %s not in the worker example", tn.ID, tn.Site)
		}
		if _, ok := cfg.Credentials[tn.Credential]; tn.Credential != "" && !ok {
			t.Errorf("tenant %s: credential %s not in the worker example", tn.ID, tn.Credential)
		}
	}
}

// TestLegacyFirstPartyOverride: a GCC tenant may state the first-party
// path's status (the product only infers it there); it reaches the
// tenant's overrides as a boolean, absent stays nil.
func TestLegacyFirstPartyOverride(t *testing.T) {
	inv, err := ParseInventory("inv.yaml", []byte(`tenants:
  - id: 11111111-1111-4111-8111-000000000001
    display_name: Contoso
    cloud: gcc
    initial_domain: contoso.onmicrosoft.com
    site: site-a
    overrides: {legacy_first_party_blocked: false}
  - id: 11111111-1111-4111-8111-000000000002
    display_name: Fabrikam
    cloud: gcc
    initial_domain: fabrikam.onmicrosoft.com
    site: site-a
`))
	if err != nil {
		t.Fatal(err)
	}
	if o := inv.Tenants[0].Overrides.LegacyFirstPartyBlocked; o == nil || *o {
		t.Errorf("override %v, want false", o)
	}
	if o := inv.Tenants[1].Overrides.LegacyFirstPartyBlocked; o != nil {
		t.Errorf("absent override %v, want nil", *o)
	}
}
