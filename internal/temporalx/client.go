package temporalx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/logging"
)

// ClientOptions turns the Temporal section of the config into SDK options.
// It never assumes the dev server: TLS, mTLS and API keys (Temporal Cloud)
// come from configuration, and the API key is resolved from its reference
// here, at the edge, so it never travels further.
func ClientOptions(cfg config.TemporalConfig, logger *zap.Logger, getenv func(string) string) (client.Options, error) {
	opts := client.Options{
		HostPort:  cfg.Address,
		Namespace: cfg.Namespace,
		Identity:  cfg.Identity,
	}
	var why string
	opts.ConnectionOptions.GrpcCompression, why = Compression(cfg)
	if logger != nil {
		opts.Logger = logging.NewTemporal(logger.Named("temporal"))
		logger.Debug("temporal client", zap.String("address", cfg.Address), zap.String("grpc_compression", why))
	}
	if cfg.TLS != nil {
		tc, err := TLSConfig(*cfg.TLS)
		if err != nil {
			return client.Options{}, err
		}
		opts.ConnectionOptions.TLS = tc
	}
	if cfg.APIKey != "" {
		key, err := config.ResolveSecret(cfg.APIKey, getenv)
		if err != nil {
			return client.Options{}, fmt.Errorf("temporal.api_key: %w", err)
		}
		opts.Credentials = client.NewAPIKeyStaticCredentials(strings.TrimSpace(key))
		if opts.ConnectionOptions.TLS == nil {
			// Temporal Cloud only accepts API keys over TLS.
			opts.ConnectionOptions.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	}
	if err := applyCodec(&opts, cfg, getenv); err != nil {
		return client.Options{}, fmt.Errorf("temporal.codec: %w", err)
	}
	return opts, nil
}

// TLSConfig builds the client TLS configuration: a private CA when one is
// named, and a client certificate for mTLS when both halves are named.
func TLSConfig(c config.TLSConfig) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("temporal.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("temporal.tls.ca_file %s: no PEM certificate found", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" || c.KeyFile != "" {
		if c.CertFile == "" || c.KeyFile == "" {
			return nil, fmt.Errorf("temporal.tls: cert_file and key_file go together for mTLS")
		}
		pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("temporal.tls client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// Dial connects to Temporal with the configured options. The SDK dials
// lazily; Dial checks health so a wrong address fails here, with a message
// that says what to do, instead of on the first workflow call.
func Dial(ctx context.Context, cfg config.TemporalConfig, logger *zap.Logger, getenv func(string) string, extra ...Option) (client.Client, error) {
	opts, err := ClientOptions(cfg, logger, getenv)
	if err != nil {
		return nil, err
	}
	for _, o := range extra {
		o(&opts)
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w — is the server running? (`make server` starts the local dev server)", cfg.Address, cfg.Namespace, err)
	}
	return c, nil
}
