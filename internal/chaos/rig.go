package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/sim/simserver"
	"github.com/hybridflow/hybridflow/internal/workerhost"
	"github.com/hybridflow/hybridflow/workflows"
)

// The set-up the chaos suite and the cluster rollout share: the
// PowerShell stand-in, the worker configuration an operator deploys
// against the stand-alone simulator, the generated world, and the
// operator's view of a rollout.

// standInPkg is the PowerShell stand-in the sites' shell.command runs.
const standInPkg = "github.com/hybridflow/hybridflow/internal/sim/cmd/hybridflow-pwsh"

// BuildStandIn builds the PowerShell stand-in into a new temporary
// directory named after prefix; the caller removes dir.
func BuildStandIn(prefix string) (dir, bin string, err error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", "", fmt.Errorf("build the PowerShell stand-in: %w", err)
	}
	dir, err = os.MkdirTemp("", prefix+"-pwsh-")
	if err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, "hybridflow-pwsh")
	if out, err := exec.Command(goTool, "build", "-o", bin, standInPkg).CombinedOutput(); err != nil {
		return dir, "", fmt.Errorf("go build %s: %w\n%s", standInPkg, err, out)
	}
	return dir, bin, nil
}

// WorkerSpec is what differs between the worker configurations of the
// suites.
type WorkerSpec struct {
	// StandIn is the built stand-in every site's shell.command starts.
	StandIn string
	// Sites get an on-prem role each, beside the cloud role.
	Sites []string
	// CallTimeout is each site's shell.call_timeout.
	CallTimeout time.Duration
	// InventoryDir, when set, is inventory.dir.
	InventoryDir string
	// Pollers of the on-prem roles (pollers.workflow_tasks, .activity_tasks).
	WorkflowPollers, ActivityPollers int
}

// WorkerConfig is the configuration an operator would deploy against the
// simulator, written to dir/worker.yaml and read by the worker's own
// config loader: the cloud role and an on-prem role per site, the
// endpoints block at the simulator (its CA trusted), the default
// credential a client secret read from the simulator's file, and each
// site's host the stand-in, started with PowerShell's command line, in a
// remote session to the gateway's endpoint for that site.
func WorkerConfig(s *simserver.Server, spec WorkerSpec, dir string) (*config.WorkerConfig, error) {
	roles := []string{"cloud"}
	onprem := map[string]any{}
	for _, site := range spec.Sites {
		roles = append(roles, "onprem:"+site)
		onprem[site] = map[string]any{"shell": map[string]any{
			"command":        simserver.StandInCommand(spec.StandIn),
			"session":        config.SessionRemote,
			"connection_uri": s.ExchangeURL(site),
			// One attempt of a step may take 15 s (the rollouts'
			// StartToClose): a host that cannot start or answer in
			// time fails the attempt rather than outliving it.
			"start_timeout": "5s",
			"call_timeout":  spec.CallTimeout.String(),
		}}
	}
	doc := map[string]any{
		"roles":     roles,
		"log_level": "warn",
		"endpoints": s.Endpoints(),
		"credentials": map[string]any{"default": map[string]any{
			"kind":      "client-secret",
			"client_id": "33333333-3333-4333-8333-0000000000c5",
			"secret":    "file:" + s.ClientSecretFile(),
		}},
		"pollers": map[string]any{"workflow_tasks": spec.WorkflowPollers, "activity_tasks": spec.ActivityPollers},
		"onprem":  map[string]any{"sites": onprem},
	}
	if spec.InventoryDir != "" {
		doc["inventory"] = map[string]any{"dir": spec.InventoryDir}
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "worker.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return nil, err
	}
	cfg, err := config.LoadWorkerConfig(path, func(string) string { return "" })
	if err != nil {
		return nil, fmt.Errorf("the worker config: %w", err)
	}
	if cfg.Simulate != nil {
		return nil, fmt.Errorf("the worker config %s has a simulate block", path)
	}
	return cfg, nil
}

