package contract

import (
	"slices"
	"strings"
	"time"

	"github.com/hybridflow/hybridflow/internal/certs"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// AuthCertificateSubject is the subject the documented command gives a new
// auth certificate (New-ExchangeCertificate -SubjectName).
const AuthCertificateSubject = "Microsoft Exchange Server Auth Certificate"

// Error types only the renewal raises.
const (
	// ErrWrongQueue: a Renewal method ran on a worker without the client it
	// needs (a Graph method on an on-prem queue or the reverse).
	ErrWrongQueue = "WrongTaskQueue"
	// ErrNotSetUp: the Entra object the keys belong on does not exist.
	ErrNotSetUp = "NotSetUp"
)

// AuthCertificate is one certificate of the Exchange servers' store: its
// public part only (no private key crosses into a workflow).
type AuthCertificate struct {
	Thumbprint string    `json:"thumbprint"`
	Subject    string    `json:"subject,omitempty"`
	NotBefore  time.Time `json:"not_before"`
	NotAfter   time.Time `json:"not_after"`
	Exportable bool      `json:"exportable"`
	DER        []byte    `json:"der,omitempty"`
}

// ValidAt reports whether the certificate is within its validity at t
// (notBefore and notAfter inclusive, as X.509 has them).
func (c AuthCertificate) ValidAt(t time.Time) bool {
	return !t.Before(c.NotBefore) && !t.After(c.NotAfter)
}

// AuthConfigView is Get-AuthConfig with its read-side names.
type AuthConfigView struct {
	Current       string    `json:"current,omitempty"`
	Next          string    `json:"next,omitempty"`
	NextEffective time.Time `json:"next_effective,omitempty"`
	Previous      string    `json:"previous,omitempty"`
}

// AuthCertificateState is what ReadAuthCertificate found on-prem: the auth
// config, the certificates it names plus every other certificate with the
// auth certificate's subject, and what the renewal needs around them
// (organisation GUID, the mode Exchange is configured for, what to verify
// with).
type AuthCertificateState struct {
	ReadAt       time.Time         `json:"read_at"`
	AuthConfig   AuthConfigView    `json:"auth_config"`
	Certificates []AuthCertificate `json:"certificates,omitempty"`
	// OrganizationGUID names the dedicated application (ExchangeServerApp-<guid>).
	OrganizationGUID string `json:"organization_guid,omitempty"`
	// DedicatedAppID is the evoSTS auth server's ApplicationIdentifier: set
	// once the organisation uses the dedicated application,
	// empty on the legacy first-party path.
	DedicatedAppID string `json:"dedicated_app_id,omitempty"`
	// EvoSTSFound says whether an AzureAD auth server exists at all.
	EvoSTSFound bool `json:"evo_sts_found"`
	// OnPremEWSExternalURL and OnPremMailbox feed verification; the
	// workflow lets the inventory's overrides win over them.
	OnPremEWSExternalURL string `json:"onprem_ews_external_url,omitempty"`
	OnPremMailbox        string `json:"onprem_mailbox,omitempty"`
	// VerifyCloudTarget is the tenant's Exchange Online EWS URL.
	VerifyCloudTarget string `json:"verify_cloud_target,omitempty"`
	// Servers are Get-ExchangeServer's rows: the mode decision reads their
	// builds and roles.
	Servers []plan.ExchangeServer `json:"servers,omitempty"`
}

// Certificate returns the certificate with this thumbprint, if read.
func (s AuthCertificateState) Certificate(thumbprint string) (AuthCertificate, bool) {
	return FindAuthCertificate(s.Certificates, thumbprint)
}

// Retired lists the auth certificates that are out of service: in the
// store with the auth subject, older than the current one, and named by
// none of current, next and previous. Their keys may leave Entra. Sorted.
func (s AuthCertificateState) Retired() []string {
	return RetiredAuthCertificates(s.Certificates, s.AuthConfig)
}

// FindAuthCertificate returns the certificate with this thumbprint, if
// listed.
func FindAuthCertificate(cs []AuthCertificate, thumbprint string) (AuthCertificate, bool) {
	for _, c := range cs {
		if certs.SameThumbprint(c.Thumbprint, thumbprint) {
			return c, true
		}
	}
	return AuthCertificate{}, false
}

// IsAuthCertificateSubject says whether a certificate subject is the auth
// certificate's (AuthCertificateSubject, in any case).
func IsAuthCertificateSubject(subject string) bool {
	return strings.Contains(strings.ToLower(subject), strings.ToLower(AuthCertificateSubject))
}

// RetiredAuthCertificates is AuthCertificateState.Retired for a list of
// certificates and the auth config.
func RetiredAuthCertificates(cs []AuthCertificate, ac AuthConfigView) []string {
	cur, ok := FindAuthCertificate(cs, ac.Current)
	if !ok {
		return nil // without a current certificate nothing is provably older
	}
	var out []string
	for _, c := range cs {
		if !IsAuthCertificateSubject(c.Subject) || !c.NotBefore.Before(cur.NotBefore) {
			continue
		}
		if certs.SameThumbprint(c.Thumbprint, ac.Current) || certs.SameThumbprint(c.Thumbprint, ac.Next) || certs.SameThumbprint(c.Thumbprint, ac.Previous) {
			continue
		}
		out = append(out, strings.ToUpper(c.Thumbprint))
	}
	slices.Sort(out)
	return out
}

// RenewalModeInput is what the renewal's mode decision reads.
type RenewalModeInput struct {
	Tenant plan.TenantFacts `json:"tenant"`
	// Requested is the renewal's mode: detect (or empty), dedicated-app or
	// legacy-first-party.
	Requested string `json:"requested,omitempty"`
	// DedicatedAppID is the evoSTS auth server's ApplicationIdentifier.
	DedicatedAppID string                `json:"dedicated_app_id,omitempty"`
	Servers        []plan.ExchangeServer `json:"servers,omitempty"`
}

// RenewalModeOutput is the decision.
type RenewalModeOutput struct {
	Mode     plan.Mode `json:"mode"`
	Reason   string    `json:"reason"`
	Warnings []string  `json:"warnings,omitempty"`
}

// Error types of the check that the certificate is on every server.
const (
	// ErrCertificateMissingOnServers: a server that needs the auth
	// certificate does not have it; publishing would break OAuth there.
	ErrCertificateMissingOnServers = "CertificateMissingOnServers"
	// ErrServerUnreachable: a server could not be asked, so the renewal
	// cannot know whether it has the certificate.
	ErrServerUnreachable = "ServerUnreachable"
)

// ServerCertificateInput names the certificate every server must hold.
type ServerCertificateInput struct {
	Target     Target `json:"target"`
	Thumbprint string `json:"thumbprint"`
}

// ServerCertificateResult says where the certificate was found.
type ServerCertificateResult struct {
	StepResult
	// Servers are the servers checked; Present those holding the
	// certificate.
	Servers []string `json:"servers"`
	Present []string `json:"present"`
}

// AuthCertificateResult is what the on-prem writes return: the step's
// outcome, the auth config as it is afterwards, the certificate the step
// is about and, after ClearPreviousAuthCertificate, the retired ones.
type AuthCertificateResult struct {
	StepResult
	AuthConfig  AuthConfigView   `json:"auth_config"`
	Certificate *AuthCertificate `json:"certificate,omitempty"`
	// Retired are the auth certificates out of service once the previous
	// one is cleared (AuthCertificateState.Retired): their keys may go.
	Retired []string `json:"retired,omitempty"`
}

// CreateAuthCertificateInput asks for a certificate to stage.
type CreateAuthCertificateInput struct {
	Target Target `json:"target"`
	// Outlive: the new certificate must expire after this (the current
	// certificate's expiry), so a renewal never stages an older one.
	Outlive time.Time `json:"outlive"`
	// ValidAt: the new certificate must be valid then (the effective date).
	ValidAt time.Time `json:"valid_at"`
}

// StageAuthCertificateInput stages a certificate for an effective date.
type StageAuthCertificateInput struct {
	Target        Target    `json:"target"`
	Thumbprint    string    `json:"thumbprint"`
	EffectiveDate time.Time `json:"effective_date"`
	// Replace is the staged certificate the workflow saw and decided to
	// replace (unusable); any other staged certificate is someone else's
	// and is not overwritten.
	Replace string `json:"replace,omitempty"`
}

// AuthCertificateInput names the certificate an on-prem step is about.
type AuthCertificateInput struct {
	Target     Target `json:"target"`
	Thumbprint string `json:"thumbprint"`
}

// AuthKeysInput names where a tenant's auth certificate keys live: the
// dedicated application (by name) or the first-party service principal.
type AuthKeysInput struct {
	Target Target    `json:"target"`
	Mode   plan.Mode `json:"mode"`
	// AppName is ExchangeServerApp-<organization GUID> (dedicated mode).
	AppName string `json:"app_name,omitempty"`
}

// AuthKeyInfo is a key credential as the renewal reports it (no DER).
type AuthKeyInfo struct {
	Thumbprint  string    `json:"thumbprint"`
	DisplayName string    `json:"display_name,omitempty"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
}

// AuthKeysState is the key collection of the object the keys live on.
type AuthKeysState struct {
	Mode       plan.Mode     `json:"mode"`
	ObjectKind string        `json:"object_kind"` // application | servicePrincipal
	ObjectID   string        `json:"object_id,omitempty"`
	Name       string        `json:"name,omitempty"`
	AppID      string        `json:"app_id,omitempty"`
	Found      bool          `json:"found"`
	Keys       []AuthKeyInfo `json:"keys,omitempty"`
}

// Has reports whether a key for the certificate is there.
func (s AuthKeysState) Has(thumbprint string) bool { return s.Count(thumbprint) > 0 }

// Count is how many keys carry the certificate.
func (s AuthKeysState) Count(thumbprint string) int {
	n := 0
	for _, k := range s.Keys {
		if certs.SameThumbprint(k.Thumbprint, thumbprint) {
			n++
		}
	}
	return n
}

// AuthKeysResult is an Entra write's outcome and the collection after it.
type AuthKeysResult struct {
	StepResult
	Keys AuthKeysState `json:"keys"`
}

// UploadAuthKeysInput puts certificates' public keys on the object.
type UploadAuthKeysInput struct {
	AuthKeysInput
	Certificates []AuthCertificate `json:"certificates"`
}

// RemoveRetiredAuthKeysInput names the retired certificates' keys.
type RemoveRetiredAuthKeysInput struct {
	AuthKeysInput
	Thumbprints []string `json:"thumbprints"`
	// Keep are certificates in service (current, next): naming one of them
	// in Thumbprints is refused, whatever the caller computed.
	Keep []string `json:"keep"`
}
