package sim

// On-prem Exchange cmdlets (side OnPrem), served through the PowerShell
// host protocol (pshost.go). Rows carry the property names Exchange prints
// and are already wire-shaped, as the bootstrap script renders them:
// DateTime as RFC 3339 UTC text, byte arrays as base64, lists as lists.
//
// Parameters are checked the way PowerShell binds them: an unknown
// parameter name is a ParameterBindingException, so a typo in an activity
// fails in tests instead of being silently ignored. Test-OAuthConnectivity
// lives in oauth.go; the Exchange Online cmdlets in cmdlets_online.go.

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hybridflow/hybridflow/internal/certs"
	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/exchange"
)

func init() {
	for name, f := range map[string]cmdletFunc{
		"Get-AuthServer":                     onpremGetAuthServer,
		"New-AuthServer":                     onpremNewAuthServer,
		"Set-AuthServer":                     onpremSetAuthServer,
		"Remove-AuthServer":                  onpremRemoveAuthServer,
		"Get-PartnerApplication":             onpremGetPartnerApplication,
		"Set-PartnerApplication":             onpremSetPartnerApplication,
		"Get-AuthConfig":                     onpremGetAuthConfig,
		"Set-AuthConfig":                     onpremSetAuthConfig,
		"Get-ExchangeCertificate":            onpremGetExchangeCertificate,
		"New-ExchangeCertificate":            onpremNewExchangeCertificate,
		"Get-AvailabilityAddressSpace":       onpremGetAddressSpace,
		"Add-AvailabilityAddressSpace":       onpremAddAddressSpace,
		"Remove-AvailabilityAddressSpace":    onpremRemoveAddressSpace,
		"Get-AcceptedDomain":                 onpremGetAcceptedDomain,
		"Get-WebServicesVirtualDirectory":    onpremVirtualDirectories("WebServices", "EWS"),
		"Get-MapiVirtualDirectory":           onpremVirtualDirectories("Mapi", "mapi"),
		"Get-OABVirtualDirectory":            onpremVirtualDirectories("OAB", "OAB"),
		"Get-AutodiscoverVirtualDirectory":   onpremVirtualDirectories("Autodiscover", "Autodiscover"),
		"Get-ExchangeServer":                 onpremGetExchangeServer,
		"Get-OrganizationConfig":             onpremGetOrganizationConfig,
		"Get-IntraOrganizationConfiguration": onpremGetIntraOrganizationConfiguration,
		"Get-SettingOverride":                onpremGetSettingOverride,
		"New-SettingOverride":                onpremNewSettingOverride,
		"Remove-SettingOverride":             onpremRemoveSettingOverride,
		"Get-ExchangeDiagnosticInfo":         onpremGetExchangeDiagnosticInfo,
	} {
		register(OnPrem, name, f)
	}
}

// onpremCommonParams are PowerShell's common parameters (and Exchange's
// -DomainController), which every cmdlet accepts and the simulator ignores.
var onpremCommonParams = []string{"Confirm", "ErrorAction", "WarningAction", "InformationAction", "Verbose", "Debug", "DomainController"}

// onpremBind refuses parameters the cmdlet does not have, as PowerShell's
// parameter binder does.
func onpremBind(p Params, names ...string) *exchange.Error {
	for k := range p {
		known := false
		for _, n := range append(names, onpremCommonParams...) {
			if strings.EqualFold(k, n) {
				known = true
				break
			}
		}
		if !known {
			return invalid("A parameter cannot be found that matches parameter name '%s'.", k)
		}
	}
	return nil
}

// onpremRequire returns a mandatory string parameter.
func onpremRequire(p Params, name string) (string, *exchange.Error) {
	v := strings.TrimSpace(p.String(name))
	if v == "" {
		return "", invalid("Cannot bind argument to parameter '%s' because it is an empty string.", name)
	}
	return v, nil
}

// onpremTime renders a DateTime as the bootstrap does (ISO-8601, UTC).
func onpremTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// onpremParseTime binds a DateTime parameter: the client sends RFC 3339;
// a person typing at a shell would use the other forms.
func onpremParseTime(name, raw string) (time.Time, *exchange.Error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", time.DateOnly, "1/2/2006 3:04:05 PM", "1/2/2006"} {
		if t, err := time.Parse(layout, strings.TrimSpace(raw)); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, invalid("Cannot bind parameter '%s'. Cannot convert value \"%s\" to type \"System.DateTime\".", name, raw)
}

// onpremAbsURL binds a URI parameter.
func onpremAbsURL(name, raw string) (string, *exchange.Error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", invalid("Cannot bind parameter '%s': \"%s\" is not an absolute http(s) URI.", name, raw)
	}
	return u.String(), nil
}

func onpremNoChange(c *Call, identity string) ([]exchange.Row, *exchange.Error) {
	// Exchange writes nothing and says so on the warning stream; the
	// propagation delay must not restart for a no-op.
	c.Warn("The command completed successfully but no settings of '%s' have been modified.", identity)
	return nil, nil
}

func onpremStrings(in []string) []string { return append([]string{}, in...) }

// ---- auth servers (step 1; Set-AuthServer also for the dedicated app) ------

const onpremAuthServerKind = "AuthServer"

func onpremAuthServerType(a *AuthServer) string {
	if a.Type == "" {
		return "MicrosoftACS"
	}
	return a.Type
}

// onpremRealm is the server's realm: the one stored, or for a world that
// leaves it out, the one Exchange would have read from the metadata
// document when the server was created (empty when that fails).
func onpremRealm(t *Tenant, a *AuthServer) string {
	if a.Realm != "" {
		return a.Realm
	}
	realm, err := onpremFetchMetadata(t, onpremAuthServerType(a), a.AuthMetadataURL)
	if err != nil {
		return ""
	}
	return realm
}

