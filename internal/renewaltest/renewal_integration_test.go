// Package renewaltest_test runs the auth certificate renewal end to end:
// the real `hybridflow renew` CLI creates Temporal Schedules on the real
// dev server, a trigger starts the Renewal workflow on an in-process
// worker whose PowerShell hosts are real relay processes, and the
// simulated world shows the result.
package renewaltest_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/certs"
	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/devserver"
	"github.com/hybridflow/hybridflow/internal/histories"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/internal/workerhost"
	"github.com/hybridflow/hybridflow/workflows"
)

func TestMain(m *testing.M) {
	// The simulated PowerShell hosts are this test binary re-run as a relay.
	sim.MaybeRunHost()
	os.Exit(m.Run())
}

// registrar is workerhost.ForBackend plus the renewal (skipping what
// ForBackend already registers, so it stays right once register.go has
// the same lines): the workflow and the Graph methods on the cloud queue,
// the PowerShell methods on the site's queue.
func registrar(be *backend.Backend) workerhost.Registrar {
	base := workerhost.ForBackend(be, "renewaltest")
	return func(role config.Role, r worker.Registry) error {
		if err := base(role, r); err != nil {
			return err
		}
		switch role.Kind {
		case config.RoleCloud:
			tryRegister(func() { r.RegisterWorkflow(workflows.Renewal) })
			tryRegister(func() { r.RegisterActivity(&activities.Renewal{Clients: be}) })
		case config.RoleOnPrem:
			tryRegister(func() { r.RegisterActivity(&activities.Renewal{Hosts: be}) })
		}
		return nil
	}
}

func tryRegister(f func()) {
	defer func() { _ = recover() }()
	f()
}

// buildCLI builds the hybridflow binary from ./starter. The output path is
// stable, so go build relinks only when the CLI changed (2 s instead of 15).
func buildCLI(t *testing.T) string {
	t.Helper()
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "hybridflow-renewaltest")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := devserver.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(dir, "hybridflow")
	cmd := exec.Command(goBin, "build", "-o", out, "./starter")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the CLI: %v\n%s", err, b)
	}
	return out
}

// recordHistory writes a run's history as
// workflows/testdata/histories/renewal/<name>.json when
// HYBRIDFLOW_RECORD_HISTORIES is set (make histories); workflows' replay
// test replays every file there against the current Renewal workflow.
func recordHistory(ctx context.Context, t *testing.T, c client.Client, id, runID, name string) {
	t.Helper()
	path, err := histories.Record(ctx, c, id, runID, "renewal/"+name)
	if err != nil {
		t.Fatalf("record the history of %s: %v", id, err)
	}
	if path != "" {
		t.Logf("recorded %s", path)
	}
}

