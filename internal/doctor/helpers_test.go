package doctor_test

import (
	"go.temporal.io/sdk/client"

	"github.com/hybridflow/hybridflow/internal/temporalx"
)

func clientOpts(id string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{ID: id, TaskQueue: temporalx.CloudQueue}
}
