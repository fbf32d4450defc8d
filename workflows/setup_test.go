package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/workflows"
)

// harness is a simulated world served on loopback, real Graph and Exchange
// Online clients against it, and the workflow test environment.
type harness struct {
	t     *testing.T
	world *sim.World
	be    *backend.Backend
	inv   *config.Inventory
}

func newHarness(t *testing.T, worldFile string) *harness {
	t.Helper()
	w, err := sim.Load(filepath.Join("..", "configs", "sim", worldFile))
	if err != nil {
		t.Fatal(err)
	}
	return newHarnessWorld(t, w)
}

// newHarnessWorld serves an already built world (generated tenants).
func newHarnessWorld(t *testing.T, w *sim.World) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	be, err := backend.NewSimulated(ctx, w, zap.NewNop(), backend.SimOptions{DirectShell: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(be.Close)
	return &harness{t: t, world: w, be: be, inv: w.Inventory()}
}

// quietLogger keeps the test environment's per-activity DEBUG lines (and
// whole plans as JSON) out of the output; failures are asserted, not read.
var quietLogger = tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

func (h *harness) env() *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger)
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(workflows.Setup)
	env.RegisterWorkflow(workflows.TenantLock)
	env.RegisterActivity(&activities.OnPrem{Hosts: h.be})
	env.RegisterActivity(&activities.Online{Clients: h.be})
	env.RegisterActivity(&activities.Entra{Clients: h.be})
	env.RegisterActivityWithOptions(activities.PlanSetup, activity.RegisterOptions{Name: "PlanSetup"})
	env.SetTestTimeout(2 * time.Minute)
	return env
}

func (h *harness) input(i int, o workflows.SetupOptions) workflows.SetupInput {
	if o.Retry.InitialInterval == 0 {
		o.Retry = workflows.RetryOptions{InitialInterval: 10 * time.Millisecond, MaximumInterval: 50 * time.Millisecond, MaximumAttempts: 3}
	}
	return workflows.InputFromTenant(h.inv.Tenants[i], o)
}

func (h *harness) run(env *testsuite.TestWorkflowEnvironment, in workflows.SetupInput) (workflows.SetupResult, error) {
	env.ExecuteWorkflow(workflows.Setup, in)
	if !env.IsWorkflowCompleted() {
		h.t.Fatal("workflow did not complete")
	}
	var res workflows.SetupResult
	err := env.GetWorkflowError()
	if err == nil {
		if gerr := env.GetWorkflowResult(&res); gerr != nil {
			h.t.Fatal(gerr)
		}
	}
	return res, err
}

// state asks the workflow's state query (also after it ended with an error).
func state(t *testing.T, env *testsuite.TestWorkflowEnvironment) workflows.SetupState {
	t.Helper()
	v, err := env.QueryWorkflow(workflows.QueryState)
	if err != nil {
		t.Fatalf("query %s: %v", workflows.QueryState, err)
	}
	var st workflows.SetupState
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func setupStep(st workflows.SetupState, name plan.Step) *workflows.StepState {
	for _, s := range st.Steps {
		if s.Step == string(name) {
			return s
		}
	}
	return &workflows.StepState{Step: string(name), Status: "(absent)"}
}

func logSetup(t *testing.T, st workflows.SetupState) {
	t.Helper()
	for _, s := range st.Steps {
		t.Logf("  %-27s %-11s %-9s att=%d %s %s", s.Step, s.Status, s.Outcome, s.Attempts, s.ErrorType, s.Detail)
	}
	for _, c := range st.Compensation {
		t.Logf("  undo: %s", c)
	}
}

// searchAttrs records every HybridflowState / HybridflowStep upsert.
type searchAttrs struct {
	mu     sync.Mutex
	states []string
	steps  []string
	// stepOnly counts upserts of a step without a state: since
	// setup-local-cloud-steps the step is published with state changes only.
	stepOnly int
}

func recordSearchAttrs(env *testsuite.TestWorkflowEnvironment) *searchAttrs {
	sa := &searchAttrs{}
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		attrs := args.Get(0).(temporal.SearchAttributes)
		sa.mu.Lock()
		defer sa.mu.Unlock()
		if v, ok := attrs.GetKeyword(workflows.SAState); ok {
			sa.states = append(sa.states, v)
		}
		if v, ok := attrs.GetKeyword(workflows.SAStep); ok {
			sa.steps = append(sa.steps, v)
			if _, ok := attrs.GetKeyword(workflows.SAState); !ok {
				sa.stepOnly++
			}
		}
	}).Return(nil)
	return sa
}

func (sa *searchAttrs) lastState() string {
	sa.mu.Lock()
	defer sa.mu.Unlock()
	if len(sa.states) == 0 {
		return ""
	}
	return sa.states[len(sa.states)-1]
}

func (sa *searchAttrs) lastStep() string {
	sa.mu.Lock()
	defer sa.mu.Unlock()
	if len(sa.steps) == 0 {
		return ""
	}
	return sa.steps[len(sa.steps)-1]
}

// update sends an operator update and reports how it ended.
type updateOutcome struct {
	accepted, rejected bool
	err                error
}

func sendUpdate(env *testsuite.TestWorkflowEnvironment, name string) *updateOutcome {
	o := &updateOutcome{}
	env.UpdateWorkflow(name, name+"-"+fmt.Sprint(env.Now().UnixNano()), &testsuite.TestUpdateCallback{
		OnAccept: func() { o.accepted = true },
		OnReject: func(err error) { o.rejected, o.err = true, err },
	}, workflows.OperatorAction{Reason: "test"})
	return o
}

// whilePaused runs f one (mocked) hour after the start, by when the run
// must be paused: activities take no mocked time, retries milliseconds.
func whilePaused(t *testing.T, env *testsuite.TestWorkflowEnvironment, wantStep plan.Step, wantType string, f func(st workflows.SetupState)) {
	env.RegisterDelayedCallback(func() {
		st := state(t, env)
		if st.Paused == nil || st.State != workflows.StatePaused {
			t.Errorf("after 1h: state %s, paused %+v; want paused at %s", st.State, st.Paused, wantStep)
			logSetup(t, st)
			env.CancelWorkflow()
			return
		}
		if st.Paused.Step != string(wantStep) || (wantType != "" && st.Paused.ErrorType != wantType) {
			t.Errorf("paused at %s (%s: %s), want %s (%s)", st.Paused.Step, st.Paused.ErrorType, st.Paused.Error, wantStep, wantType)
		}
		if s := setupStep(st, wantStep); s.Status != workflows.StatusPaused {
			t.Errorf("step %s status %s, want %s", wantStep, s.Status, workflows.StatusPaused)
		}
		f(st)
	}, time.Hour)
}

// runAborted runs the setup to its end, which must be an operator's (or
// the policy's) abort, and returns its final state, logged.
func runAborted(t *testing.T, h *harness, env *testsuite.TestWorkflowEnvironment, in workflows.SetupInput) workflows.SetupState {
	t.Helper()
	_, err := h.run(env, in)
	if appErrType(err) != workflows.ErrAborted {
		t.Fatalf("error %v (%s), want %s", err, appErrType(err), workflows.ErrAborted)
	}
	st := state(t, env)
	logSetup(t, st)
	return st
}

// --- world views ---

// tenantConfig is the configuration a setup may touch, for before/after
// comparisons. Runtime state (request counters, propagation countdown,
// whether VariantConfiguration was reloaded since) is left out: an abort
// reloads it, and that is not configuration.
type tenantConfig struct {
	OnPremAuthServers   []*sim.AuthServer               `yaml:"onprem_auth_servers"`
	PartnerApplications []*sim.PartnerApplication       `yaml:"partner_applications"`
	AuthConfig          sim.AuthConfig                  `yaml:"auth_config"`
	OnPremIOCs          []*sim.IntraOrgConnector        `yaml:"onprem_iocs"`
	AddressSpaces       []*sim.AvailabilityAddressSpace `yaml:"address_spaces"`
	SettingOverrides    []*sim.SettingOverride          `yaml:"setting_overrides"`
	OnlineIOCs          []*sim.IntraOrgConnector        `yaml:"online_iocs"`
	Applications        []*sim.Application              `yaml:"applications"`
	ServicePrincipals   []*sim.ServicePrincipal         `yaml:"service_principals"`
	AppRoleAssignments  []*sim.AppRoleAssignment        `yaml:"app_role_assignments"`
}

