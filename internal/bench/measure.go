package bench

import (
	"bufio"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hybridflow/hybridflow/internal/cluster"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// Percentile is the nearest-rank percentile (p in 0..100) of ds; 0 for none.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// PerMinute is tenants per minute over wall.
func PerMinute(n int, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return float64(n) / wall.Minutes()
}

// Costs are per-tenant request counts from the simulator's counters.
type Costs struct {
	Tenants         int     `json:"tenants"`
	GraphRequests   float64 `json:"graph_requests_mean"`
	GraphReads      float64 `json:"graph_reads_mean"`
	GraphWrites     float64 `json:"graph_writes_mean"`
	GraphMax        int64   `json:"graph_requests_max"`
	ShellRoundTrips float64 `json:"host_round_trips_mean"`
	EXOCalls        float64 `json:"exo_calls_mean"`
	Writes          int64   `json:"writes_total"`
	// LegacyGraphWritesMax is the most Graph writes any legacy-mode tenant
	// received: legacy mode writes Graph only on the first-party service
	// principal, so this bounds the PATCHes to it.
	LegacyGraphWritesMax int64 `json:"legacy_graph_writes_max"`
	LegacyTenants        int   `json:"legacy_tenants"`
}

// CostsOf averages st over the given tenants (IDs as in the world).
func CostsOf(st sim.Counters, tenantIDs []string, legacy map[string]bool) Costs {
	c := Costs{Tenants: len(tenantIDs)}
	if len(tenantIDs) == 0 {
		return c
	}
	for _, id := range tenantIDs {
		tc := st.ByTenant[strings.ToLower(id)]
		if tc == nil {
			tc = &sim.TenantCounters{}
		}
		c.GraphReads += float64(tc.GraphReads)
		c.GraphWrites += float64(tc.GraphWrites)
		c.GraphMax = max(c.GraphMax, tc.GraphReads+tc.GraphWrites)
		c.ShellRoundTrips += float64(tc.ShellRoundTrips)
		c.EXOCalls += float64(tc.EXOCalls)
		c.Writes += tc.Writes
		if legacy[id] {
			c.LegacyTenants++
			c.LegacyGraphWritesMax = max(c.LegacyGraphWritesMax, tc.GraphWrites)
		}
	}
	n := float64(len(tenantIDs))
	c.GraphReads /= n
	c.GraphWrites /= n
	c.GraphRequests = c.GraphReads + c.GraphWrites
	c.ShellRoundTrips /= n
	c.EXOCalls /= n
	return c
}

// resetPeakRSS resets this process's VmHWM (Linux: writing 5 to
// clear_refs), so that peakRSS reports the peak of one run; elsewhere it
// does nothing and the peak covers the whole process lifetime.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// loadAvg is the machine's one-minute load average (-1 when unknown):
// CPU per tenant grows with the load, so each runner records it at its
// start to tell a loaded run from a regression.
func loadAvg() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// peakRSS is VmHWM of this process in bytes (0 when unknown).
func peakRSS() int64 { return statusKB("/proc/self/status", "VmHWM:") * 1024 }

func statusKB(path, key string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, key); ok {
			v, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return v
		}
	}
	return 0
}

// childCPU is the user+system CPU time of this process's children named
// comm (the dev server), from /proc/<pid>/stat (clock ticks, 100 Hz).
func childCPU(comm string) time.Duration {
	return childrenCPU(func(c string) bool { return c == comm })
}

// devServerComm is the dev server's command name (bin/temporal).
const devServerComm = "temporal"

// engineComms are the command names of the engines' processes that are
// this process's children (the dev server; the cluster's server and
// PostgreSQL's postmaster), which the harness's CPU leaves out.
var engineComms = map[string]bool{devServerComm: true, cluster.ServerBinary: true, "postgres": true}

// childrenCPU sums utime+stime of this process's running children whose
// command name matches.
func childrenCPU(match func(comm string) bool) time.Duration {
	var total time.Duration
	forChildren(match, func(fields []string, _ string) {
		if len(fields) > 13 {
			u, _ := strconv.ParseInt(fields[11], 10, 64)
			st, _ := strconv.ParseInt(fields[12], 10, 64)
			total += time.Duration(u+st) * 10 * time.Millisecond
		}
	})
	return total
}

// childPeakRSS is the summed VmHWM of this process's children whose
// command name is comm (the dev server), in bytes.
func childPeakRSS(comm string) int64 {
	var total int64
	forChildren(func(c string) bool { return c == comm }, func(_ []string, pid string) {
		total += statusKB("/proc/"+pid+"/status", "VmHWM:") * 1024
	})
	return total
}

// forChildren calls f with the stat fields after the command name
// (fields[0] is the state, fields[1] the parent) of each child whose
// command name matches.
func forChildren(match func(comm string) bool, f func(fields []string, pid string)) {
	self := strconv.Itoa(os.Getpid())
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(data)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		fields := strings.Fields(s[close+1:])
		if len(fields) < 2 || fields[1] != self || !match(s[open+1:close]) {
			continue
		}
		f(fields, e.Name())
	}
}
