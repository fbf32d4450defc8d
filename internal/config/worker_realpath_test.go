package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/exchange/shell"
)

// site wraps a shell block (indented for "      shell:") into a worker
// config with one on-prem site, site-a.
func site(shellBlock string) string {
	return "onprem:\n  sites:\n    site-a:\n      shell:\n" + shellBlock
}

// endpointsOK is a complete endpoints block, at line 1.
const endpointsOK = `endpoints:
  authority_host: https://127.0.0.1:7480/
  graph: https://127.0.0.1:7480/v1.0
  exchange_online: https://127.0.0.1:7480
`

// TestWorkerConfigRealPathRules has one row per rule of the real worker's
// configuration: the PowerShell host's environment (shell.env), its start
// timeout and the step timeout both shell timeouts must fit in, and the
// endpoints block. Each row is one broken config and the one problem it
// must produce, with its line and field.
func TestWorkerConfigRealPathRules(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		env   map[string]string
		line  int
		field string
		msg   string
	}{
		{
			name: "shell.env value is an env: reference",
			yaml: site("        env:\n          HF_TOKEN: env:HF_SECRET_Pa55\n"),
			line: 6, field: "onprem.sites.site-a.shell.env.HF_TOKEN",
			msg: "looks like a secret reference (env: or file:); the PowerShell host must not receive secrets",
		},
		{
			name: "shell.env value is a file: reference",
			yaml: site("        env:\n          HF_TOKEN: file:/run/secrets/hunter2\n"),
			line: 6, field: "onprem.sites.site-a.shell.env.HF_TOKEN",
			msg: "looks like a secret reference",
		},
		{
			name: "shell.env name is not a variable name",
			yaml: site("        env:\n          \"HF TOKEN\": x\n"),
			line: 6, field: "onprem.sites.site-a.shell.env.HF TOKEN",
			msg: `"HF TOKEN" is not an environment variable name`,
		},
		{
			name: "shell.env name with =",
			yaml: site("        env:\n          \"A=B\": x\n"),
			line: 6, field: "onprem.sites.site-a.shell.env.A=B",
			msg: "is not an environment variable name",
		},
		{
			name: "shell.env name given twice in different case",
			yaml: site("        env:\n          PATH: C:/a\n          Path: C:/b\n"),
			line: 7, field: "onprem.sites.site-a.shell.env.Path",
			msg: `"Path" repeats "PATH" (line 6): environment variable names are case-insensitive`,
		},
		{
			name: "shell.env without a value",
			yaml: site("        env:\n          HYBRIDFLOW_SIM_PSHOST:\n"),
			line: 6, field: "onprem.sites.site-a.shell.env.HYBRIDFLOW_SIM_PSHOST",
			msg: "needs a value",
		},
		{
			name: "shell.env is a list",
			yaml: site("        env: [A=b]\n"),
			line: 5, field: "onprem.sites.site-a.shell.env",
			msg: "must be a mapping",
		},
		{
			name: "start_timeout not a duration",
			yaml: site("        start_timeout: soon\n"),
			line: 5, field: "onprem.sites.site-a.shell.start_timeout",
			msg: `"soon" is not a duration`,
		},
		{
			name: "start_timeout not positive",
			yaml: site("        start_timeout: 0s\n"),
			line: 5, field: "onprem.sites.site-a.shell.start_timeout",
			msg: "must be positive",
		},
		{
			name: "call_timeout plus start_timeout exceed the step's start-to-close",
			yaml: site("        start_timeout: 2m\n        call_timeout: 3m1s\n"),
			line: 6, field: "onprem.sites.site-a.shell.call_timeout",
			msg: "start_timeout (2m0s) plus call_timeout (3m1s) is 5m1s, more than the 5m0s one attempt of an on-prem or Lync step may take",
		},
		{
			name: "call_timeout alone with the default start_timeout",
			yaml: "lync:\n  sites:\n    site-a:\n      shell:\n        call_timeout: 4m\n",
			line: 5, field: "lync.sites.site-a.shell.call_timeout",
			msg: "start_timeout (2m0s) plus call_timeout (4m0s) is 6m0s",
		},
		{
			name: "start_timeout alone with the default call_timeout",
			yaml: site("        start_timeout: 10m\n"),
			line: 5, field: "onprem.sites.site-a.shell.start_timeout",
			msg: "lower them so their sum is at most 5m0s",
		},
		{
			name: "endpoints without graph",
			yaml: "endpoints:\n  authority_host: https://127.0.0.1:7480/\n  exchange_online: https://127.0.0.1:7480\n",
			line: 2, field: "endpoints.graph",
			msg: "required with authority_host and exchange_online: the endpoints authority_host, graph and exchange_online are replaced together",
		},
		{
			name: "endpoints with a plain-http URL",
			yaml: strings.Replace(endpointsOK, "https://127.0.0.1:7480/v1.0", "http://127.0.0.1:7480/v1.0", 1),
			line: 3, field: "endpoints.graph",
			msg: `"http://127.0.0.1:7480/v1.0" must be an https URL`,
		},
		{
			name: "endpoints URL with user info",
			yaml: strings.Replace(endpointsOK, "https://127.0.0.1:7480\n", "https://admin:pw@127.0.0.1:7480\n", 1),
			line: 4, field: "endpoints.exchange_online",
			msg: "must not contain user info",
		},
		{
			name: "endpoints ca_file alone",
			yaml: "endpoints:\n  ca_file: .data/sim/ca.pem\n",
			line: 2, field: "endpoints.ca_file",
			msg: "only used with authority_host, graph and exchange_online",
		},
		{
			name: "empty endpoints block",
			yaml: "endpoints:\n",
			line: 1, field: "endpoints",
			msg: "empty endpoints block",
		},
		{
			name: "endpoints with an unknown field",
			yaml: endpointsOK + "  token: https://127.0.0.1:7480/\n",
			line: 5, field: "endpoints.token",
			msg: "unknown field (known fields: authority_host, graph, exchange_online, ca_file)",
		},
		{
			name: "endpoints together with simulate",
			yaml: endpointsOK + "simulate:\n  world: configs/sim/demo.yaml\n",
			line: 2, field: "endpoints",
			msg: "cannot be used with simulate",
		},
		{
			name: "endpoints with a simulated world from the environment",
			yaml: endpointsOK,
			env:  map[string]string{"HYBRIDFLOW_SIMULATE_WORLD": "configs/sim/demo.yaml"},
			line: 2, field: "endpoints",
			msg: "cannot be used with simulate",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseWorkerConfig("worker.yaml", []byte(tc.yaml), envOf(tc.env))
			if cfg != nil {
				t.Errorf("want nil config on error, got %+v", cfg)
			}
			wantOne(t, err, "worker.yaml", tc.line, tc.field, tc.msg)
			// A refused reference names where a secret is kept: not echoed.
			for _, s := range []string{"Pa55", "hunter2"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error echoes the refused value: %v", err)
				}
			}
		})
	}
}