func (h *harness) config(tenantID string) string {
	h.t.Helper()
	var out []byte
	var err error
	h.world.View(tenantID, func(t *sim.Tenant) {
		out, err = yaml.Marshal(tenantConfig{
			OnPremAuthServers: t.OnPrem.AuthServers, PartnerApplications: t.OnPrem.PartnerApplications, AuthConfig: t.OnPrem.AuthConfig,
			OnPremIOCs: t.OnPrem.IntraOrganizationConnectors, AddressSpaces: t.OnPrem.AvailabilityAddressSpaces, SettingOverrides: t.OnPrem.SettingOverrides,
			OnlineIOCs: t.Online.IntraOrganizationConnectors, Applications: t.Entra.Applications, ServicePrincipals: t.Entra.ServicePrincipals,
			AppRoleAssignments: t.Entra.AppRoleAssignments,
		})
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return string(out)
}

// sameConfig fails the test with the lines that differ.
func sameConfig(t *testing.T, what, before, after string) {
	t.Helper()
	if before == after {
		return
	}
	b, a := strings.Split(before, "\n"), strings.Split(after, "\n")
	var diff []string
	for _, l := range b {
		if !slices.Contains(a, l) {
			diff = append(diff, "- "+l)
		}
	}
	for _, l := range a {
		if !slices.Contains(b, l) {
			diff = append(diff, "+ "+l)
		}
	}
	if len(diff) > 40 {
		diff = append(diff[:40], "...")
	}
	t.Errorf("%s: world differs from before the run:\n%s", what, strings.Join(diff, "\n"))
}

func (h *harness) tenant(id string) *sim.Tenant {
	var c *sim.Tenant
	h.world.View(id, func(t *sim.Tenant) {
		// Deep enough for assertions: a YAML round trip through a world.
		w := &sim.World{Tenants: []*sim.Tenant{t}}
		data, err := w.Dump()
		if err != nil {
			h.t.Fatal(err)
		}
		var x struct {
			Tenants []*sim.Tenant `yaml:"tenants"`
		}
		if err := yaml.Unmarshal(data, &x); err != nil {
			h.t.Fatal(err)
		}
		c = x.Tenants[0]
	})
	return c
}

func (h *harness) writes(id string) int64 {
	if c := h.world.Stats().ByTenant[strings.ToLower(id)]; c != nil {
		return c.Writes
	}
	return 0
}

func firstPartySP(t *sim.Tenant) *sim.ServicePrincipal {
	for _, sp := range t.Entra.ServicePrincipals {
		if sp.AppID == cloud.FirstPartyAppID {
			return sp
		}
	}
	return nil
}

func authCert(t *sim.Tenant) *sim.ExchangeCertificate {
	for _, c := range t.OnPrem.Certificates {
		if strings.EqualFold(c.Thumbprint, t.OnPrem.AuthConfig.CurrentCertificateThumbprint) {
			return c
		}
	}
	return nil
}

func hasKeyFor(keys []sim.KeyCredential, c *sim.ExchangeCertificate) bool {
	for _, k := range keys {
		if strings.EqualFold(k.CustomKeyIdentifier, c.Thumbprint) && string(k.Key) == string(c.DER) {
			return true
		}
	}
	return false
}

// giveLegacyKey puts the tenant's auth certificate on the first-party
// service principal, as a pre-2025 (legacy) setup left it.
func (h *harness) giveLegacyKey(id string) {
	h.world.Update(id, func(t *sim.Tenant) {
		c := authCert(t)
		fp := firstPartySP(t)
		fp.KeyCredentials = append(fp.KeyCredentials, sim.KeyCredential{KeyID: "6d1f4c1e-0000-4000-8000-00000000c0de", CustomKeyIdentifier: c.Thumbprint,
			DisplayName: "legacy upload", Type: "AsymmetricX509Cert", Usage: "Verify", StartDateTime: c.NotBefore, EndDateTime: c.NotAfter, Key: c.DER})
	})
}

func dedicatedApp(t *sim.Tenant) *sim.Application {
	for _, a := range t.Entra.Applications {
		if a.DisplayName == plan.DedicatedAppPrefix+t.OnPrem.OrganizationGUID {
			return a
		}
	}
	return nil
}

func appErrType(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Type()
	}
	return fmt.Sprintf("(%T)", err)
}

// --- 1 and 2: happy paths ---

func TestSetupHappyPathDedicated(t *testing.T) {
	h := newHarness(t, "small.yaml")
	res, err := h.run(h.env(), h.input(0, workflows.SetupOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	logSetup(t, res)
	if res.State != workflows.StateVerified || res.Mode != "dedicated-app" {
		t.Fatalf("state %s mode %s: %+v", res.State, res.Mode, res.Verification)
	}
	// The cloud steps (local activities) tag what they create with their run.
	h.world.View(h.inv.Tenants[0].ID, func(tn *sim.Tenant) {
		app := dedicatedApp(tn)
		if app == nil || len(app.Tags) != 1 || !strings.HasPrefix(app.Tags[0], activities.RunTagPrefix) || app.Tags[0] == activities.RunTagPrefix {
			t.Fatalf("dedicated application %+v: want one tag %s<run ID>", app, activities.RunTagPrefix)
		}
		for _, sp := range tn.Entra.ServicePrincipals {
			if strings.EqualFold(sp.AppID, app.AppID) && !slices.Equal(sp.Tags, app.Tags) {
				t.Errorf("its service principal's tags = %v, want %v", sp.Tags, app.Tags)
			}
		}
	})
	// A second run against the configured tenant writes nothing.
	before := h.world.Stats().ByTenant[h.inv.Tenants[0].ID]
	res2, err := h.run(h.env(), h.input(0, workflows.SetupOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	after := h.world.Stats().ByTenant[h.inv.Tenants[0].ID]
	if res2.Writes != 0 || after.Writes != before.Writes {
		t.Fatalf("second run wrote: %d workflow writes, %d world writes", res2.Writes, after.Writes-before.Writes)
	}
}

// cloudWant is what the per-cloud table of docs/microsoft-behaviour.md says step 1 and step 5 produce per cloud,
// spelled out rather than derived from internal/cloud.
type cloudWant struct {
	acsName, acsURL, evoName, evoURL string // %s = initial domain
	spn                              string // %s = SMTP domain
	exoHost                          string
}

var cloudWants = map[string]cloudWant{
	"global": {"WindowsAzureACS", "https://accounts.accesscontrol.windows.net/%s/metadata/json/1", "evoSTS", "https://login.windows.net/%s/federationmetadata/2007-06/federationmetadata.xml", "https://mail.%s/", "outlook.office365.com"},
	"gcc":    {"WindowsAzureACS", "https://accounts.accesscontrol.windows.net/%s/metadata/json/1", "evoSTS", "https://login.windows.net/%s/federationmetadata/2007-06/federationmetadata.xml", "https://mail.%s/", "outlook.office365.com"},
	"gcchigh": {"WindowsAzureACS", "https://login.microsoftonline.us/%s/metadata/json/1", "evoSTS", "https://login.microsoftonline.us/%s/federationmetadata/2007-06/federationmetadata.xml",
		"https://mail.%s/", "outlook.office365.us"},
	"dod": {"WindowsAzureACS", "https://login.microsoftonline.us/%s/metadata/json/1", "evoSTS", "https://login.microsoftonline.us/%s/federationmetadata/2007-06/federationmetadata.xml",
		"https://mail.%s/", "outlook-dod.office365.us"},
	"china": {"MicrosoftAzureACS", "https://accounts.accesscontrol.chinacloudapi.cn/%s/metadata/json/1", "EvoSTS", "https://login.chinacloudapi.cn/%s/federationmetadata/2007-06/federationmetadata.xml",
		"00000002-0000-0ff1-ce00-000000000000/*.%s", "partner.outlook.cn"},
}

var allClouds = []string{"global", "gcc", "gcchigh", "dod", "china"}

// TestSetupEveryCloudBothModes runs Setup on a generated tenant of every
// cloud in both modes, checks what landed in the simulated world, then
// runs again and checks that nothing is written the second time:
//   - dedicated on modern builds, in every cloud;
//   - legacy first-party by build (every server below the April 2025
//     hotfix) and by the inventory's mode setting, in GCC High and DoD,
//     the clouds where Exchange Online still accepts that path;
//   - old builds where the path is blocked (worldwide, GCC, 21Vianet): the
//     generator's old-builds tenants there have one updated server, and
//     mixed builds run on the dedicated application
//     (shared/reference/hybrid-facts.md (b) "mixed builds"), with a
//     warning naming the old server and the build it needs.
//
// TestSetupPausesWhereTheLegacyPathIsBlocked covers the tenants that can
// only use the blocked path.
func TestSetupEveryCloudBothModes(t *testing.T) {
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	gen := func(prefix string, seed int64, old float64, clouds []string) []*sim.Tenant {
		ts, err := sim.GenerateTenants(sim.GenerateSpec{Tenants: len(clouds), Prefix: prefix, Clouds: clouds, OldBuilds: old}, seed, now)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	type want struct {
		mode plan.Mode
		warn string // a warning that must be there
	}
	var ts []*sim.Tenant
	var wants []want
	for _, tn := range gen("ded", 11, 0, allClouds) {
		ts, wants = append(ts, tn), append(wants, want{plan.ModeDedicatedApp, ""})
	}
	for _, tn := range gen("leg", 12, 1, allClouds) {
		w := want{plan.ModeLegacyFirstParty, ""}
		if tn.Cloud == "global" || tn.Cloud == "gcc" || tn.Cloud == "china" {
			w = want{plan.ModeDedicatedApp, "EX02 runs " + sim.GenOldBuild}
		}
		ts, wants = append(ts, tn), append(wants, w)
	}
	for _, tn := range gen("lgm", 13, 0, []string{"gcchigh"}) {
		ts, wants = append(ts, tn), append(wants, want{plan.ModeLegacyFirstParty, "mode auto would choose the dedicated"})
	}
	h := newHarnessWorld(t, &sim.World{FixedNow: now, Tenants: ts})
	h.inv.Tenants[len(ts)-1].ModeSetting = string(plan.ModeLegacyFirstParty)

	for i, ct := range h.inv.Tenants {
		mode := wants[i].mode
		t.Run(fmt.Sprintf("%s/%s/%s", mode, ct.Cloud, strings.Split(ct.InitialDomain, ".")[0]), func(t *testing.T) {
			w0 := h.writes(ct.ID)
			res, err := h.run(h.env(), h.input(i, workflows.SetupOptions{}))
			if err != nil {
				t.Fatal(err)
			}
			if res.State != workflows.StateVerified || res.Mode != string(mode) {
				logSetup(t, res)
				t.Fatalf("state %s mode %s (%s), want verified %s", res.State, res.Mode, res.ModeReason, mode)
			}
			if wants[i].warn != "" && !slices.ContainsFunc(res.Warnings, func(s string) bool { return strings.Contains(s, wants[i].warn) }) {
				t.Errorf("warnings %q should mention %q", res.Warnings, wants[i].warn)
			}
			if res.Verification["onprem-to-online"] != "Success" || res.Verification["online-to-onprem"] != "Success" {
				t.Errorf("verification %v", res.Verification)
			}
			if res.Writes == 0 || h.writes(ct.ID) == w0 {
				t.Errorf("first run wrote nothing: %d workflow writes, %d world writes", res.Writes, h.writes(ct.ID)-w0)
			}
			checkConfigured(t, h.tenant(ct.ID), mode)

			w1 := h.writes(ct.ID)
			res2, err := h.run(h.env(), h.input(i, workflows.SetupOptions{}))
			if err != nil {
				t.Fatal(err)
			}
			if res2.State != workflows.StateVerified || res2.Writes != 0 || h.writes(ct.ID) != w1 {
				logSetup(t, res2)
				t.Errorf("second run: state %s, %d workflow writes, %d world writes; want verified, 0, 0", res2.State, res2.Writes, h.writes(ct.ID)-w1)
			}
		})
	}
}

// TestSetupPausesWhereTheLegacyPathIsBlocked: a tenant that cannot use
// the dedicated application (no Mailbox server on the April 2025 hotfix),
// or whose inventory asks for legacy mode, in a cloud where Exchange
// Online blocks the shared first-party path (worldwide, GCC, 21Vianet:
// shared/reference/hybrid-facts.md (b) "after 31 Oct 2025") pauses at plan
// time (step discover) with LegacyPathBlocked, naming the servers and the
// builds they need, having written nothing; an operator's skip cannot
// carry it past planning either.
func TestSetupPausesWhereTheLegacyPathIsBlocked(t *testing.T) {
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	clouds := []string{"global", "gcc", "china", "global"}
	ts, err := sim.GenerateTenants(sim.GenerateSpec{Tenants: len(clouds), Prefix: "blk", Clouds: clouds}, 14, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range ts[:3] {
		for j := range tn.OnPrem.Servers {
			tn.OnPrem.Servers[j].Version = sim.GenOldBuild
		}
	}
	h := newHarnessWorld(t, &sim.World{FixedNow: now, Tenants: ts})
	h.inv.Tenants[3].ModeSetting = string(plan.ModeLegacyFirstParty) // modern builds, legacy asked for
	mention := [][]string{
		{"EX01 runs " + sim.GenOldBuild, "EX02 runs " + sim.GenOldBuild, "15.2.1544.25", "Worldwide"},
		{"EX01 runs " + sim.GenOldBuild, "GCC", "unconfirmed"},
		{"EX01 runs " + sim.GenOldBuild, "21Vianet"},
		{"mode legacy-first-party is set", "Worldwide"},
	}
	for i, ct := range h.inv.Tenants {
		t.Run(ct.Cloud+"/"+strings.Split(ct.InitialDomain, ".")[0], func(t *testing.T) {
			w0 := h.writes(ct.ID)
			env := h.env()
			whilePaused(t, env, "discover", activities.ErrLegacyPathBlocked, func(st workflows.SetupState) {
				for _, m := range mention[i] {
					if !strings.Contains(st.Paused.Error, m) {
						t.Errorf("pause %q should mention %q", st.Paused.Error, m)
					}
				}
				if st.Mode != "" || len(st.Plan) != 0 {
					t.Errorf("a plan was made: mode %q, %d actions", st.Mode, len(st.Plan))
				}
				sendUpdate(env, workflows.UpdateAbort)
			})
			runAborted(t, h, env, h.input(i, workflows.SetupOptions{}))
			if n := h.writes(ct.ID) - w0; n != 0 {
				t.Errorf("%d writes before planning failed", n)
			}
		})
	}
}

// checkConfigured asserts the world state of a configured tenant.
func checkConfigured(t *testing.T, tn *sim.Tenant, mode plan.Mode) {
	t.Helper()
	want := cloudWants[tn.Cloud]
	smtp := ""
	for _, d := range tn.OnPrem.AcceptedDomains {
		if d.Default {
			smtp = d.DomainName
		}
	}
	routing := ""
	for _, d := range tn.Entra.Domains {
		if strings.Contains(d.ID, ".mail.") {
			routing = d.ID
		}
	}
	// Step 1: one ACS and one evoSTS server, named and addressed per cloud.
	var acs, evo *sim.AuthServer
	for _, a := range tn.OnPrem.AuthServers {
		switch a.Type {
		case "MicrosoftACS":
			if acs != nil {
				t.Errorf("two ACS auth servers: %s, %s", acs.Name, a.Name)
			}
			acs = a
		case "AzureAD":
			if evo != nil {
				t.Errorf("two AzureAD auth servers: %s, %s", evo.Name, a.Name)
			}
			evo = a
		}
	}
	switch {
	case acs == nil || evo == nil:
		t.Fatalf("auth servers missing: %+v", tn.OnPrem.AuthServers)
	case acs.Name != want.acsName || acs.AuthMetadataURL != fmt.Sprintf(want.acsURL, tn.InitialDomain) || !acs.Enabled:
		t.Errorf("ACS auth server %s %s enabled=%v, want %s %s", acs.Name, acs.AuthMetadataURL, acs.Enabled, want.acsName, fmt.Sprintf(want.acsURL, tn.InitialDomain))
	case evo.Name != want.evoName || evo.AuthMetadataURL != fmt.Sprintf(want.evoURL, tn.InitialDomain) || !evo.Enabled:
		t.Errorf("evoSTS auth server %s %s enabled=%v, want %s %s", evo.Name, evo.AuthMetadataURL, evo.Enabled, want.evoName, fmt.Sprintf(want.evoURL, tn.InitialDomain))
	}
	// Step 2.
	if pa := tn.OnPrem.PartnerApplications[0]; !pa.Enabled {
		t.Errorf("partner application %s not enabled", pa.Name)
	}
	// Step 5: the on-prem external host in the cloud's SPN form.
	fp := firstPartySP(tn)
	if spn := fmt.Sprintf(want.spn, smtp); !slices.Contains(fp.ServicePrincipalNames, spn) {
		t.Errorf("first-party SPNs %v lack %s", fp.ServicePrincipalNames, spn)
	}
	// Steps 6 and 7.
	if n := len(tn.OnPrem.IntraOrganizationConnectors); n != 1 {
		t.Fatalf("%d on-prem connectors", n)
	}
	if c := tn.OnPrem.IntraOrganizationConnectors[0]; c.Name != plan.OnPremIOCName || c.DiscoveryEndpoint != "https://"+want.exoHost+"/autodiscover/autodiscover.svc" ||
		!slices.Equal(c.TargetAddressDomains, []string{routing}) || !c.Enabled {
		t.Errorf("on-prem connector %+v", *c)
	}
	if n := len(tn.Online.IntraOrganizationConnectors); n != 1 {
		t.Fatalf("%d online connectors", n)
	}
	if c := tn.Online.IntraOrganizationConnectors[0]; c.Name != plan.OnlineIOCName || !strings.EqualFold(c.DiscoveryEndpoint, "https://autodiscover."+smtp+"/autodiscover/autodiscover.svc") ||
		!slices.Equal(c.TargetAddressDomains, []string{smtp}) || !c.Enabled {
		t.Errorf("online connector %+v", *c)
	}
	// Where the key went, per mode.
	cert := authCert(tn)
	app := dedicatedApp(tn)
	if mode == plan.ModeLegacyFirstParty {
		if !hasKeyFor(fp.KeyCredentials, cert) {
			t.Errorf("legacy: auth certificate %s not on the first-party service principal", cert.Thumbprint)
		}
		if app != nil || evo.ApplicationIdentifier != "" || len(tn.OnPrem.SettingOverrides) != 0 {
			t.Errorf("legacy: dedicated-app objects present: app %v, evoSTS app id %q, %d overrides", app != nil, evo.ApplicationIdentifier, len(tn.OnPrem.SettingOverrides))
		}
		return
	}
	if app == nil {
		t.Fatal("dedicated: no ExchangeServerApp-<guid> application")
	}
	if !hasKeyFor(app.KeyCredentials, cert) || hasKeyFor(fp.KeyCredentials, cert) {
		t.Errorf("dedicated: key on app %v, on first-party SP %v; want true, false", hasKeyFor(app.KeyCredentials, cert), hasKeyFor(fp.KeyCredentials, cert))
	}
	if evo.ApplicationIdentifier != app.AppID {
		t.Errorf("evoSTS ApplicationIdentifier %q, want %s", evo.ApplicationIdentifier, app.AppID)
	}
	var dsp *sim.ServicePrincipal
	for _, sp := range tn.Entra.ServicePrincipals {
		if sp.AppID == app.AppID {
			dsp = sp
		}
	}
	if dsp == nil {
		t.Fatal("dedicated: no service principal for the application")
	}
	if !slices.ContainsFunc(tn.Entra.AppRoleAssignments, func(a *sim.AppRoleAssignment) bool {
		return a.PrincipalID == dsp.ID && a.ResourceID == fp.ID && a.AppRoleID == plan.FullAccessAsAppRoleID
	}) {
		t.Error("dedicated: no full_access_as_app consent")
	}
	if len(tn.OnPrem.SettingOverrides) != 1 || tn.OnPrem.SettingOverrides[0].Section != plan.OverrideSection || !tn.OnPrem.VariantConfigRefreshed {
		t.Errorf("dedicated: setting overrides %+v, refreshed %v", tn.OnPrem.SettingOverrides, tn.OnPrem.VariantConfigRefreshed)
	}
}

// TestSetupDryRunWritesNothing: a dry run discovers and plans only.
func TestSetupDryRunWritesNothing(t *testing.T) {
	h := newHarness(t, "small.yaml")
	id := h.inv.Tenants[0].ID
	before, w0 := h.config(id), h.writes(id)
	res, err := h.run(h.env(), h.input(0, workflows.SetupOptions{DryRun: true}))
	if err != nil {
		t.Fatal(err)
	}
	if res.State != workflows.StatePlanned || len(res.Plan) == 0 || res.Writes != 0 || h.writes(id) != w0 {
		t.Fatalf("state %s, %d actions, %d workflow writes, %d world writes", res.State, len(res.Plan), res.Writes, h.writes(id)-w0)
	}
	if !slices.ContainsFunc(res.Plan, func(a plan.Action) bool { return a.Change.Writes() }) {
		t.Error("the plan of an unconfigured tenant has no write")
	}
	sameConfig(t, "dry run", before, h.config(id))
}

// --- 3 and 4: pause, retry, skip ---

var iocFault = sim.FaultRule{Protocol: sim.ProtoShell, Operation: "New-IntraOrganizationConnector", Kind: sim.FaultServer, FailFirstN: 1000}

// TestSetupPauseRetry: step 6 fails after its 3 attempts (a transient
// fault that does not go away); the run pauses (query, HybridflowState),
// a retry while the fault persists pauses again, then the fault is cleared
// and a retry finishes the run.
func TestSetupPauseRetry(t *testing.T) {
	h := newHarness(t, "small.yaml")
	id := h.inv.Tenants[0].ID
	h.world.SetFaults([]sim.FaultRule{iocFault})
	env := h.env()
	sa := recordSearchAttrs(env)
	var firstRetry, secondRetry *updateOutcome
	whilePaused(t, env, plan.StepIOCOnPrem, "ADTransientException", func(st workflows.SetupState) {
		if sa.lastState() != workflows.StatePaused || sa.lastStep() != string(plan.StepIOCOnPrem) {
			t.Errorf("search attributes: state %q step %q, want paused %s", sa.lastState(), sa.lastStep(), plan.StepIOCOnPrem)
		}
		if n := h.tenant(id).OnPrem.IntraOrganizationConnectors; len(n) != 0 {
			t.Errorf("connector exists while its step is paused: %+v", n)
		}
		firstRetry = sendUpdate(env, workflows.UpdateRetry)
	})
	env.RegisterDelayedCallback(func() {
		st := state(t, env)
		if st.Paused == nil || setupStep(st, plan.StepIOCOnPrem).Attempts != 2 {
			t.Errorf("after a retry with the fault still there: paused %+v, attempts %d; want paused again, 2", st.Paused, setupStep(st, plan.StepIOCOnPrem).Attempts)
		}
		h.world.SetFaults(nil)
		secondRetry = sendUpdate(env, workflows.UpdateRetry)
	}, 2*time.Hour)
	res, err := h.run(env, h.input(0, workflows.SetupOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if firstRetry == nil || !firstRetry.accepted || secondRetry == nil || !secondRetry.accepted {
		t.Fatalf("updates: %+v %+v", firstRetry, secondRetry)
	}
	s := setupStep(res, plan.StepIOCOnPrem)
	if res.State != workflows.StateVerified || s.Status != workflows.StatusDone || s.Attempts != 3 || s.Outcome != "created" {
		logSetup(t, res)
		t.Fatalf("state %s; step %s %s after %d attempts", res.State, s.Status, s.Outcome, s.Attempts)
	}
	if sa.lastState() != workflows.StateVerified {
		t.Errorf("HybridflowState %q at the end", sa.lastState())
	}
	// running, paused, running, paused, running, verified: the step goes
	// with the pauses and the end, never on its own.
	if want := []string{"running", "paused", "running", "paused", "running", "verified"}; !slices.Equal(sa.states, want) || sa.stepOnly != 0 {
		t.Errorf("HybridflowState upserts %v (want %v); %d step-only upserts (HybridflowStep %v)", sa.states, want, sa.stepOnly, sa.steps)
	}
	if c := h.tenant(id).OnPrem.IntraOrganizationConnectors; len(c) != 1 || c[0].Name != plan.OnPremIOCName {
		t.Errorf("on-prem connectors after retry: %+v", c)
	}
}

// TestSetupPauseSkip: the operator skips the failed step 6; the run goes
// on, and a second update sent while the first is applied is rejected.
// The setting override then waits for an enabled on-prem connector, as
// Microsoft's script requires (shared/reference/hybrid-facts.md (b)
// "Setting override"): it pauses naming it, the operator makes one by
// hand and retries, and the run verifies.
func TestSetupPauseSkip(t *testing.T) {
	h := newHarness(t, "small.yaml")
	id := h.inv.Tenants[0].ID
	h.world.SetFaults([]sim.FaultRule{iocFault})
	env := h.env()
	var skip, late *updateOutcome
	whilePaused(t, env, plan.StepIOCOnPrem, "", func(workflows.SetupState) {
		skip = sendUpdate(env, workflows.UpdateSkip)
		late = sendUpdate(env, workflows.UpdateRetry)
	})
	var waited bool
	env.RegisterDelayedCallback(func() {
		st := state(t, env)
		if st.Paused == nil || st.Paused.Step != string(plan.StepSettingOverride) || st.Paused.ErrorType != activities.ErrInvalidInput ||
			!strings.Contains(st.Paused.Error, "no enabled on-premises IntraOrganizationConnector") {
			t.Errorf("after the skip: paused %+v; want the setting override waiting for an enabled connector", st.Paused)
			return
		}
		waited = true
		h.world.SetFaults(nil)
		h.world.Update(id, func(tn *sim.Tenant) {
			tn.OnPrem.IntraOrganizationConnectors = append(tn.OnPrem.IntraOrganizationConnectors, &sim.IntraOrgConnector{Name: "Made by hand",
				DiscoveryEndpoint: "https://outlook.office365.com/autodiscover/autodiscover.svc", TargetAddressDomains: []string{"small1.mail.onmicrosoft.com"}, Enabled: true})
		})
		sendUpdate(env, workflows.UpdateRetry)
	}, 2*time.Hour)
	res, err := h.run(env, h.input(0, workflows.SetupOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if skip == nil || late == nil {
		t.Fatal("the run never paused")
	}
	if !skip.accepted || !late.rejected {
		t.Errorf("skip accepted %v; second update rejected %v (%v)", skip.accepted, late.rejected, late.err)
	}
	if s := setupStep(res, plan.StepIOCOnPrem); s.Status != workflows.StatusSkipped {
		t.Errorf("step %s %s, want skipped", s.Step, s.Status)
	}
	if s := setupStep(res, plan.StepIOCOnline); s.Status != workflows.StatusDone || s.Outcome != "created" {
		t.Errorf("the run did not go on: %s %s %s", s.Step, s.Status, s.Outcome)
	}
	if res.State != workflows.StateVerified || !waited {
		t.Errorf("state %s, waited for a connector %v", res.State, waited)
	}
	tn := h.tenant(id)
	if len(tn.OnPrem.IntraOrganizationConnectors) != 1 || tn.OnPrem.IntraOrganizationConnectors[0].Name != "Made by hand" || len(tn.Online.IntraOrganizationConnectors) != 1 {
		t.Errorf("connectors: on-prem %+v, online %d; want the hand-made one, 1", tn.OnPrem.IntraOrganizationConnectors, len(tn.Online.IntraOrganizationConnectors))
	}
}

// TestSetupDiscoveryCannotBeSkipped: skipping discovery would end the run
// "verified" with no plan and nothing done; the update is rejected, and a
// retry after the fault clears runs normally.
func TestSetupDiscoveryCannotBeSkipped(t *testing.T) {
	h := newHarness(t, "small.yaml")
	h.world.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoShell, Operation: "Get-OrganizationConfig", Kind: sim.FaultFail, ErrorType: exchange.TypeAccessDenied, FailFirstN: 1}})
	env := h.env()
	var skip, retry *updateOutcome
	whilePaused(t, env, "discover", activities.ErrMissingPermission, func(workflows.SetupState) {
		skip = sendUpdate(env, workflows.UpdateSkip)
		retry = sendUpdate(env, workflows.UpdateRetry)
	})
	res, err := h.run(env, h.input(0, workflows.SetupOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if skip == nil || retry == nil {
		t.Fatal("the run never paused")
	}
	if !skip.rejected || !strings.Contains(fmt.Sprint(skip.err), "cannot be skipped") || !retry.accepted {
		t.Errorf("skip rejected %v (%v), retry accepted %v", skip.rejected, skip.err, retry.accepted)
	}
	if res.State != workflows.StateVerified || res.Writes == 0 {
		t.Errorf("state %s after %d writes", res.State, res.Writes)
	}
}

// --- 5: abort compensates exactly this run's changes ---

// TestSetupAbortRestoresWorld pauses at a late step, checks that the run
// did change the world, aborts, and compares the world with its state
// before the run. The half-configured GCC High tenant (small.yaml 03:
// auth servers and an enabled partner application made by hand, a
// pre-SP1 server) proves that objects the run did not create survive.
func TestSetupAbortRestoresWorld(t *testing.T) {
	cases := []struct {
		name   string
		tenant int
		fault  sim.FaultRule
		step   plan.Step
		keep   func(t *testing.T, tn *sim.Tenant)
	}{
		{"clean-global", 0, sim.FaultRule{Protocol: sim.ProtoEXO, Operation: "New-IntraOrganizationConnector", Kind: sim.FaultFail, ErrorType: exchange.TypeAccessDenied, Rate: 1},
			plan.StepIOCOnline, nil},
		{"half-configured-gcchigh", 2, sim.FaultRule{Protocol: sim.ProtoShell, Operation: "Add-AvailabilityAddressSpace", Kind: sim.FaultFail, ErrorType: exchange.TypeAccessDenied, Rate: 1},
			plan.StepAvailability, func(t *testing.T, tn *sim.Tenant) {
				if len(tn.OnPrem.AuthServers) != 2 || tn.OnPrem.AuthServers[0].Name != "WindowsAzureACS" || tn.OnPrem.AuthServers[1].Name != "evoSTS" {
					t.Errorf("pre-existing auth servers: %+v", tn.OnPrem.AuthServers)
				}
				if !tn.OnPrem.PartnerApplications[0].Enabled {
					t.Error("the partner application enabled by hand was disabled")
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, "small.yaml")
			id := h.inv.Tenants[c.tenant].ID
			before := h.config(id)
			h.world.SetFaults([]sim.FaultRule{c.fault})
			env := h.env()
			sa := recordSearchAttrs(env)
			var abort *updateOutcome
			whilePaused(t, env, c.step, activities.ErrMissingPermission, func(st workflows.SetupState) {
				if h.config(id) == before || st.Undo == 0 {
					t.Errorf("nothing changed before the pause (%d undo records)", st.Undo)
				}
				abort = sendUpdate(env, workflows.UpdateAbort)
			})
			_, err := h.run(env, h.input(c.tenant, workflows.SetupOptions{}))
			if appErrType(err) != workflows.ErrAborted {
				t.Fatalf("error %v (%s), want %s", err, appErrType(err), workflows.ErrAborted)
			}
			st := state(t, env)
			logSetup(t, st)
			if abort == nil {
				t.Fatal("the run never paused")
			}
			if s := setupStep(st, c.step); s.Status != workflows.StatusFailed {
				t.Errorf("aborted step %s is %s, want %s", c.step, s.Status, workflows.StatusFailed)
			}
			if want := fmt.Sprintf("%d change(s) undone", len(st.Compensation)); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
			if !abort.accepted || st.State != workflows.StateAborted || sa.lastState() != workflows.StateAborted || st.Undo != 0 || len(st.Compensation) == 0 {
				t.Errorf("abort accepted %v; state %s, attribute %s, %d undo records left, %d compensations", abort.accepted, st.State, sa.lastState(), st.Undo, len(st.Compensation))
			}
			for _, s := range st.Steps {
				if s.Outcome != "" && s.Outcome != "unchanged" && s.Outcome != "verified" && s.Status != workflows.StatusCompensated && s.Step != string(c.step) {
					t.Errorf("step %s changed something (%s) but is %s", s.Step, s.Outcome, s.Status)
				}
			}
			sameConfig(t, c.name, before, h.config(id))
			if c.keep != nil {
				c.keep(t, h.tenant(id))
			}
		})
	}
}

// TestSetupAbortAfterPartialStep covers steps whose first part wrote and
// whose second part failed. Each used to lose the first part's undo
// record (a failed activity returns no result, and its retry finds the
// object and reports it unchanged), so an abort left the object behind:
//   - auth servers: ACS created, evoSTS refused (no permission). (A
//     server in the way that is not ours now blocks the step before any
//     write, as the plan says: activities.TestPlanAndActivitiesAgree.)
//   - dedicated app: an application made by hand without its service
//     principal; the run creates the SP, consent is refused (403);
//   - setting override: created, VariantConfiguration refresh refused.
func TestSetupAbortAfterPartialStep(t *testing.T) {
	cases := []struct {
		name  string
		setup func(h *harness, id string)
		fault *sim.FaultRule
		step  plan.Step
		typ   string
		// flaky keeps the fault during the abort; after checks the world.
		flaky bool
		after func(t *testing.T, tn *sim.Tenant, st workflows.SetupState)
	}{
		{"auth-servers", nil, &sim.FaultRule{Protocol: sim.ProtoShell, Operation: "New-AuthServer", Kind: sim.FaultFail, ErrorType: exchange.TypeAccessDenied, SkipFirstN: 1, FailFirstN: 1000},
			plan.StepAuthServers, activities.ErrMissingPermission, false, nil},
		{"dedicated-app", func(h *harness, id string) {
			// Made by hand, without its service principal: the run creates
			// only the SP, and an abort must delete exactly that (deleting
			// the application would otherwise take its SP along).
			h.world.Update(id, func(t *sim.Tenant) {
				t.Entra.Applications = append(t.Entra.Applications, &sim.Application{ID: "0f0f0f0f-0000-4000-8000-000000000001", AppID: "0f0f0f0f-0000-4000-8000-000000000002",
					DisplayName: plan.DedicatedAppPrefix + t.OnPrem.OrganizationGUID, SignInAudience: "AzureADMyOrg",
					RequiredResourceAccess: []sim.RequiredResourceAccess{{ResourceAppID: cloud.FirstPartyAppID, ResourceAccess: []sim.ResourceAccess{{ID: plan.FullAccessAsAppRoleID, Type: "Role"}}}}})
			})
		}, &sim.FaultRule{Protocol: sim.ProtoGraph, Operation: "POST servicePrincipals/appRoleAssignments", Kind: sim.FaultFail, ErrorType: "403 Authorization_RequestDenied", Rate: 1},
			plan.StepDedicatedApp, activities.ErrMissingPermission, false, nil},
		{"setting-override", nil, &sim.FaultRule{Protocol: sim.ProtoShell, Operation: "Get-ExchangeDiagnosticInfo", Kind: sim.FaultFail, ErrorType: exchange.TypeAccessDenied, Rate: 1},
			plan.StepSettingOverride, activities.ErrMissingPermission, false, nil},
		// The refresh fails 3 times (the step's attempts: pause) and once
		// more during the undo, after Remove-SettingOverride succeeded. The
		// undo's retry finds the override gone and must still refresh, or
		// Exchange keeps the removed override loaded.
		{"setting-override-flaky-refresh", nil, &sim.FaultRule{Protocol: sim.ProtoShell, Operation: "Get-ExchangeDiagnosticInfo", Kind: sim.FaultFail, ErrorType: exchange.TypeTransient, FailFirstN: 4},
			plan.StepSettingOverride, "ADTransientException", true, func(t *testing.T, tn *sim.Tenant, st workflows.SetupState) {
				if !tn.OnPrem.VariantConfigRefreshed {
					t.Error("VariantConfiguration not refreshed after the override was removed")
				}
				if !slices.Contains(st.Compensation, "setting-override: "+activities.UndoRemoveSettingOverride+" "+plan.OverrideName) {
					t.Errorf("compensation %v", st.Compensation)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, "small.yaml")
			id := h.inv.Tenants[0].ID
			if c.setup != nil {
				c.setup(h, id)
			}
			before := h.config(id)
			if c.fault != nil {
				h.world.SetFaults([]sim.FaultRule{*c.fault})
			}
			env := h.env()
			whilePaused(t, env, c.step, c.typ, func(st workflows.SetupState) {
				if setupStep(st, c.step).Outcome == "" || st.Undo == 0 {
					t.Errorf("step %s shows no partial outcome (%d undo records)", c.step, st.Undo)
				}
				// The operator restores what was refused, then aborts: the
				// undo of the override needs the refresh as well.
				if !c.flaky {
					h.world.SetFaults(nil)
				}
				sendUpdate(env, workflows.UpdateAbort)
			})
			st := runAborted(t, h, env, h.input(0, workflows.SetupOptions{}))
			if s := setupStep(st, c.step); s.Status != workflows.StatusCompensated {
				t.Errorf("step %s is %s after the abort, want compensated", c.step, s.Status)
			}
			sameConfig(t, c.name, before, h.config(id))
			if c.after != nil {
				c.after(t, h.tenant(id), st)
			}
		})
	}
}

// TestSetupOperatorRetryAfterPartialStep: the dedicated-app step fails at
// consent after creating the application and its service principal; the
// operator retries once consent works. The retry finds both objects, adds
// only the consent, and an abort at a later step (the setting override,
// which waits for the application) still removes all three.
func TestSetupOperatorRetryAfterPartialStep(t *testing.T) {
	h := newHarness(t, "small.yaml")
	id := h.inv.Tenants[0].ID
	before := h.config(id)
	denyOverride := sim.FaultRule{Protocol: sim.ProtoShell, Operation: "New-SettingOverride", Kind: sim.FaultFail, ErrorType: exchange.TypeAccessDenied, Rate: 1}
	h.world.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoGraph, Operation: "POST servicePrincipals/appRoleAssignments", Kind: sim.FaultFail, ErrorType: "403 Authorization_RequestDenied", Rate: 1},
		denyOverride})
	env := h.env()
	whilePaused(t, env, plan.StepDedicatedApp, activities.ErrMissingPermission, func(workflows.SetupState) {
		h.world.SetFaults([]sim.FaultRule{denyOverride})
		sendUpdate(env, workflows.UpdateRetry)
	})
	env.RegisterDelayedCallback(func() {
		st := state(t, env)
		if st.Paused == nil || st.Paused.Step != string(plan.StepSettingOverride) {
			t.Errorf("want a pause at %s, got %+v", plan.StepSettingOverride, st.Paused)
		}
		if tn := h.tenant(id); dedicatedApp(tn) == nil || len(tn.Entra.AppRoleAssignments) != 2 {
			t.Errorf("after the retry: app %v, %d assignments", dedicatedApp(tn) != nil, len(tn.Entra.AppRoleAssignments))
		}
		sendUpdate(env, workflows.UpdateAbort)
	}, 2*time.Hour)
	st := runAborted(t, h, env, h.input(0, workflows.SetupOptions{}))
	if s := setupStep(st, plan.StepDedicatedApp); s.Attempts != 2 || s.Status != workflows.StatusCompensated {
		t.Errorf("dedicated-app: %d attempts, %s", s.Attempts, s.Status)
	}
	sameConfig(t, "retry then abort", before, h.config(id))
}

// --- 6: cancellation compensates ---

func TestSetupCancelCompensates(t *testing.T) {
	t.Run("during-a-cloud-write", func(t *testing.T) {
		// Cancelled as the dedicated application's creation (a local
		// activity) starts: the write must finish and be recorded, so that
		// compensation deletes the application, and no later write starts.
		h := newHarness(t, "small.yaml")
		id := h.inv.Tenants[0].ID
		before := h.config(id)
		env := h.env()
		var cancelled atomic.Bool // set on the local activity's goroutine
		env.SetOnLocalActivityStartedListener(func(_ *activity.Info, _ context.Context, args []any) {
			if len(args) == 1 {
				if _, ok := args[0].(activities.DedicatedAppInput); ok && cancelled.CompareAndSwap(false, true) {
					env.CancelWorkflow()
				}
			}
		})
		_, err := h.run(env, h.input(0, workflows.SetupOptions{}))
		if !cancelled.Load() {
			t.Fatal("the dedicated application was not created by a local activity (tenant 0 is in dedicated mode)")
		}
		if !temporal.IsCanceledError(err) {
			t.Fatalf("error %v (%T), want cancelled", err, err)
		}
		st := state(t, env)
		if s := setupStep(st, plan.StepDedicatedApp); s.Status != workflows.StatusCompensated || !slices.ContainsFunc(st.Compensation, func(c string) bool { return strings.Contains(c, activities.UndoDeleteApplication) }) {
			logSetup(t, st)
			t.Errorf("dedicated-app %s; compensation %v: want the application deleted", s.Status, st.Compensation)
		}
		if s := setupStep(st, plan.StepKeys); s.Status == workflows.StatusDone || s.Status == workflows.StatusCompensated {
			t.Errorf("%s ran after the cancel: %s", plan.StepKeys, s.Status)
		}
		sameConfig(t, "cancel during a cloud write", before, h.config(id))
	})
	t.Run("during-an-on-prem-write", func(t *testing.T) {
		// Cancelled as the auth servers' activity starts, while other
		// steps run beside it: the activity is not cancelled, its result
		// (the servers it created) is recorded, and compensation removes
		// them; no step starts after the cancel.
		h := newHarness(t, "small.yaml")
		id := h.inv.Tenants[0].ID
		before := h.config(id)
		env := h.env()
		var cancelled atomic.Bool
		env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
			if info.ActivityType.Name == contract.ActEnsureAuthServers && cancelled.CompareAndSwap(false, true) {
				env.CancelWorkflow()
			}
		})
		_, err := h.run(env, h.input(0, workflows.SetupOptions{}))
		if !cancelled.Load() || !temporal.IsCanceledError(err) {
			t.Fatalf("cancelled %v, error %v; want a cancelled run", cancelled.Load(), err)
		}
		st := state(t, env)
		if s := setupStep(st, plan.StepAuthServers); s.Status != workflows.StatusCompensated {
			logSetup(t, st)
			t.Errorf("auth-servers %s after the cancel, want compensated (its write recorded and undone)", s.Status)
		}
		for _, s := range []plan.Step{plan.StepOnPremAuthServerApp, plan.StepSettingOverride, plan.StepVerify} {
			if x := setupStep(st, s); x.Attempts != 0 {
				t.Errorf("%s started after the cancel (%s)", s, x.Status)
			}
		}
		sameConfig(t, "cancel during an on-prem write", before, h.config(id))
	})
	t.Run("while-paused", func(t *testing.T) {
		h := newHarness(t, "small.yaml")
		id := h.inv.Tenants[2].ID
		before := h.config(id)
		h.world.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoEXO, Operation: "New-IntraOrganizationConnector", Kind: sim.FaultFail, ErrorType: exchange.TypeAccessDenied, Rate: 1}})
		env := h.env()
		whilePaused(t, env, plan.StepIOCOnline, "", func(workflows.SetupState) { env.CancelWorkflow() })
		_, err := h.run(env, h.input(2, workflows.SetupOptions{}))
		if !temporal.IsCanceledError(err) {
			t.Fatalf("error %v (%T), want cancelled", err, err)
		}
		if st := state(t, env); st.State != workflows.StateAborted || len(st.Compensation) == 0 {
			t.Errorf("state %s, %d compensations", st.State, len(st.Compensation))
		}
		sameConfig(t, "cancel while paused", before, h.config(id))
	})
	t.Run("compensation-fails", func(t *testing.T) {
		// Cancelled while paused, and one undo is refused: the run must
		// not end as a clean cancellation claiming its changes were undone.
		h := newHarness(t, "small.yaml")
		id := h.inv.Tenants[0].ID
		h.world.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoEXO, Operation: "New-IntraOrganizationConnector", Kind: sim.FaultFail, ErrorType: exchange.TypeAccessDenied, Rate: 1},
			{Protocol: sim.ProtoShell, Operation: "Remove-AuthServer", Kind: sim.FaultFail, ErrorType: exchange.TypeAccessDenied, Rate: 1}})
		env := h.env()
		whilePaused(t, env, plan.StepIOCOnline, "", func(workflows.SetupState) { env.CancelWorkflow() })
		_, err := h.run(env, h.input(0, workflows.SetupOptions{}))
		if appErrType(err) != workflows.ErrCompensationFailed {
			t.Fatalf("error %v (%s), want %s", err, appErrType(err), workflows.ErrCompensationFailed)
		}
		st := state(t, env)
		failed := 0
		for _, c := range st.Compensation {
			if strings.HasPrefix(c, "FAILED auth-servers: remove-auth-server") {
				failed++
			}
		}
		if failed != 2 || setupStep(st, plan.StepAuthServers).Status == workflows.StatusCompensated || !strings.Contains(st.Error, "compensation failed") {
			t.Errorf("%d failed undos (want 2); auth-servers %s; error %q", failed, setupStep(st, plan.StepAuthServers).Status, st.Error)
		}
		if tn := h.tenant(id); len(tn.OnPrem.AuthServers) != 2 || dedicatedApp(tn) != nil {
			t.Errorf("after the partial compensation: %d auth servers (want 2, refused), app %v (want removed)", len(tn.OnPrem.AuthServers), dedicatedApp(tn) != nil)
		}
	})
	t.Run("while-verifying", func(t *testing.T) {
		// Propagation keeps verification failing; the run waits on its
		// 15 s / 30 s timers and is cancelled 20 s in, during the second wait.
		h := newHarness(t, "small.yaml")
		id := h.inv.Tenants[0].ID
		h.world.Update(id, func(t *sim.Tenant) { t.Behaviour.PropagationChecks = 100 })
		before := h.config(id)
		env := h.env()
		var timers []time.Duration
		env.SetOnTimerScheduledListener(func(_ string, d time.Duration) { timers = append(timers, d) })
		env.RegisterDelayedCallback(func() {
			if st := state(t, env); st.CurrentStep != string(plan.StepVerify) {
				t.Errorf("at 20s the run is at %s, want %s", st.CurrentStep, plan.StepVerify)
			}
			env.CancelWorkflow()
		}, 20*time.Second)
		_, err := h.run(env, h.input(0, workflows.SetupOptions{}))
		if !temporal.IsCanceledError(err) {
			t.Fatalf("error %v, want cancelled", err)
		}
		if !slices.Equal(timers, []time.Duration{15 * time.Second, 30 * time.Second}) {
			t.Errorf("timers %v", timers)
		}
		sameConfig(t, "cancel while verifying", before, h.config(id))
	})
}

