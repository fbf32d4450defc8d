package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/exchange/shell"
)

// noEnv keeps tests independent of the process environment.
func noEnv(string) string { return "" }

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseWorkerConfigBroken(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		line  int
		field string
		msg   string
	}{
		{
			name: "literal secret in a credential",
			yaml: `credentials:
  default:
    kind: client-secret
    client_id: 33333333-3333-4333-8333-000000000001
    secret: hunter2-Sup3rSecret~value
`,
			line: 5, field: "credentials.default.secret", msg: "literal secrets are not allowed",
		},
		{
			name: "the old default shell command (-Command -)",
			yaml: "onprem:\n  sites:\n    site-a:\n      shell:\n        command: [\"powershell.exe\", \"-NoLogo\", \"-NoProfile\", \"-NonInteractive\", \"-Command\", \"-\"]\n",
			line: 5, field: "onprem.sites.site-a.shell.command", msg: `argument "-Command" makes PowerShell read its script inline`,
		},
		{
			name: "shell command with -EncodedCommand",
			yaml: "onprem:\n  sites:\n    site-a:\n      shell:\n        command: [pwsh, -enc, AAAA, -File, \"{script}\"]\n",
			line: 5, field: "onprem.sites.site-a.shell.command", msg: `argument "-enc" makes PowerShell read its script inline`,
		},
		{
			name: "shell command with /c",
			yaml: "lync:\n  sites:\n    site-a:\n      shell:\n        command: [powershell.exe, /c, \"{script}\"]\n",
			line: 5, field: "lync.sites.site-a.shell.command", msg: `argument "/c" makes PowerShell read its script inline`,
		},
		{
			name: "shell command without the script placeholder",
			yaml: "onprem:\n  sites:\n    site-a:\n      shell:\n        command: [pwsh, -NoProfile, -File, C:/hybridflow/bootstrap.ps1]\n",
			line: 5, field: "onprem.sites.site-a.shell.command", msg: "no {script} placeholder",
		},
		{
			name: "shell command with the placeholder twice",
			yaml: "onprem:\n  sites:\n    site-a:\n      shell:\n        command: [pwsh, -File, \"{script}\", \"{script}\"]\n",
			line: 5, field: "onprem.sites.site-a.shell.command", msg: "{script} appears 2 times",
		},
		{
			name: "pollers of 0",
			yaml: "pollers:\n  workflow_tasks: 0\n",
			line: 2, field: "pollers.workflow_tasks", msg: "must be between 2 and 100",
		},
		{
			// The Go SDK panics in worker.New with one workflow task poller
			// (the sticky queue needs its own).
			name: "one workflow task poller",
			yaml: "pollers:\n  workflow_tasks: 1\n",
			line: 2, field: "pollers.workflow_tasks", msg: "must be between 2 and 100",
		},
		{
			name: "too many pollers",
			yaml: "pollers:\n  activity_tasks: 101\n",
			line: 2, field: "pollers.activity_tasks", msg: "must be between 1 and 100",
		},
		{
			name: "pollers not a number",
			yaml: "pollers:\n  activity_tasks: eight\n",
			line: 2, field: "pollers.activity_tasks", msg: "must be an integer",
		},
		{
			name: "unknown pollers field",
			yaml: "pollers:\n  sticky: 4\n",
			line: 2, field: "pollers.sticky", msg: "unknown field (known fields: workflow_tasks, activity_tasks)",
		},
		{
			name: "literal Temporal API key",
			yaml: `temporal:
  api_key: eyJhbGciOiJFUzI1NiJ9.c2VjcmV0
`,
			line: 2, field: "temporal.api_key", msg: "must be a credential reference env:NAME or file:PATH",
		},
		{
			name: "bad env reference name",
			yaml: `credentials:
  default:
    kind: client-secret
    client_id: 33333333-3333-4333-8333-000000000001
    secret: env:HF-SECRET
`,
			line: 5, field: "credentials.default.secret", msg: "the env: name must be letters, digits and underscores",
		},
		{
			name: "client secret without client_id",
			yaml: `credentials:
  default:
    kind: client-secret
    secret: env:HF_SECRET
`,
			line: 3, field: "credentials.default.client_id", msg: "required for kind client-secret",
		},
		{
			name: "certificate given to a client-secret credential",
			yaml: `credentials:
  default:
    kind: client-secret
    client_id: 33333333-3333-4333-8333-000000000001
    secret: env:HF_SECRET
    certificate: file:/x.pem
`,
			line: 6, field: "credentials.default.certificate", msg: "not used by kind client-secret",
		},
		{
			name: "unknown credential kind",
			yaml: `credentials:
  default:
    kind: password
`,
			line: 3, field: "credentials.default.kind", msg: `unknown credential kind "password"`,
		},
		{
			name: "bad client_id",
			yaml: `credentials:
  mi:
    kind: managed-identity
    client_id: my-app
`,
			line: 4, field: "credentials.mi.client_id", msg: "is not a GUID",
		},
		{
			name: "unknown field",
			yaml: `temporal:
  adress: 127.0.0.1:7233
`,
			line: 2, field: "temporal.adress", msg: "unknown field (known fields: address, namespace, identity, tls, api_key, codec, grpc_compression, require_encryption)",
		},
		{
			name: "address without port",
			yaml: `temporal:
  address: temporal.example.com
`,
			line: 2, field: "temporal.address", msg: "is not host:port",
		},
		{
			name: "bad gRPC compression",
			yaml: `temporal:
  grpc_compression: zstd
`,
			line: 2, field: "temporal.grpc_compression", msg: `unknown gRPC compression "zstd" (valid: auto, gzip, none)`,
		},
		{
			name: "bad namespace",
			yaml: `temporal:
  namespace: "my namespace"
`,
			line: 2, field: "temporal.namespace", msg: "is not a namespace name",
		},
		{
			name: "bad role kind",
			yaml: `roles: [cloud, admin]
`,
			line: 1, field: "roles[1]", msg: `"admin" is not a role`,
		},
		{
			name: "role with an uppercase site",
			yaml: `simulate: {world: w.yaml}
roles:
  - cloud
  - onprem:Site-A
`,
			line: 4, field: "roles[1]", msg: `did you mean "site-a"?`,
		},
		{
			name: "duplicate role",
			yaml: `roles: [cloud, cloud]
`,
			line: 1, field: "roles[1]", msg: "role cloud listed twice",
		},
		{
			name: "empty roles",
			yaml: `roles: []
`,
			line: 1, field: "roles", msg: "no roles",
		},
		{
			name: "real worker without a site entry for its role",
			yaml: `roles:
  - cloud
  - onprem:site-a
`,
			line: 3, field: "roles[1]", msg: "role onprem:site-a has no onprem.sites.site-a entry",
		},
		{
			name: "bad log level",
			yaml: `log_level: verbose
`,
			line: 1, field: "log_level", msg: `unknown log level "verbose" (valid: debug, info, warn, error)`,
		},
		{
			name: "simulate without world",
			yaml: `simulate:
`,
			line: 1, field: "simulate.world", msg: "required",
		},
		{
			name: "seed not an integer",
			yaml: `simulate:
  world: w.yaml
  seed: one
`,
			line: 3, field: "simulate.seed", msg: "must be an integer",
		},
		{
			name: "bad duration",
			yaml: `onprem:
  sites:
    site-a:
      shell:
        call_timeout: 2 minutes
`,
			line: 5, field: "onprem.sites.site-a.shell.call_timeout", msg: `"2 minutes" is not a duration`,
		},
		{
			name: "negative duration",
			yaml: `onprem:
  sites:
    site-a:
      shell: {call_timeout: -1s}
`,
			line: 4, field: "onprem.sites.site-a.shell.call_timeout", msg: "must be positive",
		},
		{
			name: "remote session without connection_uri",
			yaml: `lync:
  sites:
    site-a:
      shell:
        session: remote
`,
			line: 5, field: "lync.sites.site-a.shell.connection_uri", msg: "required when session is remote",
		},
		{
			name: "connection_uri with credentials",
			yaml: `onprem:
  sites:
    site-a:
      shell:
        session: remote
        connection_uri: http://admin:Pa55@ex01.contoso.local/PowerShell
`,
			line: 6, field: "onprem.sites.site-a.shell.connection_uri", msg: "must not contain user info",
		},
		{
			name: "connection_uri with a bad scheme",
			yaml: `onprem:
  sites:
    site-a:
      shell:
        session: remote
        connection_uri: ftp://ex01.contoso.local/PowerShell
`,
			line: 6, field: "onprem.sites.site-a.shell.connection_uri", msg: "must be an http or https URL",
		},
		{
			name: "bad site key",
			yaml: `onprem:
  sites:
    Site_A:
      shell: {}
`,
			line: 3, field: "onprem.sites.Site_A", msg: "is not a valid site name",
		},
		{
			name: "unknown session",
			yaml: `onprem:
  sites:
    site-a:
      shell: {session: ssh}
`,
			line: 4, field: "onprem.sites.site-a.shell.session", msg: `unknown session "ssh"`,
		},
		{
			name: "empty command",
			yaml: `onprem:
  sites:
    site-a:
      shell: {command: []}
`,
			line: 4, field: "onprem.sites.site-a.shell.command", msg: "empty command",
		},
		{
			name: "client certificate without key",
			yaml: `temporal:
  tls:
    cert_file: client.pem
`,
			line: 3, field: "temporal.tls", msg: "cert_file and key_file go together",
		},
		{
			name: "metrics address",
			yaml: `metrics_address: 9464
`,
			line: 1, field: "metrics_address", msg: "is not host:port",
		},
		{
			name: "malformed YAML",
			yaml: `temporal:
  address: 127.0.0.1:7233
 namespace: default
`,
			line: 3, field: "", msg: "malformed YAML:",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseWorkerConfig("worker.yaml", []byte(tc.yaml), noEnv)
			if cfg != nil {
				t.Errorf("want nil config on error, got %+v", cfg)
			}
			p := wantOne(t, err, "worker.yaml", tc.line, tc.field, tc.msg)
			for _, secret := range []string{"hunter2", "eyJhbGci", "Pa55"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error echoes secret material: %v", p)
				}
			}
		})
	}
}

