// Package devserver starts the real Temporal dev server (the CLI the
// Makefile builds into bin/temporal) for integration tests and benchmarks,
// with hybridflow's search attributes registered and a short long-poll
// interval so poller liveness is observable within seconds.
package devserver

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/hybridflow/hybridflow/workflows"
)

// LongPoll is the matching service's long-poll expiry used in tests. An
// idle worker re-polls at least this often, so "last seen" is fresh within it.
const LongPoll = 3 * time.Second

// RepoRoot walks up from the working directory to the module root.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// CLIPath is bin/temporal in the repository, or $HYBRIDFLOW_TEMPORAL_CLI.
func CLIPath() (string, error) {
	if p := os.Getenv("HYBRIDFLOW_TEMPORAL_CLI"); p != "" {
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "bin", "temporal")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("the Temporal CLI is not built at %s: run `make bin/temporal` (or `make test`, which builds it)", p)
	}
	return p, nil
}

// SearchAttributeFlags are the --search-attribute flags for start-dev,
// sorted for stable command lines.
func SearchAttributeFlags() []string {
	var out []string
	for name := range workflows.SearchAttributes {
		out = append(out, "--search-attribute", name+"=Keyword")
	}
	// pairs sort by the name that follows each flag
	pairs := make([]string, 0, len(out)/2)
	for i := 1; i < len(out); i += 2 {
		pairs = append(pairs, out[i])
	}
	sort.Strings(pairs)
	out = out[:0]
	for _, p := range pairs {
		out = append(out, "--search-attribute", p)
	}
	return out
}

// commonArgs are the start-dev arguments of every dev server here (Start,
// StartProcess): the search attributes and the short long poll.
func commonArgs() []string {
	return append(SearchAttributeFlags(),
		"--dynamic-config-value", fmt.Sprintf("matching.longPollExpirationInterval=%q", LongPoll.String()))
}

// Options for Start.
type Options struct {
	// DBFile keeps state in SQLite (to survive a server restart); "" = in memory.
	DBFile string
	// Port for the frontend; 0 picks a free one.
	Port int
	// Extra start-dev arguments.
	Extra []string
}

// Start launches the dev server and returns it with a connected client.
func Start(ctx context.Context, o Options) (*testsuite.DevServer, error) {
	cli, err := CLIPath()
	if err != nil {
		return nil, err
	}
	args := append(commonArgs(), o.Extra...)
	opts := testsuite.DevServerOptions{
		ExistingPath:  cli,
		ClientOptions: &client.Options{Namespace: "default"},
		ExtraArgs:     args,
		LogLevel:      "error",
		DBFilename:    o.DBFile,
		Stdout:        io.Discard,
		Stderr:        io.Discard,
	}
	if o.Port != 0 {
		opts.ClientOptions.HostPort = fmt.Sprintf("127.0.0.1:%d", o.Port)
	}
	s, err := testsuite.StartDevServer(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("start Temporal dev server from %s: %w", cli, err)
	}
	return s, nil
}