// --- 7: verification waits for propagation on durable timers ---

func TestSetupVerifyWaitsForPropagation(t *testing.T) {
	t.Run("passes-after-propagation", func(t *testing.T) {
		// 5 checks still fail after the last write. Both directions test in
		// parallel each round and each failing test uses one up: rounds 1
		// and 2 use 4, in round 3 one direction uses the last, round 4
		// passes. So: 4 rounds, 3 timers of 15, 30 and 60 s.
		h := newHarness(t, "small.yaml")
		id := h.inv.Tenants[0].ID
		h.world.Update(id, func(t *sim.Tenant) { t.Behaviour.PropagationChecks = 5 })
		env := h.env()
		var timers []time.Duration
		var mu sync.Mutex
		verifies := 0
		env.SetOnTimerScheduledListener(func(_ string, d time.Duration) { timers = append(timers, d) })
		env.SetOnActivityCompletedListener(func(ai *activity.Info, _ converter.EncodedValue, _ error) {
			if ai.ActivityType.Name == "VerifyFromOnPrem" {
				mu.Lock()
				verifies++
				mu.Unlock()
			}
		})
		start := env.Now()
		res, err := h.run(env, h.input(0, workflows.SetupOptions{}))
		if err != nil {
			t.Fatal(err)
		}
		elapsed := env.Now().Sub(start)
		if res.State != workflows.StateVerified || verifies != 4 || !slices.Equal(timers, []time.Duration{15 * time.Second, 30 * time.Second, 60 * time.Second}) || elapsed < 105*time.Second {
			t.Errorf("state %s after %d verify rounds, timers %v, %s of workflow time", res.State, verifies, timers, elapsed)
		}
		if d := setupStep(res, plan.StepVerify).Detail; !strings.Contains(d, "round 4") {
			t.Errorf("verify detail %q", d)
		}
	})
	t.Run("pauses-at-deadline-then-retry", func(t *testing.T) {
		// Deadline 1 min: rounds at 0, 15 and 45 s; the next wait (60 s)
		// would pass it, so the step fails as VerificationFailed and pauses.
		// Once the change has propagated, a retry verifies.
		h := newHarness(t, "small.yaml")
		id := h.inv.Tenants[0].ID
		h.world.Update(id, func(t *sim.Tenant) { t.Behaviour.PropagationChecks = 100 })
		env := h.env()
		whilePaused(t, env, plan.StepVerify, activities.ErrVerification, func(st workflows.SetupState) {
			if !strings.Contains(st.Paused.Error, "3 rounds") || !strings.Contains(st.Paused.Error, sim.OAuthReasonNotPropagated) {
				t.Errorf("pause error %q", st.Paused.Error)
			}
			h.world.Update(id, func(t *sim.Tenant) { t.Behaviour.PendingPropagation = 0 })
			sendUpdate(env, workflows.UpdateRetry)
		})
		res, err := h.run(env, h.input(0, workflows.SetupOptions{VerifyDeadline: time.Minute}))
		if err != nil {
			t.Fatal(err)
		}
		if s := setupStep(res, plan.StepVerify); res.State != workflows.StateVerified || s.Attempts != 2 {
			t.Errorf("state %s, verify attempts %d", res.State, s.Attempts)
		}
	})
}