// StartHosts starts a worker incarnation's hosts on hc as
// hybridflow-worker registers them (workerhost.ForBackend with the
// configuration): the cloud role with the default pollers, the on-prem
// roles with the configuration's small numbers, so that a few hundred
// sites stay cheap. On error nothing is left running.
func StartHosts(hc client.Client, be *backend.Backend, cfg *config.WorkerConfig, identity string, stopTimeout time.Duration) ([]*workerhost.Host, error) {
	var cloud, onprem []config.Role
	for _, role := range cfg.Roles {
		if role.Kind == config.RoleCloud {
			cloud = append(cloud, role)
		} else {
			onprem = append(onprem, role)
		}
	}
	var hosts []*workerhost.Host
	for _, set := range []struct {
		roles []config.Role
		opts  workerhost.Options
	}{
		{cloud, workerhost.Options{Identity: identity, StopTimeout: stopTimeout, MaxConcurrentActivities: 100}},
		{onprem, workerhost.Options{Identity: identity, StopTimeout: stopTimeout, MaxConcurrentActivities: 100,
			WorkflowTaskPollers: cfg.Pollers.WorkflowTasks, ActivityTaskPollers: cfg.Pollers.ActivityTasks}},
	} {
		h, err := workerhost.Start(hc, set.roles, workerhost.ForBackend(be, identity, workerhost.WithConfig(cfg)), zap.NewNop(), set.opts)
		if err != nil {
			for i := len(hosts) - 1; i >= 0; i-- {
				hosts[i].Stop()
			}
			return nil, err
		}
		hosts = append(hosts, h)
	}
	return hosts, nil
}

// NewWorld generates n tenants named after prefix, one on-prem
// organisation per site (a site's PowerShell host reaches one
// organisation, and the simulator's gateway serves only such sites), in
// every cloud, with old builds, legacy servers, foreign and expired keys,
// half-configured tenants and HCW-named auth servers for the invariants
// to guard. The stand-alone simulator judges expiry by the wall clock, so
// the world is generated around now and pins no clock: its expired keys
// ended a year ago, the foreign ones end in two years, and the run's
// minutes change neither.
func NewWorld(name, prefix string, n int, seed int64) (*sim.World, error) {
	now := time.Now().UTC().Truncate(time.Second)
	ts, err := sim.GenerateTenants(sim.GenerateSpec{Tenants: n, Prefix: prefix, Sites: n,
		Clouds:    []string{"global", "gcc", "gcchigh", "dod", "china"},
		OldBuilds: 0.1, LegacyServers: 0.05, ForeignKeys: 0.4, ExpiredKeys: 0.2, HalfConfigured: 0.4, HCWNames: 0.2}, seed, now)
	if err != nil {
		return nil, err
	}
	data, err := (&sim.World{Seed: seed, Tenants: ts}).Dump()
	if err != nil {
		return nil, err
	}
	w, err := sim.Parse(name, data)
	if err != nil {
		return nil, err
	}
	if _, pinned := w.PinnedNow(); pinned {
		return nil, fmt.Errorf("the generated world pins its clock")
	}
	return w, nil
}

// DumpWorld reads the world from the simulator's admin API; what ("before",
// "after") names the moment in errors.
func DumpWorld(ctx context.Context, admin *simserver.Client, what string) (*sim.World, error) {
	data, err := admin.Dump(ctx)
	if err != nil {
		return nil, fmt.Errorf("dump the world %s the rollout: %w", what, err)
	}
	w, err := sim.Parse("world "+what, data)
	if err != nil {
		return nil, fmt.Errorf("the world dumped %s the rollout: %w", what, err)
	}
	return w, nil
}

// Progress queries a rollout's progress (within 5 s).
func Progress(ctx context.Context, c client.Client, id string) (workflows.RolloutProgress, error) {
	var p workflows.RolloutProgress
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := c.QueryWorkflow(qctx, id, "", workflows.QueryProgress)
	if err != nil {
		return p, err
	}
	return p, v.Get(&p)
}

// PausedOf lists the rollout's tenants paused for an operator.
func PausedOf(p workflows.RolloutProgress) []workflows.TenantOutcome {
	var out []workflows.TenantOutcome
	for _, a := range p.Attention {
		if a.State == workflows.StatePaused {
			out = append(out, a)
		}
	}
	return out
}

// Settled: nothing more happens without an operator (as the CLI judges it).
func Settled(p workflows.RolloutProgress) bool {
	n := len(PausedOf(p))
	return p.Finished || (p.Total > 0 && p.Pending == 0 && p.Running == n)
}

// SetupRuns lists every Setup execution the server's visibility store
// knows, with open and close times, for RunOverlaps.
func SetupRuns(ctx context.Context, c client.Client) ([]Run, error) {
	var out []Run
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: "WorkflowType = 'Setup'", PageSize: 1000, NextPageToken: token})
		if err != nil {
			return nil, fmt.Errorf("list setup runs: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			r := Run{WorkflowID: e.GetExecution().GetWorkflowId(), RunID: e.GetExecution().GetRunId(), Start: e.GetStartTime().AsTime()}
			if e.GetCloseTime() != nil && e.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				r.Close = e.GetCloseTime().AsTime()
			}
			out = append(out, r)
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return out, nil
		}
	}
}
