// Package realpath holds tests of the product as an operator deploys it:
// the built binaries (hybridflow-worker, the hybridflow CLI, the
// stand-alone simulator hybridflow-sim and the PowerShell stand-in
// hybridflow-pwsh) run as separate processes on loopback, the worker with
// a configuration derived from the shipped example (no simulate block),
// and the outcome is judged from the simulator's admin API, which outlives
// every worker. The package has no code besides its tests, which run on
// Linux (they stop process groups and read /proc) with the Temporal CLI
// in bin/temporal, and are skipped with -short.
package realpath
