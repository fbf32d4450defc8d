package online_test

// Contract tests: the real client against the simulated InvokeCommand
// endpoint (internal/sim/exo.go), served by sim.Start over TLS on loopback.

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/exchange/online"
	"github.com/hybridflow/hybridflow/internal/sim"
)

const (
	tenantID = "5d6e7f80-1111-4222-8333-944455566677"
	otherID  = "aaaaaaaa-1111-4222-8333-944455566677"
	orgGUID  = "0c0c0c0c-2222-3333-4444-555555555555"
)

// tokenCred wraps the simulator's credential to record what the client
// asks for, and can hand out a token of another tenant or a foreign one.
type tokenCred struct {
	tenant string
	mu     sync.Mutex
	scopes []string
	calls  int
	raw    string // when set, returned verbatim instead of a simulator token
}

func (c *tokenCred) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	c.scopes = append(c.scopes, o.Scopes...)
	if c.raw != "" {
		return azcore.AccessToken{Token: c.raw, ExpiresOn: time.Now().Add(time.Hour)}, nil
	}
	return sim.StaticCredential(c.tenant).GetToken(ctx, o)
}

func newWorld() *sim.World {
	return &sim.World{Tenants: []*sim.Tenant{
		{
			ID: tenantID, DisplayName: "Contoso", Cloud: "global", InitialDomain: "contoso.onmicrosoft.com",
			Entra: sim.Entra{
				Domains:           []sim.Domain{{ID: "contoso.onmicrosoft.com", IsInitial: true, IsVerified: true}, {ID: "contoso.mail.onmicrosoft.com", IsVerified: true}, {ID: "contoso.com", IsVerified: true, IsDefault: true}},
				ServicePrincipals: []*sim.ServicePrincipal{{ID: "sp1", AppID: cloud.FirstPartyAppID}},
			},
			Online: sim.ExchangeOrg{OrganizationGUID: orgGUID, Mailboxes: []string{"bob@contoso.com"}},
			OnPrem: sim.ExchangeOrg{
				AcceptedDomains:    []sim.AcceptedDomain{{DomainName: "contoso.com", Default: true}},
				VirtualDirectories: []sim.VirtualDirectory{{Kind: "WebServices", Server: "EX1", ExternalURL: "https://mail.contoso.com/EWS/Exchange.asmx"}},
			},
		},
		{ID: otherID, DisplayName: "Other", Cloud: "global", InitialDomain: "other.onmicrosoft.com"},
	}}
}

type env struct {
	w    *sim.World
	srv  *sim.Servers
	cred *tokenCred
	c    *online.Client
	logs *observer.ObservedLogs
}