func onpremAuthServerRow(t *Tenant, a *AuthServer) exchange.Row {
	return exchange.Row{
		"Identity":              a.Name,
		"Name":                  a.Name,
		"Type":                  onpremAuthServerType(a),
		"AuthMetadataUrl":       a.AuthMetadataURL,
		"Realm":                 onpremRealm(t, a),
		"Enabled":               a.Enabled,
		"ApplicationIdentifier": a.ApplicationIdentifier,
		"DomainName":            onpremStrings(a.DomainName),
	}
}

func onpremFindAuthServer(org *ExchangeOrg, identity string) (int, *AuthServer) {
	for i, a := range org.AuthServers {
		if strings.EqualFold(a.Name, identity) {
			return i, a
		}
	}
	return -1, nil
}

func onpremGetAuthServer(c *Call) ([]exchange.Row, *exchange.Error) {
	if err := onpremBind(c.Params, "Identity"); err != nil {
		return nil, err
	}
	if id := c.Params.String("Identity"); id != "" {
		_, a := onpremFindAuthServer(c.Org, id)
		if a == nil {
			return nil, notFound(onpremAuthServerKind, id)
		}
		return []exchange.Row{onpremAuthServerRow(c.Tenant, a)}, nil
	}
	rows := make([]exchange.Row, 0, len(c.Org.AuthServers))
	for _, a := range c.Org.AuthServers {
		rows = append(rows, onpremAuthServerRow(c.Tenant, a))
	}
	return rows, nil
}

// onpremMetadataHosts are the hosts that serve auth metadata in any cloud;
// New-AuthServer fetches the URL, and anything else is unreachable here.
func onpremMetadataHosts() map[string]bool {
	hosts := map[string]bool{}
	for _, n := range cloud.Names() {
		p := cloud.MustLookup(n)
		hosts[cloud.HostOfURL(p.ACSMetadataURL("x"))] = true
		hosts[cloud.HostOfURL(p.EvoSTSMetadataURL("x"))] = true
	}
	return hosts
}

// onpremFetchMetadata plays New-AuthServer's metadata download: it
// succeeds only for the tenant's own cloud endpoints, naming the tenant by
// its ID (as the Hybrid Configuration Wizard's ACS URL does) or by one of
// its domains (as the manual procedure does), in the document format of
// the server type, and yields the realm (the tenant ID) the document
// names. Failures are AuthMetadataClientException, which Exchange raises
// for every fetch or parse problem.
func onpremFetchMetadata(t *Tenant, typ, raw string) (string, *exchange.Error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return "", invalid("Cannot bind parameter 'AuthMetadataUrl': \"%s\" is not an absolute https URI.", raw)
	}
	fail := func(format string, args ...any) *exchange.Error {
		return &exchange.Error{Type: exchange.TypeAuthMetadata, Message: fmt.Sprintf(format, args...), Category: "InvalidOperation"}
	}
	if !onpremMetadataHosts()[strings.ToLower(u.Hostname())] {
		return "", fail("The metadata document at '%s' could not be downloaded: The remote name could not be resolved: '%s'.", raw, u.Hostname())
	}
	p, perr := oauthProfile(t)
	if perr != nil {
		return "", perr
	}
	domains := []string{t.ID, oauthInitialDomain(t)}
	for _, d := range t.Entra.Domains {
		if d.IsVerified {
			domains = append(domains, d.ID)
		}
	}
	for _, d := range domains {
		if d == "" {
			continue
		}
		acs, evo := oauthSameURL(raw, p.ACSMetadataURL(d)), oauthSameURL(raw, p.EvoSTSMetadataURL(d))
		switch {
		case acs && strings.EqualFold(typ, "AzureAD"), evo && !strings.EqualFold(typ, "AzureAD"):
			return "", fail("The metadata document at '%s' could not be parsed as %s metadata.", raw, typ)
		case acs || evo:
			return t.ID, nil
		}
	}
	return "", fail("The metadata document at '%s' could not be downloaded: The remote server returned an error: (400) Bad Request.", raw)
}

func onpremNewAuthServer(c *Call) ([]exchange.Row, *exchange.Error) {
	if err := onpremBind(c.Params, "Name", "AuthMetadataUrl", "Type", "Enabled"); err != nil {
		return nil, err
	}
	name, err := onpremRequire(c.Params, "Name")
	if err != nil {
		return nil, err
	}
	rawURL, err := onpremRequire(c.Params, "AuthMetadataUrl")
	if err != nil {
		return nil, err
	}
	typ := "MicrosoftACS"
	if c.Params.Has("Type") {
		switch t := c.Params.String("Type"); strings.ToLower(t) {
		case "azuread":
			typ = "AzureAD"
		case "microsoftacs":
		case "adfs", "facebook", "linkedin":
			typ = t
		default:
			return nil, invalid("Cannot bind parameter 'Type'. Cannot convert value \"%s\" to type \"AuthServerType\".", t)
		}
	}
	if _, existing := onpremFindAuthServer(c.Org, name); existing != nil {
		return nil, alreadyExists(onpremAuthServerKind, name)
	}
	realm, err := onpremFetchMetadata(c.Tenant, typ, rawURL)
	if err != nil {
		return nil, err
	}
	// One issuer per realm and type: a second ACS server for the same
	// tenant (say the HCW's "ACS - <guid>" next to "WindowsAzureACS")
	// would make token validation ambiguous, so Exchange refuses it.
	for _, a := range c.Org.AuthServers {
		if strings.EqualFold(a.Realm, realm) && strings.EqualFold(onpremAuthServerType(a), typ) {
			return nil, &exchange.Error{Type: exchange.TypeSameRealmAuthServer,
				Message:  fmt.Sprintf("An auth server with the same realm '%s' already exists: '%s'.", realm, a.Name),
				Category: "InvalidOperation"}
		}
	}
	enabled := true
	if c.Params.Has("Enabled") {
		enabled = c.Params.Bool("Enabled")
	}
	a := &AuthServer{Name: name, Type: typ, AuthMetadataURL: rawURL, Realm: realm, Enabled: enabled, CreatedBy: "client"}
	c.Org.AuthServers = append(c.Org.AuthServers, a)
	c.touch()
	return []exchange.Row{onpremAuthServerRow(c.Tenant, a)}, nil
}

