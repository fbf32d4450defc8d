//go:build !linux

package bench

import (
	"context"
	"errors"

	"go.uber.org/zap"
)

// StartDurableCluster needs Linux: the cluster's processes are managed
// through /proc and Linux process attributes (internal/cluster).
func StartDurableCluster(ctx context.Context, logger *zap.Logger) (*Durable, error) {
	return nil, errors.New("bench: the cluster engine runs on Linux only")
}
