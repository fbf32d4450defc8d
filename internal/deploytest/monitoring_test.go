package deploytest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"

	"github.com/hybridflow/hybridflow/internal/metrics"
	"github.com/hybridflow/hybridflow/internal/metrics/fleet"
)

const (
	dashboardFile  = "../../deploy/grafana/dashboards/hybridflow.json"
	datasourceFile = "../../deploy/grafana/provisioning/datasources/prometheus.yml"
	providerFile   = "../../deploy/grafana/provisioning/dashboards/hybridflow.yml"
	prometheusFile = "../../deploy/prometheus/prometheus.yml"
)

// bindSource returns the host path mounted at target in s ("" if none).
func bindSource(s types.ServiceConfig, target string) string {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Target == target {
			return v.Source
		}
	}
	return ""
}

// TestComposeMonitoring: the compose stack's prometheus and grafana
// services use pinned images and mount files that exist in the repository:
// Prometheus's config (whose --config.file lies in the mounted directory)
// with the alerting rules, Grafana's data source and dashboard provider,
// the provider's path mounted with the dashboards, the dashboard's panels
// on the provisioned data source's uid, and Prometheus scraping the worker
// where the worker serves its metrics, under the job name the
// worker-down alert watches.
func TestComposeMonitoring(t *testing.T) {
	p, err := Load(context.Background(), composeFile, composeEnv)
	if err != nil {
		t.Fatal(err)
	}
	prom, ok := p.Services["prometheus"]
	if !ok {
		t.Fatal("docker-compose.yml has no prometheus service")
	}
	graf, ok := p.Services["grafana"]
	if !ok {
		t.Fatal("docker-compose.yml has no grafana service")
	}
	for _, s := range []types.ServiceConfig{prom, graf} {
		if s.Build != nil || s.Image == "" {
			t.Errorf("service %s: want a pinned image, not a build", s.Name)
		} else if m := imagePinProblem(s.Image); m != "" {
			t.Errorf("service %s: image %q %s", s.Name, s.Image, m)
		}
		if s.HealthCheck == nil && s.Name == "prometheus" {
			t.Errorf("service %s has no health check (grafana waits for it)", s.Name)
		}
	}

	// Prometheus: --config.file inside the mounted deploy/prometheus.
	promDir := bindSource(prom, "/etc/prometheus/hybridflow")
	if promDir == "" {
		t.Fatal("prometheus does not mount deploy/prometheus at /etc/prometheus/hybridflow")
	}
	var configFile string
	for _, a := range prom.Command {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			configFile = v
		}
	}
	rel, ok := strings.CutPrefix(configFile, "/etc/prometheus/hybridflow/")
	if !ok {
		t.Fatalf("prometheus --config.file %q is not in the mounted /etc/prometheus/hybridflow", configFile)
	}
	for _, f := range []string{rel, "alerts.yml"} {
		if _, err := os.Stat(filepath.Join(promDir, f)); err != nil {
			t.Errorf("prometheus: %v", err)
		}
	}
	var pc struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			Job           string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, prometheusFile, &pc)
	for _, rf := range pc.RuleFiles {
		if _, err := os.Stat(filepath.Join(filepath.Dir(prometheusFile), rf)); err != nil {
			t.Errorf("prometheus.yml rule file: %v", err)
		}
	}
	worker := p.Services["hybridflow-worker"]
	var port string
	if a := worker.Environment["HYBRIDFLOW_METRICS_ADDRESS"]; a != nil {
		_, port, _ = strings.Cut(*a, ":")
	}
	scraped := false
	for _, sc := range pc.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				if tg == "hybridflow-worker:"+port && sc.Job == "hybridflow-worker" && (sc.MetricsPath == "" || sc.MetricsPath == metrics.PathMetrics) {
					scraped = true
				}
			}
		}
	}
	if !scraped || port == "" {
		t.Errorf("prometheus.yml does not scrape job hybridflow-worker at hybridflow-worker:%s%s (the worker's HYBRIDFLOW_METRICS_ADDRESS)", port, metrics.PathMetrics)
	}

	// Grafana: provisioning mounted, the provider's path mounted with the
	// dashboards, panels on the data source's uid.
	if src := bindSource(graf, "/etc/grafana/provisioning"); src == "" {
		t.Error("grafana does not mount deploy/grafana/provisioning at /etc/grafana/provisioning")
	}
	var prov struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, providerFile, &prov)
	if len(prov.Providers) != 1 {
		t.Fatalf("%s: %d providers", providerFile, len(prov.Providers))
	}
	dashDir := bindSource(graf, prov.Providers[0].Options.Path)
	if dashDir == "" {
		t.Fatalf("grafana mounts nothing at the provider's path %s", prov.Providers[0].Options.Path)
	}
	if _, err := os.Stat(filepath.Join(dashDir, filepath.Base(dashboardFile))); err != nil {
		t.Errorf("grafana: %v", err)
	}
	var ds struct {
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAML(t, datasourceFile, &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Fatalf("%s: %+v", datasourceFile, ds.Datasources)
	}
	for _, pn := range dashboardPanels(t) {
		if pn.Type != "row" && pn.Datasource.UID != ds.Datasources[0].UID {
			t.Errorf("panel %q uses data source %q, not the provisioned %q", pn.Title, pn.Datasource.UID, ds.Datasources[0].UID)
		}
	}
	if len(graf.Secrets) == 0 || graf.Environment["GF_SECURITY_ADMIN_PASSWORD__FILE"] == nil {
		t.Error("grafana's admin password should come from a Docker secret (GF_SECURITY_ADMIN_PASSWORD__FILE)")
	}
}

