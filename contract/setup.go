package contract

import (
	"slices"
	"time"

	"github.com/hybridflow/hybridflow/internal/plan"
)

// PlanInput is everything the plan is computed from.
type PlanInput struct {
	Tenant   plan.TenantFacts `json:"tenant"`
	Observed plan.Observed    `json:"observed"`
	Now      time.Time        `json:"now"`
	// ResetFirstPartyKeys: the operator asked for every key of the
	// first-party service principal to go in the legacy-key clean-up
	// (plan.Desired.ResetFirstPartyKeys).
	ResetFirstPartyKeys bool `json:"reset_first_party_keys,omitempty"`
}

// PlanOutput is the derived configuration and the ordered actions.
type PlanOutput struct {
	Desired  plan.Desired  `json:"desired"`
	Actions  []plan.Action `json:"actions"`
	Warnings []string      `json:"warnings,omitempty"`
	// After is the step graph: for each action, the indices of the
	// earlier actions it waits for. It is recorded with the plan, so a
	// running setup keeps the graph it was planned with when a release
	// changes which step waits for which.
	After [][]int `json:"after,omitempty"`
}

// MergeObserved combines the three discovery halves (on-prem, Exchange
// Online, Entra) into one observation.
func MergeObserved(onprem, online, entra plan.Observed, at time.Time) plan.Observed {
	o := onprem
	o.At = at
	o.OnlineIOCs, o.CloudMailboxes = online.OnlineIOCs, online.CloudMailboxes
	o.FirstPartySP, o.DedicatedApp, o.DedicatedSP = entra.FirstPartySP, entra.DedicatedApp, entra.DedicatedSP
	o.ConsentGranted, o.TenantDomains = entra.ConsentGranted, entra.TenantDomains
	return o
}

// Before is what the setup's discovery saw of one step's objects, before
// the run wrote anything, together with what the run already holds undo
// records for (an operator's retry of a step runs it again after an
// earlier attempt's records reached the workflow: those objects are
// recorded already and must not be claimed twice). Which fields count
// depends on the step. A nil *Before is unknown (a setup recorded before
// the field existed, renewal, the bench's direct calls): the step then
// claims nothing it finds.
type Before struct {
	// ObjectID is the Graph object whose keys, SPNs or consent these are
	// (the first-party service principal, the dedicated application, the
	// dedicated service principal); "" when it did not exist, so that
	// everything of ours found on it now is new.
	ObjectID string `json:"object_id,omitempty"`
	// Thumbprints of the object's keyCredentials.
	Thumbprints []string `json:"thumbprints,omitempty"`
	// SPNs are the object's servicePrincipalNames.
	SPNs []string `json:"spns,omitempty"`
	// Consent: the dedicated service principal held full_access_as_app.
	Consent bool `json:"consent,omitempty"`
	// Names of the Exchange objects of the step's kind: the connectors of
	// its side, auth servers, setting overrides, or the forest names of
	// availability address spaces.
	Names []string `json:"names,omitempty"`
}

// StepBefore builds a step's Before from the setup's discovery (o) and the
// undo records the run holds (held); nil for steps that create nothing
// that could be found afterwards.
func StepBefore(o plan.Observed, step plan.Step, mode plan.Mode, held []UndoRecord) *Before {
	b := &Before{}
	keep := map[string]bool{} // undo kinds of held records that count for this step
	var side System
	switch step {
	case plan.StepKeys:
		if mode == plan.ModeDedicatedApp {
			if o.DedicatedApp.Exists {
				b.ObjectID, b.Thumbprints = o.DedicatedApp.ID, keyThumbprints(o.DedicatedApp.Keys)
			}
		} else {
			// Legacy: the keys and the SPNs go in one PATCH.
			b.ObjectID, b.Thumbprints, b.SPNs = o.FirstPartySP.ID, keyThumbprints(o.FirstPartySP.Keys), slices.Clone(o.FirstPartySP.SPNs)
			keep[UndoRemoveSPNs] = true
		}
		keep[UndoRemoveKeys] = true
	case plan.StepSPNs:
		b.ObjectID, b.SPNs = o.FirstPartySP.ID, slices.Clone(o.FirstPartySP.SPNs)
		keep[UndoRemoveSPNs] = true
	case plan.StepDedicatedApp:
		if o.DedicatedSP.Exists {
			b.ObjectID, b.Consent = o.DedicatedSP.ID, o.ConsentGranted
		}
		keep[UndoRemoveAssignment] = true
	case plan.StepAuthServers:
		for _, s := range o.AuthServers {
			b.Names = append(b.Names, s.Name)
		}
		keep[UndoRemoveAuthServer] = true
	case plan.StepSettingOverride:
		for _, s := range o.SettingOverrides {
			b.Names = append(b.Names, s.Name)
		}
		keep[UndoRemoveSettingOverride] = true
	case plan.StepIOCOnPrem, plan.StepIOCOnline:
		list, s := o.OnPremIOCs, SystemOnPrem
		if step == plan.StepIOCOnline {
			list, s = o.OnlineIOCs, SystemOnline
		}
		for _, c := range list {
			b.Names = append(b.Names, c.Name)
		}
		side = s
		keep[UndoRemoveIOC] = true
	case plan.StepAvailability:
		for _, s := range o.AvailabilitySpaces {
			b.Names = append(b.Names, s.ForestName)
		}
		keep[UndoRemoveAddressSpace] = true
	default:
		return nil
	}
	for _, u := range held {
		if !keep[u.Kind] || (side != "" && u.System != side) {
			continue
		}
		switch u.Kind {
		case UndoRemoveKeys:
			b.Thumbprints = append(b.Thumbprints, u.Thumbprints...)
		case UndoRemoveSPNs:
			b.SPNs = append(b.SPNs, u.SPNs...)
		case UndoRemoveAssignment:
			b.Consent = true
		default:
			b.Names = append(b.Names, u.Name)
		}
	}
	return b
}

