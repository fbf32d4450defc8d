package bench

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/cluster"
)

// StartDurableCluster starts the cluster (internal/cluster) in a new
// temporary directory on free ports: PostgreSQL and temporal-server with
// the repository's server and dynamic configuration.
func StartDurableCluster(ctx context.Context, logger *zap.Logger) (*Durable, error) {
	stateDir, err := os.MkdirTemp("", "rolloutbench-cluster-")
	if err != nil {
		return nil, err
	}
	// PostgreSQL's unprivileged user enters it.
	if err := os.Chmod(stateDir, 0o755); err != nil {
		_ = os.RemoveAll(stateDir)
		return nil, err
	}
	cl, err := cluster.Start(ctx, cluster.Options{Dir: stateDir})
	if err != nil {
		_ = os.RemoveAll(stateDir)
		return nil, err
	}
	stop := func() {
		_ = cl.Stop()
		_ = os.RemoveAll(stateDir)
	}
	d := &Durable{engine: EngineCluster, logger: logger, closeEngine: stop,
		serverCPU:     func() time.Duration { s, _ := cl.CPU(); return s },
		postgresCPU:   func() time.Duration { _, p := cl.CPU(); return p },
		serverPeakRSS: func() int64 { return statusKB(fmt.Sprintf("/proc/%d/status", cl.ServerPID()), "VmHWM:") * 1024 }}
	if err := d.connect(cl.HostPort(), cl.Namespace()); err != nil {
		stop()
		return nil, err
	}
	shards := 0
	if info, err := d.c.WorkflowService().GetClusterInfo(ctx, &workflowservice.GetClusterInfoRequest{}); err == nil {
		shards = int(info.GetHistoryShardCount())
	}
	d.describe = fmt.Sprintf("temporal-server %s on %s (%d history shards), deploy/temporal's configuration and dynamic config",
		cluster.ServerVersion, cl.PostgresVersion(), shards)
	return d, nil
}
