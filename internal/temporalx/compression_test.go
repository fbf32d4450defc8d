package temporalx

import (
	"strings"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/hybridflow/hybridflow/internal/config"
)

func TestCompression(t *testing.T) {
	cases := []struct {
		address, setting string
		gzip             bool
		reason           string
	}{
		{"127.0.0.1:7233", "", false, "loopback"},
		{"127.0.0.1:7233", "auto", false, "loopback"},
		{"127.5.6.7:7233", "", false, "loopback"},
		{"localhost:7233", "", false, "loopback"},
		{"LOCALHOST:7233", "", false, "loopback"},
		{"[::1]:7233", "", false, "loopback"},
		{"temporal:7233", "", true, "not a loopback"},
		{"x.tmprl.cloud:7233", "", true, "not a loopback"},
		{"10.0.0.5:7233", "", true, "not a loopback"},
		{"[2001:db8::1]:7233", "", true, "not a loopback"},
		{"127.0.0.1:7233", "gzip", true, "grpc_compression"},
		{"x.tmprl.cloud:7233", "none", false, "grpc_compression"},
	}
	for _, c := range cases {
		got, why := Compression(config.TemporalConfig{Address: c.address, GRPCCompression: c.setting})
		_, isGzip := got.(*client.GrpcCompressionGzip)
		if _, isNone := got.(*client.GrpcCompressionNone); isGzip == isNone {
			t.Fatalf("%s %q: %T is neither gzip nor none", c.address, c.setting, got)
		}
		if isGzip != c.gzip || !strings.Contains(why, c.reason) {
			t.Errorf("%s %q: gzip %v (%s), want gzip %v (%s)", c.address, c.setting, isGzip, why, c.gzip, c.reason)
		}
	}
}
