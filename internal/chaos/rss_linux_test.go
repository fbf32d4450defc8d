package chaos_test

import "syscall"

// peakRSS is this process's peak resident set and the largest of its
// ended children's, in bytes (Linux reports kilobytes).
func peakRSS() (self, child int64) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		self = ru.Maxrss << 10
	}
	if syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru) == nil {
		child = ru.Maxrss << 10
	}
	return self, child
}
