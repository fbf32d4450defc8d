package shell

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hybridflow/hybridflow/internal/exchange"
)

// ProtocolVersion is the host protocol version this client speaks; the host
// announces its own in the ready line and a mismatch refuses the host.
const ProtocolVersion = 1

// TypeProtocol marks a host that does not speak this client's protocol (a
// stale bootstrap script, a wrong argv). Not retryable: restarting the same
// program cannot fix it.
const TypeProtocol = "HybridFlow.HostProtocolException"

// Request is one line the client writes: a single command (Cmdlet and
// Parameters) or a Batch, never both. Exported so the simulator's host
// serves exactly the shape the client sends.
type Request struct {
	ID         uint64             `json:"id"`
	Cmdlet     string             `json:"cmdlet,omitempty"`
	Parameters map[string]any     `json:"parameters,omitempty"`
	Batch      []exchange.Command `json:"batch,omitempty"`
}

// Reply is one line the host writes for a Request: Rows and Error for a
// single command, Results (one per command, in order) for a batch.
type Reply struct {
	ID      uint64            `json:"id"`
	Rows    []exchange.Row    `json:"rows,omitempty"`
	Error   *exchange.Error   `json:"error,omitempty"`
	Results []exchange.Result `json:"results,omitempty"`
}

// Ready is the host's first line: the session is set up (or why not).
type Ready struct {
	Ready   bool            `json:"ready"`
	Version int             `json:"version"`
	Session string          `json:"session,omitempty"`
	Error   *exchange.Error `json:"error,omitempty"`
}

// ConfigLine is the client's first line: how the host sets its session up.
type ConfigLine struct {
	Config SessionConfig `json:"config"`
}

// errNotProtocol marks a stdout line that is not a protocol message: hosts
// print banners, module warnings and Write-Host text on the same stream, so
// such lines are skipped rather than treated as a broken host.
var errNotProtocol = errors.New("not a protocol line")

// paramNameRE is what PowerShell accepts as a parameter name when
// splatting. Names are code, not data, so anything else is a caller bug.
var paramNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// encodeRequest renders one request line (without the newline). Parameter
// values are normalised to what the host can bind, and refused with an
// *exchange.Error of TypeParameterBinding naming the parameter when they
// cannot travel losslessly:
//   - strings (and map keys) must be valid UTF-8: JSON cannot carry other
//     bytes, and silently turning them into U+FFFD would change a value;
//   - NaN and ±Inf have no JSON form;
//   - []byte is refused rather than guessed at (no allow-listed cmdlet takes
//     bytes; pass base64 text where a cmdlet wants it);
//   - time.Time travels as RFC 3339 UTC text, which every cmdlet binds as
//     DateTime.
//
// Everything else that is valid text round-trips exactly, including quotes,
// backticks, $(), newlines and NUL: JSON escapes them and the host splats
// the decoded value, so none of it is ever parsed as PowerShell.
func encodeRequest(id uint64, cmd *exchange.Command, batch []exchange.Command) ([]byte, error) {
	req := Request{ID: id}
	if cmd != nil {
		p, err := normaliseParams(cmd.Cmdlet, cmd.Parameters)
		if err != nil {
			return nil, err
		}
		req.Cmdlet, req.Parameters = cmd.Cmdlet, p
	} else {
		if len(batch) == 0 {
			return nil, errors.New("shell: empty batch")
		}
		req.Batch = make([]exchange.Command, len(batch))
		for i, c := range batch {
			p, err := normaliseParams(c.Cmdlet, c.Parameters)
			if err != nil {
				return nil, err
			}
			req.Batch[i] = exchange.Command{Cmdlet: c.Cmdlet, Parameters: p}
		}
	}
	line, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("shell: encode request: %w", err)
	}
	// json.Marshal escapes control characters, so a line can never contain
	// a raw newline; checked anyway because framing depends on it.
	if bytes.ContainsAny(line, "\r\n") {
		return nil, errors.New("shell: encoded request spans lines")
	}
	return line, nil
}

func normaliseParams(cmdlet string, in map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(in))
	for name, v := range in {
		if !paramNameRE.MatchString(name) {
			return nil, paramError(cmdlet, name, "is not a valid PowerShell parameter name")
		}
		nv, err := normaliseValue(v, 0)
		if err != nil {
			return nil, paramError(cmdlet, name, err.Error())
		}
		out[name] = nv
	}
	return out, nil
}

