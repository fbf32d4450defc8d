package sim

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/cloud"
)

const (
	smallWorldPath = "../../configs/sim/small.yaml"
	demoWorldPath  = "../../configs/sim/demo.yaml"
)

// mixedWorld has an explicit tenant, a generate spec covering every
// variation and cloud, and fault rules: everything Dump must round-trip.
const mixedWorld = `seed: 42
now: 2026-11-01T00:00:00Z
generate:
  tenants: 10
  prefix: mix
  sites: 3
  clouds: [global, gcc, gcchigh, dod, china]
  legacy_servers: 0.1
  old_builds: 0.2
  foreign_keys: 0.3
  expired_keys: 0.3
  half_configured: 0.5
  hcw_names: 0.2
faults:
  - protocol: graph
    operation: PATCH servicePrincipals
    kind: throttle
    fail_first_n: 2
    retry_after: 2s
  - protocol: shell
    kind: latency
    latency: 150ms
    jitter: 50ms
tenants:
  - id: 33333333-3333-4333-8333-000000000001
    display_name: Explicit
    initial_domain: explicit.onmicrosoft.com
    site: site-x
    behaviour:
      propagation_checks: 2
    onprem:
      auth_config:
        next_certificate_thumbprint: ABCDEF0123456789ABCDEF0123456789ABCDEF01
        next_certificate_effective_date: 2026-12-01T00:00:00Z
    lync:
      site: site-x
      allow_federated_users: false
      replicas:
        - fqdn: fe01.explicit.example.com
          up_to_date: true
          lag_checks: 2
`

func TestDumpParseDumpIsByteIdentical(t *testing.T) {
	sources := []struct {
		name    string
		data    func(t *testing.T) []byte
		tenants int
	}{
		{"mixed explicit and generated", func(*testing.T) []byte { return []byte(mixedWorld) }, 11},
		{"small.yaml", readFile(smallWorldPath), 3},
		{"demo.yaml", readFile(demoWorldPath), 20},
	}
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			w, err := Parse(src.name, src.data(t))
			if err != nil {
				t.Fatal(err)
			}
			if len(w.Tenants) != src.tenants {
				t.Fatalf("%d tenants, want %d", len(w.Tenants), src.tenants)
			}
			first, err := w.Dump()
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(first, []byte("\ngenerate:")) {
				t.Fatal("dump kept the generate spec: a reload would generate twice")
			}
			w2, err := Parse("dump", first)
			if err != nil {
				t.Fatalf("dump does not parse: %v", err)
			}
			if len(w2.Tenants) != src.tenants {
				t.Fatalf("reloaded %d tenants, want %d", len(w2.Tenants), src.tenants)
			}
			second, err := w2.Dump()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(first, second) {
				t.Fatalf("dump → parse → dump differs:\n%s", firstDifference(first, second))
			}
			// The generate spec is still on the loaded world (only the dump drops it).
			if src.name == "mixed explicit and generated" && w.Generate == nil {
				t.Fatal("Dump must not clear the world's generate spec")
			}
		})
	}
}

func readFile(path string) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
}

func firstDifference(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d lines", len(al), len(bl))
}

func TestDumpKeepsBinaryAndTimes(t *testing.T) {
	w, err := Load(smallWorldPath)
	if err != nil {
		t.Fatal(err)
	}
	data, err := w.Dump()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte("der: !!binary |")) || !bytes.Contains(data, []byte("key: !!binary |")) {
		t.Fatal("DER must be written as base64 blocks")
	}
	if bytes.Contains(data, []byte("der: []")) || bytes.Contains(data, []byte("\n                - 48\n")) {
		t.Fatal("DER written as a byte list")
	}
	w2, err := Parse("dump", data)
	if err != nil {
		t.Fatal(err)
	}
	a, b := w.Tenants[1], w2.Tenants[1]
	if !bytes.Equal(a.OnPrem.Certificates[0].DER, b.OnPrem.Certificates[0].DER) ||
		!bytes.Equal(a.Entra.ServicePrincipals[0].KeyCredentials[0].Key, b.Entra.ServicePrincipals[0].KeyCredentials[0].Key) {
		t.Fatal("DER changed through dump/parse")
	}
	if !w2.FixedNow.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("now %v", w2.FixedNow)
	}
}