// --- 8: legacy-key removal ---

// TestSetupRemovesLegacyKey: a dedicated-mode tenant whose first-party SP
// still holds the auth certificate (and a key of another application):
// after the first verification the auth certificate's key is removed, the
// other key stays, and the second verification passes.
func TestSetupRemovesLegacyKey(t *testing.T) {
	h := newHarness(t, "small.yaml")
	id := h.inv.Tenants[0].ID
	h.giveLegacyKey(id)
	foreign := sim.NewCertificate("CN=Fabrikam Partner Signing", 77, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC))
	h.world.Update(id, func(t *sim.Tenant) {
		fp := firstPartySP(t)
		fp.KeyCredentials = append(fp.KeyCredentials, sim.KeyCredential{KeyID: "6d1f4c1e-0000-4000-8000-0000000f0e19", CustomKeyIdentifier: foreign.Thumbprint,
			Type: "AsymmetricX509Cert", Usage: "Verify", StartDateTime: foreign.NotBefore, EndDateTime: foreign.NotAfter, Key: foreign.DER})
	})
	res, err := h.run(h.env(), h.input(0, workflows.SetupOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	logSetup(t, res)
	tn := h.tenant(id)
	fp := firstPartySP(tn)
	if hasKeyFor(fp.KeyCredentials, authCert(tn)) || !hasKeyFor(fp.KeyCredentials, foreign) {
		t.Errorf("first-party keys after removal: auth cert %v (want false), foreign %v (want true)", hasKeyFor(fp.KeyCredentials, authCert(tn)), hasKeyFor(fp.KeyCredentials, foreign))
	}
	if rm, v2 := setupStep(res, plan.StepRemoveLegacyKey), setupStep(res, plan.StepVerifyAfterRemoval); res.State != workflows.StateVerified ||
		rm.Outcome != string(activities.Removed) || v2.Status != workflows.StatusDone || v2.Outcome != "verified" {
		t.Errorf("state %s; remove %s/%s; verify again %s/%s", res.State, rm.Status, rm.Outcome, v2.Status, v2.Outcome)
	}
}

// TestSetupLegacyKeyRestoredWhenSecondVerificationFails: GCC High, where
// the first-party path is not blocked, dedicated mode, legacy key on the
// first-party SP. Right after the key is removed the evoSTS auth server
// loses its ApplicationIdentifier (what a Hybrid Configuration Wizard
// re-run or an admin resetting the auth server does): on-prem signs with
// first-party tokens again, which only the legacy key made valid. This is
// a world condition, so Test-OAuthConnectivity fails as a *result*
// ((401) key not on the first-party SP) on every round until the
// deadline, exactly as it would for real; a fault on the cmdlet would
// instead be an activity error and not exercise the verdict path.
// The workflow must put the key back, pause with VerificationFailed, and
// an abort then undoes the rest.
func TestSetupLegacyKeyRestoredWhenSecondVerificationFails(t *testing.T) {
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	ts, err := sim.GenerateTenants(sim.GenerateSpec{Tenants: 1, Prefix: "rb", Clouds: []string{"gcchigh"}, ForeignKeys: 1}, 21, now)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessWorld(t, &sim.World{FixedNow: now, Tenants: ts})
	const i = 0
	id := h.inv.Tenants[i].ID
	h.giveLegacyKey(id)
	before := h.config(id)
	env := h.env()
	// RemoveLegacyKeys is a cloud step, so a local activity; the test
	// environment names local activities by their Go function ("func1"),
	// so it is recognised by its result: the one step that restores keys.
	env.SetOnLocalActivityCompletedListener(func(_ *activity.Info, v converter.EncodedValue, err error) {
		var r activities.StepResult
		if err == nil && v != nil && v.Get(&r) == nil && len(r.Undo) > 0 && r.Undo[0].Kind == activities.UndoRestoreKeys {
			h.world.Update(id, func(t *sim.Tenant) {
				for _, a := range t.OnPrem.AuthServers {
					if a.Type == "AzureAD" {
						a.ApplicationIdentifier, a.DomainName = "", nil
					}
				}
			})
		}
	})
	whilePaused(t, env, plan.StepRemoveLegacyKey, activities.ErrVerification, func(st workflows.SetupState) {
		tn := h.tenant(id)
		if !hasKeyFor(firstPartySP(tn).KeyCredentials, authCert(tn)) {
			t.Error("the legacy key was not put back")
		}
		if !strings.Contains(st.Paused.Error, "every removed key was restored") || !strings.Contains(st.Paused.Error, sim.OAuthReasonKeyNotOnFirstPartySP) {
			t.Errorf("pause error %q", st.Paused.Error)
		}
		if !slices.Contains(st.Compensation, "restored the removed first-party keys after verification failed") {
			t.Errorf("compensation %v", st.Compensation)
		}
		if v2 := setupStep(st, plan.StepVerifyAfterRemoval); v2.Status != workflows.StatusFailed || v2.ErrorType != activities.ErrVerification {
			t.Errorf("verify-after-removal %s %s", v2.Status, v2.ErrorType)
		}
		sendUpdate(env, workflows.UpdateAbort)
	})
	_, err = h.run(env, h.input(i, workflows.SetupOptions{VerifyDeadline: time.Minute}))
	if appErrType(err) != workflows.ErrAborted {
		t.Fatalf("error %v", err)
	}
	st := state(t, env)
	logSetup(t, st)
	if st.Mode != string(plan.ModeDedicatedApp) {
		t.Fatalf("mode %s", st.Mode)
	}
	sameConfig(t, "restore then abort", before, h.config(id))
}

// TestSetupSkippedVerificationKeepsLegacyKey: when the operator skips a
// failing verification, nothing proved the dedicated app works, so the
// legacy key must stay and the run must not claim "verified".
func TestSetupSkippedVerificationKeepsLegacyKey(t *testing.T) {
	h := newHarness(t, "small.yaml")
	id := h.inv.Tenants[0].ID
	h.giveLegacyKey(id)
	h.world.Update(id, func(t *sim.Tenant) { t.Behaviour.PropagationChecks = 100 })
	env := h.env()
	sa := recordSearchAttrs(env)
	whilePaused(t, env, plan.StepVerify, activities.ErrVerification, func(workflows.SetupState) { sendUpdate(env, workflows.UpdateSkip) })
	res, err := h.run(env, h.input(0, workflows.SetupOptions{VerifyDeadline: time.Minute}))
	if err != nil {
		t.Fatal(err)
	}
	logSetup(t, res)
	if res.State != workflows.StateUnverified || sa.lastState() != workflows.StateUnverified {
		t.Errorf("state %s (attribute %s), want %s", res.State, sa.lastState(), workflows.StateUnverified)
	}
	if s := setupStep(res, plan.StepRemoveLegacyKey); s.Status != workflows.StatusSkipped {
		t.Errorf("remove-legacy-key %s", s.Status)
	}
	if s := setupStep(res, plan.StepVerifyAfterRemoval); s.Status != workflows.StatusNotNeeded {
		t.Errorf("verify-after-removal %s", s.Status)
	}
	tn := h.tenant(id)
	if !hasKeyFor(firstPartySP(tn).KeyCredentials, authCert(tn)) {
		t.Error("the legacy key was removed without a passing verification")
	}
}

// --- failure policies ---

func TestSetupPolicyCompensate(t *testing.T) {
	h := newHarness(t, "small.yaml")
	id := h.inv.Tenants[0].ID
	before := h.config(id)
	h.world.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoEXO, Operation: "New-IntraOrganizationConnector", Kind: sim.FaultFail, ErrorType: exchange.TypeTransient, FailFirstN: 1000}})
	env := h.env()
	env.RegisterDelayedCallback(func() {
		if st := state(t, env); st.Paused != nil {
			t.Errorf("policy compensate paused at %s", st.Paused.Step)
			sendUpdate(env, workflows.UpdateAbort)
		}
	}, time.Hour)
	_, err := h.run(env, h.input(0, workflows.SetupOptions{FailurePolicy: workflows.PolicyCompensate}))
	if appErrType(err) != workflows.ErrAborted || !strings.Contains(err.Error(), string(plan.StepIOCOnline)) {
		t.Fatalf("error %v (%s)", err, appErrType(err))
	}
	st := state(t, env)
	if st.State != workflows.StateAborted || !strings.Contains(st.Error, "Injected failure") {
		t.Errorf("state %s, error %q", st.State, st.Error)
	}
	if s := setupStep(st, plan.StepIOCOnline); s.Attempts != 1 || s.Status != workflows.StatusFailed || s.ErrorType != "ADTransientException" {
		t.Errorf("%s: %d attempts, %s %s", s.Step, s.Attempts, s.Status, s.ErrorType)
	}
	if n := h.world.FaultsFired()[sim.FaultFail]; n != 3 {
		t.Errorf("%d injected failures, want 3 (the retry policy's attempts, no pause)", n)
	}
	sameConfig(t, "policy compensate", before, h.config(id))
}