func paramError(cmdlet, name, why string) *exchange.Error {
	return &exchange.Error{
		Cmdlet:   cmdlet,
		Type:     exchange.TypeParameterBinding,
		Message:  fmt.Sprintf("parameter %q: %s", name, why),
		Category: "InvalidArgument",
	}
}

// maxValueDepth bounds nesting; the host flattens anything deeper anyway,
// and a bound keeps a cyclic value from recursing forever.
const maxValueDepth = 8

func normaliseValue(v any, depth int) (any, error) {
	if depth > maxValueDepth {
		return nil, fmt.Errorf("value nested deeper than %d levels", maxValueDepth)
	}
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		if !utf8.ValidString(x) {
			return nil, errors.New("value is not valid UTF-8 (JSON cannot carry it losslessly)")
		}
		return x, nil
	case bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, json.Number:
		return x, nil
	case float32:
		return normaliseValue(float64(x), depth)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, errors.New("NaN and infinities have no JSON form")
		}
		return x, nil
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	case []byte:
		return nil, errors.New("byte-array values are not supported; pass base64 text")
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			e, err := normaliseValue(s, depth+1)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			out[i] = e
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, s := range x {
			e, err := normaliseValue(s, depth+1)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			out[i] = e
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys) // deterministic error for the first bad key
		for _, k := range keys {
			if !utf8.ValidString(k) {
				return nil, errors.New("hashtable key is not valid UTF-8")
			}
			e, err := normaliseValue(x[k], depth+1)
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", k, err)
			}
			out[k] = e
		}
		return out, nil
	}
	// Other slices of plain values ([]int, []bool ...) are common enough in
	// callers to accept through reflection; anything else is a caller bug.
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
		out := make([]any, rv.Len())
		for i := range out {
			e, err := normaliseValue(rv.Index(i).Interface(), depth+1)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			out[i] = e
		}
		return out, nil
	}
	return nil, fmt.Errorf("values of type %T are not supported", v)
}

// lineKind tells what a host stdout line is.
type lineKind int

const (
	lineReply lineKind = iota
	lineReady
)

// decodeLine classifies and decodes one stdout line. Lines that are not
// JSON objects with an "id" or "ready" member are errNotProtocol.
func decodeLine(line []byte) (lineKind, *Reply, *Ready, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' {
		return 0, nil, nil, errNotProtocol
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(line, &probe); err != nil {
		return 0, nil, nil, errNotProtocol
	}
	if _, ok := probe["ready"]; ok {
		var r Ready
		if err := json.Unmarshal(line, &r); err != nil {
			return 0, nil, nil, fmt.Errorf("shell: malformed ready line: %w", err)
		}
		return lineReady, nil, &r, nil
	}
	if _, ok := probe["id"]; !ok {
		return 0, nil, nil, errNotProtocol
	}
	r, err := decodeReply(line)
	return lineReply, r, nil, err
}

// decodeReply decodes a reply line. A reply must carry either results or
// rows/error; null rows decode as none.
func decodeReply(line []byte) (*Reply, error) {
	var r Reply
	if err := json.Unmarshal(line, &r); err != nil {
		return nil, fmt.Errorf("shell: malformed reply: %w", err)
	}
	if r.Error != nil && r.Error.Type == "" {
		return nil, fmt.Errorf("shell: reply %d has an error without a type", r.ID)
	}
	for i, res := range r.Results {
		if res.Error != nil && res.Error.Type == "" {
			return nil, fmt.Errorf("shell: reply %d result %d has an error without a type", r.ID, i)
		}
	}
	return &r, nil
}

// protocolError is a host that answered outside the protocol.
func protocolError(cmdlet, format string, args ...any) *exchange.Error {
	return &exchange.Error{Cmdlet: cmdlet, Type: TypeProtocol, Message: fmt.Sprintf(format, args...), Category: "ProtocolError"}
}

// cmdletLabel names a batch in logs and errors without its parameters.
func cmdletLabel(cmds []exchange.Command) string {
	names := make([]string, len(cmds))
	for i, c := range cmds {
		names[i] = c.Cmdlet
	}
	return "batch[" + strings.Join(names, ",") + "]"
}

// jsonMarshal is json.Marshal for the client's own lines (config).
func jsonMarshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("shell: encode: %w", err)
	}
	return b, nil
}
