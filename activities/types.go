package activities

import "github.com/hybridflow/hybridflow/contract"

// What crosses the line between the workflows and these activities lives
// in package contract: the activities' inputs and results, the undo
// records, the error types and the pure helpers the workflows apply to
// them. These names keep the activity code as it was.

type (
	Target                     = contract.Target
	Before                     = contract.Before
	EntraDiscoverInput         = contract.EntraDiscoverInput
	FirstPartyInput            = contract.FirstPartyInput
	DedicatedAppInput          = contract.DedicatedAppInput
	AppIDInput                 = contract.AppIDInput
	AppKeysInput               = contract.AppKeysInput
	RemoveLegacyKeysInput      = contract.RemoveLegacyKeysInput
	ProbeResult                = contract.ProbeResult
	InventoryPageInput         = contract.InventoryPageInput
	InventoryPage              = contract.InventoryPage
	AuthServersInput           = contract.AuthServersInput
	AuthServerAppInput         = contract.AuthServerAppInput
	SettingOverrideInput       = contract.SettingOverrideInput
	IOCInput                   = contract.IOCInput
	AvailabilityInput          = contract.AvailabilityInput
	PlanInput                  = contract.PlanInput
	PlanOutput                 = contract.PlanOutput
	AuthCertificate            = contract.AuthCertificate
	AuthConfigView             = contract.AuthConfigView
	AuthCertificateState       = contract.AuthCertificateState
	RenewalModeInput           = contract.RenewalModeInput
	RenewalModeOutput          = contract.RenewalModeOutput
	ServerCertificateInput     = contract.ServerCertificateInput
	ServerCertificateResult    = contract.ServerCertificateResult
	AuthCertificateResult      = contract.AuthCertificateResult
	CreateAuthCertificateInput = contract.CreateAuthCertificateInput
	StageAuthCertificateInput  = contract.StageAuthCertificateInput
	AuthCertificateInput       = contract.AuthCertificateInput
	AuthKeysInput              = contract.AuthKeysInput
	AuthKeyInfo                = contract.AuthKeyInfo
	AuthKeysState              = contract.AuthKeysState
	AuthKeysResult             = contract.AuthKeysResult
	UploadAuthKeysInput        = contract.UploadAuthKeysInput
	RemoveRetiredAuthKeysInput = contract.RemoveRetiredAuthKeysInput
	Outcome                    = contract.Outcome
	StepResult                 = contract.StepResult
	System                     = contract.System
	UndoRecord                 = contract.UndoRecord
	RRA                        = contract.RRA
	UndoInput                  = contract.UndoInput
	VerifyInput                = contract.VerifyInput
	VerifyResult               = contract.VerifyResult
	LyncPlanInput              = contract.LyncPlanInput
	LyncPlan                   = contract.LyncPlan
	LyncStepResult             = contract.LyncStepResult
	LyncProviderInput          = contract.LyncProviderInput
	LyncReplicationInput       = contract.LyncReplicationInput
	LyncUndoInput              = contract.LyncUndoInput
)

const (
	ErrInvalidInput                = contract.ErrInvalidInput
	ErrMissingPermission           = contract.ErrMissingPermission
	ErrUnsupportedVersion          = contract.ErrUnsupportedVersion
	ErrLegacyPathBlocked           = contract.ErrLegacyPathBlocked
	ErrThrottled                   = contract.ErrThrottled
	ErrTransient                   = contract.ErrTransient
	ErrConflict                    = contract.ErrConflict
	ErrVerification                = contract.ErrVerification
	ErrGraphPageLimit              = contract.ErrGraphPageLimit
	ErrInventoryChanged            = contract.ErrInventoryChanged
	ErrWrongQueue                  = contract.ErrWrongQueue
	ErrNotSetUp                    = contract.ErrNotSetUp
	ErrCertificateMissingOnServers = contract.ErrCertificateMissingOnServers
	ErrServerUnreachable           = contract.ErrServerUnreachable
	AuthCertificateSubject         = contract.AuthCertificateSubject
	Unchanged                      = contract.Unchanged
	Created                        = contract.Created
	Updated                        = contract.Updated
	Removed                        = contract.Removed
	SystemOnPrem                   = contract.SystemOnPrem
	SystemOnline                   = contract.SystemOnline
	SystemEntra                    = contract.SystemEntra
	SystemLync                     = contract.SystemLync
	UndoRemoveAuthServer           = contract.UndoRemoveAuthServer
	UndoSetAuthServerEnabled       = contract.UndoSetAuthServerEnabled
	UndoRestoreAuthServerApp       = contract.UndoRestoreAuthServerApp
	UndoSetPartnerAppEnabled       = contract.UndoSetPartnerAppEnabled
	UndoRemoveSettingOverride      = contract.UndoRemoveSettingOverride
	UndoRemoveIOC                  = contract.UndoRemoveIOC
	UndoRestoreIOC                 = contract.UndoRestoreIOC
	UndoRemoveAddressSpace         = contract.UndoRemoveAddressSpace
	UndoRemoveKeys                 = contract.UndoRemoveKeys
	UndoRestoreKeys                = contract.UndoRestoreKeys
	UndoRemoveSPNs                 = contract.UndoRemoveSPNs
	UndoRestoreRRA                 = contract.UndoRestoreRRA
	UndoDeleteApplication          = contract.UndoDeleteApplication
	UndoDeleteSP                   = contract.UndoDeleteSP
	UndoRemoveAssignment           = contract.UndoRemoveAssignment
)

const (
	ErrReplicationLagging          = contract.ErrReplicationLagging
	ErrEdgeNotUpdated              = contract.ErrEdgeNotUpdated
	UndoLyncSetAllowFederatedUsers = contract.UndoLyncSetAllowFederatedUsers
	UndoLyncRemoveHostingProvider  = contract.UndoLyncRemoveHostingProvider
	UndoLyncRestoreHostingProvider = contract.UndoLyncRestoreHostingProvider
	DefaultLyncReplicationTimeout  = contract.DefaultLyncReplicationTimeout
	DefaultLyncReplicationPoll     = contract.DefaultLyncReplicationPoll
)

var (
	LyncUndoFromError = contract.LyncUndoFromError
	LyncEdgeFqdns     = contract.LyncEdgeFqdns
	StepBefore        = contract.StepBefore
	MergeObserved     = contract.MergeObserved
	FailedProgress    = contract.FailedProgress
)
