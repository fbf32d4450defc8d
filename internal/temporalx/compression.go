package temporalx

import (
	"net"
	"strings"

	"go.temporal.io/sdk/client"

	"github.com/hybridflow/hybridflow/internal/config"
)

// Compression decides the gRPC compression of the connection to Temporal
// (temporal.grpc_compression) and says why. The SDK gzips every request
// by default, and the server then gzips its replies: worth it on a WAN
// link to Temporal Cloud, pure CPU on loopback (perf on the rollout bench:
// ~6% of the worker's CPU and ~2% of the dev server's). "auto" (the
// default) therefore compresses unless the server's address is loopback.
func Compression(cfg config.TemporalConfig) (client.GrpcCompression, string) {
	switch cfg.GRPCCompression {
	case "gzip":
		return &client.GrpcCompressionGzip{}, "gzip (temporal.grpc_compression)"
	case "none":
		return &client.GrpcCompressionNone{}, "none (temporal.grpc_compression)"
	}
	if isLoopback(cfg.Address) {
		return &client.GrpcCompressionNone{}, "none: " + cfg.Address + " is a loopback address (temporal.grpc_compression auto)"
	}
	return &client.GrpcCompressionGzip{}, "gzip: " + cfg.Address + " is not a loopback address (temporal.grpc_compression auto)"
}

// isLoopback: localhost, 127.0.0.0/8 or ::1, with or without a port.
func isLoopback(address string) bool {
	host := address
	if h, _, err := net.SplitHostPort(address); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
