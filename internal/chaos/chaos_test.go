package chaos_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"gopkg.in/yaml.v3"

	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/chaos"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/devserver"
	"github.com/hybridflow/hybridflow/internal/e2e"
	"github.com/hybridflow/hybridflow/internal/logging"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/sim/simserver"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/internal/workerhost"
	"github.com/hybridflow/hybridflow/workflows"
)

// ModeEnv selects the long run: HYBRIDFLOW_CHAOS=full (make chaos).
// SeedEnv overrides the seed of the world and the schedule.
const (
	ModeEnv = "HYBRIDFLOW_CHAOS"
	SeedEnv = "HYBRIDFLOW_CHAOS_SEED"
)

// standIn is the stand-in built once by TestMain (standInErr when the
// build failed; both empty under -short, which skips the rollout).
var standIn, standInErr = "", error(nil)

func TestMain(m *testing.M) {
	flag.Parse()
	var dir string
	if !testing.Short() {
		dir, standIn, standInErr = chaos.BuildStandIn("chaos")
	}
	code := m.Run()
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
	os.Exit(code)
}

// rig is the system under chaos, deployed as in production: the dev
// server as a child process on a SQLite file; the stand-alone simulator
// serving the world (HTTPS Graph, token endpoint and Exchange Online, and
// the remote PowerShell gateway) in this process but apart from any
// worker; and worker incarnations, each with its own real backend built by
// backend.NewReal from a worker config (endpoints at the simulator, a
// client secret read from a file, a PowerShell stand-in started from each
// site's shell.command), registered by workerhost.ForBackend as
// hybridflow-worker registers them. Killing an incarnation closes its
// backend, and with it its PowerShell hosts; the world stays.
type rig struct {
	t   *testing.T
	srv *devserver.Process
	c   client.Client // the starter's and operator's connection
	cfg *config.WorkerConfig
	rec *chaos.Recorder
	// log takes every incarnation's warnings and errors (the SDK's
	// included), shown when the test fails.
	log *zap.Logger

	mu      sync.Mutex
	gen     int
	killed  map[int]time.Time // incarnation -> when it was killed
	hosts   []*workerhost.Host
	hostCli client.Client
	be      *backend.Backend
	kinds   map[string]int // backend kind -> incarnations
	closing sync.WaitGroup // backends of killed incarnations, closing
}

// On-prem roles serve one tenant each and run one step at a time, so one
// activity poll each is enough; the cloud role keeps the defaults.
const (
	onPremWorkflowPollers = 2
	onPremActivityPollers = 1
)

