package steps

import (
	"strings"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// Registry is the setup's steps in the documented order. A run follows
// its recorded plan's order and finds each step here by name.
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
func DescribeRecord(u activities.UndoRecord) string {
	parts := []string{u.Kind}
	if u.Name != "" {
		parts = append(parts, u.Name)
	}
	if u.ObjectID != "" {
		parts = append(parts, u.ObjectKind+" "+u.ObjectID)
	}
	return strings.Join(parts, " ")
}
