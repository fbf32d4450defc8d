// Package metrics is hybridflow's Prometheus instrumentation: the product
// metrics (steps by outcome, calls to Graph / Exchange Online / PowerShell
// by latency and error type, throttling, tenants by state), the Temporal
// SDK's own metrics through tally (sdk.go), and the worker's HTTP endpoint
// with /metrics, /healthz and /readyz (server.go).
//
// Activities and clients record through the package functions
// (ObserveCall, ObserveStep, ObserveThrottle), which write to Default; a
// process that never serves metrics pays only for in-memory counters.
package metrics

import (
	"context"
	"errors"
	"net"
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.temporal.io/sdk/temporal"

	"github.com/hybridflow/hybridflow/internal/exchange"
)

// Systems hybridflow calls; the "system" label of the call metrics.
const (
	SystemGraph          = "graph"           // Microsoft Graph (Entra)
	SystemExchangeOnline = "exchange_online" // Exchange Online InvokeCommand REST
	SystemPowerShell     = "powershell"      // on-prem Exchange PowerShell host
	SystemLync           = "lync"            // Lync / Skype for Business PowerShell host
)

// Outcomes of ObserveStep besides the activities' own (unchanged, created,
// updated, removed).
const (
	OutcomeFailed    = "failed"
	OutcomeCompleted = "completed" // an activity whose result has no Outcome
)

// Metric names, for dashboards, alerts and the README.
const (
	NameSteps          = "hybridflow_steps_total"
	NameStepDuration   = "hybridflow_step_duration_seconds"
	NameCallDuration   = "hybridflow_call_duration_seconds"
	NameCallErrors     = "hybridflow_call_errors_total"
	NameThrottled      = "hybridflow_throttled_total"
	NameThrottleWait   = "hybridflow_throttle_wait_seconds"
	NameTenants        = "hybridflow_tenants"
	NameTenantsErrors  = "hybridflow_tenants_query_errors_total"
	NameWorkerReady    = "hybridflow_worker_ready"
	maxLabelLen        = 80
	defaultTenantCache = 15 * time.Second
)

// Metrics holds the product metrics and the registry they, the SDK's
// metrics and the Go runtime's are exposed from.
type Metrics struct {
	reg          *prometheus.Registry
	steps        *prometheus.CounterVec
	stepDuration *prometheus.HistogramVec
	callDuration *prometheus.HistogramVec
	callErrors   *prometheus.CounterVec
	throttled    *prometheus.CounterVec
	throttleWait *prometheus.HistogramVec
	ready        prometheus.Gauge
}

// callBuckets cover a fast Graph GET (tens of ms) to a slow PowerShell
// cmdlet (a minute and more).
var callBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}

