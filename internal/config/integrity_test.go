package config

import (
	"slices"
	"strings"
	"testing"
)

// The worker config keys behind payload integrity: require_encryption,
// inventory.dir, exchange_online_hosts and a credential's clouds.

const codecBlock = `temporal:
  codec:
    keys:
      - {id: k1, key: "file:/etc/hybridflow/codec-k1.key"}
`

// TestRequireEncryptionNeedsKeys: require_encryption without codec keys is
// refused at load, naming the field where it was set (file line or
// environment variable); with keys from the file or from
// HYBRIDFLOW_CODEC_KEYS (which replaces the file's codec block), the codec
// comes out required.
func TestRequireEncryptionNeedsKeys(t *testing.T) {
	_, err := ParseWorkerConfig("worker.yaml", []byte("log_level: info\ntemporal:\n  require_encryption: true\n"), noEnv)
	p := wantOne(t, err, "worker.yaml", 3, "temporal.require_encryption", "no payload codec keys are configured")
	if !strings.Contains(p.Message, EnvCodecKeys) {
		t.Errorf("message %q does not say the keys may come from %s", p.Message, EnvCodecKeys)
	}

	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	_, err = ParseWorkerConfig("worker.yaml", nil, env(map[string]string{EnvRequireEncryption: "true"}))
	wantOne(t, err, "environment", 0, EnvRequireEncryption, "no payload codec keys are configured")

	_, err = ParseWorkerConfig("worker.yaml", []byte("temporal:\n  require_encryption: yes please\n"), noEnv)
	wantOne(t, err, "worker.yaml", 2, "temporal.require_encryption", "must be true or false")
	_, err = ParseWorkerConfig("worker.yaml", nil, env(map[string]string{EnvRequireEncryption: "sometimes"}))
	wantOne(t, err, "environment", 0, EnvRequireEncryption, `"sometimes" is not true or false`)

	for _, tc := range []struct {
		name string
		yaml string
		env  map[string]string
		want bool
	}{
		{"file keys, required", codecBlock + "  require_encryption: true\n", nil, true},
		{"file keys, not required", codecBlock, nil, false},
		{"file keys, off", codecBlock + "  require_encryption: false\n", nil, false},
		{"environment keys replace the block, still required", codecBlock + "  require_encryption: true\n",
			map[string]string{EnvCodecKeys: "k9=env:HF_K9"}, true},
		{"environment keys and environment switch", "", map[string]string{EnvCodecKeys: "k9=env:HF_K9", EnvRequireEncryption: "true"}, true},
		{"environment turns it off", codecBlock + "  require_encryption: true\n", map[string]string{EnvRequireEncryption: "false"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseWorkerConfig("worker.yaml", []byte(tc.yaml), env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Temporal.Codec == nil || cfg.Temporal.Codec.Required != tc.want || cfg.Temporal.RequireEncryption != tc.want {
				t.Fatalf("codec %+v, require_encryption %v; want required %v", cfg.Temporal.Codec, cfg.Temporal.RequireEncryption, tc.want)
			}
		})
	}
}

func TestInventoryDir(t *testing.T) {
	cfg, err := ParseWorkerConfig("worker.yaml", []byte("inventory:\n  dir: /srv/inventories\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.InventoryDir != "/srv/inventories" {
		t.Fatalf("inventory.dir = %q", cfg.InventoryDir)
	}
	if cfg, err := ParseWorkerConfig("worker.yaml", nil, noEnv); err != nil || cfg.InventoryDir != "" {
		t.Fatalf("no inventory block: %q, %v; want \"\" (no file is read)", cfg.InventoryDir, err)
	}
	for _, tc := range []struct{ yaml, field, msg string }{
		{"inventory:\n  dir: \"\"\n", "inventory.dir", "required"},
		{"inventory:\n  dir: /\n", "inventory.dir", "root of the file system"},
		{"inventory:\n  dir: //\n", "inventory.dir", "root of the file system"},
		{"inventory:\n  dir: [a, b]\n", "inventory.dir", "must be a string"},
	} {
		_, err := ParseWorkerConfig("worker.yaml", []byte(tc.yaml), noEnv)
		wantOne(t, err, "worker.yaml", 2, tc.field, tc.msg)
	}
}

func TestExchangeOnlineHosts(t *testing.T) {
	cfg, err := ParseWorkerConfig("worker.yaml", []byte("exchange_online_hosts: [Outlook.Example.COM, eo.contoso.us]\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"outlook.example.com", "eo.contoso.us"}; !slices.Equal(cfg.ExchangeOnlineHosts, want) {
		t.Fatalf("exchange_online_hosts = %v; want %v", cfg.ExchangeOnlineHosts, want)
	}
	for _, tc := range []struct{ yaml, field, msg string }{
		{"exchange_online_hosts: [https://outlook.example.com/]\n", "exchange_online_hosts[0]", "host name only"},
		{"exchange_online_hosts: [a.example.com, A.example.com]\n", "exchange_online_hosts[1]", "listed twice"},
		{"exchange_online_hosts: outlook.example.com\n", "exchange_online_hosts", "must be a list"},
	} {
		_, err := ParseWorkerConfig("worker.yaml", []byte(tc.yaml), noEnv)
		wantOne(t, err, "worker.yaml", 1, tc.field, tc.msg)
	}
}

func TestCredentialClouds(t *testing.T) {
	const base = "credentials:\n  gov:\n    kind: client-secret\n    client_id: 33333333-3333-4333-8333-000000000001\n    secret: env:S\n"
	cfg, err := ParseWorkerConfig("worker.yaml", []byte(base+"    clouds: [GCC-High, dod, 21vianet]\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Credentials["gov"].Clouds, []string{"gcchigh", "dod", "china"}; !slices.Equal(got, want) {
		t.Fatalf("clouds = %v; want the canonical names %v", got, want)
	}
	if cfg, err := ParseWorkerConfig("worker.yaml", []byte(base), noEnv); err != nil || cfg.Credentials["gov"].Clouds != nil {
		t.Fatalf("no clouds: %v, %v; want none (every cloud)", cfg.Credentials["gov"].Clouds, err)
	}
	for _, tc := range []struct {
		clouds      string
		line        int
		field, want string
	}{
		{"[global, moon]", 6, "credentials.gov.clouds[1]", `unknown cloud "moon"`},
		{"[gcc, gcc]", 6, "credentials.gov.clouds[1]", "listed twice"},
		{"[]", 6, "credentials.gov.clouds", "empty list"},
	} {
		_, err := ParseWorkerConfig("worker.yaml", []byte(base+"    clouds: "+tc.clouds+"\n"), noEnv)
		wantOne(t, err, "worker.yaml", tc.line, tc.field, tc.want)
	}
}

// TestShippedConfigsIntegrity: the production example and the compose
// worker require encryption and confine inventory reads; the dev config,
// which has no codec keys, does not require encryption but confines reads.
func TestShippedConfigsIntegrity(t *testing.T) {
	ex, err := LoadWorkerConfig("../../configs/worker.example.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if !ex.Temporal.RequireEncryption || ex.Temporal.Codec == nil || !ex.Temporal.Codec.Required || ex.InventoryDir == "" {
		t.Errorf("worker.example.yaml: require_encryption %v, codec %+v, inventory.dir %q", ex.Temporal.RequireEncryption, ex.Temporal.Codec, ex.InventoryDir)
	}
	if c := ex.Credentials["provider-cert"].Clouds; !slices.Equal(c, []string{"gcchigh", "dod"}) {
		t.Errorf("worker.example.yaml: provider-cert clouds %v", c)
	}
	// docker-compose.yml gives the worker its codec key this way.
	composeEnv := func(k string) string {
		if k == EnvCodecKeys {
			return "k1=file:/run/secrets/hybridflow_codec_k1"
		}
		return ""
	}
	co, err := LoadWorkerConfig("../../configs/worker.compose.yaml", composeEnv)
	if err != nil {
		t.Fatal(err)
	}
	if co.Temporal.Codec == nil || !co.Temporal.Codec.Required || co.InventoryDir == "" {
		t.Errorf("worker.compose.yaml: codec %+v, inventory.dir %q", co.Temporal.Codec, co.InventoryDir)
	}
	if _, err := LoadWorkerConfig("../../configs/worker.compose.yaml", noEnv); err == nil || !strings.Contains(err.Error(), "temporal.require_encryption") {
		t.Errorf("worker.compose.yaml without its codec keys: %v; want require_encryption refused", err)
	}
	dev, err := LoadWorkerConfig("../../configs/worker.dev.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if dev.Temporal.Codec != nil || dev.Temporal.RequireEncryption || dev.InventoryDir != "configs" {
		t.Errorf("worker.dev.yaml: codec %+v, require_encryption %v, inventory.dir %q", dev.Temporal.Codec, dev.Temporal.RequireEncryption, dev.InventoryDir)
	}
}
