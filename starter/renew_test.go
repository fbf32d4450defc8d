package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
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

func TestRenewDayDurationFlag(t *testing.T) {
	for in, want := range map[string]time.Duration{"60d": 60 * 24 * time.Hour, "1.5d": 36 * time.Hour, "36h": 36 * time.Hour, "5s": 5 * time.Second} {
		var d time.Duration
		if err := (dayDuration{&d}).Set(in); err != nil || d != want {
			t.Errorf("%s: %v %v, want %v", in, d, err, want)
		}
	}
	for _, bad := range []string{"d", "-1d", "sixty days", "-5s"} {
		var d time.Duration
		if err := (dayDuration{&d}).Set(bad); err == nil {
			t.Errorf("%q accepted as %v", bad, d)
		}
	}
	d := 60 * 24 * time.Hour
	if s := (dayDuration{&d}).String(); s != "60d" {
		t.Errorf("String() = %s", s)
	}
}

func TestRenewReportSortsByDaysLeftUnknownLast(t *testing.T) {
	n := func(i int) *int { return &i }
	rows := []renewReportRow{{TenantID: "c", DaysLeft: n(40)}, {TenantID: "e"}, {TenantID: "b", DaysLeft: n(-2)}, {TenantID: "d", DaysLeft: n(40)}, {TenantID: "a", DaysLeft: n(10)}}
	sortReport(rows)
	var got []string
	for _, r := range rows {
		got = append(got, r.TenantID)
	}
	if strings.Join(got, "") != "bacde" {
		t.Fatalf("order %v", got)
	}
}

// renewRegistrar is what the worker registers (workerhost.ForBackend) plus
// the renewal: the Renewal workflow and the Graph methods on the cloud
// queue, the PowerShell methods on each on-prem queue. Registration that
// ForBackend already does is skipped, so this stays right once
// register.go carries the same lines.
func renewRegistrar(be *backend.Backend) workerhost.Registrar {
	base := workerhost.ForBackend(be, "renew-test")
	return func(role config.Role, r worker.Registry) error {
		if err := base(role, r); err != nil {
			return err
		}
		switch role.Kind {
		case config.RoleCloud:
			renewTryRegister(func() { r.RegisterWorkflow(workflows.Renewal) })
			renewTryRegister(func() { r.RegisterActivity(&activities.Renewal{Clients: be}) })
		case config.RoleOnPrem:
			renewTryRegister(func() { r.RegisterActivity(&activities.Renewal{Hosts: be}) })
		}
		return nil
	}
}

// renewTryRegister ignores "already registered" panics.
func renewTryRegister(f func()) {
	defer func() { _ = recover() }()
	f()
}

func renewCLI(t *testing.T, addr string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append(args, "--address", addr), &out, &errb, func(string) string { return "" })
	return code, out.String(), errb.String()
}

