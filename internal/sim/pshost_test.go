package sim_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/exchange/shell"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// The test binary doubles as the simulated host: with sim.HostEnv set it
// runs the relay and exits before any test starts. An init (not TestMain)
// so that other test files of this package stay free to add a TestMain.
func init() { sim.MaybeRunHost() }

// psServed is a world behind a shell server on loopback.
type psServed struct {
	w    *sim.World
	addr string
}

func psServe(t *testing.T, w *sim.World) *psServed {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sim.ServeShell(l, w) }()
	t.Cleanup(func() {
		_ = l.Close()
		if err := <-done; err != nil {
			t.Errorf("ServeShell: %v", err)
		}
	})
	return &psServed{w: w, addr: l.Addr().String()}
}

func psHostArgv(t *testing.T, s *psServed, side sim.Side, tenant string) ([]string, []string) {
	t.Helper()
	argv, env, err := sim.HostCommand(s.addr, side, tenant)
	if err != nil {
		t.Fatal(err)
	}
	// -test.run=^$: should the relay hook ever be missing, the binary runs
	// no tests instead of all of them. GORACE: the race runtime would sleep
	// a second at every relay's exit.
	return append(argv, "-test.run=^$"), append(env, "GORACE=atexit_sleep_ms=0")
}

func (s *psServed) shell(t *testing.T, side sim.Side, tenant string, mutate ...func(*shell.Options)) *shell.Shell {
	t.Helper()
	argv, env := psHostArgv(t, s, side, tenant)
	o := shell.Options{Argv: argv, Env: env, Name: tenant, CallTimeout: 20 * time.Second, StartTimeout: 20 * time.Second}
	for _, m := range mutate {
		m(&o)
	}
	sh := shell.New(o)
	t.Cleanup(func() { _ = sh.Close() })
	return sh
}

func psRun(t *testing.T, sh exchange.Runner, c exchange.Command) []exchange.Row {
	t.Helper()
	rows, err := sh.Run(context.Background(), c)
	if err != nil {
		t.Fatalf("%s: %v", c.Cmdlet, err)
	}
	return rows
}

func psCommand(name string, kv ...any) exchange.Command {
	p := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		p[kv[i].(string)] = kv[i+1]
	}
	return exchange.Command{Cmdlet: name, Parameters: p}
}

