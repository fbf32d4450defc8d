package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hybridflow/hybridflow/internal/exchange/shell/bootstrapps1"
)

// Exit statuses. exitBadCommandLine is PowerShell 7's status for a command
// line it cannot use (Windows PowerShell's 0xFFFD0000 would read as 0 in an
// 8-bit Unix status); exitScriptFailed is what PowerShell returns when the
// -File script cannot be loaded or stops with an error.
const (
	exitOK             = 0
	exitScriptFailed   = 1
	exitHostCrashed    = 3
	exitBadCommandLine = 64
)

// invocation is what the command line asked for.
type invocation struct {
	help       bool
	file       string   // the -File path as given
	scriptArgs []string // everything after the -File path
	policy     string   // -ExecutionPolicy value, "" when absent
}

// cliError is a refusal: the message PowerShell-style, and the exit status.
type cliError struct {
	msg  string
	code int
}

func (e *cliError) Error() string { return e.msg }

func badCommandLine(format string, args ...any) *cliError {
	return &cliError{msg: fmt.Sprintf(format, args...), code: exitBadCommandLine}
}

// The parameter kinds the stand-in distinguishes.
type paramKind int

const (
	kindSwitch      paramKind = iota // accepted, no value, no effect here
	kindHelp                         // -Help, -?
	kindFile                         // -File <path> [script arguments]
	kindPolicy                       // -ExecutionPolicy <policy>
	kindFormat                       // -InputFormat/-OutputFormat Text|XML
	kindWindowStyle                  // -WindowStyle <style>
	kindVersion                      // -Version <version>
	kindCommand                      // -Command, -EncodedCommand: refused
	kindUnmodelled                   // a real parameter the stand-in does not model: refused
)

// param is one PowerShell command-line parameter. PowerShell matches a
// word against its parameters in a fixed order, case-insensitively: the
// word must be a prefix of the name and at least as long as the name's
// shortest accepted form (min). So -nol is -NoLogo, -e is -EncodedCommand
// (-ExecutionPolicy needs -ex), and -no matches nothing.
type param struct {
	name    string // lower case, as matched
	min     string // shortest accepted form
	display string // as written in messages
	kind    paramKind
}

// params is PowerShell 7's matching order (its console host's command-line
// parser), with Windows PowerShell's -Version <version> and -PSConsoleFile,
// which PowerShell 7 does not have.
var params = []param{
	{"version", "v", "-Version", kindVersion},
	{"help", "h", "-Help", kindHelp},
	{"?", "?", "-?", kindHelp},
	{"login", "l", "-Login", kindUnmodelled},
	{"noexit", "noe", "-NoExit", kindUnmodelled},
	{"noprofile", "nop", "-NoProfile", kindSwitch},
	{"nologo", "nol", "-NoLogo", kindSwitch},
	{"noninteractive", "noni", "-NonInteractive", kindSwitch},
	{"socketservermode", "so", "-SocketServerMode", kindUnmodelled},
	{"servermode", "s", "-ServerMode", kindUnmodelled},
	{"namedpipeservermode", "nam", "-NamedPipeServerMode", kindUnmodelled},
	{"sshservermode", "sshs", "-SSHServerMode", kindUnmodelled},
	{"interactive", "i", "-Interactive", kindUnmodelled},
	{"configurationname", "config", "-ConfigurationName", kindUnmodelled},
	{"custompipename", "cus", "-CustomPipeName", kindUnmodelled},
	{"command", "c", "-Command", kindCommand},
	{"windowstyle", "w", "-WindowStyle", kindWindowStyle},
	{"file", "f", "-File", kindFile},
	{"outputformat", "o", "-OutputFormat", kindFormat},
	{"of", "o", "-OutputFormat", kindFormat},
	{"inputformat", "inp", "-InputFormat", kindFormat},
	{"if", "if", "-InputFormat", kindFormat},
	{"executionpolicy", "ex", "-ExecutionPolicy", kindPolicy},
	{"ep", "ep", "-ExecutionPolicy", kindPolicy},
	{"encodedcommand", "e", "-EncodedCommand", kindCommand},
	{"ec", "e", "-EncodedCommand", kindCommand},
	{"encodedarguments", "encodeda", "-EncodedArguments", kindUnmodelled},
	{"ea", "ea", "-EncodedArguments", kindUnmodelled},
	{"settingsfile", "settings", "-SettingsFile", kindUnmodelled},
	{"sta", "sta", "-Sta", kindUnmodelled},
	{"mta", "mta", "-Mta", kindUnmodelled},
	{"workingdirectory", "wo", "-WorkingDirectory", kindUnmodelled},
	{"wd", "wd", "-WorkingDirectory", kindUnmodelled},
	{"psconsolefile", "psc", "-PSConsoleFile", kindUnmodelled},
}

