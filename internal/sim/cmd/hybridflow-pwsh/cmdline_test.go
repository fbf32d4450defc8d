package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hybridflow/hybridflow/internal/exchange/shell/bootstrapps1"
)

// writeScript writes b as dir/name and returns its path.
func writeScript(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCommandLineAccepted: every spelling PowerShell's console host
// accepts for the parameters a host command line uses. Its matching rule
// (a word is a prefix of the name, at least as long as the parameter's
// shortest form, tried in a fixed order) is PowerShell 7's command-line
// parser; the parameter list follows about_PowerShell_exe (Windows
// PowerShell 5.1) and about_Pwsh on Microsoft Learn.
func TestCommandLineAccepted(t *testing.T) {
	const f = "C:/x/bootstrap.ps1"
	cases := []struct {
		name       string
		args       []string
		policy     string
		scriptArgs []string
	}{
		{"the product's default", []string{"-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-File", f}, "Bypass", nil},
		{"lower case", []string{"-nologo", "-noprofile", "-noninteractive", "-executionpolicy", "bypass", "-file", f}, "bypass", nil},
		{"upper case", []string{"-NOLOGO", "-NOPROFILE", "-NONINTERACTIVE", "-EXECUTIONPOLICY", "BYPASS", "-FILE", f}, "BYPASS", nil},
		{"shortest forms", []string{"-nol", "-nop", "-noni", "-ex", "Bypass", "-f", f}, "Bypass", nil},
		{"in-between prefixes", []string{"-nolog", "-noprof", "-nonint", "-execution", "RemoteSigned", "-fi", f}, "RemoteSigned", nil},
		{"-ep alias", []string{"-ep", "Unrestricted", "-File", f}, "Unrestricted", nil},
		{"double dash", []string{"--NoProfile", "--File", f}, "", nil},
		{"formats", []string{"-InputFormat", "Text", "-OutputFormat", "XML", "-inp", "xml", "-o", "text", "-if", "Text", "-of", "Xml", "-File", f}, "", nil},
		{"window style", []string{"-WindowStyle", "Hidden", "-w", "minimized", "-File", f}, "", nil},
		{"version", []string{"-Version", "5.1", "-v", "3.0", "-ver", "5", "-File", f}, "", nil},
		{"no other parameter", []string{"-File", f}, "", nil},
		{"script arguments after the path", []string{"-NoProfile", "-File", f, "-Command", "-", "x"}, "", []string{"-Command", "-", "x"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inv, err := parseCommandLine(c.args)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if inv.file != f || inv.policy != c.policy || !reflect.DeepEqual(inv.scriptArgs, c.scriptArgs) {
				t.Fatalf("got file %q policy %q args %q", inv.file, inv.policy, inv.scriptArgs)
			}
		})
	}
}

// TestCommandLineRefused: what PowerShell itself refuses, and what the
// host protocol cannot work with, fails with status 64 and a message.
func TestCommandLineRefused(t *testing.T) {
	const f = "C:/x/bootstrap.ps1"
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"the old default, -Command -", []string{"-NoLogo", "-NoProfile", "-NonInteractive", "-Command", "-"}, "-Command is refused"},
		{"-Command text", []string{"-Command", "& '" + f + "'"}, "-Command is refused"},
		{"-c", []string{"-c", "Get-Date"}, "-Command (given as -c) is refused"},
		{"-Command before -File", []string{"-Command", "-", "-File", f}, "-Command is refused"},
		{"-EncodedCommand", []string{"-EncodedCommand", "RwBlAHQALQBEAGEAdABlAA=="}, "-EncodedCommand is refused"},
		{"-ec", []string{"-ec", "RwBlAHQALQBEAGEAdABlAA=="}, "-EncodedCommand (given as -ec) is refused"},
		{"-e is -EncodedCommand, not -ExecutionPolicy", []string{"-e", "Bypass", "-File", f}, "-EncodedCommand (given as -e) is refused"},
		{"no -File", []string{"-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass"}, "No -File parameter"},
		{"nothing at all", nil, "No -File parameter"},
		{"-File without a path", []string{"-NoProfile", "-File"}, "the File parameter requires a file path"},
		{"-File -", []string{"-File", "-"}, "-File - (-File -): the PowerShell stand-in refuses it"},
		{"a bare script path", []string{"-NoProfile", f}, "is not a parameter"},
		{"-no: too short for any -No parameter", []string{"-no", "-File", f}, "-NoExit, -NoProfile, -NoLogo, -NonInteractive"},
		{"-n", []string{"-n", "-File", f}, "Invalid argument '-n'"},
		{"-conf is not -ConfigurationName (needs -config)", []string{"-conf", "x", "-File", f}, "Invalid argument '-conf'"},
		{"unknown", []string{"-Foo", "-File", f}, "Invalid argument '-Foo'"},
		{"colon form", []string{"-ExecutionPolicy:Bypass", "-File", f}, "Invalid argument '-ExecutionPolicy:Bypass'"},
		{"-NoExit", []string{"-NoExit", "-File", f}, "-NoExit is a PowerShell parameter the stand-in does not model"},
		{"-Sta", []string{"-sta", "-File", f}, "-Sta is a PowerShell parameter"},
		{"-ExecutionPolicy without a value", []string{"-ExecutionPolicy"}, "A policy name must follow -ExecutionPolicy"},
		{"-InputFormat without a value", []string{"-InputFormat"}, "-InputFormat requires an argument"},
		{"bad format", []string{"-OutputFormat", "Json", "-File", f}, `"Json" is not a valid format`},
		{"bad window style", []string{"-WindowStyle", "Tiny", "-File", f}, "Processing -WindowStyle 'Tiny' failed"},
		{"-Version 2.0", []string{"-Version", "2.0", "-File", f}, "needs PowerShell 3.0 or later"},
		{"-Version 7", []string{"-Version", "7.4", "-File", f}, "not installed"},
		{"-Version junk", []string{"-Version", "latest", "-File", f}, "not a version number"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseCommandLine(c.args)
			if err == nil {
				t.Fatal("accepted")
			}
			if err.code != exitBadCommandLine || !strings.Contains(err.msg, c.want) {
				t.Fatalf("status %d, message %q; want 64 and %q", err.code, err.msg, c.want)
			}
		})
	}
}