func TestSetupPolicyFailLeavesChanges(t *testing.T) {
	h := newHarness(t, "small.yaml")
	id := h.inv.Tenants[0].ID
	h.world.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoEXO, Operation: "New-IntraOrganizationConnector", Kind: sim.FaultFail, ErrorType: exchange.TypeAccessDenied, Rate: 1}})
	env := h.env()
	_, err := h.run(env, h.input(0, workflows.SetupOptions{FailurePolicy: workflows.PolicyFail}))
	if appErrType(err) != activities.ErrMissingPermission {
		t.Fatalf("error %v (%s)", err, appErrType(err))
	}
	st := state(t, env)
	if st.State != workflows.StateFailed || st.Undo == 0 || len(st.Compensation) != 0 {
		t.Errorf("state %s, %d undo records kept, %d compensations", st.State, st.Undo, len(st.Compensation))
	}
	tn := h.tenant(id)
	if len(tn.OnPrem.AuthServers) != 2 || dedicatedApp(tn) == nil || len(tn.OnPrem.IntraOrganizationConnectors) != 1 || len(tn.Online.IntraOrganizationConnectors) != 0 {
		t.Errorf("changes before the failure: %d auth servers, app %v, %d on-prem / %d online connectors",
			len(tn.OnPrem.AuthServers), dedicatedApp(tn) != nil, len(tn.OnPrem.IntraOrganizationConnectors), len(tn.Online.IntraOrganizationConnectors))
	}
}

