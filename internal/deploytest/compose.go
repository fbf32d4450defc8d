// Package deploytest checks the production deployment files without a
// container engine (none is installed where the tests run): it loads
// docker-compose.yml with compose-spec's own loader (schema validation,
// interpolation, consistency) and checks what the deployment promises —
// images pinned, health checks where they matter, the worker started only
// once Temporal is healthy and its search attributes exist, ports on
// loopback, the server run with the repository's configuration (the one
// `make cluster` uses), and every service the production guide (docs/production.md) names really there.
package deploytest

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
)

// Expectations name the services the checks are about.
type Expectations struct {
	// Worker must wait for Temporal (service_healthy) and for Init
	// (service_completed_successfully).
	Worker, Temporal, Init string
	// HealthChecked services must define a health check.
	HealthChecked []string
	// SearchAttributes must each be created by Init's command.
	SearchAttributes []string
	// Documented are the services the production guide names; each must exist and
	// each service must be documented.
	Documented []string
	// ServerConfigDir, when set, is the directory (relative to the compose
	// file) of the Temporal server's configuration, which Temporal must
	// mount read-only and start with: its command must hold
	// ServerCommand(mount point), and TEMPORAL_DYNAMIC_CONFIG must name
	// the mounted dynamicconfig.yaml.
	ServerConfigDir string
	ServerCommand   func(mount string) []string
}

// Load reads a compose file the way `docker compose` does, with env as
// the only environment (no .env file, no process environment), so the
// result does not depend on the machine.
func Load(ctx context.Context, path string, env map[string]string) (*types.Project, error) {
	var kv []string
	for k, v := range env {
		kv = append(kv, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{path}, cli.WithEnv(kv), cli.WithDiscardEnvFile, cli.WithConsistency(true), cli.WithResolvedPaths(true))
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(ctx)
}

// CheckFile loads path and runs Check; a file that does not load is one
// problem saying why.
func CheckFile(ctx context.Context, path string, env map[string]string, e Expectations) []string {
	p, err := Load(ctx, path, env)
	if err != nil {
		return []string{"does not load: " + err.Error()}
	}
	return Check(p, e)
}

// Check returns every problem found in a loaded project, sorted.
func Check(p *types.Project, e Expectations) []string {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }

	for _, name := range sortedNames(p) {
		s := p.Services[name]
		if s.Build == nil {
			if m := imagePinProblem(s.Image); m != "" {
				add("service %s: image %q %s", name, s.Image, m)
			}
		}
		for _, port := range s.Ports {
			if port.Published != "" && port.HostIP != "127.0.0.1" && port.HostIP != "::1" {
				add("service %s: publishes port %s on every interface; bind it to 127.0.0.1 (\"127.0.0.1:%s:%d\")", name, port.Published, port.Published, port.Target)
			}
		}
	}

	for _, name := range e.HealthChecked {
		s, ok := p.Services[name]
		switch {
		case !ok:
			add("service %s is missing", name)
		case s.HealthCheck != nil && (s.HealthCheck.Disable || len(s.HealthCheck.Test) > 0 && s.HealthCheck.Test[0] == "NONE"):
			add("service %s has its health check disabled", name)
		case s.HealthCheck == nil || len(s.HealthCheck.Test) == 0:
			add("service %s has no health check", name)
		}
	}

	if w, ok := p.Services[e.Worker]; !ok {
		add("service %s (the worker) is missing", e.Worker)
	} else {
		need := func(dep, cond string) {
			d, ok := w.DependsOn[dep]
			switch {
			case !ok:
				add("service %s does not depend on %s; it must wait for condition %s", e.Worker, dep, cond)
			case d.Condition != cond:
				add("service %s depends on %s with condition %s, want %s", e.Worker, dep, d.Condition, cond)
			}
		}
		need(e.Temporal, types.ServiceConditionHealthy)
		if e.Init != "" {
			need(e.Init, types.ServiceConditionCompletedSuccessfully)
		}
	}

	if e.Init != "" {
		if s, ok := p.Services[e.Init]; !ok {
			add("service %s (search attributes) is missing", e.Init)
		} else {
			script := strings.Join(append(append([]string{}, s.Entrypoint...), s.Command...), " ")
			for _, sa := range e.SearchAttributes {
				if !regexp.MustCompile(`\b` + regexp.QuoteMeta(sa) + `\b`).MatchString(script) {
					add("service %s does not create search attribute %s", e.Init, sa)
				}
			}
			if len(e.SearchAttributes) > 0 && !strings.Contains(script, "search-attribute create") {
				add("service %s never runs `temporal operator search-attribute create`", e.Init)
			}
		}
	}

	if e.ServerConfigDir != "" {
		probs = append(probs, serverConfigProblems(p, e)...)
	}

	for _, name := range e.Documented {
		if _, ok := p.Services[name]; !ok {
			add("docs/production.md names service %s, which docker-compose.yml does not define", name)
		}
	}
	if e.Documented != nil {
		for _, name := range sortedNames(p) {
			if !slices.Contains(e.Documented, name) {
				add("service %s is not in docs/production.md's table of services", name)
			}
		}
	}
	sort.Strings(probs)
	return probs
}

