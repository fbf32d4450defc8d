//go:build !windows

package main

import "context"

// runWindowsService exists only on Windows (winsvc_windows.go).
func runWindowsService(func(context.Context) error) (bool, error) { return false, nil }