// workerConfig is the chaos worker's configuration (chaos.WorkerConfig):
// a short call timeout, so that a hung cmdlet costs seconds (the
// simulator's cmdlets answer in milliseconds), and the inventory
// directory next to the simulator's state, where the rollout's inventory
// file is written.
func workerConfig(t *testing.T, s *simserver.Server, sites []string) *config.WorkerConfig {
	t.Helper()
	cfg, err := chaos.WorkerConfig(s, chaos.WorkerSpec{StandIn: standIn, Sites: sites, CallTimeout: chaos.CallTimeout,
		InventoryDir: filepath.Dir(s.StateDir()), WorkflowPollers: onPremWorkflowPollers, ActivityPollers: onPremActivityPollers}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startWorker starts a new incarnation: its own connection, identity,
// empty workflow cache and backend (no PowerShell host running yet), as a
// restarted hybridflow-worker process has.
func (r *rig) startWorker(ctx context.Context) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gen++
	identity := fmt.Sprintf("chaos-worker-%d", r.gen)
	log := r.log.With(zap.String("worker", identity))
	be, err := backend.NewReal(r.cfg, log, func(string) string { return "" })
	if err != nil {
		r.t.Fatalf("worker %d: backend: %v", r.gen, err)
	}
	if r.kinds == nil {
		r.kinds = map[string]int{}
	}
	r.kinds[be.Kind()]++
	var hc client.Client
	for {
		hc, err = client.Dial(client.Options{HostPort: r.srv.HostPort(), Namespace: "default", Identity: identity,
			Logger:       logging.NewTemporal(log),
			Interceptors: []interceptor.ClientInterceptor{r.rec.Interceptor(r.gen)}})
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		be.Close()
		r.t.Fatalf("worker %d: dial: %v", r.gen, err)
	}
	// hybridflow-worker starts every role with the config's pollers; here
	// the cloud role keeps the defaults and the on-prem roles use the
	// config's small numbers, so a few hundred sites stay cheap.
	hosts, err := chaos.StartHosts(hc, be, r.cfg, identity, time.Millisecond)
	if err != nil {
		hc.Close()
		be.Close()
		r.t.Fatalf("worker %d: %v", r.gen, err)
	}
	r.hosts, r.hostCli, r.be = hosts, hc, be
}

// killWorker makes the worker vanish as a SIGKILLed process does: the
// connection closes first, so nothing in flight is reported (no task
// completion, no activity failure), then its workers stop and its backend
// closes (its PowerShell hosts lose their input and exit, in the
// background as a dying process's children do). The server recovers what
// it held by its timeouts alone; the simulator keeps the world.
func (r *rig) killWorker() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.killed == nil {
		r.killed = map[int]time.Time{}
	}
	if r.hosts != nil {
		r.killed[r.gen] = time.Now()
	}
	if r.hostCli != nil {
		r.hostCli.Close()
		r.hostCli = nil
	}
	for i := len(r.hosts) - 1; i >= 0; i-- {
		r.hosts[i].Stop()
	}
	r.hosts = nil
	if be := r.be; be != nil {
		r.be = nil
		r.closing.Add(1)
		go func() {
			defer r.closing.Done()
			be.Close()
		}()
	}
}

func (r *rig) progress(ctx context.Context, id string) (workflows.RolloutProgress, error) {
	return chaos.Progress(ctx, r.c, id)
}

