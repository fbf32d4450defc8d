package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/hybridflow/hybridflow/internal/sim"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	cases := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 95, 7 * time.Millisecond},
		{"median of odd, unsorted", ms(5, 1, 3), 50, 3 * time.Millisecond},
		{"nearest rank p50 of four", ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{"p95 of twenty is the 19th", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20), 95, 19 * time.Millisecond},
		{"p100 is the max", ms(9, 2, 30), 100, 30 * time.Millisecond},
		{"p0 is the min", ms(9, 2, 30), 0, 2 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Percentile(c.in, c.p); got != c.want {
				t.Fatalf("Percentile(%v, %v) = %v, want %v", c.in, c.p, got, c.want)
			}
		})
	}
}

func TestPerMinute(t *testing.T) {
	if got := PerMinute(500, 2*time.Minute); got != 250 {
		t.Fatalf("got %v", got)
	}
	if got := PerMinute(5, 0); got != 0 {
		t.Fatalf("zero wall: got %v", got)
	}
}

func TestSweepTenants(t *testing.T) {
	for _, c := range []struct{ c, max, want int }{{1, 500, 10}, {10, 500, 100}, {25, 300, 250}, {50, 300, 300}, {100, 300, 300}, {1, 8, 8}} {
		if got := SweepTenants(c.c, c.max); got != c.want {
			t.Errorf("SweepTenants(%d, %d) = %d, want %d", c.c, c.max, got, c.want)
		}
	}
}

