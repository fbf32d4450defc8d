package sim_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/sim"
)

var update = flag.Bool("update", false, "rewrite configs/inventory.demo.yaml from configs/sim/demo.yaml")

// The demo inventory is what an operator would write for the demo world:
// the committed file must list exactly the world's tenants and sites.
func TestDemoInventoryMatchesDemoWorld(t *testing.T) {
	w, err := sim.Load(filepath.Join("..", "..", "configs", "sim", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := w.Inventory()
	path := filepath.Join("..", "..", "configs", "inventory.demo.yaml")
	if *update {
		var b strings.Builder
		b.WriteString("# Inventory for the demo world (configs/sim/demo.yaml): identity, cloud,\n# initial domain and site per tenant; everything else is discovered.\n# Regenerate with: go test ./internal/sim -run TestDemoInventory -update\ntenants:\n")
		for _, ten := range want.Tenants {
			b.WriteString("  - id: " + ten.ID + "\n    display_name: " + ten.DisplayName + "\n    cloud: " + ten.Cloud +
				"\n    initial_domain: " + ten.InitialDomain + "\n    site: " + ten.Site + "\n")
			if ten.LyncSite != "" {
				b.WriteString("    lync_site: " + ten.LyncSite + "\n")
			}
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := config.LoadInventory(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Tenants) != len(want.Tenants) {
		t.Fatalf("inventory has %d tenants, world %d", len(got.Tenants), len(want.Tenants))
	}
	for i := range want.Tenants {
		g, w := got.Tenants[i], want.Tenants[i]
		if g.ID != w.ID || g.Site != w.Site || g.Cloud != w.Cloud || g.InitialDomain != w.InitialDomain || g.LyncSite != w.LyncSite {
			t.Errorf("tenant %d: inventory %+v, world %+v", i, g, w)
		}
	}
}