func TestParseRejects(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string // substrings of the error, in order of appearance
	}{
		{"unknown top-level field", "seed: 1\nsed: 2\ntenants: []\n", []string{"w.yaml:2: field sed not found"}},
		{"unknown tenant field", "tenants:\n  - id: a\n    cloud: global\n    colour: red\n", []string{"w.yaml:4: field colour not found in type sim.Tenant"}},
		{"unknown key-credential field", "tenants:\n  - id: a\n    entra:\n      service_principals:\n        - id: s\n          key_credentials:\n            - key_id: k\n              thumb: x\n", []string{"w.yaml:8: field thumb not found in type sim.KeyCredential"}},
		{"unknown certificate field", "tenants:\n  - id: a\n    onprem:\n      certificates:\n        - thumbprint: T\n          private_key: nope\n", []string{"w.yaml:6: field private_key not found in type sim.ExchangeCertificate"}},
		{"certificate DER not base64", "tenants:\n  - id: a\n    onprem:\n      certificates:\n        - thumbprint: T\n          der: '%%%'\n", []string{"w.yaml:6: field der: not base64"}},
		{"wrong type", "seed: many\ntenants: []\n", []string{"w.yaml:1: cannot unmarshal"}},
		{"syntax error", "tenants: [\n", []string{"w.yaml:"}},
		{"empty document", "", []string{"w.yaml: empty world document"}},
		{"duplicate tenant", "tenants:\n  - id: A\n  - id: a\n", []string{"w.yaml:3: tenant id a is also used by tenant 0"}},
		{"missing id", "tenants:\n  - display_name: x\n", []string{"w.yaml:2: tenant 0 has no id"}},
		{"unknown cloud", "tenants:\n  - id: a\n    cloud: mars\n", []string{"w.yaml:3: tenant a: unknown cloud \"mars\""}},
		{"bad fault protocol", "faults:\n  - protocol: smtp\n    kind: fail\n    rate: 1\ntenants: []\n", []string{"w.yaml:2: fault 0: protocol \"smtp\""}},
		{"bad fault kind", "faults:\n  - protocol: graph\n    kind: explode\n    rate: 1\ntenants: []\n", []string{"kind \"explode\""}},
		{"fault that never fires", "faults:\n  - protocol: graph\n    kind: fail\ntenants: []\n", []string{"never fires"}},
		{"fault rate above 1", "faults:\n  - protocol: graph\n    kind: fail\n    rate: 2\ntenants: []\n", []string{"rate 2 is outside 0..1"}},
		{"generate without tenants", "generate:\n  prefix: x\ntenants: []\n", []string{"w.yaml:2: generate: tenants must be between 1"}},
		{"generate bad fraction", "generate:\n  tenants: 2\n  old_builds: 1.5\ntenants: []\n", []string{"old_builds must be a fraction"}},
		{"generate bad cloud", "generate:\n  tenants: 2\n  clouds: [global, venus]\ntenants: []\n", []string{"unknown cloud \"venus\""}},
		{"generate bad prefix", "generate:\n  tenants: 2\n  prefix: Bad_Prefix\ntenants: []\n", []string{"prefix \"Bad_Prefix\""}},
		{"several problems at once", "tenants:\n  - id: a\n    cloud: mars\n  - id: a\n", []string{"w.yaml:3: tenant a: unknown cloud", "w.yaml:4: tenant id a is also used"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("w.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			at := 0
			for _, w := range tc.want {
				i := strings.Index(msg[at:], w)
				if i < 0 {
					t.Fatalf("error %q lacks %q (after offset %d)", msg, w, at)
				}
				at += i + len(w)
			}
		})
	}
}

