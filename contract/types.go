package contract

import "github.com/hybridflow/hybridflow/internal/plan"

// Target names the tenant (and its sites) an activity works on. It carries
// no secret: Credential is the name of a credential in the worker config.
type Target struct {
	TenantID   string `json:"tenant_id"`
	Cloud      string `json:"cloud"`
	Site       string `json:"site"`
	LyncSite   string `json:"lync_site,omitempty"`
	Credential string `json:"credential,omitempty"`
	// ExchangeOnlineHost overrides the cloud's (unconfirmed for DoD).
	ExchangeOnlineHost string `json:"exchange_online_host,omitempty"`
}

// Outcome says what a step did.
type Outcome string

const (
	Unchanged Outcome = "unchanged"
	Created   Outcome = "created"
	Updated   Outcome = "updated"
	Removed   Outcome = "removed"
)

// StepResult is what every write activity returns: what happened, in
// words, and exactly how to reverse this call's own changes.
type StepResult struct {
	Outcome Outcome      `json:"outcome"`
	Detail  string       `json:"detail"`
	Undo    []UndoRecord `json:"undo,omitempty"`
	// AppID is set by the dedicated-application steps.
	AppID string `json:"app_id,omitempty"`
	// ObjectID is the Graph object the step worked on.
	ObjectID string `json:"object_id,omitempty"`
}

// merge folds a later sub-step into a result.
func (r *StepResult) Merge(o StepResult) {
	if o.Outcome != Unchanged && o.Outcome != "" {
		if r.Outcome == Unchanged || r.Outcome == "" {
			r.Outcome = o.Outcome
		} else if r.Outcome != o.Outcome {
			r.Outcome = Updated
		}
	} else if r.Outcome == "" {
		r.Outcome = Unchanged
	}
	if o.Detail != "" {
		if r.Detail != "" {
			r.Detail += "; "
		}
		r.Detail += o.Detail
	}
	r.Undo = append(r.Undo, o.Undo...)
	if o.AppID != "" {
		r.AppID = o.AppID
	}
	if o.ObjectID != "" {
		r.ObjectID = o.ObjectID
	}
}

// System says which activity struct reverses an undo record.
type System string

const (
	SystemOnPrem System = "onprem"
	SystemOnline System = "online"
	SystemEntra  System = "entra"
	SystemLync   System = "lync"
)

// Undo kinds. Each reverses exactly one change this product made; none
// touches an object the record does not name.
const (
	UndoRemoveAuthServer      = "remove-auth-server"
	UndoSetAuthServerEnabled  = "set-auth-server-enabled"
	UndoRestoreAuthServerApp  = "restore-auth-server-app"
	UndoSetPartnerAppEnabled  = "set-partner-app-enabled"
	UndoRemoveSettingOverride = "remove-setting-override"
	UndoRemoveIOC             = "remove-ioc"
	UndoRestoreIOC            = "restore-ioc"
	UndoRemoveAddressSpace    = "remove-availability-address-space"
	UndoRemoveKeys            = "remove-keys"  // keys this run added to an SP or app
	UndoRestoreKeys           = "restore-keys" // keys this run removed
	UndoRemoveSPNs            = "remove-spns"  // SPNs this run added
	UndoRestoreRRA            = "restore-required-resource-access"
	UndoDeleteApplication     = "delete-application"
	UndoDeleteSP              = "delete-service-principal"
	UndoRemoveAssignment      = "remove-app-role-assignment"
)

// UndoRecord is one reversible change. Fields are used per Kind.
type UndoRecord struct {
	System System `json:"system"`
	Kind   string `json:"kind"`
	// Name identifies an Exchange object (auth server, connector,
	// override, address space forest name).
	Name    string `json:"name,omitempty"`
	Enabled bool   `json:"enabled,omitempty"`
	// Previous values for restores.
	ApplicationIdentifier  string    `json:"application_identifier,omitempty"`
	DomainName             []string  `json:"domain_name,omitempty"`
	IOC                    *plan.IOC `json:"ioc,omitempty"`
	RequiredResourceAccess []RRA     `json:"required_resource_access,omitempty"`
	// Fields names the properties a restore-auth-server-app or restore-ioc
	// record changed; the undo restores those only (records without it
	// restore every property they carry). Added lists the values the
	// change added to a multi-valued property (DomainName,
	// TargetAddressDomains): the undo removes exactly these and keeps any
	// value added since.
	Fields []string `json:"fields,omitempty"`
	Added  []string `json:"added,omitempty"`
	// URL is what an auth server (its metadata URL) or an availability
	// address space (its proxy URL) was created with, in a record proven
	// by content (Evidence): the undo removes the object only while it
	// still has it.
	URL string `json:"url,omitempty"`
	// Evidence says how an object was proven to be this run's when the
	// reply to its create, or the step's result, was lost, or Exchange
	// said it already existed: by reading it back and finding exactly what
	// was sent (after a lost result: and that the setup's discovery had
	// not seen it). A remove-ioc
	// record with Evidence carries what was sent in IOC, and its undo
	// removes the connector only while it still is that; an on-prem
	// remove record with Evidence likewise (URL, or the override's
	// section and parameter). Keys, SPNs and consent are removed by
	// thumbprint, name and assignment ID, which are their content.
	Evidence string `json:"evidence,omitempty"`
	// Graph objects.
	ObjectKind   string     `json:"object_kind,omitempty"` // "servicePrincipal" or "application"
	ObjectID     string     `json:"object_id,omitempty"`
	Thumbprints  []string   `json:"thumbprints,omitempty"`
	Keys         []plan.Key `json:"keys,omitempty"`
	SPNs         []string   `json:"spns,omitempty"`
	AssignmentID string     `json:"assignment_id,omitempty"`
	// Provider is the Lync hosting provider as it was before the change
	// (lync-restore-hosting-provider records only).
	Provider *plan.LyncHostingProvider `json:"provider,omitempty"`
}

// RRA is a requiredResourceAccess entry, kept for restores.
type RRA struct {
	ResourceAppID string   `json:"resource_app_id"`
	Roles         []string `json:"roles,omitempty"`
	Scopes        []string `json:"scopes,omitempty"`
}

// UndoInput is what an Undo activity receives.
type UndoInput struct {
	Target Target     `json:"target"`
	Record UndoRecord `json:"record"`
}

// VerifyInput runs Test-OAuthConnectivity from one side.
type VerifyInput struct {
	Target    Target `json:"target"`
	TargetURI string `json:"target_uri"`
	Mailbox   string `json:"mailbox"`
}

// VerifyResult is the test's outcome as data: a failed test is not an
// activity error, because the workflow retries it on a durable timer
// while the configuration propagates.
type VerifyResult struct {
	Success bool   `json:"success"`
	Detail  string `json:"detail"`
}