// wire is what JSON makes of a value: rows read straight from the engine
// must equal rows that crossed client, relay and server.
func psWire(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestContractEveryCmdletRoundTrips drives the documented procedure
// (the documented steps, the setting override, the auth certificate, Lync) through the real client and the relay process,
// and compares every read with what the engine itself answers.
func TestContractEveryCmdletRoundTrips(t *testing.T) {
	w := sim.NewShellTestWorld()
	s := psServe(t, w)
	global := cloud.MustLookup("global")
	next := ""
	effective := sim.ShellTestNow.AddDate(0, 0, 30)

	steps := []struct {
		side  sim.Side
		cmd   exchange.Command
		check func(t *testing.T, rows []exchange.Row)
	}{
		{sim.OnPrem, psCommand("Get-OrganizationConfig"), nil},
		{sim.OnPrem, psCommand("Get-AcceptedDomain"), nil},
		{sim.OnPrem, psCommand("Get-WebServicesVirtualDirectory", "ADPropertiesOnly", true), nil},
		{sim.OnPrem, psCommand("Get-MapiVirtualDirectory"), nil},
		{sim.OnPrem, psCommand("Get-OABVirtualDirectory"), nil},
		{sim.OnPrem, psCommand("Get-AutodiscoverVirtualDirectory"), nil},
		{sim.OnPrem, psCommand("Get-ExchangeServer"), func(t *testing.T, rows []exchange.Row) {
			if _, _, _, _, err := exchange.ParseAdminDisplayVersion(rows[1]["AdminDisplayVersion"].(string)); err != nil {
				t.Fatal(err)
			}
		}},
		{sim.OnPrem, psCommand("Get-IntraOrganizationConfiguration"), nil},
		{sim.OnPrem, psCommand("New-AuthServer", "Name", "WindowsAzureACS", "AuthMetadataUrl", global.ACSMetadataURL("contoso.onmicrosoft.com")), nil},
		{sim.OnPrem, psCommand("New-AuthServer", "Name", "evoSTS", "Type", "AzureAD", "AuthMetadataUrl", global.EvoSTSMetadataURL("contoso.onmicrosoft.com")), nil},
		{sim.OnPrem, psCommand("Get-AuthServer"), func(t *testing.T, rows []exchange.Row) {
			if len(rows) != 2 {
				t.Fatalf("%v", rows)
			}
		}},
		{sim.OnPrem, psCommand("Set-AuthServer", "Identity", "evoSTS", "ApplicationIdentifier", "11111111-2222-3333-4444-555555555555", "DomainName", []string{"contoso.com"}), nil},
		{sim.OnPrem, psCommand("Get-PartnerApplication"), nil},
		{sim.OnPrem, psCommand("Set-PartnerApplication", "Identity", "Exchange Online", "Enabled", true), nil},
		{sim.OnPrem, psCommand("Get-AuthConfig"), nil},
		{sim.OnPrem, psCommand("Get-ExchangeCertificate"), nil},
		{sim.OnPrem, psCommand("New-ExchangeCertificate", "KeySize", 2048, "PrivateKeyExportable", true, "SubjectName", "cn="+sim.AuthCertificateSubject, "DomainName", []string{}, "Services", "SMTP"),
			func(t *testing.T, rows []exchange.Row) { next = rows[0]["Thumbprint"].(string) }},
		{sim.OnPrem, exchange.Command{Cmdlet: "Set-AuthConfig"}, nil}, // filled in below, once next is known
		{sim.OnPrem, psCommand("Set-AuthConfig", "PublishCertificate", true), nil},
		{sim.OnPrem, psCommand("Set-AuthConfig", "ClearPreviousCertificate", true), nil},
		{sim.OnPrem, psCommand("Get-AuthConfig"), func(t *testing.T, rows []exchange.Row) {
			if rows[0]["CurrentCertificateThumbprint"] != next || rows[0]["PreviousCertificateThumbprint"] != "" {
				t.Fatalf("%v", rows[0])
			}
		}},
		{sim.OnPrem, psCommand("New-IntraOrganizationConnector", "Name", "ExchangeHybridOnPremisesToOnline", "DiscoveryEndpoint", global.AutodiscoverURL(), "TargetAddressDomains", "contoso.mail.onmicrosoft.com"), nil},
		{sim.OnPrem, psCommand("Set-IntraOrganizationConnector", "Identity", "ExchangeHybridOnPremisesToOnline", "Enabled", false), nil},
		{sim.OnPrem, psCommand("Get-IntraOrganizationConnector"), nil},
		{sim.OnPrem, psCommand("Remove-IntraOrganizationConnector", "Identity", "ExchangeHybridOnPremisesToOnline"), nil},
		{sim.OnPrem, psCommand("Add-AvailabilityAddressSpace", "AccessMethod", "InternalProxy", "ProxyUrl", "https://mail.contoso.com/EWS/Exchange.asmx", "ForestName", "contoso.mail.onmicrosoft.com", "UseServiceAccount", true), nil},
		{sim.OnPrem, psCommand("Get-AvailabilityAddressSpace"), nil},
		{sim.OnPrem, psCommand("Remove-AvailabilityAddressSpace", "Identity", "contoso.mail.onmicrosoft.com"), nil},
		{sim.OnPrem, psCommand("New-SettingOverride", "Name", "EnableExchangeHybrid3PAppFeature", "Component", "Global", "Section", "ExchangeOnpremAsThirdPartyAppId", "Parameters", []string{"Enabled=true"}, "Reason", "test"), nil},
		{sim.OnPrem, psCommand("Get-SettingOverride"), nil},
		{sim.OnPrem, psCommand("Get-ExchangeDiagnosticInfo", "Process", "Microsoft.Exchange.Directory.TopologyService", "Component", "VariantConfiguration", "Argument", "Refresh"), nil},
		{sim.OnPrem, psCommand("Remove-SettingOverride", "Identity", "EnableExchangeHybrid3PAppFeature"), nil},
		{sim.OnPrem, psCommand("Remove-AuthServer", "Identity", "WindowsAzureACS"), nil},
		{sim.OnPrem, psCommand("Get-Mailbox", "ResultSize", 1), func(t *testing.T, rows []exchange.Row) {
			if len(rows) != 1 || rows[0]["PrimarySmtpAddress"] == "" {
				t.Fatalf("Get-Mailbox -ResultSize 1: %v", rows)
			}
		}},
		{sim.Lync, psCommand("Get-CsAccessEdgeConfiguration"), nil},
		{sim.Lync, psCommand("Set-CsAccessEdgeConfiguration", "AllowFederatedUsers", true), nil},
		{sim.Lync, psCommand("New-CsHostingProvider", "Identity", "Exchange Online", "Enabled", true, "EnabledSharedAddressSpace", true, "HostsOCSUsers", false,
			"ProxyFqdn", global.LyncProxyFqdn, "IsLocal", false, "VerificationLevel", "UseSourceVerification"), nil},
		{sim.Lync, psCommand("Set-CsHostingProvider", "Identity", "Exchange Online", "Enabled", true, "VerificationLevel", "AlwaysVerifiable"), nil},
		{sim.Lync, psCommand("Get-CsManagementStoreReplicationStatus"), nil},
		{sim.Lync, psCommand("Get-CsExternalAccessPolicy"), nil},
		{sim.Lync, psCommand("Get-CsHostingProvider"), nil},
		{sim.Lync, psCommand("Remove-CsHostingProvider", "Identity", "Exchange Online"), nil},
	}

	shells := map[sim.Side]*shell.Shell{sim.OnPrem: s.shell(t, sim.OnPrem, sim.ShellTestTenant), sim.Lync: s.shell(t, sim.Lync, sim.ShellTestTenant)}
	covered := map[string]bool{}
	for _, st := range steps {
		c := st.cmd
		if c.Cmdlet == "Set-AuthConfig" && c.Parameters == nil {
			c = psCommand("Set-AuthConfig", "NewCertificateThumbprint", next, "NewCertificateEffectiveDate", effective)
		}
		rows := psRun(t, shells[st.side], c)
		covered[strings.ToLower(string(st.side)+"/"+c.Cmdlet)] = true
		if st.check != nil {
			st.check(t, rows)
		}
		// Reads that do not change state must equal the engine's own answer.
		if strings.HasPrefix(c.Cmdlet, "Get-") && c.Cmdlet != "Get-ExchangeDiagnosticInfo" && c.Cmdlet != "Get-CsManagementStoreReplicationStatus" {
			direct, err := w.Invoke(st.side, sim.ShellTestTenant, c)
			if err != nil {
				t.Fatalf("direct %s: %v", c.Cmdlet, err)
			}
			if got, want := psWire(t, rows), psWire(t, direct); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s through the host differs from the engine:\nhost:   %v\nengine: %v", c.Cmdlet, got, want)
			}
		}
	}
	for _, side := range []sim.Side{sim.OnPrem, sim.Lync} {
		for _, name := range sim.Cmdlets(side) {
			if name == "test-oauthconnectivity" { // oauth.go's, tested there
				continue
			}
			if !covered[string(side)+"/"+name] {
				t.Errorf("%s cmdlet %s has no round-trip step", side, name)
			}
		}
	}
	var ten *sim.Tenant
	w.View(sim.ShellTestTenant, func(x *sim.Tenant) { ten = x })
	if !ten.OnPrem.PartnerApplications[0].Enabled || ten.OnPrem.AuthServers[0].ApplicationIdentifier != "11111111-2222-3333-4444-555555555555" || !ten.Lync.AllowFederatedUsers {
		t.Fatal("writes through the host did not reach the world")
	}
	if ten.OnPrem.AuthConfig.NextCertificateEffectiveDate != nil {
		t.Fatal("published certificate still staged")
	}
}