func TestParseWorkerConfigReportsEveryProblem(t *testing.T) {
	data := `temporal:
  address: nowhere
  api_key: plain-secret
roles: [cloud, "onprem:site-x", bogus]
log_level: loud
credentials:
  default:
    kind: client-certificate
onprem:
  sites:
    site-a:
      shell: {session: remote, call_timeout: soon}
`
	_, err := ParseWorkerConfig("w.yaml", []byte(data), noEnv)
	ps := problemsOf(t, err)
	want := []struct {
		line  int
		field string
	}{
		{2, "temporal.address"},
		{3, "temporal.api_key"},
		{4, "roles[2]"},
		{4, "roles[1]"}, // cross-check: no onprem.sites.site-x; sorted by line, stable
		{5, "log_level"},
		{8, "credentials.default.client_id"},
		{8, "credentials.default.certificate"},
		{12, "onprem.sites.site-a.shell.connection_uri"},
		{12, "onprem.sites.site-a.shell.call_timeout"},
	}
	if len(ps) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(ps), len(want), ps)
	}
	for i, w := range want {
		if ps[i].Line != w.line || ps[i].Field != w.field {
			t.Errorf("problem %d = %v, want w.yaml:%d %s", i, ps[i], w.line, w.field)
		}
	}
}

func TestWorkerConfigDefaults(t *testing.T) {
	cfg, err := LoadWorkerConfig("", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := &WorkerConfig{
		Temporal:    TemporalConfig{Address: "127.0.0.1:7233", Namespace: "default"},
		Roles:       []Role{{Kind: RoleCloud}},
		LogLevel:    "info",
		Credentials: map[string]Credential{},
		OnPremSites: map[string]SiteConfig{},
		LyncSites:   map[string]SiteConfig{},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestWorkerConfigPollers(t *testing.T) {
	cfg, err := ParseWorkerConfig("worker.yaml", []byte("pollers:\n  workflow_tasks: 16\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	// An absent count stays 0: the worker's default applies.
	if want := (Pollers{WorkflowTasks: 16}); cfg.Pollers != want {
		t.Errorf("pollers = %+v, want %+v", cfg.Pollers, want)
	}
}

func TestWorkerConfigSiteDefaults(t *testing.T) {
	cfg, err := ParseWorkerConfig("w.yaml", []byte("roles: [\"onprem:site-a\"]\nonprem:\n  sites:\n    site-a:\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	sh := cfg.OnPremSites["site-a"].Shell
	if sh.Session != SessionLocalSnapin || sh.CallTimeout != 2*time.Minute || sh.Command[0] != "powershell.exe" {
		t.Errorf("site defaults = %+v", sh)
	}
	// The default must itself pass the rules every configured command
	// passes, and hand PowerShell the bootstrap as a script file.
	if msg := shellCommandMsg(sh.Command); msg != "" {
		t.Errorf("default shell command %q is refused: %s", sh.Command, msg)
	}
	if n := len(sh.Command); n < 2 || !strings.EqualFold(sh.Command[n-2], "-File") || sh.Command[n-1] != shell.ScriptPlaceholder {
		t.Errorf("default shell command %q does not end with -File %s", sh.Command, shell.ScriptPlaceholder)
	}
}

func TestShellCommandAccepted(t *testing.T) {
	for _, argv := range [][]string{
		{"powershell.exe", "-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-File", "{script}"},
		{"pwsh", "-NoProfile", "-ConfigurationName", "x", "-f", "{script}"},
		{"C:/Windows/System32/WindowsPowerShell/v1.0/powershell.exe", "-ex", "Bypass", "-File", "{script}"},
	} {
		if msg := shellCommandMsg(argv); msg != "" {
			t.Errorf("%q refused: %s", argv, msg)
		}
	}
	if ScriptPlaceholder != shell.ScriptPlaceholder {
		t.Errorf("config.ScriptPlaceholder %q != shell.ScriptPlaceholder %q", ScriptPlaceholder, shell.ScriptPlaceholder)
	}
}

func TestWorkerConfigEnvOverrides(t *testing.T) {
	file := `temporal:
  address: 127.0.0.1:7233
  namespace: default
roles: [cloud]
log_level: info
`
	env := envOf(map[string]string{
		"HYBRIDFLOW_TEMPORAL_ADDRESS":          "temporal.example.com:7233",
		"HYBRIDFLOW_TEMPORAL_NAMESPACE":        "prod.acct1",
		"HYBRIDFLOW_TEMPORAL_IDENTITY":         "worker-7",
		"HYBRIDFLOW_TEMPORAL_GRPC_COMPRESSION": "gzip",
		"HYBRIDFLOW_LOG_LEVEL":                 "debug",
		"HYBRIDFLOW_ROLES":                     " onprem:site-a , lync:site-a,",
		"HYBRIDFLOW_SIMULATE_WORLD":            "configs/sim/demo.yaml",
		"HYBRIDFLOW_METRICS_ADDRESS":           ":9464",
		"HYBRIDFLOW_TEMPORAL_TLS_CA_FILE":      "ca.pem",
		"HYBRIDFLOW_TEMPORAL_TLS_CERT_FILE":    "c.pem",
		"HYBRIDFLOW_TEMPORAL_TLS_KEY_FILE":     "c.key",
		"HYBRIDFLOW_TEMPORAL_TLS_SERVER_NAME":  "temporal.example.com",
	})
	cfg, err := ParseWorkerConfig("w.yaml", []byte(file), env)
	if err != nil {
		t.Fatal(err)
	}
	want := TemporalConfig{
		Address: "temporal.example.com:7233", Namespace: "prod.acct1", Identity: "worker-7", GRPCCompression: "gzip",
		TLS: &TLSConfig{CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "c.key", ServerName: "temporal.example.com"},
	}
	if !reflect.DeepEqual(cfg.Temporal, want) {
		t.Errorf("temporal = %+v, want %+v", cfg.Temporal, want)
	}
	wantRoles := []Role{{RoleOnPrem, "site-a"}, {RoleLync, "site-a"}}
	if !reflect.DeepEqual(cfg.Roles, wantRoles) {
		t.Errorf("roles = %v, want %v", cfg.Roles, wantRoles)
	}
	if cfg.LogLevel != "debug" || cfg.MetricsAddress != ":9464" {
		t.Errorf("log level %q, metrics %q", cfg.LogLevel, cfg.MetricsAddress)
	}
	if cfg.Simulate == nil || cfg.Simulate.World != "configs/sim/demo.yaml" || cfg.Simulate.Seed != 1 {
		t.Errorf("simulate = %+v", cfg.Simulate)
	}
}

func TestWorkerConfigEnvProblems(t *testing.T) {
	env := envOf(map[string]string{
		"HYBRIDFLOW_TEMPORAL_ADDRESS": "no-port",
		"HYBRIDFLOW_LOG_LEVEL":        "trace",
		"HYBRIDFLOW_ROLES":            "cloud,onprem:Bad/Site,lync",
	})
	_, err := ParseWorkerConfig("w.yaml", []byte("log_level: warn\n"), env)
	ps := problemsOf(t, err)
	got := map[string]Problem{}
	for _, p := range ps {
		if p.File != "environment" || p.Line != 0 {
			t.Errorf("env problem has a file position: %v", p)
		}
		got[p.Field] = p
	}
	for _, name := range []string{"HYBRIDFLOW_TEMPORAL_ADDRESS", "HYBRIDFLOW_LOG_LEVEL", "HYBRIDFLOW_ROLES"} {
		if _, ok := got[name]; !ok {
			t.Errorf("no problem for %s in\n%v", name, ps)
		}
	}
	// Both bad roles are reported, not just the first.
	if r := got["HYBRIDFLOW_ROLES"].Message; !strings.Contains(r, "Bad/Site") || !strings.Contains(r, `"lync" needs a site`) {
		t.Errorf("roles problem = %q", r)
	}
}

// Cross-checks blame the environment when the environment supplied the value.
func TestWorkerConfigEnvRolesNeedSites(t *testing.T) {
	_, err := ParseWorkerConfig("w.yaml", []byte("roles: [cloud]\n"), envOf(map[string]string{"HYBRIDFLOW_ROLES": "onprem:site-z"}))
	ps := problemsOf(t, err)
	if len(ps) != 1 || ps[0].File != "environment" || ps[0].Field != "HYBRIDFLOW_ROLES" || !strings.Contains(ps[0].Message, "onprem.sites.site-z") {
		t.Errorf("got %v", ps)
	}
	// The simulated world plays every site, so no entry is needed.
	if _, err := ParseWorkerConfig("w.yaml", nil, envOf(map[string]string{
		"HYBRIDFLOW_ROLES": "onprem:site-z", "HYBRIDFLOW_SIMULATE_WORLD": "w.yaml",
	})); err != nil {
		t.Errorf("simulated worker: %v", err)
	}
}

func TestLoadWorkerConfigFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.yaml")
	if err := os.WriteFile(path, []byte("log_level: nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadWorkerConfig(path, noEnv)
	if ps := problemsOf(t, err); ps[0].File != path || ps[0].Line != 1 {
		t.Errorf("got %v", ps)
	}
	if _, err := LoadWorkerConfig(filepath.Join(dir, "missing.yaml"), noEnv); err == nil || !strings.HasPrefix(err.Error(), "read worker config: ") {
		t.Errorf("missing file: %v", err)
	}
}

func TestParseRole(t *testing.T) {
	good := map[string]Role{
		"cloud":          {Kind: RoleCloud},
		"onprem:site-a":  {Kind: RoleOnPrem, Site: "site-a"},
		"lync:contoso-1": {Kind: RoleLync, Site: "contoso-1"},
	}
	for s, want := range good {
		got, err := ParseRole(s)
		if err != nil || got != want || got.String() != s {
			t.Errorf("ParseRole(%q) = %v, %v; String %q", s, got, err, got.String())
		}
	}
	for _, s := range []string{"", "Cloud", "cloud:x", "onprem", "onprem:", "onprem:Site", "lync:a/b", "edge:site-a"} {
		if _, err := ParseRole(s); err == nil {
			t.Errorf("ParseRole(%q) succeeded", s)
		}
	}
}

func TestWorkerConfigEnvTLSMismatch(t *testing.T) {
	_, err := ParseWorkerConfig("w.yaml", nil, envOf(map[string]string{"HYBRIDFLOW_TEMPORAL_TLS_KEY_FILE": "c.key"}))
	ps := problemsOf(t, err)
	if len(ps) != 1 || ps[0].File != "environment" || !strings.Contains(ps[0].Message, "cert_file and key_file go together") {
		t.Errorf("got %v", ps)
	}
}
