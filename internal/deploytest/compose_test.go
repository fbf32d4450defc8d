package deploytest

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"gopkg.in/yaml.v3"

	"github.com/hybridflow/hybridflow/internal/cluster"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/devserver"
	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/metrics"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/workflows"
)

const (
	composeFile = "../../docker-compose.yml"
	readmeFile  = "../../docs/production.md"
	section     = "# Running hybridflow in production"
)

// composeEnv is what an operator's .env provides; nothing else is read.
var composeEnv = map[string]string{"POSTGRES_PASSWORD": "not-a-real-password"}

func expectations(t *testing.T) Expectations {
	t.Helper()
	readme, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	documented, err := ReadmeServices(string(readme), section)
	if err != nil {
		t.Fatal(err)
	}
	var sas []string
	for name := range workflows.SearchAttributes {
		sas = append(sas, name)
	}
	sort.Strings(sas)
	return Expectations{
		Worker: "hybridflow-worker", Temporal: "temporal", Init: "temporal-init",
		HealthChecked:    []string{"temporal", "postgresql", "hybridflow-worker"},
		SearchAttributes: sas,
		Documented:       documented,
		ServerConfigDir:  serverConfigDir,
		ServerCommand:    cluster.ServerArgs,
	}
}

// serverConfigDir is the server configuration both the compose stack and
// make cluster use (the Makefile's TEMPORAL_CONFIG; a test checks it).
const serverConfigDir = "deploy/temporal"

// TestComposeFile: docker-compose.yml loads with compose-spec's loader and
// passes every check.
func TestComposeFile(t *testing.T) {
	e := expectations(t)
	p, err := Load(context.Background(), composeFile, composeEnv)
	if err != nil {
		t.Fatal(err)
	}
	if probs := Check(p, e); len(probs) > 0 {
		t.Fatalf("docker-compose.yml:\n  %s", strings.Join(probs, "\n  "))
	}
	for _, name := range sortedNames(p) {
		s := p.Services[name]
		image := s.Image
		if s.Build != nil {
			image = "build: " + s.Build.Dockerfile
		}
		var deps []string
		for d, c := range s.DependsOn {
			deps = append(deps, d+"="+c.Condition)
		}
		sort.Strings(deps)
		t.Logf("%-18s %-52s health=%-5v depends=%v", name, image, s.HealthCheck != nil, deps)
	}
	t.Logf("README documents %v", e.Documented)
}

// TestComposeNeedsPassword: without POSTGRES_PASSWORD the file refuses to
// load instead of starting PostgreSQL with an empty or default password.
func TestComposeNeedsPassword(t *testing.T) {
	_, err := Load(context.Background(), composeFile, nil)
	if err == nil || !strings.Contains(err.Error(), "POSTGRES_PASSWORD") {
		t.Fatalf("loaded without a database password: %v", err)
	}
}

