// Package hostile builds the hostile inputs the bounded-input tests feed to
// hybridflow's parsers and clients: files and strings shaped to make a
// careless reader spend unbounded time or memory, or to take over the
// terminal an operator reads the output on. Tests of several packages use
// the same generators so that the figures in docs/hostile-input.md are for
// exactly the inputs the unit tests refuse.
package hostile

import (
	"fmt"
	"strings"
)

// A valid tenant's fields, for inputs that must get past the schema.
const (
	TenantID      = "11111111-1111-4111-8111-000000000001"
	InitialDomain = "contoso.onmicrosoft.com"
)

// AliasBomb is an inventory of one tenant whose smtp_domains lists domains
// valid names, followed by refs entries that are YAML aliases of
// that tenant. The file stays small (about 6 bytes per alias) while a
// reader that expands aliases checks domains*refs names: with the
// defaults below, 190 KB that stand for 57 million domain names.
func AliasBomb(domains, refs int) []byte {
	var b strings.Builder
	b.WriteString("tenants:\n  - &t {id: " + TenantID + ", display_name: A, cloud: global, initial_domain: " + InitialDomain + ", site: s, smtp_domains: [")
	for i := range domains {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "d%04d.example.com", i)
	}
	b.WriteString("]}\n")
	for range refs {
		b.WriteString("  - *t\n")
	}
	return []byte(b.String())
}

// Default sizes of AliasBomb: the 190 KB file.
const (
	AliasBombDomains = 3000
	AliasBombRefs    = 19000
)

// Tenant is one inventory entry with the given display name (written as a
// plain YAML scalar: pass only characters that need no quoting, or quote
// them yourself).
func Tenant(displayName string) string {
	return "  - id: " + TenantID + "\n    display_name: " + displayName +
		"\n    cloud: global\n    initial_domain: " + InitialDomain + "\n    site: site-a\n"
}

// HugeDisplayName is a one-tenant inventory whose display name is n bytes.
func HugeDisplayName(n int) []byte {
	return []byte("tenants:\n" + Tenant(strings.Repeat("A", n)))
}

// FullTenant is a realistic, fully populated inventory entry (every field
// and override set, five SMTP domains, three SPN hosts, a comment), the
// largest an operator plausibly writes; i makes its id and names unique.
func FullTenant(i int) string {
	name := fmt.Sprintf("tenant%05d", i)
	return fmt.Sprintf(`  # %[1]s: hybrid with the on-premises organisation in the %[1]s data centre
  - id: 11111111-1111-4111-8111-%012[2]d
    display_name: Contoso Pharmaceuticals Europe %[2]05d (Production)
    cloud: global
    initial_domain: %[1]s.onmicrosoft.com
    routing_domain: %[1]s.mail.onmicrosoft.com
    smtp_domains: [%[1]s.com, %[1]s.co.uk, %[1]s.de, mail.%[1]s.com, %[1]s-research.com]
    site: site-westeurope-01
    mode: dedicated-app
    lync_site: site-westeurope-01
    credential: default-westeurope
    overrides:
      organization_guid: 22222222-2222-4222-8222-%012[2]d
      exchange_online_host: outlook.office365.com
      onprem_autodiscover_url: https://autodiscover.%[1]s.com/autodiscover/autodiscover.svc
      onprem_ews_external_url: https://mail.%[1]s.com/ews/exchange.asmx
      spn_hosts: [mail.%[1]s.com, autodiscover.%[1]s.com, owa.%[1]s.com]
      lync_proxy_fqdn: sipfed.online.lync.com
      onprem_mailbox: hybrid-test-mailbox@%[1]s.com
      cloud_mailbox: hybrid-test-mailbox@%[1]s.onmicrosoft.com

`, name, i)
}

// FullInventory is n FullTenant entries.
func FullInventory(n int) []byte {
	var b strings.Builder
	b.WriteString("tenants:\n")
	for i := 1; i <= n; i++ {
		b.WriteString(FullTenant(i))
	}
	return []byte(b.String())
}

// ANSIDisplayName clears the screen and homes the cursor (ESC [2J ESC [H),
// then writes a reassuring message over whatever the operator was reading.
const ANSIDisplayName = "Contoso\x1b[2J\x1b[Hall tenants verified\r"

// PassphraseKey is a codec key an operator might type instead of
// generating one: 32 bytes of ASCII text, base64-encoded so that it
// passes a length check.
const PassphraseKey = "Y29ycmVjdCBob3JzZSBiYXR0ZXJ5IHN0YXBsZSAxMjM=" // "correct horse battery staple 123"
