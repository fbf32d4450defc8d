package workerhost

import (
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/workflows"
)

// ForBackend returns what each role registers, with activity structs
// holding the backend's clients: the cloud role gets every workflow and the
// Graph / Exchange Online activities, an on-prem role the on-prem Exchange
// activities, each on its own task queue. Tests and the worker binary use
// the same function, so what is tested is what runs.
func ForBackend(b *backend.Backend, identity string) Registrar {
	return func(role config.Role, r worker.Registry) error {
		r.RegisterActivity(&activities.Health{Worker: identity, Role: role.String(), Backend: b.Kind()})
		switch role.Kind {
		case config.RoleCloud:
			RegisterWorkflows(r)
			r.RegisterActivity(&activities.Entra{Clients: b})
			r.RegisterActivity(&activities.Online{Clients: b})
			r.RegisterActivity(&activities.Inventory{})
			// Renewal's Graph methods; its PowerShell methods run on-prem.
			r.RegisterActivity(&activities.Renewal{Clients: b})
			r.RegisterActivityWithOptions(activities.PlanSetup, activity.RegisterOptions{Name: "PlanSetup"})
		case config.RoleOnPrem:
			r.RegisterActivity(&activities.OnPrem{Hosts: b})
			r.RegisterActivity(&activities.Renewal{Hosts: b})
		case config.RoleLync:
			r.RegisterActivity(&activities.Lync{Hosts: b})
		}
		return nil
	}
}

// RegisterWorkflows registers every workflow type.
func RegisterWorkflows(r worker.Registry) {
	r.RegisterWorkflow(workflows.Probe)
	r.RegisterWorkflow(workflows.Setup)
	r.RegisterWorkflow(workflows.Rollout)
	r.RegisterWorkflow(workflows.LyncIntegration)
	r.RegisterWorkflow(workflows.Renewal)
	r.RegisterWorkflow(workflows.TenantLock)
}
