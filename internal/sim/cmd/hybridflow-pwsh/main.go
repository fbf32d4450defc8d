// Command hybridflow-pwsh stands in for powershell.exe / pwsh when the
// worker's on-prem hosts talk to the stand-alone simulator. The worker
// starts it from a site's real shell.command, exactly as it would start
// PowerShell, for example
//
//	hybridflow-pwsh -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -File /tmp/hybridflow-pshost-123/bootstrap.ps1
//
// and it keeps PowerShell's command-line contract: parameters are
// case-insensitive and may be shortened as PowerShell allows (-nol, -nop,
// -noni, -ex, -ep, -f, ...), everything after the -File path belongs to the
// script, and the script must exist, end in .ps1 and be allowed by the
// execution policy. It refuses, with a PowerShell-style message on stderr
// and without a ready line, what would not work with real PowerShell
// either: -Command or -EncodedCommand (PowerShell would parse the
// protocol's JSON lines as PowerShell source), no -File, an unknown
// parameter. And it refuses a script that is not byte for byte
// hybridflow's bootstrap.ps1, so a worker handing PowerShell anything else
// fails here as it would fail in production.
//
// Then it plays bootstrap.ps1 over stdin/stdout: it reads the config line,
// opens an HTTP upgrade to the simulator's PowerShell gateway (a remote
// session's connectionUri; HYBRIDFLOW_SIM_PSHOST for the modes that run on
// the server itself), forwards the config line, and relays one request
// line and one reply line at a time. It ends a session as the script
// does: when stdin ends, a remote session is removed ({"remove":true} to
// the gateway, the script's Remove-PSSession); and since the script runs
// a remote session's command as a job and keeps watching stdin, stdin
// ending during such a call stops it without a reply and removes the
// session too. A local session's call runs to its end first.
//
// Exit status: 0 when stdin ended (the client's goodbye); 1 when the
// session could not be set up (after a ready:false line) or the script
// was refused; 3 when the simulator dropped the session (a crashed host);
// 64 for a command line PowerShell would not accept.
//
// It links only the standard library and two tiny packages, because one
// starts for every site the worker serves.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.LookupEnv))
}

// usage is what -Help prints.
const usage = `hybridflow-pwsh: hybridflow's PowerShell stand-in for the simulator.

hybridflow-pwsh [-NoLogo] [-NoProfile] [-NonInteractive]
    [-ExecutionPolicy <policy>] [-InputFormat Text|XML] [-OutputFormat Text|XML]
    [-WindowStyle <style>] [-Version <version>]
    -File <path to hybridflow's bootstrap.ps1> [script arguments]

Set HYBRIDFLOW_SIM_PSHOST to the simulator's gateway URL
(http://host:port/PowerShell/<site> or /OcsPowerShell/<site>) for the
local-snapin, lync, skype and none session modes; a remote session's
connectionUri names the gateway itself.
`

func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) (string, bool)) int {
	inv, err := parseCommandLine(args)
	if err == nil && inv.help {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	if err == nil {
		err = loadScript(inv)
	}
	if err != nil {
		fmt.Fprintln(stderr, err.msg)
		return err.code
	}
	h := &host{in: bufio.NewReader(stdin), out: stdout, stderr: stderr, getenv: getenv}
	return h.run()
}
