package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestCodecConfig(t *testing.T) {
	cfg, err := ParseWorkerConfig("worker.yaml", []byte(`temporal:
  codec:
    active: k2
    keys:
      - id: k2
        key: env:HF_KEY2
      - id: k1
        key: file:/etc/hybridflow/codec-k1.key
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := &CodecConfig{Active: "k2", Keys: []CodecKey{{ID: "k2", Key: "env:HF_KEY2"}, {ID: "k1", Key: "file:/etc/hybridflow/codec-k1.key"}}}
	if !reflect.DeepEqual(cfg.Temporal.Codec, want) {
		t.Fatalf("codec = %+v, want %+v", cfg.Temporal.Codec, want)
	}

	// One key needs no active.
	cfg, err = ParseWorkerConfig("worker.yaml", []byte("temporal:\n  codec:\n    keys: [{id: only, key: env:HF_KEY}]\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Temporal.Codec.Active != "only" {
		t.Fatalf("active = %q, want the only key", cfg.Temporal.Codec.Active)
	}

	// No block: no encryption.
	cfg, err = ParseWorkerConfig("worker.yaml", []byte("temporal:\n  address: 127.0.0.1:7233\n"), noEnv)
	if err != nil || cfg.Temporal.Codec != nil {
		t.Fatalf("codec without a block: %+v, %v", cfg.Temporal.Codec, err)
	}
}

func TestCodecConfigBroken(t *testing.T) {
	tests := []struct {
		name, yaml  string
		line        int
		field, msg  string
		mustNotEcho string
	}{
		{
			name: "literal key",
			yaml: "temporal:\n  codec:\n    keys:\n      - id: k1\n        key: q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq8w=\n",
			line: 5, field: "temporal.codec.keys[0].key", msg: "literal secrets are not allowed", mustNotEcho: "q83vEjRW",
		},
		{
			name: "unknown field",
			yaml: "temporal:\n  codec:\n    keys: [{id: k1, key: env:K1}]\n    algorithm: aes\n",
			line: 4, field: "temporal.codec.algorithm", msg: "unknown field",
		},
		{
			name: "unknown key field",
			yaml: "temporal:\n  codec:\n    keys:\n      - id: k1\n        key: env:K1\n        secret: env:K2\n",
			line: 6, field: "temporal.codec.keys[0].secret", msg: "unknown field",
		},
		{
			name: "empty block",
			yaml: "temporal:\n  codec:\n",
			line: 2, field: "temporal.codec", msg: "needs keys",
		},
		{
			name: "no keys",
			yaml: "temporal:\n  codec:\n    keys: []\n",
			line: 3, field: "temporal.codec.keys", msg: "at least one",
		},
		{
			name: "keys not a list",
			yaml: "temporal:\n  codec:\n    keys: env:K1\n",
			line: 3, field: "temporal.codec.keys", msg: "must be a list",
		},
		{
			name: "key without id",
			yaml: "temporal:\n  codec:\n    keys:\n      - key: env:K1\n",
			line: 4, field: "temporal.codec.keys[0].id", msg: "required",
		},
		{
			name: "bad id",
			yaml: "temporal:\n  codec:\n    keys:\n      - id: key one\n        key: env:K1\n",
			line: 4, field: "temporal.codec.keys[0].id", msg: "not a valid key id",
		},
		{
			name: "duplicate id",
			yaml: "temporal:\n  codec:\n    active: k1\n    keys:\n      - id: k1\n        key: env:K1\n      - id: k1\n        key: env:K2\n",
			line: 7, field: "temporal.codec.keys[1].id", msg: "listed twice (first at line 5)",
		},
		{
			name: "active unknown",
			yaml: "temporal:\n  codec:\n    active: k3\n    keys:\n      - id: k1\n        key: env:K1\n",
			line: 3, field: "temporal.codec.active", msg: `active key "k3" is not one of the keys`,
		},
		{
			name: "several keys without active",
			yaml: "temporal:\n  codec:\n    keys:\n      - id: k1\n        key: env:K1\n      - id: k2\n        key: env:K2\n",
			line: 3, field: "temporal.codec.active", msg: "required when several keys",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseWorkerConfig("worker.yaml", []byte(tc.yaml), noEnv)
			if cfg != nil {
				t.Errorf("want nil config on error, got %+v", cfg)
			}
			wantOne(t, err, "worker.yaml", tc.line, tc.field, tc.msg)
			if tc.mustNotEcho != "" && strings.Contains(err.Error(), tc.mustNotEcho) {
				t.Errorf("error echoes key material: %v", err)
			}
		})
	}
}

func TestCodecEnv(t *testing.T) {
	cfg, err := ParseWorkerConfig("worker.yaml", []byte("temporal:\n  codec:\n    keys: [{id: file-key, key: env:OLD}]\n"),
		envOf(map[string]string{EnvCodecKeys: " k2=env:HF_KEY2 , k1=file:/run/secrets/k1", EnvCodecActive: ""}))
	if err != nil {
		t.Fatal(err)
	}
	want := &CodecConfig{Active: "k2", Keys: []CodecKey{{ID: "k2", Key: "env:HF_KEY2"}, {ID: "k1", Key: "file:/run/secrets/k1"}}}
	if !reflect.DeepEqual(cfg.Temporal.Codec, want) {
		t.Fatalf("env replaces the block: %+v, want %+v", cfg.Temporal.Codec, want)
	}

	cfg, err = ParseWorkerConfig("", nil, envOf(map[string]string{EnvCodecKeys: "k2=env:HF_KEY2,k1=env:HF_KEY1", EnvCodecActive: "k1"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Temporal.Codec.Active != "k1" {
		t.Fatalf("active from env = %q", cfg.Temporal.Codec.Active)
	}

	// HYBRIDFLOW_CODEC_ACTIVE alone rotates the file's keys.
	cfg, err = ParseWorkerConfig("worker.yaml", []byte("temporal:\n  codec:\n    active: a\n    keys: [{id: a, key: env:A}, {id: b, key: env:B}]\n"),
		envOf(map[string]string{EnvCodecActive: "b"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Temporal.Codec.Active != "b" {
		t.Fatalf("active = %q, want b", cfg.Temporal.Codec.Active)
	}

	for _, tc := range []struct {
		env   map[string]string
		field string
		msg   string
	}{
		{map[string]string{EnvCodecKeys: "k1=c2VjcmV0c2VjcmV0c2VjcmV0"}, EnvCodecKeys, "literal secrets are not allowed"},
		{map[string]string{EnvCodecKeys: "k1"}, EnvCodecKeys, "want id=env:NAME"},
		{map[string]string{EnvCodecKeys: "k1=env:A,k1=env:B"}, EnvCodecKeys, "listed twice"},
		{map[string]string{EnvCodecKeys: " , "}, EnvCodecKeys, "no keys"},
		{map[string]string{EnvCodecKeys: "k1=env:A", EnvCodecActive: "k9"}, EnvCodecKeys, `active key "k9"`},
		{map[string]string{EnvCodecActive: "k1"}, EnvCodecActive, "no codec keys are configured"},
	} {
		_, err := ParseWorkerConfig("", nil, envOf(tc.env))
		p := wantOne(t, err, "environment", 0, tc.field, tc.msg)
		if strings.Contains(p.Message, "c2VjcmV0") {
			t.Errorf("error echoes key material: %v", p)
		}
	}
}
