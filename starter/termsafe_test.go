package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/hostile"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/workflows"
)

// TestTermSafe: control characters, C1 controls, bidirectional overrides
// and invalid bytes come out as visible escapes; tab, newline and every
// other character as they are.
func TestTermSafe(t *testing.T) {
	for in, want := range map[string]string{
		"Contoso":                       "Contoso",
		"Fabrikam (GCC) — Zürich 東京":    "Fabrikam (GCC) — Zürich 東京",
		"line 1\nline 2\tcol":           "line 1\nline 2\tcol",
		hostile.ANSIDisplayName:         `Contoso\u001b[2J\u001b[Hall tenants verified\u000d`,
		"bell\a del\x7f":                `bell\u0007 del\u007f`,
		"csi \u009b2J":                  `csi \u009b2J`,
		"abc\u202edcba":                 `abc\u202edcba`,
		"bad \x9b\xff byte":             `bad \x9b\xff byte`,
		"osc \x1b]0;title\x07 and more": `osc \u001b]0;title\u0007 and more`,
	} {
		if got := termSafe(in); got != want {
			t.Errorf("termSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

// hasControl reports a byte or character that would act on a terminal.
func hasControl(s string) bool {
	for _, r := range s {
		if (r < 0x20 && r != '\n' && r != '\t') || (r >= 0x7f && r <= 0x9f) || r == '\u202e' {
			return true
		}
	}
	return false
}

// TestPrintersEscapeControlCharacters: a display name from the inventory
// and error text from a remote service reach the operator's terminal only
// escaped, through every printer that shows them (plan, status, rollout
// attention, the final error line) and in JSON output.
func TestPrintersEscapeControlCharacters(t *testing.T) {
	const remote = "HTTP 500 from proxy: \x1b]0;owned\x07\x1b[2J\rsetup verified"
	var out, errb bytes.Buffer
	a := &app{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	a.printPlan(config.Tenant{ID: hostile.TenantID, DisplayName: hostile.ANSIDisplayName, Cloud: "global"}, workflows.SetupResult{
		Mode: "dedicated-app", ModeReason: remote,
		Plan:     []plan.Action{{Step: plan.StepAuthServers, Change: plan.ChangeUpdate, Reason: remote, Details: []string{remote}}},
		Warnings: []string{remote},
	})
	a.printSteps(workflows.SetupState{TenantID: hostile.TenantID, State: "paused",
		Steps:        []*workflows.StepState{{Step: "auth-servers", Status: "failed", LastError: remote}},
		Verification: map[string]string{"cloud-to-onprem": remote}, Compensation: []string{remote}})
	a.printAttention(workflows.RolloutProgress{Attention: []workflows.TenantOutcome{{TenantID: hostile.TenantID, State: "paused", Step: "auth-servers", Error: remote, ErrorType: "Server"}}})
	text := out.String()
	if hasControl(text) {
		t.Errorf("printers wrote control characters:\n%q", text)
	}
	if !strings.Contains(text, `Contoso\u001b[2J\u001b[Hall tenants verified\u000d`) || strings.Count(text, `\u001b[2J\u000dsetup verified`) < 8 {
		t.Errorf("the name or the remote text is not shown escaped:\n%s", text)
	}

	// JSON output: encoding/json escapes C0 itself; C1 and bidi
	// controls are escaped too, and the document still decodes to the
	// original text.
	out.Reset()
	name := "Contoso\u009b2J\u202e"
	if err := a.printJSON(map[string]string{"display_name": name}); err != nil {
		t.Fatal(err)
	}
	var back map[string]string
	if hasControl(out.String()) || json.Unmarshal(out.Bytes(), &back) != nil || back["display_name"] != name {
		t.Errorf("JSON output %q (decodes to %q)", out.String(), back["display_name"])
	}

	// The last line of a failed command carries an error's text.
	out.Reset()
	errb.Reset()
	bad := filepath.Join(t.TempDir(), "inv\x1b[2J.yaml")
	code := run(context.Background(), []string{"plan", "-f", bad, "-t", hostile.TenantID}, &out, &errb, func(string) string { return "" })
	if code == 0 || hasControl(errb.String()) || !strings.Contains(errb.String(), `inv\u001b[2J.yaml`) {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	// validate prints problems on stdout.
	out.Reset()
	code = run(context.Background(), []string{"validate", "-f", bad}, &out, &errb, func(string) string { return "" })
	if code != 1 || hasControl(out.String()) || !strings.Contains(out.String(), `inv\u001b[2J.yaml`) {
		t.Errorf("validate: exit %d, stdout %q", code, out.String())
	}
}
