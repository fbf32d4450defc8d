package bench

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// TestConvergedTenantsReadGraphOnce: on a converged re-run through the
// dev server and the real Graph client, every tenant's discovery is one
// Graph request, including tenants whose first-party service principal
// holds keys (legacy mode, or another application's key there), whose
// certificates the worker reads in that same request by the object ID it
// learnt on the fresh run. Throttling and 5xx are off here: each retried
// batch is one more request (the bench's profile injects them).
func TestConvergedTenantsReadGraphOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the dev server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := smokeProfile()
	p.ThrottleRate, p.ServerErrorRate = 0, 0
	d, err := StartDurable(ctx, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	w, err := NewWorld(40, 9, p)
	if err != nil {
		t.Fatal(err)
	}
	_, conv := freshThenConverged(t, ctx, d, w, 10, "once", 0, 0)
	withKeys := 0
	for _, id := range tenantIDs(w) {
		w.View(id, func(tn *sim.Tenant) {
			for _, sp := range tn.Entra.ServicePrincipals {
				if sp.AppID == cloud.FirstPartyAppID && len(sp.KeyCredentials) > 0 {
					withKeys++
				}
			}
		})
		c := conv.Stats.ByTenant[id]
		if c == nil || c.GraphReads != 1 || c.GraphWrites != 0 || c.Writes != 0 {
			t.Errorf("tenant %s on the converged re-run: %+v; want 1 Graph read and no write", id, c)
		}
	}
	if withKeys == 0 {
		t.Fatal("no tenant of the world has keys on the first-party service principal: the test proves nothing about them")
	}
	t.Logf("40 converged tenants, %d with keys on the first-party service principal: one Graph request each", withKeys)
}
