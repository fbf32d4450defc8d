package graph

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azcloud "github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/hybridflow/hybridflow/internal/cloud"
)

// CredentialKind names an azidentity credential type; the values are the
// worker configuration's (internal/config).
type CredentialKind string

const (
	CredentialClientSecret      CredentialKind = "client-secret"
	CredentialClientCertificate CredentialKind = "client-certificate"
	CredentialManagedIdentity   CredentialKind = "managed-identity"
	CredentialWorkloadIdentity  CredentialKind = "workload-identity"
	CredentialAzureCLI          CredentialKind = "azure-cli"
)

// CredentialOptions are the inputs of NewCredential. Secrets arrive here
// already resolved from their references; they are never logged.
type CredentialOptions struct {
	Kind     CredentialKind
	TenantID string
	// ClientID is the application (client-secret, client-certificate,
	// workload-identity) or the user-assigned identity (managed-identity;
	// empty for the system-assigned one).
	ClientID string
	Secret   string
	// Certificate is PEM or PKCS#12 holding the certificate and its
	// private key (client-certificate).
	Certificate         []byte
	CertificatePassword string
	// TokenFile is the federated token file (workload-identity); empty
	// means AZURE_FEDERATED_TOKEN_FILE.
	TokenFile string
	// AuthorityHost is the Entra authority, e.g. cloud.Profile.AuthorityURL()
	// or the simulator's Servers.AuthorityHost(). Empty means worldwide.
	AuthorityHost string
	// HTTPClient carries token requests (e.g. trusting the simulator's CA).
	HTTPClient *http.Client
	// DisableInstanceDiscovery skips MSAL's instance discovery. It is
	// implied for an AuthorityHost that is no cloud's Entra authority (the
	// simulator): MSAL would otherwise ask login.microsoftonline.com about it.
	DisableInstanceDiscovery bool
}

// knownAuthority reports whether an authority URL is one of the clouds'
// Entra authorities, which MSAL's instance discovery knows.
func knownAuthority(authority string) bool {
	if authority == "" {
		return true // azidentity's default, worldwide
	}
	u, err := url.Parse(authority)
	if err != nil {
		return false
	}
	for _, n := range cloud.Names() {
		if strings.EqualFold(cloud.MustLookup(n).AuthorityHost, u.Hostname()) {
			return true
		}
	}
	return false
}

// NewCredential builds the azidentity credential of a configured kind.
func NewCredential(o CredentialOptions) (azcore.TokenCredential, error) {
	co := azcore.ClientOptions{}
	if o.AuthorityHost != "" {
		co.Cloud = azcloud.Configuration{ActiveDirectoryAuthorityHost: o.AuthorityHost}
	}
	if o.HTTPClient != nil {
		co.Transport = o.HTTPClient
	}
	noDiscovery := o.DisableInstanceDiscovery || !knownAuthority(o.AuthorityHost)
	need := func(what, v string) error {
		if v == "" {
			return fmt.Errorf("graph: %s credential needs %s", o.Kind, what)
		}
		return nil
	}
	var (
		cred azcore.TokenCredential
		err  error
	)
	switch o.Kind {
	case CredentialClientSecret:
		if err = errors.Join(need("a tenant ID", o.TenantID), need("a client ID", o.ClientID), need("a secret", o.Secret)); err != nil {
			return nil, err
		}
		cred, err = azidentity.NewClientSecretCredential(o.TenantID, o.ClientID, o.Secret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: noDiscovery})
	case CredentialClientCertificate:
		if err = errors.Join(need("a tenant ID", o.TenantID), need("a client ID", o.ClientID)); err != nil {
			return nil, err
		}
		if len(o.Certificate) == 0 {
			return nil, fmt.Errorf("graph: %s credential needs a certificate", o.Kind)
		}
		certs, key, perr := azidentity.ParseCertificates(o.Certificate, []byte(o.CertificatePassword))
		if perr != nil {
			return nil, fmt.Errorf("graph: client certificate: %w", perr)
		}
		cred, err = azidentity.NewClientCertificateCredential(o.TenantID, o.ClientID, certs, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: co, SendCertificateChain: true, DisableInstanceDiscovery: noDiscovery})
	case CredentialManagedIdentity:
		mo := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: co}
		if o.ClientID != "" {
			mo.ID = azidentity.ClientID(o.ClientID)
		}
		cred, err = azidentity.NewManagedIdentityCredential(mo)
	case CredentialWorkloadIdentity:
		cred, err = azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: co, ClientID: o.ClientID, TenantID: o.TenantID, TokenFilePath: o.TokenFile,
			DisableInstanceDiscovery: noDiscovery,
		})
	case CredentialAzureCLI:
		cred, err = azidentity.NewAzureCLICredential(&azidentity.AzureCLICredentialOptions{TenantID: o.TenantID})
	default:
		return nil, fmt.Errorf("graph: unknown credential kind %q", o.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("graph: %s credential: %w", o.Kind, err)
	}
	return cred, nil
}

// Compile-time check that *http.Client can carry azidentity's requests.
var _ policy.Transporter = (*http.Client)(nil)
