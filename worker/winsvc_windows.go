//go:build windows

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/windows/svc"
)

// serviceName is the name the README installs the on-prem worker under;
// the SCM ignores it for a service in its own process, but it names the
// default log file.
const serviceName = "hybridflow-worker"

// runWindowsService runs the worker under the Service Control Manager when
// it was started as a service (sc.exe create ... binPath= "...exe --config
// ..."): Stop and Shutdown cancel the worker's context, which drains
// running activities like SIGTERM does on Linux. Started any other way
// (console, NSSM) it returns false and main runs as usual.
func runWindowsService(execute func(context.Context) error) (bool, error) {
	is, err := svc.IsWindowsService()
	if err != nil || !is {
		return false, nil
	}
	// A service has no console: logs go to HYBRIDFLOW_LOG_FILE, by default
	// %ProgramData%\hybridflow\logs\hybridflow-worker.log.
	path := os.Getenv("HYBRIDFLOW_LOG_FILE")
	if path == "" {
		path = filepath.Join(os.Getenv("ProgramData"), "hybridflow", "logs", serviceName+".log")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return true, err
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return true, err
	}
	os.Stdout, os.Stderr = f, f
	return true, svc.Run(serviceName, &service{execute: execute})
}

type service struct{ execute func(context.Context) error }

// stopWait is how long Stop waits for in-flight activities (the worker
// allows them 30s) before reporting stopped anyway.
const stopWait = 40 * time.Second

func (s *service) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.execute(ctx) }()
	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	exit := func(err error) (bool, uint32) {
		if err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			return true, 1 // service-specific exit code: recovery actions apply
		}
		return false, 0
	}
	for {
		select {
		case err := <-done:
			return exit(err)
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				status <- svc.Status{State: svc.StopPending, WaitHint: uint32(stopWait / time.Millisecond)}
				cancel()
				select {
				case err := <-done:
					return exit(err)
				case <-time.After(stopWait):
					return exit(fmt.Errorf("worker did not stop within %s", stopWait))
				}
			}
		}
	}
}