// TestSetupSkippedAppStepNeverWritesEmptyAppID: with the dedicated-app
// step skipped by request and no application in the tenant, the auth
// server step must refuse rather than run Set-AuthServer with an empty
// ApplicationIdentifier.
func TestSetupSkippedAppStepNeverWritesEmptyAppID(t *testing.T) {
	h := newHarness(t, "small.yaml")
	id := h.inv.Tenants[0].ID
	env := h.env()
	_, err := h.run(env, h.input(0, workflows.SetupOptions{FailurePolicy: workflows.PolicyFail,
		SkipSteps: []string{string(plan.StepDedicatedApp), string(plan.StepKeys)}}))
	if appErrType(err) != activities.ErrInvalidInput {
		t.Fatalf("error %v (%s)", err, appErrType(err))
	}
	if st := state(t, env); st.CurrentStep != string(plan.StepOnPremAuthServerApp) {
		t.Errorf("failed at %s", st.CurrentStep)
	}
	for _, a := range h.tenant(id).OnPrem.AuthServers {
		if len(a.DomainName) != 0 || a.ApplicationIdentifier != "" {
			t.Errorf("auth server %s written: app %q domains %v", a.Name, a.ApplicationIdentifier, a.DomainName)
		}
	}
}

// TestSetupKeepsValuesItDidNotSet: an existing on-prem connector with a
// wrong discovery endpoint and an extra target domain, and an evoSTS auth
// server with a domain of its own. The run fixes the endpoint and adds
// what it needs, but keeps the domains someone else put there (the plan
// promises "gains"; the activities used to overwrite the lists); an abort
// puts back the exact previous values.
func TestSetupKeepsValuesItDidNotSet(t *testing.T) {
	const extraTarget, extraDomain = "legacy.small1.example.com", "partner.example.com"
	prepare := func(h *harness) string {
		id := h.inv.Tenants[0].ID
		h.world.Update(id, func(t *sim.Tenant) {
			p := cloud.MustLookup(t.Cloud)
			t.OnPrem.AuthServers = []*sim.AuthServer{
				{Name: p.ACSName, Type: "MicrosoftACS", AuthMetadataURL: p.ACSMetadataURL(t.InitialDomain), Realm: t.ID, Enabled: true},
				{Name: p.EvoSTSName, Type: "AzureAD", AuthMetadataURL: p.EvoSTSMetadataURL(t.InitialDomain), Realm: t.ID, Enabled: true, DomainName: []string{extraDomain}},
			}
			t.OnPrem.IntraOrganizationConnectors = []*sim.IntraOrgConnector{{Name: plan.OnPremIOCName, Enabled: true,
				DiscoveryEndpoint:    "https://autodiscover-old.small1.example.com/autodiscover/autodiscover.svc",
				TargetAddressDomains: []string{"small1.mail.onmicrosoft.com", extraTarget}}}
		})
		return id
	}
	t.Run("run", func(t *testing.T) {
		h := newHarness(t, "small.yaml")
		id := prepare(h)
		res, err := h.run(h.env(), h.input(0, workflows.SetupOptions{}))
		if err != nil || res.State != workflows.StateVerified {
			t.Fatalf("state %s, error %v", res.State, err)
		}
		tn := h.tenant(id)
		ioc := tn.OnPrem.IntraOrganizationConnectors[0]
		if ioc.DiscoveryEndpoint != "https://outlook.office365.com/autodiscover/autodiscover.svc" || !slices.Contains(ioc.TargetAddressDomains, extraTarget) {
			t.Errorf("connector %s %v: want the cloud endpoint and %s kept", ioc.DiscoveryEndpoint, ioc.TargetAddressDomains, extraTarget)
		}
		evo := tn.OnPrem.AuthServers[1]
		if evo.ApplicationIdentifier == "" || !slices.Contains(evo.DomainName, extraDomain) || !slices.Contains(evo.DomainName, "small1.example.com") {
			t.Errorf("evoSTS app %q domains %v: want the app, %s kept and the tenant's domains added", evo.ApplicationIdentifier, evo.DomainName, extraDomain)
		}
	})
	t.Run("abort", func(t *testing.T) {
		h := newHarness(t, "small.yaml")
		id := prepare(h)
		before := h.config(id)
		h.world.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoEXO, Operation: "New-IntraOrganizationConnector", Kind: sim.FaultFail, ErrorType: exchange.TypeAccessDenied, Rate: 1}})
		env := h.env()
		whilePaused(t, env, plan.StepIOCOnline, "", func(workflows.SetupState) { sendUpdate(env, workflows.UpdateAbort) })
		if _, err := h.run(env, h.input(0, workflows.SetupOptions{})); appErrType(err) != workflows.ErrAborted {
			t.Fatalf("error %v", err)
		}
		sameConfig(t, "abort", before, h.config(id))
	})
}

