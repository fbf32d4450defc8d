package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/config"
)

// inventoryPager hands out an inventory's tenants in order, for Rollout
// and VerifyInventory: inline tenants directly, a file's page by page
// through the cloud worker's LoadInventoryPage activity, so that a large
// inventory travels by reference. The position and the size live in the
// caller's continue-as-new carry (next, total), so the next run resumes
// where this one stopped.
type inventoryPager struct {
	path   string
	inline []config.Tenant
	next   *int
	total  *int
	// hashed, when set, says (it is asked before each page is read, where
	// a workflow version check belongs) whether this run keeps the file's
	// SHA-256 in sha: sent with every page request after the first, and a
	// page from a file with another hash is refused.
	hashed func(workflow.Context) bool
	sha    *string
	// endKnown: the run is at changeNoEmptyHandover version 1
	// (knowsItsEnd), so doneAtShare may answer yes.
	endKnown bool
	page     []config.Tenant
	pageAt   int
}

// nextTenant returns the next tenant; ok is false past the last one.
func (p *inventoryPager) nextTenant(ctx workflow.Context) (config.Tenant, bool, error) {
	if p.path == "" {
		*p.total = len(p.inline)
		if *p.next >= len(p.inline) {
			return config.Tenant{}, false, nil
		}
		t := p.inline[*p.next]
		*p.next++
		return t, true, nil
	}
	if p.page == nil || *p.next >= p.pageAt+len(p.page) {
		if *p.total > 0 && *p.next >= *p.total {
			return config.Tenant{}, false, nil
		}
		page, err := p.load(ctx)
		if err != nil {
			return config.Tenant{}, false, err
		}
		p.page, p.pageAt, *p.total = page.Tenants, *p.next, page.Total
		if len(page.Tenants) == 0 {
			return config.Tenant{}, false, nil
		}
	}
	t := p.page[*p.next-p.pageAt]
	*p.next++
	return t, true, nil
}

// changeNoEmptyHandover versions a Rollout or VerifyInventory run's
// knowing that its inventory is done when the start that completes its
// share was the last tenant (version 1). Earlier runs learnt it only by
// asking for one more tenant, which the share no longer allowed, so one
// whose size is a multiple of the share continued as new once more with
// nothing to start. Only a run's last command differs (complete instead of
// continue as new), which replay does not compare; the version keeps runs
// started before the change ending as they began.
const changeNoEmptyHandover = "inventory-no-empty-handover"

// knowsItsEnd asks, once at the start of a run, whether the run is at
// changeNoEmptyHandover version 1.
func knowsItsEnd(ctx workflow.Context) bool {
	return workflow.GetVersion(ctx, changeNoEmptyHandover, workflow.DefaultVersion, 1) >= 1
}

// doneAtShare reports whether a run that has started started tenants of
// its share of every has handed out the inventory's last one, as far as
// the pager knows without reading: the share is complete, the inventory's
// size is known (inline, or from a page read) and the position has
// reached it. Always false before changeNoEmptyHandover.
func (p *inventoryPager) doneAtShare(started, every int) bool {
	if !p.endKnown || started < every {
		return false
	}
	if p.path == "" {
		return *p.next >= len(p.inline)
	}
	return *p.total > 0 && *p.next >= *p.total
}

// load reads the page that starts at the next tenant.
func (p *inventoryPager) load(ctx workflow.Context) (contract.InventoryPage, error) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 5, NonRetryableErrorTypes: []string{contract.ErrInvalidInput}}})
	req := contract.InventoryPageInput{Path: p.path, Offset: *p.next, Limit: inventoryPageSize}
	hashed := p.hashed != nil && p.hashed(ctx)
	if hashed {
		req.SHA256 = *p.sha
	}
	var page contract.InventoryPage
	if err := workflow.ExecuteActivity(actx, contract.ActLoadInventoryPage, req).Get(ctx, &page); err != nil {
		return page, fmt.Errorf("load inventory page at %d: %w", *p.next, err)
	}
	if !hashed {
		return page, nil
	}
	switch {
	case *p.sha == "":
		*p.sha = page.SHA256
	case page.SHA256 != "" && page.SHA256 != *p.sha:
		// The activity compares too; this holds even against a worker
		// that did not.
		return page, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("load inventory page at %d: inventory %s changed after the rollout read its first page (SHA-256 then %.12s…, now %.12s…)",
				*p.next, p.path, *p.sha, page.SHA256), contract.ErrInventoryChanged, nil)
	}
	return page, nil
}
