package deploytest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const alertsFile = "../../deploy/prometheus/alerts.yml"

// alertsTestFiles are the unit tests of alertsFile: one evaluated every
// minute, one hourly for the alerts about days.
var alertsTestFiles = []string{"../../deploy/prometheus/alerts_test.yml", "../../deploy/prometheus/alerts_days_test.yml"}

// readTests reads the unit test files by base name.
func readTests(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, f := range alertsTestFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

// promtool finds the promtool `make alerts-check` builds (PROMTOOL, else
// bin/promtool). Without it the test is skipped, unless
// HYBRIDFLOW_REQUIRE_PROMTOOL is set, as make alerts-check sets it: there a
// missing promtool is a failure.
func promtool(t *testing.T) string {
	t.Helper()
	p := os.Getenv("PROMTOOL")
	if p == "" {
		p = "../../bin/promtool"
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("HYBRIDFLOW_REQUIRE_PROMTOOL") != "" {
			t.Fatalf("promtool not found at %s (make alerts-check builds it)", p)
		}
		t.Skipf("promtool not found at %s: `make alerts-check` builds it and runs this test", p)
	}
	return p
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert string `yaml:"alert"`
			Expr  string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type ruleTests struct {
	Tests []struct {
		Name  string `yaml:"name"`
		Evals []struct {
			Alert string `yaml:"alertname"`
			Exp   []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func alertNames(t *testing.T, rules []byte) []string {
	t.Helper()
	var rf ruleFile
	if err := yaml.Unmarshal(rules, &rf); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				out = append(out, r.Alert)
			}
		}
	}
	return out
}

// runTests runs `promtool test rules` on copies of rules and the test
// files in dir, returning its exit status and output.
func runTests(t *testing.T, tool, dir string, rules []byte, tests map[string][]byte) (int, string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "alerts.yml"), rules, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"test", "rules"}
	for name, b := range tests {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, name)
	}
	sort.Strings(args[2:])
	cmd := exec.Command(tool, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err == nil {
		return 0, out.String()
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	}
	t.Fatalf("promtool: %v", err)
	return -1, ""
}

// testsOf keeps only the test cases that evaluate alert, dropping files
// left without any, so a mutation run evaluates only that alert's tests.
func testsOf(t *testing.T, tests map[string][]byte, alert string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for name, b := range tests {
		var doc map[string]any
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		var kept []any
		for _, tc := range doc["tests"].([]any) {
			for _, e := range tc.(map[string]any)["alert_rule_test"].([]any) {
				if e.(map[string]any)["alertname"] == alert {
					kept = append(kept, tc)
					break
				}
			}
		}
		if len(kept) == 0 {
			continue
		}
		doc["tests"] = kept
		nb, err := yaml.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = nb
	}
	return out
}