// setup starts the simulator's HTTPS server (the one the worker uses in
// simulate mode) and a client for the tenant pointed at it.
func setup(t *testing.T, w *sim.World, mod func(*online.Options)) *env {
	t.Helper()
	srv, err := sim.Start(context.Background(), w, sim.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	core, logs := observer.New(zapcore.DebugLevel)
	cred := &tokenCred{tenant: tenantID}
	opts := online.Options{
		Cloud: cloud.MustLookup("global"), TenantID: tenantID, Credential: cred,
		BaseURL: srv.BaseURL, HTTPClient: srv.Client, Logger: zap.New(core),
		RetryBackoff: 10 * time.Millisecond,
	}
	if mod != nil {
		mod(&opts)
	}
	return &env{w: w, srv: srv, cred: cred, c: online.New(opts), logs: logs}
}

func (e *env) exoCalls() int64 {
	tc := e.w.Stats().ByTenant[tenantID]
	if tc == nil {
		return 0
	}
	return tc.EXOCalls
}

func cmd(name string, params map[string]any) exchange.Command {
	return exchange.Command{Cmdlet: name, Parameters: params}
}

func TestEveryCmdlet(t *testing.T) {
	e := setup(t, newWorld(), nil)
	ctx := context.Background()
	steps := []struct {
		cmd   exchange.Command
		check func(t *testing.T, rows []exchange.Row)
	}{
		{cmd("New-IntraOrganizationConnector", map[string]any{"Name": "ExchangeHybridOnlineToOnPremises",
			"DiscoveryEndpoint": "https://mail.contoso.com/autodiscover/autodiscover.svc", "TargetAddressDomains": []string{"contoso.com"}}),
			func(t *testing.T, rows []exchange.Row) {
				if len(rows) != 1 || rows[0]["Name"] != "ExchangeHybridOnlineToOnPremises" || rows[0]["Enabled"] != true {
					t.Fatalf("%v", rows)
				}
			}},
		{cmd("Get-IntraOrganizationConnector", nil), func(t *testing.T, rows []exchange.Row) {
			if len(rows) != 1 || !reflect.DeepEqual(rows[0]["TargetAddressDomains"], []any{"contoso.com"}) {
				t.Fatalf("%v", rows)
			}
		}},
		{cmd("Set-IntraOrganizationConnector", map[string]any{"Identity": "ExchangeHybridOnlineToOnPremises", "Enabled": false}), func(t *testing.T, rows []exchange.Row) {
			if len(rows) != 0 {
				t.Fatalf("Set- emits nothing, got %v", rows)
			}
		}},
		{cmd("Get-IntraOrganizationConnector", map[string]any{"Identity": "ExchangeHybridOnlineToOnPremises"}), func(t *testing.T, rows []exchange.Row) {
			if len(rows) != 1 || rows[0]["Enabled"] != false {
				t.Fatalf("Set- not applied: %v", rows)
			}
		}},
		{cmd("Remove-IntraOrganizationConnector", map[string]any{"Identity": "ExchangeHybridOnlineToOnPremises", "Confirm": false}), func(t *testing.T, rows []exchange.Row) {
			if len(rows) != 0 {
				t.Fatalf("%v", rows)
			}
		}},
		{cmd("Get-IntraOrganizationConnector", nil), func(t *testing.T, rows []exchange.Row) {
			if rows == nil || len(rows) != 0 {
				t.Fatalf("want an empty, non-nil list, got %#v", rows)
			}
		}},
		{cmd("Get-OrganizationConfig", nil), func(t *testing.T, rows []exchange.Row) {
			if len(rows) != 1 || rows[0]["Guid"] != orgGUID {
				t.Fatalf("%v", rows)
			}
		}},
		{cmd("Get-AcceptedDomain", nil), func(t *testing.T, rows []exchange.Row) {
			if len(rows) != 3 {
				t.Fatalf("%v", rows)
			}
		}},
		{cmd("Get-IntraOrganizationConfiguration", nil), func(t *testing.T, rows []exchange.Row) {
			if len(rows) != 1 || rows[0]["OnlineTargetAddress"] != "contoso.mail.onmicrosoft.com" || !reflect.DeepEqual(rows[0]["OnPremiseTargetAddresses"], []any{"contoso.com"}) {
				t.Fatalf("%v", rows)
			}
		}},
		// A failed test is a row, not an error: this tenant has no SPNs.
		{cmd("Test-OAuthConnectivity", map[string]any{"Service": "EWS", "TargetUri": "https://mail.contoso.com/metadata/json/1", "Mailbox": "bob@contoso.com"}),
			func(t *testing.T, rows []exchange.Row) {
				if len(rows) != 1 || rows[0]["ResultType"] != sim.OAuthResultError {
					t.Fatalf("%v", rows)
				}
			}},
	}
	for i, s := range steps {
		t.Run(fmt.Sprintf("%d-%s", i, s.cmd.Cmdlet), func(t *testing.T) {
			rows, err := e.c.Run(ctx, s.cmd)
			if err != nil {
				t.Fatal(err)
			}
			s.check(t, rows)
		})
	}
	for _, s := range e.cred.scopes {
		if s != "https://outlook.office365.com/.default" {
			t.Fatalf("token asked for scope %q", s)
		}
	}
}

func TestPaging(t *testing.T) {
	w := newWorld()
	w.EXOPageSize = 2
	for i := range 6 {
		w.Tenants[0].Online.IntraOrganizationConnectors = append(w.Tenants[0].Online.IntraOrganizationConnectors,
			&sim.IntraOrgConnector{Name: fmt.Sprintf("C%d", i), DiscoveryEndpoint: "https://x.example/", TargetAddressDomains: []string{fmt.Sprintf("d%d.example", i)}})
	}
	e := setup(t, w, nil)
	rows, err := e.c.Run(context.Background(), cmd("Get-IntraOrganizationConnector", nil))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rows {
		names = append(names, r["Name"].(string))
	}
	if want := []string{"C0", "C1", "C2", "C3", "C4", "C5"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("rows %v, want %v", names, want)
	}
	if got := e.exoCalls(); got != 3 {
		t.Fatalf("%d requests, want 3 pages", got)
	}
}

func TestWarnings(t *testing.T) {
	w := newWorld()
	w.Tenants[0].Online.IntraOrganizationConnectors = []*sim.IntraOrgConnector{{Name: "IOC", DiscoveryEndpoint: "https://x.example/", TargetAddressDomains: []string{"contoso.com"}, Enabled: true}}
	e := setup(t, w, nil)
	noop := cmd("Set-IntraOrganizationConnector", map[string]any{"Identity": "IOC", "Enabled": true})
	reply, err := e.c.Invoke(context.Background(), noop)
	if err != nil {
		t.Fatal(err)
	}
	if len(reply.Warnings) != 1 || reply.Warnings[0] != "The command completed successfully but no settings of 'IOC' have been modified." {
		t.Fatalf("warnings %q", reply.Warnings)
	}
	if _, err := e.c.Run(context.Background(), noop); err != nil {
		t.Fatal(err)
	}
	logged := e.logs.FilterLevelExact(zapcore.WarnLevel).FilterField(zap.String("cmdlet", "Set-IntraOrganizationConnector")).Len()
	if logged != 1 {
		t.Fatalf("Run must log the warning once at warn level, logged %d", logged)
	}
}

func TestCmdletErrorsAreTypedByTypeName(t *testing.T) {
	w := newWorld()
	w.Tenants[0].Online.IntraOrganizationConnectors = []*sim.IntraOrgConnector{{Name: "IOC", DiscoveryEndpoint: "https://x.example/", TargetAddressDomains: []string{"contoso.com"}, Enabled: true}}
	e := setup(t, w, nil)
	newIOC := func(name, domain string) exchange.Command {
		return cmd("New-IntraOrganizationConnector", map[string]any{"Name": name, "DiscoveryEndpoint": "https://y.example/", "TargetAddressDomains": []string{domain}})
	}
	cases := []struct {
		name string
		cmd  exchange.Command
		typ  string
		is   func(error) bool
	}{
		{"not found", cmd("Get-IntraOrganizationConnector", map[string]any{"Identity": "nope"}), exchange.TypeNotFound, exchange.IsNotFound},
		{"duplicate name", newIOC("IOC", "fabrikam.com"), exchange.TypeAlreadyExists, exchange.IsAlreadyExists},
		{"duplicate domain", newIOC("Other", "contoso.com"), exchange.TypeDuplicateIOCDomain, nil},
		{"parameter binding", newIOC("Other", "not a domain"), exchange.TypeParameterBinding, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.c.Run(context.Background(), tc.cmd)
			var ce *exchange.Error
			if !errors.As(err, &ce) || ce.Type != tc.typ || ce.Cmdlet != tc.cmd.Cmdlet || ce.Message == "" {
				t.Fatalf("want *exchange.Error %s for %s, got %#v", tc.typ, tc.cmd.Cmdlet, err)
			}
			if tc.is != nil && !tc.is(err) {
				t.Fatalf("predicate does not recognise %v", err)
			}
			if exchange.Retryable(err) {
				t.Fatalf("%v must not be retryable", err)
			}
		})
	}
}