// serverConfigProblems checks that the Temporal service runs with the
// repository's server configuration.
func serverConfigProblems(p *types.Project, e Expectations) []string {
	s, ok := p.Services[e.Temporal]
	if !ok {
		return nil // reported as missing elsewhere
	}
	var probs []string
	want := filepath.Join(p.WorkingDir, e.ServerConfigDir)
	mount := ""
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && filepath.Clean(v.Source) == want {
			mount = v.Target
			if !v.ReadOnly {
				probs = append(probs, fmt.Sprintf("service %s mounts %s writable; mount it read-only (:ro)", e.Temporal, e.ServerConfigDir))
			}
		}
	}
	if mount == "" {
		return append(probs, fmt.Sprintf("service %s does not mount %s (the server configuration make cluster uses)", e.Temporal, e.ServerConfigDir))
	}
	script := strings.Join(append(append([]string{}, s.Entrypoint...), s.Command...), " ")
	if e.ServerCommand != nil {
		if cmd := strings.Join(e.ServerCommand(mount), " "); !strings.Contains(script, cmd) {
			probs = append(probs, fmt.Sprintf("service %s does not run `%s` (the server with the mounted configuration)", e.Temporal, cmd))
		}
	}
	dyn := path.Join(mount, "dynamicconfig.yaml")
	if v := s.Environment["TEMPORAL_DYNAMIC_CONFIG"]; v == nil || *v != dyn {
		probs = append(probs, fmt.Sprintf("service %s: TEMPORAL_DYNAMIC_CONFIG must be %s (the mounted dynamic config)", e.Temporal, dyn))
	}
	return probs
}

// MinHistoryShards is the fewest history shards the server configuration
// may give a cluster.
const MinHistoryShards = 4

