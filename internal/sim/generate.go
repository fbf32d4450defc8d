package sim

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/hybridflow/hybridflow/internal/cloud"
)

// generateEpoch is the clock generation starts from when the world pins
// none: a generated world must not depend on the day it is loaded.
var generateEpoch = time.Date(2026, time.November, 1, 0, 0, 0, 0, time.UTC)

// Exchange builds the generator gives servers (the minimum builds are in
// docs/microsoft-behaviour.md, "Mode choice and mixed builds").
const (
	// GenModernBuild is Exchange 2019 CU15 with the April 2025 hotfix: it
	// may use the dedicated hybrid application.
	GenModernBuild = "15.2.1748.24"
	// GenOldBuild is Exchange 2019 CU14 before the April 2025 hotfix
	// (15.2.1544.25): such an organisation stays on the first-party path.
	GenOldBuild = "15.2.1544.4"
	// GenLegacyBuild is Exchange 2013 CU2, older than 2013 SP1
	// (15.0.847.32): its presence requires an availability address space.
	GenLegacyBuild = "15.0.712.24"
)

// Well-known application and app role IDs the generated directories carry.
const (
	genGraphAppID             = "00000003-0000-0000-c000-000000000000"
	genRoleFullAccessAsApp    = "dc890d15-9560-4a4c-9b7f-a736ec74ec40"
	genRoleManageAsApp        = "dc50a0fb-09a3-484d-be87-e023b12c6440"
	genRoleAppReadWriteAll    = "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9"
	genRoleDomainReadAll      = "dbb9058a-0e50-45d7-ae91-66909b5d4664"
	genFirstPartyDisplayName  = "Office 365 Exchange Online"
	genGraphDisplayName       = "Microsoft Graph"
	genLOBAppDisplayName      = "Fabrikam HR Sync"
	genForeignCertSubject     = "Fabrikam Partner Signing"
	genCertPoolSize           = 4
	genMaxTenants             = 100000
	genOnPremIOCName          = "ExchangeHybridOnPremisesToOnline"
	genPartnerAppName         = "Exchange Online"
	genDefaultPrefix          = "tenant"
	genAuthCertValidityBefore = 2 // years before the epoch the auth certificate was made
	genAuthCertValidityYears  = 5
)

var genPrefixRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}$`)

func (g GenerateSpec) check() error {
	var errs []error
	if g.Tenants < 1 || g.Tenants > genMaxTenants {
		errs = append(errs, fmt.Errorf("tenants must be between 1 and %d, got %d", genMaxTenants, g.Tenants))
	}
	if g.Prefix != "" && !genPrefixRE.MatchString(g.Prefix) {
		errs = append(errs, fmt.Errorf("prefix %q must be a lower-case DNS label starting with a letter", g.Prefix))
	}
	if g.Sites < 0 {
		errs = append(errs, fmt.Errorf("sites must not be negative, got %d", g.Sites))
	}
	for name, f := range map[string]float64{
		"legacy_servers": g.LegacyServers, "old_builds": g.OldBuilds, "foreign_keys": g.ForeignKeys,
		"expired_keys": g.ExpiredKeys, "half_configured": g.HalfConfigured, "hcw_names": g.HCWNames,
	} {
		if f < 0 || f > 1 || math.IsNaN(f) {
			errs = append(errs, fmt.Errorf("%s must be a fraction between 0 and 1, got %v", name, f))
		}
	}
	for _, c := range g.Clouds {
		if _, err := cloud.Lookup(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// genVariations says which variations one tenant gets.
type genVariations struct {
	legacyServer, oldBuilds, foreignKey, expiredKey, halfConfigured, hcwNames bool
}

// GenerateTenants makes spec.Tenants tenants. The same spec, seed and now
// always give the same tenants, byte for byte once dumped: every random
// choice comes from seed, and time from now (generateEpoch when zero),
// never from the wall clock. Variation fractions are exact counts
// (rounded, at least one when the fraction is not zero) spread over the
// tenants by seeded permutations, so a 20-tenant demo gets what it asks
// for. Tenants are built in parallel from per-tenant random streams.
func GenerateTenants(spec GenerateSpec, seed int64, now time.Time) ([]*Tenant, error) {
	if err := spec.check(); err != nil {
		return nil, err
	}
	if spec.Prefix == "" {
		spec.Prefix = genDefaultPrefix
	}
	if spec.Sites == 0 {
		spec.Sites = 1
	}
	if len(spec.Clouds) == 0 {
		spec.Clouds = []string{string(cloud.Global)}
	}
	base := now.UTC()
	if now.IsZero() {
		base = generateEpoch
	}
	n := spec.Tenants
	master := rand.New(rand.NewSource(seed))
	vars := make([]genVariations, n)
	pick := func(frac float64, set func(v *genVariations)) {
		k := int(math.Round(frac * float64(n)))
		if frac > 0 && k == 0 {
			k = 1
		}
		for _, i := range master.Perm(n)[:k] {
			set(&vars[i])
		}
	}
	pick(spec.LegacyServers, func(v *genVariations) { v.legacyServer = true })
	pick(spec.OldBuilds, func(v *genVariations) { v.oldBuilds = true })
	pick(spec.ForeignKeys, func(v *genVariations) { v.foreignKey = true })
	pick(spec.ExpiredKeys, func(v *genVariations) { v.expiredKey = true })
	pick(spec.HalfConfigured, func(v *genVariations) { v.halfConfigured = true })
	pick(spec.HCWNames, func(v *genVariations) { v.hcwNames = true })

	// Foreign and expired keys come from small shared pools: their
	// thumbprints only need to differ from the tenants' own certificates,
	// and signing a certificate costs about a millisecond.
	var pools genPools
	if spec.ForeignKeys > 0 {
		for j := range pools.foreign {
			pools.foreign[j] = NewCertificate(genForeignCertSubject, master.Int63()+1, base.AddDate(-1, 0, 0), base.AddDate(2, 0, 0))
		}
	}
	if spec.ExpiredKeys > 0 {
		for j := range pools.expired {
			pools.expired[j] = NewCertificate(AuthCertificateSubject, master.Int63()+1, base.AddDate(-6, 0, 0), base.AddDate(-1, 0, 0))
		}
	}
	streamSeed := master.Int63()

	out := make([]*Tenant, n)
	workers := min(runtime.GOMAXPROCS(0), n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r := rand.New(rand.NewSource(splitmix(streamSeed + int64(i))))
				out[i] = genTenant(&spec, i, r, base, vars[i], &pools)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return out, nil
}

type genPools struct {
	foreign, expired [genCertPoolSize]*ExchangeCertificate
}

// splitmix decorrelates neighbouring per-tenant seeds (math/rand sources
// seeded with i and i+1 would otherwise start alike).
func splitmix(x int64) int64 {
	z := uint64(x) + 0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return int64(z ^ (z >> 31))
}

// genGUID is a version-4 GUID drawn from r.
func genGUID(r *rand.Rand) string {
	a, b := r.Uint64(), r.Uint64()
	a = a&^0xF000 | 0x4000     // version 4 in bits 12-15 of the third group
	b = b&^(0xC<<60) | 0x8<<60 // RFC 4122 variant
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", a>>32, (a>>16)&0xFFFF, a&0xFFFF, b>>48, b&0xFFFFFFFFFFFF)
}

func genTenant(spec *GenerateSpec, i int, r *rand.Rand, base time.Time, v genVariations, pools *genPools) *Tenant {
	num := i + 1
	label := fmt.Sprintf("%s%d", spec.Prefix, num)
	p := cloud.MustLookup(spec.Clouds[i%len(spec.Clouds)])
	initial := label + "." + p.InitialSuffix
	routing := p.RoutingDomain(initial)
	smtp := label + ".example.com"
	tenantID := genGUID(r)

	t := &Tenant{
		ID:            tenantID,
		DisplayName:   strings.ToUpper(spec.Prefix[:1]) + spec.Prefix[1:] + fmt.Sprint(" ", num),
		Cloud:         string(p.Name),
		InitialDomain: initial,
		Site:          fmt.Sprintf("site-%d", i%spec.Sites+1),
	}

	// Entra.
	t.Entra.Domains = []Domain{
		{ID: initial, IsInitial: true, IsVerified: true},
		{ID: routing, IsVerified: true},
		{ID: smtp, IsDefault: true, IsVerified: true},
	}
	exo := &ServicePrincipal{
		ID: genGUID(r), AppID: cloud.FirstPartyAppID, DisplayName: genFirstPartyDisplayName,
		ServicePrincipalNames: []string{
			cloud.FirstPartyAppID,
			cloud.FirstPartyAppID + "/" + p.ExchangeOnlineHost,
			"https://" + p.ExchangeOnlineHost + "/",
		},
		AppRoles: []AppRole{
			{ID: genRoleFullAccessAsApp, Value: "full_access_as_app"},
			{ID: genRoleManageAsApp, Value: "Exchange.ManageAsApp"},
		},
	}
	graphSP := &ServicePrincipal{
		ID: genGUID(r), AppID: genGraphAppID, DisplayName: genGraphDisplayName,
		ServicePrincipalNames: []string{genGraphAppID, "https://" + p.GraphHost + "/"},
		AppRoles: []AppRole{
			{ID: genRoleAppReadWriteAll, Value: "Application.ReadWrite.All"},
			{ID: genRoleDomainReadAll, Value: "Domain.Read.All"},
		},
	}
	lobApp := &Application{ID: genGUID(r), AppID: genGUID(r), DisplayName: genLOBAppDisplayName, SignInAudience: "AzureADMyOrg",
		RequiredResourceAccess: []RequiredResourceAccess{{ResourceAppID: genGraphAppID, ResourceAccess: []ResourceAccess{{ID: genRoleDomainReadAll, Type: "Role"}}}}}
	lobSP := &ServicePrincipal{ID: genGUID(r), AppID: lobApp.AppID, DisplayName: lobApp.DisplayName, ServicePrincipalNames: []string{lobApp.AppID}}
	t.Entra.Applications = []*Application{lobApp}
	t.Entra.ServicePrincipals = []*ServicePrincipal{exo, graphSP, lobSP}
	t.Entra.AppRoleAssignments = []*AppRoleAssignment{{ID: genGUID(r), PrincipalID: lobSP.ID, ResourceID: graphSP.ID, AppRoleID: genRoleDomainReadAll}}

	// On-prem Exchange.
	build := GenModernBuild
	if v.oldBuilds {
		build = GenOldBuild
	}
	on := &t.OnPrem
	on.OrganizationGUID = genGUID(r)
	on.Servers = []ExchangeServer{{Name: "EX01", Version: build, Roles: "Mailbox"}, {Name: "EX02", Version: build, Roles: "Mailbox"}}
	if v.oldBuilds && LegacyFirstPartyBlockedByDefault(p.Name, base) {
		// Where Exchange Online blocks the shared first-party path, an
		// organisation with no server on the hotfix could only ever pause.
		// The variation there is mixed builds: EX01 updated, EX02 not,
		// which Microsoft's script (and the product) run on the dedicated
		// application while EX02 waits for its update.
		on.Servers[0].Version = GenModernBuild
	}
	if v.legacyServer {
		on.Servers = append(on.Servers, ExchangeServer{Name: "EX2013", Version: GenLegacyBuild, Roles: "Mailbox, ClientAccess"})
	}
	on.AcceptedDomains = []AcceptedDomain{{DomainName: smtp, Default: true}, {DomainName: routing}}
	for _, s := range on.Servers {
		in := "https://" + strings.ToLower(s.Name) + "." + smtp
		ext := "https://mail." + smtp
		on.VirtualDirectories = append(on.VirtualDirectories,
			VirtualDirectory{Kind: "WebServices", Server: s.Name, InternalURL: in + "/EWS/Exchange.asmx", ExternalURL: ext + "/EWS/Exchange.asmx"},
			VirtualDirectory{Kind: "Mapi", Server: s.Name, InternalURL: in + "/mapi", ExternalURL: ext + "/mapi"},
			VirtualDirectory{Kind: "OAB", Server: s.Name, InternalURL: in + "/OAB", ExternalURL: ext + "/OAB"},
			VirtualDirectory{Kind: "Autodiscover", Server: s.Name, InternalURL: in + "/Autodiscover/Autodiscover.xml", ExternalURL: "https://autodiscover." + smtp + "/Autodiscover/Autodiscover.xml"},
		)
	}
	on.PartnerApplications = []*PartnerApplication{{Name: genPartnerAppName, ApplicationIdentifier: cloud.FirstPartyAppID, Realm: "", Enabled: false}}
	authCert := NewCertificate(AuthCertificateSubject, r.Int63()+1, base.AddDate(-genAuthCertValidityBefore, 0, 0), base.AddDate(genAuthCertValidityYears-genAuthCertValidityBefore, 0, 0))
	on.Certificates = []*ExchangeCertificate{authCert}
	on.AuthConfig.CurrentCertificateThumbprint = authCert.Thumbprint
	on.Mailboxes = []string{"admin@" + smtp}

	// Exchange Online.
	t.Online.OrganizationGUID = genGUID(r)
	t.Online.AcceptedDomains = []AcceptedDomain{{DomainName: smtp, Default: true}, {DomainName: initial}, {DomainName: routing}}
	t.Online.Mailboxes = []string{"admin@" + initial}

	// Variations.
	if v.foreignKey {
		exo.KeyCredentials = append(exo.KeyCredentials, genKey(r, pools.foreign[r.Intn(genCertPoolSize)]))
	}
	if v.expiredKey {
		exo.KeyCredentials = append(exo.KeyCredentials, genKey(r, pools.expired[r.Intn(genCertPoolSize)]))
	}
	if v.hcwNames {
		on.AuthServers = genAuthServers(t, p, true)
	}
	if v.halfConfigured {
		switch r.Intn(3) {
		case 0: // someone ran the on-prem half of the procedure
			if on.AuthServers == nil {
				on.AuthServers = genAuthServers(t, p, false)
			}
			on.PartnerApplications[0].Enabled = true
		case 1: // one of the on-prem hosts was registered by hand
			exo.ServicePrincipalNames = append(exo.ServicePrincipalNames, p.SPNsForHosts([]string{"mail." + smtp})...)
		case 2: // the on-prem → cloud connector already exists
			on.IntraOrganizationConnectors = []*IntraOrgConnector{{
				Name: genOnPremIOCName, DiscoveryEndpoint: p.AutodiscoverURL(), TargetAddressDomains: []string{routing}, Enabled: true,
			}}
		}
	}
	return t
}

// genAuthServers are the step-1 auth servers, named as a manual setup or
// as the Hybrid Configuration Wizard names them.
func genAuthServers(t *Tenant, p cloud.Profile, hcw bool) []*AuthServer {
	acs, evo := p.ACSName, p.EvoSTSName
	if hcw {
		acs, evo = "ACS - "+t.ID, "EvoSts - "+t.ID
	}
	return []*AuthServer{
		{Name: acs, Type: "MicrosoftACS", AuthMetadataURL: p.ACSMetadataURL(t.InitialDomain), Realm: t.ID, Enabled: true},
		{Name: evo, Type: "AzureAD", AuthMetadataURL: p.EvoSTSMetadataURL(t.InitialDomain), Realm: t.ID, Enabled: true},
	}
}

// genKey is a key credential for a certificate as Graph stores it.
func genKey(r *rand.Rand, c *ExchangeCertificate) KeyCredential {
	return KeyCredential{
		KeyID: genGUID(r), CustomKeyIdentifier: c.Thumbprint, DisplayName: c.Subject,
		Type: "AsymmetricX509Cert", Usage: "Verify",
		StartDateTime: c.NotBefore, EndDateTime: c.NotAfter, Key: c.DER,
	}
}
