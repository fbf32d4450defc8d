package temporalx

import (
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"

	"github.com/hybridflow/hybridflow/internal/codec"
	"github.com/hybridflow/hybridflow/internal/config"
)

// Option adjusts client options beyond configuration (the worker's metrics
// handler and interceptors).
type Option func(*client.Options)

// WithMetricsHandler reports the SDK's metrics (internal/metrics).
func WithMetricsHandler(h client.MetricsHandler) Option {
	return func(o *client.Options) { o.MetricsHandler = h }
}

// WithInterceptors adds client interceptors; those that are also worker
// interceptors apply to every worker built on the client.
func WithInterceptors(is ...interceptor.ClientInterceptor) Option {
	return func(o *client.Options) { o.Interceptors = append(o.Interceptors, is...) }
}

// applyCodec encrypts every payload when temporal.codec is configured: the
// data converter seals inputs, results, queries, updates and heartbeats,
// and the failure converter moves error messages and stack traces into an
// encrypted payload too (they often name domains and hosts). Workers and
// the CLI share this, so whatever one writes the other reads.
func applyCodec(opts *client.Options, cfg config.TemporalConfig, getenv func(string) string) error {
	dc, err := DataConverter(cfg, getenv)
	if err != nil || dc == converter.GetDefaultDataConverter() {
		return err // no codec configured: keep the SDK's converters
	}
	opts.DataConverter = dc
	// Temporal's default failure converter over dc, except that a payload
	// refused for not being sealed fails its task for good.
	opts.FailureConverter = codec.FailureConverter(dc)
	return nil
}

// DataConverter is the converter of a client dialled with cfg (the codec's
// when one is configured), for payloads the SDK hands back undecoded, such
// as a schedule's workflow arguments.
func DataConverter(cfg config.TemporalConfig, getenv func(string) string) (converter.DataConverter, error) {
	c, err := codec.FromConfig(cfg.Codec, getenv)
	if err != nil || c == nil {
		return converter.GetDefaultDataConverter(), err
	}
	return codec.DataConverter(c), nil
}
