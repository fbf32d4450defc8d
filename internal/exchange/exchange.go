// Package exchange holds what the on-prem PowerShell host client, the
// Exchange Online REST client and the simulator agree on: the command and
// reply shapes, the cmdlet allow-list and the error types Exchange raises
// (docs/microsoft-behaviour.md, "Exchange errors by type, not by text"),
// classified by type name and never by English text.
package exchange

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Row is one object a cmdlet emitted, as JSON decoded it.
type Row = map[string]any

// Command is one cmdlet invocation. Parameters are data: they are splatted
// by the host, never spliced into script text.
type Command struct {
	Cmdlet     string         `json:"cmdlet"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

// Result is one command's outcome inside a batch.
type Result struct {
	Rows  []Row  `json:"rows"`
	Error *Error `json:"error,omitempty"`
}

// Runner runs cmdlets against one Exchange organisation (on-prem through
// the PowerShell host, online through InvokeCommand). Run returns *Error
// for a cmdlet that ran and failed, and a transport error otherwise.
// RunBatch runs several read commands in one round trip where the backend
// can; a failing command fails only its own Result.
type Runner interface {
	Run(ctx context.Context, cmd Command) ([]Row, error)
	RunBatch(ctx context.Context, cmds []Command) ([]Result, error)
}

// Error is a cmdlet failure as the host reports it.
type Error struct {
	Cmdlet   string `json:"cmdlet,omitempty"`
	Type     string `json:"type"`               // the exception's full .NET type name
	Message  string `json:"message"`            // for humans only; never parsed
	Category string `json:"category,omitempty"` // PowerShell ErrorCategory
}

func (e *Error) Error() string {
	if e.Cmdlet != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Cmdlet, e.Message, ShortType(e.Type))
	}
	return fmt.Sprintf("%s (%s)", e.Message, ShortType(e.Type))
}

// Exception type names Exchange raises. Matching uses the short
// name so that namespace differences between builds do not matter.
const (
	TypeAlreadyExists       = "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException"
	TypeNotFound            = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"
	TypeDuplicateAuthServer = "Microsoft.Exchange.Management.SystemConfigurationTasks.ErrorDuplicateAuthServerException"
	TypeSameRealmAuthServer = "Microsoft.Exchange.Management.SystemConfigurationTasks.ErrorExistingAuthServerWithSameRealmException"
	TypeAuthMetadata        = "Microsoft.Exchange.Security.OAuth.AuthMetadataClientException"
	TypeDuplicateIOCDomain  = "Microsoft.Exchange.Management.SystemConfigurationTasks.DuplicateIntraOrganizationConnectorDomainException"
	TypeAddressSpaceExists  = "Microsoft.Exchange.Management.SystemConfigurationTasks.AvailabilityAddressSpaceAlreadyExistsException"
	TypeInvalidCertificate  = "Microsoft.Exchange.Management.SystemConfigurationTasks.InvalidAuthConfigCertificateException"
	TypeParameterBinding    = "System.Management.Automation.ParameterBindingException"
	TypeCmdletNotAllowed    = "HybridFlow.CmdletNotAllowedException"
	TypeThrottled           = "Microsoft.Exchange.Data.Directory.ADTransientException.Throttled"
	TypeTransient           = "Microsoft.Exchange.Data.Directory.ADTransientException"
	TypeAccessDenied        = "System.UnauthorizedAccessException"
	TypeHostDied            = "HybridFlow.HostProcessExitedException"
	TypeTimeout             = "HybridFlow.CmdletTimeoutException"
)

// ShortType is the type name without its namespace.
func ShortType(t string) string {
	if i := strings.LastIndexByte(t, '.'); i >= 0 {
		return t[i+1:]
	}
	return t
}

// HasType reports whether err is an *Error of the given type (compared by
// short name, case-insensitively).
func HasType(err error, typ string) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	return strings.EqualFold(ShortType(e.Type), ShortType(typ))
}

// IsAlreadyExists: the object a New-/Add- cmdlet would create is there.
func IsAlreadyExists(err error) bool {
	return HasType(err, TypeAlreadyExists) || HasType(err, TypeDuplicateAuthServer) || HasType(err, TypeAddressSpaceExists)
}

// IsNotFound: the identity named does not exist.
func IsNotFound(err error) bool { return HasType(err, TypeNotFound) }

// Retryable reports whether a failed call may succeed if repeated: host
// crashes, time-outs, throttling, transient directory errors and metadata
// fetch failures are; everything else needs a person or a code change.
func Retryable(err error) bool {
	for _, t := range []string{TypeHostDied, TypeTimeout, TypeThrottled, TypeTransient, TypeAuthMetadata} {
		if HasType(err, t) {
			return true
		}
	}
	var e *Error
	return !errors.As(err, &e) // transport errors are retryable
}

// AllowedCmdlets are the only cmdlets the product runs; the PowerShell host
// bootstrap script carries the same list and refuses anything else, so a
// compromised worker config cannot turn the host into a general shell.
var AllowedCmdlets = []string{
	// on-prem and online Exchange
	"Get-AuthServer", "New-AuthServer", "Set-AuthServer", "Remove-AuthServer",
	"Get-PartnerApplication", "Set-PartnerApplication",
	"Get-AuthConfig", "Set-AuthConfig",
	"Get-ExchangeCertificate", "New-ExchangeCertificate",
	"Get-IntraOrganizationConnector", "New-IntraOrganizationConnector", "Set-IntraOrganizationConnector", "Remove-IntraOrganizationConnector",
	"Get-AvailabilityAddressSpace", "Add-AvailabilityAddressSpace", "Remove-AvailabilityAddressSpace",
	"Get-AcceptedDomain", "Get-WebServicesVirtualDirectory", "Get-MapiVirtualDirectory", "Get-OABVirtualDirectory", "Get-AutodiscoverVirtualDirectory",
	"Get-ExchangeServer", "Get-OrganizationConfig", "Get-IntraOrganizationConfiguration",
	"Get-SettingOverride", "New-SettingOverride", "Remove-SettingOverride", "Get-ExchangeDiagnosticInfo",
	"Get-Mailbox", "Test-OAuthConnectivity",
	// Lync Server / Skype for Business
	"Get-CsAccessEdgeConfiguration", "Set-CsAccessEdgeConfiguration",
	"Get-CsHostingProvider", "New-CsHostingProvider", "Set-CsHostingProvider", "Remove-CsHostingProvider",
	"Get-CsManagementStoreReplicationStatus", "Get-CsExternalAccessPolicy",
}

// Allowed reports whether a cmdlet is on the allow-list (case-insensitive,
// as PowerShell resolves names).
func Allowed(cmdlet string) bool {
	for _, c := range AllowedCmdlets {
		if strings.EqualFold(c, cmdlet) {
			return true
		}
	}
	return false
}

// --- server versions (added with the on-prem PowerShell host, shell/) ---

// adminDisplayVersionRE matches AdminDisplayVersion as Exchange prints it,
// "Version 15.2 (Build 1748.24)", and a bare build "15.2.1748.24".
var adminDisplayVersionRE = regexp.MustCompile(`^\s*(?:Version\s+(\d+)\.(\d+)\s+\(Build\s+(\d+)\.(\d+)\)|(\d+)\.(\d+)\.(\d+)\.(\d+))\s*$`)

// ParseAdminDisplayVersion turns Get-ExchangeServer's AdminDisplayVersion
// into its build, "15.2.1748.24", comparable with the dedicated application's
// minimum builds (docs/microsoft-behaviour.md, "Mode choice and mixed builds").
// AdminDisplayVersion is the field to read: it is the only version
// property that arrives the same way from the local snap-in and from a
// remote session, where the rich ServerVersion object is flattened to
// this text.
func ParseAdminDisplayVersion(s string) (major, minor, build, revision int, err error) {
	m := adminDisplayVersionRE.FindStringSubmatch(s)
	if m == nil {
		return 0, 0, 0, 0, fmt.Errorf("exchange: %q is not an Exchange server version", s)
	}
	parts := m[1:5]
	if m[1] == "" {
		parts = m[5:9]
	}
	var v [4]int
	for i, p := range parts {
		if v[i], err = strconv.Atoi(p); err != nil {
			return 0, 0, 0, 0, fmt.Errorf("exchange: version %q: %w", s, err)
		}
	}
	return v[0], v[1], v[2], v[3], nil
}
