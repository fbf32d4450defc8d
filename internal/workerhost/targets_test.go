package workerhost

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/sim"
)

func registeredFor[T any](t *testing.T, reg Registrar, role config.Role) T {
	t.Helper()
	var r recorder
	if err := reg(role, &r); err != nil {
		t.Fatal(err)
	}
	for _, a := range r.acts {
		if v, ok := a.(T); ok {
			return v
		}
	}
	var zero T
	t.Fatalf("role %s registers no %T", role, zero)
	return zero
}

// refusedField fails the test unless err is a non-retryable InvalidInput
// naming field.
func refusedField(t *testing.T, what string, err error, field string) {
	t.Helper()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrInvalidInput || !app.NonRetryable() || !strings.Contains(err.Error(), field) {
		t.Fatalf("%s: %v; want a non-retryable %s naming %s", what, err, activities.ErrInvalidInput, field)
	}
	t.Logf("%s: %v", what, err)
}

// TestForBackendChecksTargets: the activities ForBackend registers, as
// hybridflow-worker registers them, refuse a target the worker's config
// does not allow before any request reaches the (simulated) services, and
// serve the same tenant's proper target.
func TestForBackendChecksTargets(t *testing.T) {
	w, err := sim.Load("../../configs/sim/small.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	be, err := backend.NewSimulated(ctx, w, zap.NewNop(), backend.SimOptions{DirectShell: true})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	tn := w.Tenants[0] // Small 1: global, site-1
	good := activities.Target{TenantID: tn.ID, Cloud: tn.Cloud, Site: tn.Site}
	cfg, err := config.ParseWorkerConfig("worker.yaml", []byte(`simulate: {world: configs/sim/small.yaml}
roles: [cloud, "onprem:site-1", "onprem:site-2"]
credentials:
  default: {kind: azure-cli}
  gov: {kind: azure-cli, clouds: [gcchigh, dod]}
exchange_online_hosts: [outlook.example-sovereign.com]
`), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	reg := ForBackend(be, "targets-test", WithConfig(cfg))
	calls := func() int64 { s := w.Stats(); return s.GraphReads + s.EXOCalls + s.ShellRoundTrips }

	onprem1 := registeredFor[*activities.OnPrem](t, reg, config.Role{Kind: config.RoleOnPrem, Site: "site-1"})
	onprem2 := registeredFor[*activities.OnPrem](t, reg, config.Role{Kind: config.RoleOnPrem, Site: "site-2"})
	entra := registeredFor[*activities.Entra](t, reg, config.Role{Kind: config.RoleCloud})
	online := registeredFor[*activities.Online](t, reg, config.Role{Kind: config.RoleCloud})

	before := calls()
	// site-1's target on site-2's queue: site-2 is another organisation.
	_, err = onprem2.DiscoverOnPrem(ctx, good)
	refusedField(t, "on-prem target of another site", err, "target.site")
	bad := good
	bad.TenantID = "../../tenants"
	_, err = onprem1.DiscoverOnPrem(ctx, bad)
	refusedField(t, "on-prem target with a bad tenant ID", err, "target.tenant_id")
	bad = good
	bad.Credential = "stolen"
	_, err = entra.DiscoverEntra(ctx, activities.EntraDiscoverInput{Target: bad})
	refusedField(t, "unknown credential", err, "target.credential")
	bad = good
	bad.Credential = "gov"
	_, err = entra.DiscoverEntra(ctx, activities.EntraDiscoverInput{Target: bad})
	refusedField(t, "credential of another cloud", err, "credentials.gov.clouds")
	bad = good
	bad.ExchangeOnlineHost = "exo.attacker.example"
	_, err = online.DiscoverOnline(ctx, bad)
	refusedField(t, "foreign Exchange Online host", err, "target.exchange_online_host")
	_, err = onprem1.DiscoverOnPrem(ctx, bad)
	refusedField(t, "foreign Exchange Online host on-prem", err, "target.exchange_online_host")
	renewal2 := registeredFor[*activities.Renewal](t, reg, config.Role{Kind: config.RoleOnPrem, Site: "site-2"})
	_, err = renewal2.ReadAuthCertificate(ctx, good)
	refusedField(t, "renewal's on-prem target of another site", err, "target.site")
	lync := registeredFor[*activities.Lync](t, reg, config.Role{Kind: config.RoleLync, Site: "site-1"})
	bad = good
	bad.LyncSite = "site-9"
	_, err = lync.DiscoverLync(ctx, bad)
	refusedField(t, "Lync target of another site", err, "target.lync_site")
	bad = good
	bad.Cloud = "moon"
	_, err = entra.DiscoverEntra(ctx, activities.EntraDiscoverInput{Target: bad})
	refusedField(t, "unknown cloud", err, "target.cloud")
	if n := calls() - before; n != 0 {
		t.Fatalf("refused targets made %d requests to the services", n)
	}

	// The proper target, and the configured extra host, are served.
	if _, err := onprem1.DiscoverOnPrem(ctx, good); err != nil {
		t.Fatalf("on-prem discovery of the proper target: %v", err)
	}
	if _, err := entra.DiscoverEntra(ctx, activities.EntraDiscoverInput{Target: good}); err != nil {
		t.Fatalf("Entra discovery of the proper target: %v", err)
	}
	if calls() == before {
		t.Fatal("the proper target made no requests: the counter proves nothing")
	}
	allowedHost := good
	allowedHost.ExchangeOnlineHost = "outlook.example-sovereign.com"
	if _, err := activities.CheckedClients(be, activities.RulesFromConfig(cfg)).ExchangeOnline(allowedHost); err != nil {
		t.Fatalf("a host listed in exchange_online_hosts: %v", err)
	}
}

// TestForBackendInventoryDir: the cloud role reads inventory files only in
// the configured inventory.dir; without one it reads none.
func TestForBackendInventoryDir(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.yaml")
	data := "tenants:\n  - id: 22222222-2222-4222-8222-000000000001\n    display_name: One\n    cloud: global\n    initial_domain: one.onmicrosoft.com\n    site: site-1\n"
	if err := os.WriteFile(inv, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	be := &backend.Backend{}
	cloud := config.Role{Kind: config.RoleCloud}
	in := activities.InventoryPageInput{Path: inv, Limit: 10}

	_, err := registeredFor[*activities.Inventory](t, ForBackend(be, "x"), cloud).LoadInventoryPage(context.Background(), in)
	refusedField(t, "no inventory.dir", err, "inventory.dir")

	cfg := &config.WorkerConfig{InventoryDir: dir, Simulate: &config.SimulateConfig{}}
	page, err := registeredFor[*activities.Inventory](t, ForBackend(be, "x", WithConfig(cfg)), cloud).LoadInventoryPage(context.Background(), in)
	if err != nil || page.Total != 1 {
		t.Fatalf("inventory in inventory.dir: %+v, %v", page, err)
	}
	other := &config.WorkerConfig{InventoryDir: t.TempDir(), Simulate: &config.SimulateConfig{}}
	_, err = registeredFor[*activities.Inventory](t, ForBackend(be, "x", WithConfig(other)), cloud).LoadInventoryPage(context.Background(), in)
	refusedField(t, "inventory outside inventory.dir", err, "outside inventory.dir")
}
