//go:build linux

package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Running is a detached cluster's processes found from its state
// directory: the server's PID file and PostgreSQL's postmaster.pid, each
// counted only while that PID is alive and is the program the file names
// (a PID left over from a crash may since belong to another program).
type Running struct {
	Server, Postgres int // 0: not running
}

// FindRunning reads dir's PID files.
func FindRunning(dir string) Running {
	var r Running
	if pid := readPID(filepath.Join(dir, PIDFile)); pid > 0 && commOf(pid) == ServerBinary {
		r.Server = pid
	}
	if pid := readPID(filepath.Join(dir, pgDataDir, "postmaster.pid")); pid > 0 && commOf(pid) == "postgres" {
		r.Postgres = pid
	}
	return r
}

// StopDetached stops what FindRunning finds in dir: the server first
// (interrupt; killed after 15 s), then PostgreSQL (fast shutdown; killed
// after 60 s). It says what it stopped.
func StopDetached(dir string) ([]string, error) {
	r := FindRunning(dir)
	var out []string
	var errs []error
	if r.Server > 0 {
		if err := stopPID(r.Server, syscall.SIGINT, 15*time.Second); err != nil {
			errs = append(errs, fmt.Errorf("temporal-server (pid %d): %w", r.Server, err))
		} else {
			out = append(out, fmt.Sprintf("stopped temporal-server (pid %d)", r.Server))
		}
	}
	_ = os.Remove(filepath.Join(dir, PIDFile))
	if r.Postgres > 0 {
		if err := stopPID(r.Postgres, syscall.SIGINT, 60*time.Second); err != nil {
			errs = append(errs, fmt.Errorf("postgres (pid %d): %w", r.Postgres, err))
		} else {
			out = append(out, fmt.Sprintf("stopped PostgreSQL (pid %d)", r.Postgres))
		}
	}
	return out, errors.Join(errs...)
}

// stopPID signals a process that is not our child and waits until it is
// gone, killing it after grace.
func stopPID(pid int, sig syscall.Signal, grace time.Duration) error {
	if err := syscall.Kill(pid, sig); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return err
	}
	deadline := time.Now().Add(grace)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			for i := 0; i < 50 && alive(pid); i++ {
				time.Sleep(100 * time.Millisecond)
			}
			if alive(pid) {
				return errors.New("still running after SIGKILL")
			}
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// alive: the process exists and is not a zombie.
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

func readPID(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// commOf is a process's command name (15 characters at most), "" when it
// does not exist.
func commOf(pid int) string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}
