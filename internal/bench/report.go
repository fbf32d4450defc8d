package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// RunStats summarises one runner at one point.
type RunStats struct {
	Runner      string  `json:"runner"`
	Concurrency int     `json:"concurrency"`
	Tenants     int     `json:"tenants"`
	WallSeconds float64 `json:"wall_seconds"`
	PerMinute   float64 `json:"tenants_per_minute"`
	P50Ms       float64 `json:"p50_ms"`
	P95Ms       float64 `json:"p95_ms"`
	Verified    int     `json:"verified"`
	PeakRSSMB   float64 `json:"peak_rss_mb,omitempty"`
	// CPU per tenant: this process, the Temporal server (durable: the dev
	// server, or the cluster's temporal-server) and PostgreSQL (cluster).
	CPUPerTenantMs         float64 `json:"cpu_ms_per_tenant"`
	ServerCPUPerTenantMs   float64 `json:"dev_server_cpu_ms_per_tenant,omitempty"`
	PostgresCPUPerTenantMs float64 `json:"postgres_cpu_ms_per_tenant,omitempty"`
	// Engine is the durable runs' server (EngineDevServer, EngineCluster).
	Engine string   `json:"engine,omitempty"`
	Errors []string `json:"errors,omitempty"`
	// Load is the machine's one-minute load average when the run started.
	Load float64 `json:"load_at_start"`
}

