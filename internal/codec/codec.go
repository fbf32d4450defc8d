// Package codec encrypts Temporal payloads: workflow and activity inputs
// and results, queries, updates, heartbeats and (through the failure
// converter) error messages. Temporal's server, its database and anyone who
// can read history then see ciphertext only; the keys stay with the workers,
// the CLI and the codec server the Web UI uses to show clear values.
//
// Each payload is sealed with AES-256-GCM under the active key. The sealed
// payload records the key's ID in its metadata, so keys rotate without
// re-encrypting anything: add a key, make it active, keep the old one for
// decryption until every history written with it is past retention.
//
// Not encrypted, by Temporal's design: workflow IDs (they carry tenant
// IDs), workflow and activity type names, task queue names and search
// attributes (tenant ID, cloud, step, state) — they must stay readable for
// visibility queries. Nothing secret goes into them.
package codec

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/hybridflow/hybridflow/internal/config"
)

// Metadata of an encrypted payload.
const (
	// Encoding is the "encoding" metadata value of a sealed payload.
	Encoding = "binary/encrypted"
	// MetadataKeyID names the key that sealed the payload.
	MetadataKeyID = "encryption-key-id"
	// KeySize is the AES-256 key length in bytes.
	KeySize = 32
)

// Key is one AES-256 key and the ID recorded with what it seals.
type Key struct {
	ID     string
	Secret []byte
}

// Codec is a converter.PayloadCodec: Encode seals with the active key,
// Decode opens with whichever known key a payload names and passes
// payloads that are not sealed through unchanged (histories written before
// encryption was turned on stay readable), unless the codec requires
// encryption (Require): then such a payload is refused with a
// *PlaintextError. It is safe for concurrent use.
type Codec struct {
	active string
	aeads  map[string]cipher.AEAD
	ids    []string
	// required: Decode refuses payloads that are not sealed (Require).
	required bool
}

var _ converter.PayloadCodec = (*Codec)(nil)

// New builds a codec from its keys; active names the key that encrypts.
func New(active string, keys []Key) (*Codec, error) {
	if len(keys) == 0 {
		return nil, errors.New("codec: no keys")
	}
	c := &Codec{active: active, aeads: map[string]cipher.AEAD{}}
	for _, k := range keys {
		if k.ID == "" {
			return nil, errors.New("codec: a key has no id")
		}
		if _, dup := c.aeads[k.ID]; dup {
			return nil, fmt.Errorf("codec: key id %s given twice", k.ID)
		}
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("codec: key %s is %d bytes, want %d (AES-256)", k.ID, len(k.Secret), KeySize)
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("codec: key %s: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("codec: key %s: %w", k.ID, err)
		}
		c.aeads[k.ID] = aead
		c.ids = append(c.ids, k.ID)
	}
	if _, ok := c.aeads[active]; !ok {
		return nil, fmt.Errorf("codec: active key %q is not one of the keys (%s)", active, strings.Join(c.ids, ", "))
	}
	return c, nil
}

// FromConfig resolves the configured key references (env:NAME, file:PATH)
// and builds the codec; nil config means no codec (nil, nil). Errors name
// references and key IDs, never key material.
func FromConfig(cfg *config.CodecConfig, getenv func(string) string) (*Codec, error) {
	if cfg == nil {
		return nil, nil
	}
	keys := make([]Key, 0, len(cfg.Keys))
	for _, k := range cfg.Keys {
		raw, err := config.ResolveSecretBytes(k.Key, getenv)
		if err != nil {
			return nil, fmt.Errorf("codec key %s: %w", k.ID, err)
		}
		secret, err := ParseKey(raw)
		if err != nil {
			return nil, fmt.Errorf("codec key %s (%s): %w", k.ID, k.Key, err)
		}
		keys = append(keys, Key{ID: k.ID, Secret: secret})
	}
	c, err := New(cfg.Active, keys)
	if err != nil || !cfg.Required {
		return c, err
	}
	return c.Require(), nil
}

// Require returns a copy of c whose Decode refuses every payload that is
// not sealed by this codec's format: whoever can write to the namespace
// without the keys (a client without the codec, a forged history) cannot
// hand the worker an input, signal, update or result it would act on.
func (c *Codec) Require() *Codec {
	r := *c
	r.required = true
	return &r
}

// Lenient returns a copy of c that passes unsealed payloads through, for
// the codec server: the Web UI sends it every payload it shows, and
// showing one is not acting on it.
func (c *Codec) Lenient() *Codec {
	r := *c
	r.required = false
	return &r
}

// Required reports whether Decode refuses unsealed payloads.
func (c *Codec) Required() bool { return c.required }

// RequireOption is the worker config key that makes the codec refuse
// unsealed payloads; errors name it so the operator knows why.
const RequireOption = "temporal.require_encryption"

// PlaintextErrorType is the Temporal error type of a refused payload.
const PlaintextErrorType = "PlaintextPayloadRefused"

// PlaintextError is a payload refused because it is not sealed while the
// codec requires encryption. It is never worth retrying: the same payload
// is refused again.
type PlaintextError struct {
	// Encoding is the refused payload's encoding metadata.
	Encoding string
}