// ServerConfigProblems checks a server configuration as the server
// rendered it (`temporal-server render-config`): enough history shards,
// PostgreSQL for both stores with their databases, and a dynamic config
// file.
func ServerConfigProblems(rendered []byte) []string {
	var cfg struct {
		Persistence struct {
			NumHistoryShards int    `yaml:"numHistoryShards"`
			DefaultStore     string `yaml:"defaultStore"`
			VisibilityStore  string `yaml:"visibilityStore"`
			DataStores       map[string]struct {
				SQL *struct {
					PluginName   string `yaml:"pluginName"`
					DatabaseName string `yaml:"databaseName"`
				} `yaml:"sql"`
			} `yaml:"datastores"`
		} `yaml:"persistence"`
		DynamicConfigClient *struct {
			Filepath string `yaml:"filepath"`
		} `yaml:"dynamicConfigClient"`
	}
	if err := yaml.Unmarshal(rendered, &cfg); err != nil {
		return []string{"the rendered server configuration does not parse: " + err.Error()}
	}
	var probs []string
	p := cfg.Persistence
	if p.NumHistoryShards < MinHistoryShards {
		probs = append(probs, fmt.Sprintf("numHistoryShards is %d, want at least %d", p.NumHistoryShards, MinHistoryShards))
	}
	for _, st := range []struct{ name, db string }{{p.DefaultStore, "temporal"}, {p.VisibilityStore, "temporal_visibility"}} {
		ds, ok := p.DataStores[st.name]
		switch {
		case !ok || ds.SQL == nil:
			probs = append(probs, fmt.Sprintf("store %q is not an SQL datastore", st.name))
		case ds.SQL.PluginName != "postgres12" && ds.SQL.PluginName != "postgres12_pgx":
			probs = append(probs, fmt.Sprintf("store %q uses plugin %q, want PostgreSQL (postgres12)", st.name, ds.SQL.PluginName))
		case ds.SQL.DatabaseName != st.db:
			probs = append(probs, fmt.Sprintf("store %q uses database %q, want %q (the schema job creates it)", st.name, ds.SQL.DatabaseName, st.db))
		}
	}
	if cfg.DynamicConfigClient == nil || cfg.DynamicConfigClient.Filepath == "" {
		probs = append(probs, "no dynamicConfigClient.filepath: the dynamic config file is not read")
	}
	return probs
}

var (
	digestRE  = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	versionRE = regexp.MustCompile(`\d+\.\d+`)
)

// imagePinProblem says what is wrong with an image reference's pinning,
// "" when it names a digest or a version tag of at least major.minor
// (postgres:16.9, temporalio/admin-tools:1.29.1-tctl-1.18.4-cli-1.5.0).
// No tag, :latest and floating tags (postgres:16, :stable, :nonroot) can
// change under a running deployment.
func imagePinProblem(image string) string {
	if image == "" {
		return "is empty (and the service has no build)"
	}
	name, digest, hasDigest := strings.Cut(image, "@")
	if hasDigest {
		if !digestRE.MatchString(digest) {
			return "has a malformed digest"
		}
		return ""
	}
	slash := strings.LastIndexByte(name, '/')
	colon := strings.LastIndexByte(name, ':')
	if colon <= slash {
		return "is not pinned: no tag means latest; give a version tag or a digest"
	}
	switch tag := name[colon+1:]; {
	case tag == "":
		return "has an empty tag (an unset variable?)"
	case tag == "latest":
		return "uses the latest tag; pin a version or a digest"
	case !versionRE.MatchString(tag):
		return fmt.Sprintf("uses the floating tag %q; pin at least major.minor or a digest", tag)
	}
	return ""
}

func sortedNames(p *types.Project) []string {
	names := make([]string, 0, len(p.Services))
	for n := range p.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ReadmeServices returns the services named in the first column of the
// table headed "| service |" inside the document's section titled section
// ("# Running hybridflow in production"): `name` in backticks. The
// section ends at the next heading of its own level.
func ReadmeServices(readme, section string) ([]string, error) {
	readme = "\n" + readme
	start := strings.Index(readme, "\n"+section+"\n")
	if start < 0 {
		return nil, fmt.Errorf("the production guide has no %q section", section)
	}
	body := readme[start+len(section)+2:]
	level := strings.TrimRight(section[:strings.IndexByte(section+" ", ' ')], " ")
	if end := strings.Index(body, "\n"+level+" "); end >= 0 {
		body = body[:end]
	}
	lines := strings.Split(body, "\n")
	cell := regexp.MustCompile("^\\|\\s*`([a-z0-9][a-z0-9_-]*)`\\s*\\|")
	var out []string
	for i, l := range lines {
		if !strings.HasPrefix(strings.ToLower(strings.ReplaceAll(l, " ", "")), "|service|") {
			continue
		}
		for _, row := range lines[i+1:] {
			if !strings.HasPrefix(row, "|") {
				break
			}
			if m := cell.FindStringSubmatch(row); m != nil {
				out = append(out, m[1])
			}
		}
		break
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("section %q has no `| service |` table naming services in backticks", section)
	}
	return out, nil
}