// TestSetupUndoSurvivesARetriedMultiWriteStep: the second New-AuthServer
// of step 1 fails once, after the first created its server; the
// activity's retry finds that server and creates the other. The first
// attempt's undo record must reach the workflow all the same (heartbeat
// details), so an abort at a later step removes both servers.
func TestSetupUndoSurvivesARetriedMultiWriteStep(t *testing.T) {
	h := newHarness(t, "small.yaml")
	id := h.inv.Tenants[0].ID
	before := h.config(id)
	h.world.SetFaults([]sim.FaultRule{
		{Protocol: sim.ProtoShell, Operation: "New-AuthServer", Kind: sim.FaultFail, ErrorType: exchange.TypeTransient, SkipFirstN: 1, FailFirstN: 1},
		{Protocol: sim.ProtoShell, Operation: "New-IntraOrganizationConnector", Kind: sim.FaultFail, ErrorType: exchange.TypeAccessDenied, Rate: 1}})
	env := h.env()
	whilePaused(t, env, plan.StepIOCOnPrem, activities.ErrMissingPermission, func(st workflows.SetupState) {
		if s := setupStep(st, plan.StepAuthServers); s.Outcome != string(activities.Created) {
			t.Errorf("auth-servers: %+v", s)
		}
		h.world.SetFaults(nil)
		sendUpdate(env, workflows.UpdateAbort)
	})
	st := runAborted(t, h, env, h.input(0, workflows.SetupOptions{}))
	for _, name := range []string{"WindowsAzureACS", "evoSTS"} {
		if !slices.Contains(st.Compensation, "auth-servers: "+activities.UndoRemoveAuthServer+" "+name) {
			t.Errorf("compensation does not remove auth server %s: %v", name, st.Compensation)
		}
	}
	sameConfig(t, "abort after a retried auth-servers step", before, h.config(id))
}

// TestSetupStartAttributesSaveTheFirstUpsert: a setup started with
// SetupStartAttributes (as the rollout and the CLI start it) publishes
// its state only when it changes; one started without them sets them
// itself first. Both end verified with the same last state.
func TestSetupStartAttributesSaveTheFirstUpsert(t *testing.T) {
	for _, c := range []struct {
		name      string
		withAttrs bool
		upserts   bool // the run upserts state "running" itself
	}{{"started with them", true, false}, {"started without", false, true}} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, "small.yaml")
			env := h.env()
			in := h.input(0, workflows.SetupOptions{})
			if c.withAttrs {
				if err := env.SetTypedSearchAttributesOnStart(workflows.SetupStartAttributes(in)); err != nil {
					t.Fatal(err)
				}
			}
			sa := recordSearchAttrs(env)
			res, err := h.run(env, in)
			if err != nil || res.State != workflows.StateVerified {
				t.Fatalf("state %s, error %v", res.State, err)
			}
			if slices.Contains(sa.states, workflows.StateRunning) != c.upserts || sa.lastState() != workflows.StateVerified {
				t.Fatalf("state upserts %v", sa.states)
			}
		})
	}
}