func onpremSetAuthServer(c *Call) ([]exchange.Row, *exchange.Error) {
	if err := onpremBind(c.Params, "Identity", "ApplicationIdentifier", "DomainName", "Enabled"); err != nil {
		return nil, err
	}
	id, err := onpremRequire(c.Params, "Identity")
	if err != nil {
		return nil, err
	}
	_, a := onpremFindAuthServer(c.Org, id)
	if a == nil {
		return nil, notFound(onpremAuthServerKind, id)
	}
	next := *a
	if c.Params.Has("ApplicationIdentifier") {
		next.ApplicationIdentifier = strings.TrimSpace(c.Params.String("ApplicationIdentifier"))
	}
	if c.Params.Has("DomainName") {
		next.DomainName = nil
		for _, d := range c.Params.Strings("DomainName") {
			if d = strings.ToLower(strings.TrimSpace(d)); d != "" {
				next.DomainName = append(next.DomainName, d)
			}
		}
	}
	if c.Params.Has("Enabled") {
		next.Enabled = c.Params.Bool("Enabled")
	}
	if next.ApplicationIdentifier == a.ApplicationIdentifier && next.Enabled == a.Enabled && onpremSameSet(next.DomainName, a.DomainName) {
		return onpremNoChange(c, a.Name)
	}
	*a = next
	c.touch()
	return nil, nil
}

func onpremRemoveAuthServer(c *Call) ([]exchange.Row, *exchange.Error) {
	if err := onpremBind(c.Params, "Identity"); err != nil {
		return nil, err
	}
	id, err := onpremRequire(c.Params, "Identity")
	if err != nil {
		return nil, err
	}
	i, a := onpremFindAuthServer(c.Org, id)
	if a == nil {
		return nil, notFound(onpremAuthServerKind, id)
	}
	c.Org.AuthServers = append(c.Org.AuthServers[:i:i], c.Org.AuthServers[i+1:]...)
	c.touch()
	return nil, nil
}

