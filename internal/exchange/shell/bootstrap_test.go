package shell

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hybridflow/hybridflow/internal/exchange"
)

// scriptCode is the bootstrap without comments, so that the checks below
// look at what runs, not at what the comments explain.
func scriptCode(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, line := range strings.Split(string(bootstrapScript), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

func TestBootstrapAllowListEqualsExchangeAllowList(t *testing.T) {
	src := string(bootstrapScript)
	begin := strings.Index(src, "# BEGIN ALLOWLIST")
	end := strings.Index(src, "# END ALLOWLIST")
	if begin < 0 || end < begin {
		t.Fatal("bootstrap.ps1 lost its ALLOWLIST markers")
	}
	block := src[begin:end]
	if !strings.Contains(block, "$AllowedCmdlets = @(") {
		t.Fatal("the ALLOWLIST block no longer defines $AllowedCmdlets")
	}
	var got []string
	for _, m := range regexp.MustCompile(`'([^']*)'`).FindAllStringSubmatch(block, -1) {
		got = append(got, m[1])
	}
	want := slices.Clone(exchange.AllowedCmdlets)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("bootstrap allow-list differs from exchange.AllowedCmdlets\nscript: %v\nGo:     %v", got, want)
	}
	// The list must be the one the dispatcher checks.
	if !strings.Contains(scriptCode(t), "-not ($AllowedCmdlets -contains $name)") {
		t.Fatal("Invoke-Allowed no longer checks $AllowedCmdlets")
	}
}

// TestBootstrapHasNoDynamicCode guards the security model: request data is
// splatted, never compiled. Any of these constructs would turn text into
// code, so their appearance needs a design review, not a quiet edit.
func TestBootstrapHasNoDynamicCode(t *testing.T) {
	code := strings.ToLower(scriptCode(t))
	for _, banned := range []string{
		"invoke-expression", "iex ", "iex(", "[scriptblock]::create", "newscriptblock", "addscript(",
		"expandstring", "invoke-command", "start-process", "add-type", "$executioncontext",
	} {
		if strings.Contains(code, banned) {
			t.Errorf("bootstrap.ps1 contains %q", banned)
		}
	}
	if !strings.Contains(code, "& $command @params") {
		t.Error("bootstrap.ps1 no longer invokes the resolved command by splatting")
	}
}

// Windows PowerShell 5.1 reads a script without a byte-order mark in the
// ANSI code page: only ASCII means the same everywhere.
func TestBootstrapIsASCII(t *testing.T) {
	for i, b := range bootstrapScript {
		if b >= 0x80 {
			line := strings.Count(string(bootstrapScript[:i]), "\n") + 1
			t.Fatalf("non-ASCII byte 0x%02x on line %d", b, line)
		}
	}
	if ProtocolVersion != 1 || !strings.Contains(string(bootstrapScript), "$ProtocolVersion = 1") {
		t.Fatal("bootstrap.ps1 and the client disagree on the protocol version")
	}
}

func TestBootstrapModesMatchClient(t *testing.T) {
	code := scriptCode(t)
	for _, m := range []string{ModeNone, ModeLocalSnapin, ModeRemote, ModeLync, ModeSkype} {
		if !strings.Contains(code, "'"+m+"' {") {
			t.Errorf("bootstrap.ps1 has no branch for session mode %q", m)
		}
		if err := (SessionConfig{Mode: m, ConnectionURI: "https://ex01.contoso.com/PowerShell/"}).Validate(); err != nil {
			t.Errorf("client refuses mode %q: %v", m, err)
		}
	}
}

// TestBootstrapRemovesItsRemoteSession: the script leaves no remote
// session behind on either way out: a failed session setup (New-PSSession
// may have worked before Import-PSSession failed) and the end of the
// request loop (the finally).
func TestBootstrapRemovesItsRemoteSession(t *testing.T) {
	code := scriptCode(t)
	const remove = "Remove-PSSession -Session $RemoteSession"
	setup := strings.Index(code, "Initialize-Session (Get-Field")
	if setup < 0 {
		t.Fatal("bootstrap.ps1 no longer calls Initialize-Session")
	}
	catch := code[setup:]
	if i := strings.Index(catch, "catch {"); i >= 0 {
		catch = catch[i:]
	}
	if i := strings.Index(catch, "exit 1"); i >= 0 {
		catch = catch[:i]
	}
	if !strings.Contains(catch, remove) {
		t.Error("a failed session setup exits without removing the remote session")
	}
	finally := strings.LastIndex(code, "finally {")
	if finally < 0 || !strings.Contains(code[finally:], remove) {
		t.Error("the request loop's finally no longer removes the remote session")
	}
}