// newWorld generates n tenants, one on-prem organisation per site, around
// the wall clock (chaos.NewWorld). Every generated tenant can verify (old
// builds are legacy only in GCC High and DoD, mixed builds where the
// first-party path is blocked), so a tenant that does not is the finding.
func newWorld(t *testing.T, n int, seed int64) *sim.World {
	t.Helper()
	w, err := chaos.NewWorld(t.Name(), "chaos", n, seed)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// protected counts what NothingLost guards in a world, so the summary
// shows the check had something to guard.
func protected(w *sim.World) (keys, spns int) {
	for _, tn := range w.Tenants {
		for _, sp := range tn.Entra.ServicePrincipals {
			keys += len(sp.KeyCredentials)
			spns += len(sp.ServicePrincipalNames)
		}
		for _, a := range tn.Entra.Applications {
			keys += len(a.KeyCredentials)
		}
	}
	return keys, spns
}

// TestChaosRollout is the chaos suite: a rollout of generated tenants,
// through the worker configuration an operator deploys and the
// stand-alone simulator, while the worker is killed and restarted, the
// dev server is SIGKILLed and restarted on its SQLite file, windows of
// 429s, 503s, dropped connections, crashing PowerShell hosts, writes
// whose reply is lost and cmdlets that hang past the call timeout open and
// close, and renewals are started for tenants whose setup is running; then
// the invariants on the simulator's dump (nothing lost, no duplicate, no
// foreign object lost or changed, no staged key lost), on its session
// accounting (no remote session orphaned but by an injected host death)
// and on what the workers ran, and that the production path was the one
// taken. The short size runs in make test; HYBRIDFLOW_CHAOS=full is make
// chaos.
func TestChaosRollout(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: the Temporal dev server, killed and restarted")
	}
	if standInErr != nil {
		t.Fatal(standInErr)
	}
	size, limit := chaos.Short, 6*time.Minute
	if os.Getenv(ModeEnv) == "full" {
		// Room for a renewal step lost with a killed worker, which is
		// retried only after config.StepStartToClose.
		size, limit = chaos.Full, 25*time.Minute
	}
	seed := int64(1010)
	if s := os.Getenv(SeedEnv); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", SeedEnv, s, err)
		}
		seed = v
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	dir := t.TempDir()

	// The world lives in the stand-alone simulator, apart from every
	// worker incarnation; the suite reads and faults it in place.
	sims, err := simserver.Start(context.Background(), simserver.Options{World: newWorld(t, size.Tenants, seed), StateDir: filepath.Join(dir, "sim")})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sims.Close() }()
	w := sims.World()
	// The world is judged as an operator would see it: the simulator's
	// dump through its admin API, before and after.
	admin, err := simserver.Dial(sims.StateDir())
	if err != nil {
		t.Fatal(err)
	}
	before := dumpWorld(ctx, t, admin, "before")
	srvLog, err := os.Create(filepath.Join(dir, "temporal.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer srvLog.Close()
	// t.TempDir is gone after the test: show the server's last words here.
	t.Cleanup(func() { logTail(t, "dev server log", srvLog.Name(), 20) })
	srv, err := devserver.StartProcess(ctx, devserver.ProcessOptions{DBFile: filepath.Join(dir, "temporal.db"), Log: srvLog})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Stop() }()
	c, err := client.Dial(client.Options{HostPort: srv.HostPort(), Namespace: "default", Identity: "chaos-operator", Logger: logging.NewTemporal(fileLogger(t, filepath.Join(dir, "operator.log")))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	inv := w.Inventory()
	var sites []string
	for _, tn := range inv.Tenants {
		if !slices.Contains(sites, tn.Site) {
			sites = append(sites, tn.Site)
		}
	}
	r := &rig{t: t, srv: srv, c: c, cfg: workerConfig(t, sims, sites), rec: &chaos.Recorder{}, log: fileLogger(t, filepath.Join(dir, "worker.log"))}
	defer r.closing.Wait()
	r.startWorker(ctx)
	defer r.killWorker()

	// Started as `hybridflow rollout` starts it: large inventories by file.
	in := workflows.RolloutInput{Name: "chaos-" + size.Name, Concurrency: size.Concurrency, Setup: workflows.SetupOptions{
		Retry:           workflows.RetryOptions{InitialInterval: 200 * time.Millisecond, MaximumInterval: 2 * time.Second, MaximumAttempts: 6},
		VerifyInterval:  500 * time.Millisecond,
		VerifyDeadline:  time.Minute,
		ScheduleToStart: 3 * time.Minute,
		// A killed worker's attempt is noticed after this long.
		StartToClose: 15 * time.Second,
	}}
	if len(inv.Tenants) > 100 {
		data, err := yaml.Marshal(config.Inventory{Tenants: inv.Tenants})
		if err != nil {
			t.Fatal(err)
		}
		in.InventoryPath = filepath.Join(dir, "inventory.yaml")
		if err := os.WriteFile(in.InventoryPath, data, 0o600); err != nil {
			t.Fatal(err)
		}
		// Hand over at least once mid-chaos (paused tenants included).
		in.ContinueAsNewEvery = size.Tenants / 2
	} else {
		in.Tenants = inv.Tenants
	}
	id := workflows.RolloutWorkflowID(in.Name)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: temporalx.CloudQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflows.Rollout, in)
	if err != nil {
		t.Fatal(err)
	}

	sum := chaos.Summary{Size: size, Seed: seed, Tenants: size.Tenants, Faults: map[string]map[string]int{}}
	events := chaos.Plan(seed, size)
	// The windows open and close on the schedule; one that has injected
	// nothing by its close stays open until it has, on a track of its own,
	// so it holds back nothing else. The simulator counts faults by
	// protocol and kind, which no two windows share (chaos.Fired); the
	// counts are never reset, only the rules change.
	openWindows := map[string]bool{}
	w.SetFaults(nil)
	setWindow := func(window string, on bool) {
		openWindows[window] = on
		w.ClearFaults()
		var rules []sim.FaultRule
		for _, name := range chaos.WindowNames() {
			if openWindows[name] {
				rules = append(rules, chaos.Windows[name]...)
			}
		}
		if err := w.AddFaults(rules); err != nil {
			t.Fatalf("fault windows %v: %v", openWindows, err)
		}
	}
	// fired: what a window injected so far.
	fired := func(window string) int { return total(chaos.Fired(window, w.FaultsFiredBy())) }
	traffic := newTraffic()
	rn := newRenewals(c, inv.Tenants)
	at := func() string { return "+" + time.Since(began).Round(100*time.Millisecond).String() }
	done := make([]bool, len(events))
	ran := 0
	var last workflows.RolloutProgress
	var owedSince time.Time
	timedOutBefore := 0
	startRenewals := func(afterSetups bool) {
		started, err := rn.startOwed(ctx, afterSetups)
		for _, s := range started {
			t.Logf("%s renewal started for %s", at(), s)
		}
		if err != nil {
			t.Logf("%s %v (tried again)", at(), err)
		}
		if rn.owed == 0 {
			owedSince = time.Time{}
		}
	}
	// track: events of one track keep their order; a held event holds
	// back only its own track. Each window is a track (one held open does
	// not push the later windows past the end of the rollout, where they
	// would find no traffic), as are the renewal starts (which need
	// setups still running); the kills and restarts are the main one.
	track := func(ev chaos.Event) string {
		switch {
		case ev.Window != "":
			return "window " + ev.Window
		case ev.Kind == chaos.StartRenewals:
			return "renewals"
		}
		return "main"
	}
	// killsLeft: a planned worker kill has not happened yet; unless the
	// size lets renewals start amid kills, they wait for it (a renewal step
	// lost with its worker would stall the renewal for minutes).
	killsLeft := func() bool {
		for i, ev := range events {
			if ev.Kind == chaos.KillWorker && !done[i] {
				return true
			}
		}
		return false
	}
	for {
		p, err := r.progress(ctx, id)
		if err == nil {
			last = p
			ended := p.Done + len(chaos.PausedOf(p))
			held := map[string]bool{}
			for i, ev := range events {
				if done[i] || ev.At > ended || held[track(ev)] {
					continue
				}
				if ev.Kind == chaos.StartRenewals && !size.RenewalsAmidKills && killsLeft() {
					held[track(ev)] = true
					continue
				}
				if ev.Kind == chaos.FaultsOff && (fired(ev.Window) == 0 || ev.Window == chaos.HungWindow && traffic.timedOut(r.killTimes()) == timedOutBefore) {
					// Tenants that end together cross both of a window's
					// points at once; hold it open (and what follows on its
					// track) until it has injected something, or it tested
					// nothing (the hung cmdlets: until the call timeout has
					// ended one, not only a worker's shutdown).
					held[track(ev)] = true
					continue
				}
				done[i] = true
				ran++
				t.Logf("%s %s (%d ended, %d running)", at(), ev, ended, p.Running)
				switch ev.Kind {
				case chaos.KillWorker:
					r.killWorker()
					time.Sleep(ev.Down)
					r.startWorker(ctx)
					sum.WorkerKills++
				case chaos.RestartServer:
					down := time.Now()
					if err := srv.Kill(); err != nil {
						t.Fatal(err)
					}
					time.Sleep(ev.Down)
					if err := srv.Start(ctx); err != nil {
						t.Fatalf("restart the dev server: %v", err)
					}
					sum.ServerDown += time.Since(down)
					sum.ServerRestarts++
					t.Logf("%s dev server back after %s", at(), time.Since(down).Round(100*time.Millisecond))
				case chaos.FaultsOn:
					if ev.Window == chaos.HungWindow {
						timedOutBefore = traffic.timedOut(r.killTimes())
					}
					setWindow(ev.Window, true)
				case chaos.FaultsOff:
					setWindow(ev.Window, false)
				case chaos.StartRenewals:
					rn.owed += ev.Count
				}
			}
			// Once the rollout has settled no setup holds a lock: a
			// renewal still owed goes to a tenant whose setup has ended
			// (counted apart in the summary), rather than not at all.
			startRenewals(chaos.Settled(p) && !owedSince.IsZero() && time.Since(owedSince) > 5*time.Second)
			if chaos.Settled(p) && rn.owed == 0 {
				break
			}
		}
		if rn.owed > 0 && owedSince.IsZero() {
			owedSince = time.Now()
		}
		if time.Since(rn.polled) > 2*time.Second {
			rn.poll(ctx, false)
			rn.polled = time.Now()
		}
		traffic.read(sims.Requests())
		select {
		case <-ctx.Done():
			t.Fatalf("the rollout did not settle in %s: last progress %+v (error %v)", limit, last, err)
		case <-time.After(300 * time.Millisecond):
		}
	}
	w.ClearFaults()
	firedBy := w.FaultsFiredBy()
	for _, name := range chaos.WindowNames() {
		sum.Faults[name] = chaos.Fired(name, firedBy)
	}
	if ran < len(events) {
		t.Errorf("the rollout settled before the schedule ended: %d of %d events ran", ran, len(events))
	}
	t.Logf("%s settled: %v, %d paused", at(), last.Counts, len(chaos.PausedOf(last)))

	// Paused tenants are allowed only with a reason; then an operator
	// retry must carry each one to the end, the faults being over.
	for round := 0; ; round++ {
		paused := chaos.PausedOf(last)
		if len(paused) == 0 {
			break
		}
		if round == 3 {
			t.Fatalf("still paused after %d rounds of operator retries: %+v", round, paused)
		}
		for _, a := range paused {
			if a.Step == "" || a.ErrorType == "" || a.Error == "" {
				t.Errorf("%s paused without a reason: step %q, error type %q, error %q", a.TenantID, a.Step, a.ErrorType, a.Error)
			}
			sum.Paused = append(sum.Paused, fmt.Sprintf("%s: step %s: %s: %s", a.TenantID, a.Step, a.ErrorType, firstLine(a.Error)))
			h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: workflows.SetupWorkflowID(a.TenantID), UpdateName: workflows.UpdateRetry,
				Args: []any{workflows.OperatorAction{Reason: "chaos suite: the faults are over"}}, WaitForStage: client.WorkflowUpdateStageCompleted})
			if err == nil {
				var step string
				err = h.Get(ctx, &step)
			}
			if err != nil {
				t.Fatalf("retry %s (paused at step %s: %s: %s): %v\n%s", a.TenantID, a.Step, a.ErrorType, firstLine(a.Error), err, historyTail(ctx, c, workflows.SetupWorkflowID(a.TenantID), 40))
			}
			sum.Retried++
		}
		for {
			p, err := r.progress(ctx, id)
			if err == nil && chaos.Settled(p) {
				last = p
				break
			}
			traffic.read(sims.Requests())
			select {
			case <-ctx.Done():
				t.Fatalf("the rollout did not settle after the retries: %+v", p)
			case <-time.After(300 * time.Millisecond):
			}
		}
	}
	var final workflows.RolloutProgress
	if err := run.Get(ctx, &final); err != nil {
		t.Fatalf("rollout: %v", err)
	}
	sum.States, sum.ContinuedAsNew = final.Counts, final.ContinuedAsNew

	// The renewals: each paused one gets an operator retry, until every
	// one has closed or stays paused after its last retry.
	for !rn.poll(ctx, true) {
		traffic.read(sims.Requests())
		select {
		case <-ctx.Done():
			t.Fatalf("the renewals did not finish: %+v", rn.finish())
		case <-time.After(300 * time.Millisecond):
		}
	}
	sum.Renewals = rn.finish()
	t.Logf("%s renewals ended: %d", at(), len(sum.Renewals))

	// Every tenant's own result, read from its setup workflow.
	for _, tn := range inv.Tenants {
		var res workflows.SetupResult
		err := c.GetWorkflow(ctx, workflows.SetupWorkflowID(tn.ID), "").Get(ctx, &res)
		switch {
		case err != nil:
			t.Errorf("%s: %v", tn.ID, err)
		case res.State != workflows.StateVerified:
			t.Errorf("%s ended %s, want verified (%v)", tn.ID, res.State, res.Verification)
		default:
			sum.Verified++
		}
	}

	// The invariants, on the simulator's dump and on what ran.
	after := dumpWorld(ctx, t, admin, "after")
	check := func(name string, violations []string) {
		sum.Checks = append(sum.Checks, name)
		for _, v := range violations {
			sum.Violations = append(sum.Violations, name+": "+v)
		}
	}
	var renewed []string
	renewalOf := map[string]string{}
	for _, r := range sum.Renewals {
		renewalOf[r.WorkflowID] = r.Tenant
		if r.State == workflows.StateRenewed {
			renewed = append(renewed, r.Tenant)
		}
	}
	check("nothing-lost", chaos.RenewedAllowed(e2e.NothingLost(before, after), before, after, renewed))
	check("no-duplicate-thumbprints", e2e.NewDuplicates(before, after))
	dups := chaos.Duplicates(before, after)
	sum.DuplicateObjects = len(dups)
	check("no-duplicate-objects", dups)
	sum.Foreign = chaos.ForeignLost(before, after)
	check("no-foreign-object-lost", sum.Foreign.Lost)
	sum.Staged = chaos.StagedKeysLost(before, after, sum.Renewals)
	check("no-staged-key-lost", sum.Staged.Lost)
	check("renewals-completed-or-stopped-with-a-reason", renewalProblems(sum.Renewals))
	execs := r.rec.Executions()
	sum.Executions = len(execs)
	for _, x := range execs {
		if x.Err != "" {
			sum.FailedAttempts++
		}
		if k, ok := r.killed[x.Worker]; ok && x.Start.Before(k) && !x.End.Before(k) {
			sum.CutByKill++
		}
	}
	check("no-step-twice-at-once", chaos.Overlaps(execs))
	check("no-tenant-twice-at-once", chaos.RunOverlaps(setupRuns(ctx, t, c)))
	writers := chaos.WriterOverlaps(execs, func(wf string) string {
		if tn, ok := strings.CutPrefix(wf, workflows.SetupWorkflowID("")); ok {
			return tn
		}
		return strings.ToLower(renewalOf[wf])
	})
	sum.WriterOverlaps = len(writers)
	check("no-two-writers-at-once", writers)

	// The production path, shown: every incarnation ran the real backend,
	// and every tenant's on-prem steps reached its own site through the
	// stand-in and the simulator's remote PowerShell gateway; tokens came
	// from the simulator's token endpoint for the secret in its file.
	r.killWorker()
	r.closing.Wait()
	traffic.read(sims.Requests())
	// Every host has gone: its session was removed, or orphaned. Only the
	// hosts the fault injector killed may leave one behind, and every hung
	// cmdlet must have been cancelled by the worker removing its session.
	sum.Sessions = settledSessions(ctx, t, admin)
	sum.HostDeaths, sum.HangsRanLate = traffic.hostDeaths, traffic.hangsRanLate
	sum.HangsCancelled, sum.HangsTimedOut, sum.HostsReplaced = len(traffic.hangs), traffic.timedOut(r.killTimes()), traffic.replaced()
	for _, h := range traffic.hangs {
		sum.HangLongest = max(sum.HangLongest, h.took)
	}
	check("no-orphaned-session", chaos.SessionProblems(sum.Sessions, sum.HostDeaths))
	check("hung-cmdlets-cancelled", chaos.HangProblems(sum.Hangs(), sum.HangsCancelled, sum.HangsTimedOut, sum.HostsReplaced, sum.HangsRanLate))
	r.mu.Lock()
	kinds := r.kinds
	r.mu.Unlock()
	for k, n := range kinds {
		sum.Backend += fmt.Sprintf("%s×%d ", k, n)
	}
	sum.Backend = strings.TrimSpace(sum.Backend)
	sum.Requests, sum.HostSessions, sum.HostSites, sum.RequestsUnseen = traffic.byProtocol, traffic.sessions, len(traffic.sites), traffic.lost
	sum.RepliesLostBy = traffic.repliesLost
	sum.PeakRSS, sum.ChildPeakRSS = peakRSS()
	if kinds["real"] != r.gen || len(kinds) != 1 {
		t.Errorf("worker incarnations ran backends %v, want all %d real", kinds, r.gen)
	}
	for _, tn := range inv.Tenants {
		if !traffic.sites[tn.Site] {
			t.Errorf("%s: no PowerShell host session reached site %s through the gateway", tn.ID, tn.Site)
		}
	}
	for _, p := range []string{sim.ProtoGraph, sim.ProtoEXO, sim.ProtoToken, sim.ProtoShell} {
		if traffic.byProtocol[p] == 0 {
			t.Errorf("the simulator saw no %s request", p)
		}
	}

	sum.Wall = time.Since(began)
	keys, spns := protected(before)
	t.Logf("protected before the rollout: %d key credentials, %d service principal names; %d duplicate(s) seeded",
		keys, spns, len(e2e.DuplicateThumbprints(before)))
	t.Logf("\n%s", sum)
	for _, v := range sum.Violations {
		t.Error(v)
	}
	if sum.WorkerKills != size.WorkerKills || sum.ServerRestarts != size.ServerRestarts {
		t.Errorf("ran %d worker kills and %d server restarts, planned %d and %d", sum.WorkerKills, sum.ServerRestarts, size.WorkerKills, size.ServerRestarts)
	}
	for _, name := range chaos.WindowNames() {
		if total(sum.Faults[name]) == 0 {
			t.Errorf("fault window %s injected nothing: the suite did not test it", name)
		}
	}
}