// TestComposeMonitoringBroken: an unpinned Prometheus image is reported.
func TestComposeMonitoringBroken(t *testing.T) {
	p, err := Load(context.Background(), composeFile, composeEnv)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range []string{"prom/prometheus", "prom/prometheus:latest", "grafana/grafana:12"} {
		s := p.Services["prometheus"]
		s.Image = img
		p.Services["prometheus"] = s
		found := false
		for _, pr := range Check(p, Expectations{}) {
			if strings.HasPrefix(pr, "service prometheus: image") {
				found = true
			}
		}
		if !found {
			t.Errorf("image %q is not reported", img)
		}
	}
}

type panel struct {
	Title      string `json:"title"`
	Type       string `json:"type"`
	Datasource struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func dashboardPanels(t *testing.T) []panel {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string  `json:"uid"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: no uid or no panels", dashboardFile)
	}
	return d.Panels
}

var metricRE = regexp.MustCompile(`\b(hybridflow_[a-z_]+|temporal_[a-z_]+)\b`)

// TestAlertMetricsExist: every hybridflow_* series an alert or a panel
// reads is one the worker exports (a renamed metric would leave an alert
// silent forever), and every alert's series is on the dashboard.
func TestAlertMetricsExist(t *testing.T) {
	known := map[string]bool{}
	for _, n := range []string{metrics.NameSteps, metrics.NameStepDuration, metrics.NameCallDuration, metrics.NameCallErrors,
		metrics.NameThrottled, metrics.NameThrottleWait, metrics.NameTenants, metrics.NameTenantsErrors, metrics.NameWorkerReady,
		fleet.NameTenantDrift, fleet.NameVerifyCompleted, fleet.NameCertNotAfter, fleet.NameCertNextEffective, fleet.NamePausedSince,
		fleet.NameRenewalLastSuccess, fleet.NameRenewalLastFailure, fleet.NameQueuePollers, fleet.NameErrors} {
		known[n] = true
	}
	exported := func(name string) bool {
		if strings.HasPrefix(name, "temporal_") {
			return true // the SDK's, checked by the worker's own tests
		}
		for _, suf := range []string{"", "_count", "_sum", "_bucket"} {
			if base, ok := strings.CutSuffix(name, suf); ok && known[base] {
				return true
			}
		}
		return false
	}
	rules, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(rules, &rf); err != nil {
		t.Fatal(err)
	}
	onDashboard := map[string]bool{}
	for _, pn := range dashboardPanels(t) {
		for _, tg := range pn.Targets {
			for _, m := range metricRE.FindAllString(tg.Expr, -1) {
				onDashboard[m] = true
				if !exported(m) {
					t.Errorf("panel %q reads %s, which the worker does not export", pn.Title, m)
				}
			}
		}
	}
	var seen []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			for _, m := range metricRE.FindAllString(r.Expr, -1) {
				if !exported(m) {
					t.Errorf("alert %s reads %s, which the worker does not export", r.Alert, m)
				}
				if !onDashboard[m] {
					t.Errorf("alert %s reads %s, which no dashboard panel shows", r.Alert, m)
				}
				seen = append(seen, m)
			}
		}
	}
	sort.Strings(seen)
	if t.Failed() {
		return
	}
	t.Logf("alerts read %d series names, all exported and on the dashboard", len(seen))
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
