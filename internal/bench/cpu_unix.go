//go:build unix

package bench

import (
	"syscall"
	"time"
)

// cpuTime is the harness's user+system CPU time: this process (all
// threads) and its PowerShell-host relay processes, those that have exited
// (reaped children) and those still running; not the Temporal server or
// PostgreSQL, which are measured on their own.
func cpuTime() time.Duration {
	var self, children syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &self) != nil || syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children) != nil {
		return 0
	}
	return time.Duration(self.Utime.Nano()+self.Stime.Nano()+children.Utime.Nano()+children.Stime.Nano()) + childrenCPU(func(c string) bool { return !engineComms[c] })
}
