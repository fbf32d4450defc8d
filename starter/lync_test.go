package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/devserver"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/workerhost"
	"github.com/hybridflow/hybridflow/workflows"
)

// Tenants of the CLI tests: a, b and c have simulated Lync deployments;
// x1 and x2 share a Lync site but not a cloud.
const (
	lyncA  = "44444444-4444-4444-8444-00000000000a"
	lyncB  = "44444444-4444-4444-8444-00000000000b"
	lyncC  = "44444444-4444-4444-8444-00000000000c"
	lyncX1 = "44444444-4444-4444-8444-0000000000f1"
	lyncX2 = "44444444-4444-4444-8444-0000000000f2"
)

const lyncInventory = `tenants:
  - id: ` + lyncA + `
    display_name: Lync A
    cloud: global
    initial_domain: lynca.onmicrosoft.com
    site: site-a
    lync_site: lync-a
  - id: ` + lyncB + `
    display_name: Lync B
    cloud: china
    initial_domain: lyncb.partner.onmschina.cn
    site: site-b
    lync_site: lync-b
  - id: ` + lyncC + `
    display_name: Lync C
    cloud: global
    initial_domain: lyncc.onmicrosoft.com
    site: site-c
    lync_site: lync-c
  - id: ` + lyncX1 + `
    display_name: Lync X1
    cloud: global
    initial_domain: lyncx1.onmicrosoft.com
    site: site-x
    lync_site: lync-x
  - id: ` + lyncX2 + `
    display_name: Lync X2
    cloud: china
    initial_domain: lyncx2.partner.onmschina.cn
    site: site-x
    lync_site: lync-x
  - id: 44444444-4444-4444-8444-0000000000e0
    display_name: No Lync
    cloud: global
    initial_domain: nolync.onmicrosoft.com
    site: site-e
`

func lyncWorldTenant(id, name, cloud, domain, site string, feLag int) string {
	return fmt.Sprintf(`  - id: %s
    display_name: %s
    cloud: %s
    initial_domain: %s
    site: site-%s
    lync:
      site: %s
      allow_federated_users: false
      replicas:
        - fqdn: fe01.%s.example.com
          up_to_date: true
          lag_checks: %d
        - fqdn: edge01.%s.example.com
          up_to_date: true
      external_access_policies:
        - identity: Global
          enable_outside_access: true
`, id, name, cloud, domain, site, site, site, feLag, site)
}