func TestContractTypedErrors(t *testing.T) {
	s := psServe(t, sim.NewShellTestWorld())
	sh := s.shell(t, sim.OnPrem, sim.ShellTestTenant)
	acs := cloud.MustLookup("global").ACSMetadataURL("contoso.onmicrosoft.com")
	psRun(t, sh, psCommand("New-AuthServer", "Name", "WindowsAzureACS", "AuthMetadataUrl", acs))
	psRun(t, sh, psCommand("New-IntraOrganizationConnector", "Name", "a", "DiscoveryEndpoint", "https://x.example/a", "TargetAddressDomains", "contoso.mail.onmicrosoft.com"))
	tests := []struct {
		cmd       exchange.Command
		typ       string
		retryable bool
		is        func(error) bool
	}{
		{psCommand("Get-AuthServer", "Identity", "evoSTS"), exchange.TypeNotFound, false, exchange.IsNotFound},
		{psCommand("Remove-AvailabilityAddressSpace", "Identity", "x.com"), exchange.TypeNotFound, false, exchange.IsNotFound},
		{psCommand("New-AuthServer", "Name", "WindowsAzureACS", "AuthMetadataUrl", acs), exchange.TypeAlreadyExists, false, exchange.IsAlreadyExists},
		{psCommand("New-AuthServer", "Name", "ACS - x", "AuthMetadataUrl", acs), exchange.TypeSameRealmAuthServer, false, nil},
		{psCommand("New-AuthServer", "Name", "x", "AuthMetadataUrl", "https://sts.contoso.com/metadata/json/1"), exchange.TypeAuthMetadata, true, nil},
		{psCommand("New-IntraOrganizationConnector", "Name", "b", "DiscoveryEndpoint", "https://x.example/b", "TargetAddressDomains", "contoso.mail.onmicrosoft.com"), exchange.TypeDuplicateIOCDomain, false, nil},
		{psCommand("Set-AuthConfig", "NewCertificateThumbprint", strings.Repeat("A", 40)), exchange.TypeInvalidCertificate, false, nil},
		{psCommand("Get-AuthServer", "Bogus", 1), exchange.TypeParameterBinding, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.cmd.Cmdlet+"/"+exchange.ShortType(tt.typ), func(t *testing.T) {
			_, err := sh.Run(context.Background(), tt.cmd)
			var e *exchange.Error
			if !errors.As(err, &e) || !exchange.HasType(err, tt.typ) || e.Cmdlet != tt.cmd.Cmdlet || e.Message == "" {
				t.Fatalf("want %s naming %s, got %#v", exchange.ShortType(tt.typ), tt.cmd.Cmdlet, err)
			}
			if exchange.Retryable(err) != tt.retryable {
				t.Fatalf("retryable=%v", exchange.Retryable(err))
			}
			if tt.is != nil && !tt.is(err) {
				t.Fatal("classifier disagrees")
			}
		})
	}
	res, err := sh.RunBatch(context.Background(), []exchange.Command{psCommand("Get-AuthServer", "Identity", "WindowsAzureACS"), psCommand("Get-AuthServer", "Identity", "evoSTS"), psCommand("Get-AuthConfig")})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Error != nil || res[0].Rows[0]["Name"] != "WindowsAzureACS" || !exchange.IsNotFound(res[1].Error) || res[2].Error != nil || len(res[2].Rows) != 1 {
		t.Fatalf("batch: %+v", res)
	}
}

