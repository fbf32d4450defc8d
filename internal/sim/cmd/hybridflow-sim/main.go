// Command hybridflow-sim is the stand-alone simulator: "serve" serves a
// world file's Graph, token endpoint, Exchange Online REST and admin API
// over loopback TLS, and its remote PowerShell gateway over loopback HTTP,
// until SIGINT or SIGTERM. The other commands talk to a running simulator
// through its admin API, found from --state-dir/state.json:
//
//	hybridflow-sim serve --world configs/sim/demo.yaml [--save-on-exit .data/sim/world.yaml]
//	hybridflow-sim dump > world.yaml
//	hybridflow-sim load world.yaml
//	hybridflow-sim reset
//	hybridflow-sim requests --since 120
//	hybridflow-sim clock [--set 2026-12-04T10:00:00Z | --wall]
//	hybridflow-sim faults [list | add rules.yaml | clear]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/logging"
	"github.com/hybridflow/hybridflow/internal/sim/simserver"
)

// DefaultStateDir is where serve writes its state and clients look for it.
const DefaultStateDir = ".data/sim"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.root()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}

type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	stateDir       string
}

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "hybridflow-sim",
		Short: "The stand-alone simulator of Entra, Exchange Online and on-premises Exchange/Lync hosts",
		Long: `hybridflow-sim serves a simulated world on loopback for the real worker:
Graph (/v1.0), the token endpoint (/{tenant}/oauth2/v2.0/token, accepting the
secret in <state-dir>/client-secret for any client ID) and Exchange Online
(/adminapi/) over TLS with its own CA (<state-dir>/ca.pem), and the remote
PowerShell gateway (/PowerShell/<site>, /OcsPowerShell/<site>) for the
PowerShell stand-in. The other commands use the running simulator's admin
API, found through <state-dir>/state.json.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&a.stateDir, "state-dir", DefaultStateDir, "the simulator's state directory (state.json, ca.pem, client-secret, admin-token)")
	root.AddCommand(a.serve(), a.dump(), a.load(), a.reset(), a.requests(), a.clock(), a.faults())
	return root
}

func (a *app) serve() *cobra.Command {
	var world, listen, gateway, level, saveTo string
	var jsonLogs bool
	cmd := &cobra.Command{
		Use:   "serve --world FILE [--save-on-exit FILE]",
		Short: "Serve a world file until SIGINT or SIGTERM",
		Long: fmt.Sprintf(`serve serves a world file until SIGINT or SIGTERM.

