// Package fuzzlist holds only a test: it keeps the Makefile's FUZZ_TARGETS
// (what `make fuzz` runs) equal to the Fuzz functions in the repository, so
// a new fuzz target cannot be left out of the fuzzing runs.
package fuzzlist
