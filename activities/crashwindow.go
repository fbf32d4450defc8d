package activities

import (
	"slices"
	"strings"
	"time"

	"github.com/hybridflow/hybridflow/internal/plan"
)

// The crash window. A step's write can take effect without its result
// reaching the workflow: the reply is lost (a dropped connection, a
// gateway's 504, a PowerShell host that dies after the cmdlet ran), or the
// worker dies after the write and before the step's completion is
// recorded (a cloud step runs as a local activity, recorded only when the
// workflow task it ran in completes; an on-prem step's completion is
// reported after the call returns). The step then runs again and finds its
// object already there. Found is not the same as made by someone else: the
// setup's discovery saw the tenant before the run wrote anything, and an
// object that discovery did not see, found now exactly as the step sends
// it, was made by this run (no other hybridflow run writes the tenant
// while this one holds its write lock). The step then records the undo
// its own write would have recorded, saying how it proved the object its
// own (UndoRecord.Evidence). An object discovery saw is only ever adopted.

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

// Evidence for an object found after a lost reply or a lost result.
const evidenceAbsentBefore = "absent when this run discovered the tenant, and found exactly as this run sends it"

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

// sameObject says whether id is the object the observation describes: it
// is, or the object did not exist then (everything on it is new).
func (b *Before) sameObject(id string) bool {
	return b != nil && (b.ObjectID == "" || strings.EqualFold(b.ObjectID, id))
}

// absent says whether an Exchange object of this name can be claimed:
// Before is known and lists no object of that name (Exchange names are
// case-insensitive).
func (b *Before) absent(name string) bool {
	return b != nil && !slices.ContainsFunc(b.Names, func(n string) bool { return strings.EqualFold(strings.TrimSpace(n), strings.TrimSpace(name)) })
}

// newKeys returns the thumbprints (as plan.MergeKeys reports added keys)
// of the wanted keys that are on object id now and were not before: keys
// this run uploaded. Nothing when Before is unknown or describes another
// object.
func (b *Before) newKeys(id string, current, want []plan.Key, now time.Time) []string {
	if !b.sameObject(id) {
		return nil
	}
	prior := make([]plan.Key, 0, len(b.Thumbprints))
	for _, tp := range b.Thumbprints {
		prior = append(prior, plan.Key{Thumbprint: tp})
	}
	var out []string
	for _, k := range want {
		was := plan.MergeKeys(prior, []plan.Key{k}, now, plan.MergeOptions{})
		if len(was.Added) == 0 {
			continue // there before the run (or not a key the step would add)
		}
		if is := plan.MergeKeys(current, []plan.Key{k}, now, plan.MergeOptions{}); is.Changed || len(is.Rejected) > 0 {
			continue // not there now
		}
		for _, tp := range was.Added {
			if !slices.Contains(out, tp) {
				out = append(out, tp)
			}
		}
	}
	return out
}

// newSPNs returns the wanted SPNs (as plan.UnionSPNs would add them) that
// object id has now and did not have before.
func (b *Before) newSPNs(id string, current, want []string) []string {
	if !b.sameObject(id) {
		return nil
	}
	var out []string
	for _, s := range plan.UnionSPNs(b.SPNs, want).Added {
		if !plan.UnionSPNs(current, []string{s}).Changed {
			out = append(out, s)
		}
	}
	return out
}

// claimedHow words how a claimed object was proven this run's, for a
// step's detail.
func claimedHow(what string) string {
	return what + " (the result of an earlier write of this run was lost; " + evidenceAbsentBefore + ")"
}
