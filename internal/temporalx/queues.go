// Package temporalx is hybridflow's Temporal plumbing: task-queue naming,
// client options from configuration, search-attribute registration.
package temporalx

import "github.com/hybridflow/hybridflow/internal/config"

// CloudQueue carries every workflow and the cloud activities (Graph,
// Exchange Online REST); its workers can run anywhere.
const CloudQueue = "hybridflow-cloud"

// OnPremQueue is the task queue of the activities that must run next to an
// on-prem Exchange organisation at a site.
func OnPremQueue(site string) string { return "hybridflow-onprem-" + site }

// LyncQueue is the task queue of the Lync activities at a site.
func LyncQueue(site string) string { return "hybridflow-lync-" + site }

// QueueForRole maps a worker role to the task queue it polls.
func QueueForRole(r config.Role) string {
	switch r.Kind {
	case config.RoleOnPrem:
		return OnPremQueue(r.Site)
	case config.RoleLync:
		return LyncQueue(r.Site)
	default:
		return CloudQueue
	}
}

// QueueNeed is a task queue an inventory needs served, and whether the
// queue carries workflow tasks (only the cloud queue does).
type QueueNeed struct {
	Queue     string `json:"queue"`
	Role      string `json:"role"`
	Workflows bool   `json:"workflows"`
}

// QueuesForInventory lists the queues an inventory needs, cloud first,
// then sites in inventory order without repeats.
func QueuesForInventory(inv *config.Inventory) []QueueNeed {
	out := []QueueNeed{{Queue: CloudQueue, Role: "cloud", Workflows: true}}
	seen := map[string]bool{CloudQueue: true}
	add := func(q, role string) {
		if !seen[q] {
			seen[q] = true
			out = append(out, QueueNeed{Queue: q, Role: role})
		}
	}
	if inv == nil {
		return out
	}
	for _, t := range inv.Tenants {
		add(OnPremQueue(t.Site), "onprem:"+t.Site)
		if t.LyncSite != "" {
			add(LyncQueue(t.LyncSite), "lync:"+t.LyncSite)
		}
	}
	return out
}