func statsOf(runner string, r RunResult) RunStats {
	var ds []time.Duration
	var errs []string
	for _, t := range r.Tenants {
		ds = append(ds, t.Duration)
		if t.Err != "" && len(errs) < 5 {
			errs = append(errs, t.TenantID+": "+t.Err)
		}
	}
	out := RunStats{Runner: runner, Concurrency: r.Concurrency, Tenants: len(r.Tenants), WallSeconds: r.Wall.Seconds(),
		PerMinute: PerMinute(len(r.Tenants), r.Wall), P50Ms: ms(Percentile(ds, 50)), P95Ms: ms(Percentile(ds, 95)),
		Verified: r.Verified(), PeakRSSMB: float64(r.PeakRSS) / (1 << 20), Errors: errs, Engine: r.Engine, Load: r.Load}
	if n := len(r.Tenants); n > 0 {
		out.CPUPerTenantMs = ms(r.CPU) / float64(n)
		out.ServerCPUPerTenantMs = ms(r.ServerCPU) / float64(n)
		out.PostgresCPUPerTenantMs = ms(r.PostgresCPU) / float64(n)
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Events summarises history length per Setup workflow.
type Events struct {
	Sampled int     `json:"sampled"`
	Mean    float64 `json:"mean"`
	Max     int     `json:"max"`
	// Shape is the mean count of each kind of event.
	Shape Shape `json:"shape"`
}

// Machine is where the numbers were measured.
type Machine struct {
	Cores     int    `json:"cores"`
	CPU       string `json:"cpu,omitempty"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Date      string `json:"date"`
}

// Report is bench/results/latest.json.
type Report struct {
	Machine     Machine  `json:"machine"`
	Profile     Profile  `json:"profile"`
	ProfileText string   `json:"profile_text"`
	ShellMode   string   `json:"shell_mode"`
	Worker      string   `json:"worker_options"`
	Server      string   `json:"server_dynamic_config"`
	Seed        int64    `json:"seed"`
	Durable     RunStats `json:"durable"`
	Concurrent  RunStats `json:"concurrent"`
	Sequential  RunStats `json:"sequential"`
	Converged   RunStats `json:"converged_rerun"`
	// RatioDurableFloor is durable / concurrent tenants per minute at the
	// main point; SpeedupOverSequential is durable / sequential.
	RatioDurableFloor     float64 `json:"ratio_durable_floor"`
	SpeedupOverSequential float64 `json:"speedup_over_sequential"`
	EventsPerSetup        Events  `json:"events_per_setup_workflow"`
	// WaitsPerSetup is the mean Waits of the sampled setups.
	WaitsPerSetup      Waits      `json:"waits_per_setup_ns"`
	FreshCosts         Costs      `json:"fresh_tenant_costs"`
	ConvergedCosts     Costs      `json:"converged_tenant_costs"`
	FloorCosts         Costs      `json:"floor_fresh_tenant_costs"`
	DevServerPeakRSSMB float64    `json:"dev_server_peak_rss_mb"`
	DevServerPeakRSS   int64      `json:"-"`
	Sweep              []RunStats `json:"sweep"`
	// The cluster engine (Config.Cluster): the durable main point and its
	// converged re-run on temporal-server with PostgreSQL.
	ClusterEngine       string    `json:"cluster_engine,omitempty"`
	Cluster             *RunStats `json:"cluster_durable,omitempty"`
	ClusterConverged    *RunStats `json:"cluster_converged_rerun,omitempty"`
	ClusterServerRSSMB  float64   `json:"cluster_server_peak_rss_mb,omitempty"`
	RatioClusterDevServ float64   `json:"ratio_cluster_dev_server,omitempty"`
	Notes               []string  `json:"notes"`
}

// setCluster records the cluster engine's runs.
func (r *Report) setCluster(d *Durable, dur, conv RunResult) {
	s, c := statsOf(RunDurable+" on the cluster", dur), statsOf(RunDurable+" on the cluster (converged re-run)", conv)
	r.Cluster, r.ClusterConverged = &s, &c
	r.ClusterEngine = d.Describe()
	r.ClusterServerRSSMB = float64(d.ServerPeakRSS()) / (1 << 20)
	if r.Durable.PerMinute > 0 {
		r.RatioClusterDevServ = s.PerMinute / r.Durable.PerMinute
	}
	r.Notes = append(r.Notes,
		"The cluster rows ran the same main point on "+r.ClusterEngine+", after the dev server had stopped. Its dynamic config is deploy/temporal/dynamicconfig.yaml (the compose stack's), not the dev server's -server-config. CPU per tenant there is harness + temporal-server + PostgreSQL (the postmaster and every backend, exited ones included, from /proc).",
		fmt.Sprintf("Load average (1 min) when the cluster runs started: %.1f and %.1f (converged).", dur.Load, conv.Load),
	)
}

func newReport(cfg Config) *Report {
	mode := "PowerShell-host relay processes (real host protocol over loopback)"
	if cfg.Direct {
		mode = "DirectShell (on-prem cmdlets in-process, for all three runners)"
	}
	r := &Report{
		Machine: Machine{Cores: runtime.NumCPU(), CPU: cpuModel(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH,
			Date: time.Now().UTC().Format("2006-01-02 15:04 MST")},
		Profile: cfg.Profile, ProfileText: cfg.Profile.String(), ShellMode: mode, Seed: cfg.Seed,
		Worker: "workerhost defaults (as hybridflow-worker runs)",
	}
	if cfg.Tune != nil {
		r.Worker = cfg.Tune.String()
	}
	r.Server = "defaults"
	if len(cfg.ServerConfig) > 0 {
		r.Server = strings.Join(cfg.ServerConfig, ", ")
	}
	return r
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// eventsOf summarises the history lengths and shapes of the sampled
// setups (those whose history was read).
func eventsOf(tenants []TenantRun) Events {
	var e Events
	var sum Shape
	for _, t := range tenants {
		if t.Events > 0 {
			e.Sampled++
			e.Mean += float64(t.Events)
			e.Max = max(e.Max, t.Events)
			sum.add(t.Shape, 1)
		}
	}
	if e.Sampled > 0 {
		e.Mean /= float64(e.Sampled)
		e.Shape.add(sum, 1/float64(e.Sampled))
	}
	return e
}

// writeReport saves v as latest.json and md, under a title, as latest.md
// in dir.
func writeReport(dir string, v any, title, md string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "latest.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "latest.md"), []byte("# "+title+"\n\n"+md), 0o644)
}

func (r *Report) setMain(cfg Config, dur, floor, seq, conv RunResult, legacy map[string]bool, ids []string) {
	r.Durable, r.Concurrent, r.Sequential = statsOf(RunDurable, dur), statsOf(RunConcurrent, floor), statsOf(RunSequential, seq)
	r.Converged = statsOf("durable (converged re-run)", conv)
	if r.Concurrent.PerMinute > 0 {
		r.RatioDurableFloor = r.Durable.PerMinute / r.Concurrent.PerMinute
	}
	if r.Sequential.PerMinute > 0 {
		r.SpeedupOverSequential = r.Durable.PerMinute / r.Sequential.PerMinute
	}
	r.EventsPerSetup = eventsOf(dur.Tenants)
	for _, t := range dur.Tenants {
		if t.Events > 0 {
			r.WaitsPerSetup.add(t.Waits)
		}
	}
	if n := r.EventsPerSetup.Sampled; n > 0 {
		w := &r.WaitsPerSetup
		for _, d := range []*time.Duration{&w.WorkflowTaskQueue, &w.WorkflowTask, &w.ActivityQueue, &w.Activity} {
			*d /= time.Duration(n)
		}
	}
	r.FreshCosts = CostsOf(dur.Stats, ids, legacy)
	r.ConvergedCosts = CostsOf(conv.Stats, ids, legacy)
	r.FloorCosts = CostsOf(floor.Stats, ids, legacy)
	r.DevServerPeakRSSMB = float64(r.DevServerPeakRSS) / (1 << 20)
	r.Notes = append(r.Notes,
		fmt.Sprintf("The sequential baseline ran %d of the %d tenants (a sequential run of all would take too long); its tenants/min is measured on that subset.", len(seq.Tenants), len(dur.Tenants)),
		"Peak RSS is this harness process's VmHWM, reset before each runner: it includes the simulated world and its Graph / Exchange Online / PowerShell-host servers, not the dev server (reported separately) nor relay processes.",
		"CPU per tenant: harness is this process (worker or script, simulated world and its servers) plus its PowerShell-host relay processes; dev server is bin/temporal's, measured separately.",
		"Per-tenant costs come from the simulator's request counters (sim.World.Stats): a Graph $batch counts as one request, a PowerShell-host round trip is one batch of cmdlets.",
		"Legacy-mode tenants write Graph only on the first-party service principal, so their maximum Graph writes bound the PATCHes to it.",
		"429 / 503 are injected on Graph and Exchange Online (HTTP answers); the on-prem shell's transient failures are the chaos suite's subject (make chaos).",
		fmt.Sprintf("Load average (1 min) when each runner started: durable %.1f, converged re-run %.1f, concurrent %.1f, sequential %.1f. CPU per tenant grows with the load: compare builds side by side, not across runs.",
			dur.Load, conv.Load, floor.Load, seq.Load),
	)
}

func (r *Report) addPoint(runner string, res RunResult, n int) {
	s := statsOf(runner, res)
	s.Tenants = n
	s.Errors = nil
	r.Sweep = append(r.Sweep, s)
}

func (r *Report) sortSweep() {
	sort.SliceStable(r.Sweep, func(i, j int) bool {
		if r.Sweep[i].Runner != r.Sweep[j].Runner {
			return r.Sweep[i].Runner < r.Sweep[j].Runner
		}
		return r.Sweep[i].Concurrency < r.Sweep[j].Concurrency
	})
}

// Markdown is the table the README's Performance section shows.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %d cores (%s), %s, %s.  \n", r.Machine.Date, r.Machine.Cores, r.Machine.CPU, r.Machine.GoVersion, r.Machine.OS)
	fmt.Fprintf(&b, "Profile: %s. On-prem shell: %s. Worker: %s. Dev server dynamic config: %s.\n", r.ProfileText, r.ShellMode, r.Worker, r.Server)
	if r.Cluster != nil {
		fmt.Fprintf(&b, "Cluster: %s.\n", r.ClusterEngine)
	}
	fmt.Fprintf(&b, "\n| runner | tenants | concurrency | wall | tenants/min | p50 per tenant | p95 per tenant | verified | peak RSS | CPU per tenant (harness + Temporal server [+ PostgreSQL]) |\n")
	fmt.Fprintf(&b, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	rows := []RunStats{r.Durable, r.Concurrent, r.Sequential, r.Converged}
	if r.Cluster != nil {
		rows = append(rows, *r.Cluster, *r.ClusterConverged)
	}
	for _, s := range rows {
		cpu := fmt.Sprintf("%.0f + %.0f ms", s.CPUPerTenantMs, s.ServerCPUPerTenantMs)
		if s.Engine == EngineCluster {
			cpu = fmt.Sprintf("%.0f + %.0f + %.0f ms", s.CPUPerTenantMs, s.ServerCPUPerTenantMs, s.PostgresCPUPerTenantMs)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %.1f s | %.0f | %.0f ms | %.0f ms | %d/%d | %.0f MB | %s |\n",
			s.Runner, s.Tenants, s.Concurrency, s.WallSeconds, s.PerMinute, s.P50Ms, s.P95Ms, s.Verified, s.Tenants, s.PeakRSSMB, cpu)
	}
	fmt.Fprintf(&b, "\n| measure | value |\n|---|---:|\n")
	row := func(k string, format string, v ...any) {
		fmt.Fprintf(&b, "| %s | "+format+" |\n", append([]any{k}, v...)...)
	}
	row("durable / concurrent floor (tenants/min)", "%.2f", r.RatioDurableFloor)
	row("durable speed-up over sequential", "%.1f×", r.SpeedupOverSequential)
	row("history events per Setup workflow (mean / max)", "%.0f / %d (%d sampled)", r.EventsPerSetup.Mean, r.EventsPerSetup.Max, r.EventsPerSetup.Sampled)
	sh := r.EventsPerSetup.Shape
	row("per Setup: workflow tasks / on-prem activities / local-activity markers (3, 3 and 1 events each)", "%.1f / %.1f / %.1f", sh.WorkflowTasks, sh.Activities, sh.LocalActivities)
	row("per Setup: version markers / search-attribute upserts / child-workflow events / timer events / other events", "%.1f / %.1f / %.1f / %.1f / %.1f", sh.Versions, sh.Upserts, sh.Children, sh.Timers, sh.Other)
	w := r.WaitsPerSetup
	row("a durable setup's time: workflow task queue / workflow task (incl. cloud local activities) / on-prem activity queue / on-prem activity", "%.0f / %.0f / %.0f / %.0f ms",
		ms(w.WorkflowTaskQueue), ms(w.WorkflowTask), ms(w.ActivityQueue), ms(w.Activity))
	f, c := r.FreshCosts, r.ConvergedCosts
	row("Graph requests per fresh tenant (reads + writes)", "%.2f (%.2f + %.2f), max %d", f.GraphRequests, f.GraphReads, f.GraphWrites, f.GraphMax)
	row("Graph requests per converged tenant", "%.2f (%.2f + %.2f), max %d", c.GraphRequests, c.GraphReads, c.GraphWrites, c.GraphMax)
	row("Graph writes per fresh legacy-mode tenant (max)", "%d (%d legacy tenants)", f.LegacyGraphWritesMax, f.LegacyTenants)
	row("PowerShell host round trips per tenant (fresh / converged)", "%.2f / %.2f", f.ShellRoundTrips, c.ShellRoundTrips)
	row("Exchange Online calls per tenant (fresh / converged)", "%.2f / %.2f", f.EXOCalls, c.EXOCalls)
	row("writes on the converged re-run (all tenants)", "%d", c.Writes)
	row("dev server peak RSS (whole harness)", "%.0f MB", r.DevServerPeakRSSMB)
	if c := r.Cluster; c != nil {
		row("durable on the cluster / on the dev server (tenants/min)", "%.2f", r.RatioClusterDevServ)
		row("engine CPU per fresh tenant: cluster (temporal-server + PostgreSQL) / dev server", "%.0f + %.0f = %.0f ms / %.0f ms",
			c.ServerCPUPerTenantMs, c.PostgresCPUPerTenantMs, c.ServerCPUPerTenantMs+c.PostgresCPUPerTenantMs, r.Durable.ServerCPUPerTenantMs)
		cc := r.ClusterConverged
		row("engine CPU per converged tenant: cluster / dev server", "%.0f + %.0f = %.0f ms / %.0f ms",
			cc.ServerCPUPerTenantMs, cc.PostgresCPUPerTenantMs, cc.ServerCPUPerTenantMs+cc.PostgresCPUPerTenantMs, r.Converged.ServerCPUPerTenantMs)
		row("cluster temporal-server peak RSS", "%.0f MB", r.ClusterServerRSSMB)
	}
	if len(r.Sweep) > 0 {
		fmt.Fprintf(&b, "\nThroughput against concurrency (tenants/min; N tenants per point):\n\n| concurrency | N | durable | concurrent floor | ratio |\n|---:|---:|---:|---:|---:|\n")
		for _, p := range r.sweepPairs() {
			ratio := 0.0
			if p.floor > 0 {
				ratio = p.durable / p.floor
			}
			fmt.Fprintf(&b, "| %d | %d | %.0f | %.0f | %.2f |\n", p.c, p.n, p.durable, p.floor, ratio)
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

type sweepPair struct {
	c, n           int
	durable, floor float64
}

func (r *Report) sweepPairs() []sweepPair {
	byC := map[int]*sweepPair{}
	var cs []int
	for _, s := range r.Sweep {
		p := byC[s.Concurrency]
		if p == nil {
			p = &sweepPair{c: s.Concurrency, n: s.Tenants}
			byC[s.Concurrency] = p
			cs = append(cs, s.Concurrency)
		}
		switch s.Runner {
		case RunDurable:
			p.durable = s.PerMinute
		case RunConcurrent:
			p.floor = s.PerMinute
		}
	}
	sort.Ints(cs)
	out := make([]sweepPair, 0, len(cs))
	for _, c := range cs {
		out = append(out, *byC[c])
	}
	return out
}

// Write saves latest.json, latest.md and throughput.svg in dir.
func (r *Report) Write(dir string) error {
	if err := writeReport(dir, r, "Rollout benchmark: latest run", r.Markdown()); err != nil {
		return err
	}
	if len(r.Sweep) == 0 {
		return nil // a main point only (a second profile): nothing to chart
	}
	return r.Chart(filepath.Join(dir, "throughput.svg"))
}

// UpdateReadme replaces what lies between the bench markers in the file
// at path with the report's table.
func (r *Report) UpdateReadme(path string) error { return r.UpdateReadmeBlock(path, "bench") }

// UpdateReadmeBlock is UpdateReadme for the markers <!-- name:begin -->
// and <!-- name:end --> (one block per profile).
func (r *Report) UpdateReadmeBlock(path, name string) error {
	return replaceBlock(path, name, r.Markdown())
}

// replaceBlock replaces what lies between <!-- name:begin --> and
// <!-- name:end --> in the file at path with content.
func replaceBlock(path, name, content string) error {
	readmeBegin, readmeEnd := "<!-- "+name+":begin -->", "<!-- "+name+":end -->"
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(data)
	i, j := strings.Index(s, readmeBegin), strings.Index(s, readmeEnd)
	if i < 0 || j < i {
		return fmt.Errorf("%s: no %s … %s block to replace", path, readmeBegin, readmeEnd)
	}
	out := s[:i+len(readmeBegin)] + "\n" + content + s[j:]
	return os.WriteFile(path, []byte(out), 0o644)
}