func TestAccessDenied(t *testing.T) {
	cases := []struct {
		name   string
		cred   func(c *tokenCred)
		status int
	}{
		{"token for another tenant", func(c *tokenCred) { c.tenant = otherID }, 403},
		{"token the service does not accept", func(c *tokenCred) { c.raw = "eyJ0eXAiOiJKV1QifQ.e30.sig" }, 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, newWorld(), nil)
			tc.cred(e.cred)
			_, err := e.c.Run(context.Background(), cmd("Get-OrganizationConfig", nil))
			var ad *online.AccessDeniedError
			if !errors.As(err, &ad) || ad.StatusCode != tc.status {
				t.Fatalf("want AccessDeniedError %d, got %v", tc.status, err)
			}
			if exchange.Retryable(err) || !exchange.HasType(err, exchange.TypeAccessDenied) {
				t.Fatalf("access denied must be typed and final: %v", err)
			}
			if tc.status == 401 && ad.Challenge == "" {
				t.Fatal("401 lost its WWW-Authenticate challenge")
			}
			if e.exoCalls() != 0 {
				t.Fatal("refused requests must not reach the organisation")
			}
		})
	}
}

func TestThrottledThenSuccess(t *testing.T) {
	t.Parallel()
	w := newWorld()
	w.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoEXO, Kind: sim.FaultThrottle, RetryAfter: time.Second, FailFirstN: 1}})
	e := setup(t, w, nil)
	start := time.Now()
	rows, err := e.c.Run(context.Background(), cmd("Get-OrganizationConfig", nil))
	if err != nil || len(rows) != 1 {
		t.Fatalf("%v %v", rows, err)
	}
	if el := time.Since(start); el < 950*time.Millisecond {
		t.Fatalf("Retry-After: 1 not honoured, call took %s", el)
	}
	if e.exoCalls() != 2 {
		t.Fatalf("%d requests, want 2", e.exoCalls())
	}
}

