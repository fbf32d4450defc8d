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

// Evidence for an object found after a lost reply or a lost result.
const evidenceAbsentBefore = "absent when this run discovered the tenant, and found exactly as this run sends it"

// sameObject says whether id is the object the observation describes: it
// is, or the object did not exist then (everything on it is new).
func sameObject(b *Before, id string) bool {
	return b != nil && (b.ObjectID == "" || strings.EqualFold(b.ObjectID, id))
}

// absent says whether an Exchange object of this name can be claimed:
// Before is known and lists no object of that name (Exchange names are
// case-insensitive).
func absent(b *Before, name string) bool {
	return b != nil && !slices.ContainsFunc(b.Names, func(n string) bool { return strings.EqualFold(strings.TrimSpace(n), strings.TrimSpace(name)) })
}

// newKeys returns the thumbprints (as plan.MergeKeys reports added keys)
// of the wanted keys that are on object id now and were not before: keys
// this run uploaded. Nothing when Before is unknown or describes another
// object.
func newKeys(b *Before, id string, current, want []plan.Key, now time.Time) []string {
	if !sameObject(b, id) {
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
func newSPNs(b *Before, id string, current, want []string) []string {
	if !sameObject(b, id) {
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