func TestContractFaults(t *testing.T) {
	tests := []struct {
		name      string
		rule      sim.FaultRule
		typ       string
		retryable bool
		msg       string
	}{
		{"throttle", sim.FaultRule{Kind: sim.FaultThrottle, RetryAfter: 7 * time.Second}, exchange.TypeThrottled, true, "after 7 seconds"},
		{"5xx", sim.FaultRule{Kind: sim.FaultServer}, exchange.TypeTransient, true, ""},
		{"fail with a type", sim.FaultRule{Kind: sim.FaultFail, ErrorType: exchange.TypeAccessDenied, Message: "Access denied."}, exchange.TypeAccessDenied, false, "Access denied."},
		{"fail without a type", sim.FaultRule{Kind: sim.FaultFail}, exchange.TypeTransient, true, "Injected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := sim.NewShellTestWorld()
			rule := tt.rule
			rule.Protocol, rule.Operation, rule.FailFirstN = sim.ProtoShell, "Get-AuthConfig", 1
			w.SetFaults([]sim.FaultRule{rule})
			sh := psServe(t, w).shell(t, sim.OnPrem, sim.ShellTestTenant)
			_, err := sh.Run(context.Background(), psCommand("Get-AuthConfig"))
			if !exchange.HasType(err, tt.typ) || exchange.Retryable(err) != tt.retryable || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v (retryable %v)", err, exchange.Retryable(err))
			}
			psRun(t, sh, psCommand("Get-AuthConfig")) // FailFirstN 1: the retry succeeds
		})
	}
	t.Run("latency", func(t *testing.T) {
		w := sim.NewShellTestWorld()
		w.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoShell, Operation: "Get-AuthConfig", Kind: sim.FaultLatency, Latency: 150 * time.Millisecond}})
		sh := psServe(t, w).shell(t, sim.OnPrem, sim.ShellTestTenant)
		psRun(t, sh, psCommand("Get-AuthServer")) // host started outside the measurement
		began := time.Now()
		psRun(t, sh, psCommand("Get-AuthConfig"))
		if d := time.Since(began); d < 150*time.Millisecond {
			t.Fatalf("latency not honoured: %s", d)
		}
	})
}

