package steps

import (
	"slices"
	"strings"
	"time"

	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// Registry is the setup's steps in the documented order: the manual
// procedure's steps, with the dedicated application in place of the
// legacy upload and the setting override after the connectors it depends
// on, verification, then the legacy-key clean-up and a second
// verification. The plan has one action per entry, in this order; a run
// follows its recorded plan's order and finds each step here by name.
var Registry = []Step{
	AuthServers,
	PartnerApplication,
	ExportCertificate,
	DedicatedApplication,
	KeyCredentials,
	RegisterSPNs,
	AuthServerApplication,
	IOCOnPrem,
	IOCOnline,
	SettingOverride,
	AvailabilityAddressSpace,
	Verify,
	RemoveLegacyKey,
	VerifyAfterRemoval,
}

// BuildPlan is the setup's plan: each registered step's decision, in the
// registry's order (plan.BuildPlanWith). The planning local activity runs
// it, so that the plan is recorded in the run's history.
func BuildPlan(d plan.Desired, o plan.Observed, now time.Time) []plan.Action {
	chain := make([]plan.Decision, len(Registry))
	for i, s := range Registry {
		chain[i] = plan.Decision{Step: s.Name, Decide: s.Decide}
	}
	return plan.BuildPlanWith(chain, d, o, now)
}

// Lookup finds a step by name; an unknown one (a plan from a release that
// had it) is a step without activities, which Execute refuses.
func Lookup(name plan.Step) Step {
	for _, s := range Registry {
		if s.Name == name {
			return s
		}
	}
	return Step{Name: name}
}

// DescribeRecord names an undo record in the compensation list: its kind,
// the Exchange object's name, the Graph object.
func DescribeRecord(u contract.UndoRecord) string {
	parts := []string{u.Kind}
	if u.Name != "" {
		parts = append(parts, u.Name)
	}
	if u.ObjectID != "" {
		parts = append(parts, u.ObjectKind+" "+u.ObjectID)
	}
	return strings.Join(parts, " ")
}

// Graph is the run's step graph: the one recorded with its plan
// (PlanOutput.After), or for a plan recorded without a well-formed one
// (each action waiting only for earlier ones), Graph of its actions.
func (r *Run) Graph() [][]int {
	a := r.Plan.After
	ok := len(a) == len(r.Plan.Actions)
	for i := 0; ok && i < len(a); i++ {
		for _, j := range a[i] {
			ok = ok && j >= 0 && j < i
		}
	}
	if ok {
		return a
	}
	return Graph(r.Plan.Actions)
}

// Graph is the step graph of a plan's actions: for each action, the indices
// of the earlier actions it waits for (its step's After among them, or all
// of them when AfterAll). Only earlier actions count, so that any recorded
// order stays runnable; actions with no entry start together.
func Graph(actions []plan.Action) [][]int {
	deps := make([][]int, len(actions))
	for i, a := range actions {
		s := Lookup(a.Step)
		for j := range i {
			if s.AfterAll || slices.Contains(s.After, actions[j].Step) {
				deps[i] = append(deps[i], j)
			}
		}
	}
	return deps
}