// matchParam finds the parameter a word (without its dash) names.
func matchParam(key string) (param, bool) {
	k := strings.ToLower(key)
	for _, p := range params {
		if len(k) >= len(p.min) && strings.HasPrefix(p.name, k) {
			return p, true
		}
	}
	return param{}, false
}

// candidates lists the parameters whose names contain key, as PowerShell
// suggests them for a word it cannot match.
func candidates(key string) []string {
	k := strings.ToLower(key)
	var out []string
	seen := map[string]bool{}
	for _, p := range params {
		if p.kind == kindHelp || seen[p.display] || !strings.Contains(p.name, k) {
			continue
		}
		seen[p.display] = true
		out = append(out, p.display)
	}
	return out
}

// spelt names a parameter in a message, with the spelling used when it
// differs: "-EncodedCommand (given as -ec)".
func spelt(p param, word string) string {
	if strings.EqualFold(word, p.display) {
		return p.display
	}
	return p.display + " (given as " + word + ")"
}

// Execution policy names (Microsoft.PowerShell.ExecutionPolicy).
var policies = []string{"AllSigned", "Bypass", "Default", "RemoteSigned", "Restricted", "Undefined", "Unrestricted"}

func canonicalPolicy(v string) (string, bool) {
	for _, p := range policies {
		if strings.EqualFold(v, p) {
			return p, true
		}
	}
	return "", false
}

// parseCommandLine reads PowerShell's command line (without the program
// name) the way powershell.exe/pwsh do, refusing what the host protocol
// cannot work with.
func parseCommandLine(args []string) (invocation, *cliError) {
	var inv invocation
	value := func(i int, missing string) (string, *cliError) {
		if i+1 >= len(args) {
			return "", badCommandLine("%s", missing)
		}
		return args[i+1], nil
	}
	for i := 0; i < len(args); i++ {
		word := strings.TrimSpace(args[i])
		if word == "" || word[0] != '-' || word == "-" {
			return inv, badCommandLine("'%s' is not a parameter. The PowerShell stand-in runs hybridflow's bootstrap script named with -File <path>; a bare argument would be read as the script (PowerShell 7) or as -Command text (Windows PowerShell).", args[i])
		}
		key := word[1:]
		if strings.HasPrefix(key, "-") {
			key = key[1:] // PowerShell takes --Name as -Name
		}
		p, ok := matchParam(key)
		if !ok {
			msg := fmt.Sprintf("Invalid argument '%s': PowerShell recognises no parameter by that name.", args[i])
			if c := candidates(key); len(c) > 0 {
				msg += " It is too short to tell apart, or misspells, one of: " + strings.Join(c, ", ") + "."
			}
			return inv, badCommandLine("%s", msg)
		}
		switch p.kind {
		case kindSwitch:
		case kindHelp:
			inv.help = true
		case kindCommand:
			why := "its text runs as PowerShell source, not as hybridflow's bootstrap script"
			if p.name == "command" && i+1 < len(args) && args[i+1] == "-" {
				why = "with -Command - PowerShell reads standard input itself and parses the host protocol's JSON lines as PowerShell source, so the host never says it is ready"
			}
			return inv, badCommandLine("%s is refused: hybridflow's host must be given bootstrap.ps1 as a file (-File <path>); %s.", spelt(p, args[i]), why)
		case kindUnmodelled:
			return inv, badCommandLine("%s is a PowerShell parameter the stand-in does not model; hybridflow's host command line needs none of it.", spelt(p, args[i]))
		case kindPolicy:
			v, err := value(i, "Cannot process the execution policy because of a missing policy name. A policy name must follow -ExecutionPolicy.")
			if err != nil {
				return inv, err
			}
			inv.policy = v
			i++
		case kindFormat:
			v, err := value(i, fmt.Sprintf("Cannot process the command because %s requires an argument. Valid formats are: Text, XML.", p.display))
			if err != nil {
				return inv, err
			}
			if !strings.EqualFold(v, "Text") && !strings.EqualFold(v, "XML") {
				return inv, badCommandLine("Cannot process the command because of an incorrect parameter value. \"%s\" is not a valid format. Valid formats are: Text, XML.", v)
			}
			i++
		case kindWindowStyle:
			v, err := value(i, "Cannot process the command because -WindowStyle requires an argument that is normal, hidden, minimized or maximized. Specify one of these argument values and try again.")
			if err != nil {
				return inv, err
			}
			switch strings.ToLower(v) {
			case "normal", "hidden", "minimized", "maximized":
			default:
				return inv, badCommandLine("Processing -WindowStyle '%s' failed: the value must be Normal, Hidden, Minimized or Maximized.", v)
			}
			i++
		case kindVersion:
			v, err := value(i, "Cannot process the command because -Version requires a Windows PowerShell version.")
			if err != nil {
				return inv, err
			}
			if err := checkVersion(v); err != nil {
				return inv, err
			}
			i++
		case kindFile:
			v, err := value(i, "The command cannot be run because the File parameter requires a file path. Supply a path for the File parameter and then try the command again.")
			if err != nil {
				return inv, err
			}
			if v == "-" {
				return inv, badCommandLine("-File - (%s -): the PowerShell stand-in refuses it. PowerShell would read commands from standard input itself, where the host protocol's JSON lines go; bootstrap.ps1 must be named by its path.", args[i])
			}
			// File is the last parameter: everything after the path
			// belongs to the script, however it is spelt.
			inv.file = v
			inv.scriptArgs = append([]string(nil), args[i+2:]...)
			return inv, nil
		}
	}
	if inv.help {
		return inv, nil
	}
	return inv, badCommandLine("No -File parameter. The PowerShell stand-in runs only hybridflow's bootstrap script, named with -File <path>; without it PowerShell would start a session that reads commands from standard input, where the host protocol's JSON lines go.")
}

