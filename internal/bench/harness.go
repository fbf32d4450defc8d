package bench

import (
	"context"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/workflows"
)

// Config is one harness invocation.
type Config struct {
	Tenants     int     // main point N
	Concurrency int     // main point C
	Sweep       []int   // concurrencies for the throughput chart
	SweepMax    int     // most tenants at a sweep point other than the main one (0: Tenants)
	SeqTenants  int     // tenants the sequential baseline runs
	Seed        int64   // world generation
	Profile     Profile // latencies and error rates
	Direct      bool    // DirectShell: on-prem cmdlets in-process instead of relay processes
	// Setup are the setup options of every runner (short verify interval
	// and retries scaled like the profile).
	Setup workflows.SetupOptions
	// HistorySample reads every k-th child's history (1 = all).
	HistorySample int
	Progress      io.Writer
	// Tune, when set, replaces workerhost's default worker options.
	Tune *WorkerTuning
	// ServerConfig are dynamic-config values for the dev server
	// ("key=value", as start-dev's --dynamic-config-value takes them).
	ServerConfig []string
	// Cluster also runs the durable main point (and its converged re-run)
	// on the cluster engine: the Temporal server on PostgreSQL, with the
	// repository's configuration (its own dynamic config, not
	// ServerConfig).
	Cluster bool
}

// DefaultSetup is the setup options for the scaled-down profile, the same
// for every runner.
func DefaultSetup() workflows.SetupOptions {
	return workflows.SetupOptions{
		VerifyInterval: 200 * time.Millisecond, VerifyDeadline: 2 * time.Minute,
		Retry:           workflows.RetryOptions{InitialInterval: 100 * time.Millisecond, MaximumInterval: 2 * time.Second, MaximumAttempts: 10},
		ScheduleToStart: 10 * time.Minute, StartToClose: time.Minute,
	}
}

// SweepTenants is N for a sweep point: enough tenants that concurrency C
// is kept busy (10 per slot, at least 10), capped so that the whole
// harness stays within about ten minutes on a small machine.
func SweepTenants(c, limit int) int { return min(max(10*c, 10), limit) }

func (c Config) logf(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
}