func TestProfileRules(t *testing.T) {
	p := DefaultProfile()
	rules := p.Rules()
	lat := map[string]sim.FaultRule{}
	kinds := map[string]int{}
	for _, r := range rules {
		kinds[r.Kind]++
		if r.Kind == sim.FaultLatency {
			lat[r.Protocol] = r
		}
	}
	for proto, want := range map[string]Latency{sim.ProtoShell: p.OnPrem, sim.ProtoGraph: p.Graph, sim.ProtoEXO: p.EXO} {
		r, ok := lat[proto]
		if !ok || r.Latency != want.Mean || r.Jitter != want.Jitter || r.Rate != 1 {
			t.Errorf("%s latency rule = %+v, want %s", proto, r, want)
		}
	}
	if kinds[sim.FaultThrottle] != 2 || kinds[sim.FaultServer] != 2 {
		t.Errorf("want a throttle and a 5xx rule for Graph and EXO, got %v", kinds)
	}
	for _, r := range rules {
		if r.Kind == sim.FaultThrottle && (r.Rate != 0.01 || r.RetryAfter != 100*time.Millisecond) {
			t.Errorf("throttle rule %+v", r)
		}
	}
	// The rules must be accepted by the world and actually delay a request.
	w, err := NewWorld(2, 1, Profile{Graph: Latency{Mean: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	f := w.Decide(sim.ProtoGraph, "GET servicePrincipals", w.Tenants[0].ID)
	if f.Delay != 20*time.Millisecond || f.Kind != "" {
		t.Fatalf("Decide = %+v, want a 20ms delay and no fault", f)
	}
	if got := (Profile{}).Rules(); len(got) != 0 {
		t.Fatalf("a zero profile must inject nothing, got %v", got)
	}
}

func TestMarkdownReport(t *testing.T) {
	r := &Report{
		Machine:     Machine{Cores: 2, GoVersion: "go1.26.8", OS: "linux/amd64", Date: "2026-11-22 06:00 UTC"},
		ProfileText: DefaultProfile().String(), ShellMode: "relay",
		Durable:           RunStats{Runner: RunDurable, Tenants: 500, Concurrency: 50, WallSeconds: 60, PerMinute: 500, P50Ms: 1200, P95Ms: 2100, Verified: 500},
		Concurrent:        RunStats{Runner: RunConcurrent, Tenants: 500, Concurrency: 50, WallSeconds: 50, PerMinute: 600, Verified: 500},
		Sequential:        RunStats{Runner: RunSequential, Tenants: 30, Concurrency: 1, WallSeconds: 30, PerMinute: 60, Verified: 30},
		RatioDurableFloor: 500.0 / 600, SpeedupOverSequential: 500.0 / 60,
		EventsPerSetup: Events{Sampled: 100, Mean: 87.4, Max: 120},
		FreshCosts:     Costs{GraphRequests: 6.5, GraphReads: 4.5, GraphWrites: 2, LegacyGraphWritesMax: 1, LegacyTenants: 100},
		ConvergedCosts: Costs{GraphRequests: 1, GraphReads: 1},
		Sweep: []RunStats{
			{Runner: RunConcurrent, Concurrency: 10, Tenants: 100, PerMinute: 200},
			{Runner: RunDurable, Concurrency: 10, Tenants: 100, PerMinute: 150},
			{Runner: RunDurable, Concurrency: 1, Tenants: 20, PerMinute: 30},
			{Runner: RunConcurrent, Concurrency: 1, Tenants: 20, PerMinute: 40},
		},
	}
	md := r.Markdown()
	mustContain(t, "Markdown", md,
		"| durable | 500 | 50 | 60.0 s | 500 | 1200 ms | 2100 ms | 500/500 | 0 MB | 0 + 0 ms |",
		"| durable / concurrent floor (tenants/min) | 0.83 |",
		"| durable speed-up over sequential | 8.3× |",
		"| history events per Setup workflow (mean / max) | 87 / 120 (100 sampled) |",
		"| Graph requests per converged tenant | 1.00 (1.00 + 0.00), max 0 |",
		"| Graph writes per fresh legacy-mode tenant (max) | 1 (100 legacy tenants) |",
		"| 1 | 20 | 30 | 40 | 0.75 |",
		"| 10 | 100 | 150 | 200 | 0.75 |",
		"2 cores",
	)
	if strings.Index(md, "| 1 | 20 |") > strings.Index(md, "| 10 | 100 |") {
		t.Errorf("sweep rows must be sorted by concurrency:\n%s", md)
	}
	dir := t.TempDir()
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	readme := filepath.Join(dir, "README.md")
	if err := os.WriteFile(readme, []byte("# x\n<!-- bench:begin -->\nold table\n<!-- bench:end -->\n## next\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.UpdateReadme(readme); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(readme)
	if strings.Contains(string(got), "old table") || !strings.Contains(string(got), md) || !strings.HasSuffix(string(got), "<!-- bench:end -->\n## next\n") {
		t.Fatalf("README after update:\n%s", got)
	}
	if err := r.UpdateReadme(filepath.Join(dir, "latest.md")); err == nil {
		t.Fatal("a file without markers must be refused")
	}
}

// TestShapeCountsARecordedSetup counts the events of a recorded Setup
// history (workflows/testdata/histories) by kind: every event lands in one
// kind, each kind as the history shows it.
func TestShapeCountsARecordedSetup(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "workflows", "testdata", "histories", "setup-dedicated-half-configured.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var s Shape
	for _, ev := range h.GetEvents() {
		s.observe(ev)
	}
	want := Shape{WorkflowTasks: 7, Activities: 5, LocalActivities: 12, Versions: 1, Upserts: 2, Children: 2, Other: 2}
	if s != want {
		t.Fatalf("shape %+v, want %+v", s, want)
	}
	total := 3*s.WorkflowTasks + 3*s.Activities + s.LocalActivities + s.Versions + s.Upserts + s.Children + s.Timers + s.Other
	if int(total) != len(h.GetEvents()) {
		t.Fatalf("kinds add up to %v events, the history has %d", total, len(h.GetEvents()))
	}
}

// TestScaleMarkdown: the scale table has a row per N, and the largest N
// is compared with the point nearest 500 tenants.
func TestScaleMarkdown(t *testing.T) {
	pt := func(n int, perMin, cpu, srv float64, handovers int) ScalePoint {
		return ScalePoint{Tenants: n, Handovers: handovers,
			Durable: RunStats{PerMinute: perMin, CPUPerTenantMs: cpu, ServerCPUPerTenantMs: srv},
			Floor:   RunStats{PerMinute: 2 * perMin, CPUPerTenantMs: 50}}
	}
	r := &ScaleReport{Machine: Machine{Cores: 2}, Concurrency: 50,
		Points: []ScalePoint{pt(100, 400, 70, 110, 0), pt(500, 600, 70, 100, 0), pt(1000, 590, 70, 100, 1), pt(10000, 540, 75, 112, 19)}}
	md := r.Markdown()
	mustContain(t, "scale Markdown", md,
		"| 500 | 600 | 1200 | 0.50 | 70 + 100 = 170 ms | 50 ms |",
		"| 10000 | 540 | 1080 | 0.50 | 75 + 112 = 187 ms | 50 ms |",
		"| 19 |",
		"10000 tenants against 500: tenants/min 0.90×, CPU per tenant +10% (durable).",
	)
	if err := r.Write(t.TempDir()); err != nil {
		t.Fatal(err)
	}
}

// mustContain reports each of wants that the text (named what) lacks.
func mustContain(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(text, want) {
			t.Errorf("%s lacks %q:\n%s", what, want, text)
		}
	}
}