// New builds the metrics on their own registry (with Go runtime and
// process collectors).
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameSteps,
			Help: "Step activity attempts by activity (step) and outcome: unchanged, created, updated, removed, completed (no outcome reported) or failed."},
			[]string{"step", "outcome"}),
		stepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: NameStepDuration,
			Help: "Duration of step activity attempts.", Buckets: callBuckets}, []string{"step"}),
		callDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: NameCallDuration,
			Help: "Latency of calls to Microsoft Graph, Exchange Online and PowerShell hosts, failed calls included.", Buckets: callBuckets},
			[]string{"system", "operation"}),
		callErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameCallErrors,
			Help: "Failed calls by system, operation and error type (HTTP status, Exchange exception type, timeout, network)."},
			[]string{"system", "operation", "error_type"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameThrottled,
			Help: "Throttling refusals (HTTP 429/503, Exchange throttling errors) by system."}, []string{"system"}),
		throttleWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: NameThrottleWait,
			Help:    "Waits the services asked for with Retry-After; the sum is the total time throttling cost.",
			Buckets: []float64{.5, 1, 2, 5, 10, 30, 60, 150, 300}}, []string{"system"}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{Name: NameWorkerReady,
			Help: "1 once every worker of this process polls its task queue, 0 before and while stopping."}),
	}
	reg.MustRegister(m.steps, m.stepDuration, m.callDuration, m.callErrors, m.throttled, m.throttleWait, m.ready,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Default is what the package functions record into and what the worker
// exposes.
var Default = New()

// Registry is where every metric of m is registered; add collectors here.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveCall records one call: its latency and, when err is not nil, an
// error of ErrorType(err). op should be bounded (a cmdlet name, a method
// and path template), never an ID.
func (m *Metrics) ObserveCall(system, op string, d time.Duration, err error) {
	op = clip(op)
	m.callDuration.WithLabelValues(system, op).Observe(d.Seconds())
	if err != nil {
		m.callErrors.WithLabelValues(system, op, ErrorType(err)).Inc()
	}
}

// ObserveCallError records a failed call whose failure is already
// classified (an HTTP status such as "http_429").
func (m *Metrics) ObserveCallError(system, op, errorType string, d time.Duration) {
	op = clip(op)
	m.callDuration.WithLabelValues(system, op).Observe(d.Seconds())
	m.callErrors.WithLabelValues(system, op, clip(errorType)).Inc()
}

// ObserveError counts a failure without a latency of its own (one
// command of a batch whose round trip ObserveCall already timed).
func (m *Metrics) ObserveError(system, op, errorType string) {
	m.callErrors.WithLabelValues(system, clip(op), clip(errorType)).Inc()
}

// ObserveStep records one step activity attempt.
func (m *Metrics) ObserveStep(step, outcome string, d time.Duration) {
	m.steps.WithLabelValues(clip(step), clip(outcome)).Inc()
	m.stepDuration.WithLabelValues(clip(step)).Observe(d.Seconds())
}

// ObserveThrottle records a throttling refusal and the wait it asked for
// (0 when the service gave no Retry-After).
func (m *Metrics) ObserveThrottle(system string, wait time.Duration) {
	m.throttled.WithLabelValues(system).Inc()
	if wait > 0 {
		m.throttleWait.WithLabelValues(system).Observe(wait.Seconds())
	}
}

// SetReady sets hybridflow_worker_ready.
func (m *Metrics) SetReady(ready bool) {
	if ready {
		m.ready.Set(1)
	} else {
		m.ready.Set(0)
	}
}

// ObserveCall records a call into Default.
func ObserveCall(system, op string, d time.Duration, err error) {
	Default.ObserveCall(system, op, d, err)
}

// ObserveStep records a step attempt into Default.
func ObserveStep(step, outcome string, d time.Duration) { Default.ObserveStep(step, outcome, d) }

// ObserveThrottle records a throttling refusal into Default.
func ObserveThrottle(system string, wait time.Duration) { Default.ObserveThrottle(system, wait) }

var (
	classifiersMu sync.RWMutex
	classifiers   []func(error) string
)

// RegisterErrorClassifier adds a classifier ErrorType consults before its
// fallback; it returns "" for errors it does not know. Packages with their
// own error types (Graph) register one, so this package needs no import
// of them.
func RegisterErrorClassifier(f func(error) string) {
	classifiersMu.Lock()
	defer classifiersMu.Unlock()
	classifiers = append(classifiers, f)
}

// ErrorType classifies an error into a bounded label: the Exchange
// exception's short type name, a Temporal application error's type, what
// a registered classifier says, "timeout", "canceled", "network", or
// "other". Never the message: messages carry names and unbounded text.
func ErrorType(err error) string {
	if err == nil {
		return ""
	}
	var xe *exchange.Error
	if errors.As(err, &xe) && xe.Type != "" {
		return clip(exchange.ShortType(xe.Type))
	}
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.Type() != "" {
		return clip(ae.Type())
	}
	classifiersMu.RLock()
	cs := classifiers
	classifiersMu.RUnlock()
	for _, c := range cs {
		if t := c(err); t != "" {
			return clip(t)
		}
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &ne):
		return "network"
	}
	return "other"
}

var labelRE = regexp.MustCompile(`[^A-Za-z0-9_./ :-]`)

// clip keeps label values short and printable.
func clip(s string) string {
	s = labelRE.ReplaceAllString(s, "_")
	if len(s) > maxLabelLen {
		s = s[:maxLabelLen]
	}
	return s
}
