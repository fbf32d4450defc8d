package sim

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/hybridflow/hybridflow/internal/cloud"
)

// Load reads a world from a YAML file; see Parse.
func Load(path string) (*World, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load world: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes a world strictly (an unknown field is an error, reported
// as name:line), appends the tenants its generate spec asks for after the
// explicit ones, validates it and readies its indexes and fault injector.
// name only labels errors.
func Parse(name string, data []byte) (*World, error) {
	w, err := decodeWorld(name, data)
	if err != nil {
		return nil, err
	}
	if err := w.validate(name, data); err != nil {
		return nil, err
	}
	if w.Generate != nil {
		seed := w.Generate.Seed
		if seed == 0 {
			seed = w.Seed
		}
		gen, err := GenerateTenants(*w.Generate, seed, w.FixedNow)
		if err != nil {
			return nil, fmt.Errorf("%s: generate: %w", name, err)
		}
		seen := make(map[string]bool, len(w.Tenants))
		for _, t := range w.Tenants {
			seen[strings.ToLower(t.ID)] = true
		}
		for _, t := range gen {
			if seen[strings.ToLower(t.ID)] {
				return nil, fmt.Errorf("%s: generate: generated tenant %s collides with an explicit tenant; change the seed", name, t.ID)
			}
		}
		w.Tenants = append(w.Tenants, gen...)
	}
	w.reindex()
	w.faults = newInjector(w.Seed, w.FaultRules)
	return w, nil
}

// decodeWorld is the strict YAML decoding shared by Parse and Clone.
func decodeWorld(name string, data []byte) (*World, error) {
	w := &World{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(w); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty world document", name)
		}
		return nil, locateYAMLError(name, err)
	}
	return w, nil
}

// Dump writes the world as YAML that Parse reads back into the same world.
// Generated tenants are written out as explicit tenants and the generate
// spec is left out, so dump → Parse → dump is byte-identical and a dumped
// world never grows by a second generation.
func (w *World) Dump() ([]byte, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	gen := w.Generate
	w.Generate = nil
	defer func() { w.Generate = gen }()
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(w); err != nil {
		return nil, fmt.Errorf("dump world: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("dump world: %w", err)
	}
	return buf.Bytes(), nil
}

// Clone is a deep copy of the world's data (tenants, faults, seed, clock)
// for before/after comparisons. Request counters and fault-injection
// progress are not copied. It skips validation: a test may have changed the
// world into a state Parse would refuse, and the copy must still be taken.
func (w *World) Clone() *World {
	data, err := w.Dump()
	if err != nil {
		panic("sim: clone: " + err.Error())
	}
	c, err := decodeWorld("clone", data)
	if err != nil {
		panic("sim: clone: " + err.Error())
	}
	w.mu.Lock()
	if w.Generate != nil {
		g := *w.Generate
		g.Clouds = slices.Clone(g.Clouds)
		c.Generate = &g
	}
	c.clock = w.clock
	w.mu.Unlock()
	c.reindex()
	c.faults = newInjector(c.Seed, c.FaultRules)
	return c
}

// validate checks what the YAML types cannot: unique tenant IDs, known
// clouds, sane fault rules and generate spec. Empty clouds default to
// global so that a dumped world states its cloud explicitly.
func (w *World) validate(name string, data []byte) error {
	var problems []string
	add := func(path []any, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if line := yamlLine(data, path...); line > 0 {
			problems = append(problems, fmt.Sprintf("%s:%d: %s", name, line, msg))
		} else {
			problems = append(problems, fmt.Sprintf("%s: %s", name, msg))
		}
	}
	seen := map[string]int{}
	for i, t := range w.Tenants {
		if t == nil {
			add([]any{"tenants", i}, "tenant %d is empty", i)
			continue
		}
		if strings.TrimSpace(t.ID) == "" {
			add([]any{"tenants", i}, "tenant %d has no id", i)
		} else if j, dup := seen[strings.ToLower(t.ID)]; dup {
			add([]any{"tenants", i, "id"}, "tenant id %s is also used by tenant %d", t.ID, j)
		} else {
			seen[strings.ToLower(t.ID)] = i
		}
		if t.Cloud == "" {
			t.Cloud = string(cloud.Global)
		} else if p, err := cloud.Lookup(t.Cloud); err != nil {
			add([]any{"tenants", i, "cloud"}, "tenant %s: %v", t.ID, err)
		} else {
			t.Cloud = string(p.Name)
		}
	}
	for i, r := range w.FaultRules {
		if err := r.check(); err != nil {
			add([]any{"faults", i}, "fault %d: %v", i, err)
		}
	}
	if g := w.Generate; g != nil {
		if err := g.check(); err != nil {
			add([]any{"generate"}, "generate: %v", err)
		}
	}
	for i, t := range w.Tenants {
		if t == nil {
			continue
		}
		checkKeys := func(kind string, j int, ks []KeyCredential) {
			for k, kc := range ks {
				if kc.CustomKeyIdentifier != "" && !graphWireBinary(kc.CustomKeyIdentifier) {
					add([]any{"tenants", i, "entra", kind, j, "key_credentials", k, "custom_key_identifier"},
						"tenant %s: custom_key_identifier %q is not the base64 text Graph serves (the hex thumbprint, or base64 of the identifier's bytes)", t.ID, kc.CustomKeyIdentifier)
				}
			}
		}
		uniqueNames := map[string]int{}
		for j, a := range t.Entra.Applications {
			if a == nil {
				continue
			}
			checkKeys("applications", j, a.KeyCredentials)
			if a.UniqueName == "" {
				continue
			}
			if k, dup := uniqueNames[strings.ToLower(a.UniqueName)]; dup {
				add([]any{"tenants", i, "entra", "applications", j, "unique_name"},
					"tenant %s: unique_name %q is also application %d's; it is an alternate key, unique in the tenant", t.ID, a.UniqueName, k)
			}
			uniqueNames[strings.ToLower(a.UniqueName)] = j
		}
		for j, sp := range t.Entra.ServicePrincipals {
			if sp != nil {
				checkKeys("service_principals", j, sp.KeyCredentials)
			}
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}

// check validates one fault rule; the error names the offending field.
func (r FaultRule) check() error {
	switch r.Protocol {
	case ProtoGraph, ProtoEXO, ProtoShell, ProtoToken:
	default:
		return fmt.Errorf("protocol %q is not one of %s, %s, %s, %s", r.Protocol, ProtoGraph, ProtoEXO, ProtoShell, ProtoToken)
	}
	overHTTP := r.Protocol != ProtoShell
	switch r.Kind {
	case FaultLatency, FaultThrottle, FaultServer, FaultDrop, FaultFail, FaultApplyThenDrop:
	case FaultHostCrash:
		if overHTTP {
			return fmt.Errorf("kind %s applies to protocol %s only; %s requests lose their connection with kind %s", r.Kind, ProtoShell, r.Protocol, FaultDrop)
		}
	default:
		return fmt.Errorf("kind %q is not one of %s, %s, %s, %s, %s, %s, %s", r.Kind,
			FaultLatency, FaultThrottle, FaultServer, FaultDrop, FaultHostCrash, FaultApplyThenDrop, FaultFail)
	}
	if r.Method != "" {
		m := strings.ToUpper(r.Method)
		switch {
		case !overHTTP:
			return fmt.Errorf("method %q: %s requests have no HTTP method; match them with cmdlet or operation", r.Method, r.Protocol)
		case r.Protocol != ProtoGraph && m != "POST":
			return fmt.Errorf("method %q never matches: every %s request is a POST", r.Method, r.Protocol)
		case m != "GET" && m != "POST" && m != "PATCH" && m != "PUT" && m != "DELETE":
			return fmt.Errorf("method %q is not one of GET, POST, PATCH, PUT, DELETE", r.Method)
		}
	}
	if r.Path != "" {
		switch {
		case r.Protocol != ProtoGraph && r.Protocol != ProtoToken:
			return fmt.Errorf("path %q: %s requests are matched by cmdlet, not path", r.Path, r.Protocol)
		case !strings.HasPrefix(r.Path, "/"):
			return fmt.Errorf("path %q must start with / (the path after /v1.0 for graph, e.g. /servicePrincipals/)", r.Path)
		}
	}
	if r.Cmdlet != "" && r.Protocol != ProtoEXO && r.Protocol != ProtoShell {
		return fmt.Errorf("cmdlet %q: %s requests are matched by path or method, not cmdlet", r.Cmdlet, r.Protocol)
	}
	if r.Status != 0 {
		switch {
		case r.Kind != FaultServer:
			return fmt.Errorf("status %d applies to kind %s only", r.Status, FaultServer)
		case r.Status < 500 || r.Status > 599:
			return fmt.Errorf("status %d is not a 5xx status (500..599)", r.Status)
		}
	}
	if r.Rate < 0 || r.Rate > 1 {
		return fmt.Errorf("rate %v is outside 0..1", r.Rate)
	}
	for _, f := range []struct {
		name string
		neg  bool
	}{{"fail_first_n", r.FailFirstN < 0}, {"skip_first_n", r.SkipFirstN < 0}, {"latency", r.Latency < 0}, {"jitter", r.Jitter < 0}, {"retry_after", r.RetryAfter < 0}} {
		if f.neg {
			return fmt.Errorf("%s must not be negative", f.name)
		}
	}
	if r.SkipFirstN > 0 && r.FailFirstN == 0 {
		return errors.New("skip_first_n counts towards fail_first_n, which is not set")
	}
	if r.Kind == FaultLatency && r.Latency == 0 && r.Jitter == 0 {
		return errors.New("kind latency needs latency (or jitter), otherwise it delays nothing")
	}
	if r.Kind != FaultLatency && r.Rate == 0 && r.FailFirstN == 0 {
		return errors.New("needs rate or fail_first_n, otherwise it never fires")
	}
	return nil
}

// yamlLine finds the line of a node addressed by mapping keys and sequence
// indexes (0 when absent). It re-parses the document, which is only done
// on the error path.
func yamlLine(data []byte, path ...any) int {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) == 0 {
		return 0
	}
	n := root.Content[0]
	for _, p := range path {
		var next *yaml.Node
		switch k := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						next = n.Content[i+1]
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && k < len(n.Content) {
				next = n.Content[k]
			}
		}
		if next == nil {
			// Generated tenants have no node: the closest one is the answer.
			return n.Line
		}
		n = next
	}
	return n.Line
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// locateYAMLError turns yaml.v3's "line N: ..." messages into name:N: ...
// so that editors and humans can jump to the offending line.
func locateYAMLError(name string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		out := make([]string, 0, len(te.Errors))
		for _, e := range te.Errors {
			out = append(out, relocate(name, e))
		}
		return errors.New(strings.Join(out, "\n"))
	}
	return errors.New(relocate(name, err.Error()))
}

func relocate(name, msg string) string {
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		return name + ":" + m[1] + ": " + msg[len(m[0]):]
	}
	return name + ": " + strings.TrimPrefix(msg, "yaml: ")
}

// Certificates and keys carry DER. yaml.v3 would write a []byte as a
// sequence of a thousand integers; these methods write it as a !!binary
// base64 block instead, and read it back while keeping the decoder's
// unknown-field strictness, which a custom unmarshaler otherwise loses.

// MarshalYAML writes Key as base64.
func (k KeyCredential) MarshalYAML() (any, error) {
	type plain KeyCredential
	p := plain(k)
	p.Key = nil
	return withBinary(&p, "key", k.Key)
}

// UnmarshalYAML reads Key from base64.
func (k *KeyCredential) UnmarshalYAML(n *yaml.Node) error {
	type plain KeyCredential
	var p plain
	bin, err := decodeWithBinary(n, &p, "key", "sim.KeyCredential")
	if err != nil {
		return err
	}
	p.Key = bin
	*k = KeyCredential(p)
	return nil
}

// MarshalYAML writes DER as base64.
func (c ExchangeCertificate) MarshalYAML() (any, error) {
	type plain ExchangeCertificate
	p := plain(c)
	p.DER = nil
	return withBinary(&p, "der", c.DER)
}

// UnmarshalYAML reads DER from base64.
func (c *ExchangeCertificate) UnmarshalYAML(n *yaml.Node) error {
	type plain ExchangeCertificate
	var p plain
	bin, err := decodeWithBinary(n, &p, "der", "sim.ExchangeCertificate")
	if err != nil {
		return err
	}
	p.DER = bin
	*c = ExchangeCertificate(p)
	return nil
}

// withBinary encodes v (whose binary field is nil) and puts the field last
// as !!binary base64 in 76-column lines, which is where it is declared.
func withBinary(v any, field string, data []byte) (*yaml.Node, error) {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return nil, err
	}
	// The field may have been encoded as an empty value (no omitempty).
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == field {
			n.Content = append(n.Content[:i], n.Content[i+2:]...)
			break
		}
	}
	if len(data) == 0 {
		return &n, nil
	}
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteByte('\n')
		enc = enc[76:]
	}
	b.WriteString(enc)
	b.WriteByte('\n')
	n.Content = append(n.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: field},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!binary", Value: b.String(), Style: yaml.LiteralStyle},
	)
	return &n, nil
}