func TestContractDropKillsHostAndNextCallRecovers(t *testing.T) {
	w := sim.NewShellTestWorld()
	w.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoShell, Operation: "Get-AuthConfig", Kind: sim.FaultDrop, FailFirstN: 1}})
	sh := psServe(t, w).shell(t, sim.OnPrem, sim.ShellTestTenant)
	psRun(t, sh, psCommand("Get-AuthServer"))
	first := sh.PID()
	_, err := sh.Run(context.Background(), psCommand("Get-AuthConfig"))
	if !exchange.HasType(err, exchange.TypeHostDied) || !exchange.Retryable(err) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("want retryable HostDied with the relay's exit status, got %v", err)
	}
	rows := psRun(t, sh, psCommand("Get-AuthConfig"))
	if len(rows) != 1 || sh.PID() == first || sh.PID() == 0 {
		t.Fatalf("not recovered on a fresh host: pid %d -> %d", first, sh.PID())
	}
	if got := w.FaultsFired()[sim.FaultDrop]; got != 1 {
		t.Fatalf("drops fired: %d", got)
	}
}

func TestContractStuckCallTimesOut(t *testing.T) {
	w := sim.NewShellTestWorld()
	w.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoShell, Operation: "Get-PartnerApplication", Kind: sim.FaultLatency, Latency: 5 * time.Second}})
	sh := psServe(t, w).shell(t, sim.OnPrem, sim.ShellTestTenant, func(o *shell.Options) { o.CallTimeout = 300 * time.Millisecond })
	psRun(t, sh, psCommand("Get-AuthServer"))
	first := sh.PID()
	began := time.Now()
	_, err := sh.Run(context.Background(), psCommand("Get-PartnerApplication"))
	if !exchange.HasType(err, exchange.TypeTimeout) || !exchange.Retryable(err) {
		t.Fatalf("want retryable Timeout, got %v", err)
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Fatalf("timeout took %s", d)
	}
	psRun(t, sh, psCommand("Get-AuthServer"))
	if sh.PID() == first {
		t.Fatal("the stuck host was reused")
	}
}

