package graph

import (
	"crypto/x509"
	"fmt"
	"time"

	"github.com/hybridflow/hybridflow/internal/certs"
)

// Key credential type and usage hybridflow uploads (FACTS §3).
const (
	KeyTypeX509    = "AsymmetricX509Cert"
	KeyUsageVerify = "Verify"
)

// KeyCredential is a certificate key on an application or service
// principal. Key is the certificate's public DER; Graph returns it only
// because this client always $selects keyCredentials.
type KeyCredential struct {
	KeyID string
	// CustomKeyIdentifier is upper-case hex; for certificates Graph
	// defaults it to the SHA-1 thumbprint.
	CustomKeyIdentifier string
	DisplayName         string
	Type                string
	Usage               string
	Start, End          time.Time
	Key                 []byte
}

// Thumbprint is the SHA-1 thumbprint of Key, or "" when Key is absent.
// Compare it (certs.SameThumbprint) rather than CustomKeyIdentifier, which
// a client may have set to anything.
func (k KeyCredential) Thumbprint() string {
	if len(k.Key) == 0 {
		return ""
	}
	return certs.Thumbprint(k.Key)
}

// Expired reports whether the key's end date is at or before now.
func (k KeyCredential) Expired(now time.Time) bool { return !k.End.After(now) }

// CertificateKey is the key credential for uploading a certificate: type,
// usage, key and, from the certificate, thumbprint and validity.
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
	ID                     string
	AppID                  string
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
// whole collection on the server (FACTS §3): send every key and name you
// keep, keys with their Key bytes.
type Patch struct {
	KeyCredentials        *[]KeyCredential
	ServicePrincipalNames *[]string
}

// ApplicationPatch changes an application, with the same whole-collection
// semantics as Patch.
type ApplicationPatch struct {
	KeyCredentials         *[]KeyCredential
	RequiredResourceAccess *[]RequiredResourceAccess
}
