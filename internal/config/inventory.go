package config

import (
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/hybridflow/hybridflow/internal/cloud"
)

// Inventory is the validated list of tenants to configure.
type Inventory struct {
	// File is the path the inventory was read from, for messages.
	File    string   `yaml:"-" json:"-"`
	Tenants []Tenant `yaml:"tenants" json:"tenants"`
}

// Tenant is one Microsoft 365 tenant and the on-premises organisation paired
// with it. Values are normalised on parse: GUIDs, domains and the cloud name
// are lower case (the cloud alias 21vianet becomes china), so that
// deterministic workflow IDs and comparisons do not depend on how the
// operator typed them.
//
// The yaml and json tags let a Tenant travel as workflow input and be written
// back out; decode inventories only with ParseInventory, which validates.
type Tenant struct {
	ID            string   `yaml:"id" json:"id"`
	DisplayName   string   `yaml:"display_name" json:"display_name"`
	Cloud         string   `yaml:"cloud" json:"cloud"`
	InitialDomain string   `yaml:"initial_domain" json:"initial_domain"`
	RoutingDomain string   `yaml:"routing_domain,omitempty" json:"routing_domain,omitempty"` // "" = discover
	SMTPDomains   []string `yaml:"smtp_domains,omitempty" json:"smtp_domains,omitempty"`     // empty = discover
	Site          string   `yaml:"site" json:"site"`
	// ModeSetting is the mode as configured ("" = auto); use Mode().
	ModeSetting string `yaml:"mode,omitempty" json:"mode,omitempty"`
	LyncSite    string `yaml:"lync_site,omitempty" json:"lync_site,omitempty"`
	// Credential names an entry of the worker config's credentials; "" lets
	// the worker use its own default.
	Credential string    `yaml:"credential,omitempty" json:"credential,omitempty"`
	Overrides  Overrides `yaml:"overrides,omitempty" json:"overrides,omitempty"`
}

// Overrides replace values that are normally discovered, or that Microsoft
// has not confirmed, for one tenant. Empty fields mean "discover / use the
// cloud's default".
type Overrides struct {
	OrganizationGUID      string   `yaml:"organization_guid,omitempty" json:"organization_guid,omitempty"`
	ExchangeOnlineHost    string   `yaml:"exchange_online_host,omitempty" json:"exchange_online_host,omitempty"`
	OnPremAutodiscoverURL string   `yaml:"onprem_autodiscover_url,omitempty" json:"onprem_autodiscover_url,omitempty"`
	OnPremEWSExternalURL  string   `yaml:"onprem_ews_external_url,omitempty" json:"onprem_ews_external_url,omitempty"`
	SPNHosts              []string `yaml:"spn_hosts,omitempty" json:"spn_hosts,omitempty"`
	LyncProxyFQDN         string   `yaml:"lync_proxy_fqdn,omitempty" json:"lync_proxy_fqdn,omitempty"`
	// OnPremMailbox and CloudMailbox are the -Mailbox arguments of
	// Test-OAuthConnectivity in each direction.
	OnPremMailbox string `yaml:"onprem_mailbox,omitempty" json:"onprem_mailbox,omitempty"`
	CloudMailbox  string `yaml:"cloud_mailbox,omitempty" json:"cloud_mailbox,omitempty"`
	// LegacyFirstPartyBlocked states whether Exchange Online still accepts
	// EWS through the shared first-party service principal. Only GCC's
	// status is inferred (it uses the worldwide endpoints, so it is taken
	// as blocked like the worldwide cloud) and may be set here.
	LegacyFirstPartyBlocked *bool `yaml:"legacy_first_party_blocked,omitempty" json:"legacy_first_party_blocked,omitempty"`
}

// Mode is how a tenant's OAuth trust is established.
type Mode string

const (
	// ModeAuto picks the dedicated application when at least one on-prem
	// Mailbox server has the required build; otherwise the shared
	// first-party key where Exchange Online still accepts it, and a pause
	// (LegacyPathBlocked) where it does not.
	ModeAuto Mode = "auto"
	// ModeDedicatedApp always uses the dedicated Exchange hybrid application.
	ModeDedicatedApp Mode = "dedicated-app"
	// ModeLegacyFirstParty uploads the key to the shared first-party service
	// principal; refused (LegacyPathBlocked) where Exchange Online blocks
	// that path for EWS (worldwide, GCC, 21Vianet since October 2025).
	ModeLegacyFirstParty Mode = "legacy-first-party"
)

var modes = []string{string(ModeAuto), string(ModeDedicatedApp), string(ModeLegacyFirstParty)}

// Mode returns the tenant's mode with the default applied.
func (t Tenant) Mode() Mode {
	if t.ModeSetting == "" {
		return ModeAuto
	}
	return Mode(t.ModeSetting)
}