// TestComposeBroken: each broken copy of docker-compose.yml, made here from
// the real one, is reported with the problem it has.
func TestComposeBroken(t *testing.T) {
	e := expectations(t)
	orig, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	svc := func(doc map[string]any, name string) map[string]any {
		return doc["services"].(map[string]any)[name].(map[string]any)
	}
	tests := []struct {
		name   string
		mutate func(doc map[string]any)
		raw    func(string) string // for breakage a YAML round trip cannot express
		want   string
	}{
		{"unpinned image", func(d map[string]any) { svc(d, "postgresql")["image"] = "postgres" },
			nil, `service postgresql: image "postgres" is not pinned`},
		{"latest tag", func(d map[string]any) { svc(d, "temporal-ui")["image"] = "temporalio/ui:latest" },
			nil, `service temporal-ui: image "temporalio/ui:latest" uses the latest tag`},
		{"floating major tag", func(d map[string]any) { svc(d, "postgresql")["image"] = "postgres:16" },
			nil, `uses the floating tag "16"`},
		{"tag from an unset variable", func(d map[string]any) { svc(d, "temporal")["image"] = "temporalio/server:${TEMPORAL_VERSION}" },
			nil, `has an empty tag`},
		{"worker does not depend on temporal", func(d map[string]any) {
			delete(svc(d, "hybridflow-worker")["depends_on"].(map[string]any), "temporal")
		}, nil, "service hybridflow-worker does not depend on temporal; it must wait for condition service_healthy"},
		{"worker waits only for temporal to start", func(d map[string]any) {
			svc(d, "hybridflow-worker")["depends_on"].(map[string]any)["temporal"] = map[string]any{"condition": "service_started"}
		}, nil, "depends on temporal with condition service_started, want service_healthy"},
		{"worker does not wait for the search attributes", func(d map[string]any) {
			delete(svc(d, "hybridflow-worker")["depends_on"].(map[string]any), "temporal-init")
		}, nil, "does not depend on temporal-init"},
		{"no health check on temporal", func(d map[string]any) {
			delete(svc(d, "temporal"), "healthcheck")
			// Nothing may wait for a health it cannot have, so the
			// consistency check must not be what catches this.
			for _, s := range []string{"temporal-init", "temporal-ui", "hybridflow-worker"} {
				svc(d, s)["depends_on"].(map[string]any)["temporal"] = map[string]any{"condition": "service_started"}
			}
		}, nil, "service temporal has no health check"},
		{"health check disabled on postgresql", func(d map[string]any) {
			svc(d, "postgresql")["healthcheck"] = map[string]any{"disable": true}
		}, nil, "service postgresql has its health check disabled"},
		{"a search attribute not registered", nil, func(s string) string {
			return strings.Replace(s, "HybridflowStep ", "", 1)
		}, "service temporal-init does not create search attribute HybridflowStep"},
		{"port on every interface", func(d map[string]any) { svc(d, "temporal-ui")["ports"] = []any{"8080:8080"} },
			nil, "service temporal-ui: publishes port 8080 on every interface"},
		{"service the README names is gone", func(d map[string]any) { delete(d["services"].(map[string]any), "temporal-ui") },
			nil, "docs/production.md names service temporal-ui, which docker-compose.yml does not define"},
		{"undocumented service", func(d map[string]any) {
			d["services"].(map[string]any)["adminer"] = map[string]any{"image": "adminer:4.8.1"}
		}, nil, "service adminer is not in docs/production.md's table of services"},
		{"server config not mounted", func(d map[string]any) { delete(svc(d, "temporal"), "volumes") },
			nil, "service temporal does not mount deploy/temporal"},
		{"server config mounted writable", nil, func(s string) string {
			return strings.Replace(s, "./deploy/temporal:/etc/hybridflow/temporal:ro", "./deploy/temporal:/etc/hybridflow/temporal", 1)
		}, "service temporal mounts deploy/temporal writable"},
		{"server started with the image's own config", func(d map[string]any) {
			delete(svc(d, "temporal"), "entrypoint")
			delete(svc(d, "temporal"), "command")
		}, nil, "service temporal does not run `--root /etc/hybridflow/temporal --config . --env hybridflow"},
		{"dynamic config elsewhere", func(d map[string]any) {
			svc(d, "temporal")["environment"].(map[string]any)["TEMPORAL_DYNAMIC_CONFIG"] = "/etc/temporal/config/dynamicconfig/docker.yaml"
		}, nil, "TEMPORAL_DYNAMIC_CONFIG must be /etc/hybridflow/temporal/dynamicconfig.yaml"},
		{"misspelt key", func(d map[string]any) { svc(d, "temporal")["healthchek"] = svc(d, "temporal")["healthcheck"] },
			nil, "does not load: "},
		{"malformed YAML", nil, func(s string) string { return strings.Replace(s, "services:\n", "services:\n  - oops\n", 1) },
			"does not load: "},
	}
	dir := t.TempDir()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := string(orig)
			if tc.mutate != nil {
				var doc map[string]any
				if err := yaml.Unmarshal(orig, &doc); err != nil {
					t.Fatal(err)
				}
				tc.mutate(doc)
				b, err := yaml.Marshal(doc)
				if err != nil {
					t.Fatal(err)
				}
				text = string(b)
			}
			if tc.raw != nil {
				text = tc.raw(text)
			}
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yml")
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			probs := CheckFile(context.Background(), path, composeEnv, e)
			found := false
			for _, p := range probs {
				if strings.Contains(p, tc.want) {
					found = true
				}
			}
			if !found {
				t.Fatalf("broken copy %d not reported as %q; problems:\n  %s", i, tc.want, strings.Join(probs, "\n  "))
			}
			t.Logf("reported: %s", firstLine(probs))
		})
	}
}

