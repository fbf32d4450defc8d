package config

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// CodecConfig turns on payload encryption (internal/codec): every payload
// the worker and the CLI write to Temporal (workflow and activity inputs,
// results, failures, queries, updates) is sealed with AES-256-GCM under the
// Active key; any listed key decrypts, so a rotation adds the new key,
// makes it active and keeps the old one until the histories written with
// it are past retention.
type CodecConfig struct {
	Active string
	Keys   []CodecKey
	// Required makes decoding refuse payloads the codec did not seal; it
	// is temporal.require_encryption, copied here once the environment
	// has had its say (HYBRIDFLOW_CODEC_KEYS replaces this block).
	Required bool
}

// CodecKey is one encryption key: an ID recorded next to every payload it
// seals, and a credential reference (env:NAME or file:PATH) to 32 bytes,
// base64-encoded or raw. Literal keys are refused like every secret.
type CodecKey struct {
	ID  string
	Key string
}

// Environment overrides of the codec block. HYBRIDFLOW_CODEC_KEYS replaces
// the whole block: "k2=env:HF_KEY2,k1=file:/run/secrets/k1"; the active key
// is HYBRIDFLOW_CODEC_ACTIVE, or the first key listed.
const (
	EnvCodecKeys   = "HYBRIDFLOW_CODEC_KEYS"
	EnvCodecActive = "HYBRIDFLOW_CODEC_ACTIVE"
)

func codecKeyIDMsg(s string) string {
	if nameRE.MatchString(s) {
		return ""
	}
	return fmt.Sprintf("%q is not a valid key id: use up to 64 letters, digits, dots, hyphens and underscores, starting with a letter or digit", s)
}

// codec decodes temporal.codec; nil when absent. "codec:" with nothing
// under it is reported: asking for encryption without keys is a mistake
// that must not silently mean "no encryption".
func (d *decoder) codec(f field) *CodecConfig {
	if f.node == nil {
		return nil
	}
	fs, ok := d.mapping(f, "keys", "active")
	if !ok {
		if !f.present() {
			d.errf(f, "needs keys (a list of {id, key}) and active")
		}
		return nil
	}
	c := &CodecConfig{}
	valid := true
	kf := fs.get("keys")
	if !kf.present() || (kf.node.Kind == yaml.SequenceNode && len(kf.node.Content) == 0) {
		d.errf(kf, "required: at least one {id, key} (key is a reference such as env:HF_CODEC_KEY)")
		valid = false
	}
	items := d.list(kf)
	if kf.present() && kf.node.Kind != yaml.SequenceNode {
		valid = false
	}
	seen := map[string]int{}
	for _, item := range items {
		ks, ok := d.mapping(item, "id", "key")
		if !ok {
			if !item.present() {
				d.errf(item, "must be a mapping with id and key")
			}
			valid = false
			continue
		}
		idf := ks.get("id")
		id, ok := d.required(idf)
		if !ok || !d.check(idf, codecKeyIDMsg(id)) {
			valid = false
		} else if line, dup := seen[id]; dup {
			d.errf(idf, "key id %s listed twice (first at line %d)", id, line)
			valid = false
		} else {
			seen[id] = idf.line()
		}
		rf := ks.get("key")
		ref, ok := d.required(rf)
		if !ok || !d.check(rf, refMsg(ref)) {
			valid = false
		}
		c.Keys = append(c.Keys, CodecKey{ID: id, Key: ref})
	}
	af := fs.get("active")
	switch a, ok := d.optional(af); {
	case ok:
		if _, known := seen[a]; !known && valid {
			d.errf(af, "active key %q is not one of the keys listed", a)
			valid = false
		}
		c.Active = a
	case len(c.Keys) == 1:
		c.Active = c.Keys[0].ID
	case len(c.Keys) > 1:
		d.errf(af, "required when several keys are listed: the id of the key that encrypts")
		valid = false
	}
	if !valid {
		return nil
	}
	return c
}

// codecEnv applies HYBRIDFLOW_CODEC_KEYS / HYBRIDFLOW_CODEC_ACTIVE.
func (d *decoder) codecEnv(cfg *WorkerConfig, getenv func(string) string) {
	spec, active := getenv(EnvCodecKeys), getenv(EnvCodecActive)
	if spec == "" {
		if active != "" {
			if cfg.Temporal.Codec == nil {
				d.probs = append(d.probs, Problem{File: "environment", Field: EnvCodecActive, Message: "set, but no codec keys are configured (" + EnvCodecKeys + " or temporal.codec)"})
				return
			}
			if !cfg.Temporal.Codec.has(active) {
				d.probs = append(d.probs, Problem{File: "environment", Field: EnvCodecActive, Message: fmt.Sprintf("%q is not one of the configured codec keys", active)})
				return
			}
			cfg.Temporal.Codec.Active = active
		}
		return
	}
	c, err := ParseCodecKeys(spec, active)
	if err != nil {
		d.probs = append(d.probs, Problem{File: "environment", Field: EnvCodecKeys, Message: err.Error()})
		return
	}
	cfg.Temporal.Codec = c
}

func (c *CodecConfig) has(id string) bool {
	for _, k := range c.Keys {
		if k.ID == id {
			return true
		}
	}
	return false
}

// ParseCodecKeys reads the HYBRIDFLOW_CODEC_KEYS syntax,
// "id=reference[,id=reference...]"; active "" means the first key. Every
// problem is reported at once; references are never echoed.
func ParseCodecKeys(spec, active string) (*CodecConfig, error) {
	c := &CodecConfig{}
	var probs []string
	for i, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, ref, ok := strings.Cut(part, "=")
		id = strings.TrimSpace(id)
		switch {
		case !ok:
			probs = append(probs, fmt.Sprintf("entry %d: want id=env:NAME or id=file:PATH", i+1))
			continue
		case codecKeyIDMsg(id) != "":
			probs = append(probs, fmt.Sprintf("entry %d: %s", i+1, codecKeyIDMsg(id)))
			continue
		case c.has(id):
			probs = append(probs, fmt.Sprintf("entry %d: key id %s listed twice", i+1, id))
			continue
		}
		if m := refMsg(strings.TrimSpace(ref)); m != "" {
			probs = append(probs, fmt.Sprintf("key %s: %s", id, m))
			continue
		}
		c.Keys = append(c.Keys, CodecKey{ID: id, Key: strings.TrimSpace(ref)})
	}
	if len(c.Keys) == 0 && len(probs) == 0 {
		probs = append(probs, "no keys")
	}
	if len(probs) == 0 {
		c.Active = active
		if c.Active == "" {
			c.Active = c.Keys[0].ID
		} else if !c.has(c.Active) {
			probs = append(probs, fmt.Sprintf("active key %q (%s) is not one of the keys listed", active, EnvCodecActive))
		}
	}
	if len(probs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(probs, "; "))
	}
	return c, nil
}