func (e *PlaintextError) Error() string {
	enc := e.Encoding
	if enc == "" {
		enc = "none"
	}
	return fmt.Sprintf("codec: refused a payload that is not encrypted (encoding %s): %s is on, so only payloads sealed with the codec keys are accepted; whoever wrote it did not have the keys (start workflows, signals and updates with the hybridflow CLI configured with temporal.codec)", enc, RequireOption)
}

// ParseKey reads key material as written to a file or an environment
// variable: base64 (standard or URL alphabet, padded or not; surrounding
// white space ignored) of 32 bytes, as `openssl rand -base64 32` prints
// it, or exactly 32 raw bytes in a file. The bytes must look random
// (weakKey): a passphrase is refused however it is encoded.
func ParseKey(b []byte) ([]byte, error) {
	text := strings.TrimSpace(string(b))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(text); err == nil && len(k) == KeySize {
			if err := weakKey(k); err != nil {
				return nil, err
			}
			return k, nil
		}
	}
	if len(b) == KeySize {
		if err := weakKey(b); err != nil {
			return nil, err
		}
		return bytes.Clone(b), nil
	}
	return nil, fmt.Errorf("not a %d-byte key: give it base64-encoded (openssl rand -base64 32) or as %d raw bytes", KeySize, KeySize)
}

// minDistinctKeyBytes is the fewest different byte values a key may hold.
// 32 random bytes hold about 30; fewer than 16 happens by chance about
// once in 10^15 keys, and is what a repeated pattern or a short secret
// stretched to length looks like.
const minDistinctKeyBytes = 16

// weakKey refuses key material that is not random: every byte printable
// ASCII (a passphrase, hex digits, base64 text; chance for random bytes
// (95/256)^32, about 2e-14) or few distinct byte values (zeros, a
// repeated pattern). It says why without showing the material.
func weakKey(k []byte) error {
	printable := true
	var seen [256]bool
	distinct := 0
	for _, c := range k {
		if c < 0x20 || c > 0x7e {
			printable = false
		}
		if !seen[c] {
			seen[c] = true
			distinct++
		}
	}
	why := ""
	switch {
	case printable:
		why = "its 32 bytes are all printable text, like a passphrase"
	case distinct < minDistinctKeyBytes:
		why = fmt.Sprintf("its 32 bytes take only %d different values, like a pattern", distinct)
	default:
		return nil
	}
	return fmt.Errorf("not a random key: %s; make one with `openssl rand -base64 32` (or any 32 bytes from a cryptographic random source, base64-encoded)", why)
}

// ActiveKeyID is the ID of the key that encrypts.
func (c *Codec) ActiveKeyID() string { return c.active }

// KeyIDs lists every key that decrypts, in configuration order.
func (c *Codec) KeyIDs() []string { return slices.Clone(c.ids) }

// additionalData binds the key ID to the ciphertext: a payload whose key
// ID metadata was altered fails authentication instead of decrypting
// under another key.
func additionalData(keyID string) []byte { return []byte(Encoding + "\x00" + keyID) }

// Encode seals every payload with the active key. Already sealed payloads
// are left alone, so encoding twice never nests.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	aead := c.aeads[c.active]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if IsEncrypted(p) {
			out[i] = p
			continue
		}
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, fmt.Errorf("codec: marshal payload: %w", err)
		}
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return payloads, fmt.Errorf("codec: nonce: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(Encoding),
				MetadataKeyID:              []byte(c.active),
			},
			Data: aead.Seal(nonce, nonce, plain, additionalData(c.active)),
		}
	}
	return out, nil
}

// Decode opens sealed payloads with the key each one names; others pass.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if !IsEncrypted(p) {
			if c.required {
				return payloads, &PlaintextError{Encoding: string(p.GetMetadata()[converter.MetadataEncoding])}
			}
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[MetadataKeyID])
		aead, ok := c.aeads[id]
		if !ok {
			return payloads, fmt.Errorf("codec: payload sealed with key %q, which is not configured (known: %s); add it to temporal.codec.keys", id, strings.Join(c.ids, ", "))
		}
		data := p.GetData()
		if len(data) < aead.NonceSize()+aead.Overhead() {
			return payloads, fmt.Errorf("codec: payload sealed with key %q is truncated", id)
		}
		plain, err := aead.Open(nil, data[:aead.NonceSize()], data[aead.NonceSize():], additionalData(id))
		if err != nil {
			return payloads, fmt.Errorf("codec: payload sealed with key %q does not authenticate (wrong key material or altered data)", id)
		}
		var orig commonpb.Payload
		if err := proto.Unmarshal(plain, &orig); err != nil {
			return payloads, fmt.Errorf("codec: decrypted payload: %w", err)
		}
		out[i] = &orig
	}
	return out, nil
}

// IsEncrypted reports whether a payload is sealed by this codec's format.
func IsEncrypted(p *commonpb.Payload) bool {
	return string(p.GetMetadata()[converter.MetadataEncoding]) == Encoding
}

// DataConverter is Temporal's default converter with c applied to every
// payload; a nil codec returns the default converter unchanged.
func DataConverter(c *Codec) converter.DataConverter {
	if c == nil {
		return converter.GetDefaultDataConverter()
	}
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}