func TestWorkerConfigShellEnvAndTimeouts(t *testing.T) {
	cfg, err := ParseWorkerConfig("w.yaml", []byte(`roles: ["onprem:site-a", "lync:site-a"]
onprem:
  sites:
    site-a:
      shell:
        start_timeout: 3m
        call_timeout: 2m      # 3m + 2m is exactly the step's bound: allowed
        env:
          HYBRIDFLOW_SIM_PSHOST: http://127.0.0.1:7481/PowerShell/site-a
          ProgramFiles(x86): D:/x86
          EMPTY: ""
lync:
  sites:
    site-a:
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	sh := cfg.OnPremSites["site-a"].Shell
	if sh.StartTimeout != 3*time.Minute || sh.CallTimeout != 2*time.Minute {
		t.Errorf("timeouts: start %s call %s", sh.StartTimeout, sh.CallTimeout)
	}
	want := map[string]string{"HYBRIDFLOW_SIM_PSHOST": "http://127.0.0.1:7481/PowerShell/site-a", "ProgramFiles(x86)": "D:/x86", "EMPTY": ""}
	if !reflect.DeepEqual(sh.Env, want) {
		t.Errorf("env = %v, want %v", sh.Env, want)
	}
	// A site without a shell block gets the defaults, and no extra env.
	if l := cfg.LyncSites["site-a"].Shell; l.StartTimeout != DefaultStartTimeout || l.CallTimeout != 2*time.Minute || l.Env != nil {
		t.Errorf("lync site defaults: %+v", l)
	}
	// The config's default is the shell's, and the defaults fit in a step.
	if DefaultStartTimeout != shell.DefaultStartTimeout || defaultCallTimeout != shell.DefaultCallTimeout {
		t.Errorf("defaults differ: config start %s call %s, shell start %s call %s", DefaultStartTimeout, defaultCallTimeout, shell.DefaultStartTimeout, shell.DefaultCallTimeout)
	}
	if DefaultStartTimeout+defaultCallTimeout > StepStartToClose {
		t.Errorf("the default timeouts (%s + %s) do not fit in a step's %s", DefaultStartTimeout, defaultCallTimeout, StepStartToClose)
	}
}

func TestWorkerConfigEndpoints(t *testing.T) {
	cfg, err := ParseWorkerConfig("w.yaml", []byte(endpointsOK+"  ca_file: .data/sim/ca.pem\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := &EndpointsConfig{AuthorityHost: "https://127.0.0.1:7480/", Graph: "https://127.0.0.1:7480/v1.0",
		ExchangeOnline: "https://127.0.0.1:7480", CAFile: ".data/sim/ca.pem"}
	if !reflect.DeepEqual(cfg.Endpoints, want) {
		t.Errorf("endpoints = %+v, want %+v", cfg.Endpoints, want)
	}
	if cfg, err := ParseWorkerConfig("w.yaml", []byte(endpointsOK), noEnv); err != nil || cfg.Endpoints.CAFile != "" {
		t.Errorf("without ca_file: %+v, %v", cfg, err)
	}
}

// The example config documents endpoints and shell.env as commented-out
// blocks (the example itself runs a simulated world, which endpoints may
// not join). Uncommented, with simulate taken out, they must be valid and
// mean what the comments say.
func TestWorkerExampleDocumentedBlocks(t *testing.T) {
	data, err := os.ReadFile("../../configs/worker.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case l == "simulate:":
			for i+1 < len(lines) && strings.HasPrefix(lines[i+1], "  ") {
				i++
			}
			continue
		case l == "# endpoints:" || strings.TrimSpace(l) == "# env:":
			indent := l[:strings.Index(l, "#")]
			out = append(out, indent+strings.TrimPrefix(l[len(indent):], "# "))
			for i+1 < len(lines) && strings.HasPrefix(lines[i+1], indent+"#   ") {
				i++
				out = append(out, indent+strings.TrimPrefix(lines[i][len(indent):], "# "))
			}
			continue
		}
		out = append(out, l)
	}
	cfg, err := ParseWorkerConfig("worker.example.yaml (uncommented)", []byte(strings.Join(out, "\n")), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if e := cfg.Endpoints; e == nil || e.Graph != "https://127.0.0.1:7480/v1.0" || e.CAFile != ".data/sim/ca.pem" {
		t.Errorf("endpoints = %+v", cfg.Endpoints)
	}
	if v := cfg.OnPremSites["site-a"].Shell.Env["PSModulePath"]; !strings.Contains(v, `C:\Program Files\WindowsPowerShell\Modules;`) {
		t.Errorf("site-a shell.env = %v", cfg.OnPremSites["site-a"].Shell.Env)
	}
	if sh := cfg.OnPremSites["site-a"].Shell; sh.StartTimeout != 2*time.Minute {
		t.Errorf("site-a start_timeout = %s", sh.StartTimeout)
	}
}