func firstLine(probs []string) string {
	if len(probs) == 0 {
		return ""
	}
	s, _, _ := strings.Cut(probs[0], "\n")
	if len(s) > 140 {
		s = s[:140] + "…"
	}
	return s
}

// TestImagePinning covers the pinning rule itself.
func TestImagePinning(t *testing.T) {
	for image, ok := range map[string]bool{
		"postgres:16.9": true,
		"temporalio/admin-tools:1.29.1-tctl-1.18.4-cli-1.5.0":                                                               true,
		"gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639": true,
		"registry.example.com:5000/team/worker:2.3.1":                                                                       true,
		"postgres":                              false,
		"registry.example.com:5000/team/worker": false,
		"postgres:latest":                       false,
		"postgres:16":                           false,
		"gcr.io/distroless/static-debian12:nonroot": false,
		"postgres@sha256:abc":                       false,
		"":                                          false,
	} {
		if got := imagePinProblem(image) == ""; got != ok {
			t.Errorf("%q pinned = %v, want %v (%s)", image, got, ok, imagePinProblem(image))
		}
	}
}

// TestReadmeServices: the README table is what the compose checks read.
func TestReadmeServices(t *testing.T) {
	readme := "# Running hybridflow in production\n\ntext\n\n## Services\n\n| service | image |\n|---|---|\n| `postgresql` | postgres |\n| `temporal` | server |\n\nmore\n\n# Next\n| service |\n|---|\n| `other` |\n"
	got, err := ReadmeServices(readme, section)
	if err != nil || strings.Join(got, ",") != "postgresql,temporal" {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := ReadmeServices("# x\n", section); err == nil {
		t.Fatal("no section accepted")
	}
}

// TestComposeWorkerConfig: the config baked into the worker image parses
// with the environment docker-compose.yml gives the worker.
func TestComposeWorkerConfig(t *testing.T) {
	p, err := Load(context.Background(), composeFile, composeEnv)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for k, v := range p.Services["hybridflow-worker"].Environment {
		if v != nil {
			env[k] = *v
		}
	}
	cfg, err := config.LoadWorkerConfig(filepath.Join("..", "..", "configs", "worker.compose.yaml"), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Temporal.Address != "temporal:7233" || cfg.Temporal.Codec == nil || cfg.Temporal.Codec.Active != "k1" || cfg.MetricsAddress != "0.0.0.0:9464" || cfg.Simulate != nil {
		t.Fatalf("compose worker config: %+v codec %+v", cfg.Temporal, cfg.Temporal.Codec)
	}
	if _, ok := cfg.Credentials["default"]; !ok {
		t.Fatal("no default credential")
	}
}

// TestReadmeNamesEveryPermission: the production section names every
// cmdlet the on-prem worker may run (the RBAC table and script), and every
// Entra / Exchange Online permission the cloud worker uses, with its id.
func TestReadmeNamesEveryPermission(t *testing.T) {
	b, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	readme := "\n" + string(b)
	i := strings.Index(readme, "\n"+section+"\n")
	if i < 0 {
		t.Fatalf("no %q section", section)
	}
	prod := readme[i:]
	for _, c := range exchange.AllowedCmdlets {
		if !strings.Contains(prod, "`"+c+"`") {
			t.Errorf("README does not name the allowed cmdlet %s in backticks", c)
		}
		if !strings.HasPrefix(c, "Get-Cs") && !strings.HasPrefix(c, "Set-Cs") && !strings.HasPrefix(c, "New-Cs") && !strings.HasPrefix(c, "Remove-Cs") &&
			!strings.Contains(prod, "'"+c+"'") {
			t.Errorf("the RBAC script does not list the Exchange cmdlet %s", c)
		}
	}
	for _, p := range []string{
		"Application.Read.All", "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
		"Application.ReadWrite.All", "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
		"Application.ReadWrite.OwnedBy", "18a4783c-866b-4cc7-a460-3d5e5662c884",
		"AppRoleAssignment.ReadWrite.All", "06b708a9-e830-4db3-a914-8e69da51d44f",
		"Domain.Read.All", "dbb9058a-0e50-45d7-ae91-66909b5d4664",
		"Organization.Read.All", "498476ce-e0fe-48b0-b801-37ba7e2685c6",
		"Exchange.ManageAsApp", "dc50a0fb-09a3-484d-be87-e023b12c6440",
		"Exchange Administrator", "full_access_as_app", plan.FullAccessAsAppRoleID,
		"Organization Management", "CsAdministrator", "RTCUniversalServerAdmins",
		"GOOS=windows GOARCH=amd64 go build -o hybridflow-worker.exe ./worker", "sc.exe create hybridflow-worker", "nssm install hybridflow-worker",
	} {
		if !strings.Contains(prod, p) {
			t.Errorf("README's production section does not mention %q", p)
		}
	}
	// Every product metric the package defines is documented.
	for _, m := range []string{metrics.NameSteps, metrics.NameStepDuration, metrics.NameCallDuration, metrics.NameCallErrors,
		metrics.NameThrottled, metrics.NameThrottleWait, metrics.NameTenants, metrics.NameTenantsErrors, metrics.NameWorkerReady,
		metrics.PathMetrics, metrics.PathHealthz, metrics.PathReadyz} {
		if !strings.Contains(prod, "`"+m+"`") {
			t.Errorf("README does not document %s", m)
		}
	}
}

// TestComposeInitScript runs temporal-init's script, as compose hands it to
// /bin/sh after interpolation, against a fresh dev server (the same CLI the
// admin-tools image carries, v1.5.x) for a namespace that does not exist
// yet, twice: it must create the namespace and every search attribute, and
// the second run must change nothing and still succeed.
func TestComposeInitScript(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts the Temporal dev server")
	}
	shell, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	cli, err := devserver.CLIPath()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{ExistingPath: cli, LogLevel: "error",
		ClientOptions: &client.Options{Namespace: "default"}, Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()

	p, err := Load(ctx, composeFile, composeEnv)
	if err != nil {
		t.Fatal(err)
	}
	init := p.Services["temporal-init"]
	if len(init.Entrypoint) < 2 || init.Entrypoint[0] != "/bin/sh" || len(init.Command) != 1 {
		t.Fatalf("temporal-init is not `/bin/sh -ec <script>`: %q %q", init.Entrypoint, init.Command)
	}
	bin := t.TempDir()
	if err := os.Symlink(cli, filepath.Join(bin, "temporal")); err != nil {
		t.Fatal(err)
	}
	const ns = "hybridflow-compose"
	runScript := func() string {
		cmd := exec.CommandContext(ctx, shell, append(init.Entrypoint[1:], init.Command[0])...)
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
			"TEMPORAL_ADDRESS="+srv.FrontendHostPort(), "TEMPORAL_NAMESPACE="+ns)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("temporal-init script: %v\n%s", err, out)
		}
		return string(out)
	}
	start := time.Now()
	first := runScript()
	t.Logf("first run (%s):\n%s", time.Since(start).Round(time.Millisecond), first)
	second := runScript()
	if strings.Contains(second, "registered") || strings.Contains(second, "added") || strings.Count(second, "exists") != len(workflows.SearchAttributes) {
		t.Fatalf("second run changed something:\n%s", second)
	}
	c, err := client.Dial(client.Options{HostPort: srv.FrontendHostPort(), Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sa, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	for name, typ := range workflows.SearchAttributes {
		if got, ok := sa.GetCustomAttributes()[name]; !ok || got != typ {
			t.Errorf("search attribute %s: %v (registered: %v), want %v", name, got, ok, typ)
		}
	}
}

// TestMakefileRunsTheComposeServer: make cluster builds the server release
// the compose stack's images carry and starts it with the configuration
// directory the stack mounts.
func TestMakefileRunsTheComposeServer(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	varOf := func(name string) string {
		m := regexp.MustCompile(`(?m)^` + name + `\s*:?=\s*(\S+)\s*$`).FindSubmatch(mk)
		if m == nil {
			t.Fatalf("Makefile has no %s", name)
		}
		return string(m[1])
	}
	if got := varOf("TEMPORAL_CONFIG"); got != serverConfigDir {
		t.Errorf("Makefile TEMPORAL_CONFIG = %s, the compose stack mounts %s", got, serverConfigDir)
	}
	if !strings.Contains(string(mk), "--config-dir $(TEMPORAL_CONFIG)") {
		t.Error("the Makefile never passes --config-dir $(TEMPORAL_CONFIG) to hybridflow-cluster")
	}
	if got := varOf("TEMPORAL_SERVER_VERSION"); got != "v"+cluster.ServerVersion {
		t.Errorf("Makefile TEMPORAL_SERVER_VERSION = %s, want v%s", got, cluster.ServerVersion)
	}
	// The binaries are built from tools/go.mod: it must select the
	// releases the Makefile names.
	tools, err := os.ReadFile("../../tools/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for mod, v := range map[string]string{"go.temporal.io/server": varOf("TEMPORAL_SERVER_VERSION"), "github.com/temporalio/cli": varOf("TEMPORAL_CLI_VERSION")} {
		if !regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(mod) + `\s+` + regexp.QuoteMeta(v) + `\b`).Match(tools) {
			t.Errorf("tools/go.mod does not require %s %s, the release the Makefile names", mod, v)
		}
	}
	p, err := Load(context.Background(), composeFile, composeEnv)
	if err != nil {
		t.Fatal(err)
	}
	if img := p.Services["temporal"].Image; img != "temporalio/server:"+cluster.ServerVersion {
		t.Errorf("the compose server image %s is not release %s", img, cluster.ServerVersion)
	}
	for _, name := range []string{"temporal-schema", "temporal-init"} {
		if img := p.Services[name].Image; !strings.HasPrefix(img, "temporalio/admin-tools:"+cluster.ServerVersion+"-") {
			t.Errorf("service %s: image %s is not the admin tools of release %s", name, img, cluster.ServerVersion)
		}
	}
}

// serverBinary is bin/temporal-server, or skips: make test builds it
// before the tests run.
func serverBinary(t *testing.T) string {
	t.Helper()
	if err := cluster.ServerBuilt(); err != nil {
		t.Skipf("cannot render the configuration with the server itself: %v", err)
	}
	root, err := devserver.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "bin", cluster.ServerBinary)
}

