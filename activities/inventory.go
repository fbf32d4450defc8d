package activities

import (
	"context"
	"path/filepath"

	"github.com/hybridflow/hybridflow/internal/config"
)

// Inventory reads tenant inventories on the cloud worker, page by page, so
// that a rollout over thousands of tenants carries a file reference in its
// history instead of the whole inventory.
type Inventory struct {
	// BaseDir resolves relative inventory paths ("" = working directory).
	BaseDir string
}

// InventoryPageInput asks for tenants [Offset, Offset+Limit).
type InventoryPageInput struct {
	Path   string `json:"path"`
	Offset int    `json:"offset"`
	Limit  int    `json:"limit"`
}

// InventoryPage is one page of validated tenants and the inventory's size.
type InventoryPage struct {
	Tenants []config.Tenant `json:"tenants"`
	Total   int             `json:"total"`
}

// LoadInventoryPage validates the whole inventory (every problem is an
// InvalidInput error naming file, line and field) and returns one page.
func (a *Inventory) LoadInventoryPage(_ context.Context, in InventoryPageInput) (InventoryPage, error) {
	path := in.Path
	if a.BaseDir != "" && !filepath.IsAbs(path) {
		path = filepath.Join(a.BaseDir, path)
	}
	inv, err := config.LoadInventory(path)
	if err != nil {
		return InventoryPage{}, nonRetryable(ErrInvalidInput, "inventory %s: %v", in.Path, err)
	}
	total := len(inv.Tenants)
	lo, hi := min(max(in.Offset, 0), total), min(max(in.Offset, 0)+max(in.Limit, 0), total)
	return InventoryPage{Tenants: inv.Tenants[lo:hi], Total: total}, nil
}