// TestRenewCommandsOnDevServer drives `hybridflow renew` against the real
// dev server with a simulated worker serving the demo world: the report
// (text and JSON, same rows, soonest expiry first) and the schedule
// family (schedule, list, pause, unpause, now, delete).
func TestRenewCommandsOnDevServer(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts the Temporal dev server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Stop() }()
	addr := srv.FrontendHostPort()

	w, err := sim.Load(filepath.Join("..", "configs", "sim", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	invPath := filepath.Join("..", "configs", "inventory.demo.yaml")
	inv, err := config.LoadInventory(invPath)
	if err != nil {
		t.Fatal(err)
	}
	// Give three tenants certificates nearer expiry, so the order means something.
	now := time.Now().UTC()
	soon := map[string]time.Time{
		inv.Tenants[4].ID:  now.Add(-36 * time.Hour), // expired: -2 days
		inv.Tenants[11].ID: now.Add(10*24*time.Hour + time.Hour),
		inv.Tenants[7].ID:  now.Add(40*24*time.Hour + time.Hour),
	}
	serial := int64(7000)
	for id, notAfter := range soon {
		serial++
		c := sim.NewCertificate(sim.AuthCertificateSubject, serial, notAfter.AddDate(-5, 0, 0), notAfter)
		w.Update(id, func(t *sim.Tenant) {
			t.OnPrem.Certificates = append(t.OnPrem.Certificates, c)
			t.OnPrem.AuthConfig.CurrentCertificateThumbprint = c.Thumbprint
		})
	}
	be, err := backend.NewSimulated(ctx, w, zap.NewNop(), backend.SimOptions{DirectShell: true})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	// The cloud role plus an on-prem role for every site of the demo inventory.
	roles := []config.Role{{Kind: config.RoleCloud}}
	for _, tn := range inv.Tenants {
		r := config.Role{Kind: config.RoleOnPrem, Site: tn.Site}
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	host, err := workerhost.Start(srv.Client(), roles, renewRegistrar(be), zap.NewNop(), workerhost.Options{Identity: "renew-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Stop()

	t.Run("report", func(t *testing.T) {
		began := time.Now()
		code, out, errOut := renewCLI(t, addr, "renew", "report", "-f", invPath)
		t.Logf("renew report (%s):\n%s", time.Since(began).Round(time.Millisecond), out)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		if len(lines) != len(inv.Tenants)+1 {
			t.Fatalf("%d lines for %d tenants", len(lines), len(inv.Tenants))
		}
		var textIDs []string
		var textDays []int
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			d, err := strconv.Atoi(f[0])
			if err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			textDays = append(textDays, d)
			textIDs = append(textIDs, f[1])
		}
		for i := 1; i < len(textDays); i++ {
			if textDays[i] < textDays[i-1] {
				t.Fatalf("not sorted by days left: %v", textDays)
			}
		}
		if textIDs[0] != inv.Tenants[4].ID || textDays[0] != -2 || textIDs[1] != inv.Tenants[11].ID || textDays[1] != 10 || textIDs[2] != inv.Tenants[7].ID || textDays[2] != 40 {
			t.Fatalf("first rows %v %v", textIDs[:3], textDays[:3])
		}
		rest := strings.Contains(lines[4], " ok ") || strings.Contains(lines[4], "key-missing")
		if !strings.Contains(lines[1], "expired") || !strings.Contains(lines[2], "due") || !strings.Contains(lines[3], "due") || !rest {
			t.Fatalf("statuses:\n%s", strings.Join(lines[:5], "\n"))
		}
		code, js, errOut := renewCLI(t, addr, "renew", "report", "-f", invPath, "-o", "json")
		if code != 0 {
			t.Fatalf("json exit %d: %s", code, errOut)
		}
		var rows []renewReportRow
		if err := json.Unmarshal([]byte(js), &rows); err != nil {
			t.Fatalf("json: %v\n%s", err, js)
		}
		if len(rows) != len(inv.Tenants) {
			t.Fatalf("%d json rows", len(rows))
		}
		for i, r := range rows {
			if r.TenantID != textIDs[i] || r.DaysLeft == nil || *r.DaysLeft != textDays[i] || r.Current == nil || r.Current.Thumbprint == "" || r.Mode == "" {
				t.Fatalf("json row %d %+v differs from text row %s %d", i, r, textIDs[i], textDays[i])
			}
		}

		// What the Web UI shows of a renewal: the tenant, its domain,
		// cloud and site, and its step on every activity.
		tn := inv.Tenants[4]
		id := workflows.RenewalReportWorkflowID(tn.ID)
		d, err := srv.Client().DescribeWorkflow(ctx, id, "")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := d.GetStaticSummary(); err != nil || got != workflows.TenantSummary(tn) || !strings.Contains(got, tn.InitialDomain) {
			t.Errorf("summary of %s = %q (%v), want %q", id, got, err, workflows.TenantSummary(tn))
		}
		read := 0
		for _, ev := range historyEvents(t, ctx, srv.Client(), id) {
			if ev.GetEventType() != enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED {
				continue
			}
			var s string
			_ = converter.GetDefaultDataConverter().FromPayload(ev.GetUserMetadata().GetSummary(), &s)
			if s != workflows.RenewalStepSummary(workflows.RenewStepRead) {
				t.Errorf("%s: activity %s has the summary %q, want the read step's", id, ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName(), s)
			}
			read++
		}
		if read == 0 {
			t.Errorf("%s scheduled no activity", id)
		}
	})

	tenant := inv.Tenants[0].ID
	schedID := workflows.RenewalScheduleID(tenant)
	listed := func(t *testing.T, want func(renewScheduleEntry) bool) renewScheduleEntry {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			code, js, errOut := renewCLI(t, addr, "renew", "list", "-o", "json")
			if code != 0 {
				t.Fatalf("list: %s", errOut)
			}
			var rows []renewScheduleEntry
			if err := json.Unmarshal([]byte(js), &rows); err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				if r.ScheduleID == schedID && want(r) {
					return r
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("schedule %s not listed as wanted: %s", schedID, js)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}

	t.Run("schedules", func(t *testing.T) {
		code, out, errOut := renewCLI(t, addr, "renew", "schedule", "-f", invPath, "-t", tenant, "--every", "12h", "--window", "45d")
		if code != 0 || !strings.Contains(out, "created  "+schedID) {
			t.Fatalf("schedule: exit %d\n%s%s", code, out, errOut)
		}
		listed(t, func(r renewScheduleEntry) bool { return !r.Paused })
		// A dry run decides with the schedule's window, not the default.
		code, out, errOut = renewCLI(t, addr, "renew", "now", "-f", invPath, "-t", tenant, "--dry-run")
		if code != 0 || !strings.Contains(out, "judged with the schedule's window 45d and emergency threshold 1d") {
			t.Fatalf("now --dry-run: exit %d\n%s%s", code, out, errOut)
		}
		code, out, _ = renewCLI(t, addr, "renew", "schedule", "-f", invPath, "-t", tenant, "--cron", "0 3 * * *")
		if code != 0 || !strings.Contains(out, "updated  "+schedID) {
			t.Fatalf("second schedule: exit %d\n%s", code, out)
		}
		d, err := srv.Client().ScheduleClient().GetHandle(ctx, schedID).Describe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d.Schedule.Policy.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP || d.Schedule.Policy.CatchupWindow != time.Hour {
			t.Fatalf("policy %+v", d.Schedule.Policy)
		}
		if a, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction); !ok || a.StaticSummary != workflows.TenantSummary(inv.Tenants[0]) {
			t.Errorf("the schedule's renewals do not start with the tenant's summary: %+v", d.Schedule.Action)
		}
		if code, out, _ := renewCLI(t, addr, "renew", "pause", "-t", tenant); code != 0 || !strings.Contains(out, "paused "+schedID) {
			t.Fatalf("pause: %d %s", code, out)
		}
		listed(t, func(r renewScheduleEntry) bool { return r.Paused })
		if code, _, _ := renewCLI(t, addr, "renew", "unpause", "-t", tenant); code != 0 {
			t.Fatal("unpause failed")
		}
		listed(t, func(r renewScheduleEntry) bool { return !r.Paused })
		if code, out, _ := renewCLI(t, addr, "renew", "now", "-t", tenant); code != 0 || !strings.Contains(out, "triggered "+schedID) {
			t.Fatalf("now: %d %s", code, out)
		}
		// Without a terminal, delete insists on --yes.
		code, _, errOut = renewCLI(t, addr, "renew", "delete", "-t", tenant)
		if code == 0 || !strings.Contains(errOut, "--yes") {
			t.Fatalf("delete without --yes: exit %d %s", code, errOut)
		}
		if code, out, _ := renewCLI(t, addr, "renew", "delete", "-t", tenant, "--yes"); code != 0 || !strings.Contains(out, "deleted "+schedID) {
			t.Fatalf("delete: %d %s", code, out)
		}
		code, _, errOut = renewCLI(t, addr, "renew", "now", "-t", tenant)
		if code == 0 || !strings.Contains(errOut, "no renewal schedule") {
			t.Fatalf("now after delete: exit %d %s", code, errOut)
		}
	})
}