func writeLyncInventory(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "lync.yaml")
	if err := os.WriteFile(p, []byte(lyncInventory), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLyncFlagsResolveTheSite(t *testing.T) {
	inv := writeLyncInventory(t)
	for _, c := range []struct {
		f       lyncFlags
		site    string
		tenant  string
		cloud   string
		problem string
	}{
		{f: lyncFlags{inventory: inv, site: "lync-b"}, site: "lync-b", tenant: lyncB, cloud: "china"},
		{f: lyncFlags{inventory: inv, tenant: lyncX2}, site: "lync-x", tenant: lyncX2, cloud: "china"},
		{f: lyncFlags{inventory: inv, site: "lync-x", tenant: lyncX1}, site: "lync-x", tenant: lyncX1, cloud: "global"},
		{f: lyncFlags{inventory: inv, site: "lync-x"}, problem: "different hosting-provider ProxyFqdn values"},
		{f: lyncFlags{inventory: inv, site: "lync-z"}, problem: "no tenant in " + inv + ` has lync_site "lync-z" (Lync sites: lync-a, lync-b, lync-c, lync-x)`},
		{f: lyncFlags{inventory: inv, site: "lync-a", tenant: lyncB}, problem: "is at Lync site lync-b, not lync-a"},
		{f: lyncFlags{inventory: inv, tenant: "44444444-4444-4444-8444-0000000000e0"}, problem: "has no lync_site"},
		{f: lyncFlags{inventory: inv}, problem: "-s"},
	} {
		in, err := c.f.input(workflows.LyncOptions{})
		if c.problem != "" {
			if err == nil || !strings.Contains(err.Error(), c.problem) {
				t.Errorf("%+v: error %v, want %q", c.f, err, c.problem)
			}
			continue
		}
		if err != nil {
			t.Errorf("%+v: %v", c.f, err)
			continue
		}
		if in.Site != c.site || in.Target.TenantID != c.tenant || in.Cloud != c.cloud || in.Target.LyncSite != c.site {
			t.Errorf("%+v: %+v", c.f, in)
		}
	}
}

// TestLyncCommandsAgainstDevServer drives `hybridflow lync` and `lync
// plan` / `abort` against the real dev server and a simulated worker.
func TestLyncCommandsAgainstDevServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, c := devserver.ForTest(t, ctx)

	world := "tenants:\n" + lyncWorldTenant(lyncA, "Lync A", "global", "lynca.onmicrosoft.com", "lync-a", 2) +
		lyncWorldTenant(lyncB, "Lync B", "china", "lyncb.partner.onmschina.cn", "lync-b", 1) +
		lyncWorldTenant(lyncC, "Lync C", "global", "lyncc.onmicrosoft.com", "lync-c", -1)
	w, err := sim.Parse("lync-cli", []byte(world))
	if err != nil {
		t.Fatal(err)
	}
	be, err := backend.NewSimulated(ctx, w, zap.NewNop(), backend.SimOptions{DirectShell: true})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	roles := []config.Role{{Kind: config.RoleCloud}, {Kind: config.RoleLync, Site: "lync-a"}, {Kind: config.RoleLync, Site: "lync-b"}, {Kind: config.RoleLync, Site: "lync-c"}}
	host, err := workerhost.Start(c, roles, func(role config.Role, r worker.Registry) error {
		switch role.Kind {
		case config.RoleCloud:
			r.RegisterWorkflow(workflows.LyncIntegration)
		case config.RoleLync:
			r.RegisterActivity(&activities.Lync{Hosts: be})
		}
		return nil
	}, zap.NewNop(), workerhost.Options{Identity: "lync-cli@test"})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Stop()
	lyncFollowEvery = 50 * time.Millisecond
	defer func() { lyncFollowEvery = time.Second }()

	inv := writeLyncInventory(t)
	addr := "--address=" + srv.FrontendHostPort()
	fast := []string{"--replication-poll=5ms", "--replication-timeout=500ms"}
	cli := func(want int, args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(t, append(args, addr)...)
		if code != want {
			t.Fatalf("hybridflow %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, errOut)
		}
		return out + errOut
	}

	// Plans: JSON for a worldwide site, text for 21Vianet. Nothing written.
	var plan workflows.LyncResult
	if err := json.Unmarshal([]byte(cli(0, "lync", "plan", "-f", inv, "-s", "lync-a", "-o", "json")), &plan); err != nil {
		t.Fatal(err)
	}
	if plan.State != workflows.StatePlanned || plan.Desired == nil || plan.Desired.ProxyFqdn != "exap.um.outlook.com" || len(plan.Plan) != 5 || plan.Plan[1].Change != "create" {
		t.Fatalf("plan %+v", plan)
	}
	out := cli(0, "lync", "plan", "-f", inv, "-s", "lync-b")
	t.Logf("lync plan -s lync-b:\n%s", out)
	for _, want := range []string{`hosting provider "Exchange Online" → exap.um.partner.outlook.cn`, "lync-hosting-provider  create", "2 step(s) would write"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q", want)
		}
	}
	if n := w.Stats().ByTenant; n[lyncA] != nil && n[lyncA].Writes != 0 {
		t.Fatal("plan wrote")
	}

	// Run, follow to the end; again: attaches or re-runs, writing nothing.
	out = cli(0, append([]string{"lync", "-f", inv, "-s", "lync-a"}, fast...)...)
	t.Logf("lync -s lync-a:\n%s", out)
	if !strings.Contains(out, "Lync site lync-a (global → exap.um.outlook.com) — verified, 2 write(s)") {
		t.Fatalf("run output:\n%s", out)
	}
	var again workflows.LyncResult
	if err := json.Unmarshal([]byte(cli(0, append([]string{"lync", "-f", inv, "-s", "lync-a", "-o", "json"}, fast...)...)), &again); err != nil {
		t.Fatal(err)
	}
	if again.State != workflows.StateVerified || again.Writes != 0 {
		t.Fatalf("second run: %s, %d writes", again.State, again.Writes)
	}
	cli(0, append([]string{"lync", "-f", inv, "-s", "lync-b"}, fast...)...)

	// Conflicting tenants at one site are refused before anything starts.
	if out := cli(1, "lync", "-f", inv, "-s", "lync-x"); !strings.Contains(out, "different hosting-provider ProxyFqdn values") {
		t.Fatalf("conflict: %s", out)
	}

	// A replica that never catches up: the run pauses (exit 3) naming it.
	var before int
	w.View(lyncC, func(t *sim.Tenant) { before = len(t.Lync.HostingProviders) })
	out = cli(3, append([]string{"lync", "-f", inv, "-s", "lync-c"}, fast...)...)
	t.Logf("lync -s lync-c:\n%s", out)
	for _, want := range []string{"PAUSED at lync-replication", "fe01.lync-c.example.com", "(ReplicationLagging)", "hybridflow lync abort -s lync-c --yes"} {
		if !strings.Contains(out, want) {
			t.Errorf("paused output lacks %q", want)
		}
	}
	if out := cli(1, "lync", "retry", "-s", "lync-a"); !strings.Contains(out, "retry hybridflow/lync/lync-a") {
		t.Errorf("retry of a finished run: %s", out)
	}
	if out := cli(1, "lync", "abort", "-s", "lync-c"); !strings.Contains(out, "--yes") {
		t.Errorf("abort without --yes: %s", out)
	}
	if out := cli(0, "lync", "abort", "-s", "lync-c", "--yes"); !strings.Contains(out, "abort sent to hybridflow/lync/lync-c (step lync-replication)") {
		t.Errorf("abort: %s", out)
	}
	var st workflows.LyncResult
	if err := c.GetWorkflow(ctx, workflows.LyncWorkflowID("lync-c"), "").Get(ctx, &st); err == nil || !strings.Contains(err.Error(), "aborted; 2 change(s) undone") {
		t.Fatalf("after abort: %v", err)
	}
	after, allow := -1, true
	w.View(lyncC, func(t *sim.Tenant) { after, allow = len(t.Lync.HostingProviders), t.Lync.AllowFederatedUsers })
	if before != 0 || after != 0 || allow {
		t.Fatalf("abort left %d providers (before %d), AllowFederatedUsers %v", after, before, allow)
	}

	// What the Web UI shows: the run's summary names the tenant, its
	// domain, cloud and Lync site; its activities name their steps, the
	// undo of the hosting provider included.
	id := workflows.LyncWorkflowID("lync-c")
	d, err := c.DescribeWorkflow(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := d.GetStaticSummary(); err != nil || got != "Lync C · lyncc.onmicrosoft.com · global · Lync lync-c" {
		t.Errorf("summary of %s = %q (%v)", id, got, err)
	}
	var summaries []string
	for _, ev := range historyEvents(t, ctx, c, id) {
		if ev.GetEventType() != enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED {
			continue
		}
		var s string
		if err := converter.GetDefaultDataConverter().FromPayload(ev.GetUserMetadata().GetSummary(), &s); err != nil || s == "" {
			t.Errorf("activity %s has no summary (%v)", ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName(), err)
		}
		summaries = append(summaries, s)
	}
	for _, want := range []string{workflows.LyncStepSummary("discover"), workflows.LyncStepSummary(string(activities.LyncStepReplication)),
		"Undo: " + workflows.LyncStepSummary(string(activities.LyncStepHostingProvider))} {
		if !slices.Contains(summaries, want) {
			t.Errorf("no activity of %s has the summary %q: %q", id, want, summaries)
		}
	}
}