func TestContractInjectionStaysData(t *testing.T) {
	const injection = `x'; Remove-Item C:\ -Recurse; '`
	w := sim.NewShellTestWorld()
	s := psServe(t, w)
	sh := s.shell(t, sim.OnPrem, sim.ShellTestTenant)
	acs := cloud.MustLookup("global").ACSMetadataURL("contoso.onmicrosoft.com")
	psRun(t, sh, psCommand("New-AuthServer", "Name", injection, "AuthMetadataUrl", acs))
	var stored string
	w.View(sim.ShellTestTenant, func(ten *sim.Tenant) { stored = ten.OnPrem.AuthServers[0].Name })
	if stored != injection {
		t.Fatalf("stored %q", stored)
	}
	if rows := psRun(t, sh, psCommand("Get-AuthServer", "Identity", injection)); rows[0]["Name"] != injection {
		t.Fatalf("%v", rows)
	}

	// Refused by the client before anything is sent.
	before := w.Stats().ShellRoundTrips
	_, err := sh.Run(context.Background(), psCommand("Invoke-Expression", "Command", "Remove-Item C:\\ -Recurse"))
	if !exchange.HasType(err, exchange.TypeCmdletNotAllowed) || exchange.Retryable(err) {
		t.Fatalf("client-side: %v", err)
	}
	if w.Stats().ShellRoundTrips != before {
		t.Fatal("a refused cmdlet reached the host")
	}

	// Sent raw past the client: the host side refuses it too.
	argv, env := psHostArgv(t, s, sim.OnPrem, sim.ShellTestTenant)
	p := exec.Command(argv[0], argv[1:]...)
	p.Env = append(os.Environ(), env...)
	stdin, _ := p.StdinPipe()
	stdout, _ := p.StdoutPipe()
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Process.Kill(); _ = p.Wait() })
	lines := bufio.NewScanner(stdout)
	send := func(line string) map[string]any {
		t.Helper()
		if _, err := stdin.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
		if !lines.Scan() {
			t.Fatalf("no reply: %v", lines.Err())
		}
		var m map[string]any
		if err := json.Unmarshal(lines.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if ready := send(`{"config":{"mode":"none"}}`); ready["ready"] != true {
		t.Fatalf("ready: %v", ready)
	}
	reply := send(`{"id":1,"cmdlet":"Invoke-Expression","parameters":{"Command":"Remove-Item C:\\ -Recurse"}}`)
	if e, _ := reply["error"].(map[string]any); e == nil || e["type"] != exchange.TypeCmdletNotAllowed || reply["id"] != float64(1) {
		t.Fatalf("raw single: %v", reply)
	}
	reply = send(`{"id":2,"batch":[{"cmdlet":"Get-AuthConfig"},{"cmdlet":"iex","parameters":{"Command":"calc"}}]}`)
	results, _ := reply["results"].([]any)
	if len(results) != 2 || results[0].(map[string]any)["error"] != nil || results[1].(map[string]any)["error"].(map[string]any)["type"] != exchange.TypeCmdletNotAllowed {
		t.Fatalf("raw batch: %v", reply)
	}
	_ = stdin.Close()
	if err := p.Wait(); err != nil {
		t.Fatalf("relay did not leave cleanly on end of input: %v", err)
	}
}

func TestContractSessionSetupFailures(t *testing.T) {
	s := psServe(t, sim.NewShellTestWorld())
	tests := []struct {
		side   sim.Side
		tenant string
		typ    string
	}{
		{sim.OnPrem, "00000000-0000-0000-0000-000000000000", "System.Management.Automation.Remoting.PSRemotingTransportException"},
		{sim.Lync, sim.ShellTestGov, "System.IO.FileNotFoundException"},
	}
	for _, tt := range tests {
		t.Run(string(tt.side), func(t *testing.T) {
			sh := s.shell(t, tt.side, tt.tenant)
			_, err := sh.Run(context.Background(), psCommand("Get-AuthServer"))
			if !exchange.HasType(err, tt.typ) || !strings.Contains(err.Error(), "session setup") || sh.Running() {
				t.Fatalf("got %v (running %v)", err, sh.Running())
			}
		})
	}
	// Nothing listening: the relay reports the connection failure as a
	// session setup error, like New-PSSession would.
	dead := &psServed{addr: "127.0.0.1:1"}
	sh := dead.shell(t, sim.OnPrem, sim.ShellTestTenant)
	if _, err := sh.Run(context.Background(), psCommand("Get-AuthServer")); !exchange.HasType(err, "System.Management.Automation.Remoting.PSRemotingTransportException") {
		t.Fatalf("unreachable simulator: %v", err)
	}
}

func TestContractConcurrentCallersAndCounting(t *testing.T) {
	w := sim.NewShellTestWorld()
	sh := psServe(t, w).shell(t, sim.OnPrem, sim.ShellTestTenant)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				if _, err := sh.Run(context.Background(), psCommand("Get-AcceptedDomain")); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if _, err := sh.RunBatch(context.Background(), []exchange.Command{psCommand("Get-AuthConfig"), psCommand("Get-PartnerApplication"), psCommand("Get-ExchangeServer")}); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	if st.ShellRoundTrips != 21 || st.ByTenant[strings.ToLower(sim.ShellTestTenant)].ShellRoundTrips != 21 {
		t.Fatalf("round trips %d, want 20 calls + 1 batch", st.ShellRoundTrips)
	}
}

func TestContractPoolServesManyOrganisations(t *testing.T) {
	s := psServe(t, sim.NewShellTestWorld())
	pool := shell.NewPool(func(key string) shell.Options {
		argv, env := psHostArgv(t, s, sim.OnPrem, key)
		return shell.Options{Argv: argv, Env: env, Name: key, CallTimeout: 20 * time.Second}
	}, 1)
	defer pool.Close()
	for _, tenant := range []string{sim.ShellTestTenant, sim.ShellTestGov, sim.ShellTestTenant} {
		rows := psRun(t, pool.Get(tenant), psCommand("Get-OrganizationConfig"))
		want := map[string]string{sim.ShellTestTenant: "Contoso", sim.ShellTestGov: "Fabrikam"}[tenant]
		if rows[0]["Name"] != want || pool.Running() != 1 {
			t.Fatalf("%s: %v, %d hosts", tenant, rows[0]["Name"], pool.Running())
		}
	}
	if !slices.Contains(sim.Cmdlets(sim.OnPrem), "get-organizationconfig") {
		t.Fatal("registry lost Get-OrganizationConfig")
	}
}

// TestContractRelayBinary: the relay-only program (cmd/hybridflow-simhost)
// that HostCommand prefers beside a built executable speaks the same
// protocol as the re-executed test binary: a call round-trips, and a
// dropped host exits with status 3, which the client reports as a
// retryable HostDied.
func TestContractRelayBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), sim.SimHostBinary)
	build := exec.Command("go", "build", "-o", bin, "github.com/hybridflow/hybridflow/internal/sim/cmd/hybridflow-simhost")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	w := sim.NewShellTestWorld()
	w.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoShell, Operation: "Get-PartnerApplication", Kind: sim.FaultDrop, FailFirstN: 1}})
	s := psServe(t, w)
	_, env, err := sim.HostCommand(s.addr, sim.OnPrem, sim.ShellTestTenant)
	if err != nil {
		t.Fatal(err)
	}
	sh := shell.New(shell.Options{Argv: []string{bin}, Env: env, Name: sim.ShellTestTenant, CallTimeout: 20 * time.Second, StartTimeout: 20 * time.Second})
	t.Cleanup(func() { _ = sh.Close() })
	if rows := psRun(t, sh, psCommand("Get-AuthConfig")); len(rows) != 1 {
		t.Fatalf("Get-AuthConfig through the relay binary: %d rows", len(rows))
	}
	first := sh.PID()
	_, err = sh.Run(context.Background(), psCommand("Get-PartnerApplication"))
	if !exchange.HasType(err, exchange.TypeHostDied) || !exchange.Retryable(err) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("want retryable HostDied with the relay's exit status 3, got %v", err)
	}
	if rows := psRun(t, sh, psCommand("Get-AuthConfig")); len(rows) != 1 || sh.PID() == first {
		t.Fatalf("after the drop: %d rows, pid %d -> %d", len(rows), first, sh.PID())
	}
}
