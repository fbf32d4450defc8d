package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/hostile"
)

// The bounded-input rules: an inventory or worker config is refused before
// any expensive work when it holds a YAML alias, is larger than its cap or
// holds a string longer than any value of that file may be; and a display
// name is a short line of text.

// TestInventoryRefusesAliases: the alias bomb (190 KB standing for 57
// million domain names) is refused at the first alias, naming its line,
// in well under a second; no tenant is decoded, so the aliased tenant's
// duplicates are not reported either.
func TestInventoryRefusesAliases(t *testing.T) {
	data := hostile.AliasBomb(hostile.AliasBombDomains, hostile.AliasBombRefs)
	began := time.Now()
	_, err := ParseInventory("bomb.yaml", data)
	took := time.Since(began)
	p := wantOne(t, err, "bomb.yaml", 3, "tenants[1]", "YAML aliases are not allowed")
	if !strings.Contains(p.Message, "18999 more") {
		t.Errorf("message does not count the other aliases: %q", p.Message)
	}
	if took > 2*time.Second {
		t.Errorf("refusing the alias bomb took %s", took)
	}
	// An alias in a small file is refused just the same: expansion is
	// not the only harm (a later edit of the anchor silently changes
	// every tenant that refers to it).
	_, err = ParseInventory("inv.yaml", []byte("x: &n Contoso\ntenants:\n"+
		"  - id: "+hostile.TenantID+"\n    display_name: *n\n    cloud: global\n    initial_domain: "+hostile.InitialDomain+"\n    site: site-a\n"))
	ps := problemsOf(t, err)
	if len(ps) != 1 || ps[0].Line != 4 || ps[0].Field != "tenants[0].display_name" || !strings.Contains(ps[0].Message, "YAML aliases are not allowed") {
		t.Fatalf("want the alias refused at line 4, tenants[0].display_name, got %v", ps)
	}
}

// TestInventoryRefusesHugeDisplayName: a 60 MB display name makes the file
// larger than the cap and is refused for that; a 1 MiB one fits in the
// file and is refused before it is decoded or echoed, naming the field;
// the messages stay short.
func TestInventoryRefusesHugeDisplayName(t *testing.T) {
	_, err := ParseInventory("inv.yaml", hostile.HugeDisplayName(60<<20))
	wantOne(t, err, "inv.yaml", 0, "", "larger than 16 MiB")
	_, err = ParseInventory("inv.yaml", hostile.HugeDisplayName(1<<20))
	p := wantOne(t, err, "inv.yaml", 3, "tenants[0].display_name", "longer than")
	if len(p.Error()) > 300 {
		t.Errorf("the problem is %d bytes long", len(p.Error()))
	}
}

// TestDisplayNameRules: a display name is at most MaxDisplayNameChars
// characters (not bytes: names in other scripts take several bytes per
// character) and holds no control characters, which would reach the
// operator's terminal.
func TestDisplayNameRules(t *testing.T) {
	parse := func(name string) error {
		_, err := ParseInventory("inv.yaml", []byte("tenants:\n"+hostile.Tenant(name)))
		return err
	}
	if err := parse(strings.Repeat("é", MaxDisplayNameChars)); err != nil {
		t.Fatalf("a %d-character name was refused: %v", MaxDisplayNameChars, err)
	}
	wantOne(t, parse(strings.Repeat("a", MaxDisplayNameChars+1)), "inv.yaml", 3, "tenants[0].display_name",
		"longer than 256 characters")
	wantOne(t, parse(`"Contoso\e[2J\e[H"`), "inv.yaml", 3, "tenants[0].display_name", "control character")
	wantOne(t, parse(`"Contoso\u009b2J"`), "inv.yaml", 3, "tenants[0].display_name", "control character")
}

