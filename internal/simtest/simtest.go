// Package simtest gives tests a simulated world and the backend that serves
// it, the set-up most activity and workflow tests begin with.
package simtest

import (
	"context"
	"testing"

	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// World loads the world file at path.
func World(t testing.TB, path string) *sim.World {
	t.Helper()
	w, err := sim.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// Backend serves w through the simulated backend (o: its shell options)
// until the test ends.
func Backend(t testing.TB, w *sim.World, o backend.SimOptions) *backend.Backend {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	be, err := backend.NewSimulated(ctx, w, zap.NewNop(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(be.Close)
	return be
}
