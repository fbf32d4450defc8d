package shell

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The test binary doubles as a fake PowerShell host: when fakeHostEnv is
// set, init runs the host loop and exits before any test starts. It speaks
// the real protocol over real pipes, with per-cmdlet misbehaviour, so the
// client's process handling is tested without PowerShell. (The simulator's
// contract tests in internal/sim exercise the full relay instead.)
const fakeHostEnv = "HYBRIDFLOW_FAKE_PSHOST"

// fakeMarksEnv names a directory where a fake host that leaves a call in
// a remote session because its input ended writes <pid>.removed: the
// bootstrap's Remove-PSSession, made visible to tests.
const fakeMarksEnv = "HYBRIDFLOW_FAKE_PSHOST_MARKS"

func init() {
	mode, ok := os.LookupEnv(fakeHostEnv)
	if !ok {
		return
	}
	os.Exit(fakeHost(mode))
}

// fakeHostArgv runs this test binary as a fake host in the given start mode:
//
//	ok          ready, then serve
//	banner      like ok, but print non-protocol lines before ready and before every reply
//	notready    {"ready":false,...}
//	badversion  ready with protocol version 99
//	silent      never says anything
//	die-early   write to stderr and exit 5 before ready
//	slowready   like ok, but ready only after 600ms
func fakeHostArgv(mode string) ([]string, []string) {
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	// The race runtime otherwise sleeps a second at every host's exit.
	return []string{exe, ScriptPlaceholder}, []string{fakeHostEnv + "=" + mode, "GORACE=atexit_sleep_ms=0"}
}

// Cmdlet behaviours of the fake host once serving.
const (
	fakeEcho     = "Get-AuthServer"                 // rows: [{cmdlet, parameters, pid}]
	fakeHang     = "Get-AuthConfig"                 // never answers; a remote session leaves when its input ends, as bootstrap.ps1 does
	fakeDie      = "Remove-AuthServer"              // stderr + exit 7 mid-call
	fakeNotFound = "Get-PartnerApplication"         // typed error
	fakeStale    = "Get-ExchangeServer"             // a reply with a wrong id first
	fakeConfused = "Get-OrganizationConfig"         // batch results for a single command
	fakeScript   = "Get-AcceptedDomain"             // rows: [{path, matches}] about the bootstrap copy
	fakeSlow     = "Get-IntraOrganizationConnector" // answers after 20ms
	fakeEnviron  = "Get-Mailbox"                    // rows: [{env: the host's environment, NAME=value}]
)

func fakeHost(mode string) int {
	in := bufio.NewReader(os.Stdin)
	out := os.Stdout
	send := func(v any) {
		b, _ := json.Marshal(v)
		out.Write(append(b, '\n'))
	}
	first, err := in.ReadBytes('\n')
	if err != nil {
		return 2
	}
	var cfg ConfigLine
	if err := json.Unmarshal(first, &cfg); err != nil {
		return 2
	}
	switch mode {
	case "silent":
		time.Sleep(time.Hour)
		return 0
	case "die-early":
		fmt.Fprintln(os.Stderr, "Add-PSSnapin: snap-in not installed")
		return 5
	case "notready":
		send(map[string]any{"ready": false, "version": 1, "error": map[string]any{
			"type": "System.Management.Automation.Remoting.PSRemotingTransportException", "message": "Connecting to remote server failed", "category": "OpenError"}})
		return 1
	case "slowready":
		time.Sleep(600 * time.Millisecond)
		send(Ready{Ready: true, Version: 1, Session: "slow"})
	case "badversion":
		send(map[string]any{"ready": true, "version": 99, "session": "x"})
	case "banner":
		fmt.Fprintln(out, "WARNING: banner text before ready")
		fmt.Fprintln(out, `{"not":"a reply"}`)
		fallthrough
	default:
		send(Ready{Ready: true, Version: 1, Session: fmt.Sprintf("fake-%d-%s-%s", os.Getpid(), cfg.Config.Mode, cfg.Config.ConnectionURI)})
	}
	// removed marks the script's Remove-PSSession on its way out.
	removed := func() int {
		if dir := os.Getenv(fakeMarksEnv); dir != "" && cfg.Config.Mode == ModeRemote {
			_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.removed", os.Getpid())), nil, 0o600)
		}
		return 0
	}
	for {
		line, err := in.ReadBytes('\n')
		if err != nil {
			return removed()
		}
		var req Request
		if err := json.Unmarshal(line, &req); err != nil {
			send(map[string]any{"id": 0, "error": map[string]any{"type": "HybridFlow.ProtocolException", "message": err.Error()}})
			continue
		}
		if mode == "banner" {
			fmt.Fprintln(out, "Write-Host chatter {id:1}")
		}
		if req.Batch != nil {
			res := make([]fakeResult, len(req.Batch))
			for i, c := range req.Batch {
				rows, e := fakeRun(c.Cmdlet, c.Parameters)
				res[i] = fakeResult{Rows: rows, Error: e}
			}
			send(map[string]any{"id": req.ID, "results": res})
			continue
		}
		switch req.Cmdlet {
		case fakeHang:
			if cfg.Config.Mode == ModeRemote {
				// bootstrap.ps1 runs a remote session's command as a job
				// and keeps reading its input: the end of input stops
				// the command and the script leaves.
				for {
					if _, err := in.ReadBytes('\n'); err != nil {
						return removed()
					}
				}
			}
			time.Sleep(time.Hour)
		case fakeDie:
			fmt.Fprintln(os.Stderr, "fatal: host crashed")
			return 7
		case fakeStale:
			send(map[string]any{"id": req.ID + 1000, "rows": []any{map[string]any{"stale": true}}})
		case fakeConfused:
			send(map[string]any{"id": req.ID, "results": []any{}})
			continue
		case fakeSlow:
			time.Sleep(20 * time.Millisecond)
		}
		rows, e := fakeRun(req.Cmdlet, req.Parameters)
		send(map[string]any{"id": req.ID, "rows": rows, "error": e})
	}
}

type fakeResult struct {
	Rows  []map[string]any `json:"rows"`
	Error map[string]any   `json:"error"`
}

func fakeRun(cmdlet string, params map[string]any) ([]map[string]any, map[string]any) {
	switch cmdlet {
	case fakeNotFound:
		return nil, map[string]any{"type": "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException", "message": "couldn't be found", "category": "NotSpecified"}
	case fakeScript:
		path := os.Args[1]
		b, err := os.ReadFile(path)
		return []map[string]any{{"path": path, "matches": err == nil && bytes.Equal(b, bootstrapScript)}}, nil
	case fakeEnviron:
		return []map[string]any{{"env": os.Environ()}}, nil
	}
	return []map[string]any{{"cmdlet": cmdlet, "parameters": params, "pid": os.Getpid()}}, nil
}