// TestInventoryStringCap: a value longer than any inventory value may be
// is refused by its path, without being echoed, also where the field has
// no rule of its own.
func TestInventoryStringCap(t *testing.T) {
	long := "https://mail.contoso.com/" + strings.Repeat("a", maxInventoryString)
	data := "tenants:\n" + hostile.Tenant("A") + "    overrides:\n      onprem_ews_external_url: " + long + "\n"
	_, err := ParseInventory("inv.yaml", []byte(data))
	p := wantOne(t, err, "inv.yaml", 8, "tenants[0].overrides.onprem_ews_external_url", "longer than")
	if strings.Contains(p.Message, "aaaa") {
		t.Errorf("the value is echoed: %q", p.Message)
	}
	// An unknown field's over-long name too (the key is a string as well;
	// YAML allows a key this long only in the explicit "? key" form).
	_, err = ParseInventory("inv.yaml", []byte("tenants:\n"+hostile.Tenant("A")+"    ? "+strings.Repeat("k", maxInventoryString+1)+"\n    : 1\n"))
	p = wantOne(t, err, "inv.yaml", 7, "tenants[0]", "longer than")
	if len(p.Error()) > 300 {
		t.Errorf("the problem is %d bytes long", len(p.Error()))
	}
}

// TestInventoryFileCap: LoadInventory reads at most MaxInventoryBytes+1
// bytes and refuses a larger file without parsing it; ParseInventory
// refuses larger data the same way.
func TestInventoryFileCap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.yaml")
	// A valid inventory padded past the cap with a comment: only the size
	// is wrong.
	data := append([]byte("tenants:\n"+hostile.Tenant("A")), '#')
	data = append(data, strings.Repeat("x", MaxInventoryBytes)...)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	_, err := LoadInventory(path)
	took := time.Since(began)
	p := wantOne(t, err, path, 0, "", "larger than 16 MiB")
	if !strings.Contains(p.Message, "split") {
		t.Errorf("message does not say what to do: %q", p.Message)
	}
	if took > 2*time.Second {
		t.Errorf("refusing took %s", took)
	}
	_, err = ParseInventory("inv.yaml", data)
	wantOne(t, err, "inv.yaml", 0, "", "larger than 16 MiB")
	// A named pipe or device is bounded the same way (nothing is read
	// past the cap).
	if _, err := os.Stat("/dev/zero"); err == nil {
		_, err := LoadInventory("/dev/zero")
		wantOne(t, err, "/dev/zero", 0, "", "larger than 16 MiB")
	}
}

// TestTenThousandTenantInventoryFitsTheCap: the cap leaves room for ten
// thousand fully populated tenants (every field and override, comments)
// with a margin of a quarter, and such a file parses.
func TestTenThousandTenantInventoryFitsTheCap(t *testing.T) {
	if testing.Short() {
		t.Skip("parses a 12 MB inventory")
	}
	data := hostile.FullInventory(10000)
	t.Logf("10,000 fully populated tenants: %d bytes (%.1f MiB), cap %d MiB", len(data), float64(len(data))/(1<<20), MaxInventoryBytes>>20)
	if len(data) > MaxInventoryBytes*3/4 {
		t.Fatalf("a 10,000-tenant inventory is %d bytes, more than three quarters of the %d-byte cap", len(data), MaxInventoryBytes)
	}
	inv, err := ParseInventory("full.yaml", data)
	if err != nil {
		t.Fatalf("%.300v", err)
	}
	if len(inv.Tenants) != 10000 || len(inv.Tenants[9999].SMTPDomains) != 5 {
		t.Fatalf("parsed %d tenants", len(inv.Tenants))
	}
}

// TestWorkerConfigBounded: the worker config has the same guards, with its
// own caps (a shell environment value may be as long as Windows allows).
func TestWorkerConfigBounded(t *testing.T) {
	aliases := "onprem:\n  sites:\n    a: &s\n      shell:\n        command: [pwsh, -NoProfile]\n    b: *s\n"
	_, err := ParseWorkerConfig("w.yaml", []byte(aliases), noEnv)
	wantOne(t, err, "w.yaml", 6, "onprem.sites.b", "YAML aliases are not allowed")

	huge := "log_level: " + strings.Repeat("d", maxWorkerString+1) + "\n"
	_, err = ParseWorkerConfig("w.yaml", []byte(huge), noEnv)
	p := wantOne(t, err, "w.yaml", 1, "log_level", "longer than")
	if len(p.Error()) > 300 {
		t.Errorf("the problem is %d bytes long", len(p.Error()))
	}

	path := filepath.Join(t.TempDir(), "w.yaml")
	if err := os.WriteFile(path, append([]byte("log_level: info\n#"), strings.Repeat("x", MaxWorkerConfigBytes)...), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadWorkerConfig(path, noEnv)
	wantOne(t, err, path, 0, "", "larger than 1 MiB")
}