// TestScriptChecks: the -File script is loaded as PowerShell would (it
// exists, ends in .ps1, the execution policy lets an unsigned local script
// run; about_Execution_Policies) and must be byte for byte bootstrap.ps1.
func TestScriptChecks(t *testing.T) {
	good := writeScript(t, "bootstrap.ps1", bootstrapps1.Script())
	upper := writeScript(t, "BOOTSTRAP.PS1", bootstrapps1.Script())
	changed := bootstrapps1.Script()
	changed[len(changed)/2] ^= 0x20
	oneByte := writeScript(t, "bootstrap.ps1", changed)
	extra := writeScript(t, "bootstrap.ps1", append(bootstrapps1.Script(), '\n'))
	txt := writeScript(t, "bootstrap.txt", bootstrapps1.Script())

	cases := []struct {
		name   string
		file   string
		policy string
		code   int    // 0: accepted
		want   string // in the message
	}{
		{"the bootstrap", good, "", 0, ""},
		{"the bootstrap, Bypass", good, "Bypass", 0, ""},
		{"upper-case .PS1", upper, "bypass", 0, ""},
		{"RemoteSigned runs a local script", good, "RemoteSigned", 0, ""},
		{"Unrestricted", good, "unrestricted", 0, ""},
		{"Default", good, "Default", 0, ""},
		{"Undefined", good, "Undefined", 0, ""},
		{"Restricted", good, "Restricted", exitScriptFailed, "running scripts is disabled on this system"},
		{"AllSigned", good, "AllSigned", exitScriptFailed, "is not digitally signed"},
		{"an unknown policy counts as Restricted", good, "Bypas", exitScriptFailed, "-ExecutionPolicy 'Bypas' is not a policy name"},
		{"one byte changed", oneByte, "Bypass", exitScriptFailed, "the script handed to PowerShell is not hybridflow's bootstrap.ps1 (sha256 " + digest(changed) + ", want " + digest(bootstrapps1.Script()) + ")"},
		{"one byte added", extra, "Bypass", exitScriptFailed, "is not hybridflow's bootstrap.ps1"},
		{"missing", filepath.Join(t.TempDir(), "bootstrap.ps1"), "Bypass", exitBadCommandLine, "to the -File parameter does not exist"},
		{"a directory", t.TempDir() + "/x.ps1/..", "Bypass", exitBadCommandLine, "does not exist"},
		{"not .ps1", txt, "Bypass", exitBadCommandLine, "does not have a '.ps1' extension"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := loadScript(invocation{file: c.file, policy: c.policy})
			if c.code == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if err.code != c.code || !strings.Contains(err.msg, c.want) {
				t.Fatalf("status %d, message %q; want %d and %q", err.code, err.msg, c.code, c.want)
			}
		})
	}
}

// TestRefusalWritesNoReadyLine: a refused command line says so on stderr
// and nothing on stdout, where the client waits for the ready line.
func TestRefusalWritesNoReadyLine(t *testing.T) {
	var stdout, stderr strings.Builder
	code := run([]string{"-NoProfile", "-Command", "-"}, strings.NewReader(`{"config":{"mode":"none"}}`+"\n"), &stdout, &stderr, noEnv)
	if code != exitBadCommandLine || stdout.Len() != 0 || !strings.Contains(stderr.String(), "-Command is refused") {
		t.Fatalf("status %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	changed := append(bootstrapps1.Script(), ' ')
	stdout.Reset()
	stderr.Reset()
	code = run([]string{"-File", writeScript(t, "bootstrap.ps1", changed)}, strings.NewReader(`{"config":{"mode":"none"}}`+"\n"), &stdout, &stderr, noEnv)
	if code != exitScriptFailed || stdout.Len() != 0 || !strings.Contains(stderr.String(), "is not hybridflow's bootstrap.ps1") {
		t.Fatalf("status %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

func noEnv(string) (string, bool) { return "", false }