// checkVersion accepts what -Version may name for the bootstrap: Windows
// PowerShell 3.0 to 5.1 all start the installed 5.1 engine. 2.0 starts the
// old engine, which lacks what the script uses ([ordered], ConvertTo-Json).
func checkVersion(v string) *cliError {
	major, minor, ok := strings.Cut(v, ".")
	maj, err1 := strconv.Atoi(major)
	mnr, err2 := 0, error(nil)
	if ok {
		mnr, err2 = strconv.Atoi(minor)
	}
	if err1 != nil || err2 != nil || maj < 0 || mnr < 0 {
		return badCommandLine("-Version '%s' is not a version number.", v)
	}
	switch {
	case maj < 3:
		return badCommandLine("-Version %s starts the Windows PowerShell %d.0 engine, and bootstrap.ps1 needs PowerShell 3.0 or later ([ordered], ConvertTo-Json).", v, maj)
	case maj > 5 || (maj == 5 && mnr > 1):
		return badCommandLine("Cannot start Windows PowerShell version %s because it is not installed.", v)
	}
	return nil
}

// scriptError is a -File script PowerShell would not load or run.
func scriptError(format string, args ...any) *cliError {
	return &cliError{msg: fmt.Sprintf(format, args...), code: exitScriptFailed}
}

// loadScript checks the -File script as PowerShell would before running
// it (exists, .ps1, allowed by the execution policy) and then that it is
// byte for byte hybridflow's bootstrap script.
func loadScript(inv invocation) *cliError {
	path := inv.file
	full, err := filepath.Abs(path)
	if err != nil {
		return badCommandLine("Processing -File '%s' failed: %v Specify a valid path for the -File parameter.", path, err)
	}
	fi, err := os.Stat(full)
	if err != nil || fi.IsDir() {
		return badCommandLine("The argument '%s' to the -File parameter does not exist. Provide the path to an existing '.ps1' file as an argument to the -File parameter.", path)
	}
	if !strings.EqualFold(filepath.Ext(full), ".ps1") {
		return badCommandLine("Processing -File '%s' failed because the file does not have a '.ps1' extension. Specify a valid Windows PowerShell script file name, and then try again.", path)
	}
	if inv.policy != "" {
		policy, known := canonicalPolicy(inv.policy)
		disabled := fmt.Sprintf("File %s cannot be loaded because running scripts is disabled on this system. For more information, see about_Execution_Policies at https:/go.microsoft.com/fwlink/?LinkID=135170.", full)
		switch {
		case !known:
			// Windows PowerShell takes a name it does not know as
			// Restricted rather than failing.
			return scriptError("%s (-ExecutionPolicy '%s' is not a policy name: %s; PowerShell treats it as Restricted.)", disabled, inv.policy, strings.Join(policies, ", "))
		case policy == "Restricted":
			return scriptError("%s", disabled)
		case policy == "AllSigned":
			// bootstrap.ps1 carries no signature, and a signed copy would
			// not be byte-identical to the embedded script.
			return scriptError("File %s cannot be loaded. The file %s is not digitally signed. You cannot run this script on the current system. For more information about running scripts and setting execution policy, see about_Execution_Policies at https:/go.microsoft.com/fwlink/?LinkID=135170.", full, full)
		}
		// Bypass and Unrestricted run it; Default and Undefined fall back
		// to a Windows Server's own default, RemoteSigned, which runs a
		// local unsigned script.
	}
	b, err := os.ReadFile(full)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return scriptError("File %s cannot be loaded: access is denied.", full)
		}
		return scriptError("File %s cannot be loaded: %v", full, err)
	}
	if !bootstrapps1.Equal(b) {
		return scriptError("the script handed to PowerShell is not hybridflow's bootstrap.ps1 (sha256 %s, want %s): %s", digest(b), digest(bootstrapps1.Script()), full)
	}
	return nil
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
