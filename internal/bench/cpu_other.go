//go:build !unix

package bench

import "time"

// cpuTime is not measured here: the harness reads the rest of its figures
// from /proc too, so it is for Linux; this keeps GOOS=windows go build ./...
// (the on-prem worker's platform) whole.
func cpuTime() time.Duration { return 0 }
