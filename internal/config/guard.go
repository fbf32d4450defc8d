package config

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Caps on what the decoders accept. Both files are refused whole, before
// any field is decoded, when they break one of them: the decoders' cost
// must follow the size of the file, and a value must never be long enough
// to flood a message, a log line or a terminal.
const (
	// MaxInventoryBytes bounds an inventory file. Ten thousand fully
	// populated tenants (every field and override, comments) take 10.9
	// MiB; a typical entry (id, name, cloud, domain, site) about 250 bytes,
	// so some 60,000 such tenants fit. Split larger estates into several
	// inventories.
	MaxInventoryBytes = 16 << 20
	// MaxWorkerConfigBytes bounds a worker config, a few kilobytes even
	// with hundreds of sites.
	MaxWorkerConfigBytes = 1 << 20
	// MaxDisplayNameChars bounds a tenant's display_name, in characters.
	MaxDisplayNameChars = 256
	// maxInventoryString bounds every string of an inventory, keys
	// included: the longest value with no rule of its own is a URL, and
	// browsers and servers stop at about 2,000 characters.
	maxInventoryString = 2048
	// maxWorkerString bounds every string of a worker config: a shell
	// environment value may be as long as Windows allows one (32,767
	// characters).
	maxWorkerString = 32 << 10
)

// readCapped reads the file at path when it is at most limit bytes. A
// larger regular file is refused by its size without being read; a pipe or
// device is read through a limit, so it costs no more than the cap either.
// The refusal is a Problems error naming the file.
func readCapped(path string, limit int, what, hint string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var data []byte
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		if st.Size() > int64(limit) {
			return nil, tooLarge(path, limit, what, hint)
		}
		data = make([]byte, 0, st.Size()+1)
	}
	buf := bytes.NewBuffer(data)
	if _, err := buf.ReadFrom(io.LimitReader(f, int64(limit)+1)); err != nil {
		return nil, err
	}
	if buf.Len() > limit {
		return nil, tooLarge(path, limit, what, hint)
	}
	return buf.Bytes(), nil
}

func tooLarge(file string, limit int, what, hint string) Problems {
	return Problems{{File: file, Message: fmt.Sprintf("the file is larger than %d MiB, the most %s may be; %s", limit>>20, what, hint)}}
}

// sizeOK records a problem when data is longer than limit; what names
// the kind of file and hint what to do about it.
func (d *decoder) sizeOK(data []byte, limit int, what, hint string) bool {
	if len(data) <= limit {
		return true
	}
	d.probs = append(d.probs, tooLarge(d.file, limit, what, hint)...)
	return false
}

// The kinds of file and what to do when one is too large.
const (
	inventoryWhat = "an inventory"
	inventoryHint = "split the tenants into several inventories"
	workerWhat    = "a worker config"
	workerHint    = "remove what is not configuration"
)

// guard checks the parsed tree before any field is decoded. A YAML alias
// is refused wherever it appears: the decoder follows an alias into the
// anchored value every time it meets one, so a small file of aliases to
// aliases would stand for an enormous one (the "billion laughs"), and an
// edit to an anchor would quietly change every entry that refers to it.
// The first alias is reported with the number of others; every string
// longer than maxString is reported by its path without being echoed. ok
// is false when anything was found; the tree must then not be decoded.
func (d *decoder) guard(root *yaml.Node, maxString int) bool {
	g := &guardWalk{d: d, max: maxString}
	g.walk(root, "")
	if g.aliases > 0 {
		more := ""
		if g.aliases > 1 {
			more = fmt.Sprintf(" (%d more after this one)", g.aliases-1)
		}
		d.addf(g.firstAlias.line, g.firstAlias.path, "YAML aliases are not allowed: write the value out in full where *%s stands%s", clip(g.firstAlias.name, 64), more)
	}
	return g.aliases == 0 && !g.long
}

type guardWalk struct {
	d          *decoder
	max        int
	aliases    int
	firstAlias struct {
		line int
		path string
		name string
	}
	long bool
}

func (g *guardWalk) walk(n *yaml.Node, path string) {
	if n == nil {
		return
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			g.walk(c, path)
		}
	case yaml.AliasNode:
		if g.aliases == 0 {
			g.firstAlias.line, g.firstAlias.path, g.firstAlias.name = n.Line, path, n.Value
		}
		g.aliases++
	case yaml.ScalarNode:
		g.scalar(n, path, "value")
	case yaml.SequenceNode:
		for i, c := range n.Content {
			g.walk(c, fmt.Sprintf("%s[%d]", path, i))
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			switch {
			case k.Kind != yaml.ScalarNode:
				g.walk(k, path)
				g.walk(v, path)
			case g.scalar(k, path, "field name"):
				g.walk(v, join(path, k.Value))
			default:
				g.walk(v, path)
			}
		}
	}
}

// scalar reports a string longer than the cap; false when it was.
func (g *guardWalk) scalar(n *yaml.Node, path, what string) bool {
	if len(n.Value) <= g.max {
		return true
	}
	g.long = true
	g.d.addf(n.Line, path, "a %s of %d bytes, longer than any in this file may be (%d); nothing of it is read", what, len(n.Value), g.max)
	return false
}

// clip shortens s to at most n bytes on a character boundary, for
// quoting names in messages.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// displayNameMsg is the display_name rule: one short line of text. A
// control character (an escape sequence, a carriage return) would reach
// the terminal of whoever reads a plan or a status.
func displayNameMsg(s string) string {
	if n := utf8.RuneCountInString(s); n > MaxDisplayNameChars {
		return fmt.Sprintf("%d characters, longer than %d characters", n, MaxDisplayNameChars)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Sprintf("%q contains a control character (%U); use plain text", s, r)
		}
	}
	return ""
}
