package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveSecret(t *testing.T) {
	dir := t.TempDir()
	withNL := filepath.Join(dir, "s.txt")
	empty := filepath.Join(dir, "empty.txt")
	if err := os.WriteFile(withNL, []byte("s3cret\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env := envOf(map[string]string{"HF_SECRET": "from-env"})

	for ref, want := range map[string]string{"env:HF_SECRET": "from-env", "file:" + withNL: "s3cret"} {
		got, err := ResolveSecret(ref, env)
		if err != nil || got != want {
			t.Errorf("ResolveSecret(%q) = %q, %v; want %q", ref, got, err, want)
		}
	}
	raw, err := ResolveSecretBytes("file:"+withNL, env)
	if err != nil || string(raw) != "s3cret\r\n" {
		t.Errorf("ResolveSecretBytes = %q, %v", raw, err)
	}

	bad := []struct{ ref, msg string }{
		{"env:HF_MISSING", "env:HF_MISSING: environment variable is not set or empty"},
		{"file:" + empty, "file is empty"},
		{"file:" + filepath.Join(dir, "nope"), "no such file"},
		{"hunter2-literal", "literal secrets are not allowed"},
		{"env:", "the env: name must be"},
	}
	for _, b := range bad {
		_, err := ResolveSecret(b.ref, env)
		if err == nil || !strings.Contains(err.Error(), b.msg) {
			t.Errorf("ResolveSecret(%q) error = %v, want %q", b.ref, err, b.msg)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "from-env") {
			t.Errorf("error leaks a value: %v", err)
		}
	}
	if _, err := ResolveSecret("file:"+filepath.Join(dir, "nope"), env); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file error does not wrap os.ErrNotExist: %v", err)
	}
}
