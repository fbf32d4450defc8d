package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// decoder walks a yaml.Node tree by hand. Reflection-based decoding stops at
// the first type error and loses positions; walking the tree lets every check
// run and name its own line and field path.
type decoder struct {
	file  string
	probs Problems
}

// field is one value in the tree together with where it came from. node is
// nil when the key was absent; parent is the mapping that should have held
// it, so "required" problems point at the enclosing entry.
type field struct {
	node   *yaml.Node
	parent *yaml.Node
	path   string
}

func (f field) present() bool { return f.node != nil && !isNull(f.node) }

// line is where a problem about this field should point: the value if it is
// there, otherwise the enclosing mapping.
func (f field) line() int {
	if f.node != nil {
		return f.node.Line
	}
	if f.parent != nil {
		return f.parent.Line
	}
	return 0
}

func (d *decoder) addf(line int, path, format string, args ...any) {
	d.probs = append(d.probs, Problem{File: d.file, Line: line, Field: path, Message: fmt.Sprintf(format, args...)})
}

func (d *decoder) errf(f field, format string, args ...any) {
	d.addf(f.line(), f.path, format, args...)
}

// check records msg against f unless it is empty; validators return "" for a
// good value so call sites stay one line each.
func (d *decoder) check(f field, msg string) bool {
	if msg == "" {
		return true
	}
	d.errf(f, "%s", msg)
	return false
}

func (d *decoder) err() error {
	if len(d.probs) == 0 {
		return nil
	}
	return d.probs.sorted()
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntax turns a yaml.v3 parser error ("yaml: line 3: did not find expected
// key") into a Problem, so malformed files get FILE:LINE like every other
// problem.
func (d *decoder) syntax(data []byte, err error) {
	msg := err.Error()
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		// The reader's errors (control characters, bad UTF-8) carry no
		// line; without one the operator has nothing to look at.
		d.addf(readerErrorLine(data), "", "malformed YAML: %s", strings.TrimPrefix(msg, "yaml: "))
		return
	}
	line, _ := strconv.Atoi(m[1])
	d.addf(offendingLine(data, line, m[2]), "", "malformed YAML: %s", m[2])
}

// readerErrorLine is the line of the first character YAML does not allow
// in a stream (YAML 1.2 c-printable) or of the first invalid UTF-8 byte,
// and line 1 when there is none (a UTF-16 file, say).
func readerErrorLine(data []byte) int {
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		printable := r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0x7e || r == 0x85 ||
			r >= 0xa0 && r <= 0xd7ff || r >= 0xe000 && r <= 0xfffd || r >= 0x10000 && r <= 0x10ffff
		if (r == utf8.RuneError && size <= 1) || !printable {
			return line
		}
		if r == '\n' {
			line++
		}
		i += size
	}
	return 1
}

// offendingLine sharpens yaml.v3's error position. For parser errors yaml.v3
// reports where the enclosing construct started (a badly indented key on
// line 40 of a tenant list is reported at the list's first line), which is
// useless in a long inventory. The first line that makes the document fail
// with the same message is where the operator has to look; prefixes that end
// before it parse or fail differently, so a binary search finds it with
// O(log n) parses. reported stays the lower bound: the problem cannot be
// before the construct yaml.v3 was in.
func offendingLine(data []byte, reported int, msg string) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	fails := func(k int) bool {
		dec := yaml.NewDecoder(bytes.NewReader(bytes.Join(lines[:k], nil)))
		for {
			var n yaml.Node
			err := dec.Decode(&n)
			if err == nil {
				continue
			}
			if errors.Is(err, io.EOF) {
				return false
			}
			m := yamlLineRE.FindStringSubmatch(err.Error())
			return m != nil && m[2] == msg
		}
	}
	lo, hi := max(reported, 1), len(lines)
	if lo > hi || !fails(hi) {
		return reported
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// parse reads exactly one YAML document and returns its root, or nil when the
// input is empty or unreadable (problems are recorded for the latter).
func (d *decoder) parse(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			d.syntax(data, err)
		}
		return nil
	}
	// A stray "---" would otherwise silently hide everything after it.
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		d.addf(extra.Line, "", "a second YAML document starts here; only one is read, so put everything in one document")
	case errors.Is(err, io.EOF):
	default:
		d.syntax(data, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil
		}
		root = root.Content[0]
	}
	return deref(root)
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fields is a decoded mapping: its known keys by name.
type fields struct {
	node *yaml.Node
	path string
	vals map[string]*yaml.Node
}