func TestThrottledLongerThanTheClientWaits(t *testing.T) {
	w := newWorld()
	w.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoEXO, Kind: sim.FaultThrottle, RetryAfter: 5 * time.Second, FailFirstN: 1}})
	e := setup(t, w, func(o *online.Options) { o.MaxRetryWait = time.Second })
	start := time.Now()
	_, err := e.c.Run(context.Background(), cmd("Get-OrganizationConfig", nil))
	var te *online.ThrottledError
	if !errors.As(err, &te) || te.StatusCode != 429 || te.RetryAfter != 5*time.Second || te.Attempts != 1 {
		t.Fatalf("want ThrottledError 429 after 1 attempt with RetryAfter 5s, got %#v", err)
	}
	if d, ok := online.RetryAfter(err); !ok || d != 5*time.Second {
		t.Fatalf("RetryAfter(err) = %s %v", d, ok)
	}
	if !exchange.Retryable(err) || !exchange.HasType(err, exchange.TypeThrottled) {
		t.Fatalf("throttling must be retryable and typed: %v", err)
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Fatal("the client must hand a long Retry-After to the caller instead of sleeping")
	}
}

func TestServerErrorsRetried(t *testing.T) {
	cases := []struct {
		name      string
		failFirst int
		attempts  int
		wantErr   bool
	}{
		{"two 503s then success", 2, 4, false},
		{"503 until attempts run out", 10, 3, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			w.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoEXO, Kind: sim.FaultServer, FailFirstN: tc.failFirst}})
			e := setup(t, w, func(o *online.Options) { o.MaxAttempts = tc.attempts })
			rows, err := e.c.Run(context.Background(), cmd("Get-OrganizationConfig", nil))
			wantCalls := int64(min(tc.failFirst+1, tc.attempts))
			if e.exoCalls() != wantCalls {
				t.Fatalf("%d requests, want %d", e.exoCalls(), wantCalls)
			}
			if !tc.wantErr {
				if err != nil || len(rows) != 1 {
					t.Fatalf("%v %v", rows, err)
				}
				return
			}
			var te *online.ThrottledError
			if !errors.As(err, &te) || te.StatusCode != 503 || te.Attempts != tc.attempts || te.RetryAfter != 0 {
				t.Fatalf("want ThrottledError 503 after %d attempts, got %#v", tc.attempts, err)
			}
			if !exchange.Retryable(err) || !exchange.HasType(err, exchange.TypeTransient) {
				t.Fatalf("503 must be transient: %v", err)
			}
		})
	}
}

