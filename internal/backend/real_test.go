package backend

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/sim"
)

const (
	realTenant = "22222222-2222-4222-8222-000000000001"
	realApp    = "33333333-3333-4333-8333-0000000000c2"
)

// realAgainstSim starts the simulator's HTTPS endpoints for the small
// world, accepting one client secret, and returns a real backend whose
// endpoints block points at them; caFile says whether the simulator's CA
// is written to a file and named as endpoints.ca_file.
func realAgainstSim(t *testing.T, caFile bool) (*Backend, *sim.Servers) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w, err := sim.Load(filepath.Join("..", "..", "configs", "sim", "small.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	secret := "Hf8Q~c2-real-backend-" + fmt.Sprint(time.Now().UnixNano())
	srv, err := sim.Start(ctx, w, sim.ServerOptions{ClientSecrets: map[string]string{realApp: secret}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "client-secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := ""
	if caFile {
		path := filepath.Join(dir, "ca.pem")
		if err := os.WriteFile(path, srv.CAPEM(), 0o600); err != nil {
			t.Fatal(err)
		}
		ca = "  ca_file: " + path + "\n"
	}
	cfg, err := config.ParseWorkerConfig("real.yaml", fmt.Appendf(nil, `endpoints:
  authority_host: %s
  graph: %s
  exchange_online: %s
%scredentials:
  default:
    kind: client-secret
    client_id: %s
    secret: file:%s
`, srv.AuthorityHost(), srv.GraphURL(), srv.BaseURL, ca, realApp, secretFile), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	be, err := NewReal(cfg, zap.NewNop(), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(be.Close)
	return be, srv
}

// The real backend with an endpoints block reaches the simulator the way
// it would reach Microsoft: the client secret read from its file: reference,
// a token from the simulator's Entra endpoint through azidentity, then a
// Graph call through the msgraph client and a cmdlet through the Exchange
// Online client, all over TLS verified against endpoints.ca_file.
func TestRealBackendUsesEndpoints(t *testing.T) {
	be, srv := realAgainstSim(t, true)
	ctx := context.Background()
	target := Target{TenantID: realTenant, Cloud: "global"}
	g, err := be.Graph(target)
	if err != nil {
		t.Fatal(err)
	}
	org, err := g.Organization(ctx)
	if err != nil {
		t.Fatalf("Graph through the endpoints: %v", err)
	}
	if !strings.EqualFold(org.ID, realTenant) {
		t.Fatalf("organization %q, want the tenant %s", org.ID, realTenant)
	}
	exo, err := be.ExchangeOnline(target)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := exo.Run(ctx, exchange.Command{Cmdlet: "Get-AcceptedDomain"})
	if err != nil || len(rows) == 0 {
		t.Fatalf("Exchange Online through the endpoints: %d rows, %v", len(rows), err)
	}
	var grants int
	for _, g := range srv.TokenGrants() {
		if g.ClientID != realApp || g.TenantID != realTenant || g.Method != "client_secret" {
			t.Errorf("unexpected grant %+v", g)
		}
		grants++
	}
	if grants == 0 {
		t.Fatal("no token was requested from the configured authority")
	}
	t.Logf("organization %s (%s), %d accepted domains, %d token grants", org.DisplayName, org.ID, len(rows), grants)
}

// Without ca_file only the system roots are trusted, and the simulator's
// certificate is not signed by any of them: the first request fails in
// the TLS handshake, and the error says why.
func TestRealBackendWithoutCAFileFailsTLS(t *testing.T) {
	be, srv := realAgainstSim(t, false)
	g, err := be.Graph(Target{TenantID: realTenant, Cloud: "global"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.Organization(context.Background())
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("want a TLS verification failure, got %v", err)
	}
	if n := len(srv.TokenGrants()); n != 0 {
		t.Fatalf("%d tokens issued over an unverified connection", n)
	}
	t.Logf("error: %v", err)
}

func TestRealBackendCAFileProblems(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, want string }{
		{notPEM, "endpoints.ca_file: " + notPEM + " holds no PEM certificate"},
		{filepath.Join(dir, "missing.pem"), "endpoints.ca_file: open "},
	} {
		cfg := &config.WorkerConfig{Endpoints: &config.EndpointsConfig{AuthorityHost: "https://127.0.0.1:1/", Graph: "https://127.0.0.1:1/v1.0",
			ExchangeOnline: "https://127.0.0.1:1", CAFile: tc.file}}
		if _, err := NewReal(cfg, zap.NewNop(), nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ca_file %s: got %v, want %q", tc.file, err, tc.want)
		}
	}
}