// onpremSameSet compares lists as sets, case-insensitively.
func onpremSameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		found := false
		for _, y := range b {
			if strings.EqualFold(x, y) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// ---- partner applications (step 2) -----------------------------------------

const onpremPartnerAppKind = "PartnerApplication"

func onpremPartnerAppRow(pa *PartnerApplication) exchange.Row {
	return exchange.Row{
		"Identity":              pa.Name,
		"Name":                  pa.Name,
		"ApplicationIdentifier": pa.ApplicationIdentifier,
		"Realm":                 pa.Realm,
		"Enabled":               pa.Enabled,
	}
}

// onpremFindPartnerApp matches by name, or by application identifier when
// exactly one application has it (how the seed's pipeline addresses it).
func onpremFindPartnerApp(org *ExchangeOrg, identity string) (*PartnerApplication, *exchange.Error) {
	var byAppID []*PartnerApplication
	for _, pa := range org.PartnerApplications {
		if strings.EqualFold(pa.Name, identity) {
			return pa, nil
		}
		if strings.EqualFold(pa.ApplicationIdentifier, identity) {
			byAppID = append(byAppID, pa)
		}
	}
	switch len(byAppID) {
	case 0:
		return nil, notFound(onpremPartnerAppKind, identity)
	case 1:
		return byAppID[0], nil
	}
	return nil, &exchange.Error{Type: "Microsoft.Exchange.Configuration.Tasks.ManagementObjectAmbiguousException",
		Message: fmt.Sprintf("The operation couldn't be performed because '%s' matches multiple entries.", identity), Category: "InvalidArgument"}
}

func onpremGetPartnerApplication(c *Call) ([]exchange.Row, *exchange.Error) {
	if err := onpremBind(c.Params, "Identity"); err != nil {
		return nil, err
	}
	if id := c.Params.String("Identity"); id != "" {
		pa, err := onpremFindPartnerApp(c.Org, id)
		if err != nil {
			return nil, err
		}
		return []exchange.Row{onpremPartnerAppRow(pa)}, nil
	}
	rows := make([]exchange.Row, 0, len(c.Org.PartnerApplications))
	for _, pa := range c.Org.PartnerApplications {
		rows = append(rows, onpremPartnerAppRow(pa))
	}
	return rows, nil
}

func onpremSetPartnerApplication(c *Call) ([]exchange.Row, *exchange.Error) {
	if err := onpremBind(c.Params, "Identity", "Enabled"); err != nil {
		return nil, err
	}
	id, err := onpremRequire(c.Params, "Identity")
	if err != nil {
		return nil, err
	}
	pa, err := onpremFindPartnerApp(c.Org, id)
	if err != nil {
		return nil, err
	}
	if !c.Params.Has("Enabled") || c.Params.Bool("Enabled") == pa.Enabled {
		return onpremNoChange(c, pa.Name)
	}
	pa.Enabled = c.Params.Bool("Enabled")
	c.touch()
	return nil, nil
}

// ---- auth config and certificates (step 3; renewal) ------------------------

func onpremGetAuthConfig(c *Call) ([]exchange.Row, *exchange.Error) {
	if err := onpremBind(c.Params); err != nil {
		return nil, err
	}
	ac := c.Org.AuthConfig
	var effective any
	if ac.NextCertificateEffectiveDate != nil {
		effective = onpremTime(*ac.NextCertificateEffectiveDate)
	}
	return []exchange.Row{{
		"Identity":                      "Auth Configuration",
		"ServiceName":                   cloud.FirstPartyAppID,
		"Realm":                         "",
		"CurrentCertificateThumbprint":  ac.CurrentCertificateThumbprint,
		"NextCertificateThumbprint":     ac.NextCertificateThumbprint,
		"NextCertificateEffectiveDate":  effective,
		"PreviousCertificateThumbprint": ac.PreviousCertificateThumbprint,
	}}, nil
}

func onpremFindCert(org *ExchangeOrg, thumb string) *ExchangeCertificate {
	for _, cert := range org.Certificates {
		if certs.SameThumbprint(cert.Thumbprint, thumb) {
			return cert
		}
	}
	return nil
}

func onpremBadCert(format string, args ...any) *exchange.Error {
	return &exchange.Error{Type: exchange.TypeInvalidCertificate, Message: fmt.Sprintf(format, args...), Category: "InvalidArgument"}
}

// onpremSetAuthConfig implements the three parameter sets Microsoft's
// certificate procedure uses (docs/microsoft-behaviour.md, "The auth
// certificate's life"):
// stage a new certificate, publish it, or clear the previous one.
func onpremSetAuthConfig(c *Call) ([]exchange.Row, *exchange.Error) {
	if err := onpremBind(c.Params, "NewCertificateThumbprint", "NewCertificateEffectiveDate", "SkipImmediateCertificateDeployment", "Force", "PublishCertificate", "ClearPreviousCertificate"); err != nil {
		return nil, err
	}
	stage, publish, clear := c.Params.Has("NewCertificateThumbprint"), c.Params.Bool("PublishCertificate"), c.Params.Bool("ClearPreviousCertificate")
	sets := 0
	for _, b := range []bool{stage, publish, clear} {
		if b {
			sets++
		}
	}
	if sets != 1 {
		return nil, &exchange.Error{Type: exchange.TypeParameterBinding, Message: "Parameter set cannot be resolved using the specified named parameters.", Category: "InvalidArgument"}
	}
	ac := &c.Org.AuthConfig
	now := c.World.Now()
	switch {
	case stage:
		thumb := strings.TrimSpace(c.Params.String("NewCertificateThumbprint"))
		if !certs.ValidThumbprint(thumb) {
			return nil, invalid("Cannot bind parameter 'NewCertificateThumbprint': \"%s\" is not a certificate thumbprint.", thumb)
		}
		// Without a date the new certificate takes effect at once: the
		// emergency path for an expired current certificate.
		effective := now
		if c.Params.Has("NewCertificateEffectiveDate") {
			t, err := onpremParseTime("NewCertificateEffectiveDate", c.Params.String("NewCertificateEffectiveDate"))
			if err != nil {
				return nil, err
			}
			effective = t
		}
		cert := onpremFindCert(c.Org, thumb)
		switch {
		case cert == nil:
			return nil, onpremBadCert("The certificate with thumbprint %s was not found in the local computer's personal certificate store.", thumb)
		case !cert.Exportable:
			return nil, onpremBadCert("The certificate with thumbprint %s has a private key that is not exportable.", thumb)
		case now.Before(cert.NotBefore):
			return nil, onpremBadCert("The certificate with thumbprint %s is not valid until %s.", thumb, onpremTime(cert.NotBefore))
		case now.After(cert.NotAfter):
			return nil, onpremBadCert("The certificate with thumbprint %s expired on %s.", thumb, onpremTime(cert.NotAfter))
		case cert.NotAfter.Before(effective):
			return nil, onpremBadCert("The certificate with thumbprint %s expires on %s, before its effective date %s.", thumb, onpremTime(cert.NotAfter), onpremTime(effective))
		}
		if certs.SameThumbprint(ac.NextCertificateThumbprint, cert.Thumbprint) && ac.NextCertificateEffectiveDate != nil && ac.NextCertificateEffectiveDate.Equal(effective) {
			return onpremNoChange(c, "Auth Configuration")
		}
		ac.NextCertificateThumbprint = cert.Thumbprint
		ac.NextCertificateEffectiveDate = &effective
	case publish:
		if ac.NextCertificateThumbprint == "" {
			return nil, onpremBadCert("There is no next certificate to publish; stage one with -NewCertificateThumbprint first.")
		}
		ac.PreviousCertificateThumbprint = ac.CurrentCertificateThumbprint
		ac.CurrentCertificateThumbprint = ac.NextCertificateThumbprint
		ac.NextCertificateThumbprint, ac.NextCertificateEffectiveDate = "", nil
	case clear:
		if ac.PreviousCertificateThumbprint == "" {
			return onpremNoChange(c, "Auth Configuration")
		}
		ac.PreviousCertificateThumbprint = ""
	}
	c.touch()
	return nil, nil
}

func onpremCertRow(cert *ExchangeCertificate, now time.Time) exchange.Row {
	status := "Valid"
	if now.After(cert.NotAfter) || now.Before(cert.NotBefore) {
		status = "DateInvalid"
	}
	issuer, serial := cert.Subject, ""
	if x, err := x509.ParseCertificate(cert.DER); err == nil {
		issuer = x.Issuer.String()
		serial = strings.ToUpper(x.SerialNumber.Text(16))
	}
	return exchange.Row{
		"Identity":             cert.Thumbprint,
		"Thumbprint":           cert.Thumbprint,
		"Subject":              cert.Subject,
		"Issuer":               issuer,
		"SerialNumber":         serial,
		"NotBefore":            onpremTime(cert.NotBefore),
		"NotAfter":             onpremTime(cert.NotAfter),
		"HasPrivateKey":        true,
		"PrivateKeyExportable": cert.Exportable,
		// IsExportable is the same fact under the name the design brief
		// uses; real Exchange prints only PrivateKeyExportable.
		"IsExportable":  cert.Exportable,
		"IsSelfSigned":  issuer == cert.Subject || strings.EqualFold(issuer, cert.Subject),
		"PublicKeySize": cert.KeySize,
		"Status":        status,
		"RawData":       base64.StdEncoding.EncodeToString(cert.DER),
	}
}

func onpremGetExchangeCertificate(c *Call) ([]exchange.Row, *exchange.Error) {
	if err := onpremBind(c.Params, "Thumbprint", "Identity", "Server"); err != nil {
		return nil, err
	}
	now := c.World.Now()
	thumb := c.Params.String("Thumbprint")
	if thumb == "" {
		thumb = c.Params.String("Identity")
	}
	// Without -Server the shell reads the store of the server it runs on,
	// which the simulator takes to hold every certificate (it is where
	// New-ExchangeCertificate creates them).
	server := strings.TrimSpace(c.Params.String("Server"))
	var srv *ExchangeServer
	if server != "" {
		if srv = onpremFindServer(c.Org, server); srv == nil {
			return nil, notFound("ExchangeServer", server)
		}
		if srv.Unreachable {
			return nil, onpremServerUnreachable(srv.Name)
		}
	}
	held := func(cert *ExchangeCertificate) bool { return srv == nil || !containsFold(cert.MissingOn, srv.Name) }
	if thumb != "" {
		cert := onpremFindCert(c.Org, thumb)
		if cert != nil && !held(cert) {
			cert = nil
		}
		if cert == nil {
			if srv != nil {
				return nil, onpremCertNotOnServer(srv.Name, thumb)
			}
			return nil, notFound("ExchangeCertificate", thumb)
		}
		return []exchange.Row{onpremCertRow(cert, now)}, nil
	}
	rows := make([]exchange.Row, 0, len(c.Org.Certificates))
	for _, cert := range c.Org.Certificates {
		if held(cert) {
			rows = append(rows, onpremCertRow(cert, now))
		}
	}
	return rows, nil
}

// onpremFindServer finds a server by name or by an FQDN whose first label
// is its name, as -Server accepts both.
func onpremFindServer(org *ExchangeOrg, id string) *ExchangeServer {
	host, _, _ := strings.Cut(id, ".")
	for i := range org.Servers {
		if strings.EqualFold(org.Servers[i].Name, id) || strings.EqualFold(org.Servers[i].Name, host) {
			return &org.Servers[i]
		}
	}
	return nil
}

// onpremCertNotOnServer is the error Exchange gives when the server
// answers but holds no certificate with the thumbprint: an RPC error
// raised as InvalidOperationException, which Microsoft's monitoring
// script reads as "reachable, certificate missing".
func onpremCertNotOnServer(server, thumb string) *exchange.Error {
	return &exchange.Error{Type: "System.InvalidOperationException",
		Message:  fmt.Sprintf("A special Rpc error occurs on server %s: The certificate with thumbprint %s was not found.", server, thumb),
		Category: "InvalidOperation"}
}

// onpremServerUnreachable stands for a server that cannot be contacted.
// Exchange's exact exception for it is not in the reference; anything but
// InvalidOperationException means "unreachable" to Microsoft's monitoring
// script, so the simulator raises its own type.
func onpremServerUnreachable(server string) *exchange.Error {
	return &exchange.Error{Type: "HybridFlow.SimulatedServerUnreachableException",
		Message:  fmt.Sprintf("A special Rpc error occurs on server %s: The RPC server is unavailable.", server),
		Category: "ResourceUnavailable"}
}

// onpremSubjectCN extracts the common name from -SubjectName "cn=...".
func onpremSubjectCN(subject string) string {
	for _, part := range strings.Split(subject, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "cn") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// onpremCertSerial derives a serial for a new certificate from the tenant,
// the clock and the store's size: deterministic (worlds replay), distinct
// between tenants and between calls, without a counter in the world model.
func onpremCertSerial(t *Tenant, now time.Time, attempt int) int64 {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s|%d|%d|%d", strings.ToLower(t.ID), now.UnixNano(), len(t.OnPrem.Certificates), attempt)))
	return int64(binary.BigEndian.Uint64(h[:8])>>1) | 1 // positive and non-zero, as X.509 requires
}

func onpremNewExchangeCertificate(c *Call) ([]exchange.Row, *exchange.Error) {
	if err := onpremBind(c.Params, "KeySize", "PrivateKeyExportable", "SubjectName", "DomainName", "Services", "FriendlyName", "Server", "Force"); err != nil {
		return nil, err
	}
	keySize := 2048
	if c.Params.Has("KeySize") {
		n, err := strconv.Atoi(c.Params.String("KeySize"))
		if err != nil {
			return nil, invalid("Cannot bind parameter 'KeySize'. Cannot convert value \"%s\" to type \"System.Int32\".", c.Params.String("KeySize"))
		}
		keySize = n
	}
	if keySize != 2048 {
		// The simulator signs every certificate with one built-in 2048-bit key.
		return nil, invalid("The simulator creates 2048-bit certificates only; -KeySize %d is not supported.", keySize)
	}
	cn := onpremSubjectCN(c.Params.String("SubjectName"))
	if cn == "" {
		if d := c.Params.Strings("DomainName"); len(d) > 0 && strings.TrimSpace(d[0]) != "" {
			cn = strings.TrimSpace(d[0])
		}
	}
	if cn == "" {
		return nil, invalid("Cannot create a certificate without -SubjectName \"cn=...\" or -DomainName.")
	}
	now := c.World.Now()
	var cert *ExchangeCertificate
	for attempt := 0; cert == nil || onpremFindCert(c.Org, cert.Thumbprint) != nil; attempt++ {
		cert = NewCertificate(cn, onpremCertSerial(c.Tenant, now, attempt), now, now.AddDate(5, 0, 0))
	}
	cert.Exportable = c.Params.Bool("PrivateKeyExportable")
	c.Org.Certificates = append(c.Org.Certificates, cert)
	c.touch()
	return []exchange.Row{onpremCertRow(cert, now)}, nil
}

// ---- availability address spaces (step 8) ----------------------------------

const onpremAddressSpaceKind = "AvailabilityAddressSpace"

var onpremAccessMethods = []string{"InternalProxy", "OrgWideFB", "PerUserFB", "OrgWideFBBasic", "OrgWideFBToken", "PublicFolder"}

func onpremAddressSpaceRow(a *AvailabilityAddressSpace) exchange.Row {
	return exchange.Row{
		"Identity":          a.ForestName,
		"Name":              a.ForestName,
		"ForestName":        a.ForestName,
		"AccessMethod":      a.AccessMethod,
		"ProxyUrl":          a.ProxyURL,
		"UseServiceAccount": a.UseServiceAccount,
	}
}

func onpremFindAddressSpace(org *ExchangeOrg, forest string) (int, *AvailabilityAddressSpace) {
	for i, a := range org.AvailabilityAddressSpaces {
		if strings.EqualFold(a.ForestName, forest) {
			return i, a
		}
	}
	return -1, nil
}

func onpremGetAddressSpace(c *Call) ([]exchange.Row, *exchange.Error) {
	if err := onpremBind(c.Params, "Identity"); err != nil {
		return nil, err
	}
	if id := c.Params.String("Identity"); id != "" {
		_, a := onpremFindAddressSpace(c.Org, id)
		if a == nil {
			return nil, notFound(onpremAddressSpaceKind, id)
		}
		return []exchange.Row{onpremAddressSpaceRow(a)}, nil
	}
	rows := make([]exchange.Row, 0, len(c.Org.AvailabilityAddressSpaces))
	for _, a := range c.Org.AvailabilityAddressSpaces {
		rows = append(rows, onpremAddressSpaceRow(a))
	}
	return rows, nil
}

func onpremAddAddressSpace(c *Call) ([]exchange.Row, *exchange.Error) {
	if err := onpremBind(c.Params, "ForestName", "AccessMethod", "ProxyUrl", "UseServiceAccount"); err != nil {
		return nil, err
	}
	forest, err := onpremRequire(c.Params, "ForestName")
	if err != nil {
		return nil, err
	}
	method, err := onpremRequire(c.Params, "AccessMethod")
	if err != nil {
		return nil, err
	}
	canonical := ""
	for _, m := range onpremAccessMethods {
		if strings.EqualFold(m, method) {
			canonical = m
		}
	}
	if canonical == "" {
		return nil, invalid("Cannot bind parameter 'AccessMethod'. Cannot convert value \"%s\" to type \"AvailabilityAccessMethod\".", method)
	}
	proxy := ""
	if c.Params.Has("ProxyUrl") || canonical == "InternalProxy" {
		if proxy, err = onpremAbsURL("ProxyUrl", c.Params.String("ProxyUrl")); err != nil {
			return nil, err
		}
	}
	if _, existing := onpremFindAddressSpace(c.Org, forest); existing != nil {
		return nil, &exchange.Error{Type: exchange.TypeAddressSpaceExists, Message: fmt.Sprintf("An availability address space for forest '%s' already exists.", forest), Category: "ResourceExists"}
	}
	a := &AvailabilityAddressSpace{ForestName: strings.ToLower(forest), AccessMethod: canonical, ProxyURL: proxy, UseServiceAccount: c.Params.Bool("UseServiceAccount")}
	c.Org.AvailabilityAddressSpaces = append(c.Org.AvailabilityAddressSpaces, a)
	c.touch()
	return []exchange.Row{onpremAddressSpaceRow(a)}, nil
}

func onpremRemoveAddressSpace(c *Call) ([]exchange.Row, *exchange.Error) {
	if err := onpremBind(c.Params, "Identity"); err != nil {
		return nil, err
	}
	id, err := onpremRequire(c.Params, "Identity")
	if err != nil {
		return nil, err
	}
	i, a := onpremFindAddressSpace(c.Org, id)
	if a == nil {
		return nil, notFound(onpremAddressSpaceKind, id)
	}
	c.Org.AvailabilityAddressSpaces = append(c.Org.AvailabilityAddressSpaces[:i:i], c.Org.AvailabilityAddressSpaces[i+1:]...)
	c.touch()
	return nil, nil
}

// ---- discovery ---------------------------------------------------------------

func onpremGetAcceptedDomain(c *Call) ([]exchange.Row, *exchange.Error) {
	if err := onpremBind(c.Params, "Identity"); err != nil {
		return nil, err
	}
	id := c.Params.String("Identity")
	var rows []exchange.Row
	for _, d := range c.Org.AcceptedDomains {
		if id != "" && !strings.EqualFold(d.DomainName, id) {
			continue
		}
		rows = append(rows, exchange.Row{
			"Identity":   d.DomainName,
			"Name":       d.DomainName,
			"DomainName": d.DomainName,
			"DomainType": "Authoritative",
			"Default":    d.Default,
		})
	}
	if id != "" && len(rows) == 0 {
		return nil, notFound("AcceptedDomain", id)
	}
	if rows == nil {
		rows = []exchange.Row{}
	}
	return rows, nil
}

// onpremVirtualDirectories serves Get-<kind>VirtualDirectory; name is the
// IIS application's name, which with the web site makes the identity.
func onpremVirtualDirectories(kind, name string) cmdletFunc {
	return func(c *Call) ([]exchange.Row, *exchange.Error) {
		if err := onpremBind(c.Params, "Server", "Identity", "ADPropertiesOnly"); err != nil {
			return nil, err
		}
		server, id := c.Params.String("Server"), c.Params.String("Identity")
		rows := []exchange.Row{}
		for _, vd := range c.Org.VirtualDirectories {
			if !strings.EqualFold(vd.Kind, kind) {
				continue
			}
			vname := name + " (Default Web Site)"
			identity := vd.Server + `\` + vname
			if server != "" && !strings.EqualFold(vd.Server, server) {
				continue
			}
			if id != "" && !strings.EqualFold(id, identity) {
				continue
			}
			rows = append(rows, exchange.Row{
				"Identity":    identity,
				"Name":        vname,
				"Server":      vd.Server,
				"InternalUrl": onpremOptional(vd.InternalURL),
				"ExternalUrl": onpremOptional(vd.ExternalURL),
			})
		}
		if id != "" && len(rows) == 0 {
			return nil, notFound(kind+"VirtualDirectory", id)
		}
		return rows, nil
	}
}

// onpremOptional is how the shell shows an unset URL: null, not "".
func onpremOptional(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// onpremVersion parses a build "15.2.1748.24"; missing parts are zero.
func onpremVersion(build string) [4]int {
	var v [4]int
	for i, part := range strings.SplitN(strings.TrimSpace(build), ".", 4) {
		n, _ := strconv.Atoi(part)
		v[i] = n
	}
	return v
}

func onpremVersionLess(a, b [4]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// onpremIOCReadyBuild is Exchange 2013 SP1: older servers need
// an availability address space (step 8).
var onpremIOCReadyBuild = [4]int{15, 0, 847, 32}

func onpremGetExchangeServer(c *Call) ([]exchange.Row, *exchange.Error) {
	if err := onpremBind(c.Params, "Identity", "Status"); err != nil {
		return nil, err
	}
	id := c.Params.String("Identity")
	rows := []exchange.Row{}
	for _, s := range c.Org.Servers {
		if id != "" && !strings.EqualFold(s.Name, id) {
			continue
		}
		v := onpremVersion(s.Version)
		rows = append(rows, exchange.Row{
			"Identity": s.Name,
			"Name":     s.Name,
			// The only version field real Exchange gives in both the local
			// snap-in and a remote session (where the object is flattened
			// to this text): parse it with exchange.ParseAdminDisplayVersion.
			"AdminDisplayVersion": fmt.Sprintf("Version %d.%d (Build %d.%d)", v[0], v[1], v[2], v[3]),
			"ServerRole":          s.Roles,
			"IsE15OrLater":        v[0] >= 15,
		})
	}
	if id != "" && len(rows) == 0 {
		return nil, notFound("ExchangeServer", id)
	}
	return rows, nil
}

func onpremGetOrganizationConfig(c *Call) ([]exchange.Row, *exchange.Error) {
	if err := onpremBind(c.Params); err != nil {
		return nil, err
	}
	return []exchange.Row{{
		"Identity":    c.Tenant.DisplayName,
		"Name":        c.Tenant.DisplayName,
		"DisplayName": c.Tenant.DisplayName,
		"Guid":        c.Org.OrganizationGUID,
	}}, nil
}

// onpremGetIntraOrganizationConfiguration answers what step 6 needs and
// whether step 8 is needed, from the organisation's real state.
func onpremGetIntraOrganizationConfiguration(c *Call) ([]exchange.Row, *exchange.Error) {
	if err := onpremBind(c.Params, "OrganizationGuid"); err != nil {
		return nil, err
	}
	p, err := oauthProfile(c.Tenant)
	if err != nil {
		return nil, err
	}
	initial := oauthInitialDomain(c.Tenant)
	routing := ""
	targets := []string{}
	for _, d := range c.Org.AcceptedDomains {
		switch {
		case p.IsRoutingDomain(d.DomainName):
			if routing == "" {
				routing = d.DomainName
			}
		case strings.EqualFold(d.DomainName, initial) || p.IsInitialDomain(d.DomainName):
		default:
			targets = append(targets, d.DomainName)
		}
	}
	if routing == "" && initial != "" {
		routing = p.RoutingDomain(initial)
	}
	var discovery, ews any
	for _, vd := range c.Org.VirtualDirectories {
		if h := cloud.HostOfURL(vd.ExternalURL); h != "" && discovery == nil && strings.EqualFold(vd.Kind, "Autodiscover") {
			discovery = "https://" + h + "/autodiscover/autodiscover.svc"
		}
		if vd.ExternalURL != "" && ews == nil && strings.EqualFold(vd.Kind, "WebServices") {
			ews = vd.ExternalURL
		}
	}
	old := false
	for _, s := range c.Org.Servers {
		if onpremVersionLess(onpremVersion(s.Version), onpremIOCReadyBuild) {
			old = true
		}
	}
	return []exchange.Row{{
		"OnlineDiscoveryEndpoint":                     p.AutodiscoverURL(),
		"OnlineTargetAddress":                         routing,
		"OnPremiseDiscoveryEndpoint":                  discovery,
		"OnPremiseWebServiceEndpoint":                 ews,
		"OnPremiseTargetAddresses":                    targets,
		"DeploymentIsCompleteIOCReady":                !old,
		"HasNonIOCReadyExchangeCASServerVersions":     old,
		"HasNonIOCReadyExchangeMailboxServerVersions": old,
	}}, nil
}

// ---- setting overrides and their refresh (dedicated application) -----------

const onpremOverrideKind = "SettingOverride"

func onpremOverrideRow(o *SettingOverride) exchange.Row {
	return exchange.Row{
		"Identity":      o.Name,
		"Name":          o.Name,
		"ComponentName": o.Component,
		"SectionName":   o.Section,
		"Parameters":    onpremStrings(o.Parameters),
	}
}

func onpremFindOverride(org *ExchangeOrg, name string) (int, *SettingOverride) {
	for i, o := range org.SettingOverrides {
		if strings.EqualFold(o.Name, name) {
			return i, o
		}
	}
	return -1, nil
}

func onpremGetSettingOverride(c *Call) ([]exchange.Row, *exchange.Error) {
	if err := onpremBind(c.Params, "Identity"); err != nil {
		return nil, err
	}
	if id := c.Params.String("Identity"); id != "" {
		_, o := onpremFindOverride(c.Org, id)
		if o == nil {
			return nil, notFound(onpremOverrideKind, id)
		}
		return []exchange.Row{onpremOverrideRow(o)}, nil
	}
	rows := make([]exchange.Row, 0, len(c.Org.SettingOverrides))
	for _, o := range c.Org.SettingOverrides {
		rows = append(rows, onpremOverrideRow(o))
	}
	return rows, nil
}

func onpremNewSettingOverride(c *Call) ([]exchange.Row, *exchange.Error) {
	if err := onpremBind(c.Params, "Name", "Component", "Section", "Parameters", "Reason", "Server", "MinVersion", "MaxVersion"); err != nil {
		return nil, err
	}
	name, err := onpremRequire(c.Params, "Name")
	if err != nil {
		return nil, err
	}
	component, err := onpremRequire(c.Params, "Component")
	if err != nil {
		return nil, err
	}
	section, err := onpremRequire(c.Params, "Section")
	if err != nil {
		return nil, err
	}
	var params []string
	for _, p := range c.Params.Strings("Parameters") {
		if p = strings.TrimSpace(p); p != "" {
			params = append(params, p)
		}
	}
	if len(params) == 0 {
		return nil, invalid("Cannot bind argument to parameter 'Parameters' because it is empty.")
	}
	if _, existing := onpremFindOverride(c.Org, name); existing != nil {
		return nil, alreadyExists(onpremOverrideKind, name)
	}
	o := &SettingOverride{Name: name, Component: component, Section: section, Parameters: params}
	c.Org.SettingOverrides = append(c.Org.SettingOverrides, o)
	// Overrides are read by the processes only on a VariantConfiguration
	// refresh, so the organisation runs on the old settings until then.
	c.Org.VariantConfigRefreshed = false
	c.touch()
	return []exchange.Row{onpremOverrideRow(o)}, nil
}

func onpremRemoveSettingOverride(c *Call) ([]exchange.Row, *exchange.Error) {
	if err := onpremBind(c.Params, "Identity"); err != nil {
		return nil, err
	}
	id, err := onpremRequire(c.Params, "Identity")
	if err != nil {
		return nil, err
	}
	i, o := onpremFindOverride(c.Org, id)
	if o == nil {
		return nil, notFound(onpremOverrideKind, id)
	}
	c.Org.SettingOverrides = append(c.Org.SettingOverrides[:i:i], c.Org.SettingOverrides[i+1:]...)
	c.Org.VariantConfigRefreshed = false
	c.touch()
	return nil, nil
}

// onpremTopologyProcess is the process whose VariantConfiguration refresh
// loads setting overrides (docs/microsoft-behaviour.md, "Dedicated
// application on-premises").
const onpremTopologyProcess = "Microsoft.Exchange.Directory.TopologyService"

func onpremGetExchangeDiagnosticInfo(c *Call) ([]exchange.Row, *exchange.Error) {
	if err := onpremBind(c.Params, "Process", "Component", "Argument", "Server"); err != nil {
		return nil, err
	}
	process, component, argument := c.Params.String("Process"), c.Params.String("Component"), c.Params.String("Argument")
	server := c.Params.String("Server")
	if server == "" && len(c.Org.Servers) > 0 {
		server = c.Org.Servers[0].Name
	}
	result := fmt.Sprintf("<Diagnostics><ProcessInfo><ProcessName>%s</ProcessName></ProcessInfo></Diagnostics>", process)
	if strings.EqualFold(process, onpremTopologyProcess) && strings.EqualFold(component, "VariantConfiguration") && strings.EqualFold(argument, "Refresh") {
		result = "<Diagnostics><Components><VariantConfiguration><Refresh>Success</Refresh></VariantConfiguration></Components></Diagnostics>"
		if !c.Org.VariantConfigRefreshed {
			c.Org.VariantConfigRefreshed = true
			c.touch()
		}
	}
	return []exchange.Row{{
		"Server":    server,
		"Process":   process,
		"Component": component,
		"Argument":  argument,
		"Result":    result,
	}}, nil
}
