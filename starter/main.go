// Command hybridflow is the operator CLI: validate inventories, check the
// deployment, plan and run setups and rollouts, act on paused tenants.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/logging"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/workflows"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := runIO(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// exitError carries a specific exit code (validate: 1 = problems found).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// silentExit ends the command with a code after the output already said why.
type silentExit struct{ code int }

func (s silentExit) Error() string { return fmt.Sprintf("exit %d", s.code) }

// run executes the CLI with injectable output so tests drive the real
// commands. Its stdin is empty (never the terminal the tests were started
// from), so a confirmation prompt refuses instead of waiting.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return runIO(ctx, args, strings.NewReader(""), stdout, stderr, getenv)
}

// runIO is run with the stdin confirmation prompts read from.
func runIO(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	app := &app{stdout: stdout, stderr: stderr, getenv: getenv}
	root := app.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var se silentExit
	if errors.As(err, &se) {
		return se.code
	}
	eprintf(stderr, "error: %s\n", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// app holds what every command shares: flags, output, configuration.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string

	configPath string
	output     string
	address    string
	namespace  string

	cfg *config.WorkerConfig
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "hybridflow",
		Short: "Durable Exchange hybrid OAuth configuration on Temporal",
		Long: `hybridflow configures OAuth between on-premises Exchange and Exchange Online
(auth servers, partner application, auth certificate in Entra, service principal
names, IntraOrganizationConnectors, availability address space, verification)
as Temporal workflows, for one tenant or thousands.

Configuration: --config names the worker/operator config (default: built-in
defaults, Temporal at 127.0.0.1:7233, namespace "default"); HYBRIDFLOW_*
environment variables override it (see README).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&a.configPath, "config", "c", "", "worker/operator config file (env HYBRIDFLOW_CONFIG)")
	pf.StringVarP(&a.output, "output", "o", "text", "output format: text or json")
	pf.StringVar(&a.address, "address", "", "Temporal frontend host:port (overrides config and HYBRIDFLOW_TEMPORAL_ADDRESS)")
	pf.StringVar(&a.namespace, "namespace", "", "Temporal namespace (overrides config and HYBRIDFLOW_TEMPORAL_NAMESPACE)")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if a.output != "text" && a.output != "json" {
			return fmt.Errorf("--output must be text or json, not %q", a.output)
		}
		return nil
	}
	root.AddCommand(a.validateCommand(), a.doctorCommand(), a.planCommand(), a.setupCommand(),
		a.operatorCommand(workflows.UpdateRetry, "Run the paused step of a tenant's setup again"),
		a.operatorCommand(workflows.UpdateSkip, "Skip the paused step of a tenant's setup and go on"),
		a.operatorCommand(workflows.UpdateAbort, "Stop a paused setup and undo this run's changes (asks first; --yes without a terminal)"))
	for _, add := range extraCommands {
		root.AddCommand(add(a))
	}
	return root
}

// extraCommands lets each command family (rollout, renew, lync, ...) add
// itself from its own file's init, so families stay in their own files.
var extraCommands []func(a *app) *cobra.Command

// config loads the worker/operator config once, applying flag overrides.
func (a *app) config() (*config.WorkerConfig, error) {
	if a.cfg != nil {
		return a.cfg, nil
	}
	path := a.configPath
	if path == "" {
		path = a.getenv("HYBRIDFLOW_CONFIG")
	}
	cfg, err := config.LoadWorkerConfig(path, a.getenv)
	if err != nil {
		return nil, err
	}
	if a.address != "" {
		cfg.Temporal.Address = a.address
	}
	if a.namespace != "" {
		cfg.Temporal.Namespace = a.namespace
	}
	a.cfg = cfg
	return cfg, nil
}

// client dials Temporal. The CLI logs only warnings: its output is the report.
func (a *app) client(ctx context.Context) (client.Client, *config.WorkerConfig, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, nil, err
	}
	logger, err := logging.New("warn", true)
	if err != nil {
		logger = zap.NewNop()
	}
	c, err := temporalx.Dial(ctx, cfg.Temporal, logger, a.getenv)
	if err != nil {
		return nil, cfg, err
	}
	return c, cfg, nil
}
