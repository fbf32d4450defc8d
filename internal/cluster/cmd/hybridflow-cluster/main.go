//go:build linux

// Command hybridflow-cluster starts and stops the PostgreSQL-backed
// Temporal cluster of `make cluster` (internal/cluster) in a state
// directory, detached so that it outlives the command:
//
//	hybridflow-cluster start --dir .data/cluster --port 7333 --pg-port 5499
//	hybridflow-cluster stop --dir .data/cluster
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/hybridflow/hybridflow/internal/cluster"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "start":
		err = start(os.Args[2:])
	case "stop":
		err = stop(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hybridflow-cluster:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: hybridflow-cluster start|stop --dir DIR [flags]")
	os.Exit(2)
}

func start(args []string) error {
	fs := flag.NewFlagSet("start", flag.ExitOnError)
	dir := fs.String("dir", "", "state directory (PostgreSQL's data, logs, PID file)")
	port := fs.Int("port", 7333, "the frontend's port; the other services use the next 3 and 10-13 above it")
	pgPort := fs.Int("pg-port", 5499, "PostgreSQL's port")
	ns := fs.String("namespace", "default", "namespace to create with hybridflow's search attributes")
	configDir := fs.String("config-dir", "", "directory of hybridflow.yaml and dynamicconfig.yaml (default: the repository's deploy/temporal)")
	binDir := fs.String("bin-dir", "", "directory of temporal-server and temporal-sql-tool (default: the repository's bin/)")
	pgUser := fs.String("pg-user", cluster.DefaultPGUser, "unprivileged user PostgreSQL runs as when started by root (created if missing)")
	timeout := fs.Duration("timeout", 3*time.Minute, "give up after this long")
	_ = fs.Parse(args)
	if *dir == "" {
		return fmt.Errorf("start: --dir is required")
	}
	r := cluster.FindRunning(*dir)
	if r.Server > 0 && r.Postgres > 0 {
		fmt.Printf("cluster already running (temporal-server pid %d, PostgreSQL pid %d) at 127.0.0.1:%d\n", r.Server, r.Postgres, *port)
		return nil
	}
	if r.Server > 0 || r.Postgres > 0 {
		// Half a cluster (one of them crashed): start both afresh.
		msgs, err := cluster.StopDetached(*dir)
		for _, m := range msgs {
			fmt.Println(m)
		}
		if err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	began := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{
		Dir: *dir, Ports: cluster.PortsFrom(*port, *pgPort), Namespace: *ns,
		ConfigDir: *configDir, BinDir: *binDir, PGUser: *pgUser,
		Detach: true, Progress: os.Stdout,
	})
	if err != nil {
		return err
	}
	fmt.Printf("cluster ready in %s: Temporal %s at %s (namespace %s), PostgreSQL pid %d on 127.0.0.1:%d, temporal-server pid %d; logs in %s\n",
		time.Since(began).Round(100*time.Millisecond), cluster.ServerVersion, c.HostPort(), c.Namespace(), c.PostgresPID(), *pgPort, c.ServerPID(), c.Dir())
	c.Release()
	return nil
}

func stop(args []string) error {
	fs := flag.NewFlagSet("stop", flag.ExitOnError)
	dir := fs.String("dir", "", "state directory")
	_ = fs.Parse(args)
	if *dir == "" {
		return fmt.Errorf("stop: --dir is required")
	}
	msgs, err := cluster.StopDetached(*dir)
	for _, m := range msgs {
		fmt.Println(m)
	}
	return err
}
