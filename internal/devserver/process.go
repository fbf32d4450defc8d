package devserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/logging"
)

// Process is a dev server the caller owns as a plain child process, so it
// can be SIGKILLed and started again on the same port and SQLite file: a
// crash of the Temporal service itself, which testsuite.DevServer cannot
// simulate (its Stop is a graceful interrupt and it cannot restart).
type Process struct {
	cli      string
	args     []string
	hostPort string
	log      io.Writer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// ProcessOptions for StartProcess.
type ProcessOptions struct {
	// DBFile is required: a restart without it would start an empty server.
	DBFile string
	// Port for the frontend; 0 picks a free one, kept across restarts.
	Port int
	// Log receives the server's stdout and stderr (nil discards them).
	Log io.Writer
}

// StartProcess starts the dev server and waits until the default
// namespace answers.
func StartProcess(ctx context.Context, o ProcessOptions) (*Process, error) {
	if o.DBFile == "" {
		return nil, errors.New("devserver: ProcessOptions.DBFile is required (state must survive a restart)")
	}
	cli, err := CLIPath()
	if err != nil {
		return nil, err
	}
	port := o.Port
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	hostPort := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{"server", "start-dev", "--ip", "127.0.0.1", "--port", strconv.Itoa(port),
		"--namespace", "default", "--headless", "--log-level", "error", "--db-filename", o.DBFile,
		"--dynamic-config-value", "frontend.enableServerVersionCheck=false",
	}
	args = append(args, commonArgs()...)
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	p := &Process{cli: cli, args: args, hostPort: hostPort, log: log}
	if err := p.Start(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// HostPort is the frontend address; it does not change across restarts.
func (p *Process) HostPort() string { return p.hostPort }

// Start (re)starts the server process, waiting until it is ready. It is an
// error to start a server that is running.
func (p *Process) Start(ctx context.Context) error {
	p.mu.Lock()
	if p.cmd != nil {
		p.mu.Unlock()
		return errors.New("devserver: already running")
	}
	cmd := exec.Command(p.cli, p.args...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		return fmt.Errorf("start %s: %w", p.cli, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	return p.waitReady(ctx, done)
}

// waitReady dials until the default namespace can be described: the
// frontend answering health checks is not enough right after a restart.
func (p *Process) waitReady(ctx context.Context, exited <-chan struct{}) error {
	var last error
	for {
		select {
		case <-exited:
			return fmt.Errorf("devserver: the process exited while starting (last error: %v)", last)
		default:
		}
		c, err := client.Dial(client.Options{HostPort: p.hostPort, Namespace: "default", Logger: logging.NewTemporal(zap.NewNop())})
		if err == nil {
			dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err = c.WorkflowService().DescribeNamespace(dctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
			cancel()
			c.Close()
			if err == nil {
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("devserver at %s not ready: %w (last error: %v)", p.hostPort, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Kill sends SIGKILL and waits for the process to be gone: no shutdown
// hook runs, whatever SQLite had not committed is lost as in a crash.
func (p *Process) Kill() error { return p.signal(syscall.SIGKILL, 0) }

// Stop interrupts the server and waits up to 10 s, then kills it.
func (p *Process) Stop() error { return p.signal(syscall.SIGINT, 10*time.Second) }

func (p *Process) signal(sig syscall.Signal, grace time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd, p.done = nil, nil
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, syscall.ESRCH) && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal dev server pid %d: %w", cmd.Process.Pid, err)
	}
	if grace > 0 {
		select {
		case <-done:
			return nil
		case <-time.After(grace):
			_ = cmd.Process.Kill()
		}
	}
	<-done
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