// LookupByID finds a tenant by GUID, ignoring case.
func (inv *Inventory) LookupByID(id string) (Tenant, bool) {
	for _, t := range inv.Tenants {
		if strings.EqualFold(t.ID, id) {
			return t, true
		}
	}
	return Tenant{}, false
}

// LoadInventory reads and validates an inventory file. A validation failure
// is a Problems error naming every problem with path:line. No more than
// MaxInventoryBytes+1 bytes are read.
func LoadInventory(path string) (*Inventory, error) {
	data, err := readCapped(path, MaxInventoryBytes, inventoryWhat, inventoryHint)
	var ps Problems
	if errors.As(err, &ps) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	return ParseInventory(path, data)
}

// ParseInventory validates inventory YAML; file is used only in problem
// messages. On any problem it returns nil and a Problems error. Data
// larger than MaxInventoryBytes, a YAML alias or an over-long string is
// refused before any tenant is decoded.
func ParseInventory(file string, data []byte) (*Inventory, error) {
	d := &decoder{file: file}
	inv := &Inventory{File: file}
	if !d.sizeOK(data, MaxInventoryBytes, inventoryWhat, inventoryHint) {
		return nil, d.err()
	}
	root := d.parse(data)
	if root != nil && !d.guard(root, maxInventoryString) {
		return nil, d.err()
	}
	// A document of only a comment, "~" or an anchor ("&a") has a null
	// root: as empty as no document, and it must not pass as an
	// inventory (nil, nil) either.
	if root == nil || isNull(root) {
		if len(d.probs) == 0 {
			d.addf(1, "tenants", "the inventory is empty; list at least one tenant under tenants:")
		}
		return nil, d.err()
	}
	top, ok := d.mapping(field{node: root}, "tenants")
	if !ok {
		return nil, d.err()
	}
	tf := top.get("tenants")
	items := d.list(tf)
	if !tf.present() || (tf.node.Kind == yaml.SequenceNode && len(tf.node.Content) == 0) {
		d.errf(tf, "no tenants; list at least one")
	}
	type seenAt struct {
		line int
		path string
	}
	seen := map[string]seenAt{}
	for _, item := range items {
		t, idf, ok := d.tenant(item)
		inv.Tenants = append(inv.Tenants, t)
		if !ok {
			continue
		}
		if first, dup := seen[t.ID]; dup {
			d.errf(idf, "duplicate tenant id %s (first at %s:%d, %s)", t.ID, file, first.line, first.path)
			continue
		}
		seen[t.ID] = seenAt{idf.line(), idf.path}
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	return inv, nil
}

// tenant decodes one inventory entry. It returns the id field and whether the
// id is valid, for the duplicate check.
func (d *decoder) tenant(item field) (Tenant, field, bool) {
	var t Tenant
	fs, ok := d.mapping(item, "id", "display_name", "cloud", "initial_domain", "routing_domain",
		"smtp_domains", "site", "mode", "lync_site", "credential", "overrides")
	idf := fs.get("id")
	if !ok {
		if item.present() {
			return t, idf, false
		}
		d.errf(item, "empty tenant entry")
		return t, idf, false
	}

	idOK := false
	if id, ok := d.required(idf); ok && d.check(idf, guidMsg(id)) {
		t.ID, idOK = strings.ToLower(id), true
	}
	dnf := fs.get("display_name")
	if name, ok := d.required(dnf); ok && d.check(dnf, displayNameMsg(name)) {
		t.DisplayName = name
	}

	// The cloud package owns cloud names, aliases (21vianet) and domain
	// suffixes; the stored name is canonical so search attributes and
	// workflow inputs never carry an alias.
	cf := fs.get("cloud")
	var prof cloud.Profile
	cloudOK := false
	if c, ok := d.required(cf); ok {
		if p, err := cloud.Lookup(c); err == nil {
			prof, cloudOK = p, true
			t.Cloud = string(p.Name)
		} else {
			d.errf(cf, "unknown cloud %q (valid: %s; alias 21vianet = china)", c, strings.Join(cloud.Names(), ", "))
		}
	}

	// Microsoft issues initial and routing domains as exactly one label in
	// front of the cloud's suffix; anything else is a typo or the domains
	// swapped, which would point connectors at the wrong place.
	suffixRule := func(f field, dom, suffix, what string) {
		if !cloudOK {
			return
		}
		prefix, found := strings.CutSuffix(dom, "."+suffix)
		if !found || prefix == "" || strings.Contains(prefix, ".") {
			d.errf(f, "%q is not a valid %s domain for cloud %s (want <name>.%s)", dom, what, t.Cloud, suffix)
		}
	}
	idom := fs.get("initial_domain")
	if v, ok := d.required(idom); ok && d.check(idom, domainMsg(v)) {
		t.InitialDomain = strings.ToLower(v)
		suffixRule(idom, t.InitialDomain, prof.InitialSuffix, "initial")
	}
	rdom := fs.get("routing_domain")
	if v, ok := d.optional(rdom); ok && d.check(rdom, domainMsg(v)) {
		t.RoutingDomain = strings.ToLower(v)
		suffixRule(rdom, t.RoutingDomain, prof.RoutingSuffix, "routing")
	}
	t.SMTPDomains = d.domainList(fs.get("smtp_domains"), func(f field, dom string) {
		// The cloud-to-on-prem connector targets on-prem SMTP domains only
		// (docs/microsoft-behaviour.md, "The documented steps"); the initial or routing domain there would loop
		// mail and free/busy back to the cloud.
		if cloudOK && (prof.IsInitialDomain(dom) || prof.IsRoutingDomain(dom)) {
			d.errf(f, "%q is a Microsoft 365 domain; smtp_domains lists the on-premises SMTP domains only", dom)
		}
	})

	sf := fs.get("site")
	if v, ok := d.required(sf); ok && d.check(sf, siteMsg(v)) {
		t.Site = v
	}
	mf := fs.get("mode")
	if v, _ := d.optional(mf); v != "" {
		if m := strings.ToLower(v); contains(modes, m) {
			t.ModeSetting = m
		} else {
			d.errf(mf, "unknown mode %q (valid: %s)", v, strings.Join(modes, ", "))
		}
	}
	lf := fs.get("lync_site")
	if v, ok := d.optional(lf); ok && d.check(lf, siteMsg(v)) {
		t.LyncSite = v
	}
	crf := fs.get("credential")
	if v, ok := d.optional(crf); ok {
		if strings.HasPrefix(v, "env:") || strings.HasPrefix(v, "file:") {
			d.errf(crf, "names a credential of the worker config (e.g. default), not a reference; define the reference there")
		} else if d.check(crf, nameMsg(v)) {
			t.Credential = v
		}
	}
	t.Overrides = d.overrides(fs.get("overrides"), t.Cloud)
	return t, idf, idOK
}

func (d *decoder) overrides(f field, cloudName string) Overrides {
	var o Overrides
	fs, ok := d.mapping(f, "organization_guid", "exchange_online_host", "onprem_autodiscover_url",
		"onprem_ews_external_url", "spn_hosts", "lync_proxy_fqdn", "onprem_mailbox", "cloud_mailbox", "legacy_first_party_blocked")
	if !ok {
		return o
	}
	set := func(key string, dst *string, validate func(string) string, lower bool) {
		f := fs.get(key)
		v, ok := d.optional(f)
		if !ok || !d.check(f, validate(v)) {
			return
		}
		if lower {
			v = strings.ToLower(v)
		}
		*dst = v
	}
	https := func(s string) string { return urlMsg(s, "https") }
	set("organization_guid", &o.OrganizationGUID, guidMsg, true)
	set("exchange_online_host", &o.ExchangeOnlineHost, domainMsg, true)
	set("onprem_autodiscover_url", &o.OnPremAutodiscoverURL, https, false)
	set("onprem_ews_external_url", &o.OnPremEWSExternalURL, https, false)
	o.SPNHosts = d.domainList(fs.get("spn_hosts"), nil)
	set("lync_proxy_fqdn", &o.LyncProxyFQDN, domainMsg, true)
	set("onprem_mailbox", &o.OnPremMailbox, emailMsg, false)
	set("cloud_mailbox", &o.CloudMailbox, emailMsg, false)
	lf := fs.get("legacy_first_party_blocked")
	if v, ok := d.optional(lf); ok {
		switch lv := strings.ToLower(v); {
		case lv != "true" && lv != "false":
			d.errf(lf, "%q: use true or false", v)
		case cloudName != "" && cloudName != string(cloud.GCC):
			// Microsoft documents the path's status in the other clouds.
			d.errf(lf, "only a GCC tenant's first-party path status is unconfirmed and can be set; cloud %s follows Microsoft's documents", cloudName)
		default:
			b := strings.EqualFold(v, "true")
			o.LegacyFirstPartyBlocked = &b
		}
	}
	return o
}

// domainList decodes a list of DNS names, lower-cased, refusing repeats;
// extra, when set, applies a further rule to each valid name.
func (d *decoder) domainList(f field, extra func(field, string)) []string {
	var out []string
	firstAt := map[string]int{}
	for _, item := range d.list(f) {
		v, ok := d.optional(item)
		if !ok {
			if !item.present() {
				d.errf(item, "empty entry")
			}
			continue
		}
		if !d.check(item, domainMsg(v)) {
			continue
		}
		v = strings.ToLower(v)
		if line, dup := firstAt[v]; dup {
			d.errf(item, "%q listed twice (first at line %d)", v, line)
			continue
		}
		firstAt[v] = item.line()
		if extra != nil {
			extra(item, v)
		}
		out = append(out, v)
	}
	return out
}