func TestInjectedFailureKeepsItsType(t *testing.T) {
	w := newWorld()
	w.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoEXO, Kind: sim.FaultFail, ErrorType: exchange.TypeTransient, FailFirstN: 1}})
	e := setup(t, w, nil)
	_, err := e.c.Run(context.Background(), cmd("Get-AcceptedDomain", nil))
	if !exchange.HasType(err, exchange.TypeTransient) || !exchange.Retryable(err) {
		t.Fatalf("got %v", err)
	}
	if e.exoCalls() != 1 {
		t.Fatal("a cmdlet error is the cmdlet's answer; the client must not repeat it")
	}
}

func TestDroppedConnectionIsNotRepeated(t *testing.T) {
	w := newWorld()
	w.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoEXO, Kind: sim.FaultDrop, FailFirstN: 1}})
	e := setup(t, w, nil)
	_, err := e.c.Run(context.Background(), cmd("Remove-IntraOrganizationConnector", map[string]any{"Identity": "x"}))
	var ce *exchange.Error
	if err == nil || errors.As(err, &ce) {
		t.Fatalf("want a transport error, got %#v", err)
	}
	if !exchange.Retryable(err) {
		t.Fatal("transport errors are retryable by the activity")
	}
	if e.exoCalls() != 1 {
		t.Fatalf("%d requests: a write with an unknown outcome must not be resent blindly", e.exoCalls())
	}
}

func TestAllowListIsEnforcedClientSide(t *testing.T) {
	e := setup(t, newWorld(), nil)
	_, err := e.c.Run(context.Background(), cmd("Invoke-Expression", map[string]any{"Command": "whoami"}))
	if !exchange.HasType(err, exchange.TypeCmdletNotAllowed) {
		t.Fatalf("got %v", err)
	}
	if e.cred.calls != 0 || e.exoCalls() != 0 {
		t.Fatal("a refused cmdlet must not cost a token or a request")
	}
}

func TestRunBatch(t *testing.T) {
	e := setup(t, newWorld(), nil)
	results, err := e.c.RunBatch(context.Background(), []exchange.Command{
		cmd("Get-OrganizationConfig", nil),
		cmd("Get-IntraOrganizationConnector", map[string]any{"Identity": "nope"}),
		cmd("Get-IntraOrganizationConnector", nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 3 || len(results[0].Rows) != 1 || results[0].Error != nil ||
		!exchange.IsNotFound(results[1].Error) || results[2].Error != nil || results[2].Rows == nil {
		t.Fatalf("results %+v", results)
	}
	if e.exoCalls() != 3 {
		t.Fatalf("%d requests: InvokeCommand has no batch, one request per command", e.exoCalls())
	}

	e.cred.tenant = otherID
	results, err = e.c.RunBatch(context.Background(), []exchange.Command{cmd("Get-OrganizationConfig", nil), cmd("Get-AcceptedDomain", nil)})
	var ad *online.AccessDeniedError
	if !errors.As(err, &ad) || len(results) != 0 {
		t.Fatalf("access denied must stop the batch: %v %v", results, err)
	}
}