// historyTail prints the last n events of a workflow's history, for a
// failure's message.
func historyTail(ctx context.Context, c client.Client, id string, n int) string {
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var lines []string
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			lines = append(lines, "history: "+err.Error())
			break
		}
		line := fmt.Sprintf("  %d %s %s", e.GetEventId(), e.GetEventTime().AsTime().Format("15:04:05.000"), e.GetEventType())
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil {
			line += " " + a.GetActivityType().GetName() + " on " + a.GetTaskQueue().GetName()
		}
		if a := e.GetActivityTaskFailedEventAttributes(); a != nil {
			line += " " + firstLine(a.GetFailure().GetMessage())
		}
		if a := e.GetWorkflowExecutionUpdateAcceptedEventAttributes(); a != nil {
			line += " " + a.GetAcceptedRequest().GetInput().GetName()
		}
		if a := e.GetWorkflowTaskFailedEventAttributes(); a != nil {
			line += " " + a.GetCause().String() + " " + firstLine(a.GetFailure().GetMessage())
		}
		lines = append(lines, line)
	}
	return "history of " + id + " (last events):\n" + strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// dumpWorld reads the world from the simulator's admin API.
func dumpWorld(ctx context.Context, t *testing.T, admin *simserver.Client, what string) *sim.World {
	t.Helper()
	w, err := chaos.DumpWorld(ctx, admin, what)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// traffic counts the simulator's request log as the run goes (the log is
// a bounded ring; read often, it forgets nothing).
type traffic struct {
	seq        uint64
	byProtocol map[string]int
	// sessions: host connections the gateway upgraded; sites: where.
	sessions int
	sites    map[string]bool
	lost     uint64
	// repliesLost: apply-then-drop faults by request ("graph PATCH
	// /servicePrincipals/{id}", "shell Set-AuthConfig").
	repliesLost map[string]int
	// hostDeaths: host requests whose host the injector killed.
	hostDeaths int
	// hangs: host requests that ended with no reply and no fault of
	// their own: a delay (the hung-cmdlets window) cut short by the
	// session's removal. hangsRanLate: host requests answered after the
	// hang's full length.
	hangs        []hang
	hangsRanLate int
	// opened: when the gateway opened each site's host sessions.
	opened map[string][]time.Time
}

// hang is one hung cmdlet the worker cancelled: when the simulator read
// it and how long it waited before its session was removed.
type hang struct {
	at   time.Time
	took time.Duration
	site string
}

// replaced counts the hangs after which a new host opened a session at
// the same site (the step's retry on a fresh host).
func (tr *traffic) replaced() int {
	n := 0
	for _, h := range tr.hangs {
		end := h.at.Add(h.took)
		if slices.ContainsFunc(tr.opened[h.site], func(t time.Time) bool { return !t.Before(end) }) {
			n++
		}
	}
	return n
}

// timedOut counts the hangs the call timeout ended: those during which no
// worker was killed (a killed worker's hosts leave, removing their
// sessions, whatever their calls' timers say).
func (tr *traffic) timedOut(kills []time.Time) int {
	n := 0
	for _, h := range tr.hangs {
		if !slices.ContainsFunc(kills, func(k time.Time) bool { return !k.Before(h.at) && k.Before(h.at.Add(h.took)) }) {
			n++
		}
	}
	return n
}

// killTimes are the moments worker incarnations were killed.
func (r *rig) killTimes() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]time.Time, 0, len(r.killed))
	for _, k := range r.killed {
		out = append(out, k)
	}
	return out
}

