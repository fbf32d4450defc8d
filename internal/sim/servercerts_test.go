package sim

import (
	"strings"
	"testing"

	"github.com/hybridflow/hybridflow/internal/exchange"
)

// TestGetExchangeCertificatePerServer follows
// shared/reference/hybrid-facts.md (c) "per-server probe": Microsoft's
// monitoring script asks every Mailbox / Client Access server with
// Get-ExchangeCertificate -Server <fqdn> -Thumbprint <t>; a certificate the
// server lacks is an InvalidOperationException ("reachable, missing"),
// anything else means the server could not be asked. The table row
// Get-ExchangeCertificate / Thumbprint / Server (exchange-cmdlets.tsv) puts
// -Server and -Thumbprint in one parameter set. Which server lacks what is
// world-file data (missing_on, unreachable), checked here after a dump and
// a parse.
func TestGetExchangeCertificatePerServer(t *testing.T) {
	base := NewShellTestWorld()
	cur := shellCertCurrent.Thumbprint
	base.Update(ShellTestTenant, func(ten *Tenant) {
		ten.OnPrem.Servers = append(ten.OnPrem.Servers,
			ExchangeServer{Name: "EX02", Version: "15.2.1748.24", Roles: "Mailbox"},
			ExchangeServer{Name: "EX03", Version: "15.2.1748.24", Roles: "Mailbox", Unreachable: true})
		for _, c := range ten.OnPrem.Certificates {
			if c.Thumbprint == cur {
				c.MissingOn = []string{"EX02"}
			}
		}
	})
	data, err := base.Dump()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "missing_on:") || !strings.Contains(string(data), "unreachable: true") {
		t.Fatalf("the world file does not carry the per-server state:\n%s", data)
	}
	w, err := Parse("per-server", data)
	if err != nil {
		t.Fatal(err)
	}
	get := func(kv ...any) ([]exchange.Row, *exchange.Error) {
		t.Helper()
		return w.Invoke(OnPrem, ShellTestTenant, onpremCmd("Get-ExchangeCertificate", kv...))
	}

	if rows, err := get("Server", "EX01", "Thumbprint", cur); err != nil || len(rows) != 1 || rows[0]["Thumbprint"] != cur {
		t.Fatalf("EX01 holds the current certificate: %v %v", rows, err)
	}
	// A server's FQDN names it too, as -Server accepts either.
	if rows, err := get("Server", "ex01.contoso.local", "Thumbprint", cur); err != nil || len(rows) != 1 {
		t.Fatalf("by FQDN: %v %v", rows, err)
	}
	_, xe := get("Server", "EX02", "Thumbprint", cur)
	if xe == nil || exchange.ShortType(xe.Type) != "InvalidOperationException" || !strings.Contains(xe.Message, "EX02") || !strings.Contains(xe.Message, cur) {
		t.Fatalf("EX02 lacks it: want InvalidOperationException naming the server and thumbprint, got %v", xe)
	}
	_, xe = get("Server", "EX03", "Thumbprint", cur)
	if xe == nil || exchange.ShortType(xe.Type) == "InvalidOperationException" {
		t.Fatalf("EX03 is unreachable: want an error other than InvalidOperationException, got %v", xe)
	}
	if _, err := get("Server", "EX99", "Thumbprint", cur); err == nil || !exchange.IsNotFound(err) {
		t.Fatalf("an unknown server: %v", err)
	}
	// EX02's whole store lacks the certificate; the shell's own server
	// (no -Server) holds everything.
	rows, xe := get("Server", "EX02")
	if xe != nil {
		t.Fatal(xe)
	}
	for _, r := range rows {
		if r["Thumbprint"] == cur {
			t.Fatalf("EX02's store lists %s", cur)
		}
	}
	if rows, err := get("Thumbprint", cur); err != nil || len(rows) != 1 {
		t.Fatalf("local store: %v %v", rows, err)
	}
	// A new certificate reaches every reachable server.
	nc, xe := w.Invoke(OnPrem, ShellTestTenant, onpremCmd("New-ExchangeCertificate", "KeySize", 2048, "PrivateKeyExportable", true,
		"SubjectName", "cn="+AuthCertificateSubject, "DomainName", []string{}))
	if xe != nil || len(nc) != 1 {
		t.Fatalf("New-ExchangeCertificate: %v %v", nc, xe)
	}
	if rows, err := get("Server", "EX02", "Thumbprint", nc[0]["Thumbprint"]); err != nil || len(rows) != 1 {
		t.Fatalf("the new certificate on EX02: %v %v", rows, err)
	}
}
