package metrics

import (
	"io"
	"time"

	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"
)

// TemporalHandler returns a Temporal SDK metrics handler that reports into
// m's registry (temporal_request, temporal_workflow_task_*,
// temporal_activity_execution_latency, temporal_worker_task_slots_*, ...),
// named as every Temporal SDK names them for Prometheus. Close the
// returned closer after the client to flush the last report.
func (m *Metrics) TemporalHandler(onError func(error)) (client.MetricsHandler, io.Closer) {
	if onError == nil {
		onError = func(error) {}
	}
	reporter := tallyprom.NewReporter(tallyprom.Options{
		Registerer:       m.reg,
		Gatherer:         m.reg,
		DefaultTimerType: tallyprom.HistogramTimerType,
		OnRegisterError:  onError,
	})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &sdktally.PrometheusSanitizeOptions,
	}, time.Second)
	return sdktally.NewMetricsHandler(sdktally.NewPrometheusNamingScope(scope)), closer
}
