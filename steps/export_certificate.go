package steps

import (
	"strings"

	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// ExportCertificate is step 3: export the auth certificate's public part.
// Discovery already read the public DER of the certificates Get-AuthConfig
// names, so the step calls nothing and writes nothing; it records which
// certificates the upload will use. Nothing to undo.
var ExportCertificate = Step{Name: plan.StepExportCert, Summary: "Step 3: export the on-premises authorization certificate",
	Decide: plan.DecideExportCertStep, Exec: func(r *Run, a plan.Action) error {
		var tps []string
		for _, k := range r.Plan.Desired.Keys {
			tps = append(tps, k.Thumbprint)
		}
		r.Record(a.Step, contract.StepResult{Outcome: contract.Unchanged, Detail: "exported " + strings.Join(tps, ", ")})
		return nil
	}}
