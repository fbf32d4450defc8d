// Package cluster runs Temporal the way production does, on one machine:
// a PostgreSQL cluster of its own (initdb'd into a state directory, on its
// own loopback port, run as an unprivileged user when we are root), both
// of Temporal's schemas brought to the server's version with Temporal's SQL
// tool, and the Temporal server built from the same release as the
// compose stack's image, started with the repository's server and dynamic
// configuration (deploy/temporal), with a namespace and hybridflow's search
// attributes. `make cluster` starts one that outlives the command
// (cmd/hybridflow-cluster); tests and the benchmark start one as child
// processes on free ports and can SIGKILL the server or crash PostgreSQL
// and start them again on the same state.
package cluster

import "time"

// Names of the binaries the Makefile builds into bin/ from the Temporal
// server module (go.temporal.io/server cmd/server and cmd/tools/sql).
const (
	ServerBinary  = "temporal-server"
	SQLToolBinary = "temporal-sql-tool"
	// ServerVersion is the release of both; the compose stack's images
	// carry the same one (a test in internal/deploytest checks it).
	ServerVersion = "1.29.1"
)

// Environment is the server configuration's name in ConfigDir: the
// server loads <ConfigDir>/<Environment>.yaml.
const Environment = "hybridflow"

// Files in a cluster's state directory.
const (
	pgDataDir    = "pg"
	passwordFile = "pg-password"
	PIDFile      = "temporal.pid"
	ServerLog    = "temporal.log"
	PostgresLog  = "postgres.log"
)

// DefaultPGUser is the operating-system account PostgreSQL runs as when
// this process is root (PostgreSQL refuses to run as root).
const DefaultPGUser = "hybridflow-pg"

// DBUser is the PostgreSQL role Temporal connects as (the cluster's
// superuser, as in the compose stack).
const DBUser = "temporal"

// Databases Temporal uses: persistence and visibility.
var Databases = []string{"temporal", "temporal_visibility"}

// Retention of the namespace the cluster creates (as the compose stack's
// temporal-init does).
const Retention = 30 * 24 * time.Hour

// Ports of one cluster; zero fields are picked free at Start.
type Ports struct {
	Postgres                              int
	Frontend, History, Matching, Worker   int
	FrontendMembership, HistoryMembership int
	MatchingMembership, WorkerMembership  int
}

func (p *Ports) fields() []*int {
	return []*int{&p.Postgres, &p.Frontend, &p.History, &p.Matching, &p.Worker,
		&p.FrontendMembership, &p.HistoryMembership, &p.MatchingMembership, &p.WorkerMembership}
}

// ServerArgs are temporal-server's arguments for the configuration in
// configDir (the compose stack runs the same, with its mount point).
func ServerArgs(configDir string) []string {
	return []string{"--root", configDir, "--config", ".", "--env", Environment, "--allow-no-auth", "start"}
}

// PortsFrom lays out a cluster's ports from the frontend's: the history,
// matching and worker services' gRPC ports follow it (frontend+1..+3) and
// the four membership ports are ten above those (frontend+10..+13).
func PortsFrom(frontend, postgres int) Ports {
	return Ports{
		Postgres: postgres,
		Frontend: frontend, History: frontend + 1, Matching: frontend + 2, Worker: frontend + 3,
		FrontendMembership: frontend + 10, HistoryMembership: frontend + 11,
		MatchingMembership: frontend + 12, WorkerMembership: frontend + 13,
	}
}
