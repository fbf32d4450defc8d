package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs the real command tree and returns exit code and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb, func(string) string { return "" })
	return code, out.String(), errb.String()
}

// TestValidateBrokenInventories runs `hybridflow validate` on each broken
// inventory under testdata/broken and expects exactly the FILE:LINE: FIELD
// prefix that points an operator at the mistake.
func TestValidateBrokenInventories(t *testing.T) {
	cases := []struct{ file, where string }{
		{"bad-guid", ":2: tenants[0].id: "},
		{"unknown-field", ":7: tenants[0].colour: unknown field"},
		{"duplicate-tenant", ":7: tenants[1].id: duplicate tenant id"},
		{"http-url", ":8: tenants[0].overrides.onprem_autodiscover_url: "},
		{"domain-space", ":7: tenants[0].smtp_domains[0]: "},
		{"unknown-cloud", ":4: tenants[0].cloud: unknown cloud \"mars\""},
		{"site-slash", ":6: tenants[0].site: "},
		{"site-upper", ":6: tenants[0].site: "},
		{"bad-mode", ":7: tenants[0].mode: unknown mode"},
		{"wrong-suffix", ":5: tenants[0].initial_domain: "},
		{"bad-email", ":8: tenants[0].overrides.onprem_mailbox: "},
		{"malformed", ":2: malformed YAML"},
		{"empty", ":1: tenants: no tenants"},
	}
	entries, _ := os.ReadDir("testdata/broken")
	if len(entries) != len(cases) {
		t.Fatalf("testdata/broken has %d files, the table %d: keep them in step", len(entries), len(cases))
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join("testdata", "broken", c.file+".yaml")
			code, out, _ := runCLI(t, "validate", "-f", path)
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if !strings.Contains(out, path+c.where) {
				t.Errorf("output lacks %q:\n%s", path+c.where, out)
			}
		})
	}
}

func TestValidateReportsEveryFileAsJSON(t *testing.T) {
	code, out, _ := runCLI(t, "validate", "-o", "json",
		"-f", "../configs/inventory.example.yaml", "-f", "testdata/broken/bad-guid.yaml", "-f", "testdata/broken/site-slash.yaml")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var res []validateResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if len(res) != 3 || !res[0].Valid || res[0].Tenants == 0 || res[1].Valid || len(res[2].Problems) != 1 || res[2].Problems[0].Field != "tenants[0].site" {
		t.Fatalf("unexpected result %+v", res)
	}
}

func TestValidateGoodInventory(t *testing.T) {
	code, out, _ := runCLI(t, "validate", "-f", "../configs/inventory.example.yaml")
	if code != 0 || !strings.Contains(out, "ok (") {
		t.Fatalf("exit %d: %s", code, out)
	}
}

func TestOutputFlagValidated(t *testing.T) {
	code, _, errOut := runCLI(t, "validate", "-o", "yaml", "-f", "x")
	if code == 0 || !strings.Contains(errOut, "--output") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}
