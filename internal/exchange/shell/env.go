package shell

import (
	"runtime"
	"strings"
)

// The host's environment is built, not inherited: the worker's own holds
// client secrets, payload codec keys and its HYBRIDFLOW_* settings, and the
// host runs the Exchange snap-in, the Lync module and whatever they load.
// It gets the operating system's variables PowerShell and those modules
// need to find themselves, their profile folders and temporary space, and
// what the site's configuration adds (Options.Env).

// windowsHostEnv are the variables a Windows host keeps, matched without
// regard to case as Windows does. SystemRoot and windir locate the system
// (networking fails without SystemRoot), Path/PATHEXT/ComSpec find
// programs, the profile and program-folder variables are where modules,
// their settings and the user's temporary files live, PSModulePath is where
// Import-Module looks (the Lync and Skype for Business modules are
// installed on it), and ExchangeInstallPath is how the Exchange management
// tools find their own installation.
var windowsHostEnv = []string{
	"SystemRoot", "windir", "SystemDrive", "ComSpec", "Path", "PATHEXT",
	"COMPUTERNAME", "USERNAME", "USERDOMAIN", "USERPROFILE", "HOMEDRIVE", "HOMEPATH",
	"APPDATA", "LOCALAPPDATA", "ProgramData", "ALLUSERSPROFILE",
	"ProgramFiles", "ProgramFiles(x86)", "ProgramW6432",
	"CommonProgramFiles", "CommonProgramFiles(x86)", "CommonProgramW6432",
	"PSModulePath", "TEMP", "TMP",
	"NUMBER_OF_PROCESSORS", "PROCESSOR_ARCHITECTURE", "OS",
	"ExchangeInstallPath",
}

// unixHostEnv are the variables pwsh keeps elsewhere (exact names), plus
// every LC_* locale variable.
var unixHostEnv = []string{"HOME", "PATH", "TMPDIR", "LANG", "USER", "TZ", "PSModulePath"}

// hostEnvironment is the host's environment on this system: the allowed
// variables of the worker's environment, then extra (NAME=value), which
// replaces an allowed variable of the same name.
func hostEnvironment(environ, extra []string) []string {
	return hostEnv(runtime.GOOS, environ, extra)
}

func hostEnv(goos string, environ, extra []string) []string {
	fold := goos == "windows"
	same := func(a, b string) bool {
		if fold {
			return strings.EqualFold(a, b)
		}
		return a == b
	}
	allowed := func(name string) bool {
		if fold {
			for _, n := range windowsHostEnv {
				if strings.EqualFold(n, name) {
					return true
				}
			}
			return false
		}
		for _, n := range unixHostEnv {
			if n == name {
				return true
			}
		}
		return strings.HasPrefix(name, "LC_")
	}
	var out []string
	overridden := func(name string) bool {
		for _, kv := range extra {
			if n, _, _ := strings.Cut(kv, "="); same(n, name) {
				return true
			}
		}
		return false
	}
	for _, kv := range environ {
		name, _, ok := strings.Cut(kv, "=")
		// Windows keeps per-drive directories as "=C:=C:\..."; they are
		// not variables a host needs.
		if !ok || name == "" || !allowed(name) || overridden(name) {
			continue
		}
		out = append(out, kv)
	}
	return append(out, extra...)
}
