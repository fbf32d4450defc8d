package sim

import (
	"github.com/hybridflow/hybridflow/internal/config"
)

// Inventory is the tenant inventory an operator would write for this
// world: identity, cloud, initial domain and site, everything else left
// to discovery. Tests and the demo derive their inventories from it.
func (w *World) Inventory() *config.Inventory {
	w.mu.Lock()
	defer w.mu.Unlock()
	inv := &config.Inventory{File: "(simulated world)"}
	for _, t := range w.Tenants {
		ct := config.Tenant{ID: t.ID, DisplayName: t.DisplayName, Cloud: t.Cloud, InitialDomain: t.InitialDomain, Site: t.Site}
		if t.Lync != nil {
			ct.LyncSite = t.Lync.Site
		}
		inv.Tenants = append(inv.Tenants, ct)
	}
	return inv
}
