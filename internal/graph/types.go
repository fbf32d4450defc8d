package graph

import (
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/hybridflow/hybridflow/internal/certs"
)

// Key credential type and usage hybridflow uploads: a certificate key is
// an AsymmetricX509Cert used to Verify (docs/microsoft-behaviour.md, "Graph
// key credentials").
const (
	KeyTypeX509    = "AsymmetricX509Cert"
	KeyUsageVerify = "Verify"
)

// KeyCredential is a certificate key on an application or service
// principal, in the form Graph keeps it.
//
// CustomKeyIdentifier is the property exactly as Graph's JSON carries it
// (the SDK's bytes in base64), "" when Graph has none. For a certificate it
// is usually the upper-case hex SHA-1 thumbprint as text, which is also
// valid base64, but another client may have set any bytes. A key read
// from Graph and sent back keeps this string unchanged, so Graph stores
// the same bytes again; a new key may set it to the hex thumbprint or
// leave it empty (Graph then fills in the thumbprint).
//
// Key is the certificate's public DER. Graph returns it only when a single
// object is read with $select=keyCredentials, which is how every read of
// this package that returns keys gets them.
type KeyCredential struct {
	KeyID               string
	CustomKeyIdentifier string
	DisplayName         string
	Type                string
	Usage               string
	Start, End          time.Time
	Key                 []byte
}

// Thumbprint identifies the key's certificate: the upper-case SHA-1 of Key
// when Graph returned the certificate, otherwise the customKeyIdentifier
// when it is a hex thumbprint (40 hex digits, any case), otherwise "".
// Compare thumbprints with certs.SameThumbprint.
func (k KeyCredential) Thumbprint() string {
	if len(k.Key) > 0 {
		return certs.Thumbprint(k.Key)
	}
	return IdentifierThumbprint(k.CustomKeyIdentifier)
}

// IdentifierThumbprint reads a customKeyIdentifier as a thumbprint: the
// upper-cased text when it is 40 hex digits, "" otherwise (an identifier
// another client chose is no thumbprint).
func IdentifierThumbprint(cki string) string {
	if !certs.ValidThumbprint(cki) {
		return ""
	}
	return strings.ToUpper(cki)
}

// Expired reports whether the key's end date is at or before now.
func (k KeyCredential) Expired(now time.Time) bool { return !k.End.After(now) }

// CertificateKey is the key credential for uploading a certificate: type,
// usage, key, the certificate's validity and, as customKeyIdentifier, its
// hex thumbprint (the value Graph itself gives a certificate key).
func CertificateKey(der []byte, displayName string) (KeyCredential, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return KeyCredential{}, fmt.Errorf("certificate key: %w", err)
	}
	return KeyCredential{
		CustomKeyIdentifier: certs.Thumbprint(der),
		DisplayName:         displayName,
		Type:                KeyTypeX509,
		Usage:               KeyUsageVerify,
		Start:               c.NotBefore.UTC(),
		End:                 c.NotAfter.UTC(),
		Key:                 der,
	}, nil
}

// ServicePrincipal is the part of a service principal hybridflow uses.
type ServicePrincipal struct {
	ID                    string
	AppID                 string
	DisplayName           string
	ServicePrincipalNames []string
	KeyCredentials        []KeyCredential
	AppRoles              []AppRole
	Tags                  []string
}

// AppRole is an app role a service principal's application defines.
type AppRole struct {
	ID    string
	Value string
}

// Application is the part of an application registration hybridflow uses.
type Application struct {
	ID    string
	AppID string
	// UniqueName is the alternate key an upsert gave the application, ""
	// when it has none (applications created by POST, e.g. by Microsoft's
	// scripts).
	UniqueName             string
	DisplayName            string
	SignInAudience         string
	RequiredResourceAccess []RequiredResourceAccess
	KeyCredentials         []KeyCredential
	Tags                   []string
}

// RequiredResourceAccess is the permissions an application asks of one resource.
type RequiredResourceAccess struct {
	ResourceAppID  string
	ResourceAccess []ResourceAccess
}

// ResourceAccess is one permission: an app role (Type "Role") or a
// delegated scope ("Scope").
type ResourceAccess struct {
	ID   string
	Type string
}

// AppRoleAssignment grants a principal an app role of a resource.
type AppRoleAssignment struct {
	ID          string
	PrincipalID string
	ResourceID  string
	AppRoleID   string
}

// Domain is a directory domain.
type Domain struct {
	ID         string
	IsDefault  bool
	IsInitial  bool
	IsVerified bool
}

// Organization is the tenant.
type Organization struct {
	ID              string
	DisplayName     string
	VerifiedDomains []VerifiedDomain
}

// VerifiedDomain is a verified domain of the organization.
type VerifiedDomain struct {
	Name      string
	IsDefault bool
	IsInitial bool
}

// Patch changes a service principal. Each non-nil collection replaces the
// whole collection on the server: send every key and name you keep, keys
// with their Key bytes.
type Patch struct {
	KeyCredentials        *[]KeyCredential
	ServicePrincipalNames *[]string
}

// ApplicationPatch changes an application, with the same whole-collection
// semantics as Patch.
type ApplicationPatch struct {
	KeyCredentials         *[]KeyCredential
	RequiredResourceAccess *[]RequiredResourceAccess
	Tags                   *[]string
}
