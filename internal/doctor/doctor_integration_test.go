package doctor_test

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/devserver"
	"github.com/hybridflow/hybridflow/internal/doctor"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/internal/workerhost"
	"github.com/hybridflow/hybridflow/workflows"
)

func register(role config.Role, r worker.Registry) error {
	if role.Kind == config.RoleCloud {
		r.RegisterWorkflow(workflows.Probe)
	}
	r.RegisterActivity(&activities.Health{Role: role.String(), Backend: "none"})
	return nil
}

// TestDoctorAgainstDevServer runs doctor against the real dev server with
// workers for the cloud and two sites, then stops one site's worker and
// expects doctor to name that site's queue as unserved.
func TestDoctorAgainstDevServer(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts the Temporal dev server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c := srv.Client()
	log := zap.NewNop()

	inv := &config.Inventory{Tenants: []config.Tenant{{Site: "site-a"}, {Site: "site-b"}, {Site: "site-a"}}}
	opts := doctor.Options{
		Address: srv.FrontendHostPort(), Namespace: "default",
		Queues:           temporalx.QueuesForInventory(inv),
		SearchAttributes: workflows.SearchAttributes,
		PollerFreshness:  2*devserver.LongPoll + time.Second,
	}
	if got := len(opts.Queues); got != 3 {
		t.Fatalf("queues for inventory = %d, want 3 (cloud, site-a, site-b)", got)
	}

	// Nothing serves the queues yet.
	r := doctor.Run(ctx, c, opts)
	if r.Healthy {
		t.Fatalf("healthy without workers: %+v", r)
	}

	siteA, _ := config.ParseRole("onprem:site-a")
	siteB, _ := config.ParseRole("onprem:site-b")
	cloud, _ := config.ParseRole("cloud")
	main, err := workerhost.Start(c, []config.Role{cloud, siteA}, register, log, workerhost.Options{Identity: "main@test"})
	if err != nil {
		t.Fatal(err)
	}
	defer main.Stop()
	b, err := workerhost.Start(c, []config.Role{siteB}, register, log, workerhost.Options{Identity: "site-b@test"})
	if err != nil {
		t.Fatal(err)
	}

	r = waitFor(t, ctx, func() (doctor.Report, bool) { r := doctor.Run(ctx, c, opts); return r, r.Healthy })
	for _, ch := range r.Checks {
		t.Logf("healthy: %-28s %v %s", ch.Name, ch.OK, ch.Detail)
	}

	// The probe workflow reaches every queue through a real worker.
	run, err := c.ExecuteWorkflow(ctx, clientOpts("probe-1"), workflows.Probe, workflows.ProbeInput{Queues: []string{temporalx.CloudQueue, temporalx.OnPremQueue("site-a"), temporalx.OnPremQueue("site-b")}})
	if err != nil {
		t.Fatal(err)
	}
	var outs []workflows.ProbeOutcome
	if err := run.Get(ctx, &outs); err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		if o.Result == nil || o.Result.TaskQueue != o.Queue {
			t.Errorf("probe %s: %+v", o.Queue, o)
		}
	}

	b.Stop()
	r = waitFor(t, ctx, func() (doctor.Report, bool) { r := doctor.Run(ctx, c, opts); return r, !r.Healthy })
	var missing []string
	for _, ch := range r.Checks {
		if !ch.OK {
			missing = append(missing, ch.Missing...)
			if ch.Hint == "" {
				t.Errorf("failed check %q has no hint", ch.Name)
			}
		}
	}
	if len(missing) != 1 || missing[0] != "hybridflow-onprem-site-b" {
		t.Fatalf("missing = %v, want exactly [hybridflow-onprem-site-b]; report %+v", missing, r)
	}
}

func waitFor(t *testing.T, ctx context.Context, f func() (doctor.Report, bool)) doctor.Report {
	t.Helper()
	for {
		r, ok := f()
		if ok {
			return r
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out; last report %+v", r)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