func (fs fields) get(key string) field {
	return field{node: deref(fs.vals[key]), parent: fs.node, path: join(fs.path, key)}
}

// mapping decodes f as a mapping with the given known keys, reporting
// unknown and repeated keys. ok is false when f is absent or not a mapping;
// the returned fields are still safe to query (every key absent).
func (d *decoder) mapping(f field, known ...string) (fields, bool) {
	fs := fields{node: f.node, path: f.path, vals: map[string]*yaml.Node{}}
	if !f.present() {
		if fs.node == nil {
			fs.node = f.parent
		}
		return fs, false
	}
	n := f.node
	if n.Kind != yaml.MappingNode {
		d.errf(f, "must be a mapping (fields: %s)", strings.Join(known, ", "))
		return fs, false
	}
	firstAt := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := k.Value
		kf := field{node: k, path: join(f.path, key)}
		if k.Kind != yaml.ScalarNode {
			d.errf(field{node: k, path: f.path}, "field names must be plain strings")
			continue
		}
		if !contains(known, key) {
			d.errf(kf, "unknown field (known fields: %s)", strings.Join(known, ", "))
			continue
		}
		if line, dup := firstAt[key]; dup {
			d.errf(kf, "given twice (first at line %d)", line)
			continue
		}
		firstAt[key] = k.Line
		fs.vals[key] = v
	}
	return fs, true
}

// entry is one name → settings pair of an operator-named mapping.
type entry struct {
	name string
	key  field
	val  field
}

// mapEntries decodes a mapping whose keys are names chosen by the operator
// (sites, credentials), in file order.
func (d *decoder) mapEntries(f field) []entry {
	if !f.present() {
		return nil
	}
	if f.node.Kind != yaml.MappingNode {
		d.errf(f, "must be a mapping of names to settings")
		return nil
	}
	var out []entry
	firstAt := map[string]int{}
	for i := 0; i+1 < len(f.node.Content); i += 2 {
		k, v := f.node.Content[i], f.node.Content[i+1]
		p := join(f.path, k.Value)
		if line, dup := firstAt[k.Value]; dup {
			d.errf(field{node: k, path: p}, "given twice (first at line %d)", line)
			continue
		}
		firstAt[k.Value] = k.Line
		out = append(out, entry{name: k.Value, key: field{node: k, path: p}, val: field{node: deref(v), parent: k, path: p}})
	}
	return out
}

// optional returns f's scalar text and true when f is present and a scalar;
// structure where a string belongs is reported.
func (d *decoder) optional(f field) (string, bool) {
	if !f.present() {
		return "", false
	}
	if f.node.Kind != yaml.ScalarNode {
		d.errf(f, "must be a string")
		return "", false
	}
	return f.node.Value, true
}

// required is optional plus a problem when the value is absent or blank.
func (d *decoder) required(f field) (string, bool) {
	if f.present() && f.node.Kind != yaml.ScalarNode {
		d.errf(f, "must be a string")
		return "", false
	}
	s := ""
	if f.present() {
		s = f.node.Value
	}
	if strings.TrimSpace(s) == "" {
		d.errf(f, "required")
		return "", false
	}
	return s, true
}

// list returns the elements of a sequence; a single scalar is not promoted to
// a list because "smtp_domains: a.com, b.com" is a typo worth reporting.
func (d *decoder) list(f field) []field {
	if !f.present() {
		return nil
	}
	if f.node.Kind != yaml.SequenceNode {
		d.errf(f, "must be a list")
		return nil
	}
	out := make([]field, len(f.node.Content))
	for i, n := range f.node.Content {
		out[i] = field{node: deref(n), parent: f.node, path: fmt.Sprintf("%s[%d]", f.path, i)}
	}
	return out
}

// int64 decodes an integer scalar.
func (d *decoder) int64(f field) (int64, bool) {
	if !f.present() {
		return 0, false
	}
	if f.node.Kind != yaml.ScalarNode || f.node.Tag != "!!int" {
		d.errf(f, "must be an integer")
		return 0, false
	}
	v, err := strconv.ParseInt(f.node.Value, 0, 64)
	if err != nil {
		d.errf(f, "must be an integer: %v", errors.Unwrap(err))
		return 0, false
	}
	return v, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