func keyThumbprints(ks []plan.Key) []string {
	out := make([]string, 0, len(ks))
	for _, k := range ks {
		if k.Thumbprint != "" {
			out = append(out, k.Thumbprint)
		}
	}
	return out
}

// EntraDiscoverInput names the dedicated application to look for.
type EntraDiscoverInput struct {
	Target           Target `json:"target"`
	DedicatedAppName string `json:"dedicated_app_name,omitempty"`
	// AuthThumbprints are the organisation's auth certificates as
	// Get-AuthConfig lists them (current, and next when staged): when the
	// dedicated application already holds each of them, its keys need no
	// second read for their certificates (graph.ReadEntraState).
	AuthThumbprints []string `json:"auth_thumbprints,omitempty"`
}

// FirstPartyInput is what steps 4 (legacy) and 5 write to the Exchange
// Online first-party service principal, in one PATCH.
type FirstPartyInput struct {
	Target Target     `json:"target"`
	Keys   []plan.Key `json:"keys,omitempty"` // legacy mode only
	SPNs   []string   `json:"spns,omitempty"`
	// Before is the principal's keys and SPNs as the setup's discovery saw
	// them (nil: unknown).
	Before *Before `json:"before,omitempty"`
}

// DedicatedAppInput names the dedicated Exchange hybrid application.
type DedicatedAppInput struct {
	Target Target `json:"target"`
	Name   string `json:"name"` // ExchangeServerApp-<organization GUID>
}

// AppIDInput names the dedicated application by appId.
type AppIDInput struct {
	Target Target `json:"target"`
	AppID  string `json:"app_id"`
	// Before is the consent as the setup's discovery saw it (consent
	// only; nil: unknown).
	Before *Before `json:"before,omitempty"`
}

// AppKeysInput uploads auth certificates to the dedicated application.
type AppKeysInput struct {
	Target Target     `json:"target"`
	AppID  string     `json:"app_id"`
	Name   string     `json:"name"`
	Keys   []plan.Key `json:"keys"`
	// Before is the application's keys as the setup's discovery saw them
	// (nil: unknown).
	Before *Before `json:"before,omitempty"`
}

// RemoveLegacyKeysInput names the on-prem auth certificates to take off
// the first-party service principal.
type RemoveLegacyKeysInput struct {
	Target      Target   `json:"target"`
	Thumbprints []string `json:"thumbprints"`
	// ResetAll removes every key of the first-party service principal,
	// whoever uploaded it (Microsoft's
	// -ResetFirstPartyServicePrincipalKeyCredentials). Only an operator's
	// explicit, confirmed request may set it.
	ResetAll bool `json:"reset_all,omitempty"`
}

// AuthServersInput is step 1's desired state.
type AuthServersInput struct {
	Target  Target                `json:"target"`
	Servers []plan.AuthServerSpec `json:"servers"`
	// Before names the auth servers the setup's discovery saw (nil:
	// unknown).
	Before *Before `json:"before,omitempty"`
}

// AuthServerAppInput points the evoSTS auth server at the dedicated app.
type AuthServerAppInput struct {
	Target  Target              `json:"target"`
	EvoSTS  plan.AuthServerSpec `json:"evo_sts"`
	AppID   string              `json:"app_id"`
	Domains []string            `json:"domains"`
}

// SettingOverrideInput is the setting override step's input. Target is
// embedded so that inputs recorded as a bare Target still decode.
type SettingOverrideInput struct {
	Target
	// ConsentGranted says whether the dedicated application has admin
	// consent, which only the workflow knows (from discovery and the
	// dedicated-app step); nil for setups recorded before it was passed,
	// which skip that one check.
	ConsentGranted *bool `json:"consent_granted,omitempty"`
	// ConnectorsFirst: the setup's plan runs the connector steps before
	// this one, so an enabled connector can be required. A setup planned
	// when the override came before the connectors cannot have one yet on
	// a fresh organisation; it keeps its old behaviour (no connector check).
	ConnectorsFirst bool `json:"connectors_first,omitempty"`
	// Before names the setting overrides the setup's discovery saw (nil:
	// unknown).
	Before *Before `json:"before,omitempty"`
}

// IOCInput is a connector spec for steps 6 and 7.
type IOCInput struct {
	Target Target       `json:"target"`
	Spec   plan.IOCSpec `json:"spec"`
	// Before names the connectors of the step's side the setup's
	// discovery saw (nil: unknown).
	Before *Before `json:"before,omitempty"`
}

// AvailabilityInput is step 8's address space.
type AvailabilityInput struct {
	Target Target                `json:"target"`
	Spec   plan.AvailabilitySpec `json:"spec"`
	// Before names the forests of the address spaces the setup's
	// discovery saw (nil: unknown).
	Before *Before `json:"before,omitempty"`
}
