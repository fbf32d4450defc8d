package contract

import "github.com/hybridflow/hybridflow/internal/config"

// ErrInventoryChanged: the inventory file is not the one the rollout
// began paging through; paging by position through another file would
// skip or repeat tenants.
const ErrInventoryChanged = "InventoryChanged"

// InventoryPageInput asks for tenants [Offset, Offset+Limit).
type InventoryPageInput struct {
	Path   string `json:"path"`
	Offset int    `json:"offset"`
	Limit  int    `json:"limit"`
	// SHA256 is the hex SHA-256 the file had when the rollout read its
	// first page; "" for that first read. A file with another hash is
	// refused with ErrInventoryChanged.
	SHA256 string `json:"sha256,omitempty"`
}

// InventoryPage is one page of validated tenants and the inventory's size.
type InventoryPage struct {
	Tenants []config.Tenant `json:"tenants"`
	Total   int             `json:"total"`
	// SHA256 is the hex SHA-256 of the file the page was read from.
	SHA256 string `json:"sha256,omitempty"`
}

// ProbeResult is what Probe reports.
type ProbeResult struct {
	Worker    string `json:"worker"`
	Role      string `json:"role"`
	TaskQueue string `json:"task_queue"`
	Backend   string `json:"backend"`
	Checked   bool   `json:"checked"`
}
