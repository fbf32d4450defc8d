package workerhost

import (
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/workflows"
)

// RegisterOption adds what the worker's configuration says to what
// ForBackend registers.
type RegisterOption func(*registration)

type registration struct {
	rules        *activities.TargetRules
	inventoryDir string
}

// WithConfig holds activity targets to the worker configuration's
// credentials and Exchange Online hosts, and lets the cloud role read
// inventory files in its inventory.dir.
func WithConfig(cfg *config.WorkerConfig) RegisterOption {
	return func(r *registration) {
		r.rules = activities.RulesFromConfig(cfg)
		r.inventoryDir = cfg.InventoryDir
	}
}

// WithInventoryDir lets the cloud role read inventory files in dir (and
// nowhere else), as inventory.dir does; it overrides WithConfig's.
func WithInventoryDir(dir string) RegisterOption {
	return func(r *registration) { r.inventoryDir = dir }
}

// ForBackend returns what each role registers, with activity structs
// holding the backend's clients: the cloud role gets every workflow and the
// Graph / Exchange Online activities, an on-prem role the on-prem Exchange
// activities, each on its own task queue. Tests and the worker binary use
// the same function, so what is tested is what runs.
//
// Every activity's target is checked before a client is built for it
// (activities.TargetRules): a site role serves only targets at its own
// site, and with WithConfig the credential and Exchange Online host must
// be ones the configuration allows. Without WithConfig or
// WithInventoryDir the cloud role reads no inventory file.
func ForBackend(b *backend.Backend, identity string, opts ...RegisterOption) Registrar {
	reg := registration{rules: &activities.TargetRules{}}
	for _, o := range opts {
		o(&reg)
	}
	return func(role config.Role, r worker.Registry) error {
		r.RegisterActivity(&activities.Health{Worker: identity, Role: role.String(), Backend: b.Kind()})
		switch role.Kind {
		case config.RoleCloud:
			clients := activities.CheckedClients(b, reg.rules)
			RegisterWorkflows(r)
			r.RegisterActivity(&activities.Entra{Clients: clients})
			r.RegisterActivity(&activities.Online{Clients: clients})
			r.RegisterActivity(&activities.Inventory{Dir: reg.inventoryDir})
			// Renewal's Graph methods; its PowerShell methods run on-prem.
			r.RegisterActivity(&activities.Renewal{Clients: clients})
			// The planning functions the workflows on this worker run as
			// local activities.
			r.RegisterActivityWithOptions(activities.PlanSetup, activity.RegisterOptions{Name: contract.ActPlanSetup})
			r.RegisterActivityWithOptions(activities.PlanLync, activity.RegisterOptions{Name: contract.ActPlanLync})
			r.RegisterActivityWithOptions(activities.DecideRenewalMode, activity.RegisterOptions{Name: contract.ActDecideRenewalMode})
			r.RegisterActivityWithOptions(activities.DecideRenewal, activity.RegisterOptions{Name: contract.ActDecideRenewal})
		case config.RoleOnPrem:
			hosts := activities.OnPremHostsFor(b, role, reg.rules)
			r.RegisterActivity(&activities.OnPrem{Hosts: hosts})
			r.RegisterActivity(&activities.Renewal{Hosts: hosts})
		case config.RoleLync:
			r.RegisterActivity(&activities.Lync{Hosts: activities.LyncHostsFor(b, role, reg.rules)})
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
	r.RegisterWorkflow(workflows.VerifyInventory)
}