func newTraffic() *traffic {
	return &traffic{byProtocol: map[string]int{}, sites: map[string]bool{}, repliesLost: map[string]int{}, opened: map[string][]time.Time{}}
}

var guidRE = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)

func (tr *traffic) read(l *sim.RequestLog) {
	recs, last, lost := l.Since(tr.seq)
	tr.seq, tr.lost = last, tr.lost+lost
	for _, rec := range recs {
		tr.byProtocol[rec.Protocol]++
		if rec.Protocol == sim.ProtoShell && rec.Status == http.StatusSwitchingProtocols &&
			strings.HasPrefix(strings.ToLower(rec.Path), "/powershell/") {
			tr.sessions++
			tr.sites[rec.Site] = true
			tr.opened[rec.Site] = append(tr.opened[rec.Site], rec.Time)
		}
		if rec.Protocol == sim.ProtoShell && rec.Path == "" {
			switch {
			case strings.Contains(rec.Fault, sim.FaultHostCrash) || strings.Contains(rec.Fault, sim.FaultDrop) || strings.Contains(rec.Fault, sim.FaultApplyThenDrop):
				tr.hostDeaths++
			case rec.Fault == "" && !rec.OK && rec.Error == "" && rec.Status == 0:
				tr.hangs = append(tr.hangs, hang{at: rec.Time, took: rec.Duration, site: rec.Site})
			}
			if rec.Duration >= chaos.HangFor*9/10 {
				tr.hangsRanLate++
			}
		}
		if strings.Contains(rec.Fault, sim.FaultApplyThenDrop) {
			what := rec.Cmdlet
			if rec.Protocol == sim.ProtoGraph {
				what = rec.Method + " " + guidRE.ReplaceAllString(rec.Path, "{id}")
			}
			tr.repliesLost[rec.Protocol+" "+what]++
		}
	}
}