// TestAlertRules: the shipped rules pass `promtool check rules` and their
// unit tests; every alert has a test where it fires and one where it must
// not.
func TestAlertRules(t *testing.T) {
	tool := promtool(t)
	out, err := exec.Command(tool, "check", "rules", alertsFile).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	// The scrape config (its rule files included).
	if out, err := exec.Command(tool, "check", "config", "../../deploy/prometheus/prometheus.yml").CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	// Every dashboard query parses: each becomes a recording rule that
	// promtool checks.
	var rec strings.Builder
	rec.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for _, pn := range dashboardPanels(t) {
		for _, tg := range pn.Targets {
			n++
			q, _ := yaml.Marshal(tg.Expr)
			rec.WriteString("      - record: hybridflow:dashboard_panel_" + strconv.Itoa(n) + "\n        expr: " + strings.TrimSpace(string(q)) + "\n")
		}
	}
	recFile := filepath.Join(t.TempDir(), "dashboard.yml")
	if err := os.WriteFile(recFile, []byte(rec.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(tool, "check", "rules", recFile).CombinedOutput(); err != nil {
		t.Fatalf("a dashboard query does not parse: %v\n%s", err, out)
	}
	rules, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	tests := readTests(t)
	if code, out := runTests(t, tool, t.TempDir(), rules, tests); code != 0 {
		t.Fatalf("promtool test rules: exit %d\n%s", code, out)
	}
	fires, quiet := map[string]int{}, map[string]int{}
	for _, b := range tests {
		var rt ruleTests
		if err := yaml.Unmarshal(b, &rt); err != nil {
			t.Fatal(err)
		}
		for _, tc := range rt.Tests {
			for _, e := range tc.Evals {
				if len(e.Exp) > 0 {
					fires[e.Alert]++
				} else {
					quiet[e.Alert]++
				}
			}
		}
	}
	names := alertNames(t, rules)
	if len(names) < 8 {
		t.Fatalf("alerts.yml defines %d alerts: %v", len(names), names)
	}
	for _, a := range names {
		if fires[a] == 0 || quiet[a] == 0 {
			t.Errorf("alert %s: %d test(s) where it fires, %d where it must not; want at least one of each", a, fires[a], quiet[a])
		}
	}
	sort.Strings(names)
	if t.Failed() {
		return
	}
	t.Logf("%d alerts, each tested firing and not firing: %s", len(names), strings.Join(names, ", "))
}

// comparison is the first comparison operator of an expression.
var comparison = regexp.MustCompile(` (==|!=|>|<) `)

// TestAlertRulesMutations breaks each alert's expression in turn — never
// firing, always firing (one unlabelled alert), and its first comparison
// turned around — and runs the unit tests against the broken rules: each
// time they must fail, and fail on that alert.
//
// It runs in make alerts-check (HYBRIDFLOW_ALERTS_MUTATE=1), not in every
// go test: it runs promtool 27 times.
func TestAlertRulesMutations(t *testing.T) {
	if os.Getenv("HYBRIDFLOW_ALERTS_MUTATE") == "" {
		t.Skip("set HYBRIDFLOW_ALERTS_MUTATE=1 (make alerts-check does) to break each alert's expression and run its tests")
	}
	tool := promtool(t)
	rules, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	tests := readTests(t)
	var doc yaml.Node
	if err := yaml.Unmarshal(rules, &doc); err != nil {
		t.Fatal(err)
	}
	flip := map[string]string{"==": "!=", "!=": "==", ">": "<", "<": ">"}
	mutations := []struct {
		name string
		f    func(expr string) string
	}{
		{"never fires", func(string) string { return "vector(1) < 0" }},
		{"always fires", func(string) string { return "vector(1)" }},
		{"comparison turned around", func(expr string) string {
			loc := comparison.FindStringSubmatchIndex(expr)
			if loc == nil {
				return ""
			}
			return expr[:loc[2]] + flip[expr[loc[2]:loc[3]]] + expr[loc[3]:]
		}},
	}
	checked := 0
	for _, alert := range alertNames(t, rules) {
		dir := t.TempDir()
		own := testsOf(t, tests, alert)
		if len(own) == 0 {
			t.Errorf("%s: no unit test evaluates it", alert)
			continue
		}
		for _, m := range mutations {
			mutated, ok := mutateExpr(t, &doc, alert, m.f)
			if !ok {
				t.Errorf("%s: %s: nothing to mutate", alert, m.name)
				continue
			}
			code, out := runTests(t, tool, dir, mutated, own)
			switch {
			case code == 0:
				t.Errorf("%s with its expression broken (%s): the unit tests still pass", alert, m.name)
			case !strings.Contains(out, "alertname: "+alert+","):
				t.Errorf("%s with its expression broken (%s): the unit tests fail, but not on this alert:\n%s", alert, m.name, out)
			default:
				checked++
			}
		}
	}
	t.Logf("%d broken expressions, each caught by its alert's tests", checked)
}

// mutateExpr returns the rules with alert's expression replaced by f(expr).
func mutateExpr(t *testing.T, doc *yaml.Node, alert string, f func(string) string) ([]byte, bool) {
	t.Helper()
	var found *yaml.Node
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			var name string
			var expr *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				switch n.Content[i].Value {
				case "alert":
					name = n.Content[i+1].Value
				case "expr":
					expr = n.Content[i+1]
				}
			}
			if name == alert && expr != nil {
				found = expr
				return
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(doc)
	if found == nil {
		t.Fatalf("alert %s has no expr", alert)
	}
	orig := found.Value
	next := f(orig)
	if next == "" || next == orig {
		return nil, false
	}
	found.Value = next
	defer func() { found.Value = orig }()
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out, true
}