func execOut(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestRenewalScheduleRenewsOnDevServer: a tenant set up by the Setup
// workflow, whose auth certificate expires in 10 days; `hybridflow renew
// schedule` creates its schedule (visible to `temporal schedule list`),
// `hybridflow renew now` triggers it, and the renewal it runs leaves the
// new certificate current, the old one cleared, exactly one key per
// certificate on the dedicated application and a verified configuration.
func TestRenewalScheduleRenewsOnDevServer(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts the Temporal dev server")
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Stop() }()
	addr, c := srv.FrontendHostPort(), srv.Client()
	t.Logf("dev server at %s in %s", addr, time.Since(began).Round(time.Millisecond))

	// The world runs on the wall clock, as Temporal does.
	root, err := devserver.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	w, err := sim.Load(filepath.Join(root, "configs", "sim", "small.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	w.FixedNow = time.Time{}
	ten := w.Inventory().Tenants[0]
	expiry := time.Now().UTC().Add(10 * 24 * time.Hour)
	oldCert := sim.NewCertificate(sim.AuthCertificateSubject, 4711, expiry.AddDate(-5, 0, 0), expiry)
	old := oldCert.Thumbprint
	w.Update(ten.ID, func(t *sim.Tenant) {
		t.OnPrem.Certificates = []*sim.ExchangeCertificate{oldCert}
		t.OnPrem.AuthConfig = sim.AuthConfig{CurrentCertificateThumbprint: old}
	})
	be, err := backend.NewSimulated(ctx, w, zap.NewNop(), backend.SimOptions{}) // real PowerShell-host relays
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	var roles []config.Role
	for _, r := range []string{"cloud", "onprem:" + ten.Site} {
		role, err := config.ParseRole(r)
		if err != nil {
			t.Fatal(err)
		}
		roles = append(roles, role)
	}
	host, err := workerhost.Start(c, roles, registrar(be), zap.NewNop(), workerhost.Options{Identity: "renewaltest"})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Stop()

	// The tenant is set up first, by the real Setup workflow.
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.SetupWorkflowID(ten.ID), TaskQueue: temporalx.CloudQueue},
		workflows.Setup, workflows.InputFromTenant(ten, workflows.SetupOptions{FailurePolicy: workflows.PolicyFail}))
	if err != nil {
		t.Fatal(err)
	}
	var setup workflows.SetupResult
	if err := run.Get(ctx, &setup); err != nil || setup.State != workflows.StateVerified {
		t.Fatalf("setup: %v %s", err, setup.State)
	}
	t.Logf("tenant set up (%s) at %s", setup.Mode, time.Since(began).Round(time.Millisecond))

	dir := t.TempDir()
	inv, err := yaml.Marshal(map[string]any{"tenants": []config.Tenant{ten}})
	if err != nil {
		t.Fatal(err)
	}
	invPath := filepath.Join(dir, "inventory.yaml")
	if err := os.WriteFile(invPath, inv, 0o600); err != nil {
		t.Fatal(err)
	}
	cli := buildCLI(t)
	t.Logf("CLI built at %s", time.Since(began).Round(time.Millisecond))

	// renew schedule, through the real CLI.
	out, err := execOut(t, cli, "renew", "schedule", "-f", invPath, "--every", "24h", "--jitter", "0s",
		"--lead-time", "5s", "--verify-deadline", "2m", "--address", addr)
	schedID := workflows.RenewalScheduleID(ten.ID)
	if err != nil || !strings.Contains(out, "created  "+schedID) {
		t.Fatalf("renew schedule: %v\n%s", err, out)
	}
	t.Logf("$ hybridflow renew schedule …\n%s", out)

	// The Temporal CLI sees it.
	temporalCLI, err := devserver.CLIPath()
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		out, err = execOut(t, temporalCLI, "schedule", "list", "--address", addr)
		if err == nil && strings.Contains(out, schedID) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("temporal schedule list does not show %s: %v\n%s", schedID, err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("$ temporal schedule list\n%s", out)
	if out, err := execOut(t, cli, "renew", "list", "--address", addr); err != nil || !strings.Contains(out, schedID) || !strings.Contains(out, "every 24h") {
		t.Fatalf("renew list: %v\n%s", err, out)
	}

	// Trigger it.
	if out, err := execOut(t, cli, "renew", "now", "-t", ten.ID, "--address", addr); err != nil || !strings.Contains(out, "triggered") {
		t.Fatalf("renew now: %v\n%s", err, out)
	}
	var started *client.ScheduleWorkflowExecution
	for deadline := time.Now().Add(30 * time.Second); started == nil; {
		d, err := c.ScheduleClient().GetHandle(ctx, schedID).Describe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range d.Info.RecentActions {
			started = a.StartWorkflowResult
		}
		if started == nil {
			if time.Now().After(deadline) {
				t.Fatal("the schedule started no workflow")
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if !strings.HasPrefix(started.WorkflowID, workflows.RenewalWorkflowID(ten.ID)+"-") {
		t.Fatalf("workflow ID %s is not derived from the schedule", started.WorkflowID)
	}
	var res workflows.RenewalResult
	if err := c.GetWorkflow(ctx, started.WorkflowID, started.FirstExecutionRunID).Get(ctx, &res); err != nil {
		t.Fatalf("renewal %s: %v", started.WorkflowID, err)
	}
	for _, s := range res.Steps {
		t.Logf("  %-20s %-10s %-9s %s", s.Step, s.Status, s.Outcome, s.Detail)
	}
	recordHistory(ctx, t, c, started.WorkflowID, started.FirstExecutionRunID, "renewal-scheduled")
	if res.State != workflows.StateRenewed || res.Action != workflows.RenewalActionRenew || res.Emergency ||
		res.Verification["onprem-to-online"] != "Success" || res.Verification["online-to-onprem"] != "Success" {
		t.Fatalf("renewal: state %s action %s emergency %v verification %v", res.State, res.Action, res.Emergency, res.Verification)
	}

	// The world's dump shows the outcome.
	dump, err := w.Dump()
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Tenants []struct {
			ID    string `yaml:"id"`
			Entra struct {
				Applications []struct {
					DisplayName    string `yaml:"display_name"`
					KeyCredentials []struct {
						CustomKeyIdentifier string    `yaml:"custom_key_identifier"`
						EndDateTime         time.Time `yaml:"end_date_time"`
					} `yaml:"key_credentials"`
				} `yaml:"applications"`
			} `yaml:"entra"`
			OnPrem struct {
				AuthConfig struct {
					Current  string `yaml:"current_certificate_thumbprint"`
					Next     string `yaml:"next_certificate_thumbprint"`
					Previous string `yaml:"previous_certificate_thumbprint"`
				} `yaml:"auth_config"`
				Certificates []struct {
					Thumbprint string    `yaml:"thumbprint"`
					NotAfter   time.Time `yaml:"not_after"`
				} `yaml:"certificates"`
			} `yaml:"onprem"`
		} `yaml:"tenants"`
	}
	if err := yaml.Unmarshal(dump, &d); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, dt := range d.Tenants {
		if dt.ID != ten.ID {
			continue
		}
		found = true
		ac := dt.OnPrem.AuthConfig
		t.Logf("dump: auth_config current %s next %q previous %q; certificates %d", ac.Current, ac.Next, ac.Previous, len(dt.OnPrem.Certificates))
		if ac.Current == "" || certs.SameThumbprint(ac.Current, old) || ac.Next != "" || ac.Previous != "" {
			t.Fatalf("auth config after renewal: %+v (old %s)", ac, old)
		}
		for _, cert := range dt.OnPrem.Certificates {
			if certs.SameThumbprint(cert.Thumbprint, ac.Current) && !cert.NotAfter.After(expiry) {
				t.Fatalf("new certificate %s expires %s, not after the old one", cert.Thumbprint, cert.NotAfter)
			}
		}
		apps := 0
		for _, app := range dt.Entra.Applications {
			if !strings.HasPrefix(app.DisplayName, "ExchangeServerApp-") {
				continue
			}
			apps++
			count := map[string]int{}
			for _, k := range app.KeyCredentials {
				count[strings.ToUpper(k.CustomKeyIdentifier)]++
				t.Logf("dump: %s key %s until %s", app.DisplayName, k.CustomKeyIdentifier, k.EndDateTime.Format(time.DateOnly))
			}
			if len(app.KeyCredentials) != 1 || count[strings.ToUpper(ac.Current)] != 1 || count[strings.ToUpper(old)] != 0 {
				t.Fatalf("dedicated application keys %v: want exactly one, the new certificate's", count)
			}
		}
		if apps != 1 {
			t.Fatalf("%d dedicated applications", apps)
		}
	}
	if !found {
		t.Fatal("tenant missing from the dump")
	}

	// And the configuration verifies, checked afresh.
	tgt := workflows.InputFromTenant(ten, workflows.SetupOptions{}).Target
	on, err := (&activities.OnPrem{Hosts: be}).VerifyFromOnPrem(ctx, activities.VerifyInput{Target: tgt, TargetURI: cloud.MustLookup(ten.Cloud).EWSURL(), Mailbox: "admin@small1.example.com"})
	if err != nil || !on.Success {
		t.Fatalf("Test-OAuthConnectivity on-prem → Exchange Online: %v %+v", err, on)
	}
	cl, err := (&activities.Online{Clients: be}).VerifyFromOnline(ctx, activities.VerifyInput{Target: tgt, TargetURI: "https://mail.small1.example.com/metadata/json/1", Mailbox: "admin@small1.onmicrosoft.com"})
	if err != nil || !cl.Success {
		t.Fatalf("Test-OAuthConnectivity Exchange Online → on-prem: %v %+v", err, cl)
	}

	if out, err := execOut(t, cli, "renew", "delete", "-t", ten.ID, "--yes", "--address", addr); err != nil || !strings.Contains(out, "deleted") {
		t.Fatalf("renew delete: %v\n%s", err, out)
	}
	t.Logf("done in %s", time.Since(began).Round(time.Millisecond))
}