// setupRuns lists every Setup execution the server knows (chaos.SetupRuns).
func setupRuns(ctx context.Context, t *testing.T, c client.Client) []chaos.Run {
	t.Helper()
	runs, err := chaos.SetupRuns(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// settledSessions totals the simulator's remote PowerShell session counts
// over every site once none is open (each host's end reaches the
// simulator a moment after the host exits), or after 15 s.
func settledSessions(ctx context.Context, t *testing.T, admin *simserver.Client) sim.SessionCounts {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		m, err := admin.Sessions(ctx)
		if err != nil {
			t.Fatalf("session counts: %v", err)
		}
		var sum sim.SessionCounts
		for _, c := range m {
			sum.Open += c.Open
			sum.Peak = max(sum.Peak, c.Peak)
			sum.Opened += c.Opened
			sum.Removed += c.Removed
			sum.Orphaned += c.Orphaned
			sum.Closed += c.Closed
		}
		if sum.Open == 0 || time.Now().After(deadline) {
			return sum
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// fileLogger writes warnings and errors to path; when the test fails, its
// last lines are shown (the directory is gone after the test).
func fileLogger(t *testing.T, path string) *zap.Logger {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	enc := zap.NewDevelopmentEncoderConfig()
	log := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(f), zap.WarnLevel))
	t.Cleanup(func() {
		_ = log.Sync()
		logTail(t, filepath.Base(path), path, 40)
		_ = f.Close()
	})
	return log
}

// logTail shows the last n lines of the file at path when the test has
// failed (t.TempDir is gone after the test).
func logTail(t *testing.T, what, path string, n int) {
	if !t.Failed() {
		return
	}
	if data, err := os.ReadFile(path); err == nil {
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		t.Logf("%s (last lines):\n%s", what, strings.Join(lines[max(0, len(lines)-n):], "\n"))
	}
}