With --save-on-exit FILE, the signal makes it stop taking requests, wait
for those being served (at most %s), and write the world as it is then to
FILE in the world-file format (what dump prints; owner-readable, replaced
atomically). Serving FILE later with --world goes on from that world. A
clock pinned with clock --set is saved with it, and a world whose now: is
more than %s from the wall clock is refused at start: release the
clock with clock --wall before stopping to keep the file usable.`, simserver.DrainTimeout, simserver.ClockTolerance),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if world == "" {
				return errors.New("serve: --world FILE is required (e.g. configs/sim/demo.yaml)")
			}
			logger, err := logging.New(level, !jsonLogs)
			if err != nil {
				return err
			}
			defer func() { _ = logger.Sync() }()
			s, err := simserver.Start(context.WithoutCancel(cmd.Context()), simserver.Options{
				WorldFile: world, Addr: listen, GatewayAddr: gateway, StateDir: a.stateDir, Logger: logger, SaveTo: saveTo,
			})
			if err != nil {
				return err
			}
			select {
			case <-cmd.Context().Done():
				logger.Info("stopping", zap.String("reason", "signal"))
			case <-s.Done():
			}
			return s.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&world, "world", "", "the world file to serve (YAML)")
	f.StringVar(&listen, "listen", simserver.DefaultListen, "HTTPS listen address (loopback)")
	f.StringVar(&gateway, "gateway", simserver.DefaultGateway, "remote PowerShell gateway listen address (loopback)")
	f.StringVar(&saveTo, "save-on-exit", "", "on SIGINT or SIGTERM, write the world to this file (world-file format) once the requests being served have finished")
	f.StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	f.BoolVar(&jsonLogs, "log-json", false, "log JSON lines instead of console text")
	return cmd
}

func (a *app) client() (*simserver.Client, error) { return simserver.Dial(a.stateDir) }

func (a *app) dump() *cobra.Command {
	return &cobra.Command{
		Use:   "dump",
		Short: "Write the running simulator's world to stdout (YAML, the world file format)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			data, err := c.Dump(cmd.Context())
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(data)
			return err
		},
	}
}

func (a *app) load() *cobra.Command {
	return &cobra.Command{
		Use:   "load FILE",
		Short: "Replace the running simulator's world with a world file (- for stdin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := a.readInput(args[0])
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			return c.Load(cmd.Context(), data)
		},
	}
}

func (a *app) reset() *cobra.Command {
	return &cobra.Command{
		Use:   "reset",
		Short: "Reload the world file the simulator was started with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			return c.Reset(cmd.Context())
		},
	}
}

func (a *app) requests() *cobra.Command {
	var since uint64
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "requests",
		Short: "List the requests the simulator answered (after --since)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			page, err := c.Requests(cmd.Context(), since)
			if err != nil {
				return err
			}
			if page.Lost > 0 {
				fmt.Fprintf(a.stderr, "%d requests after %d are no longer in the log (it keeps the newest)\n", page.Lost, since)
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				for _, r := range page.Requests {
					if err := enc.Encode(r); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tTIME\tPROTOCOL\tMETHOD\tPATH/CMDLET\tTENANT\tRESULT\tFAULT")
			for _, r := range page.Requests {
				what := r.Path
				if r.Cmdlet != "" {
					what = r.Cmdlet
				}
				result := "ok"
				switch {
				case r.Status != 0:
					result = fmt.Sprint(r.Status)
				case r.OK:
				case r.Error != "":
					result = r.Error
				default:
					result = "dropped"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Time.Format("15:04:05.000"), r.Protocol, r.Method,
					clip(what, maxWhat), dash(r.Tenant), result, dash(r.Fault))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().Uint64Var(&since, "since", 0, "list only records numbered after this one")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	return cmd
}

// maxWhat bounds the PATH/CMDLET column: a batch of fifteen cmdlets would
// otherwise widen every row of the table (--json keeps the whole text).
const maxWhat = 60

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *app) clock() *cobra.Command {
	var set string
	var wall bool
	cmd := &cobra.Command{
		Use:   "clock [--set TIME | --wall]",
		Short: "Show the simulator's clock, pin it near the wall clock (--set RFC 3339) or release it (--wall)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if set != "" && wall {
				return errors.New("clock: give --set or --wall, not both")
			}
			var t time.Time
			if set != "" {
				var err error
				if t, err = time.Parse(time.RFC3339, set); err != nil {
					return fmt.Errorf("clock: --set %q is not an RFC 3339 time (2026-12-04T10:00:00Z): %w", set, err)
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var clk simserver.Clock
			switch {
			case set != "":
				clk, err = c.SetClock(cmd.Context(), t)
			case wall:
				clk, err = c.WallClock(cmd.Context())
			default:
				clk, err = c.Clock(cmd.Context())
			}
			if err != nil {
				return err
			}
			state := "wall clock"
			if clk.Pinned {
				state = fmt.Sprintf("pinned, %s from the wall clock", clk.Now.Sub(clk.Wall).Round(time.Millisecond))
			}
			fmt.Fprintf(a.stdout, "%s (%s)\n", clk.Now.Format(time.RFC3339Nano), state)
			return nil
		},
	}
	cmd.Flags().StringVar(&set, "set", "", "pin the clock to this time (RFC 3339, within 2 minutes of the wall clock)")
	cmd.Flags().BoolVar(&wall, "wall", false, "release the clock to the wall clock")
	return cmd
}

func (a *app) faults() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "faults [list | add FILE | clear]",
		Short: "List, add (YAML rules, - for stdin) or clear the simulator's fault rules",
		Args:  cobra.RangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			verb := "list"
			if len(args) > 0 {
				verb = args[0]
			}
			switch {
			case verb == "list" && len(args) <= 1, verb == "clear" && len(args) == 1, verb == "add" && len(args) == 2:
			default:
				return fmt.Errorf("faults: want list, add FILE or clear; got %q", strings.Join(args, " "))
			}
			var rules []byte
			if verb == "add" {
				var err error
				if rules, err = a.readInput(args[1]); err != nil {
					return err
				}
				if _, err := simserver.ParseFaults(rules); err != nil {
					return fmt.Errorf("%s: %w", args[1], err)
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var out []byte
			switch verb {
			case "list":
				out, err = c.Faults(cmd.Context())
			case "add":
				out, err = c.AddFaults(cmd.Context(), rules)
			case "clear":
				err = c.ClearFaults(cmd.Context())
			}
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(out)
			return err
		},
	}
	return cmd
}

func (a *app) readInput(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(a.stdin)
	}
	return os.ReadFile(name)
}
