//go:build linux

package cluster

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of /proc/<pid>/stat's CPU times (USER_HZ, 100 on
// Linux).
const clockTick = 10 * time.Millisecond

// CPU is the user+system CPU time the server and PostgreSQL have used so
// far: each process, its running descendants (PostgreSQL's backends and
// background processes) and the descendants that have exited and been
// waited for (counted in their parent's cutime/cstime). Zero where /proc
// is not available or the process is not running.
func (c *Cluster) CPU() (server, postgres time.Duration) {
	return TreeCPU(c.ServerPID()), TreeCPU(c.PostgresPID())
}

// TreeCPU is the CPU time of pid and all its descendants, living or
// reaped, from /proc.
func TreeCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	stats := procStats()
	children := map[int][]int{}
	for p, st := range stats {
		children[st.ppid] = append(children[st.ppid], p)
	}
	var sum func(p int) time.Duration
	sum = func(p int) time.Duration {
		st, ok := stats[p]
		if !ok {
			return 0
		}
		total := st.cpu
		for _, ch := range children[p] {
			total += sum(ch)
		}
		return total
	}
	return sum(pid)
}

type procStat struct {
	ppid int
	// cpu: utime+stime+cutime+cstime.
	cpu time.Duration
}

// procStats reads every process's parent and CPU times.
func procStats() map[int]procStat {
	out := map[int]procStat{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		st, ok := parseStat(string(data))
		if ok {
			out[pid] = st
		}
	}
	return out
}

// parseStat reads a /proc/<pid>/stat line: after the parenthesised
// command name come state, ppid, ... utime (14th field of the line),
// stime, cutime, cstime.
func parseStat(s string) (procStat, bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(s[i+1:])
	// f[0] state, f[1] ppid, f[11..14] utime stime cutime cstime.
	if len(f) < 15 {
		return procStat{}, false
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, false
	}
	var ticks int64
	for _, k := range f[11:15] {
		v, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			return procStat{}, false
		}
		ticks += v
	}
	return procStat{ppid: ppid, cpu: time.Duration(ticks) * clockTick}, true
}
