package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"
)

// Everything the CLI prints that did not come from its own source text
// (display names from an inventory, error messages from Graph, Exchange or
// a proxy, workflow state) passes through termSafe on its way to the
// terminal: printf applies it to every string argument, printJSON to the
// encoded document, and the last "error:" line to the error's text.

// printJSON writes v indented; every command's --output json goes through it.
// encoding/json escapes C0 controls itself; termSafe escapes the C1 and
// bidirectional controls it leaves, which can occur only inside strings,
// as \uXXXX, so the document still decodes to the same values.
func (a *app) printJSON(v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := a.stdout.Write([]byte(termSafe(b.String())))
	return err
}

// printf is fmt.Fprintf to stdout with every string-like argument (a
// string or a named string type, an error) made terminal-safe. The format
// is the program's own and passes unchanged.
func (a *app) printf(format string, args ...any) {
	fmt.Fprintf(a.stdout, format, safeArgs(args)...)
}

// eprintf is printf to w (stderr, a prompt).
func eprintf(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, format, safeArgs(args)...)
}

func safeArgs(args []any) []any {
	out := make([]any, len(args))
	for i, v := range args {
		switch x := v.(type) {
		case string:
			out[i] = termSafe(x)
		case error:
			out[i] = termSafe(x.Error())
		default:
			if rv := reflect.ValueOf(v); rv.IsValid() && rv.Kind() == reflect.String {
				out[i] = termSafe(rv.String())
			} else {
				out[i] = v
			}
		}
	}
	return out
}

// termSafe returns s with everything that would act on a terminal instead
// of showing on it written as a visible escape: C0 controls but tab and
// newline (ESC starts the sequences that clear the screen, move the
// cursor, set the window title or write to the clipboard; CR overwrites
// the line), DEL, C1 controls (U+009B is a one-character CSI), the
// bidirectional formatting characters that reorder what is shown, and
// bytes that are not UTF-8. Characters are written \uXXXX, bytes \xXX.
func termSafe(s string) string {
	clean := true
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if unsafeRune(r, size) {
			clean = false
			break
		}
		i += size
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafeRune(r, size):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func unsafeRune(r rune, size int) bool {
	switch {
	case r == utf8.RuneError && size <= 1:
		return true
	case r == '\t' || r == '\n':
		return false
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		// Arabic letter mark, LRM/RLM, embeddings and overrides, isolates.
		return true
	}
	return false
}
