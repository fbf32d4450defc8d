// Command rolloutbench runs the rollout benchmark (make bench): the
// durable rollout through the real dev server and worker, and the
// concurrent and sequential baselines on fresh copies of the same world,
// then the durable main point again on the cluster engine (the Temporal
// server on PostgreSQL, internal/cluster), then writes
// bench/results/latest.{json,md} and throughput.svg and prints the
// Markdown table.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/bench"
	"github.com/hybridflow/hybridflow/internal/sim"
)

func main() {
	// The PowerShell-host relay processes are this executable re-run.
	sim.MaybeRunHost()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "rolloutbench:", err)
		os.Exit(1)
	}
}

func run() error {
	p := bench.DefaultProfile()
	setup := bench.DefaultSetup()
	cfg := bench.Config{Profile: p, Setup: setup, Progress: os.Stderr}
	var sweep, out, readme, readmeBlock string
	var timeout time.Duration
	flag.IntVar(&cfg.Tenants, "tenants", 500, "tenants at the main point")
	flag.IntVar(&cfg.Concurrency, "concurrency", 50, "concurrency at the main point")
	flag.StringVar(&sweep, "sweep", "1,10,25,50,100", "concurrencies for the throughput chart (N per point: max(10*C, 10), capped at -sweep-max; the main concurrency reuses the main point)")
	flag.IntVar(&cfg.SweepMax, "sweep-max", 300, "most tenants at a sweep point other than the main one")
	flag.IntVar(&cfg.SeqTenants, "seq-tenants", 30, "tenants the sequential baseline runs (a subset: all would take too long)")
	flag.Int64Var(&cfg.Seed, "seed", 9, "world generation seed")
	flag.BoolVar(&cfg.Direct, "direct-shell", false, "run on-prem cmdlets in-process instead of PowerShell-host relay processes (all runners)")
	flag.IntVar(&cfg.HistorySample, "history-sample", 5, "read every k-th setup workflow's history for event counts")
	flag.StringVar(&out, "out", "bench/results", "report directory")
	flag.StringVar(&readme, "readme", "", "also replace the table between the bench markers in this README")
	flag.DurationVar(&timeout, "timeout", 12*time.Minute, "give up after this long")
	flag.DurationVar(&cfg.Profile.OnPrem.Mean, "onprem-latency", p.OnPrem.Mean, "on-prem PowerShell round-trip latency")
	flag.DurationVar(&cfg.Profile.OnPrem.Jitter, "onprem-jitter", p.OnPrem.Jitter, "± jitter")
	flag.DurationVar(&cfg.Profile.Graph.Mean, "graph-latency", p.Graph.Mean, "Graph request latency")
	flag.DurationVar(&cfg.Profile.Graph.Jitter, "graph-jitter", p.Graph.Jitter, "± jitter")
	flag.DurationVar(&cfg.Profile.EXO.Mean, "exo-latency", p.EXO.Mean, "Exchange Online call latency")
	flag.DurationVar(&cfg.Profile.EXO.Jitter, "exo-jitter", p.EXO.Jitter, "± jitter")
	flag.Float64Var(&cfg.Profile.ThrottleRate, "throttle-rate", p.ThrottleRate, "fraction of requests answered 429")
	flag.DurationVar(&cfg.Profile.RetryAfter, "retry-after", p.RetryAfter, "Retry-After of a 429")
	flag.Float64Var(&cfg.Profile.ServerErrorRate, "server-error-rate", p.ServerErrorRate, "fraction of requests answered 503")
	flag.DurationVar(&cfg.Setup.VerifyInterval, "verify-interval", setup.VerifyInterval, "first wait between verification rounds (all runners)")
	var tune bench.WorkerTuning
	flag.IntVar(&tune.WorkflowPollers, "workflow-pollers", 0, "workflow task pollers per worker (0 with every tuning flag 0: workerhost defaults)")
	flag.IntVar(&tune.ActivityPollers, "activity-pollers", 0, "activity task pollers per worker")
	flag.IntVar(&tune.MaxActivities, "max-activities", 0, "max concurrent activity executions per worker")
	flag.BoolVar(&tune.Autoscale, "autoscale-pollers", false, "let the server's hints scale each worker's pollers (-workflow-pollers / -activity-pollers are then the maxima)")
	flag.IntVar(&tune.MaxWorkflowTasks, "max-workflow-tasks", 0, "max concurrent workflow task executions per worker")
	var serverConfig string
	flag.StringVar(&serverConfig, "server-config", bench.DefaultServerConfig, "comma-separated dynamic-config values for the dev server (key=value)")
	flag.StringVar(&readmeBlock, "readme-block", "bench", "with -readme: the table between <!-- NAME:begin --> and <!-- NAME:end -->")
	var cpuProfile string
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write this process's CPU profile (worker, simulated world and its servers; not the relay processes nor the Temporal server) to this file for go tool pprof")
	var scale string
	flag.StringVar(&scale, "scale", "", "instead of the main point, sweep and cluster: roll out each of these numbers of fresh tenants (comma-separated), durable and floor, at -concurrency, and report cost against N (make bench-scale)")
	flag.BoolVar(&cfg.Cluster, "cluster", true, "also run the durable main point on the cluster engine (bin/temporal-server on PostgreSQL, deploy/temporal's configuration; make builds the server)")
	flag.Parse()
	for _, kv := range strings.Split(serverConfig, ",") {
		if kv = strings.TrimSpace(kv); kv != "" {
			cfg.ServerConfig = append(cfg.ServerConfig, kv)
		}
	}
	if tune != (bench.WorkerTuning{}) {
		cfg.Tune = &tune
	}
	for _, f := range strings.Split(sweep, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		c, err := strconv.Atoi(f)
		if err != nil || c < 1 {
			return fmt.Errorf("-sweep: %q is not a positive concurrency", f)
		}
		cfg.Sweep = append(cfg.Sweep, c)
	}
	if cfg.Tenants < 1 || cfg.Concurrency < 1 || cfg.SeqTenants < 1 {
		return fmt.Errorf("-tenants, -concurrency and -seq-tenants must be positive")
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if scale != "" {
		return runScale(ctx, cfg, scale, out, readme, readmeBlock)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	rep, err := bench.Run(ctx, cfg, zap.NewNop())
	if err != nil {
		return err
	}
	rep.Notes = append(rep.Notes, fmt.Sprintf("Harness wall time %s (all runners, the converged re-run and the sweep).", time.Since(start).Round(time.Second)))
	if err := publish(rep, out, readme, readmeBlock); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s/latest.json and latest.md (and throughput.svg when there is a sweep)\n", out)
	return nil
}

// runScale is -scale: one rollout per N, durable and floor.
func runScale(ctx context.Context, cfg bench.Config, list, out, readme, block string) error {
	var ns []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("-scale: %q is not a positive number of tenants", f)
		}
		ns = append(ns, n)
	}
	ctx, cancel := context.WithTimeout(ctx, bench.ScaleTimeout)
	defer cancel()
	start := time.Now()
	rep, err := bench.RunScale(ctx, cfg, ns, zap.NewNop())
	if err != nil {
		return err
	}
	rep.Notes = append(rep.Notes, fmt.Sprintf("Harness wall time %s (every point, durable and floor).", time.Since(start).Round(time.Second)))
	return publish(rep, out, readme, block)
}

// report is what both kinds of run produce (bench.Report, bench.ScaleReport).
type report interface {
	Write(dir string) error
	UpdateReadmeBlock(path, name string) error
	Markdown() string
}

// publish writes the report into out, replaces its block in the README
// when one is named, and prints its tables.
func publish(rep report, out, readme, block string) error {
	if err := rep.Write(out); err != nil {
		return err
	}
	if readme != "" {
		if err := rep.UpdateReadmeBlock(readme, block); err != nil {
			return err
		}
	}
	fmt.Println(rep.Markdown())
	return nil
}