func TestParseDefaultsCloudAndIndexes(t *testing.T) {
	w, err := Parse("w.yaml", []byte("tenants:\n  - id: ABC\n    cloud: 21vianet\n  - id: def\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w.Tenants[0].Cloud != string(cloud.China) || w.Tenants[1].Cloud != string(cloud.Global) {
		t.Fatalf("clouds %q %q", w.Tenants[0].Cloud, w.Tenants[1].Cloud)
	}
	if !w.View("abc", func(*Tenant) {}) || !w.View("DEF", func(*Tenant) {}) {
		t.Fatal("index is not case-insensitive")
	}
}

func TestCloneIsDeep(t *testing.T) {
	w, err := Load(smallWorldPath)
	if err != nil {
		t.Fatal(err)
	}
	c := w.Clone()
	id := w.Tenants[1].ID
	c.Update(id, func(tn *Tenant) {
		tn.Entra.ServicePrincipals[0].KeyCredentials[0].Key[0] ^= 0xFF
		tn.Entra.ServicePrincipals[0].ServicePrincipalNames = append(tn.Entra.ServicePrincipals[0].ServicePrincipalNames, "x")
		tn.OnPrem.AuthServers[0].Enabled = false
		tn.OnPrem.Servers[0].Version = "0.0"
	})
	w.View(id, func(tn *Tenant) {
		sp := tn.Entra.ServicePrincipals[0]
		if sp.KeyCredentials[0].Key[0] == c.Tenants[1].Entra.ServicePrincipals[0].KeyCredentials[0].Key[0] {
			t.Error("key bytes are shared")
		}
		if len(sp.ServicePrincipalNames) != 3 || !tn.OnPrem.AuthServers[0].Enabled || tn.OnPrem.Servers[0].Version == "0.0" {
			t.Error("changing the clone changed the original")
		}
	})
	a, _ := w.Dump()
	c2 := w.Clone()
	b, _ := c2.Dump()
	if !bytes.Equal(a, b) {
		t.Fatal("a fresh clone dumps differently")
	}
	if !c2.Now().Equal(w.Now()) {
		t.Fatal("clone lost the clock")
	}
}

func TestShippedWorlds(t *testing.T) {
	demo, err := Load(demoWorldPath)
	if err != nil {
		t.Fatal(err)
	}
	idRE := regexp.MustCompile(`^11111111-1111-4111-8111-0000000000\d\d$`)
	clouds := map[string]int{}
	var legacy, old, foreign, expired, hcw, half, lync int
	now := generateEpoch
	for _, tn := range demo.Tenants {
		if !idRE.MatchString(tn.ID) {
			t.Errorf("demo tenant id %s does not follow the pattern", tn.ID)
		}
		clouds[tn.Cloud]++
		for _, s := range tn.OnPrem.Servers {
			switch s.Version {
			case GenLegacyBuild:
				legacy++
			case GenOldBuild:
				old++
			}
		}
		for _, k := range tn.Entra.ServicePrincipals[0].KeyCredentials {
			if k.EndDateTime.Before(now) {
				expired++
			} else {
				foreign++
			}
		}
		if len(tn.OnPrem.AuthServers) > 0 && strings.HasPrefix(tn.OnPrem.AuthServers[0].Name, "ACS - ") {
			hcw++
		}
		if tn.OnPrem.PartnerApplications[0].Enabled || len(tn.OnPrem.IntraOrganizationConnectors) > 0 || len(tn.Entra.ServicePrincipals[0].ServicePrincipalNames) > 3 {
			half++
		}
		if tn.Lync != nil {
			lync++
		}
	}
	if len(demo.Tenants) != 20 || len(clouds) != 5 {
		t.Fatalf("demo: %d tenants over clouds %v", len(demo.Tenants), clouds)
	}
	for name, n := range map[string]int{"legacy server": legacy, "old builds": old, "foreign key": foreign, "expired key": expired, "HCW names": hcw, "half-configured": half, "lync": lync} {
		if n == 0 {
			t.Errorf("demo has no tenant with %s", name)
		}
	}
	small, err := Load(filepath.Clean(smallWorldPath))
	if err != nil {
		t.Fatal(err)
	}
	if len(small.Tenants) != 3 || small.FixedNow.IsZero() {
		t.Fatalf("small: %d tenants, now %v", len(small.Tenants), small.FixedNow)
	}
}

// BenchmarkLoadWorld1000 parses a world whose generate spec asks for 1,000
// tenants with every variation: generation (a real certificate per
// tenant), validation and indexing.
func BenchmarkLoadWorld1000(b *testing.B) {
	spec := []byte(`seed: 7
generate:
  tenants: 1000
  sites: 10
  clouds: [global, gcc, gcchigh, dod, china]
  legacy_servers: 0.05
  old_builds: 0.2
  foreign_keys: 0.2
  expired_keys: 0.2
  half_configured: 0.3
  hcw_names: 0.2
tenants: []
`)
	for b.Loop() {
		w, err := Parse("bench", spec)
		if err != nil || len(w.Tenants) != 1000 {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseDumped1000 parses the same world written out explicitly
// (what a saved world costs to load).
func BenchmarkParseDumped1000(b *testing.B) {
	w, err := Parse("bench", []byte("seed: 7\ngenerate:\n  tenants: 1000\n  foreign_keys: 0.2\n  expired_keys: 0.2\ntenants: []\n"))
	if err != nil {
		b.Fatal(err)
	}
	data, err := w.Dump()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse("bench", data); err != nil {
			b.Fatal(err)
		}
	}
}