// Run runs everything and returns the report.
func Run(ctx context.Context, cfg Config, logger *zap.Logger) (*Report, error) {
	if cfg.HistorySample <= 0 {
		cfg.HistorySample = 1
	}
	rep := newReport(cfg)
	d, err := StartDurable(ctx, logger, cfg.ServerConfig...)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	d.Tune = cfg.Tune

	// Main point: durable, then a second rollout on the converged world.
	w, err := NewWorld(cfg.Tenants, cfg.Seed, cfg.Profile)
	if err != nil {
		return nil, err
	}
	legacy := legacyTenants(w)
	ids := tenantIDs(w)
	cfg.logf("durable: %d tenants, concurrency %d", cfg.Tenants, cfg.Concurrency)
	sess, err := d.Open(ctx, w, cfg.Direct)
	if err != nil {
		return nil, err
	}
	dur, err := sess.Rollout(ctx, fmt.Sprintf("bench-main-c%d-n%d", cfg.Concurrency, cfg.Tenants), cfg.Concurrency, cfg.Setup, cfg.HistorySample)
	if err != nil {
		sess.Close()
		return nil, err
	}
	cfg.logf("durable: %s, %d/%d verified; converged re-run", dur.Wall.Round(time.Millisecond), dur.Verified(), len(ids))
	conv, err := sess.Rollout(ctx, fmt.Sprintf("bench-converged-c%d-n%d", cfg.Concurrency, cfg.Tenants), cfg.Concurrency, cfg.Setup, 0)
	sess.Close()
	if err != nil {
		return nil, err
	}
	rep.DevServerPeakRSS = d.ServerPeakRSS()
	cfg.logf("converged: %s, %d/%d verified", conv.Wall.Round(time.Millisecond), conv.Verified(), len(ids))

	cfg.logf("concurrent floor: %d tenants, concurrency %d", cfg.Tenants, cfg.Concurrency)
	w2, err := NewWorld(cfg.Tenants, cfg.Seed, cfg.Profile)
	if err != nil {
		return nil, err
	}
	floor, err := RunBaseline(ctx, w2, cfg.Concurrency, cfg.Setup, cfg.Direct, logger)
	if err != nil {
		return nil, err
	}
	cfg.logf("concurrent floor: %s, %d/%d verified", floor.Wall.Round(time.Millisecond), floor.Verified(), len(ids))

	seqN := min(cfg.SeqTenants, cfg.Tenants)
	cfg.logf("sequential: %d tenants", seqN)
	w3, err := NewWorld(seqN, cfg.Seed, cfg.Profile)
	if err != nil {
		return nil, err
	}
	seq, err := RunBaseline(ctx, w3, 1, cfg.Setup, cfg.Direct, logger)
	if err != nil {
		return nil, err
	}
	cfg.logf("sequential: %s, %d/%d verified", seq.Wall.Round(time.Millisecond), seq.Verified(), seqN)
	rep.setMain(cfg, dur, floor, seq, conv, legacy, ids)

	// Sweep: durable and concurrent floor per concurrency; the main
	// point is reused, not run twice.
	limit := cfg.Tenants
	if cfg.SweepMax > 0 {
		limit = min(cfg.SweepMax, cfg.Tenants)
	}
	for _, c := range cfg.Sweep {
		if c == cfg.Concurrency {
			rep.addPoint(RunDurable, dur, cfg.Tenants)
			rep.addPoint(RunConcurrent, floor, cfg.Tenants)
			continue
		}
		n := SweepTenants(c, limit)
		w, err := NewWorld(n, cfg.Seed, cfg.Profile)
		if err != nil {
			return nil, err
		}
		sess, err := d.Open(ctx, w, cfg.Direct)
		if err != nil {
			return nil, err
		}
		r, err := sess.Rollout(ctx, fmt.Sprintf("bench-sweep-c%d-n%d", c, n), c, cfg.Setup, 0)
		sess.Close()
		if err != nil {
			return nil, err
		}
		rep.addPoint(RunDurable, r, n)
		fw, err := NewWorld(n, cfg.Seed, cfg.Profile)
		if err != nil {
			return nil, err
		}
		f, err := RunBaseline(ctx, fw, c, cfg.Setup, cfg.Direct, logger)
		if err != nil {
			return nil, err
		}
		rep.addPoint(RunConcurrent, f, n)
		cfg.logf("sweep C=%d N=%d: durable %.0f/min, floor %.0f/min", c, n, PerMinute(n, r.Wall), PerMinute(n, f.Wall))
	}
	rep.sortSweep()

	if cfg.Cluster {
		// One engine at a time: the dev server's memory and any work it
		// has left go before the cluster starts.
		d.Close()
		if err := runCluster(ctx, cfg, rep, logger); err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
	}
	return rep, nil
}

// runCluster is the durable main point and its converged re-run on the
// cluster engine.
func runCluster(ctx context.Context, cfg Config, rep *Report, logger *zap.Logger) error {
	began := time.Now()
	d, err := StartDurableCluster(ctx, logger)
	if err != nil {
		return err
	}
	defer d.Close()
	d.Tune = cfg.Tune
	cfg.logf("cluster up in %s: %s", time.Since(began).Round(100*time.Millisecond), d.Describe())
	w, err := NewWorld(cfg.Tenants, cfg.Seed, cfg.Profile)
	if err != nil {
		return err
	}
	sess, err := d.Open(ctx, w, cfg.Direct)
	if err != nil {
		return err
	}
	defer sess.Close()
	cfg.logf("durable on the cluster: %d tenants, concurrency %d", cfg.Tenants, cfg.Concurrency)
	dur, err := sess.Rollout(ctx, fmt.Sprintf("bench-cluster-c%d-n%d", cfg.Concurrency, cfg.Tenants), cfg.Concurrency, cfg.Setup, 0)
	if err != nil {
		return err
	}
	cfg.logf("durable on the cluster: %s, %d/%d verified; converged re-run", dur.Wall.Round(time.Millisecond), dur.Verified(), cfg.Tenants)
	conv, err := sess.Rollout(ctx, fmt.Sprintf("bench-cluster-converged-c%d-n%d", cfg.Concurrency, cfg.Tenants), cfg.Concurrency, cfg.Setup, 0)
	if err != nil {
		return err
	}
	cfg.logf("converged on the cluster: %s, %d/%d verified", conv.Wall.Round(time.Millisecond), conv.Verified(), cfg.Tenants)
	rep.setCluster(d, dur, conv)
	return nil
}

func tenantIDs(w *sim.World) []string {
	var out []string
	for _, t := range inventory(w) {
		out = append(out, t.ID)
	}
	return out
}