// renderConfig renders the server configuration in dir the way the server
// loads it at start, with env as its whole environment.
func renderConfig(t *testing.T, server, dir string, env map[string]string) ([]byte, error) {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(server, "--config", abs, "--env", cluster.Environment, "render-config")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%v: %s%s", err, errOut.String(), out.String())
	}
	return []byte(out.String()), nil
}

// TestServerConfigRendered renders deploy/temporal with the real server's
// loader, with the environment the compose stack gives it: at least 4
// history shards, PostgreSQL for both stores, the mounted dynamic config.
// Without the database password the server refuses to start, naming it.
// A copy with 2 shards, or with MySQL, is reported.
func TestServerConfigRendered(t *testing.T) {
	server := serverBinary(t)
	p, err := Load(context.Background(), composeFile, composeEnv)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TEMPORAL_BROADCAST_ADDRESS": "172.18.0.4"}
	for k, v := range p.Services["temporal"].Environment {
		if v != nil {
			env[k] = *v
		}
	}
	dir := filepath.Join("..", "..", serverConfigDir)
	out, err := renderConfig(t, server, dir, env)
	if err != nil {
		t.Fatal(err)
	}
	if probs := ServerConfigProblems(out); len(probs) > 0 {
		t.Fatalf("%s rendered for the compose stack:\n  %s", serverConfigDir, strings.Join(probs, "\n  "))
	}
	var cfg struct {
		Persistence struct {
			NumHistoryShards int `yaml:"numHistoryShards"`
		} `yaml:"persistence"`
		DynamicConfigClient struct {
			Filepath string `yaml:"filepath"`
		} `yaml:"dynamicConfigClient"`
		Services map[string]struct {
			RPC struct {
				BindOnIP string `yaml:"bindOnIP"`
				GRPCPort int    `yaml:"grpcPort"`
			} `yaml:"rpc"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if fe := cfg.Services["frontend"].RPC; fe.GRPCPort != 7233 || fe.BindOnIP != "0.0.0.0" {
		t.Errorf("compose frontend: %+v, want 0.0.0.0:7233", fe)
	}
	t.Logf("compose: %d history shards, dynamic config %s", cfg.Persistence.NumHistoryShards, cfg.DynamicConfigClient.Filepath)

	delete(env, "TEMPORAL_DB_PASSWORD")
	if _, err := renderConfig(t, server, dir, env); err == nil || !strings.Contains(err.Error(), "TEMPORAL_DB_PASSWORD is not set") {
		t.Errorf("rendered without a database password: %v", err)
	}
	env["TEMPORAL_DB_PASSWORD"] = "x"

	orig, err := os.ReadFile(filepath.Join(dir, cluster.Environment+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, from, to, want string }{
		{"two shards", `default "4"`, `default "2"`, "numHistoryShards is 2, want at least 4"},
		{"MySQL", "pluginName: postgres12", "pluginName: mysql8", `uses plugin "mysql8"`},
		{"no dynamic config", "dynamicConfigClient:", "unusedDynamicConfigClient:", "no dynamicConfigClient.filepath"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(orig), tc.from) {
				t.Fatalf("%s.yaml no longer contains %q", cluster.Environment, tc.from)
			}
			bad := t.TempDir()
			if err := os.WriteFile(filepath.Join(bad, cluster.Environment+".yaml"), []byte(strings.Replace(string(orig), tc.from, tc.to, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := renderConfig(t, server, bad, env)
			var probs []string
			if err != nil {
				probs = []string{err.Error()}
			} else {
				probs = ServerConfigProblems(out)
			}
			if !strings.Contains(strings.Join(probs, "\n"), tc.want) {
				t.Fatalf("not reported as %q: %v", tc.want, probs)
			}
		})
	}
}

// TestDynamicConfigValid: the server's own validator finds no error and no
// warning (an unknown key or a value of the wrong type is only a warning
// to it, and silently ignored by the server) in deploy/temporal's dynamic
// config; a copy with a misspelt key is reported.
func TestDynamicConfigValid(t *testing.T) {
	server := serverBinary(t)
	validate := func(path string) string {
		out, err := exec.Command(server, "validate-dynamic-config", path).CombinedOutput()
		if err != nil {
			return string(out) + err.Error()
		}
		var bad []string
		for _, l := range strings.Split(string(out), "\n") {
			if l = strings.TrimSpace(l); strings.HasPrefix(l, "error:") || strings.HasPrefix(l, "warning:") {
				bad = append(bad, l)
			}
		}
		return strings.Join(bad, "\n")
	}
	path := filepath.Join("..", "..", serverConfigDir, "dynamicconfig.yaml")
	if bad := validate(path); bad != "" {
		t.Fatalf("%s:\n%s", path, bad)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(t.TempDir(), "dynamicconfig.yaml")
	if err := os.WriteFile(broken, []byte(strings.Replace(string(data), "system.enableActivityEagerExecution:", "system.enableActivityEagerExecutio:", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if bad := validate(broken); !strings.Contains(bad, "enableActivityEagerExecutio") {
		t.Fatalf("a misspelt key was not reported: %q", bad)
	}
}
