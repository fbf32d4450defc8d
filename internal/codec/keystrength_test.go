package codec

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/hostile"
)

// TestParseKeyRefusesPassphrases: 32 bytes that are text (a passphrase,
// base64-encoded to pass the length check, or written raw to a file) or
// that repeat a few byte values are not a key; the error says how to make
// one and does not echo the material.
func TestParseKeyRefusesPassphrases(t *testing.T) {
	pattern := bytes.Repeat([]byte{0xab, 0xcd, 0xef, 0x12, 0x34, 0x56, 0x78, 0x9a}, 4)
	for name, in := range map[string][]byte{
		"base64 of a passphrase": []byte(hostile.PassphraseKey),
		"raw passphrase":         []byte("correct horse battery staple 123"),
		"base64 of zeros":        []byte(base64.StdEncoding.EncodeToString(make([]byte, KeySize))),
		"base64 of a pattern":    []byte(base64.StdEncoding.EncodeToString(pattern)),
		"hex digits as bytes":    []byte(base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))),
	} {
		k, err := ParseKey(in)
		if err == nil {
			t.Errorf("%s: accepted as a key (%x)", name, k)
			continue
		}
		if !strings.Contains(err.Error(), "openssl rand -base64 32") || !strings.Contains(err.Error(), "random") {
			t.Errorf("%s: the error does not say how to make a key: %v", name, err)
		}
		if bytes.Contains([]byte(err.Error()), bytes.TrimSpace(in)) || strings.Contains(err.Error(), "horse") {
			t.Errorf("%s: the error echoes the material: %v", name, err)
		}
	}
	// Through the configuration: the reference is named, never the value.
	env := map[string]string{"HF_KEY": hostile.PassphraseKey}
	_, err := FromConfig(&config.CodecConfig{Active: "k1", Keys: []config.CodecKey{{ID: "k1", Key: "env:HF_KEY"}}}, func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "env:HF_KEY") || strings.Contains(err.Error(), hostile.PassphraseKey) {
		t.Fatalf("passphrase through the config: %v", err)
	}
}

// TestParseKeyAcceptsRandomKeys: the randomness rule refuses no key that
// `openssl rand -base64 32` could plausibly print (the odds of a random
// key failing it are below 1e-13), in any of the accepted forms.
func TestParseKeyAcceptsRandomKeys(t *testing.T) {
	for i := range 2000 {
		k := make([]byte, KeySize)
		if _, err := rand.Read(k); err != nil {
			t.Fatal(err)
		}
		for _, in := range [][]byte{[]byte(base64.StdEncoding.EncodeToString(k) + "\n"), []byte(base64.RawURLEncoding.EncodeToString(k)), k} {
			if got, err := ParseKey(in); err != nil || !bytes.Equal(got, k) {
				t.Fatalf("random key %d (%x) refused: %v", i, k, err)
			}
		}
	}
}