// decodeWithBinary decodes a mapping into out, except the binary field,
// which it returns decoded. Unknown keys are reported like yaml.v3's
// KnownFields does, because node.Decode does not check them.
func decodeWithBinary(n *yaml.Node, out any, field, typeName string) ([]byte, error) {
	if n.Kind != yaml.MappingNode {
		return nil, n.Decode(out)
	}
	known := yamlFields(reflect.TypeOf(out).Elem())
	rest := *n
	rest.Content = make([]*yaml.Node, 0, len(n.Content))
	var bin []byte
	var errs []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case k.Value == field:
			b, err := decodeBinary(v)
			if err != nil {
				errs = append(errs, fmt.Sprintf("line %d: field %s: %v", v.Line, field, err))
			}
			bin = b
		case !known[k.Value]:
			errs = append(errs, fmt.Sprintf("line %d: field %s not found in type %s", k.Line, k.Value, typeName))
		default:
			rest.Content = append(rest.Content, k, v)
		}
	}
	if err := rest.Decode(out); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, err
		}
		errs = append(errs, te.Errors...)
	}
	if len(errs) > 0 {
		return nil, &yaml.TypeError{Errors: errs}
	}
	return bin, nil
}

// decodeBinary accepts base64 (tagged !!binary or plain) and, for worlds
// written by hand, a sequence of byte values.
func decodeBinary(v *yaml.Node) ([]byte, error) {
	switch v.Kind {
	case yaml.ScalarNode:
		if v.Tag == "!!null" {
			return nil, nil
		}
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(v.Value), ""))
		if err != nil {
			return nil, fmt.Errorf("not base64: %w", err)
		}
		return b, nil
	case yaml.SequenceNode:
		var b []byte
		err := v.Decode(&b)
		return b, err
	}
	return nil, errors.New("must be base64 text")
}

var fieldCache sync.Map // reflect.Type -> map[string]bool

// yamlFields lists the YAML keys of a struct type, following yaml.v3's
// rules for tags (name, "-", inline is not used by these types).
func yamlFields(t reflect.Type) map[string]bool {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]bool)
	}
	m := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = true
	}
	fieldCache.Store(t, m)
	return m
}
